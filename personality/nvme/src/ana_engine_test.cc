// The ANA engine against the simulated subsystem: every log it believes is the bytes the subsystem built, every
// notice is a real Asynchronous Event Request completion, and time moves only when a test advances the clock.
#include "mpath/nvme/ana_engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "mpath/nvme/fake/subsystem.h"
#include "mpath/nvme/identity.h"
#include "mpath/nvme/spec/async_event.h"
#include "mpath/nvme/spec/identify.h"
#include "mpath/nvme/spec/log_page.h"
#include "mpath/nvme/spec/opcodes.h"
#include "mpath/nvme/spec/status.h"
#include "mpath/sim/san.h"
#include "mpath/testing/manual_executor.h"

namespace mpath::nvme {
namespace {

using namespace std::chrono_literals;
using fake::AnaState;

constexpr ControllerKey kA = 1;  // through port 1
constexpr ControllerKey kB = 2;  // through port 2
constexpr std::uint8_t kGetLogPage = spec::Raw(spec::AdminOpcode::kGetLogPage);
constexpr std::uint8_t kAer = spec::Raw(spec::AdminOpcode::kAsynchronousEventRequest);
constexpr std::uint8_t kAnaLid = static_cast<std::uint8_t>(spec::LogPageId::kAsymmetricNamespaceAccess);

// What the engine reported, in order.
struct Recorder {
  struct Change {
    ControllerKey key;
    std::uint32_t nsid;
    AccessState state;
  };
  struct NamespacesChanged {
    ControllerKey key;
    std::vector<std::uint32_t> nsids;
    bool all;
  };
  std::vector<Change> changes;
  std::map<std::pair<ControllerKey, std::uint32_t>, AccessState> latest;
  std::vector<NamespacesChanged> namespaces;
  std::vector<std::pair<ControllerKey, std::uint32_t>> reconnects;

  AnaCallbacks Callbacks() {
    AnaCallbacks callbacks;
    callbacks.on_state = [this](ControllerKey key, std::uint32_t nsid, AccessState state) {
      changes.push_back({key, nsid, state});
      latest[{key, nsid}] = state;
    };
    callbacks.on_namespaces_changed = [this](ControllerKey key, const std::vector<std::uint32_t>& nsids, bool all) {
      namespaces.push_back({key, nsids, all});
    };
    callbacks.on_reconnect_needed = [this](ControllerKey key, std::uint32_t group) {
      reconnects.emplace_back(key, group);
    };
    return callbacks;
  }

  [[nodiscard]] std::optional<AccessState> Latest(ControllerKey key, std::uint32_t nsid) const {
    auto it = latest.find({key, nsid});
    return it == latest.end() ? std::nullopt : std::optional(it->second);
  }
};

void PutLe32(std::span<std::byte> bytes, std::size_t offset, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) bytes[offset + i] = static_cast<std::byte>(value >> (8 * i));
}
void PutLe16(std::span<std::byte> bytes, std::size_t offset, std::uint16_t value) {
  bytes[offset] = static_cast<std::byte>(value);
  bytes[offset + 1] = static_cast<std::byte>(value >> 8);
}

class AnaEngineTest : public ::testing::Test {
 protected:
  ~AnaEngineTest() override {
    engine_.reset();
    san_.reset();              // aborts the requests the engine left outstanding
    executor_.RunUntilIdle();  // and lets them free themselves
  }

  void MakeSan(fake::SubsystemConfig config = {}) {
    san_ = sim::SimSan::Create({.clock = &clock_}).value();
    subsystem_ = san_->AddNvmeSubsystem("subsys0", std::move(config)).value();
    ASSERT_TRUE(subsystem_->AddPort(1).has_value());
    ASSERT_TRUE(subsystem_->AddPort(2).has_value());
  }

  void AddNamespace(std::uint32_t nsid, std::uint32_t group) {
    fake::NamespaceConfig ns;
    ns.nsid = nsid;
    ns.blocks = 1024;
    ns.nguid[0] = 0x6C;
    ns.nguid[15] = static_cast<std::uint8_t>(nsid);
    ns.ana_group = group;
    ASSERT_TRUE(subsystem_->AddNamespace(ns).has_value());
  }

  void SetAna(std::uint16_t port, std::uint32_t group, AnaState state, Nanos transition = Nanos(0)) {
    ASSERT_TRUE(subsystem_->SetAnaState(port, group, state, transition).has_value());
  }

  NvmeTransport& Connect(const std::string& name, std::uint16_t port) {
    sim::NvmePathSpec spec{.name = name, .subsystem = "subsys0", .host_nqn = "nqn.2026-11.io.mpath:host-" + name,
                           .host_id = {}, .port = port};
    spec.host_id[0] = static_cast<std::uint8_t>(name[0]);
    return *san_->ConnectNvme(spec).value();
  }

  // What the controller says of itself, read the way the prober reads it.
  ControllerSummary Identify(NvmeTransport& transport) {
    std::vector<std::byte> data(spec::kIdentifyDataSize);
    NvmeCommand command;
    command.sqe = spec::MakeIdentify(spec::Cns::kController);
    command.queue = QueueKind::kAdmin;
    command.direction = DataDirection::kFromController;
    command.data = data;
    command.executor = &executor_;
    bool done = false;
    command.OnFinish([](NvmeCommand&, void* arg) { *static_cast<bool*>(arg) = true; }, &done);
    transport.Submit(command);
    executor_.RunUntilIdle();
    EXPECT_TRUE(done);
    return ParseIdentifyController(data).value();
  }

  void MakeEngine(AnaOptions options = {}) {
    auto engine = AnaEngine::Create(executor_, options, recorder_.Callbacks());
    ASSERT_TRUE(engine.has_value()) << engine.error().ToString();
    engine_ = std::move(*engine);
  }

  void Add(ControllerKey key, NvmeTransport& transport) {
    const auto added = engine_->AddController({key, &transport, Identify(transport)});
    ASSERT_TRUE(added.has_value()) << added.error().ToString();
  }

  void Watch(ControllerKey key, std::uint32_t nsid, std::uint32_t anagrpid) {
    ASSERT_TRUE(engine_->WatchNamespace(key, nsid, anagrpid).has_value());
  }

  // Namespaces 1 and 2 in group 1, 3 and 4 in group 2. Port 1: group 1 optimized, group 2 non-optimized; port 2:
  // group 1 inaccessible, group 2 optimized. Controller A on port 1, B on port 2, each watching every namespace.
  void Standard(AnaOptions options = {}, fake::SubsystemConfig config = {}) {
    MakeSan(std::move(config));
    for (std::uint32_t nsid = 1; nsid <= 4; ++nsid) AddNamespace(nsid, nsid <= 2 ? 1 : 2);
    SetAna(1, 2, AnaState::kNonOptimized);
    SetAna(2, 1, AnaState::kInaccessible);
    a_ = &Connect("a", 1);
    b_ = &Connect("b", 2);
    MakeEngine(options);
    Add(kA, *a_);
    Add(kB, *b_);
    for (const ControllerKey key : {kA, kB}) {
      for (std::uint32_t nsid = 1; nsid <= 4; ++nsid) Watch(key, nsid, nsid <= 2 ? 1 : 2);
    }
    executor_.RunUntilIdle();
  }

  // Both what the engine says now and what it last reported.
  void ExpectStates(ControllerKey key, std::initializer_list<std::pair<std::uint32_t, AccessState>> want) {
    for (const auto& [nsid, state] : want) {
      EXPECT_EQ(engine_->NamespaceState(key, nsid), state) << "controller " << key << " nsid " << nsid;
      EXPECT_EQ(recorder_.Latest(key, nsid), state) << "controller " << key << " nsid " << nsid;
    }
  }

  [[nodiscard]] AnaControllerStatus Status(ControllerKey key) const { return engine_->ControllerStatus(key).value(); }
  [[nodiscard]] std::uint64_t LogPageCommands() const { return subsystem_->CommandCount(QueueKind::kAdmin, kGetLogPage); }
  [[nodiscard]] std::uint64_t AerCommands() const { return subsystem_->CommandCount(QueueKind::kAdmin, kAer); }
  sim::LinkFaults& Faults(const std::string& path) { return *san_->Faults(path).value(); }

  ManualClock clock_;
  mpath::testing::ManualExecutor executor_{clock_};
  std::unique_ptr<sim::SimSan> san_;
  fake::Subsystem* subsystem_ = nullptr;
  NvmeTransport* a_ = nullptr;
  NvmeTransport* b_ = nullptr;
  Recorder recorder_;
  std::unique_ptr<AnaEngine> engine_;
};

// --- Arguments.

TEST_F(AnaEngineTest, CreateAndCallsRejectBadArguments) {
  EXPECT_EQ(AnaEngine::Create(executor_, {}, {}).error().code(), Errc::kInvalidArgument) << "on_state is required";
  AnaOptions bad;
  bad.retry_initial = Nanos(0);
  EXPECT_FALSE(AnaEngine::Create(executor_, bad, recorder_.Callbacks()).has_value());
  bad = {};
  bad.retry_max = 1ms;
  EXPECT_FALSE(AnaEngine::Create(executor_, bad, recorder_.Callbacks()).has_value());
  bad = {};
  bad.default_transition_timeout = Nanos(0);
  EXPECT_FALSE(AnaEngine::Create(executor_, bad, recorder_.Callbacks()).has_value());

  MakeSan();
  AddNamespace(1, 1);
  NvmeTransport& a = Connect("a", 1);
  MakeEngine();
  const ControllerSummary summary = Identify(a);
  EXPECT_EQ(engine_->AddController({kA, nullptr, summary}).error().code(), Errc::kInvalidArgument);
  ASSERT_TRUE(engine_->AddController({kA, &a, summary}).has_value());
  EXPECT_EQ(engine_->AddController({kA, &a, summary}).error().code(), Errc::kAlreadyExists);
  EXPECT_EQ(engine_->WatchNamespace(kB, 1, 1).error().code(), Errc::kNotFound);
  EXPECT_EQ(engine_->WatchNamespace(kA, 0, 1).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(engine_->WatchNamespace(kA, spec::kBroadcastNsid, 1).error().code(), Errc::kInvalidArgument);
  ASSERT_TRUE(engine_->WatchNamespace(kA, 1, 1).has_value());
  EXPECT_EQ(engine_->WatchNamespace(kA, 1, 1).error().code(), Errc::kAlreadyExists);
  EXPECT_EQ(engine_->UnwatchNamespace(kA, 2).error().code(), Errc::kNotFound);
  EXPECT_EQ(engine_->RemoveController(kB).error().code(), Errc::kNotFound);
  EXPECT_FALSE(engine_->ControllerStatus(kB).has_value());
  EXPECT_FALSE(engine_->NamespaceState(kA, 2).has_value());
  EXPECT_TRUE(recorder_.changes.empty()) << "callbacks run on the executor, never inside a call";
  executor_.RunUntilIdle();
  EXPECT_EQ(recorder_.Latest(kA, 1), AccessState::kOptimized);
}

// --- Attach.

TEST_F(AnaEngineTest, InitialStatesComeFromEachControllersLog) {
  Standard();
  ExpectStates(kA, {{1, AccessState::kOptimized}, {2, AccessState::kOptimized},
                    {3, AccessState::kNonOptimized}, {4, AccessState::kNonOptimized}});
  ExpectStates(kB, {{1, AccessState::kUnavailable}, {2, AccessState::kUnavailable},
                    {3, AccessState::kOptimized}, {4, AccessState::kOptimized}});
  EXPECT_EQ(recorder_.changes.size(), 8u) << "each namespace reported once per controller";
  for (const ControllerKey key : {kA, kB}) {
    const AnaControllerStatus status = Status(key);
    EXPECT_TRUE(status.ana);
    EXPECT_EQ(status.log_reads, 1u);
    EXPECT_EQ(status.log_failures, 0u);
    EXPECT_EQ(status.events, 0u);
    EXPECT_EQ(status.aers_outstanding, 1u);
    EXPECT_EQ(status.change_count, 2u) << "the two SetAnaState calls before connecting";
    EXPECT_FALSE(status.reconnect_needed);
    EXPECT_EQ(status.transition_timeout, 10s) << "the subsystem's ANATT";
  }
  EXPECT_EQ(LogPageCommands(), 2u);
  EXPECT_EQ(AerCommands(), 2u);
}

TEST_F(AnaEngineTest, ANamespaceWatchedLaterIsReportedInATaskFromTheLogAlreadyRead) {
  Standard();
  const std::size_t before = recorder_.changes.size();
  ASSERT_TRUE(engine_->UnwatchNamespace(kA, 3).has_value());
  Watch(kA, 3, 2);
  EXPECT_EQ(recorder_.changes.size(), before);
  EXPECT_FALSE(engine_->NamespaceState(kA, 3).has_value()) << "unreported until the task runs";
  executor_.RunUntilIdle();
  EXPECT_EQ(recorder_.changes.size(), before + 1);
  ExpectStates(kA, {{3, AccessState::kNonOptimized}});
  EXPECT_EQ(Status(kA).log_reads, 1u) << "the log already covers its group";
}

// --- Change notices.

TEST_F(AnaEngineTest, AnAnaChangeNoticeBringsTheNewStates) {
  Standard();
  const std::pair<AnaState, AccessState> cases[] = {
      {AnaState::kNonOptimized, AccessState::kNonOptimized},
      {AnaState::kInaccessible, AccessState::kUnavailable},
      {AnaState::kPersistentLoss, AccessState::kPersistentLoss},
      {AnaState::kChange, AccessState::kTransitioning},
      {AnaState::kOptimized, AccessState::kOptimized},
  };
  std::uint64_t events = 0;
  for (const auto& [wire, state] : cases) {
    SCOPED_TRACE(static_cast<int>(wire));
    const std::size_t before = recorder_.changes.size();
    const std::uint64_t reads = Status(kA).log_reads;
    SetAna(1, 1, wire);
    executor_.RunUntilIdle();
    ExpectStates(kA, {{1, state}, {2, state}, {3, AccessState::kNonOptimized}});
    EXPECT_EQ(recorder_.changes.size(), before + 2) << "the two namespaces of group 1 through A, nothing else";
    EXPECT_EQ(Status(kA).events, ++events);
    EXPECT_EQ(Status(kA).log_reads, reads + 1);
    EXPECT_EQ(Status(kA).aers_outstanding, 1u) << "re-armed";
  }
  EXPECT_EQ(Status(kB).events, 0u) << "port 2 saw no change";
  EXPECT_EQ(Status(kB).log_reads, 1u);
}

TEST_F(AnaEngineTest, TwoChangesBeforeTheEngineRunsCostOneNoticeAndOneRead) {
  Standard();
  // Two changes before the engine runs: the first completes the request, the second is masked until the log is read,
  // and the one read sees both.
  SetAna(1, 1, AnaState::kNonOptimized);
  SetAna(1, 2, AnaState::kOptimized);
  executor_.RunUntilIdle();
  ExpectStates(kA, {{1, AccessState::kNonOptimized}, {3, AccessState::kOptimized}});
  EXPECT_EQ(Status(kA).events, 1u);
  EXPECT_EQ(Status(kA).log_reads, 2u);
  EXPECT_EQ(Status(kA).change_count, 4u);
}

TEST_F(AnaEngineTest, ALogLargerThanOneTransferIsReadGroupsOnlyAndNamespacesFollowTheirAnagrpid) {
  fake::SubsystemConfig config;
  config.mdts = 1;  // 8 KiB, while the whole log is 16 + 128 * 32 + 1024 * 4 = 8208 bytes
  std::vector<spec::GetLogPageFields> reads;
  MakeSan(config);
  subsystem_->SetHandler(QueueKind::kAdmin, kGetLogPage, [&reads](fake::CommandContext& context) {
    reads.push_back(spec::DecodeGetLogPage(context.command.sqe));
    context.subsystem.DefaultHandler(context);
  });
  AddNamespace(1, 1);
  AddNamespace(2, 2);
  SetAna(1, 2, AnaState::kNonOptimized);
  NvmeTransport& a = Connect("a", 1);
  MakeEngine();
  Add(kA, a);
  Watch(kA, 1, 1);
  Watch(kA, 2, 2);
  executor_.RunUntilIdle();
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0].lid, spec::LogPageId::kAsymmetricNamespaceAccess);
  EXPECT_EQ(reads[0].lsp, 1u) << "RGO";
  EXPECT_EQ(reads[0].length_bytes(), 16u + 128u * 32u);
  ExpectStates(kA, {{1, AccessState::kOptimized}, {2, AccessState::kNonOptimized}});
}

// --- Coalescing.

TEST_F(AnaEngineTest, AnaStatusesWhileAReadIsInFlightCostExactlyOneMoreRead) {
  Standard();
  Faults("a").SetLatency(10ms);
  const std::uint64_t commands = LogPageCommands();
  engine_->OnAnaStatus(kA);
  executor_.RunUntilIdle();
  EXPECT_EQ(Status(kA).log_reads, 2u) << "one read on its way";
  // Every I/O of every namespace comes back with 0x302, from several threads at once.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this] {
      for (int i = 0; i < 250; ++i) engine_->OnAnaStatus(kA);
    });
  }
  for (std::thread& thread : threads) thread.join();
  engine_->Refresh(kA);
  engine_->RefreshAll();
  executor_.RunUntilIdle();
  EXPECT_EQ(Status(kA).log_reads, 2u) << "nothing more while the read is in flight";
  executor_.Advance(10ms);
  EXPECT_EQ(Status(kA).log_reads, 3u) << "the first answer may predate the news: one more";
  executor_.Advance(10ms);
  executor_.Advance(1min);
  EXPECT_EQ(Status(kA).log_reads, 3u);
  EXPECT_EQ(Status(kB).log_reads, 2u) << "RefreshAll read B once";
  EXPECT_EQ(LogPageCommands(), commands + 3);
}

TEST_F(AnaEngineTest, AnaStatusesQueuedBeforeTheEngineRunsCostOneRead) {
  Standard();
  for (int i = 0; i < 1000; ++i) engine_->OnAnaStatus(kA);
  executor_.RunUntilIdle();
  EXPECT_EQ(Status(kA).log_reads, 2u);
  EXPECT_EQ(Status(kB).log_reads, 1u);
}

TEST_F(AnaEngineTest, AnAnaStatusReadsTheLogAndFindsTheChange) {
  Standard();
  // A change whose notice was lost: the I/O that met 0x302 is how the host learns.
  subsystem_->SetHandler(QueueKind::kAdmin, kAer, [](fake::CommandContext& context) {
    context.command.cqe.set_status(spec::MakeStatus(spec::GenericStatus::kInvalidCommandOpcode, spec::Dnr::kSet));
  });
  SetAna(1, 1, AnaState::kInaccessible);  // the outstanding request carries this notice; the next is refused
  executor_.RunUntilIdle();
  ExpectStates(kA, {{1, AccessState::kUnavailable}});
  SetAna(1, 1, AnaState::kOptimized);     // no request outstanding any more: the notice waits
  executor_.RunUntilIdle();
  ExpectStates(kA, {{1, AccessState::kUnavailable}});
  engine_->OnAnaStatus(kA);
  executor_.RunUntilIdle();
  ExpectStates(kA, {{1, AccessState::kOptimized}});
}

// --- ANATT.

TEST_F(AnaEngineTest, PollingDuringAChangeSeesItsEndWhenNoNoticeComes) {
  Standard();
  SetAna(1, 1, AnaState::kNonOptimized, 2500ms);
  executor_.RunUntilIdle();
  ExpectStates(kA, {{1, AccessState::kTransitioning}});
  const std::uint64_t reads = Status(kA).log_reads;
  // The simulated subsystem notices the end of a transition only when a command arrives, so no notice comes by
  // itself: the polls at 1 s and 2 s still show the change, the one at 3 s the new state.
  executor_.Advance(2s);
  ExpectStates(kA, {{1, AccessState::kTransitioning}});
  executor_.Advance(1s);
  ExpectStates(kA, {{1, AccessState::kNonOptimized}, {2, AccessState::kNonOptimized}});
  EXPECT_GE(Status(kA).log_reads, reads + 3);
  EXPECT_TRUE(recorder_.reconnects.empty());
  // No group in change: polling stops.
  const std::uint64_t settled = Status(kA).log_reads;
  executor_.Advance(10s);
  EXPECT_EQ(Status(kA).log_reads, settled);
}

TEST_F(AnaEngineTest, AGroupStillChangingAtAnattIsInaccessibleAndAsksForAReconnect) {
  AnaOptions no_polling;  // this test counts every log read
  no_polling.transition_poll = 0ns;
  Standard(no_polling);
  SetAna(1, 1, AnaState::kNonOptimized, 15s);  // longer than ANATT (10 s)
  executor_.RunUntilIdle();
  ExpectStates(kA, {{1, AccessState::kTransitioning}, {2, AccessState::kTransitioning}});
  // A read halfway through still shows the change; ANATT counts from the first log that showed it.
  executor_.Advance(5s);
  engine_->Refresh(kA);
  executor_.Advance(5s - 1ns);
  EXPECT_EQ(Status(kA).log_reads, 3u);
  ExpectStates(kA, {{1, AccessState::kTransitioning}});
  EXPECT_TRUE(recorder_.reconnects.empty());
  EXPECT_FALSE(Status(kA).reconnect_needed);

  const std::size_t before = recorder_.changes.size();
  executor_.Advance(1ns);
  ExpectStates(kA, {{1, AccessState::kUnavailable}, {2, AccessState::kUnavailable}});
  EXPECT_EQ(recorder_.changes.size(), before + 2);
  ASSERT_EQ(recorder_.reconnects.size(), 1u);
  EXPECT_EQ(recorder_.reconnects[0], (std::pair<ControllerKey, std::uint32_t>{kA, 1}));
  EXPECT_TRUE(Status(kA).reconnect_needed);
  ExpectStates(kA, {{3, AccessState::kNonOptimized}});
  ExpectStates(kB, {{1, AccessState::kUnavailable}, {3, AccessState::kOptimized}});
  EXPECT_FALSE(Status(kB).reconnect_needed);

  // Another read still showing the change keeps it inaccessible and does not ask again.
  engine_->Refresh(kA);
  executor_.Advance(1s);
  ExpectStates(kA, {{1, AccessState::kUnavailable}});
  EXPECT_EQ(recorder_.reconnects.size(), 1u);

  // The transition ends (the subsystem notices when next asked): the log clears it all.
  executor_.Advance(4s);
  EXPECT_EQ(subsystem_->GetAnaState(1, 1).value(), AnaState::kNonOptimized);
  executor_.RunUntilIdle();
  ExpectStates(kA, {{1, AccessState::kNonOptimized}, {2, AccessState::kNonOptimized}});
  EXPECT_FALSE(Status(kA).reconnect_needed);
  executor_.Advance(1min);
  EXPECT_EQ(recorder_.reconnects.size(), 1u);
}

TEST_F(AnaEngineTest, ATransitionShorterThanAnattEndsCleanly) {
  Standard();
  SetAna(1, 2, AnaState::kOptimized, 4s);
  executor_.RunUntilIdle();
  ExpectStates(kA, {{3, AccessState::kTransitioning}, {4, AccessState::kTransitioning}});
  executor_.Advance(4s);
  EXPECT_EQ(subsystem_->GetAnaState(1, 2).value(), AnaState::kOptimized);
  executor_.RunUntilIdle();
  ExpectStates(kA, {{3, AccessState::kOptimized}, {4, AccessState::kOptimized}});
  const std::size_t before = recorder_.changes.size();
  executor_.Advance(1min);
  EXPECT_TRUE(recorder_.reconnects.empty());
  EXPECT_FALSE(Status(kA).reconnect_needed);
  EXPECT_EQ(recorder_.changes.size(), before) << "the cancelled timer reports nothing";
}

TEST_F(AnaEngineTest, ANewTransitionStartsItsOwnClock) {
  Standard();
  SetAna(1, 1, AnaState::kNonOptimized, 8s);
  executor_.RunUntilIdle();
  executor_.Advance(8s);
  ASSERT_TRUE(subsystem_->GetAnaState(1, 1).has_value());
  executor_.RunUntilIdle();
  ExpectStates(kA, {{1, AccessState::kNonOptimized}});
  SetAna(1, 1, AnaState::kOptimized, 30s);  // 8 s after the first began: a fresh 10 s from now
  executor_.RunUntilIdle();
  executor_.Advance(10s - 1ns);
  ExpectStates(kA, {{1, AccessState::kTransitioning}});
  executor_.Advance(1ns);
  ExpectStates(kA, {{1, AccessState::kUnavailable}});
  EXPECT_EQ(recorder_.reconnects.size(), 1u);
}

TEST_F(AnaEngineTest, AnAnattOfZeroUsesTheDefaultTimeout) {
  fake::SubsystemConfig config;
  config.anatt_secs = 0;
  AnaOptions options;
  options.default_transition_timeout = 3s;
  Standard(options, config);
  EXPECT_EQ(Status(kA).transition_timeout, 3s);
  SetAna(1, 1, AnaState::kChange);  // changing with no end in sight
  executor_.RunUntilIdle();
  executor_.Advance(3s - 1ns);
  ExpectStates(kA, {{1, AccessState::kTransitioning}});
  executor_.Advance(1ns);
  ExpectStates(kA, {{1, AccessState::kUnavailable}});
  EXPECT_EQ(recorder_.reconnects.size(), 1u);
}

// --- Malformed logs.

enum class Corruption { kNsidListCut, kMoreGroupsThanArrived, kReservedState, kGroupZero, kNsidInTwoGroups, kFailed };

// Spoils every ANA log the subsystem answers in one way; other log pages pass.
void InstallCorruption(fake::Subsystem& subsystem, Corruption how) {
  subsystem.SetHandler(QueueKind::kAdmin, kGetLogPage, [how](fake::CommandContext& context) {
    context.subsystem.DefaultHandler(context);
    if (spec::DecodeGetLogPage(context.command.sqe).lid != spec::LogPageId::kAsymmetricNamespaceAccess) return;
    const std::span<std::byte> log = context.command.data;
    // Header 16 bytes (NGRPS at 8); the first descriptor at 16 (ANAGRPID, NNSIDS at 20, ANAS at 32), its NSIDs
    // from 48; the second descriptor after them.
    const std::uint32_t first_nsids = static_cast<std::uint32_t>(log[20]);
    const std::size_t second = 48 + 4 * first_nsids;
    switch (how) {
      case Corruption::kNsidListCut: PutLe32(log, 20, 0x0100'0000); break;
      case Corruption::kMoreGroupsThanArrived: PutLe16(log, 8, 0x4000); break;
      case Corruption::kReservedState: log[32] = std::byte{0x05}; break;
      case Corruption::kGroupZero: PutLe32(log, 16, 0); break;
      case Corruption::kNsidInTwoGroups: PutLe32(log, second + 32, 1); break;
      case Corruption::kFailed:
        context.command.cqe.set_status(spec::MakeStatus(spec::GenericStatus::kInternalError));
        break;
    }
  });
}

class AnaMalformedLogTest : public AnaEngineTest, public ::testing::WithParamInterface<Corruption> {};

TEST_P(AnaMalformedLogTest, IsCountedLeavesStatesAloneAndIsRetriedWithBackoffUntilItRecovers) {
  Standard();
  InstallCorruption(*subsystem_, GetParam());
  const std::size_t before = recorder_.changes.size();
  SetAna(1, 1, AnaState::kNonOptimized);
  executor_.RunUntilIdle();
  EXPECT_EQ(Status(kA).log_reads, 2u);
  EXPECT_EQ(Status(kA).log_failures, 1u);
  EXPECT_EQ(recorder_.changes.size(), before) << "nothing believed from a bad log";
  ExpectStates(kA, {{1, AccessState::kOptimized}, {3, AccessState::kNonOptimized}});
  EXPECT_EQ(Status(kA).change_count, 2u);

  // Retries at +1 s, +3 s, +7 s: doubling from retry_initial.
  const std::pair<Nanos, std::uint64_t> steps[] = {{1s - 1ns, 2}, {1ns, 3}, {2s - 1ns, 3}, {1ns, 4}, {4s - 1ns, 4}};
  for (const auto& [advance, reads] : steps) {
    executor_.Advance(advance);
    EXPECT_EQ(Status(kA).log_reads, reads);
    EXPECT_EQ(Status(kA).log_failures, reads - 1);
  }
  EXPECT_EQ(recorder_.changes.size(), before);

  subsystem_->SetHandler(QueueKind::kAdmin, kGetLogPage, {});
  executor_.Advance(1ns);
  EXPECT_EQ(Status(kA).log_reads, 5u);
  EXPECT_EQ(Status(kA).log_failures, 3u);
  ExpectStates(kA, {{1, AccessState::kNonOptimized}, {2, AccessState::kNonOptimized}});
  EXPECT_EQ(Status(kA).change_count, 3u);
  executor_.Advance(1min);
  EXPECT_EQ(Status(kA).log_reads, 5u) << "no retry after a success";
  EXPECT_EQ(Status(kB).log_failures, 0u);
}

INSTANTIATE_TEST_SUITE_P(Corruptions, AnaMalformedLogTest,
                         ::testing::Values(Corruption::kNsidListCut, Corruption::kMoreGroupsThanArrived,
                                           Corruption::kReservedState, Corruption::kGroupZero,
                                           Corruption::kNsidInTwoGroups, Corruption::kFailed));

TEST_F(AnaEngineTest, AFailedFirstReadReportsNothingUntilALogArrives) {
  MakeSan();
  AddNamespace(1, 1);
  NvmeTransport& a = Connect("a", 1);
  InstallCorruption(*subsystem_, Corruption::kReservedState);
  MakeEngine();
  Add(kA, a);
  Watch(kA, 1, 1);
  executor_.Advance(2s);
  EXPECT_EQ(Status(kA).log_failures, 2u);
  EXPECT_TRUE(recorder_.changes.empty());
  EXPECT_FALSE(engine_->NamespaceState(kA, 1).has_value());
  subsystem_->SetHandler(QueueKind::kAdmin, kGetLogPage, {});
  executor_.Advance(2s);
  ExpectStates(kA, {{1, AccessState::kOptimized}});
}

// --- Asynchronous Event Requests.

TEST_F(AnaEngineTest, AnAerLostToALinkDownIsReArmedWithBackoffAndTheLogReadAgain) {
  Standard();
  sim::LinkFaults& link = Faults("a");
  link.SetLinkDown(true);
  // The notice reaches the host, but neither the log read nor the next request gets through.
  SetAna(1, 1, AnaState::kInaccessible);
  executor_.RunUntilIdle();
  EXPECT_EQ(Status(kA).events, 1u);
  EXPECT_EQ(Status(kA).log_failures, 1u);
  EXPECT_EQ(Status(kA).aers_outstanding, 0u);
  ExpectStates(kA, {{1, AccessState::kOptimized}});
  const std::uint64_t aers = AerCommands();

  executor_.Advance(1s);  // first re-arm: the link is still down
  executor_.Advance(2s);  // second
  EXPECT_EQ(Status(kA).aers_outstanding, 0u);
  EXPECT_EQ(AerCommands(), aers) << "a down link fails them before the controller";
  EXPECT_GE(link.counts().link_down, 4u);

  link.SetLinkDown(false);
  SetAna(1, 2, AnaState::kOptimized);  // no request outstanding: the controller keeps the notice
  executor_.Advance(4s);
  EXPECT_EQ(Status(kA).aers_outstanding, 1u);
  EXPECT_EQ(AerCommands(), aers + 1);
  ExpectStates(kA, {{1, AccessState::kUnavailable}, {3, AccessState::kOptimized}});

  // A change after the link came back is announced and seen.
  SetAna(1, 1, AnaState::kNonOptimized);
  executor_.RunUntilIdle();
  ExpectStates(kA, {{1, AccessState::kNonOptimized}, {2, AccessState::kNonOptimized}});
  EXPECT_EQ(Status(kA).aers_outstanding, 1u);
}

TEST_F(AnaEngineTest, AnAbortedAerIsReArmedAfterDoublingDelaysThenTheLogIsReadAgain) {
  Standard();
  int aborts = 2;
  auto abort_some = [&aborts](fake::CommandContext& context) {
    if (aborts > 0) {
      --aborts;
      context.command.delivery = Delivery::kAborted;
      return;
    }
    context.subsystem.DefaultHandler(context);
  };
  // A controller reset aborts what it had outstanding; the request that the next notice completes is the first.
  subsystem_->SetHandler(QueueKind::kAdmin, kAer, abort_some);
  SetAna(1, 2, AnaState::kOptimized);
  executor_.RunUntilIdle();
  ExpectStates(kA, {{3, AccessState::kOptimized}});
  const std::uint64_t aers = AerCommands();
  const std::uint64_t reads = Status(kA).log_reads;
  EXPECT_EQ(Status(kA).aers_outstanding, 0u) << "the re-arm was aborted";
  executor_.Advance(1s - 1ns);
  EXPECT_EQ(AerCommands(), aers);
  executor_.Advance(1ns);
  EXPECT_EQ(AerCommands(), aers + 1) << "aborted again";
  executor_.Advance(2s - 1ns);
  EXPECT_EQ(AerCommands(), aers + 1);
  executor_.Advance(1ns);
  EXPECT_EQ(AerCommands(), aers + 2);
  EXPECT_EQ(Status(kA).aers_outstanding, 1u);
  EXPECT_EQ(Status(kA).log_reads, reads + 2) << "after each re-arm, the log: events may have been missed";
  SetAna(1, 2, AnaState::kNonOptimized);
  executor_.RunUntilIdle();
  ExpectStates(kA, {{3, AccessState::kNonOptimized}});
}

class AnaAerRefusedTest : public AnaEngineTest, public ::testing::WithParamInterface<spec::Status> {};

TEST_P(AnaAerRefusedTest, StopsAskingButKeepsReadingTheLog) {
  MakeSan();
  AddNamespace(1, 1);
  const spec::Status refusal = GetParam();
  subsystem_->SetHandler(QueueKind::kAdmin, kAer,
                         [refusal](fake::CommandContext& context) { context.command.cqe.set_status(refusal); });
  NvmeTransport& a = Connect("a", 1);
  MakeEngine();
  Add(kA, a);
  Watch(kA, 1, 1);
  executor_.RunUntilIdle();
  executor_.Advance(5min);
  EXPECT_EQ(AerCommands(), 1u) << "refused once, never asked again";
  EXPECT_EQ(Status(kA).aers_outstanding, 0u);
  EXPECT_EQ(Status(kA).log_reads, 1u);
  SetAna(1, 1, AnaState::kNonOptimized);
  engine_->OnAnaStatus(kA);
  executor_.RunUntilIdle();
  ExpectStates(kA, {{1, AccessState::kNonOptimized}});
}

INSTANTIATE_TEST_SUITE_P(
    Refusals, AnaAerRefusedTest,
    ::testing::Values(spec::MakeStatus(spec::GenericStatus::kInvalidCommandOpcode, spec::Dnr::kSet),
                      spec::MakeStatus(spec::CommandSpecificStatus::kAsynchronousEventRequestLimitExceeded,
                                       spec::Dnr::kSet)));

TEST_F(AnaEngineTest, AnAerFailingWithAnotherStatusIsRetried) {
  MakeSan();
  AddNamespace(1, 1);
  int failures = 1;
  subsystem_->SetHandler(QueueKind::kAdmin, kAer, [&failures](fake::CommandContext& context) {
    if (failures-- > 0) {
      context.command.cqe.set_status(spec::MakeStatus(spec::GenericStatus::kInternalError));
      return;
    }
    context.subsystem.DefaultHandler(context);
  });
  NvmeTransport& a = Connect("a", 1);
  MakeEngine();
  Add(kA, a);
  executor_.RunUntilIdle();
  EXPECT_EQ(Status(kA).aers_outstanding, 0u);
  executor_.Advance(1s);
  EXPECT_EQ(AerCommands(), 2u);
  EXPECT_EQ(Status(kA).aers_outstanding, 1u);
}

TEST_F(AnaEngineTest, OtherEventsAreAcknowledgedByReadingTheirLogPage) {
  MakeSan();
  AddNamespace(1, 1);
  // The first request completes at once with an error-status event (log page 01h), the second with a SMART event
  // (02h, a page the subsystem does not have); later ones wait as usual.
  int answered = 0;
  subsystem_->SetHandler(QueueKind::kAdmin, kAer, [&answered](fake::CommandContext& context) {
    const std::uint8_t log_page = ++answered == 1 ? 0x01 : 0x02;
    if (answered <= 2) {
      const spec::AsyncEvent event{answered == 1 ? std::uint8_t{0} : std::uint8_t{1}, 0, log_page};
      context.command.cqe.dw0 = event.Encode();
      return;
    }
    context.subsystem.DefaultHandler(context);
  });
  std::vector<std::uint8_t> lids;
  subsystem_->SetHandler(QueueKind::kAdmin, kGetLogPage, [&lids](fake::CommandContext& context) {
    const spec::GetLogPageFields fields = spec::DecodeGetLogPage(context.command.sqe);
    lids.push_back(static_cast<std::uint8_t>(fields.lid));
    EXPECT_EQ(fields.rae, spec::RetainAsyncEvent::kClear);
    context.subsystem.DefaultHandler(context);
  });
  NvmeTransport& a = Connect("a", 1);
  MakeEngine();
  Add(kA, a);
  Watch(kA, 1, 1);
  executor_.RunUntilIdle();
  executor_.Advance(5min);
  EXPECT_EQ(lids, (std::vector<std::uint8_t>{kAnaLid, 0x01, 0x02})) << "Invalid Log Page (DNR) is not retried";
  EXPECT_EQ(Status(kA).events, 2u);
  EXPECT_EQ(Status(kA).aers_outstanding, 1u);
  EXPECT_EQ(Status(kA).log_reads, 1u) << "acknowledgements are not ANA log reads";
  ExpectStates(kA, {{1, AccessState::kOptimized}});
}

// --- Namespace Attribute Changed.

TEST_F(AnaEngineTest, NamespaceAttributeNoticesNameTheChangedNamespaces) {
  Standard();
  AddNamespace(7, 2);
  ASSERT_TRUE(subsystem_->ChangeIdentity(3, {0x11}, {}, {}).has_value());
  executor_.RunUntilIdle();
  ASSERT_EQ(recorder_.namespaces.size(), 2u);
  for (const auto& changed : recorder_.namespaces) {
    EXPECT_EQ(changed.nsids, (std::vector<std::uint32_t>{3, 7})) << "controller " << changed.key;
    EXPECT_FALSE(changed.all);
  }
  EXPECT_EQ(Status(kA).log_reads, 1u) << "no ANA log read for a namespace notice";
  EXPECT_EQ(Status(kA).aers_outstanding, 1u);

  // The list was read (and cleared): the next change is announced on its own.
  ASSERT_TRUE(subsystem_->ChangeCapacity(2, 2048).has_value());
  executor_.RunUntilIdle();
  ASSERT_EQ(recorder_.namespaces.size(), 4u);
  EXPECT_EQ(recorder_.namespaces[2].nsids, (std::vector<std::uint32_t>{2}));
}

TEST_F(AnaEngineTest, ANamespaceInAGroupTheLogDidNotDescribeMakesTheLogReadAgain) {
  Standard();
  SetAna(1, 3, AnaState::kNonOptimized);  // group 3 holds no namespace yet, so no log lists it
  executor_.RunUntilIdle();
  AddNamespace(9, 3);
  executor_.RunUntilIdle();
  const std::uint64_t reads = Status(kA).log_reads;
  Watch(kA, 9, 3);
  executor_.RunUntilIdle();
  EXPECT_EQ(Status(kA).log_reads, reads + 1);
  ExpectStates(kA, {{9, AccessState::kNonOptimized}});
  EXPECT_EQ(std::count_if(recorder_.changes.begin(), recorder_.changes.end(),
                          [](const Recorder::Change& c) { return c.key == kA && c.nsid == 9; }),
            1)
      << "reported once, from the fresh log";

  // A namespace whose group no log describes even then is inaccessible.
  Watch(kA, 10, 77);
  executor_.RunUntilIdle();
  ExpectStates(kA, {{10, AccessState::kUnavailable}});
}

TEST_F(AnaEngineTest, AChangedNamespaceListThatOverflowedAsksForAFullRescan) {
  fake::SubsystemConfig config;
  config.max_namespaces = 2048;
  MakeSan(config);
  AddNamespace(1, 1);
  NvmeTransport& a = Connect("a", 1);
  MakeEngine();
  Add(kA, a);
  executor_.RunUntilIdle();
  for (std::uint32_t nsid = 2; nsid <= 1026; ++nsid) AddNamespace(nsid, 1);
  executor_.RunUntilIdle();
  ASSERT_EQ(recorder_.namespaces.size(), 1u);
  EXPECT_TRUE(recorder_.namespaces[0].all);
}

TEST_F(AnaEngineTest, AnUnreadableChangedNamespaceListAsksForAFullRescan) {
  Standard();
  subsystem_->SetHandler(QueueKind::kAdmin, kGetLogPage, [](fake::CommandContext& context) {
    if (spec::DecodeGetLogPage(context.command.sqe).lid == spec::LogPageId::kChangedNamespaceList) {
      context.command.cqe.set_status(spec::MakeStatus(spec::GenericStatus::kInvalidFieldInCommand, spec::Dnr::kSet));
      return;
    }
    context.subsystem.DefaultHandler(context);
  });
  AddNamespace(7, 1);
  executor_.RunUntilIdle();
  ASSERT_EQ(recorder_.namespaces.size(), 2u);
  EXPECT_TRUE(recorder_.namespaces[0].all);
  EXPECT_TRUE(recorder_.namespaces[0].nsids.empty());
}

// --- Controllers without ANA.

TEST_F(AnaEngineTest, AControllerWithoutAnaReportingMakesEveryNamespaceOptimized) {
  fake::SubsystemConfig config;
  config.cmic = 0x03;  // multi-port, multi-controller, no ANARS
  MakeSan(config);
  AddNamespace(1, 1);
  AddNamespace(2, 2);
  SetAna(1, 2, AnaState::kInaccessible);  // not reported, so not believed
  NvmeTransport& a = Connect("a", 1);
  MakeEngine();
  Add(kA, a);
  Watch(kA, 1, 1);
  Watch(kA, 2, 2);
  executor_.RunUntilIdle();
  ExpectStates(kA, {{1, AccessState::kOptimized}, {2, AccessState::kOptimized}});
  EXPECT_FALSE(Status(kA).ana);
  EXPECT_EQ(LogPageCommands(), 0u);
  engine_->OnAnaStatus(kA);
  engine_->RefreshAll();
  executor_.RunUntilIdle();
  EXPECT_EQ(Status(kA).log_reads, 0u);
  EXPECT_EQ(Status(kA).aers_outstanding, 1u) << "namespace notices still matter";
  EXPECT_EQ(recorder_.changes.size(), 2u);
}

// --- Removal and teardown.

TEST_F(AnaEngineTest, RemovingAControllerMidReadIsHarmless) {
  Standard();
  Faults("a").SetLatency(10ms);
  engine_->Refresh(kA);
  executor_.RunUntilIdle();
  ASSERT_EQ(Status(kA).log_reads, 2u);
  SetAna(1, 1, AnaState::kInaccessible);
  ASSERT_TRUE(engine_->RemoveController(kA).has_value());
  EXPECT_FALSE(engine_->ControllerStatus(kA).has_value());
  const std::size_t before = recorder_.changes.size();
  executor_.Advance(1s);
  EXPECT_EQ(recorder_.changes.size(), before) << "the late log and notice reach nobody";

  // The same key again is a new controller: the old one's answers never reach it.
  Faults("a").SetLatency(Nanos(0));
  Add(kA, *a_);
  Watch(kA, 1, 1);
  executor_.RunUntilIdle();
  ExpectStates(kA, {{1, AccessState::kUnavailable}});
  EXPECT_EQ(Status(kA).log_reads, 1u);
  EXPECT_EQ(Status(kA).aers_outstanding, 1u);
}

TEST_F(AnaEngineTest, RemovingAControllerBeforeItsAerIsAbortedIsHarmless) {
  Standard();
  ASSERT_TRUE(engine_->RemoveController(kB).has_value());
  ASSERT_TRUE(san_->Disconnect("b").has_value());  // aborts the request the engine left there
  executor_.RunUntilIdle();
  SetAna(1, 1, AnaState::kNonOptimized);
  executor_.RunUntilIdle();
  ExpectStates(kA, {{1, AccessState::kNonOptimized}});
}

TEST_F(AnaEngineTest, DestroyingTheEngineWithCommandsInFlightIsHarmless) {
  Standard();
  Faults("a").SetLatency(10ms);
  engine_->RefreshAll();
  executor_.RunUntilIdle();
  SetAna(2, 2, AnaState::kInaccessible);  // B's notice completes; its handling is queued
  engine_.reset();
  executor_.Advance(1s);
  EXPECT_EQ(recorder_.changes.size(), 8u);
}

TEST_F(AnaEngineTest, ACallbackMayRemoveItsControllerOrDestroyTheEngine) {
  Standard();
  int calls = 0;
  AnaCallbacks callbacks;
  callbacks.on_state = [&](ControllerKey key, std::uint32_t, AccessState) {
    ++calls;
    ASSERT_TRUE(engine_->RemoveController(key).has_value());
  };
  engine_.reset();
  engine_ = AnaEngine::Create(executor_, {}, std::move(callbacks)).value();
  Add(kA, *a_);
  for (std::uint32_t nsid = 1; nsid <= 4; ++nsid) Watch(kA, nsid, 1);
  executor_.RunUntilIdle();
  EXPECT_EQ(calls, 1) << "the rest of the batch belonged to the removed controller";

  callbacks = {};
  callbacks.on_state = [&](ControllerKey, std::uint32_t, AccessState) {
    ++calls;
    engine_.reset();
  };
  engine_ = AnaEngine::Create(executor_, {}, std::move(callbacks)).value();
  Add(kA, *a_);
  Add(kB, *b_);
  Watch(kA, 1, 1);
  Watch(kB, 1, 1);
  executor_.RunUntilIdle();
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(engine_, nullptr);
  executor_.Advance(1min);
}

// --- Threads.

TEST_F(AnaEngineTest, EventsFromManyThreadsWhileTheExecutorRuns) {
  Standard();
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([this, t, &stop] {
      for (int i = 0; i < 2000 && !stop.load(); ++i) {
        switch ((i + t) % 3) {
          case 0: engine_->OnAnaStatus(kA); break;
          case 1: engine_->Refresh(kB); break;
          default: engine_->RefreshAll(); break;
        }
      }
    });
  }
  for (int round = 0; round < 50; ++round) {
    if (round == 25) SetAna(1, 1, AnaState::kNonOptimized);
    executor_.RunUntilIdle();
  }
  stop = true;
  for (std::thread& thread : threads) thread.join();
  executor_.RunUntilIdle();
  ExpectStates(kA, {{1, AccessState::kNonOptimized}, {3, AccessState::kNonOptimized}});
  ExpectStates(kB, {{1, AccessState::kUnavailable}, {3, AccessState::kOptimized}});
  EXPECT_EQ(Status(kA).log_failures, 0u);
}

}  // namespace
}  // namespace mpath::nvme
