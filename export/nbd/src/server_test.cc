// The NBD server end to end: real event loops on threads, a real head over a memory-backed path, and a small blocking
// NBD client over the real unix socket (and TCP), checking the bytes on the wire.
#include "mpath/nbd/server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <latch>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mpath/core/head.h"
#include "mpath/core/path_driver.h"
#include "mpath/core/personality.h"
#include "mpath/nbd/export.h"
#include "mpath/runtime/event_loop.h"
#include "mpath/testing/allocation_scope.h"
#include "mpath/testing/head_fixture.h"

namespace mpath::nbd {
namespace {

using namespace std::chrono_literals;
using Bytes = std::vector<std::uint8_t>;

constexpr std::uint64_t kCapacity = 1 << 20;
constexpr std::uint32_t kBlock = 512;
constexpr auto kDeadline = 10s;

// Wire constants written out again rather than taken from spec.h, so that a wrong constant there fails here.
constexpr std::uint32_t kRequestMagic = 0x25609513;
constexpr std::uint32_t kSimpleMagic = 0x67446698;
constexpr std::uint32_t kStructuredMagic = 0x668e33ef;
constexpr std::uint16_t kRead = 0, kWrite = 1, kDisc = 2, kFlush = 3, kTrim = 4, kWriteZeroes = 6;
constexpr std::uint16_t kFlagFua = 1;
constexpr std::uint16_t kChunkOffsetData = 1, kChunkError = 0x8001;
constexpr std::uint32_t kEio = 5, kEinval = 22, kEnospc = 28, kEshutdown = 108;

void Put(Bytes& out, std::uint64_t value, int bytes) {
  // Sized once and written by index: g++ 12 -O3 misreads push_back in this loop as an overflow.
  const std::size_t at = out.size();
  out.resize(at + static_cast<std::size_t>(bytes));
  for (int i = 0; i < bytes; ++i) out[at + i] = static_cast<std::uint8_t>(value >> (8 * (bytes - 1 - i)));
}
std::uint64_t Get(const std::uint8_t* in, int bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value = (value << 8) | in[i];
  return value;
}
Bytes Pattern(std::size_t size, std::uint32_t seed) {
  Bytes out(size);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<std::uint8_t>(x);
  }
  return out;
}

// Polls `condition` until it holds or the deadline passes.
template <typename F>
bool Eventually(F condition) {
  const auto end = std::chrono::steady_clock::now() + kDeadline;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Runs `fn` on `loop`'s thread and waits for it.
template <typename F>
void RunOn(EventLoop& loop, F fn) {
  std::latch done(1);
  loop.Post([&] {
    fn();
    done.count_down();
  });
  done.wait();
}

// A disk in memory below the head. Completes inline, later through the submitter's loop (kDeferred), or when told
// (kHold), and fails the next requests on command.
// Threading: Submit and completions on the loops; the controls from the test thread (mu_ guards the state).
class MemoryPath final : public PathDriver {
 public:
  enum class Mode { kInline, kDeferred, kHold };
  // One command as the path received it.
  struct Command {
    IoOp op;
    std::uint64_t offset;
    std::uint32_t length;
    friend bool operator==(const Command&, const Command&) = default;
    friend void PrintTo(const Command& c, std::ostream* os) {
      *os << "{op " << static_cast<int>(c.op) << ", offset " << c.offset << ", length " << c.length << "}";
    }
  };

  explicit MemoryPath(std::uint64_t capacity) : store_(capacity) {}

  void Submit(IoRequest& io) override {
    Executor* executor = CurrentExecutor();
    std::unique_lock lock(mu_);
    ++submitted_;
    if (recording_) commands_.push_back({io.op, io.offset, io.length});
    max_in_flight_ = std::max(max_in_flight_, ++in_flight_);
    if (io.fua) ++fua_writes_;
    if (io.op == IoOp::kFlush) ++flushes_;
    switch (mode_) {
      case Mode::kHold:
        held_.push_back({&io, executor});
        changed_.notify_all();
        return;
      case Mode::kDeferred:
        lock.unlock();
        executor->Post([this, &io] { Execute(io); });
        return;
      case Mode::kInline:
      default:
        lock.unlock();
        Execute(io);
        return;
    }
  }

  void SetMode(Mode mode) {
    std::lock_guard lock(mu_);
    mode_ = mode;
  }
  void FailNext(std::size_t count, IoStatus status) {
    std::lock_guard lock(mu_);
    fail_next_ = count;
    failure_ = status;
  }
  // The next `successes` requests succeed, the one after fails with `status`.
  void FailAfter(std::size_t successes, IoStatus status) {
    std::lock_guard lock(mu_);
    succeed_first_ = successes;
    fail_next_ = 1;
    failure_ = status;
  }
  // From now on every command is kept for TakeCommands (which allocates on the loop, so it is off by default).
  void RecordCommands() {
    std::lock_guard lock(mu_);
    recording_ = true;
  }
  std::vector<Command> TakeCommands() {
    std::lock_guard lock(mu_);
    return std::exchange(commands_, {});
  }
  bool WaitHeld(std::size_t count) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, kDeadline, [&] { return held_.size() >= count; });
  }
  // Completes every held request on its own loop, newest first when `reverse`.
  void ReleaseHeld(bool reverse) {
    std::vector<Held> held;
    {
      std::lock_guard lock(mu_);
      held.swap(held_);
    }
    if (reverse) std::reverse(held.begin(), held.end());
    for (const Held& h : held) h.executor->Post([this, io = h.io] { Execute(*io); });
  }
  Bytes Read(std::uint64_t offset, std::size_t length) {
    std::lock_guard lock(mu_);
    return Bytes(store_.begin() + static_cast<std::ptrdiff_t>(offset),
                 store_.begin() + static_cast<std::ptrdiff_t>(offset + length));
  }
  void Fill(std::uint64_t offset, const Bytes& bytes) {
    std::lock_guard lock(mu_);
    std::copy(bytes.begin(), bytes.end(), store_.begin() + static_cast<std::ptrdiff_t>(offset));
  }
  std::size_t held() {
    std::lock_guard lock(mu_);
    return held_.size();
  }
  std::size_t submitted() {
    std::lock_guard lock(mu_);
    return submitted_;
  }
  std::size_t max_in_flight() {
    std::lock_guard lock(mu_);
    return max_in_flight_;
  }
  std::size_t fua_writes() {
    std::lock_guard lock(mu_);
    return fua_writes_;
  }
  std::size_t flushes() {
    std::lock_guard lock(mu_);
    return flushes_;
  }

 private:
  struct Held {
    IoRequest* io;
    Executor* executor;
  };

  void Execute(IoRequest& io) {
    IoStatus status = IoStatus::Ok();
    {
      std::lock_guard lock(mu_);
      --in_flight_;
      if (succeed_first_ > 0) {
        --succeed_first_;
      } else if (fail_next_ > 0) {
        --fail_next_;
        status = failure_;
      }
      if (status.ok()) {
        auto* at = reinterpret_cast<std::byte*>(store_.data()) + io.offset;
        switch (io.op) {
          case IoOp::kRead:
            std::memcpy(io.data, at, io.length);
            break;
          case IoOp::kWrite:
            std::memcpy(at, io.data, io.length);
            break;
          case IoOp::kWriteZeroes:
          case IoOp::kDiscard:  // this disk reads zeroes after a trim
            std::memset(at, 0, io.length);
            break;
          default:
            break;
        }
      }
    }
    io.Complete(status);
  }

  std::mutex mu_;
  std::condition_variable changed_;
  Mode mode_ = Mode::kInline;
  Bytes store_;
  std::vector<Held> held_;
  std::size_t succeed_first_ = 0;  // before the failures of fail_next_
  std::size_t fail_next_ = 0;
  IoStatus failure_;
  bool recording_ = false;
  std::vector<Command> commands_;
  std::size_t submitted_ = 0;
  std::size_t in_flight_ = 0;
  std::size_t max_in_flight_ = 0;
  std::size_t fua_writes_ = 0;
  std::size_t flushes_ = 0;
};

class TestCatalog final : public ExportCatalog {
 public:
  void Add(Export e) { exports_.push_back(std::move(e)); }
  [[nodiscard]] std::vector<ExportInfo> List() const override {
    std::vector<ExportInfo> out;
    for (const auto& e : exports_) out.push_back(e.info);
    return out;
  }
  [[nodiscard]] std::optional<Export> Find(std::string_view name) const override {
    for (const auto& e : exports_) {
      if (name.empty() || e.info.name == name) return e;
    }
    return std::nullopt;
  }

 private:
  std::vector<Export> exports_;  // filled before the server starts
};

struct Reply {
  bool structured = false;
  std::uint32_t error = 0;
  std::uint64_t cookie = 0;
  std::uint16_t flags = 0;
  std::uint16_t type = 0;
  Bytes payload;  // a structured chunk's payload, or a simple read reply's data
};

// A blocking NBD client, just enough to drive the server byte by byte.
class Client {
 public:
  explicit Client(int fd) : fd_(fd) {
    timeval timeout{10, 0};  // a server that never answers fails the test instead of hanging it
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  }
  ~Client() { ::close(fd_); }

  static std::unique_ptr<Client> Unix(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      ADD_FAILURE() << "connect " << path << ": " << std::strerror(errno);
    }
    return std::make_unique<Client>(fd);
  }
  static std::unique_ptr<Client> Tcp(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      ADD_FAILURE() << "connect 127.0.0.1:" << port << ": " << std::strerror(errno);
    }
    return std::make_unique<Client>(fd);
  }

  bool Send(const Bytes& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  }
  bool Receive(std::uint8_t* out, std::size_t size) {
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = ::recv(fd_, out + done, size - done, 0);
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
    }
    return true;
  }
  std::optional<Bytes> Receive(std::size_t size) {
    Bytes out(size);
    if (!Receive(out.data(), size)) return std::nullopt;
    return out;
  }
  // True when the server closed the connection (end of stream or reset) before the receive timeout.
  bool Closed() {
    std::uint8_t byte;
    const ssize_t n = ::recv(fd_, &byte, 1, 0);
    return n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE));
  }

  // Greeting and client flags (FIXED_NEWSTYLE | NO_ZEROES).
  bool Greet() {
    auto greeting = Receive(18);
    if (!greeting) return false;
    EXPECT_EQ(Get(greeting->data(), 8), 0x4e42444d41474943u);
    EXPECT_EQ(Get(greeting->data() + 8, 8), 0x49484156454F5054u);
    EXPECT_EQ(Get(greeting->data() + 16, 2) & 3u, 3u);
    Bytes flags;
    Put(flags, 3, 4);
    return Send(flags);
  }
  void SendOption(std::uint32_t option, const Bytes& data) {
    Bytes out;
    Put(out, 0x49484156454F5054u, 8);
    Put(out, option, 4);
    Put(out, data.size(), 4);
    out.insert(out.end(), data.begin(), data.end());
    Send(out);
  }
  // One option reply: its type and data.
  std::optional<std::pair<std::uint32_t, Bytes>> OptionReply(std::uint32_t option) {
    auto header = Receive(20);
    if (!header) return std::nullopt;
    EXPECT_EQ(Get(header->data(), 8), 0x3e889045565a9u);
    EXPECT_EQ(Get(header->data() + 8, 4), option);
    auto data = Receive(Get(header->data() + 16, 4));
    if (!data) return std::nullopt;
    return std::pair(static_cast<std::uint32_t>(Get(header->data() + 12, 4)), *data);
  }

  // Fixed newstyle with NBD_OPT_GO (asking for NBD_INFO_BLOCK_SIZE); structured replies first when asked.
  bool Go(const std::string& name, bool structured) {
    if (!Greet()) return false;
    if (structured) {
      SendOption(8, {});
      auto reply = OptionReply(8);
      if (!reply || reply->first != 1) return false;
      structured_ = true;
    }
    Bytes data;
    Put(data, name.size(), 4);
    data.insert(data.end(), name.begin(), name.end());
    Put(data, 1, 2);
    Put(data, 3, 2);
    SendOption(7, data);
    for (;;) {
      auto reply = OptionReply(7);
      if (!reply) return false;
      if (reply->first == 1) return size_ != 0;
      if (reply->first != 3) return false;  // an error
      if (Get(reply->second.data(), 2) == 0) {
        size_ = Get(reply->second.data() + 2, 8);
        transmission_flags_ = static_cast<std::uint16_t>(Get(reply->second.data() + 10, 2));
      }
    }
  }
  bool ExportName(const std::string& name) {
    if (!Greet()) return false;
    SendOption(1, Bytes(name.begin(), name.end()));
    auto reply = Receive(10);  // NO_ZEROES: no padding
    if (!reply) return false;
    size_ = Get(reply->data(), 8);
    transmission_flags_ = static_cast<std::uint16_t>(Get(reply->data() + 8, 2));
    return true;
  }

  static Bytes Request(std::uint16_t type, std::uint16_t flags, std::uint64_t cookie, std::uint64_t offset,
                       std::uint32_t length, std::uint32_t magic = kRequestMagic) {
    Bytes out;
    Put(out, magic, 4);
    Put(out, flags, 2);
    Put(out, type, 2);
    Put(out, cookie, 8);
    Put(out, offset, 8);
    Put(out, length, 4);
    return out;
  }
  void SendRead(std::uint64_t cookie, std::uint64_t offset, std::uint32_t length) {
    read_lengths_[cookie] = length;
    Send(Request(kRead, 0, cookie, offset, length));
  }
  void SendWrite(std::uint64_t cookie, std::uint64_t offset, const Bytes& data, std::uint16_t flags = 0) {
    Bytes out = Request(kWrite, flags, cookie, offset, static_cast<std::uint32_t>(data.size()));
    out.insert(out.end(), data.begin(), data.end());
    Send(out);
  }
  void SendCommand(std::uint16_t type, std::uint64_t cookie, std::uint64_t offset = 0, std::uint32_t length = 0,
                   std::uint16_t flags = 0) {
    Send(Request(type, flags, cookie, offset, length));
  }

  // One reply (one chunk when structured; every chunk this server sends is the only and final one).
  std::optional<Reply> ReadReply() {
    std::uint8_t magic[4];
    if (!Receive(magic, 4)) return std::nullopt;
    Reply reply;
    if (Get(magic, 4) == kSimpleMagic) {
      std::uint8_t rest[12];
      if (!Receive(rest, 12)) return std::nullopt;
      reply.error = static_cast<std::uint32_t>(Get(rest, 4));
      reply.cookie = Get(rest + 4, 8);
      auto it = read_lengths_.find(reply.cookie);
      if (it != read_lengths_.end()) {
        if (reply.error == 0) {
          auto data = Receive(it->second);
          if (!data) return std::nullopt;
          reply.payload = *data;
        }
        read_lengths_.erase(it);
      }
      return reply;
    }
    EXPECT_EQ(Get(magic, 4), kStructuredMagic);
    if (Get(magic, 4) != kStructuredMagic) return std::nullopt;
    std::uint8_t rest[16];
    if (!Receive(rest, 16)) return std::nullopt;
    reply.structured = true;
    reply.flags = static_cast<std::uint16_t>(Get(rest, 2));
    reply.type = static_cast<std::uint16_t>(Get(rest + 2, 2));
    reply.cookie = Get(rest + 4, 8);
    auto payload = Receive(Get(rest + 12, 4));
    if (!payload) return std::nullopt;
    reply.payload = *payload;
    if (reply.type == kChunkError) reply.error = static_cast<std::uint32_t>(Get(reply.payload.data(), 4));
    read_lengths_.erase(reply.cookie);
    return reply;
  }

  // A read's data, checked against the reply's framing; nullopt (with a failure) when the reply is not a good read.
  std::optional<Bytes> ReadData(const Reply& reply, std::uint64_t offset, std::uint32_t length) {
    if (reply.error != 0) {
      ADD_FAILURE() << "read " << reply.cookie << " failed with " << reply.error;
      return std::nullopt;
    }
    if (!reply.structured) return reply.payload;
    EXPECT_EQ(reply.type, kChunkOffsetData);
    EXPECT_EQ(reply.flags, 1);
    if (reply.payload.size() != 8u + length) {
      ADD_FAILURE() << "chunk of " << reply.payload.size() << " bytes for a read of " << length;
      return std::nullopt;
    }
    EXPECT_EQ(Get(reply.payload.data(), 8), offset);
    return Bytes(reply.payload.begin() + 8, reply.payload.end());
  }

  // Write then read back through the server; returns the bytes read.
  std::optional<Bytes> WriteRead(std::uint64_t cookie, std::uint64_t offset, const Bytes& data) {
    SendWrite(cookie, offset, data);
    auto written = ReadReply();
    if (!written || written->cookie != cookie || written->error != 0) return std::nullopt;
    SendRead(cookie + 1, offset, static_cast<std::uint32_t>(data.size()));
    auto read = ReadReply();
    if (!read || read->cookie != cookie + 1) return std::nullopt;
    return ReadData(*read, offset, static_cast<std::uint32_t>(data.size()));
  }

  [[nodiscard]] int fd() const { return fd_; }
  [[nodiscard]] std::uint64_t size() const { return size_; }
  [[nodiscard]] std::uint16_t transmission_flags() const { return transmission_flags_; }

 private:
  int fd_;
  bool structured_ = false;
  std::uint64_t size_ = 0;
  std::uint16_t transmission_flags_ = 0;
  std::map<std::uint64_t, std::uint32_t> read_lengths_;
};

// The disk behind an export and what its path can carry in one command (0: no limit).
struct Shape {
  std::uint64_t capacity = kCapacity;
  std::uint32_t max_transfer_bytes = 0;
  std::uint64_t max_zeroing_bytes = 0;
};

class NbdServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/mpath-nbd-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    socket_path_ = dir_ + "/nbd.sock";
  }

  void TearDown() override {
    server_.reset();
    for (auto& loop : loops_) loop->Stop();
    for (auto& thread : threads_) thread.join();
    threads_.clear();
    heads_.clear();
    ::unlink(socket_path_.c_str());
    ::rmdir(dir_.c_str());
  }

  // The accept loop (also the heads' control executor) and `io_loops` I/O loops, each on its own thread.
  void StartLoops(std::size_t io_loops) {
    for (std::size_t i = 0; i < io_loops + 1; ++i) loops_.push_back(EventLoop::Create().value());
    for (auto& loop : loops_) threads_.emplace_back([l = loop.get()] { l->Run(); });
  }
  EventLoop& accept_loop() { return *loops_[0]; }
  std::vector<EventLoop*> io_loops() {
    std::vector<EventLoop*> out;
    for (std::size_t i = 1; i < loops_.size(); ++i) out.push_back(loops_[i].get());
    return out;
  }

  // A head over one memory path, exported as `name`.
  MemoryPath& AddExport(const std::string& name, PathState state = PathState::kLive, Shape shape = {}) {
    HeadOptions options;
    const DeviceIdentity identity("naa.6001405000000000000000000000" + std::to_string(10 + heads_.size()));
    auto head = Head::Create({name, identity, shape.capacity, kBlock, options}, NeutralTemplate::Instance(),
                             accept_loop())
                    .value();
    DeviceInfo info = testing::NullPathInfo(name + "-p0", identity, shape.capacity, kBlock);
    info.initial_state = state;
    info.max_transfer_bytes = shape.max_transfer_bytes;
    info.max_zeroing_bytes = shape.max_zeroing_bytes;
    auto driver = std::make_unique<MemoryPath>(shape.capacity);
    MemoryPath& raw = *driver;
    EXPECT_TRUE(head->AddPath(info, std::move(driver)).has_value());
    Export e;
    e.info.name = name;
    e.info.description = "memory disk " + name;
    e.info.size_bytes = shape.capacity;
    e.info.block_size = kBlock;
    e.head = head;
    catalog_.Add(e);
    heads_.push_back(head);
    return raw;
  }

  void StartServer(NbdServerOptions options = {}) {
    if (options.unix_path.empty()) options.unix_path = socket_path_;
    auto server = NbdServer::Start(catalog_, accept_loop(), io_loops(), std::move(options));
    ASSERT_TRUE(server.has_value()) << server.error().ToString();
    server_ = std::move(server).value();
  }

  std::unique_ptr<Client> Connect() { return Client::Unix(socket_path_); }

  // Lets every loop finish what it was doing (a few round trips each).
  void Quiesce() {
    for (int i = 0; i < 3; ++i) {
      for (auto& loop : loops_) RunOn(*loop, [] {});
    }
  }

  std::string dir_;
  std::string socket_path_;
  std::vector<std::unique_ptr<EventLoop>> loops_;
  std::vector<std::thread> threads_;
  std::vector<std::shared_ptr<Head>> heads_;
  TestCatalog catalog_;
  std::unique_ptr<NbdServer> server_;
};

TEST_F(NbdServerTest, GoWithStructuredRepliesWritesAndReadsBackExactBytes) {
  StartLoops(2);
  MemoryPath& disk = AddExport("disk0");
  StartServer();
  auto client = Connect();
  ASSERT_TRUE(client->Go("disk0", /*structured=*/true));
  EXPECT_EQ(client->size(), kCapacity);

  const Bytes data = Pattern(8192, 1);
  client->SendWrite(100, 16384, data);
  auto written = client->ReadReply();
  ASSERT_TRUE(written.has_value());
  EXPECT_EQ(written->cookie, 100u);
  // A success without data goes as a simple reply even with structured replies agreed (the protocol allows it).
  EXPECT_FALSE(written->structured);
  EXPECT_EQ(written->error, 0u);
  EXPECT_TRUE(written->payload.empty());
  EXPECT_EQ(disk.Read(16384, 8192), data);

  client->SendRead(101, 16384 + 512, 4096);
  auto read = client->ReadReply();
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->cookie, 101u);
  auto bytes = client->ReadData(*read, 16384 + 512, 4096);
  ASSERT_TRUE(bytes.has_value());
  EXPECT_EQ(*bytes, Bytes(data.begin() + 512, data.begin() + 512 + 4096));

  const NbdServerStats stats = server_->Stats();
  EXPECT_EQ(stats.connections_accepted, 1u);
  EXPECT_EQ(stats.connections_open, 1u);
  EXPECT_EQ(stats.requests, 2u);
  EXPECT_EQ(stats.request_errors, 0u);
}

TEST_F(NbdServerTest, GoWithSimpleRepliesWritesAndReadsBack) {
  StartLoops(1);
  AddExport("disk0");
  StartServer();
  auto client = Connect();
  ASSERT_TRUE(client->Go("disk0", /*structured=*/false));
  const Bytes data = Pattern(4096, 2);
  auto back = client->WriteRead(1, 4096, data);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, data);
}

TEST_F(NbdServerTest, ExportNameHandshakeServesTheNamedExport) {
  StartLoops(1);
  AddExport("first");
  MemoryPath& second = AddExport("second");
  StartServer();
  second.Fill(0, Pattern(512, 3));
  auto client = Connect();
  ASSERT_TRUE(client->ExportName("second"));
  EXPECT_EQ(client->size(), kCapacity);
  client->SendRead(7, 0, 512);
  auto read = client->ReadReply();
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->error, 0u);
  EXPECT_EQ(read->payload, Pattern(512, 3));
}

TEST_F(NbdServerTest, FuaFlushTrimAndWriteZeroesReachTheDisk) {
  StartLoops(1);
  MemoryPath& disk = AddExport("disk0");
  StartServer();
  auto client = Connect();
  ASSERT_TRUE(client->Go("disk0", true));

  const Bytes data = Pattern(4096, 4);
  client->SendWrite(1, 0, data, kFlagFua);
  auto reply = client->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->error, 0u);
  EXPECT_EQ(disk.fua_writes(), 1u);

  client->SendCommand(kFlush, 2);
  reply = client->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->cookie, 2u);
  EXPECT_FALSE(reply->structured);
  EXPECT_EQ(reply->error, 0u);
  EXPECT_EQ(disk.flushes(), 1u);

  client->SendCommand(kTrim, 3, 0, 1024);
  reply = client->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->error, 0u);
  EXPECT_EQ(disk.Read(0, 1024), Bytes(1024, 0));
  EXPECT_EQ(disk.Read(1024, 3072), Bytes(data.begin() + 1024, data.end()));

  client->SendCommand(kWriteZeroes, 4, 2048, 2048);
  reply = client->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->error, 0u);
  EXPECT_EQ(disk.Read(2048, 2048), Bytes(2048, 0));
  EXPECT_EQ(disk.Read(1024, 1024), Bytes(data.begin() + 1024, data.begin() + 2048));
}

TEST_F(NbdServerTest, PipelinedRequestsCompletedInReverseAreMatchedByCookie) {
  StartLoops(2);
  MemoryPath& disk = AddExport("disk0");
  StartServer();
  for (std::uint32_t i = 0; i < 16; ++i) disk.Fill(i * 4096, Pattern(4096, 100 + i));
  disk.SetMode(MemoryPath::Mode::kHold);
  auto client = Connect();
  ASSERT_TRUE(client->Go("disk0", true));
  for (std::uint32_t i = 0; i < 16; ++i) client->SendRead(1000 + i, i * 4096, 4096);
  ASSERT_TRUE(disk.WaitHeld(16));
  disk.ReleaseHeld(/*reverse=*/true);
  for (std::uint32_t n = 0; n < 16; ++n) {
    auto reply = client->ReadReply();
    ASSERT_TRUE(reply.has_value());
    const std::uint32_t i = 15 - n;  // completion order, not request order
    EXPECT_EQ(reply->cookie, 1000u + i);
    auto data = client->ReadData(*reply, i * 4096, 4096);
    ASSERT_TRUE(data.has_value());
    EXPECT_EQ(*data, Pattern(4096, 100 + i)) << "cookie " << reply->cookie;
  }
}

TEST_F(NbdServerTest, PathErrorBecomesEioWithAMessageAndTheConnectionGoesOn) {
  StartLoops(1);
  MemoryPath& disk = AddExport("disk0");
  StartServer();
  disk.Fill(0, Pattern(512, 5));

  auto structured = Connect();
  ASSERT_TRUE(structured->Go("disk0", true));
  disk.FailNext(1, IoStatus::Of(Errc::kMediumError, "unrecovered read error"));
  structured->SendRead(1, 0, 512);
  auto reply = structured->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->cookie, 1u);
  EXPECT_EQ(reply->type, kChunkError);
  EXPECT_EQ(reply->flags, 1);
  EXPECT_EQ(reply->error, kEio);
  ASSERT_GE(reply->payload.size(), 6u);
  const std::size_t message_length = Get(reply->payload.data() + 4, 2);
  ASSERT_EQ(reply->payload.size(), 6 + message_length);
  const std::string message(reply->payload.begin() + 6, reply->payload.end());
  EXPECT_NE(message.find("medium error"), std::string::npos) << message;
  EXPECT_NE(message.find("unrecovered read error"), std::string::npos) << message;
  structured->SendRead(2, 0, 512);
  reply = structured->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(structured->ReadData(*reply, 0, 512), Pattern(512, 5));

  // Simple replies: the failed read carries no data, so the next reply parses right after its 16 bytes.
  auto simple = Connect();
  ASSERT_TRUE(simple->Go("disk0", false));
  disk.FailNext(1, IoStatus::Of(Errc::kMediumError, "unrecovered read error"));
  simple->SendRead(3, 0, 512);
  simple->SendRead(4, 0, 512);
  reply = simple->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->cookie, 3u);
  EXPECT_EQ(reply->error, kEio);
  EXPECT_TRUE(reply->payload.empty());
  reply = simple->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->cookie, 4u);
  EXPECT_EQ(reply->payload, Pattern(512, 5));
  EXPECT_EQ(server_->Stats().request_errors, 2u);
}

TEST_F(NbdServerTest, InvalidRequestsGetErrorRepliesAndTheConnectionKeepsWorking) {
  StartLoops(1);
  MemoryPath& disk = AddExport("disk0");
  StartServer();
  disk.Fill(0, Pattern(512, 6));
  auto client = Connect();
  ASSERT_TRUE(client->Go("disk0", true));

  client->SendRead(1, kCapacity, 512);  // past the end
  client->SendRead(2, 100, 512);        // unaligned
  client->SendCommand(99, 3);           // unknown command
  client->SendWrite(4, kCapacity - 512, Pattern(1024, 7));  // runs past the end: refused, data dropped
  client->SendRead(5, 0, 512);
  std::map<std::uint64_t, Reply> replies;
  for (int i = 0; i < 5; ++i) {
    auto reply = client->ReadReply();
    ASSERT_TRUE(reply.has_value());
    replies[reply->cookie] = *reply;
  }
  EXPECT_EQ(replies[1].error, kEinval);
  EXPECT_EQ(replies[1].type, kChunkError);
  EXPECT_EQ(replies[2].error, kEinval);
  EXPECT_EQ(replies[3].error, kEinval);
  EXPECT_EQ(replies[4].error, kEnospc);
  EXPECT_EQ(client->ReadData(replies[5], 0, 512), Pattern(512, 6));
  EXPECT_EQ(disk.submitted(), 1u);  // only the good read reached the head
  EXPECT_EQ(server_->Stats().request_errors, 4u);
  EXPECT_EQ(server_->Stats().protocol_violations, 0u);
}

TEST_F(NbdServerTest, BadRequestMagicClosesThatConnectionOnly) {
  StartLoops(2);
  AddExport("disk0");
  StartServer();
  auto bad = Connect();
  auto good = Connect();
  ASSERT_TRUE(bad->Go("disk0", true));
  ASSERT_TRUE(good->Go("disk0", true));
  bad->Send(Client::Request(kRead, 0, 1, 0, 512, /*magic=*/0x12345678));
  EXPECT_TRUE(bad->Closed());
  auto back = good->WriteRead(10, 0, Pattern(512, 8));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, Pattern(512, 8));
  EXPECT_TRUE(Eventually([&] { return server_->Stats().connections_open == 1; }));
  EXPECT_EQ(server_->Stats().protocol_violations, 1u);
}

TEST_F(NbdServerTest, OversizedWriteClosesTheConnection) {
  StartLoops(1);
  AddExport("disk0");
  StartServer();
  auto client = Connect();
  ASSERT_TRUE(client->Go("disk0", true));
  client->Send(Client::Request(kWrite, 0, 1, 0, 64u << 20));  // 64 MiB announced; not a byte of it sent
  EXPECT_TRUE(client->Closed());
  EXPECT_TRUE(Eventually([&] { return server_->Stats().protocol_violations == 1; }));
}

TEST_F(NbdServerTest, ClientThatDoesNotReadStallsOnlyItselfThenGetsEveryReply) {
  StartLoops(2);
  MemoryPath& disk = AddExport("disk0");
  NbdServerOptions options;
  options.requests_per_connection = 4;
  StartServer(options);
  disk.SetMode(MemoryPath::Mode::kDeferred);
  constexpr std::uint32_t kRequests = 200;
  constexpr std::uint32_t kSize = 64 * 1024;
  for (std::uint32_t i = 0; i < kCapacity / kSize; ++i) disk.Fill(i * kSize, Pattern(kSize, 200 + i));

  auto stalled = Connect();
  ASSERT_TRUE(stalled->Go("disk0", true));
  int small = 4096;
  setsockopt(stalled->fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  for (std::uint32_t i = 0; i < kRequests; ++i) stalled->SendRead(i, (i % (kCapacity / kSize)) * kSize, kSize);

  // Its replies fill the socket; it must stop being served, far short of its 200 requests.
  std::uint64_t before = 0;
  ASSERT_TRUE(Eventually([&] {
    const std::uint64_t now = server_->Stats().requests;
    Quiesce();
    const bool settled = now == server_->Stats().requests && now == before;
    before = now;
    return settled;
  }));
  EXPECT_LT(server_->Stats().requests, kRequests);
  // Meanwhile another client is served as usual.
  auto other = Connect();
  ASSERT_TRUE(other->Go("disk0", true));
  auto back = other->WriteRead(5000, 0, Pattern(kSize, 200));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, Pattern(kSize, 200));

  for (std::uint32_t n = 0; n < kRequests; ++n) {
    auto reply = stalled->ReadReply();
    ASSERT_TRUE(reply.has_value()) << "reply " << n;
    const std::uint32_t i = static_cast<std::uint32_t>(reply->cookie);
    auto data = stalled->ReadData(*reply, (i % (kCapacity / kSize)) * kSize, kSize);
    ASSERT_TRUE(data.has_value());
    EXPECT_TRUE(*data == Pattern(kSize, 200 + i % (kCapacity / kSize))) << "cookie " << i;
  }
  EXPECT_LE(disk.max_in_flight(), 4u + 1u);  // this connection's 4, and the other client's one
}

TEST_F(NbdServerTest, ByteBudgetLimitsRequestsInFlight) {
  StartLoops(1);
  MemoryPath& disk = AddExport("disk0");
  NbdServerOptions options;
  options.max_bytes_in_flight = 128 * 1024;
  StartServer(options);
  disk.SetMode(MemoryPath::Mode::kHold);
  auto client = Connect();
  ASSERT_TRUE(client->Go("disk0", true));
  for (std::uint32_t i = 0; i < 8; ++i) client->SendRead(i, 0, 64 * 1024);
  ASSERT_TRUE(disk.WaitHeld(2));
  Quiesce();
  EXPECT_EQ(disk.held(), 2u);  // 2 x 64 KiB reach the budget: the rest wait in the socket
  for (std::uint32_t done = 0; done < 8;) {
    ASSERT_TRUE(disk.WaitHeld(std::min<std::uint32_t>(2, 8 - done)));
    const std::size_t held = disk.held();
    disk.ReleaseHeld(false);
    for (std::size_t k = 0; k < held; ++k) {
      auto reply = client->ReadReply();
      ASSERT_TRUE(reply.has_value());
      EXPECT_EQ(reply->error, 0u);
    }
    done += static_cast<std::uint32_t>(held);
  }
  EXPECT_EQ(disk.max_in_flight(), 2u);
}

TEST_F(NbdServerTest, DisconnectAnswersEverythingInFlightBeforeClosing) {
  StartLoops(1);
  MemoryPath& disk = AddExport("disk0");
  StartServer();
  disk.SetMode(MemoryPath::Mode::kHold);
  auto client = Connect();
  ASSERT_TRUE(client->Go("disk0", true));
  client->SendWrite(1, 0, Pattern(512, 9));
  client->SendRead(2, 4096, 512);
  client->SendCommand(kFlush, 3);
  ASSERT_TRUE(disk.WaitHeld(3));
  client->SendCommand(kDisc, 4);
  Quiesce();
  disk.ReleaseHeld(true);
  std::vector<std::uint64_t> cookies;
  for (int i = 0; i < 3; ++i) {
    auto reply = client->ReadReply();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->error, 0u);
    cookies.push_back(reply->cookie);
  }
  EXPECT_EQ(cookies, (std::vector<std::uint64_t>{3, 2, 1}));
  EXPECT_TRUE(client->Closed());
  EXPECT_EQ(disk.Read(0, 512), Pattern(512, 9));
  EXPECT_TRUE(Eventually([&] { return server_->Stats().connections_open == 0; }));
  EXPECT_EQ(server_->Stats().protocol_violations, 0u);
}

TEST_F(NbdServerTest, StopWaitsForHeldIoAndFailsQueuedIoWithEshutdown) {
  StartLoops(2);
  MemoryPath& disk = AddExport("disk0");
  AddExport("pathless", PathState::kConnecting);  // I/O waits in the head for a path that never comes
  StartServer();
  disk.Fill(0, Pattern(512, 10));
  disk.SetMode(MemoryPath::Mode::kHold);

  auto midway = Connect();  // stopped in the middle of a request header
  ASSERT_TRUE(midway->Go("disk0", true));
  Bytes partial = Client::Request(kRead, 0, 1, 0, 512);
  partial.resize(10);
  midway->Send(partial);
  auto held = Connect();
  ASSERT_TRUE(held->Go("disk0", true));
  held->SendRead(2, 0, 512);
  ASSERT_TRUE(disk.WaitHeld(1));
  auto queued = Connect();
  ASSERT_TRUE(queued->Go("pathless", true));
  queued->SendRead(3, 0, 512);
  Quiesce();

  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    server_->Stop();
    stopped = true;
  });
  EXPECT_TRUE(midway->Closed());
  auto reply = queued->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->cookie, 3u);
  EXPECT_EQ(reply->error, kEshutdown);
  EXPECT_TRUE(queued->Closed());
  EXPECT_FALSE(stopped.load());  // the held read still owns its buffer
  struct stat st{};
  EXPECT_EQ(::lstat(socket_path_.c_str(), &st), 0);

  disk.ReleaseHeld(false);
  stopper.join();
  EXPECT_TRUE(stopped.load());
  reply = held->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->cookie, 2u);
  EXPECT_EQ(held->ReadData(*reply, 0, 512), Pattern(512, 10));
  EXPECT_TRUE(held->Closed());
  EXPECT_EQ(server_->Stats().connections_open, 0u);
  EXPECT_NE(::lstat(socket_path_.c_str(), &st), 0);  // removed on Stop
  server_->Stop();  // idempotent
}

TEST_F(NbdServerTest, ConnectionsOverTheLimitAreRefused) {
  StartLoops(1);
  AddExport("disk0");
  NbdServerOptions options;
  options.max_connections = 1;
  StartServer(options);
  auto first = Connect();
  ASSERT_TRUE(first->Go("disk0", true));
  auto second = Connect();
  EXPECT_TRUE(second->Closed());
  EXPECT_TRUE(Eventually([&] { return server_->Stats().connections_refused == 1; }));
  auto back = first->WriteRead(1, 0, Pattern(512, 11));
  ASSERT_TRUE(back.has_value());
  // Once the first leaves, a new client gets in.
  first.reset();
  ASSERT_TRUE(Eventually([&] { return server_->Stats().connections_open == 0; }));
  auto third = Connect();
  EXPECT_TRUE(third->Go("disk0", false));
}

TEST_F(NbdServerTest, ClientStuckInTheHandshakeIsDroppedAfterTheTimeout) {
  StartLoops(1);
  AddExport("disk0");
  NbdServerOptions options;
  options.handshake_timeout = 100ms;
  StartServer(options);
  auto silent = Connect();
  ASSERT_TRUE(silent->Receive(18).has_value());  // the greeting; then nothing
  EXPECT_TRUE(silent->Closed());
  EXPECT_TRUE(Eventually([&] { return server_->Stats().handshakes_failed == 1; }));
  // A client that finishes in time keeps its connection past the timeout.
  auto prompt = Connect();
  ASSERT_TRUE(prompt->Go("disk0", true));
  ASSERT_TRUE(Eventually([&] { return server_->Stats().handshakes_failed == 1; }));
  auto back = prompt->WriteRead(1, 0, Pattern(512, 12));
  EXPECT_TRUE(back.has_value());
}

TEST_F(NbdServerTest, UnknownExportAndAbortEndTheHandshake) {
  StartLoops(1);
  AddExport("disk0");
  StartServer();
  auto unknown = Connect();
  EXPECT_FALSE(unknown->ExportName("nope"));  // the protocol has no error reply to EXPORT_NAME: it closes
  EXPECT_TRUE(unknown->Closed());
  auto aborting = Connect();
  ASSERT_TRUE(aborting->Greet());
  aborting->SendOption(2, {});
  auto ack = aborting->OptionReply(2);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->first, 1u);
  EXPECT_TRUE(aborting->Closed());
  EXPECT_TRUE(Eventually([&] { return server_->Stats().handshakes_failed == 2; }));
}

TEST_F(NbdServerTest, SteadyStateAllocatesNothingOnTheLoop) {
  StartLoops(1);
  AddExport("disk0");
  StartServer();
  auto client = Connect();
  ASSERT_TRUE(client->Go("disk0", true));
  const Bytes data = Pattern(4096, 13);
  auto round = [&](std::uint64_t cookie) {
    auto back = client->WriteRead(cookie, (cookie % 64) * 4096, data);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, data);
    client->SendCommand(kFlush, cookie + 2);
    auto flushed = client->ReadReply();
    ASSERT_TRUE(flushed.has_value());
    EXPECT_EQ(flushed->error, 0u);
  };
  for (std::uint64_t i = 0; i < 64; ++i) round(i * 4);  // buffers grow here

  EventLoop& loop = *io_loops()[0];
  testing::AllocationScope* scope = nullptr;
  RunOn(loop, [&] { scope = new testing::AllocationScope; });
  for (std::uint64_t i = 64; i < 264; ++i) round(i * 4);
  std::size_t allocations = 0;
  RunOn(loop, [&] {
    allocations = scope->count();
    delete scope;
  });
  EXPECT_EQ(allocations, 0u);
}

TEST_F(NbdServerTest, UnixSocketIsPrivateReplacesAStaleOneAndIsRemovedOnStop) {
  StartLoops(1);
  AddExport("disk0");
  {
    // A stale socket file from a crashed server.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, socket_path_.c_str(), sizeof(address.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    ::close(fd);
  }
  StartServer();
  struct stat st{};
  ASSERT_EQ(::lstat(socket_path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(server_->unix_path(), socket_path_);

  // A second server on the same path is refused while the first serves it.
  NbdServerOptions options;
  options.unix_path = socket_path_;
  auto second = NbdServer::Start(catalog_, accept_loop(), io_loops(), options);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code(), Errc::kAlreadyExists);

  auto client = Connect();
  ASSERT_TRUE(client->Go("disk0", true));
  server_->Stop();
  EXPECT_TRUE(client->Closed());
  EXPECT_NE(::lstat(socket_path_.c_str(), &st), 0);
  EXPECT_EQ(errno, ENOENT);
}

TEST_F(NbdServerTest, RefusesToReplaceAFileThatIsNotASocket) {
  StartLoops(1);
  AddExport("disk0");
  const int fd = ::open(socket_path_.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ::close(fd);
  NbdServerOptions options;
  options.unix_path = socket_path_;
  auto server = NbdServer::Start(catalog_, accept_loop(), io_loops(), options);
  ASSERT_FALSE(server.has_value());
  EXPECT_EQ(server.error().code(), Errc::kAlreadyExists);
  struct stat st{};
  ASSERT_EQ(::lstat(socket_path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(NbdServerTest, ServesOverTcpOnAPickedPort) {
  StartLoops(2);
  MemoryPath& disk = AddExport("disk0");
  NbdServerOptions options;
  options.tcp = NbdServerOptions::Tcp{"127.0.0.1", 0};
  StartServer(options);
  ASSERT_NE(server_->tcp_port(), 0);
  auto client = Client::Tcp(server_->tcp_port());
  ASSERT_TRUE(client->Go("disk0", true));
  const Bytes data = Pattern(65536, 14);
  auto back = client->WriteRead(1, 65536, data);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, data);
  EXPECT_EQ(disk.Read(65536, 65536), data);
}

TEST_F(NbdServerTest, StartRefusesBadOptionsWithAReason) {
  StartLoops(1);
  AddExport("disk0");
  NbdServerOptions none;
  auto server = NbdServer::Start(catalog_, accept_loop(), io_loops(), none);
  ASSERT_FALSE(server.has_value());
  EXPECT_EQ(server.error().code(), Errc::kInvalidArgument);

  NbdServerOptions bad_address;
  bad_address.tcp = NbdServerOptions::Tcp{"localhost.invalid", 0};
  server = NbdServer::Start(catalog_, accept_loop(), io_loops(), bad_address);
  ASSERT_FALSE(server.has_value());
  EXPECT_NE(server.error().message().find("not an IPv4 or IPv6 literal"), std::string::npos);

  NbdServerOptions no_loops;
  no_loops.unix_path = socket_path_;
  server = NbdServer::Start(catalog_, accept_loop(), {}, no_loops);
  ASSERT_FALSE(server.has_value());
}


// ---- Requests larger than the head's limits go down in pieces (Head::limits).

constexpr std::uint32_t kPiece = 16 * 1024;         // the path's largest read or write
constexpr std::uint64_t kZeroingPiece = 32 * 1024;  // its largest trim or write zeroes

// The commands a request of `length` bytes at `offset` becomes when cut into pieces of at most `piece` bytes.
std::vector<MemoryPath::Command> Pieces(IoOp op, std::uint64_t offset, std::uint64_t length, std::uint64_t piece) {
  std::vector<MemoryPath::Command> out;
  for (std::uint64_t done = 0; done < length; done += piece) {
    out.push_back({op, offset + done, static_cast<std::uint32_t>(std::min(piece, length - done))});
  }
  return out;
}

// Each test runs with the path completing inside Submit and with it completing later from the loop.
class NbdSplitTest : public NbdServerTest, public ::testing::WithParamInterface<MemoryPath::Mode> {
 protected:
  MemoryPath& AddLimitedExport(std::uint64_t capacity = 2 * kCapacity, std::uint32_t transfer = kPiece,
                               std::uint64_t zeroing = kZeroingPiece) {
    MemoryPath& disk = AddExport("disk0", PathState::kLive, Shape{capacity, transfer, zeroing});
    disk.SetMode(GetParam());
    disk.RecordCommands();
    return disk;
  }
};

TEST_P(NbdSplitTest, LargeWriteAndReadGoDownInPiecesAndMoveExactBytes) {
  StartLoops(1);
  MemoryPath& disk = AddLimitedExport();
  StartServer();
  EXPECT_EQ(heads_[0]->limits(), (IoLimits{kPiece, kZeroingPiece}));
  auto client = Connect();
  ASSERT_TRUE(client->Go("disk0", true));

  constexpr std::uint64_t kAt = 512 * 1024;
  const Bytes data = Pattern(1 << 20, 20);
  client->SendWrite(1, kAt, data);
  auto reply = client->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->cookie, 1u);
  EXPECT_EQ(reply->error, 0u);
  EXPECT_FALSE(reply->structured);
  EXPECT_TRUE(disk.Read(kAt, data.size()) == data);
  const auto writes = disk.TakeCommands();
  EXPECT_EQ(writes.size(), 64u);
  EXPECT_EQ(writes, Pieces(IoOp::kWrite, kAt, data.size(), kPiece)) << "in order, 16 KiB each, back to back";

  client->SendRead(2, kAt, 1 << 20);
  reply = client->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->cookie, 2u);
  auto back = client->ReadData(*reply, kAt, 1 << 20);
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(*back == data);
  EXPECT_EQ(disk.TakeCommands(), Pieces(IoOp::kRead, kAt, data.size(), kPiece));

  // A length that is not a multiple of the piece ends with a shorter one; simple replies carry the same bytes.
  auto simple = Connect();
  ASSERT_TRUE(simple->Go("disk0", false));
  const Bytes odd = Pattern(2 * kPiece + 8 * kBlock + kBlock, 21);
  auto odd_back = simple->WriteRead(3, kBlock, odd);
  ASSERT_TRUE(odd_back.has_value());
  EXPECT_TRUE(*odd_back == odd);
  auto odd_commands = disk.TakeCommands();
  auto expected = Pieces(IoOp::kWrite, kBlock, odd.size(), kPiece);
  for (const auto& read : Pieces(IoOp::kRead, kBlock, odd.size(), kPiece)) expected.push_back(read);
  EXPECT_EQ(odd_commands, expected);
  EXPECT_EQ(expected[2].length, 9 * kBlock);

  // A request within the limit is one command.
  auto small = client->WriteRead(4, 0, Pattern(kPiece, 22));
  ASSERT_TRUE(small.has_value());
  const std::vector<MemoryPath::Command> one_each = {{IoOp::kWrite, 0, kPiece}, {IoOp::kRead, 0, kPiece}};
  EXPECT_EQ(disk.TakeCommands(), one_each);
  EXPECT_EQ(server_->Stats().request_errors, 0u);
}

TEST_P(NbdSplitTest, APieceFailingEndsTheRequestWithOneErrorAndNoMorePieces) {
  StartLoops(1);
  MemoryPath& disk = AddLimitedExport();
  StartServer();
  const Bytes before = Pattern(1 << 20, 23);
  disk.Fill(0, before);
  auto client = Connect();
  ASSERT_TRUE(client->Go("disk0", true));

  // The third command of the write fails.
  disk.FailAfter(2, IoStatus::Of(Errc::kMediumError, "write fault"));
  const Bytes data = Pattern(1 << 20, 24);
  client->SendWrite(1, 0, data);
  auto reply = client->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->cookie, 1u);
  EXPECT_EQ(reply->type, kChunkError);
  EXPECT_EQ(reply->error, kEio);
  Quiesce();
  EXPECT_EQ(disk.TakeCommands(), Pieces(IoOp::kWrite, 0, 3 * kPiece, kPiece)) << "nothing after the failed piece";
  EXPECT_TRUE(disk.Read(0, 2 * kPiece) == Bytes(data.begin(), data.begin() + 2 * kPiece));
  EXPECT_TRUE(disk.Read(2 * kPiece, before.size() - 2 * kPiece) == Bytes(before.begin() + 2 * kPiece, before.end()));

  // A read failing half way: one error reply and no data; the next reply on the connection is the next request's.
  disk.FailAfter(5, IoStatus::Of(Errc::kMediumError, "unrecovered read error"));
  client->SendRead(2, 0, 1 << 20);
  reply = client->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->cookie, 2u);
  EXPECT_EQ(reply->type, kChunkError);
  EXPECT_EQ(reply->error, kEio);
  Quiesce();
  EXPECT_EQ(disk.TakeCommands(), Pieces(IoOp::kRead, 0, 6 * kPiece, kPiece));

  // The connection goes on: the whole write and read succeed now.
  auto back = client->WriteRead(3, 0, data);
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(*back == data);
  EXPECT_EQ(disk.submitted(), 3u + 6u + 64u + 64u);
  EXPECT_EQ(server_->Stats().request_errors, 2u);
  EXPECT_EQ(server_->Stats().connections_open, 1u);
}

TEST_P(NbdSplitTest, TrimAndWriteZeroesSplitAtTheZeroingLimit) {
  StartLoops(1);
  MemoryPath& disk = AddLimitedExport();
  StartServer();
  const Bytes data = Pattern(1 << 20, 25);
  disk.Fill(0, data);
  auto client = Connect();
  ASSERT_TRUE(client->Go("disk0", true));

  client->SendCommand(kTrim, 1, 64 * 1024, 256 * 1024);
  auto reply = client->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->error, 0u);
  EXPECT_EQ(disk.TakeCommands(), Pieces(IoOp::kDiscard, 64 * 1024, 256 * 1024, kZeroingPiece));

  constexpr std::uint32_t kZeroes = 100 * 1024;  // three whole pieces and a 4 KiB one
  client->SendCommand(kWriteZeroes, 2, 512 * 1024, kZeroes);
  reply = client->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->error, 0u);
  const auto zeroes = disk.TakeCommands();
  EXPECT_EQ(zeroes, Pieces(IoOp::kWriteZeroes, 512 * 1024, kZeroes, kZeroingPiece));
  ASSERT_EQ(zeroes.size(), 4u);
  EXPECT_EQ(zeroes[3].length, 4096u);

  EXPECT_TRUE(disk.Read(0, 64 * 1024) == Bytes(data.begin(), data.begin() + 64 * 1024));
  EXPECT_TRUE(disk.Read(64 * 1024, 256 * 1024) == Bytes(256 * 1024, 0));
  EXPECT_TRUE(disk.Read(320 * 1024, 192 * 1024) == Bytes(data.begin() + 320 * 1024, data.begin() + 512 * 1024));
  EXPECT_TRUE(disk.Read(512 * 1024, kZeroes) == Bytes(kZeroes, 0));
  const auto after = data.begin() + 512 * 1024 + kZeroes;
  EXPECT_TRUE(disk.Read(512 * 1024 + kZeroes, 1024) == Bytes(after, after + 1024));
}

// A path that joins the head after the client connected, with tighter limits than the head had: the connection's
// pieces follow the head's new limits instead of being refused.
TEST_P(NbdSplitTest, LimitsTightenedAfterTheClientConnectedAreFollowed) {
  StartLoops(1);
  MemoryPath& first = AddLimitedExport(2 * kCapacity, 4 * kPiece, 4 * kZeroingPiece);
  StartServer();
  auto client = Connect();
  ASSERT_TRUE(client->Go("disk0", true));
  const Bytes data = Pattern(256 * 1024, 26);
  client->SendWrite(1, 0, data);
  auto reply = client->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->error, 0u);
  EXPECT_EQ(first.TakeCommands(), Pieces(IoOp::kWrite, 0, data.size(), 4 * kPiece));

  // The second path reaches the same disk: it hands every command to the first one, which records them all.
  // Threading: as the path it forwards to.
  class Forward final : public PathDriver {
   public:
    explicit Forward(PathDriver& to) : to_(to) {}
    void Submit(IoRequest& io) override { to_.Submit(io); }

   private:
    PathDriver& to_;
  };
  DeviceInfo info = testing::NullPathInfo("disk0-p1", heads_[0]->identity(), 2 * kCapacity, kBlock);
  info.max_transfer_bytes = kPiece;
  info.max_zeroing_bytes = kZeroingPiece;
  ASSERT_TRUE(heads_[0]->AddPath(info, std::make_unique<Forward>(first)).has_value());
  EXPECT_EQ(heads_[0]->limits(), (IoLimits{kPiece, kZeroingPiece}));

  client->SendWrite(2, 0, data);
  reply = client->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->cookie, 2u);
  EXPECT_EQ(reply->error, 0u) << "a piece sized by the old limits was refused";
  EXPECT_EQ(first.TakeCommands(), Pieces(IoOp::kWrite, 0, data.size(), kPiece));
  client->SendCommand(kWriteZeroes, 3, 0, 128 * 1024);
  reply = client->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->error, 0u);
  EXPECT_EQ(first.TakeCommands(), Pieces(IoOp::kWriteZeroes, 0, 128 * 1024, kZeroingPiece));
  EXPECT_TRUE(first.Read(0, 128 * 1024) == Bytes(128 * 1024, 0));
  EXPECT_TRUE(first.Read(128 * 1024, 128 * 1024) == Bytes(data.begin() + 128 * 1024, data.end()));
  EXPECT_EQ(server_->Stats().request_errors, 0u);
}

INSTANTIATE_TEST_SUITE_P(Completions, NbdSplitTest,
                         ::testing::Values(MemoryPath::Mode::kInline, MemoryPath::Mode::kDeferred),
                         [](const ::testing::TestParamInfo<MemoryPath::Mode>& info) {
                           return info.param == MemoryPath::Mode::kInline ? "Inline" : "Deferred";
                         });

// Stop() while a split write has a piece held in the path: Stop waits for that piece, sends no further one, and the
// request is answered with ESHUTDOWN.
TEST_F(NbdServerTest, StopWhileASplitRequestIsMidwayFinishesCleanly) {
  StartLoops(1);
  MemoryPath& disk = AddExport("disk0", PathState::kLive, Shape{kCapacity, kPiece, kZeroingPiece});
  disk.RecordCommands();
  StartServer();
  disk.SetMode(MemoryPath::Mode::kHold);
  auto client = Connect();
  ASSERT_TRUE(client->Go("disk0", true));
  auto negotiating = Connect();  // on the same loop; Stop closes it at once, which shows Stop has been there
  ASSERT_TRUE(negotiating->Greet());
  const Bytes data = Pattern(4 * kPiece, 27);
  client->SendWrite(1, 0, data);
  ASSERT_TRUE(disk.WaitHeld(1));

  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    server_->Stop();
    stopped = true;
  });
  EXPECT_TRUE(negotiating->Closed());
  Quiesce();
  EXPECT_FALSE(stopped.load()) << "the held piece still owns the request's buffer";
  EXPECT_EQ(disk.held(), 1u);

  disk.ReleaseHeld(false);
  stopper.join();
  EXPECT_TRUE(stopped.load());
  EXPECT_EQ(disk.TakeCommands(), (std::vector<MemoryPath::Command>{{IoOp::kWrite, 0, kPiece}}));
  EXPECT_TRUE(disk.Read(0, kPiece) == Bytes(data.begin(), data.begin() + kPiece));
  EXPECT_TRUE(disk.Read(kPiece, 3 * kPiece) == Bytes(3 * kPiece, 0));
  auto reply = client->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->cookie, 1u);
  EXPECT_EQ(reply->error, kEshutdown);
  EXPECT_TRUE(client->Closed());
  EXPECT_EQ(server_->Stats().connections_open, 0u);
}

// 32 MiB in 512-byte pieces is 65536 pieces; a path completing each one inside Submit must not make the connection
// recurse once per piece (that many nested frames overflow the loop thread's stack).
TEST_F(NbdServerTest, ManyInlinePiecesDoNotRecurse) {
  constexpr std::uint64_t kBig = 32u << 20;
  StartLoops(1);
  MemoryPath& disk = AddExport("disk0", PathState::kLive, Shape{kBig, kBlock, kBlock});
  disk.RecordCommands();
  StartServer();
  const Bytes data = Pattern(kBig, 28);
  disk.Fill(0, data);
  auto client = Connect();
  ASSERT_TRUE(client->Go("disk0", true));
  client->SendRead(1, 0, static_cast<std::uint32_t>(kBig));
  auto reply = client->ReadReply();
  ASSERT_TRUE(reply.has_value());
  auto back = client->ReadData(*reply, 0, static_cast<std::uint32_t>(kBig));
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(*back == data);
  const auto commands = disk.TakeCommands();
  ASSERT_EQ(commands.size(), kBig / kBlock);
  for (std::size_t i = 0; i < commands.size(); ++i) {
    if (commands[i] != MemoryPath::Command{IoOp::kRead, i * kBlock, kBlock}) {
      ADD_FAILURE() << "command " << i << " at " << commands[i].offset << " of " << commands[i].length;
      break;
    }
  }

  // And the write direction, whose data arrives straight into the slot.
  const Bytes other = Pattern(kBig, 29);
  client->SendWrite(2, 0, other);
  reply = client->ReadReply();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->error, 0u);
  EXPECT_EQ(disk.TakeCommands().size(), kBig / kBlock);
  EXPECT_TRUE(disk.Read(0, kBig) == other);
}

}  // namespace
}  // namespace mpath::nbd
