// The NVMe path driver against the simulated subsystem: real SQEs in, real data and CQEs out. Each IoOp's SQE is
// checked field by field at the controller, data written on one path is read back on another, every ANA state's
// answer reaches the observer and the classifier, link faults and hangs become path errors, a CQE's CRD selects the
// controller's CRDT, passthrough reaches the admin queue with its answer, refusals never reach the transport, and a
// core Head over two drivers fails over from an inaccessible group with nothing surfaced. The last tests count heap
// allocations on the submitting thread (this binary replaces operator new) to prove the I/O path allocates nothing.
#include "mpath/nvme/path_driver.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mpath/core/executor.h"
#include "mpath/core/head.h"
#include "mpath/core/head_channel.h"
#include "mpath/core/head_options.h"
#include "mpath/core/personality.h"
#include "mpath/nvme/classify.h"
#include "mpath/nvme/fake/subsystem.h"
#include "mpath/nvme/raw_status.h"
#include "mpath/nvme/spec/identify.h"
#include "mpath/nvme/spec/nvm_io.h"
#include "mpath/nvme/spec/opcodes.h"
#include "mpath/nvme/spec/status.h"
#include "mpath/proto/wire.h"
#include "mpath/sim/san.h"
#include "mpath/testing/allocation_scope.h"
#include "mpath/testing/manual_executor.h"


namespace mpath::nvme {
namespace {

using namespace std::chrono_literals;
using spec::AnaState;
using spec::Dnr;
using spec::GenericStatus;
using spec::IoOpcode;
using spec::MakeStatus;
using spec::More;
using spec::PathStatus;

constexpr std::uint32_t kNsid = 1;
constexpr std::uint32_t kGroup = 1;  // the namespace's ANA group
constexpr std::uint32_t kBlock = 512;
constexpr std::uint64_t kBlocks = 4096;
constexpr std::uint64_t kCapacity = kBlocks * kBlock;
constexpr std::uint32_t kMdtsBytes = 4096u << 5;  // the simulated subsystem's MDTS 5
constexpr std::uint8_t kRead = spec::Raw(IoOpcode::kRead);
constexpr std::uint8_t kWrite = spec::Raw(IoOpcode::kWrite);
constexpr std::uint8_t kFlush = spec::Raw(IoOpcode::kFlush);
constexpr std::uint8_t kWriteZeroes = spec::Raw(IoOpcode::kWriteZeroes);
constexpr std::uint8_t kDsm = spec::Raw(IoOpcode::kDatasetManagement);
constexpr std::uint8_t kIdentify = spec::Raw(spec::AdminOpcode::kIdentify);

// One request outside any head: its own context, completion recorded. Threading: one thread.
struct Request {
  Request() {
    io.AttachDriverContext(context, sizeof(context));
    io.OnComplete(&Request::Done, this);
    io.RouteToSubmitter();
  }
  Request(IoOp op, std::uint64_t offset, std::uint32_t length, std::byte* data = nullptr) : Request() {
    io.op = op;
    io.offset = offset;
    io.length = length;
    io.data = data;
  }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  static void Done(IoRequest& io, void* arg) {
    auto* self = static_cast<Request*>(arg);
    ++self->completions;
    self->status = io.status;
  }
  [[nodiscard]] bool done() const { return completions > 0; }
  [[nodiscard]] Decision decision() const { return ClassifyNvme(io, status); }
  [[nodiscard]] std::string describe() const {
    return std::string(ErrcName(status.code)) + " '" + status.context + "': " + DescribeRawStatus(status.raw);
  }

  IoRequest io;
  alignas(64) std::byte context[256];
  int completions = 0;
  IoStatus status;
};

// Submits on `executor`'s behalf (so that CurrentExecutor() names it) and runs what it has to run.
void Submit(PathDriver& driver, Request& request, mpath::testing::ManualExecutor& executor) {
  ScopedCurrentExecutor current(&executor);
  driver.Submit(request.io);
  executor.RunUntilIdle();
}

// Forwards to a transport and counts the commands that reach it. Threading: as the wrapped transport.
class CountingTransport final : public NvmeTransport {
 public:
  explicit CountingTransport(NvmeTransport& inner) : inner_(inner) {}
  void Submit(NvmeCommand& command) override {
    count_.fetch_add(1, std::memory_order_relaxed);
    inner_.Submit(command);
  }
  [[nodiscard]] std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  NvmeTransport& inner_;
  std::atomic<std::uint64_t> count_{0};
};

// Records the ANA statuses it is told of, and whether the watched request had completed by then.
// Threading: safe from any thread.
class RecordingObserver final : public NvmePathObserver {
 public:
  void OnAnaStatus(std::uint16_t status_code) override {
    std::lock_guard lock(mu_);
    codes_.push_back(status_code);
    completed_when_told_.push_back(watched_ != nullptr && watched_->done());
  }
  void Watch(const Request* request) {
    std::lock_guard lock(mu_);
    watched_ = request;
  }
  std::vector<std::uint16_t> Take() {
    std::lock_guard lock(mu_);
    return std::exchange(codes_, {});
  }
  [[nodiscard]] std::vector<bool> completed_when_told() const {
    std::lock_guard lock(mu_);
    return completed_when_told_;
  }

 private:
  mutable std::mutex mu_;
  const Request* watched_ = nullptr;
  std::vector<std::uint16_t> codes_;
  std::vector<bool> completed_when_told_;
};

std::vector<std::byte> Pattern(std::size_t size, std::uint8_t seed) {
  std::vector<std::byte> out(size);
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<std::byte>((i * 131 + seed * 7 + (i >> 9)) & 0xFF);
  return out;
}

bool AllZero(const std::vector<std::byte>& bytes) {
  for (std::byte b : bytes) {
    if (b != std::byte{0}) return false;
  }
  return true;
}

spec::Status WithCrd(spec::Status status, std::uint8_t crd) {
  return spec::Status{wire::SetBits<12, 11>(status.field, std::uint16_t{crd})};
}

// What one command looked like when it reached the controller.
struct Seen {
  spec::SubmissionQueueEntry sqe{};
  QueueKind queue = QueueKind::kIo;
  DataDirection direction = DataDirection::kNone;
  std::vector<std::byte> data_out;
  std::size_t data_size = 0;
  Nanos timeout{0};
  Executor* executor = nullptr;
};

// The simulated SAN of the driver tests: one subsystem, ports 1 and 2, one namespace in ANA group 1 (optimized on
// both ports until a test says otherwise), controllers of one host.
class NvmePathDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto san = sim::SimSan::Create({.clock = &clock_, .seed = 5});
    ASSERT_TRUE(san.has_value());
    san_ = std::move(*san);
    auto subsystem = san_->AddNvmeSubsystem("subsys0", {});
    ASSERT_TRUE(subsystem.has_value()) << subsystem.error().ToString();
    subsystem_ = *subsystem;
    ASSERT_TRUE(subsystem_->AddPort(1).has_value());
    ASSERT_TRUE(subsystem_->AddPort(2).has_value());
    fake::NamespaceConfig ns{.nsid = kNsid, .blocks = kBlocks, .block_size = kBlock, .nguid = {}, .eui64 = {},
                             .uuid = {}, .ana_group = kGroup, .shared = true};
    ns.nguid[0] = 0x6C;
    ns.nguid[15] = 0x01;
    ASSERT_TRUE(subsystem_->AddNamespace(ns).has_value());
  }

  NvmeTransport& Connect(const std::string& name, std::uint16_t port) {
    std::array<std::uint8_t, 16> host_id{};
    host_id.fill(0xA1);
    auto path = san_->ConnectNvme({.name = name, .subsystem = "subsys0",
                                   .host_nqn = "nqn.2014-08.org.nvmexpress:uuid:mpath-host", .host_id = host_id,
                                   .port = port});
    EXPECT_TRUE(path.has_value()) << path.error().ToString();
    return **path;
  }

  sim::LinkFaults& Faults(const std::string& name) { return **san_->Faults(name); }

  std::unique_ptr<NvmePathDriver> MakeDriver(NvmeTransport& transport, const NvmePathDriverOptions& options = {},
                                             NvmePathObserver* observer = nullptr, std::uint64_t blocks = kBlocks) {
    auto driver = NvmePathDriver::Create(transport, kNsid, kBlock, blocks, options, observer);
    EXPECT_TRUE(driver.has_value()) << driver.error().ToString();
    return std::move(*driver);
  }

  // Captures every command of `opcode` on `queue`, then lets the controller answer it as usual.
  void Capture(QueueKind queue, std::uint8_t opcode) {
    subsystem_->SetHandler(queue, opcode, [this](fake::CommandContext& context) {
      const NvmeCommand& c = context.command;
      Seen seen;
      seen.sqe = c.sqe;
      seen.queue = c.queue;
      seen.direction = c.direction;
      seen.data_size = c.data.size();
      if (c.direction == DataDirection::kToController) seen.data_out.assign(c.data.begin(), c.data.end());
      seen.timeout = c.timeout;
      seen.executor = c.executor;
      seen_.push_back(std::move(seen));  // handlers run one at a time, under the subsystem's lock
      context.subsystem.DefaultHandler(context);
    });
  }

  IoStatus Write(PathDriver& driver, std::uint64_t offset, std::vector<std::byte>& data, bool fua = false) {
    Request r(IoOp::kWrite, offset, static_cast<std::uint32_t>(data.size()), data.data());
    r.io.fua = fua;
    Submit(driver, r, executor_);
    EXPECT_EQ(r.completions, 1);
    return r.status;
  }

  std::vector<std::byte> Read(PathDriver& driver, std::uint64_t offset, std::size_t length) {
    std::vector<std::byte> data(length);
    Request r(IoOp::kRead, offset, static_cast<std::uint32_t>(length), data.data());
    Submit(driver, r, executor_);
    EXPECT_EQ(r.completions, 1);
    EXPECT_TRUE(r.status.ok()) << r.describe();
    return data;
  }

  // Every I/O-queue and admin-queue opcode the driver could send, as the subsystem counted them.
  [[nodiscard]] std::uint64_t CommandsSeen() const {
    std::uint64_t total = 0;
    for (unsigned opcode = 0; opcode <= 0xFF; ++opcode) {
      total += subsystem_->CommandCount(QueueKind::kIo, static_cast<std::uint8_t>(opcode));
      total += subsystem_->CommandCount(QueueKind::kAdmin, static_cast<std::uint8_t>(opcode));
    }
    return total;
  }

  ManualClock clock_;
  mpath::testing::ManualExecutor executor_{clock_};
  std::unique_ptr<sim::SimSan> san_;
  fake::Subsystem* subsystem_ = nullptr;
  std::vector<Seen> seen_;
};

TEST_F(NvmePathDriverTest, BytesWrittenThroughOneControllerReadBackThroughAnother) {
  auto a = MakeDriver(Connect("c1", 1));
  auto b = MakeDriver(Connect("c2", 2));
  std::vector<std::byte> out = Pattern(8 * kBlock, 3);
  ASSERT_TRUE(Write(*a, 100 * kBlock, out).ok());
  EXPECT_EQ(Read(*b, 100 * kBlock, out.size()), out);
  // And the other way, at the last blocks of the namespace, with FUA.
  std::vector<std::byte> tail = Pattern(2 * kBlock, 9);
  ASSERT_TRUE(Write(*b, kCapacity - tail.size(), tail, /*fua=*/true).ok());
  EXPECT_EQ(Read(*a, kCapacity - tail.size(), tail.size()), tail);
  // The largest transfer MDTS allows goes in one command.
  std::vector<std::byte> big = Pattern(kMdtsBytes, 4);
  ASSERT_TRUE(Write(*a, 0, big).ok());
  EXPECT_EQ(Read(*b, 0, big.size()), big);
}

TEST_F(NvmePathDriverTest, EachOperationsSqeFieldByField) {
  auto driver = MakeDriver(Connect("c1", 1), {.write_zeroes = true, .deallocate = true, .command_timeout = 7s});
  for (std::uint8_t opcode : {kRead, kWrite, kFlush, kWriteZeroes, kDsm}) Capture(QueueKind::kIo, opcode);
  std::vector<std::byte> buffer(8 * kBlock);
  const std::uint64_t lba = 0x234;

  auto run = [&](IoOp op, bool fua = false, std::uint32_t length = 8 * kBlock) -> const Seen& {
    const std::size_t before = seen_.size();
    Request r(op, lba * kBlock, length, buffer.data());
    r.io.fua = fua;
    Submit(*driver, r, executor_);
    EXPECT_EQ(r.completions, 1);
    EXPECT_TRUE(r.status.ok()) << r.describe();
    EXPECT_EQ(seen_.size(), before + 1);
    return seen_.back();
  };

  const Seen& read = run(IoOp::kRead);
  EXPECT_EQ(read.sqe.opc, kRead);
  EXPECT_EQ(read.queue, QueueKind::kIo);
  EXPECT_EQ(read.sqe.nsid.value(), kNsid);
  EXPECT_EQ(read.sqe.cdw10.value(), lba);
  EXPECT_EQ(read.sqe.cdw11.value(), 0u);
  EXPECT_EQ(read.sqe.cdw12.value(), 7u) << "NLB is 0-based; no FUA on a read";
  EXPECT_EQ(read.direction, DataDirection::kFromController);
  EXPECT_EQ(read.data_size, 8 * kBlock);
  EXPECT_EQ(read.timeout, 7s);
  // FUA is a write flag; a read never carries it.
  EXPECT_EQ(run(IoOp::kRead, /*fua=*/true).sqe.cdw12.value(), 7u);

  const Seen& write = run(IoOp::kWrite);
  EXPECT_EQ(write.sqe.opc, kWrite);
  EXPECT_EQ(write.sqe.cdw12.value(), 7u);
  EXPECT_EQ(write.direction, DataDirection::kToController);
  const Seen& write_fua = run(IoOp::kWrite, /*fua=*/true);
  EXPECT_EQ(write_fua.sqe.cdw12.value(), (1u << 30) | 7u) << "FUA is CDW12 bit 30";
  EXPECT_TRUE(spec::DecodeReadWrite(write_fua.sqe).fua);

  const Seen& flush = run(IoOp::kFlush, false, 0);
  EXPECT_EQ(flush.sqe.opc, kFlush);
  EXPECT_EQ(flush.sqe.nsid.value(), kNsid);
  EXPECT_EQ(flush.direction, DataDirection::kNone);
  EXPECT_EQ(flush.data_size, 0u);

  const Seen& probe = run(IoOp::kProbe, false, 0);
  EXPECT_EQ(probe.sqe.opc, kFlush);
  EXPECT_EQ(probe.queue, QueueKind::kIo);

  const Seen& zeroes = run(IoOp::kWriteZeroes);
  EXPECT_EQ(zeroes.sqe.opc, kWriteZeroes);
  EXPECT_EQ(zeroes.sqe.cdw10.value(), lba);
  EXPECT_EQ(zeroes.sqe.cdw12.value(), 7u);
  EXPECT_EQ(zeroes.direction, DataDirection::kNone);
  EXPECT_EQ(zeroes.data_size, 0u);

  const Seen& dsm = run(IoOp::kDiscard);
  EXPECT_EQ(dsm.sqe.opc, kDsm);
  EXPECT_EQ(dsm.sqe.cdw10.value(), 0u) << "NR is 0-based: one range";
  EXPECT_EQ(dsm.sqe.cdw11.value(), 1u << 2) << "AD (deallocate), CDW11 bit 2";
  EXPECT_EQ(dsm.direction, DataDirection::kToController);
  const std::uint8_t expected_range[16] = {0, 0, 0, 0,                 // context attributes
                                           8, 0, 0, 0,                 // 8 blocks, 1-based
                                           0x34, 0x02, 0, 0, 0, 0, 0, 0};  // SLBA 0x234
  ASSERT_EQ(dsm.data_out.size(), sizeof(expected_range));
  EXPECT_EQ(std::memcmp(dsm.data_out.data(), expected_range, sizeof(expected_range)), 0);

  // An LBA above 2^32 lands in CDW11 (a driver told of a huge namespace; the range is checked by the controller).
  auto huge = MakeDriver(Connect("c2", 1), {}, nullptr, std::uint64_t{1} << 40);
  Request far(IoOp::kRead, ((std::uint64_t{5} << 32) | 9) * kBlock, kBlock, buffer.data());
  Submit(*huge, far, executor_);
  EXPECT_EQ(far.status.code, Errc::kOutOfRange) << far.describe();  // the controller's LBA Out of Range, DNR
  EXPECT_EQ(far.decision().disposition, Disposition::kFailUp);
  EXPECT_EQ(seen_.back().sqe.cdw10.value(), 9u);
  EXPECT_EQ(seen_.back().sqe.cdw11.value(), 5u);
  EXPECT_EQ(seen_.back().timeout, Nanos(0)) << "no driver timeout: the transport's default";
}

TEST_F(NvmePathDriverTest, FlushAndProbeReachTheNamespace) {
  auto driver = MakeDriver(Connect("c1", 1));
  const std::uint64_t before = subsystem_->CommandCount(QueueKind::kIo, kFlush);
  Request flush(IoOp::kFlush, 0, 0);
  Submit(*driver, flush, executor_);
  EXPECT_TRUE(flush.status.ok()) << flush.describe();
  Request probe(IoOp::kProbe, 0, 0);
  Submit(*driver, probe, executor_);
  EXPECT_TRUE(probe.status.ok()) << probe.describe();
  EXPECT_EQ(subsystem_->CommandCount(QueueKind::kIo, kFlush), before + 2);
}

TEST_F(NvmePathDriverTest, WriteZeroesZeroesExactlyTheRange) {
  auto driver = MakeDriver(Connect("c1", 1), {.write_zeroes = true});
  std::vector<std::byte> data = Pattern(32 * kBlock, 5);
  ASSERT_TRUE(Write(*driver, 0, data).ok());
  Request zero(IoOp::kWriteZeroes, 8 * kBlock, 16 * kBlock);
  Submit(*driver, zero, executor_);
  ASSERT_TRUE(zero.status.ok()) << zero.describe();
  std::vector<std::byte> expected = data;
  std::fill(expected.begin() + 8 * kBlock, expected.begin() + 24 * kBlock, std::byte{0});
  EXPECT_EQ(Read(*driver, 0, data.size()), expected);
}

TEST_F(NvmePathDriverTest, DeallocateReadsBackZeroes) {
  auto driver = MakeDriver(Connect("c1", 1), {.deallocate = true});
  std::vector<std::byte> data = Pattern(256 * kBlock, 6);
  ASSERT_TRUE(Write(*driver, 0, data).ok());
  const std::uint64_t before = subsystem_->CommandCount(QueueKind::kIo, kDsm);
  Request discard(IoOp::kDiscard, 64 * kBlock, 128 * kBlock);
  Submit(*driver, discard, executor_);
  ASSERT_TRUE(discard.status.ok()) << discard.describe();
  EXPECT_EQ(subsystem_->CommandCount(QueueKind::kIo, kDsm), before + 1);
  const std::vector<std::byte> back = Read(*driver, 0, data.size());
  EXPECT_TRUE(AllZero({back.begin() + 64 * kBlock, back.begin() + 192 * kBlock}));
  EXPECT_TRUE(std::equal(back.begin(), back.begin() + 64 * kBlock, data.begin()));
  EXPECT_TRUE(std::equal(back.begin() + 192 * kBlock, back.end(), data.begin() + 192 * kBlock));
}

TEST_F(NvmePathDriverTest, RefusalsNeverReachTheTransport) {
  CountingTransport counting(Connect("c1", 1));
  CountingTransport counting_big(Connect("c2", 1));
  auto driver = MakeDriver(counting, {.max_transfer_bytes = kMdtsBytes});
  auto no_options = MakeDriver(counting);
  // A namespace large enough that 65537 blocks fit in it, with no MDTS: only NLB limits the command.
  auto big = MakeDriver(counting_big, {.write_zeroes = true}, nullptr, std::uint64_t{1} << 20);
  std::vector<std::byte> data(2 * kBlock);
  std::byte* any = data.data();  // never touched: nothing is sent
  const NvmePassthrough no_data{.sqe = spec::MakeIdentify(spec::Cns::kController),
                                .queue = QueueKind::kAdmin,
                                .direction = DataDirection::kFromController};
  const NvmePassthrough data_without_direction{.sqe = spec::MakeFlush(kNsid), .data = data};
  const NvmePassthrough bad_queue{.sqe = spec::MakeFlush(kNsid), .queue = static_cast<QueueKind>(9)};
  const NvmePassthrough bad_direction{.sqe = spec::MakeFlush(kNsid), .direction = static_cast<DataDirection>(9),
                                      .data = data};
  const NvmePassthrough negative_timeout{.sqe = spec::MakeFlush(kNsid), .timeout = -1s};
  struct Case {
    const char* name;
    PathDriver* driver;
    IoOp op;
    std::uint64_t offset;
    std::uint32_t length;
    std::byte* data;
    const NvmePassthrough* passthrough;
    Errc code;
  };
  const Case cases[] = {
      {"misaligned offset", driver.get(), IoOp::kRead, 100, kBlock, any, nullptr, Errc::kInvalidArgument},
      {"misaligned length", driver.get(), IoOp::kWrite, 0, kBlock + 1, any, nullptr, Errc::kInvalidArgument},
      {"zero length", driver.get(), IoOp::kRead, 0, 0, any, nullptr, Errc::kInvalidArgument},
      {"no buffer", driver.get(), IoOp::kWrite, 0, kBlock, nullptr, nullptr, Errc::kInvalidArgument},
      {"at the capacity", driver.get(), IoOp::kRead, kCapacity, kBlock, any, nullptr, Errc::kOutOfRange},
      {"across the capacity", driver.get(), IoOp::kWrite, kCapacity - kBlock, 2 * kBlock, any, nullptr,
       Errc::kOutOfRange},
      {"far beyond", driver.get(), IoOp::kRead, ~std::uint64_t{0} - 511, kBlock, any, nullptr, Errc::kOutOfRange},
      {"beyond MDTS", driver.get(), IoOp::kRead, 0, kMdtsBytes + kBlock, any, nullptr, Errc::kInvalidArgument},
      {"65537 blocks", big.get(), IoOp::kWrite, 0, 65537 * kBlock, any, nullptr, Errc::kInvalidArgument},
      {"write zeroes of 65537 blocks", big.get(), IoOp::kWriteZeroes, 0, 65537 * kBlock, nullptr, nullptr,
       Errc::kInvalidArgument},
      {"write zeroes unsupported", driver.get(), IoOp::kWriteZeroes, 0, kBlock, nullptr, nullptr, Errc::kUnsupported},
      {"deallocate unsupported", no_options.get(), IoOp::kDiscard, 0, kBlock, nullptr, nullptr, Errc::kUnsupported},
      {"write zeroes beyond", big.get(), IoOp::kWriteZeroes, std::uint64_t{1} << 29, kBlock, nullptr, nullptr,
       Errc::kOutOfRange},
      {"passthrough without command", driver.get(), IoOp::kPassthrough, 0, 0, nullptr, nullptr,
       Errc::kInvalidArgument},
      {"passthrough direction, no data", driver.get(), IoOp::kPassthrough, 0, 0, nullptr, &no_data,
       Errc::kInvalidArgument},
      {"passthrough data, no direction", driver.get(), IoOp::kPassthrough, 0, 0, nullptr, &data_without_direction,
       Errc::kInvalidArgument},
      {"passthrough unknown queue", driver.get(), IoOp::kPassthrough, 0, 0, nullptr, &bad_queue,
       Errc::kInvalidArgument},
      {"passthrough unknown direction", driver.get(), IoOp::kPassthrough, 0, 0, nullptr, &bad_direction,
       Errc::kInvalidArgument},
      {"passthrough negative timeout", driver.get(), IoOp::kPassthrough, 0, 0, nullptr, &negative_timeout,
       Errc::kInvalidArgument},
      {"unknown op", driver.get(), static_cast<IoOp>(0x7F), 0, kBlock, any, nullptr, Errc::kUnsupported},
  };
  const std::uint64_t seen_before = CommandsSeen();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Request r(c.op, c.offset, c.length, c.data);
    r.io.passthrough = c.passthrough;
    Submit(*c.driver, r, executor_);
    EXPECT_EQ(r.completions, 1);
    EXPECT_EQ(r.status.code, c.code) << r.describe();
    EXPECT_GT(std::strlen(r.status.context), 8u);
    EXPECT_EQ(r.status.raw.family, 0) << "refused by the host, not by the controller";
    EXPECT_EQ(r.decision().disposition, Disposition::kFailUp);
  }
  // A request whose context is too small for the driver.
  Request tiny(IoOp::kRead, 0, kBlock, any);
  tiny.io.AttachDriverContext(tiny.context, NvmePathDriver::RequiredContextSize() - 1);
  Submit(*driver, tiny, executor_);
  EXPECT_EQ(tiny.status.code, Errc::kInternal);
  EXPECT_EQ(counting.count(), 0u);
  EXPECT_EQ(counting_big.count(), 0u);
  EXPECT_EQ(CommandsSeen(), seen_before);
}

TEST_F(NvmePathDriverTest, EveryFailingAnaStateReachesTheObserverAndTheClassifier) {
  RecordingObserver observer1;
  RecordingObserver observer2;
  auto good = MakeDriver(Connect("c1", 1), {}, &observer1);
  auto bad = MakeDriver(Connect("c2", 2), {}, &observer2);
  std::vector<std::byte> data(kBlock);
  struct Case {
    AnaState state;
    std::uint16_t code;
    Disposition disposition;
    const char* description;
  };
  const Case cases[] = {
      {AnaState::kInaccessible, 0x302, Disposition::kRetryOtherPath, "ANA Inaccessible (path 0x302) on Read"},
      {AnaState::kPersistentLoss, 0x301, Disposition::kRetryOtherPath, "ANA Persistent Loss (path 0x301) on Read"},
      {AnaState::kChange, 0x303, Disposition::kWaitForStateChange, "ANA Transition (path 0x303) on Read"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.description);
    ASSERT_TRUE(subsystem_->SetAnaState(2, kGroup, c.state).has_value());
    Request r(IoOp::kRead, 0, kBlock, data.data());
    observer2.Watch(&r);
    Submit(*bad, r, executor_);
    observer2.Watch(nullptr);
    ASSERT_EQ(r.completions, 1);
    EXPECT_EQ(r.status.code, Errc::kPathError);
    EXPECT_EQ(r.decision().disposition, c.disposition) << r.describe();
    EXPECT_EQ(DescribeRawStatus(r.status.raw), c.description);
    EXPECT_EQ(r.status.raw.bytes[3] & nvme_raw_flags::kMore, nvme_raw_flags::kMore) << "the subsystem sets More";
    EXPECT_EQ(observer2.Take(), std::vector<std::uint16_t>{c.code});
    // The other port's group is still optimized.
    EXPECT_EQ(Read(*good, 0, kBlock).size(), kBlock);
  }
  // The observer heard each one before its request completed.
  EXPECT_EQ(observer2.completed_when_told(), (std::vector<bool>{false, false, false}));
  EXPECT_TRUE(observer1.Take().empty());
}

TEST_F(NvmePathDriverTest, ATransitionWaitsUntilTheClockPassesIt) {
  RecordingObserver observer;
  auto driver = MakeDriver(Connect("c2", 2), {}, &observer);
  std::vector<std::byte> data(kBlock);
  auto read = [&] {
    auto r = std::make_unique<Request>(IoOp::kRead, 0, kBlock, data.data());
    Submit(*driver, *r, executor_);
    EXPECT_EQ(r->completions, 1);
    return r;
  };
  ASSERT_TRUE(subsystem_->SetAnaState(2, kGroup, AnaState::kNonOptimized, 5s).has_value());
  EXPECT_EQ(read()->decision().disposition, Disposition::kWaitForStateChange);
  executor_.Advance(4s);
  EXPECT_EQ(read()->decision().disposition, Disposition::kWaitForStateChange);
  executor_.Advance(1s);
  EXPECT_TRUE(read()->status.ok());
  EXPECT_EQ(observer.Take(), (std::vector<std::uint16_t>{0x303, 0x303}));
}

TEST_F(NvmePathDriverTest, ReservationConflictFailsUpAndIsNotAnObserverMatter) {
  RecordingObserver observer;
  auto driver = MakeDriver(Connect("c1", 1), {}, &observer);
  std::array<std::uint8_t, 16> other{};
  other.fill(0xB2);
  ASSERT_TRUE(subsystem_->ForeignPreempt(kNsid, other, 0xABC, 1 /* write exclusive */).has_value());
  std::vector<std::byte> data = Pattern(kBlock, 1);
  Request r(IoOp::kWrite, 0, kBlock, data.data());
  Submit(*driver, r, executor_);
  EXPECT_EQ(r.status.code, Errc::kReservationConflict) << r.describe();
  EXPECT_EQ(r.decision().disposition, Disposition::kFailUp);
  EXPECT_EQ(DescribeRawStatus(r.status.raw), "Reservation Conflict (generic 0x083, DNR) on Write");
  EXPECT_TRUE(observer.Take().empty());
}

TEST_F(NvmePathDriverTest, LinkDownFailsOverWithoutReachingTheNamespace) {
  auto driver = MakeDriver(Connect("c1", 1));
  Faults("c1").SetLinkDown(true);
  const std::uint64_t before = subsystem_->CommandCount(QueueKind::kIo, kRead);
  std::vector<std::byte> data(kBlock);
  Request r(IoOp::kRead, 0, kBlock, data.data());
  Submit(*driver, r, executor_);
  ASSERT_EQ(r.completions, 1);
  EXPECT_EQ(r.status.code, Errc::kPathError);
  EXPECT_EQ(r.status.raw.bytes[0], static_cast<std::uint8_t>(Delivery::kLinkDown));
  EXPECT_EQ(r.decision().disposition, Disposition::kRetryOtherPath);
  EXPECT_EQ(DescribeRawStatus(r.status.raw), "link down on Read");
  EXPECT_EQ(subsystem_->CommandCount(QueueKind::kIo, kRead), before);
}

TEST_F(NvmePathDriverTest, HungControllerTimesOutAtTheCommandTimeoutOnTheSubmittersExecutor) {
  auto fast = MakeDriver(Connect("c1", 1), {.command_timeout = 2s});
  auto patient = MakeDriver(Connect("c2", 2));  // the SAN's default NVMe I/O timeout, 30 s
  Faults("c1").SetHang(true);
  Faults("c2").SetHang(true);
  std::vector<std::byte> data(kBlock);
  Request a(IoOp::kWrite, 0, kBlock, data.data());
  Request b(IoOp::kWrite, 0, kBlock, data.data());
  Submit(*fast, a, executor_);
  Submit(*patient, b, executor_);
  executor_.Advance(1999ms);
  EXPECT_FALSE(a.done());
  executor_.Advance(1ms);
  ASSERT_EQ(a.completions, 1);
  EXPECT_EQ(a.status.code, Errc::kTimedOut);
  EXPECT_EQ(a.decision().disposition, Disposition::kRetryOtherPath);
  EXPECT_EQ(DescribeRawStatus(a.status.raw), "timed out on Write");
  executor_.Advance(27s);
  EXPECT_FALSE(b.done());
  executor_.Advance(1s);
  ASSERT_EQ(b.completions, 1);
  EXPECT_EQ(b.status.code, Errc::kTimedOut);
}

TEST_F(NvmePathDriverTest, AnswerArrivingLaterIsDeliveredOnTheSubmittersExecutor) {
  auto driver = MakeDriver(Connect("c1", 1));
  Capture(QueueKind::kIo, kRead);
  Faults("c1").SetLatency(3ms);
  std::vector<std::byte> data(kBlock);
  Request r(IoOp::kRead, 0, kBlock, data.data());
  Submit(*driver, r, executor_);
  EXPECT_FALSE(r.done());
  executor_.Advance(3ms);
  ASSERT_EQ(r.completions, 1);
  EXPECT_TRUE(r.status.ok()) << r.describe();
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_.back().executor, &executor_);
}

TEST_F(NvmePathDriverTest, RetryDelayComesFromTheControllersCrdt) {
  RecordingObserver observer;
  // CRDT1..3 = 0.2 s, 1.5 s, 9 s.
  auto driver = MakeDriver(Connect("c1", 1), {.retry_delays = {2, 15, 90}}, &observer);
  std::uint8_t crd = 2;
  subsystem_->SetHandler(QueueKind::kIo, kRead, [&crd](fake::CommandContext& context) {
    context.command.cqe.set_status(WithCrd(MakeStatus(GenericStatus::kNamespaceNotReady), crd));
  });
  std::vector<std::byte> data(kBlock);
  const Nanos expected[] = {kDefaultRetryDelay, 200ms, 1500ms, 9s};
  for (crd = 0; crd <= 3; ++crd) {
    SCOPED_TRACE(int(crd));
    Request r(IoOp::kRead, 0, kBlock, data.data());
    Submit(*driver, r, executor_);
    ASSERT_EQ(r.completions, 1);
    EXPECT_EQ(r.status.code, Errc::kBusy) << r.describe();
    EXPECT_EQ(r.decision().disposition, Disposition::kRetrySamePath);
    EXPECT_EQ(r.decision().delay, expected[crd]);
  }
  crd = 2;
  Request r(IoOp::kRead, 0, kBlock, data.data());
  Submit(*driver, r, executor_);
  EXPECT_EQ(r.status.raw.bytes[5], 15);
  EXPECT_EQ(r.status.raw.bytes[6], 0);
  EXPECT_EQ(DescribeRawStatus(r.status.raw), "Namespace Not Ready (generic 0x082, CRD 2: retry after 1500 ms) on Read");
  EXPECT_TRUE(observer.Take().empty());
  subsystem_->SetHandler(QueueKind::kIo, kRead, {});
}

TEST_F(NvmePathDriverTest, PassthroughIdentifyOnTheAdminQueueFillsTheAnswer) {
  CountingTransport counting(Connect("c1", 1));
  auto driver = MakeDriver(counting);
  Capture(QueueKind::kAdmin, kIdentify);
  std::vector<std::byte> data(spec::kIdentifyDataSize);
  NvmePassthrough::Answer answer;
  answer.delivery = Delivery::kAborted;  // overwritten
  NvmePassthrough pass{.sqe = spec::MakeIdentify(spec::Cns::kController), .queue = QueueKind::kAdmin,
                       .direction = DataDirection::kFromController, .data = data, .timeout = 3s, .answer = &answer};
  pass.sqe.cid = 0x77;
  const std::uint64_t io_before = subsystem_->CommandCount(QueueKind::kIo, kIdentify);
  Request r(IoOp::kPassthrough, 0, 0);
  r.io.passthrough = &pass;
  Submit(*driver, r, executor_);
  ASSERT_EQ(r.completions, 1);
  ASSERT_TRUE(r.status.ok()) << r.describe();
  EXPECT_EQ(answer.delivery, Delivery::kDelivered);
  EXPECT_TRUE(answer.cqe.status().ok());
  EXPECT_EQ(answer.cqe.sqid.value(), 0) << "the admin queue";
  EXPECT_EQ(answer.cqe.cid.value(), 0x77);
  ASSERT_EQ(seen_.size(), 1u);
  EXPECT_EQ(seen_.back().queue, QueueKind::kAdmin);
  EXPECT_EQ(seen_.back().timeout, 3s);
  EXPECT_EQ(subsystem_->CommandCount(QueueKind::kIo, kIdentify), io_before);
  EXPECT_EQ(counting.count(), 1u);
  const auto controller = wire::Load<spec::IdentifyController>(std::span<const std::byte>(data));
  ASSERT_TRUE(controller.has_value());
  EXPECT_EQ(spec::TrimmedText(controller->sn), "MPATHSIM0001");
  EXPECT_EQ(controller->mdts, 5);
  EXPECT_EQ(r.status.raw.bytes[3], nvme_raw_flags::kAdminQueue);
  EXPECT_EQ(r.status.raw.bytes[4], kIdentify);
}

TEST_F(NvmePathDriverTest, PassthroughFailureComesBackWithTheCqe) {
  auto driver = MakeDriver(Connect("c1", 1));
  NvmePassthrough::Answer answer;
  // An admin opcode the subsystem does not implement: Invalid Command Opcode, DNR.
  NvmePassthrough pass{.sqe = {}, .queue = QueueKind::kAdmin, .answer = &answer};
  pass.sqe.opc = 0x7E;
  Request r(IoOp::kPassthrough, 0, 0);
  r.io.passthrough = &pass;
  Submit(*driver, r, executor_);
  EXPECT_EQ(r.status.code, Errc::kUnsupported) << r.describe();
  EXPECT_EQ(r.decision().disposition, Disposition::kFailUp);
  EXPECT_EQ(answer.delivery, Delivery::kDelivered);
  EXPECT_EQ(answer.cqe.status(), MakeStatus(GenericStatus::kInvalidCommandOpcode, Dnr::kSet));
  EXPECT_EQ(DescribeRawStatus(r.status.raw), "Invalid Command Opcode (generic 0x001, DNR) on opcode 0x7E (admin)");

  // Over a down link the answer says so, with no CQE.
  Faults("c1").SetLinkDown(true);
  answer.cqe.set_status(MakeStatus(GenericStatus::kInternalError));
  Request down(IoOp::kPassthrough, 0, 0);
  down.io.passthrough = &pass;
  Submit(*driver, down, executor_);
  EXPECT_EQ(down.status.code, Errc::kPathError);
  EXPECT_EQ(answer.delivery, Delivery::kLinkDown);
  EXPECT_EQ(answer.cqe.status_and_phase.value(), 0);
}

TEST_F(NvmePathDriverTest, CreateRefusesImpossibleGeometry) {
  NvmeTransport& transport = Connect("c1", 1);
  EXPECT_FALSE(NvmePathDriver::Create(transport, 0, kBlock, kBlocks).has_value());
  EXPECT_FALSE(NvmePathDriver::Create(transport, spec::kBroadcastNsid, kBlock, kBlocks).has_value());
  EXPECT_FALSE(NvmePathDriver::Create(transport, kNsid, 0, kBlocks).has_value());
  EXPECT_FALSE(NvmePathDriver::Create(transport, kNsid, 256, kBlocks).has_value());
  EXPECT_FALSE(NvmePathDriver::Create(transport, kNsid, 520, kBlocks).has_value());
  EXPECT_FALSE(NvmePathDriver::Create(transport, kNsid, kBlock, 0).has_value());
  EXPECT_FALSE(NvmePathDriver::Create(transport, kNsid, 4096, ~std::uint64_t{0} / 1024).has_value());
  EXPECT_FALSE(NvmePathDriver::Create(transport, kNsid, 4096, kBlocks, {.max_transfer_bytes = 2048}).has_value());
  const auto negative = NvmePathDriver::Create(transport, kNsid, kBlock, kBlocks, {.command_timeout = -1s});
  ASSERT_FALSE(negative.has_value());
  EXPECT_EQ(negative.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(negative.error().message().find("timeout"), std::string::npos);
  auto driver = NvmePathDriver::Create(transport, 3, 4096, kBlocks, {.write_zeroes = true});
  ASSERT_TRUE(driver.has_value());
  EXPECT_EQ((*driver)->nsid(), 3u);
  EXPECT_EQ((*driver)->block_size(), 4096u);
  EXPECT_EQ((*driver)->capacity_blocks(), kBlocks);
  EXPECT_TRUE((*driver)->options().write_zeroes);
  EXPECT_LE((*driver)->ContextSize(), HeadOptions{}.request_context_size);
  EXPECT_EQ((*driver)->ContextSize(), NvmePathDriver::RequiredContextSize());
}

TEST_F(NvmePathDriverTest, ConcurrentSubmittersShareOneDriver) {
  auto driver = MakeDriver(Connect("c1", 1));
  constexpr int kThreads = 2;
  constexpr int kRounds = 100;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        const std::uint64_t offset = (static_cast<std::uint64_t>(t) * kRounds + i) * 2 * kBlock;
        std::vector<std::byte> out = Pattern(2 * kBlock, static_cast<std::uint8_t>(t * 31 + i));
        Request w(IoOp::kWrite, offset, 2 * kBlock, out.data());
        driver->Submit(w.io);  // the subsystem answers inline: no executor needed
        std::vector<std::byte> in(2 * kBlock);
        Request r(IoOp::kRead, offset, 2 * kBlock, in.data());
        driver->Submit(r.io);
        if (w.completions != 1 || r.completions != 1 || !w.status.ok() || !r.status.ok() || in != out) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

// --- End to end through a core Head: two path drivers (ports 1 and 2), a HeadTemplate double whose Classify is
// ClassifyNvme, round-robin so that both carry I/O.

// The personality's HeadTemplate wraps ClassifyNvme the same way; the predicates stay the core's defaults.
class NvmeTemplateDouble final : public HeadTemplate {
 public:
  [[nodiscard]] std::string_view protocol() const override { return "nvme"; }
  [[nodiscard]] Decision Classify(const IoRequest& io, const IoStatus& status, const Path& /*path*/) const override {
    return ClassifyNvme(io, status);
  }
};

class NvmeHeadTest : public NvmePathDriverTest {
 protected:
  void SetUp() override {
    NvmePathDriverTest::SetUp();
    c1_ = std::make_unique<CountingTransport>(Connect("c1", 1));
    c2_ = std::make_unique<CountingTransport>(Connect("c2", 2));
    HeadOptions options;
    options.policy = IoPolicyKind::kRoundRobin;
    auto head = Head::Create({"mpath0", DeviceIdentity("eui.6c000000000000000000000000000001"), kCapacity, kBlock,
                              options},
                             template_, executor_);
    ASSERT_TRUE(head.has_value()) << head.error().ToString();
    head_ = std::move(*head);
    AddPath("c1", *c1_, observer1_);
    AddPath("c2", *c2_, observer2_);
    channel_ = head_->OpenChannel(executor_);
  }

  void TearDown() override {
    channel_->Close();
    executor_.RunUntilIdle();
  }

  void AddPath(const std::string& name, NvmeTransport& transport, RecordingObserver& observer) {
    DeviceInfo info;
    info.name = name;
    info.transport = "sim";
    info.identity = head_->identity();
    info.reports_access_states = true;
    info.capacity_bytes = kCapacity;
    info.block_size = kBlock;
    auto driver = NvmePathDriver::Create(transport, kNsid, kBlock, kBlocks, {}, &observer);
    ASSERT_TRUE(driver.has_value());
    ASSERT_TRUE(head_->AddPath(info, std::move(*driver)).has_value());
  }

  struct Outcome {
    int completions = 0;
    IoStatus status;
  };
  static void Done(IoRequest& io, void* arg) {
    auto* outcome = static_cast<Outcome*>(arg);
    ++outcome->completions;
    outcome->status = io.status;
  }

  // Sends one request through the head and runs everything it sets off (same-path retries, failover).
  IoStatus Do(IoOp op, std::uint64_t offset, std::uint32_t length, std::byte* data, const void* passthrough = nullptr) {
    IoRequest* io = pool_.Acquire();
    io->op = op;
    io->fua = false;
    io->offset = offset;
    io->length = length;
    io->data = data;
    io->passthrough = passthrough;
    Outcome outcome;
    io->OnComplete(&NvmeHeadTest::Done, &outcome);
    {
      ScopedCurrentExecutor current(&executor_);
      channel_->Submit(*io);
    }
    executor_.RunUntilIdle();
    EXPECT_EQ(outcome.completions, 1);
    pool_.Release(io);
    return outcome.status;
  }

  NvmeTemplateDouble template_;
  std::unique_ptr<CountingTransport> c1_;
  std::unique_ptr<CountingTransport> c2_;
  RecordingObserver observer1_;
  RecordingObserver observer2_;
  IoRequestPool pool_{4, HeadOptions{}.request_context_size};
  std::shared_ptr<Head> head_;
  std::shared_ptr<HeadChannel> channel_;
};

TEST_F(NvmeHeadTest, InaccessibleGroupIsFailedOverWithoutSurfacingAnError) {
  // Before: both controllers carry writes.
  for (std::uint32_t i = 0; i < 8; ++i) {
    std::vector<std::byte> out = Pattern(4 * kBlock, static_cast<std::uint8_t>(i));
    ASSERT_TRUE(Do(IoOp::kWrite, i * 4 * kBlock, 4 * kBlock, out.data()).ok());
  }
  EXPECT_GT(c1_->count(), 2u);
  EXPECT_GT(c2_->count(), 2u);
  EXPECT_EQ(head_->Counters().errors, 0u);

  // Port 2's view of the group goes inaccessible behind the head's back (no ANA engine here to tell it).
  ASSERT_TRUE(subsystem_->SetAnaState(2, kGroup, AnaState::kInaccessible).has_value());
  const std::uint64_t c2_before = c2_->count();
  const std::uint64_t failovers_before = head_->Counters().failovers;
  for (std::uint32_t i = 0; i < 16; ++i) {
    std::vector<std::byte> out = Pattern(4 * kBlock, static_cast<std::uint8_t>(100 + i));
    const IoStatus written = Do(IoOp::kWrite, (64 + i * 4) * kBlock, 4 * kBlock, out.data());
    ASSERT_TRUE(written.ok()) << DescribeRawStatus(written.raw);
    std::vector<std::byte> in(out.size());
    const IoStatus read = Do(IoOp::kRead, (64 + i * 4) * kBlock, 4 * kBlock, in.data());
    ASSERT_TRUE(read.ok()) << DescribeRawStatus(read.raw);
    EXPECT_EQ(in, out);
  }
  // The inaccessible controller was tried (answering 0x302, which its observer heard), and the head moved those
  // I/Os to the other controller.
  EXPECT_GT(c2_->count(), c2_before);
  EXPECT_GT(head_->Counters().failovers, failovers_before);
  EXPECT_EQ(head_->Counters().errors, 0u);
  const std::vector<std::uint16_t> heard = observer2_.Take();
  ASSERT_FALSE(heard.empty());
  for (std::uint16_t code : heard) EXPECT_EQ(code, 0x302);
  EXPECT_TRUE(observer1_.Take().empty());
}

TEST_F(NvmeHeadTest, PassthroughFailingOnAPathIsNotRetriedOnTheOther) {
  std::vector<std::byte> warm(kBlock);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(Do(IoOp::kRead, 0, kBlock, warm.data()).ok());
  Faults("c2").SetLinkDown(true);
  std::vector<std::byte> first(spec::kIdentifyDataSize);
  std::vector<std::byte> second(spec::kIdentifyDataSize);
  const NvmePassthrough a{.sqe = spec::MakeIdentify(spec::Cns::kController), .queue = QueueKind::kAdmin,
                          .direction = DataDirection::kFromController, .data = first};
  const NvmePassthrough b{.sqe = spec::MakeIdentify(spec::Cns::kController), .queue = QueueKind::kAdmin,
                          .direction = DataDirection::kFromController, .data = second};
  const std::uint64_t c1_before = c1_->count();
  const std::uint64_t c2_before = c2_->count();
  // Round-robin sends one to each path.
  const IoStatus sa = Do(IoOp::kPassthrough, 0, 0, nullptr, &a);
  const IoStatus sb = Do(IoOp::kPassthrough, 0, 0, nullptr, &b);
  EXPECT_EQ(sa.ok() + sb.ok(), 1);
  const IoStatus& failed = sa.ok() ? sb : sa;
  EXPECT_EQ(failed.code, Errc::kPathError);
  EXPECT_EQ(DescribeRawStatus(failed.raw), "link down on Identify (admin)");
  // One command each: the failed one never went to the healthy path.
  EXPECT_EQ(c1_->count() - c1_before, 1u);
  EXPECT_EQ(c2_->count() - c2_before, 1u);
}

// --- Allocation: the hot path allocates nothing.

// Answers inline: success, or 0x302 (More set) when told to.
class InlineTransport final : public NvmeTransport {
 public:
  void Submit(NvmeCommand& command) override {
    command.ResetAnswer();
    if (inaccessible) {
      command.cqe.set_status(MakeStatus(PathStatus::kAsymmetricAccessInaccessible, Dnr::kClear, More::kSet));
    }
    command.Finish();
  }
  bool inaccessible = false;
};

class CountingObserver final : public NvmePathObserver {
 public:
  void OnAnaStatus(std::uint16_t /*status_code*/) override { calls.fetch_add(1, std::memory_order_relaxed); }
  std::atomic<int> calls{0};
};

using mpath::testing::AllocationScope;

TEST(NvmePathDriverAllocationTest, SubmitAndCompleteAllocateNothing) {
  InlineTransport transport;
  CountingObserver observer;
  auto created = NvmePathDriver::Create(transport, kNsid, kBlock, 1024,
                                        {.retry_delays = {1, 2, 3}, .write_zeroes = true, .deallocate = true},
                                        &observer);
  ASSERT_TRUE(created.has_value());
  NvmePathDriver& driver = **created;
  std::vector<std::byte> buffer(8 * kBlock);
  NvmePassthrough::Answer answer;
  const NvmePassthrough pass{.sqe = spec::MakeIdentify(spec::Cns::kController), .queue = QueueKind::kAdmin,
                             .direction = DataDirection::kFromController, .data = buffer, .answer = &answer};
  const IoOp ops[] = {IoOp::kRead, IoOp::kWrite, IoOp::kFlush, IoOp::kWriteZeroes,
                      IoOp::kDiscard, IoOp::kProbe, IoOp::kPassthrough};
  for (bool inaccessible : {false, true}) {
    transport.inaccessible = inaccessible;
    for (IoOp op : ops) {
      Request r(op, 8 * kBlock, 8 * kBlock, buffer.data());
      r.io.passthrough = &pass;
      Decision decision;
      {
        AllocationScope scope;
        driver.Submit(r.io);
        decision = ClassifyNvme(r.io, r.status);
        EXPECT_EQ(scope.count(), 0u) << static_cast<int>(op);
      }
      ASSERT_EQ(r.completions, 1);
      EXPECT_EQ(r.status.ok(), !inaccessible) << r.describe();
      EXPECT_EQ(decision.disposition, inaccessible ? Disposition::kRetryOtherPath : Disposition::kSuccess);
    }
  }
  EXPECT_EQ(observer.calls.load(), 7);
}

TEST(NvmePathDriverAllocationTest, TheCounterSeesAllocations) {
  // Guards the test above against a counter that never counts.
  static std::vector<int>* volatile escaped = nullptr;  // keeps the compiler from eliding the pair
  AllocationScope scope;
  escaped = new std::vector<int>(4);
  delete escaped;
  EXPECT_GE(scope.count(), 2u);
}

}  // namespace
}  // namespace mpath::nvme
