#include "mpath/daemon/control.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "mpath/daemon/config.h"
#include "mpath/daemon/fabric.h"
#include "mpath/daemon/render.h"

namespace mpath::daemon {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// A scratch directory removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "mpath-control-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  [[nodiscard]] std::string File(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// A client at the byte level, for what ControlClient never sends: broken JSON, partial lines, oversize requests.
class RawConnection {
 public:
  explicit RawConnection(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~RawConnection() { Close(); }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  [[nodiscard]] bool connected() const { return connected_; }

  void Send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      ASSERT_GT(n, 0) << std::strerror(errno);
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  void ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }

  // The next line, or nothing if none came within `timeout` or the server closed first.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto newline = buffer_.find('\n'); newline != std::string::npos) {
        std::string line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        return line;
      }
      if (!WaitReadable(deadline)) return std::nullopt;
      char chunk[4096];
      ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }
  json ReadResponse(std::chrono::milliseconds timeout = 10s) {
    auto line = ReadLine(timeout);
    if (!line) return json("no response");
    return json::parse(*line, nullptr, false);
  }
  // True when the server closed the connection within `timeout` (with no more data).
  bool ClosedByServer(std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    if (!WaitReadable(deadline)) return false;
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }

 private:
  bool WaitReadable(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) left = 0ms;
    pollfd pfd{fd_, POLLIN, 0};
    return ::poll(&pfd, 1, static_cast<int>(left.count())) > 0;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

// A handler for the protocol tests: "echo" returns the request, "slow" blocks until released, "throw" throws, and
// anything else is an unknown command.
class FakeHandler {
 public:
  json operator()(const json& request) {
    handled_.fetch_add(1);
    const std::string cmd = request["cmd"].get<std::string>();
    if (cmd == "echo") return json{{"ok", true}, {"echo", request}};
    if (cmd == "slow") {
      std::unique_lock lock(mu_);
      slow_started_ = true;
      cv_.notify_all();
      // Bounded, so that a broken test fails rather than hangs.
      cv_.wait_for(lock, 20s, [&] { return released_; });
      return json{{"ok", true}, {"slow", "done"}};
    }
    if (cmd == "throw") throw std::runtime_error("handler blew up");
    return json{{"ok", false}, {"code", "invalid argument"}, {"error", "unknown command '" + cmd + "'"}};
  }
  bool WaitSlowStarted() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return slow_started_; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  int handled() const { return handled_.load(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool slow_started_ = false;
  bool released_ = false;
  std::atomic<int> handled_{0};
};

class ControlServerTest : public ::testing::Test {
 protected:
  ~ControlServerTest() override {
    handler_.Release();  // a server waits for the request its worker runs
  }

  std::unique_ptr<ControlServer> Serve(ControlServerOptions options = {}) {
    auto server = ControlServer::Create([this](const json& r) { return handler_(r); }, socket_, std::move(options));
    EXPECT_TRUE(server.has_value()) << server.error().ToString();
    return server ? std::move(*server) : nullptr;
  }

  std::unique_ptr<ControlClient> Client(Nanos timeout = 10s) {
    auto client = ControlClient::Connect(socket_, timeout);
    EXPECT_TRUE(client.has_value()) << client.error().ToString();
    return client ? std::move(*client) : nullptr;
  }

  TempDir dir_;
  std::string socket_ = dir_.File("ctl.sock");
  FakeHandler handler_;
};

TEST_F(ControlServerTest, SocketFileHasMode0600ByDefaultAndTheModeAsked) {
  {
    auto server = Serve();
    struct stat st{};
    ASSERT_EQ(::stat(socket_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0600u);
  }
  EXPECT_FALSE(std::filesystem::exists(socket_)) << "the socket file is removed with the server";
  ControlServerOptions options;
  options.mode = 0660;
  auto server = Serve(options);
  struct stat st{};
  ASSERT_EQ(::stat(socket_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  // Nothing but the socket is left in the directory (no temporary name).
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(std::filesystem::path(socket_).parent_path()),
                          std::filesystem::directory_iterator()),
            1);
}

TEST_F(ControlServerTest, AnswersRequestsInOrderOnOneConnection) {
  auto server = Serve();
  auto client = Client();
  for (int i = 0; i < 3; ++i) {
    auto response = client->Call(json{{"cmd", "echo"}, {"n", i}});
    ASSERT_TRUE(response.has_value()) << response.error().ToString();
    EXPECT_EQ((*response)["ok"], true);
    EXPECT_EQ((*response)["echo"]["n"], i);
  }
  // Pipelined: three requests in one write, three answers in order.
  RawConnection raw(socket_);
  raw.Send(R"({"cmd":"echo","n":1})" "\n" R"({"cmd":"echo","n":2})" "\n\n" R"({"cmd":"echo","n":3})" "\n");
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(raw.ReadResponse()["echo"]["n"], i);
}

TEST_F(ControlServerTest, MalformedRequestsGetAnErrorAndTheConnectionStaysUsable) {
  auto server = Serve();
  RawConnection raw(socket_);
  ASSERT_TRUE(raw.connected());
  struct Case {
    std::string line;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {"{\"cmd\":", "malformed request: not valid JSON"},
           {"hello", "malformed request: not valid JSON"},
           {"[1,2]", "malformed request: expected a JSON object with field 'cmd' (a string)"},
           {"{\"command\":\"list\"}", "malformed request: expected a JSON object with field 'cmd' (a string)"},
           {"{\"cmd\":7}", "malformed request: expected a JSON object with field 'cmd' (a string)"},
           {"{\"cmd\":\"frobnicate\"}", "unknown command 'frobnicate'"},
       }) {
    raw.Send(c.line + "\n");
    json response = raw.ReadResponse();
    ASSERT_TRUE(response.is_object()) << c.line;
    EXPECT_EQ(response["ok"], false) << c.line;
    EXPECT_EQ(response["error"], c.error) << c.line;
    EXPECT_TRUE(response["code"].is_string());
  }
  raw.Send("{\"cmd\":\"echo\",\"after\":true}\n");
  EXPECT_EQ(raw.ReadResponse()["echo"]["after"], true);
  // The handler saw only the two well-formed requests with a command.
  EXPECT_EQ(handler_.handled(), 2);
}

TEST_F(ControlServerTest, AHandlerThatThrowsAnswersWithAnInternalError) {
  auto server = Serve();
  auto client = Client();
  auto response = client->Call(json{{"cmd", "throw"}});
  ASSERT_TRUE(response.has_value());
  EXPECT_EQ((*response)["ok"], false);
  EXPECT_EQ((*response)["code"], "internal error");
  EXPECT_EQ((*response)["error"], "handler blew up");
  EXPECT_TRUE(client->Call(json{{"cmd", "echo"}}).has_value());
}

TEST_F(ControlServerTest, OversizeRequestsAreRefusedAndSkipped) {
  ControlServerOptions options;
  options.max_request_bytes = 1024;
  auto server = Serve(options);

  // Too long, then a good request on the same connection.
  RawConnection raw(socket_);
  raw.Send(std::string(5000, 'x') + "\n" + R"({"cmd":"echo","n":1})" + "\n");
  json first = raw.ReadResponse();
  EXPECT_EQ(first["ok"], false);
  EXPECT_EQ(first["error"], "request longer than 1024 bytes");
  EXPECT_EQ(raw.ReadResponse()["echo"]["n"], 1);

  // Too long with no newline yet: refused without waiting for the end, and the rest of that line is skipped when it
  // comes.
  RawConnection endless(socket_);
  endless.Send(std::string(3000, '{'));
  EXPECT_EQ(endless.ReadResponse()["error"], "request longer than 1024 bytes");
  endless.Send(std::string(3000, '{') + "}\n" + R"({"cmd":"echo","n":2})" + "\n");
  EXPECT_EQ(endless.ReadResponse()["echo"]["n"], 2);

  // Exactly the limit is fine.
  json request = {{"cmd", "echo"}, {"pad", ""}};
  std::size_t base = request.dump().size();
  request["pad"] = std::string(1024 - base, 'p');
  ASSERT_EQ(request.dump().size(), 1024u);
  RawConnection exact(socket_);
  exact.Send(request.dump() + "\n");
  EXPECT_EQ(exact.ReadResponse()["ok"], true);
}

TEST_F(ControlServerTest, ASlowRequestDoesNotStopTheSocketLoopServingOthers) {
  auto server = Serve();
  RawConnection slow(socket_);
  slow.Send("{\"cmd\":\"slow\"}\n");
  ASSERT_TRUE(handler_.WaitSlowStarted());

  // A second client is accepted and its malformed request answered while the worker is busy...
  RawConnection other(socket_);
  other.Send("nonsense\n");
  EXPECT_EQ(other.ReadResponse()["error"], "malformed request: not valid JSON");
  // ...a third client with half a request stalls nobody...
  RawConnection stalled(socket_);
  stalled.Send("{\"cmd\":\"ec");
  // ...and its well-formed request is answered once the worker is free.
  other.Send("{\"cmd\":\"echo\",\"n\":9}\n");
  EXPECT_FALSE(other.ReadLine(200ms).has_value());
  handler_.Release();
  EXPECT_EQ(slow.ReadResponse()["slow"], "done");
  EXPECT_EQ(other.ReadResponse()["echo"]["n"], 9);
  stalled.Send("ho\"}\n");
  EXPECT_EQ(stalled.ReadResponse()["echo"]["cmd"], "echo");
}

TEST_F(ControlServerTest, TwoClientsAtOnceEachGetTheirOwnAnswers) {
  auto server = Serve();
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      auto client = ControlClient::Connect(socket_, 10s);
      if (!client) return;
      for (int i = 0; i < 50; ++i) {
        auto response = (*client)->Call(json{{"cmd", "echo"}, {"client", t}, {"n", i}});
        if (response && (*response)["echo"]["client"] == t && (*response)["echo"]["n"] == i) good.fetch_add(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(good.load(), 100);
}

TEST_F(ControlServerTest, AClientLeavingMidRequestHurtsNobody) {
  auto server = Serve();
  {
    // Half a request, then gone.
    RawConnection half(socket_);
    half.Send("{\"cmd\":\"echo\",");
  }
  {
    // A whole request, gone before its answer is ready.
    RawConnection gone(socket_);
    gone.Send("{\"cmd\":\"slow\"}\n");
    ASSERT_TRUE(handler_.WaitSlowStarted());
    gone.Close();
    std::this_thread::sleep_for(50ms);  // let the server notice the hang-up while the worker still runs
    handler_.Release();
  }
  auto client = Client();
  auto response = client->Call(json{{"cmd", "echo"}, {"n", 5}});
  ASSERT_TRUE(response.has_value()) << response.error().ToString();
  EXPECT_EQ((*response)["echo"]["n"], 5);
  EXPECT_EQ(handler_.handled(), 2);
}

TEST_F(ControlServerTest, ALastRequestWithoutNewlineIsAnsweredAtEndOfInput) {
  auto server = Serve();
  RawConnection raw(socket_);
  raw.Send(R"({"cmd":"echo","n":1})" "\n" R"({"cmd":"echo","n":2})");
  raw.ShutdownWrite();
  EXPECT_EQ(raw.ReadResponse()["echo"]["n"], 1);
  EXPECT_EQ(raw.ReadResponse()["echo"]["n"], 2);
  EXPECT_TRUE(raw.ClosedByServer());
}

TEST_F(ControlServerTest, ShutdownIsAnsweredThenCallsBackOrIsRefusedWithoutACallback) {
  {
    auto server = Serve();
    auto client = Client();
    auto refused = client->Request(json{{"cmd", "shutdown"}});
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error().code(), Errc::kUnsupported);
  }
  std::atomic<bool> called{false};
  ControlServerOptions options;
  options.on_shutdown = [&] { called = true; };
  auto server = Serve(options);
  auto client = Client();
  auto extra = client->Request(json{{"cmd", "shutdown"}, {"now", true}});
  ASSERT_FALSE(extra.has_value());
  EXPECT_EQ(extra.error().message(), "'shutdown' takes no fields");
  EXPECT_FALSE(called.load());
  auto response = client->Request(json{{"cmd", "shutdown"}});
  ASSERT_TRUE(response.has_value()) << response.error().ToString();
  EXPECT_EQ((*response)["message"], "shutting down");
  for (int i = 0; i < 1000 && !called.load(); ++i) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(called.load());
}

TEST_F(ControlServerTest, ClientsBeyondTheLimitAreToldAndClosed) {
  ControlServerOptions options;
  options.max_clients = 2;
  auto server = Serve(options);
  auto a = Client();
  auto b = Client();
  ASSERT_TRUE(a->Call(json{{"cmd", "echo"}}).has_value());  // both are accepted by now
  ASSERT_TRUE(b->Call(json{{"cmd", "echo"}}).has_value());
  RawConnection third(socket_);
  json refused = third.ReadResponse();
  EXPECT_EQ(refused["ok"], false);
  EXPECT_EQ(refused["error"], "too many clients (at most 2)");
  EXPECT_TRUE(third.ClosedByServer());
  a.reset();
  // A freed place is taken again.
  for (int i = 0; i < 100; ++i) {
    RawConnection again(socket_);
    again.Send("{\"cmd\":\"echo\"}\n");
    if (again.ReadResponse()["ok"] == true) return;
    std::this_thread::sleep_for(10ms);
  }
  ADD_FAILURE() << "no place came free after a client left";
}

TEST_F(ControlServerTest, AStaleSocketIsReplacedButALiveServerOrAnotherFileIsNot) {
  {
    // A socket file nobody listens on, as a crashed daemon leaves it.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, socket_.c_str(), sizeof(address.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    ::close(fd);
  }
  auto server = Serve();
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(Client()->Call(json{{"cmd", "echo"}}).has_value());

  auto second = ControlServer::Create([](const json&) { return json{{"ok", true}}; }, socket_);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().message(), "a server already answers on " + socket_);
  EXPECT_TRUE(Client()->Call(json{{"cmd", "echo"}}).has_value()) << "the first server still serves";

  std::string regular = dir_.File("regular");
  std::ofstream(regular) << "keep me";
  auto third = ControlServer::Create([](const json&) { return json{{"ok", true}}; }, regular);
  ASSERT_FALSE(third.has_value());
  EXPECT_EQ(third.error().message(), regular + " exists and is not a socket; not replacing it");
  std::ifstream in(regular);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "keep me");
}

TEST_F(ControlServerTest, TheSocketFileIsRemovedOnlyWhileItIsStillOurs) {
  auto server = Serve();
  std::string other = dir_.File("other");
  std::ofstream(other) << "x";
  ASSERT_EQ(::rename(other.c_str(), socket_.c_str()), 0);  // someone else's file now sits at our path
  server.reset();
  EXPECT_TRUE(std::filesystem::exists(socket_));
}

TEST_F(ControlServerTest, BadPathsAreRefusedWithTheReason) {
  auto too_long = ControlServer::Create([](const json&) { return json(); }, "/tmp/" + std::string(200, 'a'));
  ASSERT_FALSE(too_long.has_value());
  EXPECT_THAT(too_long.error().message(), HasSubstr("is longer than 107 bytes"));
  auto no_dir = ControlServer::Create([](const json&) { return json(); }, dir_.File("missing/ctl.sock"));
  ASSERT_FALSE(no_dir.has_value());
  EXPECT_THAT(no_dir.error().message(), HasSubstr("cannot bind " + dir_.File("missing/ctl.sock")));
  EXPECT_THAT(no_dir.error().message(), HasSubstr("No such file or directory"));
}

TEST_F(ControlServerTest, ClientErrorsSayWhatWentWrong) {
  auto missing = ControlClient::Connect(socket_);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().message(),
            "cannot connect to " + socket_ + ": No such file or directory; is `mpath daemon` running?");

  auto server = Serve();
  auto client = Client(300ms);
  auto slow = client->Call(json{{"cmd", "slow"}});
  ASSERT_FALSE(slow.has_value());
  EXPECT_EQ(slow.error().code(), Errc::kTimedOut);
  EXPECT_THAT(slow.error().message(), HasSubstr("no answer from " + socket_ + " within 0.3 s"));
  handler_.Release();

  auto refused = Client()->Request(json{{"cmd", "nope"}});
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(refused.error().message(), "unknown command 'nope'");

  auto doomed = Client();
  server.reset();
  auto closed = doomed->Call(json{{"cmd", "echo"}});
  ASSERT_FALSE(closed.has_value());
  EXPECT_THAT(closed.error().message(), HasSubstr(socket_));
}


// --- Against a real fabric: a SCSI array with two port groups and an NVMe subsystem with two ports. ---

constexpr std::string_view kFabricConfig = R"toml(
[defaults]
iopolicy = "round-robin"

[[device]]
match = "naa.60014050abcd00000000000000000001"
alias = "db0"

[[sim.scsi_array]]
name = "array0"
transition_secs = 2

  [[sim.scsi_array.port_group]]
  id = 1
  state = "active/optimized"
  preferred = true
  ports = [1]

  [[sim.scsi_array.port_group]]
  id = 2
  state = "active/non-optimized"
  ports = [2]

  [[sim.scsi_array.lu]]
  lun = 0
  size_mib = 8
  naa = "60014050abcd00000000000000000001"

[[sim.nvme_subsystem]]
name = "subsys0"
ports = [1, 2]

  [[sim.nvme_subsystem.namespace]]
  nsid = 1
  size_mib = 8
  block_size = 4096
  nguid = "6d706174000000000000000000000001"
  ana_group = 1

[[sim.path]]
name = "a0-tp1"
target = "array0"
port = 1

[[sim.path]]
name = "a0-tp2"
target = "array0"
port = 2

[[sim.path]]
name = "s0-p1"
target = "subsys0"
port = 1

[[sim.path]]
name = "s0-p2"
target = "subsys0"
port = 2
)toml";

class ControlFabricTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto config = ParseConfig(kFabricConfig, "control_test.toml");
    ASSERT_TRUE(config.has_value()) << config.error().ToString();
    auto fabric = Fabric::Create(std::move(*config), FabricOptions{.io_threads = 1});
    ASSERT_TRUE(fabric.has_value()) << fabric.error().ToString();
    fabric_ = std::move(*fabric);
    auto report = fabric_->Build();
    ASSERT_TRUE(report.has_value()) << report.error().ToString();
    ASSERT_TRUE(report->ok());
    auto server = ControlServer::Create(*fabric_, socket_);
    ASSERT_TRUE(server.has_value()) << server.error().ToString();
    server_ = std::move(*server);
    auto client = ControlClient::Connect(socket_);
    ASSERT_TRUE(client.has_value()) << client.error().ToString();
    client_ = std::move(*client);
  }

  json Ok(const json& request) {
    auto response = client_->Request(request);
    EXPECT_TRUE(response.has_value()) << request.dump() << ": " << response.error().ToString();
    return response ? *response : json();
  }
  Error Refused(const json& request) {
    auto response = client_->Request(request);
    EXPECT_FALSE(response.has_value()) << request.dump() << " was accepted";
    return response ? Error(Errc::kOk, "") : response.error();
  }
  HeadView Show(std::string_view head) {
    auto view = HeadFromJson(Ok(json{{"cmd", "show"}, {"head", head}})["head"]);
    EXPECT_TRUE(view.has_value());
    return view ? *view : HeadView{};
  }
  static const PathView* FindPath(const HeadView& head, std::string_view name) {
    for (const PathView& path : head.paths) {
      if (path.name == name) return &path;
    }
    return nullptr;
  }

  TempDir dir_;
  std::string socket_ = dir_.File("ctl.sock");
  // Destroyed in reverse: the client, the server (which needs the fabric), then the fabric.
  std::unique_ptr<Fabric> fabric_;
  std::unique_ptr<ControlServer> server_;
  std::unique_ptr<ControlClient> client_;
};

TEST_F(ControlFabricTest, ListAndShowDescribeTheFabric) {
  json list = Ok(json{{"cmd", "list"}});
  auto heads = HeadsFromJson(list);
  ASSERT_TRUE(heads.has_value()) << heads.error().ToString();
  ASSERT_EQ(heads->size(), 2u);
  std::map<std::string, const HeadView*> by_protocol;
  for (const HeadView& head : *heads) by_protocol[head.protocol] = &head;
  ASSERT_TRUE(by_protocol.contains("scsi") && by_protocol.contains("nvme"));

  const HeadView& scsi = *by_protocol["scsi"];
  EXPECT_EQ(scsi.alias, "db0");
  EXPECT_EQ(scsi.capacity_bytes, 8u << 20);
  EXPECT_EQ(scsi.block_size, 512u);
  EXPECT_EQ(scsi.policy, IoPolicyKind::kRoundRobin);
  EXPECT_EQ(scsi.state, HeadState::kLive);
  ASSERT_EQ(scsi.paths.size(), 2u);
  EXPECT_EQ(scsi.paths[0].access, AccessState::kOptimized);
  EXPECT_TRUE(scsi.paths[0].preferred);
  EXPECT_EQ(scsi.paths[1].access, AccessState::kNonOptimized);
  EXPECT_THAT(scsi.paths[0].address, HasSubstr("array0"));

  const HeadView& nvme = *by_protocol["nvme"];
  EXPECT_EQ(nvme.block_size, 4096u);
  EXPECT_EQ(nvme.paths.size(), 2u);

  // show finds a head by name, by alias and by identity, and gives the same view as list.
  EXPECT_EQ(RenderShow(Show(scsi.name)), RenderShow(scsi));
  EXPECT_EQ(Show("db0").name, scsi.name);
  EXPECT_EQ(Show(nvme.identity).name, nvme.name);
  Error missing = Refused(json{{"cmd", "show"}, {"head", "mpath9"}});
  EXPECT_EQ(missing.code(), Errc::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("no head 'mpath9'"));
}

TEST_F(ControlFabricTest, SetPolicyChangesTheHeadsPolicy) {
  json done = Ok(json{{"cmd", "set-policy"}, {"head", "db0"}, {"policy", "qd"}});
  EXPECT_EQ(done["message"], "db0: iopolicy is now queue-depth");
  EXPECT_EQ(Show("db0").policy, IoPolicyKind::kQueueDepth);
  Error bad = Refused(json{{"cmd", "set-policy"}, {"head", "db0"}, {"policy", "fastest"}});
  EXPECT_THAT(bad.message(), HasSubstr("unknown iopolicy 'fastest'"));
  EXPECT_EQ(Show("db0").policy, IoPolicyKind::kQueueDepth);
}

TEST_F(ControlFabricTest, PathFailAndReinstate) {
  HeadView before = Show("db0");
  ASSERT_FALSE(before.paths.empty());
  const std::string path = before.paths[0].name;
  Ok(json{{"cmd", "path-fail"}, {"path", path}});
  HeadView after_fail = Show("db0");
  const PathView* failed = FindPath(after_fail, path);
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->state, PathState::kFailed);
  EXPECT_FALSE(failed->usable);

  Ok(json{{"cmd", "path-reinstate"}, {"path", path}});
  HeadView after_reinstate = Show("db0");
  const PathView* back = FindPath(after_reinstate, path);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->state, PathState::kLive);
  EXPECT_TRUE(back->usable);

  Error unknown = Refused(json{{"cmd", "path-fail"}, {"path", "nowhere"}});
  EXPECT_EQ(unknown.code(), Errc::kNotFound);
  EXPECT_THAT(unknown.message(), HasSubstr("no path 'nowhere'"));
}

TEST_F(ControlFabricTest, InjectReachesTheSimulatedSan) {
  json down = Ok(json{{"cmd", "inject"}, {"target", "a0-tp1"}, {"fault", "link-down"}});
  EXPECT_THAT(down["message"].get<std::string>(), HasSubstr("a0-tp1"));
  Ok(json{{"cmd", "inject"}, {"target", "a0-tp1"}, {"fault", "link-up"}});
  Ok(json{{"cmd", "inject"},
          {"target", "a0-tp2"},
          {"fault", "latency"},
          {"args", json{{"ms", 1}, {"jitter_ms", "0.5"}}}});

  // An ANA change is announced to the host (AEN), so the listing follows it without any I/O.
  Ok(json{{"cmd", "inject"},
          {"target", "subsys0"},
          {"fault", "ana"},
          {"args", json{{"port", "1"}, {"group", "1"}, {"state", "inaccessible"}}}});
  bool seen = false;
  for (int i = 0; i < 500 && !seen; ++i) {
    auto heads = HeadsFromJson(Ok(json{{"cmd", "list"}}));
    ASSERT_TRUE(heads.has_value());
    for (const HeadView& head : *heads) {
      for (const PathView& path : head.paths) seen = seen || path.access == AccessState::kUnavailable;
    }
    if (!seen) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(seen) << "the inaccessible ANA group never showed in the listing";

  Error unknown = Refused(json{{"cmd", "inject"}, {"target", "a0-tp1"}, {"fault", "meteor"}});
  EXPECT_THAT(unknown.message(), HasSubstr("unknown fault 'meteor'"));
  Error bad_args = Refused(json{{"cmd", "inject"}, {"target", "a0-tp1"}, {"fault", "latency"}, {"args", "1ms"}});
  EXPECT_EQ(bad_args.message(), "field 'args' of 'inject' must be an object of key/value strings, not string");
}

TEST_F(ControlFabricTest, ReservationsOnAScsiAndAnNvmeHead) {
  HeadView nvme;
  auto heads = HeadsFromJson(Ok(json{{"cmd", "list"}}));
  ASSERT_TRUE(heads.has_value());
  for (const HeadView& head : *heads) {
    if (head.protocol == "nvme") nvme = head;
  }
  for (const std::string& head : {std::string("db0"), nvme.name}) {
    SCOPED_TRACE(head);
    auto pr = [&](std::string action, json extra = json::object()) {
      json request = {{"cmd", "pr"}, {"head", head}, {"action", action}};
      request.update(extra);
      return request;
    };
    Ok(pr("register", {{"sa_key", "0xabc"}}));
    auto keys = PrReportFromJson(Ok(pr("read-keys")));
    ASSERT_TRUE(keys.has_value()) << keys.error().ToString();
    ASSERT_FALSE(keys->keys.empty());
    for (std::uint64_t key : keys->keys) EXPECT_EQ(key, 0xabcu);

    Ok(pr("reserve", {{"key", 0xabc}, {"type", "exclusive-access"}}));
    auto held = PrReportFromJson(Ok(pr("read-reservation")));
    ASSERT_TRUE(held.has_value());
    EXPECT_EQ(held->holder_key, 0xabcu);
    EXPECT_EQ(held->type, "exclusive-access");

    Ok(pr("release", {{"key", "2748"}, {"type", "exclusive-access"}}));  // 2748 == 0xabc
    auto released = PrReportFromJson(Ok(pr("read-reservation")));
    ASSERT_TRUE(released.has_value());
    EXPECT_FALSE(released->holder_key.has_value());

    Ok(pr("clear", {{"key", "0xabc"}}));
    auto cleared = PrReportFromJson(Ok(pr("read-keys")));
    ASSERT_TRUE(cleared.has_value());
    EXPECT_TRUE(cleared->keys.empty());

    Error bad_key = Refused(pr("register", {{"sa_key", "0xZZ"}}));
    EXPECT_EQ(bad_key.message(), "field 'sa_key': invalid key '0xZZ': expected decimal digits or 0x and hex digits");
    Error bad_action = Refused(pr("steal"));
    EXPECT_THAT(bad_action.message(), HasSubstr("unknown reservation action 'steal'"));
  }
}

TEST_F(ControlFabricTest, RequestsWithMissingWrongOrUnknownFieldsAreRefusedByName) {
  struct Case {
    json request;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {{{"cmd", "show"}}, "'show' needs field 'head' (a string)"},
           {{{"cmd", "show"}, {"head", 3}}, "field 'head' of 'show' must be a string, not number"},
           {{{"cmd", "show"}, {"head", "db0"}, {"verbose", true}}, "unknown field 'verbose' for 'show'"},
           {{{"cmd", "list"}, {"all", true}}, "unknown field 'all' for 'list'"},
           {{{"cmd", "set-policy"}, {"head", "db0"}}, "'set-policy' needs field 'policy' (a string)"},
           {{{"cmd", "path-fail"}, {"path", json::array()}}, "field 'path' of 'path-fail' must be a string, not array"},
           {{{"cmd", "inject"}, {"target", "a0-tp1"}}, "'inject' needs field 'fault' (a string)"},
           {{{"cmd", "inject"}, {"target", "a0-tp1"}, {"fault", "latency"}, {"args", {{"ms", json::array()}}}},
            "field 'args.ms' must be a string, number or boolean, not array"},
           {{{"cmd", "pr"}, {"head", "db0"}, {"action", "register"}, {"sa_key", -5}},
            "field 'sa_key' of 'pr' must be a non-negative integer or a string of one, not number"},
           {{{"cmd", "pr"}, {"head", "db0"}, {"action", "register"}, {"aptpl", "yes"}},
            "field 'aptpl' of 'pr' must be true or false, not string"},
           {{{"cmd", "reboot"}}, "unknown command 'reboot' (expected list, show, set-policy, path-fail, "
                                 "path-reinstate, inject, pr or shutdown)"},
       }) {
    Error error = Refused(c.request);
    EXPECT_EQ(error.code(), Errc::kInvalidArgument) << c.request.dump();
    EXPECT_EQ(error.message(), c.error) << c.request.dump();
  }
  // Still serving.
  EXPECT_EQ(Show("db0").alias, "db0");
}

TEST_F(ControlFabricTest, TheProtocolIsPlainTextOnTheSocket) {
  // What a script with socat would do: one line out, one line back.
  RawConnection raw(socket_);
  raw.Send("{\"cmd\":\"show\",\"head\":\"db0\"}\n");
  auto line = raw.ReadLine();
  ASSERT_TRUE(line.has_value());
  json response = json::parse(*line);
  EXPECT_EQ(response["ok"], true);
  EXPECT_EQ(response["head"]["alias"], "db0");
  EXPECT_EQ(line->find('\n'), std::string::npos);
}

}  // namespace
}  // namespace mpath::daemon
