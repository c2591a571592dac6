// The Fabric end to end on real threads: a config text becomes running heads on the simulated SAN; listings, I/O from
// an I/O loop, operator controls, every fault the inject command knows, persistent reservations on both protocols,
// the device counters scenarios assert on, and a config whose path leads nowhere.
#include "mpath/daemon/fabric.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <map>
#include <thread>
#include <vector>

#include "mpath/core/head_channel.h"
#include "mpath/core/io_request.h"
#include "mpath/daemon/config.h"

namespace mpath::daemon {
namespace {

using namespace std::chrono_literals;

// An ALUA array with two port groups of two ports serving four LUs, and an NVMe subsystem with two ports and two
// namespaces in two ANA groups; one path per port.
constexpr char kConfig[] = R"(
[defaults]
multipath = "on"
iopolicy = "round-robin"
delayed_removal_secs = 5
[defaults.marginal]
probe_interval_secs = 0.2
probes_to_reinstate = 2

[[device]]
match = "naa.60014050abcd0000000000000000000a"
alias = "db0"
iopolicy = "queue-depth"

[[device]]
match = "nguid.6d706174000000000000000000000002*"
alias = "logs"
iopolicy = "service-time"

[sim]
seed = 7

[[sim.scsi_array]]
name = "array0"
alua = "both"
transition_secs = 10
  [[sim.scsi_array.port_group]]
  id = 1
  state = "active/optimized"
  preferred = true
  ports = [1, 2]
  [[sim.scsi_array.port_group]]
  id = 2
  state = "active/non-optimized"
  ports = [3, 4]
  [[sim.scsi_array.lu]]
  lun = 0
  size_mib = 16
  naa = "60014050abcd0000000000000000000a"
  [[sim.scsi_array.lu]]
  lun = 1
  size_mib = 16
  naa = "60014050abcd0000000000000000000b"
  [[sim.scsi_array.lu]]
  lun = 2
  size_mib = 16
  naa = "60014050abcd0000000000000000000c"
  [[sim.scsi_array.lu]]
  lun = 3
  size_mib = 16
  naa = "60014050abcd0000000000000000000d"

[[sim.nvme_subsystem]]
name = "subsys0"
ports = [1, 2]
  [[sim.nvme_subsystem.namespace]]
  nsid = 1
  size_mib = 16
  nguid = "6d706174000000000000000000000001"
  ana_group = 1
  [[sim.nvme_subsystem.namespace]]
  nsid = 2
  size_mib = 16
  nguid = "6d706174000000000000000000000002"
  ana_group = 2
  [[sim.nvme_subsystem.ana]]
  port = 1
  group = 1
  state = "optimized"
  [[sim.nvme_subsystem.ana]]
  port = 2
  group = 1
  state = "non-optimized"
  [[sim.nvme_subsystem.ana]]
  port = 1
  group = 2
  state = "non-optimized"
  [[sim.nvme_subsystem.ana]]
  port = 2
  group = 2
  state = "optimized"

[[sim.path]]
name = "a0-tp1"
target = "array0"
port = 1
latency_ms = 0.05
[[sim.path]]
name = "a0-tp2"
target = "array0"
port = 2
latency_ms = 0.05
[[sim.path]]
name = "a0-tp3"
target = "array0"
port = 3
[[sim.path]]
name = "a0-tp4"
target = "array0"
port = 4
[[sim.path]]
name = "s0-p1"
target = "subsys0"
port = 1
latency_ms = 0.05
[[sim.path]]
name = "s0-p2"
target = "subsys0"
port = 2
)";

constexpr char kLu0[] = "naa.60014050abcd0000000000000000000a";
constexpr char kNs1[] = "nguid.6d706174000000000000000000000001@nqn.2026-11.io.mpath.sim:subsys0/ns1";
constexpr char kNs2[] = "nguid.6d706174000000000000000000000002@nqn.2026-11.io.mpath.sim:subsys0/ns2";
constexpr std::uint32_t kBlock = 512;

Config TestConfig() {
  auto config = ParseConfig(kConfig, "fabric_test.toml");
  EXPECT_TRUE(config.has_value()) << config.error().ToString();
  return config ? std::move(*config) : Config{};
}

// Polls `done` until it holds or `limit` passes; real time, short steps.
bool WaitFor(const std::function<bool()>& done, Nanos limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// Submits I/O through heads from the fabric's first I/O loop, as the workload and the NBD export do: one channel per
// head on that loop, requests from a pool that lives there.
// Threading: Submit/Io from the test thread; everything else on the loop.
class Submitter {
 public:
  explicit Submitter(Fabric& fabric) : loop_(fabric.io_loop(0)) {}
  ~Submitter() {
    std::promise<void> closed;
    loop_.Post([this, &closed] {
      for (auto& [head, channel] : channels_) channel->Close();
      channels_.clear();
      closed.set_value();
    });
    closed.get_future().wait();
  }

  std::future<IoStatus> Submit(const std::shared_ptr<Head>& head, IoOp op, std::uint64_t offset,
                               std::span<std::byte> data) {
    auto done = std::make_shared<std::promise<IoStatus>>();
    std::future<IoStatus> result = done->get_future();
    loop_.Post([this, head, op, offset, data, done] {
      std::shared_ptr<HeadChannel>& channel = channels_[head.get()];
      if (channel == nullptr) channel = head->OpenChannel(loop_);
      IoRequest* io = pool_.Acquire();
      io->op = op;
      io->fua = false;
      io->offset = offset;
      io->length = static_cast<std::uint32_t>(data.size());
      io->data = data.data();
      io->user = new std::shared_ptr<std::promise<IoStatus>>(done);
      io->OnComplete(&Submitter::OnComplete, this);
      channel->Submit(*io);
    });
    return result;
  }

  IoStatus Io(const std::shared_ptr<Head>& head, IoOp op, std::uint64_t offset, std::span<std::byte> data) {
    return Submit(head, op, offset, data).get();
  }

 private:
  static void OnComplete(IoRequest& io, void* arg) {
    auto* self = static_cast<Submitter*>(arg);
    auto* done = static_cast<std::shared_ptr<std::promise<IoStatus>>*>(io.user);
    const IoStatus status = io.status;
    // The layers below let go of the request once this returns.
    self->loop_.Post([self, io = &io, done, status] {
      self->pool_.Release(io);
      (*done)->set_value(status);
      delete done;
    });
  }

  EventLoop& loop_;
  IoRequestPool pool_{16, 256};
  std::map<Head*, std::shared_ptr<HeadChannel>> channels_;
};

std::vector<std::byte> Pattern(std::size_t size, std::uint8_t seed) {
  std::vector<std::byte> out(size);
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<std::byte>((i * 7 + seed) & 0xFF);
  return out;
}

class FabricTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fabric = Fabric::Create(TestConfig(), {.io_threads = 2});
    ASSERT_TRUE(fabric.has_value()) << fabric.error().ToString();
    fabric_ = std::move(*fabric);
    auto report = fabric_->Build();
    ASSERT_TRUE(report.has_value()) << report.error().ToString();
    report_ = std::move(*report);
    submitter_ = std::make_unique<Submitter>(*fabric_);
  }
  void TearDown() override {
    submitter_.reset();
    fabric_.reset();
  }

  HeadView View(std::string_view head) {
    auto view = fabric_->FindHeadView(head);
    EXPECT_TRUE(view.has_value()) << view.error().ToString();
    return view.value_or(HeadView{});
  }
  std::optional<PathView> PathOf(const std::string& path) {
    for (const HeadView& head : fabric_->Heads()) {
      for (const PathView& p : head.paths) {
        if (p.name == path) return p;
      }
    }
    return std::nullopt;
  }
  std::optional<AccessState> AccessOf(const std::string& path) {
    auto p = PathOf(path);
    return p ? std::optional(p->access) : std::nullopt;
  }
  // Every LU path of the array through `link`.
  static std::vector<std::string> LuPaths(const std::string& link) {
    std::vector<std::string> out;
    for (int lun = 0; lun < 4; ++lun) out.push_back(link + ":lun" + std::to_string(lun));
    return out;
  }
  bool AllAre(const std::vector<std::string>& paths, AccessState state) {
    return std::all_of(paths.begin(), paths.end(), [&](const std::string& p) { return AccessOf(p) == state; });
  }
  Result<std::string> Inject(std::string target, std::string fault, std::map<std::string, std::string> args = {}) {
    return fabric_->Inject({.target = std::move(target), .fault = std::move(fault), .args = std::move(args)});
  }
  void ExpectInjectError(std::string target, std::string fault, std::map<std::string, std::string> args,
                         std::string_view expected) {
    auto result = Inject(target, fault, args);
    ASSERT_FALSE(result.has_value()) << target << " " << fault << " was accepted: " << *result;
    EXPECT_NE(result.error().message().find(expected), std::string::npos)
        << "'" << result.error().message() << "' should contain '" << expected << "'";
  }
  Result<PrReport> Pr(std::string head, std::string action, std::uint64_t key = 0, std::uint64_t service_key = 0,
                      std::string type = "write-exclusive") {
    return fabric_->Reservation({.head = std::move(head), .action = std::move(action), .key = key,
                                 .service_key = service_key, .type = std::move(type)});
  }
  // Reads one block of `head` at `offset`; the status.
  IoStatus Read(const std::shared_ptr<Head>& head, std::uint64_t offset) {
    std::vector<std::byte> in(kBlock);
    return submitter_->Io(head, IoOp::kRead, offset, in);
  }
  std::uint64_t PathFailovers(const std::vector<std::string>& paths) {
    std::uint64_t sum = 0;
    for (const std::string& name : paths) {
      if (auto p = PathOf(name)) sum += p->counters.failovers;
    }
    return sum;
  }

  std::unique_ptr<Fabric> fabric_;
  BuildReport report_;
  std::unique_ptr<Submitter> submitter_;
};

TEST_F(FabricTest, BuildsSixHeadsWithTheirPathsStatesIdentitiesAndOverrides) {
  ASSERT_TRUE(report_.ok());
  EXPECT_EQ(report_.paths.size(), 4u * 4u + 2u * 2u) << "one outcome per LU or namespace path";
  for (const BuildReport::PathOutcome& outcome : report_.paths) {
    EXPECT_TRUE(outcome.attached) << outcome.path << ": " << outcome.message;
    EXPECT_TRUE(outcome.multipathed) << outcome.path;
    EXPECT_FALSE(outcome.head.empty()) << outcome.path;
  }

  const std::vector<HeadView> heads = fabric_->Heads();
  ASSERT_EQ(heads.size(), 6u);
  int scsi = 0, nvme = 0;
  for (const HeadView& head : heads) {
    if (head.protocol == "scsi") {
      ++scsi;
      EXPECT_EQ(head.paths.size(), 4u) << head.name;
      EXPECT_EQ(head.vendor, "MPATHSIM");
      EXPECT_EQ(head.product, "ALUA-ARRAY");
      EXPECT_EQ(head.capacity_bytes, 16u << 20);
      EXPECT_EQ(head.block_size, 512u);
      EXPECT_TRUE(head.identity.starts_with("naa.60014050abcd000000000000000000")) << head.identity;
      // Listed optimized first, by name within a state.
      ASSERT_EQ(head.paths.size(), 4u);
      const std::string lun = head.paths[0].name.substr(head.paths[0].name.find(':'));
      EXPECT_EQ(head.paths[0].name, "a0-tp1" + lun);
      EXPECT_EQ(head.paths[1].name, "a0-tp2" + lun);
      EXPECT_EQ(head.paths[2].name, "a0-tp3" + lun);
      EXPECT_EQ(head.paths[3].name, "a0-tp4" + lun);
      for (int i = 0; i < 4; ++i) {
        const PathView& p = head.paths[static_cast<std::size_t>(i)];
        EXPECT_EQ(p.access, i < 2 ? AccessState::kOptimized : AccessState::kNonOptimized) << p.name;
        EXPECT_EQ(p.preferred, i < 2) << p.name << ": the PREF bit of port group 1";
        EXPECT_EQ(p.state, PathState::kLive);
        EXPECT_TRUE(p.usable);
        EXPECT_EQ(p.protocol, "scsi");
        EXPECT_EQ(p.transport, "sim");
      }
      EXPECT_EQ(head.paths[0].address, "sim array0 tpg1/port1 lun" + lun.substr(4));
      EXPECT_EQ(head.paths[3].address, "sim array0 tpg2/port4 lun" + lun.substr(4));
    } else {
      ++nvme;
      EXPECT_EQ(head.protocol, "nvme");
      EXPECT_EQ(head.paths.size(), 2u) << head.name;
      EXPECT_EQ(head.vendor, "mpath simulated NVMe") << "the model";
      EXPECT_EQ(head.product, "SIM-subsys0") << "the serial";
      EXPECT_TRUE(head.identity == kNs1 || head.identity == kNs2) << head.identity;
    }
  }
  EXPECT_EQ(scsi, 4);
  EXPECT_EQ(nvme, 2);

  // Aliases and per-device overrides; heads are found by name, alias or identity.
  const HeadView db0 = View("db0");
  EXPECT_EQ(db0.identity, kLu0);
  EXPECT_EQ(db0.alias, "db0");
  EXPECT_EQ(db0.policy, IoPolicyKind::kQueueDepth);
  EXPECT_EQ(View(kLu0).name, db0.name);
  EXPECT_EQ(View(db0.name).alias, "db0");
  EXPECT_EQ(View("naa.60014050abcd0000000000000000000b").policy, IoPolicyKind::kRoundRobin) << "the default";
  EXPECT_EQ(View("naa.60014050abcd0000000000000000000b").alias, "");
  EXPECT_EQ(View("logs").identity, kNs2) << "matched by prefix";
  EXPECT_EQ(View("logs").policy, IoPolicyKind::kServiceTime);
  EXPECT_EQ(fabric_->FindHead("logs"), fabric_->FindHead(kNs2));
  EXPECT_EQ(fabric_->AllHeads().size(), 6u);
  EXPECT_FALSE(fabric_->FindHeadView("nope").has_value());
  EXPECT_EQ(fabric_->FindHead("nope"), nullptr);

  // ANA: group 1 optimized through port 1, group 2 through port 2.
  const HeadView ns1 = View(kNs1);
  ASSERT_EQ(ns1.paths.size(), 2u);
  EXPECT_EQ(ns1.paths[0].name, "s0-p1n1");
  EXPECT_EQ(ns1.paths[0].access, AccessState::kOptimized);
  EXPECT_EQ(ns1.paths[1].name, "s0-p2n1");
  EXPECT_EQ(ns1.paths[1].access, AccessState::kNonOptimized);
  EXPECT_EQ(ns1.paths[0].address.substr(0, 29), "sim subsys0 port1 nsid1 (cntl");
  const HeadView ns2 = View("logs");
  EXPECT_EQ(ns2.paths[0].name, "s0-p2n2");
  EXPECT_EQ(ns2.paths[0].access, AccessState::kOptimized);
  EXPECT_EQ(ns2.paths[1].access, AccessState::kNonOptimized);
  EXPECT_EQ(fabric_->io_threads(), 2u);
  EXPECT_EQ(fabric_->config().sim.seed, 7u);
  EXPECT_FALSE(fabric_->Build().has_value()) << "Build runs once";
}

TEST_F(FabricTest, IoThroughAHeadFromAnIoLoopIsWrittenReadBackAndCounted) {
  for (const char* name : {"db0", "logs"}) {
    std::shared_ptr<Head> head = fabric_->FindHead(name);
    ASSERT_NE(head, nullptr);
    std::vector<std::byte> out = Pattern(4 * kBlock, 3), in(4 * kBlock);
    IoStatus wrote = submitter_->Io(head, IoOp::kWrite, 64 * kBlock, out);
    ASSERT_TRUE(wrote.ok()) << name << ": " << wrote.context;
    IoStatus read = submitter_->Io(head, IoOp::kRead, 64 * kBlock, in);
    ASSERT_TRUE(read.ok()) << name << ": " << read.context;
    EXPECT_EQ(std::memcmp(in.data(), out.data(), in.size()), 0) << name << ": the bytes written come back";
    const HeadView view = View(name);
    EXPECT_EQ(view.counters.ios, 2u);
    EXPECT_EQ(view.counters.bytes, 8u * kBlock);
    EXPECT_EQ(view.counters.errors, 0u);
    std::uint64_t path_ios = 0;
    for (const PathView& p : view.paths) {
      path_ios += p.counters.ios;
      EXPECT_EQ(p.in_flight, 0u) << p.name;
      if (p.counters.ios > 0) {
        EXPECT_GT(p.latency_max_us, 0.0) << p.name << ": a first I/O is always timed";
      }
    }
    EXPECT_EQ(path_ios, 2u);
  }
}

TEST_F(FabricTest, OperatorFailAndReinstateAndPolicyChanges) {
  ASSERT_TRUE(fabric_->SetPolicy("db0", IoPolicyKind::kServiceTime));
  EXPECT_EQ(View("db0").policy, IoPolicyKind::kServiceTime);
  auto bad = fabric_->SetPolicy("nope", IoPolicyKind::kNuma);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), Errc::kNotFound);
  EXPECT_NE(bad.error().message().find("no head 'nope'"), std::string::npos) << bad.error().message();

  ASSERT_TRUE(fabric_->FailPath("a0-tp1:lun0"));
  EXPECT_FALSE(PathOf("a0-tp1:lun0")->usable);
  EXPECT_EQ(PathOf("a0-tp1:lun0")->state, PathState::kFailed);
  EXPECT_TRUE(PathOf("a0-tp1:lun1")->usable) << "one path only";
  // A configured path stands for every LU path through it.
  ASSERT_TRUE(fabric_->FailPath("a0-tp2"));
  for (const std::string& p : LuPaths("a0-tp2")) EXPECT_FALSE(PathOf(p)->usable) << p;

  // With both optimized paths of db0 failed, its I/O goes to the non-optimized group.
  std::shared_ptr<Head> db0 = fabric_->FindHead("db0");
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(Read(db0, static_cast<std::uint64_t>(i) * kBlock).ok());
  EXPECT_EQ(PathOf("a0-tp1:lun0")->counters.ios, 0u);
  EXPECT_EQ(PathOf("a0-tp2:lun0")->counters.ios, 0u);
  EXPECT_EQ(PathOf("a0-tp3:lun0")->counters.ios + PathOf("a0-tp4:lun0")->counters.ios, 8u);

  ASSERT_TRUE(fabric_->ReinstatePath("a0-tp1:lun0"));
  ASSERT_TRUE(fabric_->ReinstatePath("a0-tp2"));
  EXPECT_TRUE(PathOf("a0-tp1:lun0")->usable);
  for (const std::string& p : LuPaths("a0-tp2")) EXPECT_TRUE(PathOf(p)->usable) << p;
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(Read(db0, static_cast<std::uint64_t>(i) * kBlock).ok());
  EXPECT_EQ(PathOf("a0-tp1:lun0")->counters.ios + PathOf("a0-tp2:lun0")->counters.ios, 8u)
      << "back on the optimized group";

  ASSERT_TRUE(fabric_->FailPath("s0-p1n1"));
  EXPECT_FALSE(PathOf("s0-p1n1")->usable);
  ASSERT_TRUE(fabric_->ReinstatePath("s0-p1n1"));
  EXPECT_TRUE(PathOf("s0-p1n1")->usable);

  auto unknown = fabric_->FailPath("a0-tp9");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_NE(unknown.error().message().find("no path 'a0-tp9'"), std::string::npos) << unknown.error().message();
}

TEST_F(FabricTest, AluaInjectionsMovePortGroupsThroughTheirTransitions) {
  std::vector<std::string> group1 = LuPaths("a0-tp1"), group2 = LuPaths("a0-tp3");
  for (const std::string& p : LuPaths("a0-tp2")) group1.push_back(p);
  for (const std::string& p : LuPaths("a0-tp4")) group2.push_back(p);

  // No I/O runs: the path checker's TEST UNIT READY brings the unit attention in.
  auto standby = Inject("array0", "alua", {{"group", "1"}, {"state", "standby"}});
  ASSERT_TRUE(standby.has_value()) << standby.error().ToString();
  EXPECT_NE(standby->find("port group 1 -> standby"), std::string::npos) << *standby;
  ASSERT_TRUE(Inject("array0", "alua", {{"group", "2"}, {"state", "active/optimized"}}));
  EXPECT_TRUE(WaitFor([&] { return AllAre(group1, AccessState::kStandby) && AllAre(group2, AccessState::kOptimized); }))
      << "group 1 standby and group 2 optimized on every head";
  for (const std::string& p : group1) EXPECT_FALSE(PathOf(p)->usable) << p;

  // A transition with a transition time: transitioning first, the new state only once the time has passed.
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(Inject("array0", "alua", {{"group", "2"}, {"state", "active/non-optimized"}, {"transition_ms", "1500"}}));
  EXPECT_TRUE(WaitFor([&] { return AllAre(group2, AccessState::kNonOptimized); }, 15s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 1400ms) << "not before the transition time";
  ASSERT_TRUE(Inject("array0", "alua", {{"group", "1"}, {"state", "active/optimized"}}));
  EXPECT_TRUE(WaitFor([&] { return AllAre(group1, AccessState::kOptimized); }));

  // PREF: the array queues nothing for it; the fabric has the engine read the states again.
  ASSERT_TRUE(Inject("array0", "preferred", {{"group", "2"}, {"on", "true"}}));
  EXPECT_TRUE(WaitFor([&] { return PathOf("a0-tp3:lun1")->preferred && PathOf("a0-tp4:lun2")->preferred; }));
}

TEST_F(FabricTest, LinkFaultsActOnThePathTheyName) {
  std::shared_ptr<Head> lu1 = fabric_->FindHead("naa.60014050abcd0000000000000000000b");
  ASSERT_NE(lu1, nullptr);
  const std::vector<std::string> tp2 = LuPaths("a0-tp2");

  // link-down: the link's paths are reconnecting (not chosen, but awaited when nothing else is usable); I/O goes to
  // the other optimized path and nothing reaches the submitter.
  auto down = Inject("a0-tp2", "link-down");
  ASSERT_TRUE(down.has_value()) << down.error().ToString();
  EXPECT_EQ(*down, "path a0-tp2: link down");
  for (const std::string& path : tp2) {
    EXPECT_EQ(PathOf(path)->state, PathState::kConnecting) << path;
    EXPECT_FALSE(PathOf(path)->usable) << path;
  }
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(Read(lu1, static_cast<std::uint64_t>(i) * kBlock).ok()) << i;
  EXPECT_EQ(PathOf("a0-tp2:lun1")->counters.ios, 0u);
  ASSERT_TRUE(Inject("a0-tp2", "link-up"));
  std::uint64_t before = PathOf("a0-tp2:lun1")->counters.ios;
  ASSERT_TRUE(WaitFor([&] {
    (void)Read(lu1, 0);
    return PathOf("a0-tp2:lun1")->counters.ios > before;
  })) << "the link carries I/O again";

  // fail-io, on one LU path: ready, but every media command fails; heal ends it.
  ASSERT_TRUE(Inject("a0-tp1:lun1", "fail-io"));
  const std::uint64_t failovers = PathOf("a0-tp1:lun1")->counters.failovers;
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(Read(lu1, static_cast<std::uint64_t>(i) * kBlock).ok()) << i;
  EXPECT_GT(PathOf("a0-tp1:lun1")->counters.failovers, failovers);
  ASSERT_TRUE(Inject("a0-tp1", "heal"));

  // latency: with the other paths of LU 1 failed, its read waits out the latency in flight, and the listing shows
  // it (a path that fail-io made marginal still carries I/O when it is the only one).
  ASSERT_TRUE(fabric_->FailPath("a0-tp2:lun1"));
  ASSERT_TRUE(fabric_->FailPath("a0-tp3:lun1"));
  ASSERT_TRUE(fabric_->FailPath("a0-tp4:lun1"));
  ASSERT_TRUE(Inject("a0-tp1", "latency", {{"ms", "400"}}));
  std::vector<std::byte> in(kBlock);
  const auto start = std::chrono::steady_clock::now();
  std::future<IoStatus> slow = submitter_->Submit(lu1, IoOp::kRead, 0, in);
  EXPECT_TRUE(WaitFor([&] { return PathOf("a0-tp1:lun1")->in_flight >= 1; }, 2s)) << "in flight on the slow link";
  ASSERT_TRUE(slow.get().ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start, 380ms);
  ASSERT_TRUE(Inject("a0-tp1", "clear"));
  for (const char* p : {"a0-tp2:lun1", "a0-tp3:lun1", "a0-tp4:lun1"}) ASSERT_TRUE(fabric_->ReinstatePath(p));

  // flap: down and up in turns; I/O goes on without an error.
  ASSERT_TRUE(Inject("a0-tp2", "flap", {{"down_ms", "60"}, {"up_ms", "60"}}));
  const std::uint64_t flap_failovers = PathFailovers(tp2);
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(Read(lu1, static_cast<std::uint64_t>(i) * kBlock).ok()) << i;
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_GT(PathFailovers(tp2), flap_failovers) << "some reads met the link down";
  ASSERT_TRUE(Inject("a0-tp2", "clear"));

  // hang and drop: a command sent there never comes back (until its timeout); the checker's TEST UNIT READY is one.
  ASSERT_TRUE(Inject("a0-tp3", "hang"));
  EXPECT_TRUE(WaitFor([&] { return PathOf("a0-tp3:lun0")->in_flight >= 1; }, 5s)) << "held by the hung link";
  ASSERT_TRUE(Inject("a0-tp3", "unhang"));
  ASSERT_TRUE(Inject("a0-tp4", "drop", {{"p", "1"}}));
  EXPECT_TRUE(WaitFor([&] { return PathOf("a0-tp4:lun0")->in_flight >= 1; }, 5s)) << "its answer was lost";
  ASSERT_TRUE(Inject("a0-tp4", "drop", {{"p", "0"}}));
  EXPECT_EQ(View("naa.60014050abcd0000000000000000000b").counters.errors, 0u);
}

TEST_F(FabricTest, DeviceFaultsOfTheArray) {
  std::shared_ptr<Head> lu2 = fabric_->FindHead("naa.60014050abcd0000000000000000000c");
  std::shared_ptr<Head> lu3 = fabric_->FindHead("naa.60014050abcd0000000000000000000d");
  ASSERT_NE(lu2, nullptr);
  ASSERT_NE(lu3, nullptr);

  // unit-attention: 2A/06 brings an RTPG.
  const std::uint64_t rtpgs = fabric_->RtpgCount("array0").value();
  auto ua = Inject("array0", "unit-attention", {{"asc", "0x2A"}, {"ascq", "0x06"}});
  ASSERT_TRUE(ua.has_value()) << ua.error().ToString();
  EXPECT_TRUE(WaitFor([&] { return fabric_->RtpgCount("array0").value() > rtpgs; }));

  // resize: a read beyond the new end is refused by the target, on no other path.
  ASSERT_TRUE(Read(lu2, 12u << 20).ok());
  ASSERT_TRUE(Inject("array0", "resize", {{"lun", "2"}, {"size_mib", "8"}}));
  const IoStatus beyond = Read(lu2, 12u << 20);
  EXPECT_EQ(beyond.code, Errc::kOutOfRange) << ErrcName(beyond.code) << " " << beyond.context;
  EXPECT_TRUE(Read(lu2, 4u << 20).ok());

  // foreign-preempt: another host holds exclusive access; our reads conflict.
  ASSERT_TRUE(Read(lu3, 0).ok());
  ASSERT_TRUE(Inject("array0", "foreign-preempt", {{"lun", "3"}, {"key", "0x99"}, {"type", "exclusive-access"}}));
  EXPECT_EQ(Read(lu3, 0).code, Errc::kReservationConflict);
  auto keys = Pr(lu3->name(), "read-keys");
  ASSERT_TRUE(keys.has_value()) << keys.error().ToString();
  EXPECT_EQ(keys->keys, std::vector<std::uint64_t>{0x99});

  // remap: another volume answers at LUN 1; its paths leave the old head for a new one.
  ASSERT_TRUE(Inject("array0", "remap", {{"lun", "1"}, {"naa", "60014050abcd000000000000000000ee"}}));
  EXPECT_TRUE(WaitFor([&] {
    auto view = fabric_->FindHeadView("naa.60014050abcd000000000000000000ee");
    return view.has_value() && view->paths.size() == 4;
  })) << "a new head with all four paths";
  const HeadView remapped = View("naa.60014050abcd000000000000000000ee");
  EXPECT_EQ(remapped.vendor, "MPATHSIM");
  auto old = fabric_->FindHeadView("naa.60014050abcd0000000000000000000b");
  EXPECT_TRUE(!old.has_value() || old->paths.empty()) << "the old head keeps no path";

  // power-cycle: registrations without APTPL are lost.
  ASSERT_TRUE(Pr("db0", "register", 0, 0x1234));
  ASSERT_FALSE(Pr("db0", "read-keys")->keys.empty());
  ASSERT_TRUE(Inject("array0", "power-cycle"));
  auto after = Pr("db0", "read-keys");
  ASSERT_TRUE(after.has_value()) << after.error().ToString();
  EXPECT_TRUE(after->keys.empty());
}

TEST_F(FabricTest, DeviceFaultsOfTheSubsystem) {
  const std::uint64_t reads = fabric_->AnaLogReads("subsys0").value();
  EXPECT_GE(reads, 2u) << "one ANA log read per controller at attach";
  auto ana = Inject("subsys0", "ana", {{"port", "1"}, {"group", "1"}, {"state", "inaccessible"}});
  ASSERT_TRUE(ana.has_value()) << ana.error().ToString();
  EXPECT_TRUE(WaitFor([&] { return AccessOf("s0-p1n1") == AccessState::kUnavailable; }));
  EXPECT_EQ(AccessOf("s0-p1n2"), AccessState::kNonOptimized) << "group 2 untouched";
  EXPECT_GT(fabric_->AnaLogReads("subsys0").value(), reads);
  ASSERT_TRUE(
      Inject("subsys0", "ana", {{"port", "1"}, {"group", "1"}, {"state", "optimized"}, {"transition_ms", "200"}}));
  EXPECT_TRUE(WaitFor([&] { return AccessOf("s0-p1n1") == AccessState::kOptimized; }));

  std::shared_ptr<Head> ns2 = fabric_->FindHead("logs");
  ASSERT_TRUE(Read(ns2, 12u << 20).ok());
  ASSERT_TRUE(Inject("subsys0", "resize", {{"nsid", "2"}, {"size_mib", "8"}}));
  EXPECT_TRUE(WaitFor([&] { return !Read(ns2, 12u << 20).ok(); })) << "beyond the new end";

  std::shared_ptr<Head> ns1 = fabric_->FindHead(kNs1);
  ASSERT_TRUE(Read(ns1, 0).ok());
  ASSERT_TRUE(Inject("subsys0", "foreign-preempt", {{"nsid", "1"}, {"key", "77"}, {"type", "exclusive-access"}}));
  EXPECT_EQ(Read(ns1, 0).code, Errc::kReservationConflict);
  auto holder = Pr(kNs1, "read-reservation");
  ASSERT_TRUE(holder.has_value()) << holder.error().ToString();
  EXPECT_EQ(holder->holder_key, 77u);
  EXPECT_EQ(holder->type, "exclusive-access");

  ASSERT_TRUE(Inject("subsys0", "remap", {{"nsid", "2"}, {"nguid", "6d7061740000000000000000000000ff"}}));
  const std::string fresh = "nguid.6d7061740000000000000000000000ff@nqn.2026-11.io.mpath.sim:subsys0/ns2";
  EXPECT_TRUE(WaitFor([&] {
    auto view = fabric_->FindHeadView(fresh);
    return view.has_value() && view->paths.size() == 2;
  })) << "a new head for the new volume";
}

TEST_F(FabricTest, BadInjectRequestsAreRefusedWithTheReason) {
  ExpectInjectError("array0", "foo", {}, "unknown fault 'foo'; known: link-down, link-up, hang");
  ExpectInjectError("array0", "alua", {{"state", "standby"}}, "fault 'alua' needs group=N");
  ExpectInjectError("array0", "alua", {{"group", "1"}}, "fault 'alua' needs state=active/optimized|");
  ExpectInjectError("array0", "alua", {{"group", "x"}, {"state", "standby"}},
                    "fault 'alua': group='x' is not a number");
  ExpectInjectError("array0", "alua", {{"group", "1"}, {"state", "sleepy"}}, "unknown ALUA state 'sleepy'");
  ExpectInjectError("array0", "alua", {{"group", "9"}, {"state", "standby"}}, "no target port group 9");
  ExpectInjectError("array0", "alua", {{"group", "1"}, {"state", "standby"}, {"color", "red"}},
                    "fault 'alua' does not take 'color'; it takes: group, state, transition_ms");
  ExpectInjectError("array0", "link-down", {}, "'array0' is an array or subsystem");
  ExpectInjectError("nowhere", "hang", {}, "'nowhere' is not a configured path (paths: a0-tp1, a0-tp2");
  ExpectInjectError("a0-tp1", "alua", {{"group", "1"}, {"state", "standby"}}, "'a0-tp1' is neither");
  ExpectInjectError("a0-tp1", "link-down", {{"now", "yes"}}, "fault 'link-down' takes no arguments");
  ExpectInjectError("a0-tp1", "latency", {}, "fault 'latency' needs ms=N");
  ExpectInjectError("a0-tp1", "latency", {{"ms", "-3"}}, "is out of range");
  ExpectInjectError("a0-tp1", "drop", {{"p", "2"}}, "fault 'drop': p='2' is out of range");
  ExpectInjectError("a0-tp1", "flap", {{"down_ms", "0"}, {"up_ms", "5"}}, "down_ms");
  ExpectInjectError("s0-p1", "fail-io", {{"lun", "1"}}, "does not take 'lun'; it takes: nsid");
  ExpectInjectError("array0", "ana", {{"port", "1"}, {"group", "1"}, {"state", "optimized"}},
                    "fault 'ana' applies to an NVMe subsystem, and 'array0' is a SCSI array");
  ExpectInjectError("subsys0", "power-cycle", {}, "applies to a SCSI array, and 'subsys0' is an NVMe subsystem");
  ExpectInjectError("array0", "remap", {{"lun", "1"}, {"naa", "12"}}, "naa='12' is not 32 hex digits");
  ExpectInjectError("array0", "remap", {{"lun", "7"}, {"naa", "60014050abcd000000000000000000ee"}},
                    "array 'array0' has no LU 7");
  ExpectInjectError("array0", "remap", {{"nsid", "1"}}, "does not take 'nsid'");
  ExpectInjectError("subsys0", "foreign-preempt", {{"nsid", "1"}, {"key", "5"}, {"type", "odd"}},
                    "unknown reservation type 'odd'");
  ExpectInjectError("array0", "preferred", {{"group", "1"}, {"on", "maybe"}}, "on='maybe' is not true or false");
  ExpectInjectError("subsys0", "ana", {{"port", "1"}, {"group", "1"}, {"state", "weird"}}, "unknown ANA state");
}

TEST_F(FabricTest, ReservationsOnAScsiHeadAndAnNvmeHead) {
  // SCSI: the coordinator registers the key on every I_T nexus of the head.
  auto registered = Pr("db0", "register", 0, 0xABC);
  ASSERT_TRUE(registered.has_value()) << registered.error().ToString();
  auto keys = Pr("db0", "read-keys");
  ASSERT_TRUE(keys.has_value()) << keys.error().ToString();
  ASSERT_FALSE(keys->keys.empty());
  for (std::uint64_t key : keys->keys) EXPECT_EQ(key, 0xABCu);
  ASSERT_TRUE(Pr("db0", "reserve", 0xABC, 0, "write-exclusive-registrants-only"));
  auto held = Pr("db0", "read-reservation");
  ASSERT_TRUE(held.has_value()) << held.error().ToString();
  EXPECT_EQ(held->holder_key, 0xABCu);
  EXPECT_EQ(held->type, "write-exclusive-registrants-only");
  EXPECT_GT(held->generation, 0u);
  ASSERT_TRUE(Read(fabric_->FindHead("db0"), 0).ok()) << "a registrant reads under its own reservation";
  ASSERT_TRUE(Pr("db0", "release", 0xABC, 0, "write-exclusive-registrants-only"));
  auto none = Pr("db0", "read-reservation");
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->holder_key.has_value());
  EXPECT_EQ(none->type, "");
  ASSERT_TRUE(Pr("db0", "clear", 0xABC));
  EXPECT_TRUE(Pr("db0", "read-keys")->keys.empty());

  // NVMe: one registration for the host, whichever controller carries it.
  auto nvme_registered = Pr("logs", "register", 0, 0x5150);
  ASSERT_TRUE(nvme_registered.has_value()) << nvme_registered.error().ToString();
  auto nvme_keys = Pr("logs", "read-keys");
  ASSERT_TRUE(nvme_keys.has_value()) << nvme_keys.error().ToString();
  ASSERT_FALSE(nvme_keys->keys.empty());
  for (std::uint64_t key : nvme_keys->keys) EXPECT_EQ(key, 0x5150u);
  ASSERT_TRUE(Pr("logs", "reserve", 0x5150, 0, "exclusive-access"));
  auto nvme_held = Pr("logs", "read-reservation");
  ASSERT_TRUE(nvme_held.has_value());
  EXPECT_EQ(nvme_held->holder_key, 0x5150u);
  EXPECT_EQ(nvme_held->type, "exclusive-access");
  ASSERT_TRUE(Read(fabric_->FindHead("logs"), 0).ok()) << "the holder reads";
  ASSERT_TRUE(Pr("logs", "release", 0x5150, 0, "exclusive-access"));
  EXPECT_FALSE(Pr("logs", "read-reservation")->holder_key.has_value());
  ASSERT_TRUE(Pr("logs", "clear", 0x5150));
  EXPECT_TRUE(Pr("logs", "read-keys")->keys.empty());

  // Refusals name what was wrong.
  auto unknown_action = Pr("db0", "steal");
  ASSERT_FALSE(unknown_action.has_value());
  EXPECT_NE(unknown_action.error().message().find("unknown reservation action 'steal'"), std::string::npos);
  auto no_head = Pr("nope", "read-keys");
  ASSERT_FALSE(no_head.has_value());
  EXPECT_EQ(no_head.error().code(), Errc::kNotFound);
  auto bad_type = Pr("db0", "reserve", 1, 0, "mine-only");
  ASSERT_FALSE(bad_type.has_value());
  EXPECT_NE(bad_type.error().message().find("unknown reservation type 'mine-only'"), std::string::npos);
  auto keyless = Pr("logs", "reserve", 0);
  ASSERT_FALSE(keyless.has_value());
  EXPECT_NE(keyless.error().message().find("needs our registered key (--key)"), std::string::npos);
  auto nothing = Pr("db0", "register");
  ASSERT_FALSE(nothing.has_value());
  EXPECT_NE(nothing.error().message().find("pr register needs the key"), std::string::npos);
}

TEST_F(FabricTest, DeviceCountersForScenarioAssertions) {
  auto rtpgs = fabric_->RtpgCount("array0");
  ASSERT_TRUE(rtpgs.has_value()) << rtpgs.error().ToString();
  EXPECT_GE(*rtpgs, 1u) << "the LUs' first RTPGs";
  EXPECT_LE(*rtpgs, 16u) << "coalesced: not one per command";
  auto reads = fabric_->AnaLogReads("subsys0");
  ASSERT_TRUE(reads.has_value());
  EXPECT_GE(*reads, 2u);
  EXPECT_EQ(fabric_->RtpgCount("nope").error().code(), Errc::kNotFound);
  EXPECT_NE(fabric_->RtpgCount("subsys0").error().message().find("is an NVMe subsystem"), std::string::npos);
  EXPECT_NE(fabric_->AnaLogReads("array0").error().message().find("is a SCSI array"), std::string::npos);
  // Idle heads cost the array no RTPG: the checker's TEST UNIT READYs on active paths answer GOOD.
  const std::uint64_t settled = fabric_->RtpgCount("array0").value();
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(fabric_->RtpgCount("array0").value(), settled);
}

TEST(FabricBuildTest, APathToAPortTheTargetDoesNotHaveFailsBuild) {
  Config config = TestConfig();
  config.sim.paths[2].port = 9;
  config.sim.paths[2].source = "fabric_test.toml:120";
  auto fabric = Fabric::Create(std::move(config));
  ASSERT_TRUE(fabric.has_value()) << fabric.error().ToString();
  auto report = (*fabric)->Build();
  ASSERT_FALSE(report.has_value());
  EXPECT_EQ(report.error().code(), Errc::kNotFound);
  EXPECT_EQ(report.error().message(),
            "fabric_test.toml:120: path 'a0-tp3': array 'array0' has no port 9 (its ports: 1, 2, 3, 4)");

  Config nvme = TestConfig();
  nvme.sim.paths[5].port = 3;
  auto nvme_fabric = Fabric::Create(std::move(nvme));
  ASSERT_TRUE(nvme_fabric.has_value());
  auto nvme_report = (*nvme_fabric)->Build();
  ASSERT_FALSE(nvme_report.has_value());
  EXPECT_NE(nvme_report.error().message().find("subsystem 'subsys0' has no port 3 (its ports: 1, 2)"),
            std::string::npos)
      << nvme_report.error().message();

  Config nowhere = TestConfig();
  nowhere.sim.paths[0].target = "array9";
  auto nowhere_fabric = Fabric::Create(std::move(nowhere));
  ASSERT_TRUE(nowhere_fabric.has_value());
  auto nowhere_report = (*nowhere_fabric)->Build();
  ASSERT_FALSE(nowhere_report.has_value());
  EXPECT_NE(nowhere_report.error().message().find("no array or subsystem named 'array9'"), std::string::npos);
}

TEST(FabricBuildTest, AStandbyGroupAttachesAfterTheActiveOneAndAnUnbuiltFabricIsQuiet) {
  Config config = TestConfig();
  config.sim.scsi_arrays[0].port_groups[1].state = "standby";
  auto fabric = Fabric::Create(std::move(config), {.io_threads = 1});
  ASSERT_TRUE(fabric.has_value());
  EXPECT_TRUE((*fabric)->Heads().empty()) << "nothing before Build";
  auto report = (*fabric)->Build();
  ASSERT_TRUE(report.has_value()) << report.error().ToString();
  EXPECT_TRUE(report->ok());
  auto db0 = (*fabric)->FindHeadView("db0");
  ASSERT_TRUE(db0.has_value());
  ASSERT_EQ(db0->paths.size(), 4u);
  EXPECT_EQ(db0->paths[2].access, AccessState::kStandby);
  EXPECT_EQ(db0->paths[3].access, AccessState::kStandby);
  EXPECT_EQ(db0->capacity_bytes, 16u << 20);
}

}  // namespace
}  // namespace mpath::daemon
