#include "mpath/scsi/alua_engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "alua_test_util.h"
#include "mpath/sim/san.h"

namespace mpath::scsi::alua_testing {
namespace {

using spec::SenseKey;

constexpr PathKey kA = 1;  // LU 0 through port 1 (group 10)
constexpr PathKey kB = 2;  // LU 0 through port 2 (group 20)

class AluaEngineTest : public AluaFixture {
 protected:
  // The lab layout with both paths of LU 0 discovered.
  void Discover(AluaOptions options = {}, fake::ArrayConfig config = {}) {
    MakeArray(std::move(config));
    ScsiTransport& port1 = Connect(1);
    ScsiTransport& port2 = Connect(2);
    MakeEngine(options);
    AddPath(kA, port1, 0, 1, 10);
    AddPath(kB, port2, 0, 2, 20);
    executor_.RunUntilIdle();
  }
};

TEST(AluaModeTest, ParsesAndNames) {
  EXPECT_EQ(ParseAluaMode("implicit").value(), AluaMode::kImplicit);
  EXPECT_EQ(ParseAluaMode("explicit").value(), AluaMode::kExplicit);
  EXPECT_EQ(ParseAluaMode("both").error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(Name(AluaMode::kExplicit), "explicit");
}

TEST_F(AluaEngineTest, CreateAndAddPathRejectBadArguments) {
  ManualClock clock;
  mpath::testing::ManualExecutor executor(clock);
  EXPECT_FALSE(AluaEngine::Create(executor, {}, {}).has_value()) << "on_state is required";
  AluaOptions tiny;
  tiny.initial_rtpg_length = 4;
  EXPECT_FALSE(AluaEngine::Create(executor, tiny, recorder_.Callbacks()).has_value());

  MakeArray();
  ScsiTransport& port1 = Connect(1);
  MakeEngine();
  EXPECT_EQ(engine_->AddPath({1, nullptr, 0, "t", 1, 10}).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(engine_->AddPath({1, &port1, 0, "", 1, 10}).error().code(), Errc::kInvalidArgument);
  ASSERT_TRUE(engine_->AddPath({1, &port1, 0, "t", 1, 10}).has_value());
  EXPECT_EQ(engine_->AddPath({1, &port1, 0, "t", 1, 10}).error().code(), Errc::kAlreadyExists);
  EXPECT_EQ(engine_->RemovePath(7).error().code(), Errc::kNotFound);
  EXPECT_TRUE(engine_->RemovePath(1).has_value());
  executor_.RunUntilIdle();
  EXPECT_TRUE(recorder_.changes.empty());
}

TEST_F(AluaEngineTest, DiscoveryReportsEachGroupWithItsPreferredBitOnce) {
  MakeArray();
  ScsiTransport& port1 = Connect(1);
  ScsiTransport& port2 = Connect(2);
  RecordRtpgs();
  MakeEngine();
  AddPath(kA, port1, 0, 1, 10);
  AddPath(kB, port2, 0, 2, 20);
  EXPECT_TRUE(recorder_.changes.empty()) << "callbacks run on the executor, never inside AddPath";
  executor_.RunUntilIdle();

  EXPECT_EQ(Latest(kA), (Reported{AccessState::kOptimized, true}));
  EXPECT_EQ(Latest(kB), (Reported{AccessState::kNonOptimized, false}));
  EXPECT_EQ(recorder_.changes.size(), 2u);
  // One LU, one RTPG answer for both of its paths: the first met the fresh nexus's 29/00, the retry was read.
  EXPECT_EQ(formats_, (std::vector<std::uint8_t>{kExtended, kExtended}));
  ASSERT_EQ(recorder_.unit_attentions.size(), 1u);
  EXPECT_EQ(recorder_.unit_attentions[0].first, kA);
  EXPECT_EQ(recorder_.unit_attentions[0].second, spec::asc::kPowerOnResetOrBusDeviceReset);

  const AluaPathStatus b = engine_->PathStatus(kB).value();
  EXPECT_TRUE(b.verified);
  EXPECT_EQ(b.target_port_group, 20);
  const AluaTargetStatus target = engine_->TargetStatus(array_->config().target_name).value();
  EXPECT_TRUE(target.alua);
  EXPECT_TRUE(target.extended_header);
  EXPECT_FALSE(target.cuts_extended_reply);
  EXPECT_EQ(target.transition_timeout, std::chrono::seconds(array_->config().transition_time_secs));
}

TEST_F(AluaEngineTest, EveryAccessStateChangeReachesOnState) {
  Discover();
  const std::pair<AluaState, AccessState> cases[] = {
      {AluaState::kActiveNonOptimized, AccessState::kNonOptimized},
      {AluaState::kStandby, AccessState::kStandby},
      {AluaState::kUnavailable, AccessState::kUnavailable},
      {AluaState::kLogicalBlockDependent, AccessState::kNonOptimized},
      {AluaState::kOffline, AccessState::kUnavailable},
      {AluaState::kTransitioning, AccessState::kTransitioning},
      {AluaState::kActiveOptimized, AccessState::kOptimized},
  };
  for (const auto& [wire_state, expected] : cases) {
    SCOPED_TRACE(static_cast<int>(wire_state));
    const std::size_t before = recorder_.changes.size();
    ASSERT_TRUE(array_->SetAccessState(10, wire_state).has_value());
    engine_->OnSense(kA, kStateChanged);
    executor_.RunUntilIdle();
    EXPECT_EQ(Latest(kA), (Reported{expected, true}));
    EXPECT_EQ(recorder_.changes.size(), before + 1) << "one call per change, none for the unchanged path";
    EXPECT_EQ(Latest(kB), (Reported{AccessState::kNonOptimized, false}));
  }
  // The preferred bit alone is a change too (SetPreferred raises no unit attention: ask explicitly).
  ASSERT_TRUE(array_->SetPreferred(10, false).has_value());
  ASSERT_TRUE(array_->SetPreferred(20, true).has_value());
  engine_->Refresh(kB);
  executor_.RunUntilIdle();
  EXPECT_EQ(Latest(kA), (Reported{AccessState::kOptimized, false}));
  EXPECT_EQ(Latest(kB), (Reported{AccessState::kNonOptimized, true}));
}

TEST_F(AluaEngineTest, TransitionIsReportedAtOnceThenTheNewState) {
  Discover();
  // Group 10 moves to standby over 4 s; the I/O path sees 04/0A first.
  ASSERT_TRUE(array_->SetAccessState(10, AluaState::kStandby, 4s).has_value());
  const std::uint64_t rtpgs = Rtpgs();
  std::uint64_t rtpgs_at_report = 0;
  recorder_.on_state_hook = [&](PathKey key, AccessState state) {
    if (key == kA && state == AccessState::kTransitioning) rtpgs_at_report = Rtpgs();
  };
  engine_->OnSense(kA, spec::asc::kLunNotReadyAsymmetricTransition);
  executor_.RunUntilIdle();
  EXPECT_EQ(Latest(kA).state, AccessState::kTransitioning);
  EXPECT_EQ(rtpgs_at_report, rtpgs) << "04/0A is reported before any RTPG is sent";
  EXPECT_GT(Rtpgs(), rtpgs) << "and an RTPG follows";

  executor_.Advance(3s);
  EXPECT_EQ(Latest(kA).state, AccessState::kTransitioning);
  executor_.Advance(5s);  // polls at 1 s, 3 s and 7 s; the transition ended at 4 s
  EXPECT_EQ(recorder_.History(kA), (std::vector<Reported>{{AccessState::kOptimized, true},
                                                          {AccessState::kTransitioning, true},
                                                          {AccessState::kStandby, true}}));
  const std::uint64_t settled = Rtpgs();
  executor_.Advance(60s);
  EXPECT_EQ(Rtpgs(), settled) << "polling stops once the transition has ended";
  EXPECT_EQ(executor_.pending_timers(), 0u);
}

TEST_F(AluaEngineTest, TransitionTimeoutReportsStandbyAndPollingContinuesWithBackOff) {
  fake::ArrayConfig config;
  config.transition_time_secs = 3;  // IMPLICIT TRANSITION TIME
  Discover({}, config);
  ASSERT_TRUE(array_->SetAccessState(10, AluaState::kActiveOptimized, 100s).has_value());
  engine_->OnSense(kA, kStateChanged);
  executor_.RunUntilIdle();
  EXPECT_EQ(Latest(kA).state, AccessState::kTransitioning);

  executor_.Advance(2900ms);
  EXPECT_EQ(Latest(kA).state, AccessState::kTransitioning);
  executor_.Advance(100ms);
  EXPECT_EQ(Latest(kA).state, AccessState::kStandby) << "the core stops waiting at the timeout";
  EXPECT_EQ(Latest(kB).state, AccessState::kNonOptimized);

  const std::uint64_t at_timeout = Rtpgs();
  executor_.Advance(60s);
  const std::uint64_t polls = Rtpgs() - at_timeout;
  EXPECT_GE(polls, 5u) << "still polling";
  EXPECT_LE(polls, 12u) << "with back-off (intervals double up to 10 s)";
  EXPECT_EQ(Latest(kA).state, AccessState::kStandby);

  executor_.Advance(50s);  // the transition ends at 100 s
  EXPECT_EQ(recorder_.History(kA), (std::vector<Reported>{{AccessState::kOptimized, true},
                                                          {AccessState::kTransitioning, true},
                                                          {AccessState::kStandby, true},
                                                          {AccessState::kOptimized, true}}));
}

TEST_F(AluaEngineTest, TransitionTimeoutIsReportedEvenWhenNoRtpgGetsThrough) {
  Discover();  // the array's IMPLICIT TRANSITION TIME: 10 s
  array_->SetHandler(kRtpgOpcode,
                     [](fake::CommandContext& context) { context.command.delivery = Delivery::kLinkDown; });
  engine_->OnSense(kA, spec::asc::kLunNotReadyAsymmetricTransition);
  executor_.RunUntilIdle();
  EXPECT_EQ(Latest(kA).state, AccessState::kTransitioning);
  executor_.Advance(9s);
  EXPECT_EQ(Latest(kA).state, AccessState::kTransitioning);
  executor_.Advance(1s);
  EXPECT_EQ(Latest(kA).state, AccessState::kStandby);

  array_->SetHandler(kRtpgOpcode, {});
  executor_.Advance(1min);
  EXPECT_EQ(Latest(kA).state, AccessState::kOptimized) << "the retries got through once the links came back";
}

TEST_F(AluaEngineTest, NotReadyAnswerToRtpgNamesThatPortsStateAndAnotherNexusIsAsked) {
  Discover();
  // Port 1 (nexus 0) cannot answer RTPG while it transitions; port 2 can.
  array_->SetHandler(kRtpgOpcode, [](fake::CommandContext& context) {
    if (context.nexus_index == 0) {
      spec::SetCheckCondition(context.command, spec::SenseFormat::kFixed,
                              spec::asc::kLunNotReadyAsymmetricTransition);
      context.command.residual = static_cast<std::uint32_t>(context.command.data.size());
      return;
    }
    context.array.DefaultHandler(context);
  });
  ASSERT_TRUE(array_->SetAccessState(10, AluaState::kActiveNonOptimized).has_value());
  engine_->OnSense(kA, kStateChanged);
  executor_.RunUntilIdle();
  EXPECT_EQ(recorder_.History(kA), (std::vector<Reported>{{AccessState::kOptimized, true},
                                                          {AccessState::kTransitioning, true},
                                                          {AccessState::kNonOptimized, true}}));
}

TEST_F(AluaEngineTest, ShortBufferIsReadAgainAtTheAnnouncedLengthAndRemembered) {
  std::vector<std::uint16_t> low;
  std::vector<std::uint16_t> high;
  for (std::uint16_t p = 1; p <= 40; ++p) low.push_back(p);
  for (std::uint16_t p = 41; p <= 80; ++p) high.push_back(p);
  MakeArray({}, {{10, AluaState::kActiveOptimized, false, low}, {20, AluaState::kStandby, false, high}});
  ScsiTransport& port1 = Connect(1);
  ScsiTransport& port41 = Connect(41);
  ClearUnitAttentions(port1, 0);
  ClearUnitAttentions(port41, 0);
  RecordRtpgs();
  MakeEngine();
  AddPath(kA, port1, 0, 1, 10);
  AddPath(kB, port41, 0, 41, 20);
  executor_.RunUntilIdle();

  constexpr std::uint32_t kWhole = 8 + 2 * (8 + 40 * 4);  // extended header + two groups of 40 ports
  EXPECT_EQ(allocations_, (std::vector<std::uint32_t>{128, kWhole}));
  EXPECT_EQ(Latest(kA), (Reported{AccessState::kOptimized, false}));
  EXPECT_EQ(Latest(kB), (Reported{AccessState::kStandby, false}));
  EXPECT_TRUE(engine_->PathStatus(kB)->verified) << "port 41 is the first of group 20's list, past byte 128";
  EXPECT_EQ(engine_->TargetStatus(array_->config().target_name)->rtpg_length, kWhole);

  engine_->Refresh(kA);
  executor_.RunUntilIdle();
  EXPECT_EQ(allocations_, (std::vector<std::uint32_t>{128, kWhole, kWhole})) << "one read at the known length";
}

TEST_F(AluaEngineTest, LioTruncatedExtendedReplyIsVerifiedLengthOnly) {
  fake::ArrayConfig config;
  config.lio_truncated_extended_rtpg = true;
  config.transition_time_secs = 7;
  MakeArray(config);
  ScsiTransport& port1 = Connect(1);
  ScsiTransport& port2 = Connect(2);
  ClearUnitAttentions(port1, 0);
  ClearUnitAttentions(port2, 0);
  RecordRtpgs();
  MakeEngine();
  AddPath(kA, port1, 0, 1, 10);
  AddPath(kB, port2, 0, 2, 20);
  executor_.RunUntilIdle();

  // The extended reply lost port 2 (the last 4 bytes), so port 2's membership was read again length-only.
  EXPECT_EQ(formats_, (std::vector<std::uint8_t>{kExtended, kLengthOnly}));
  EXPECT_EQ(Latest(kA), (Reported{AccessState::kOptimized, true}));
  EXPECT_EQ(Latest(kB), (Reported{AccessState::kNonOptimized, false}));
  const AluaTargetStatus target = engine_->TargetStatus(config.target_name).value();
  EXPECT_TRUE(target.cuts_extended_reply);
  EXPECT_TRUE(target.extended_header);
  EXPECT_EQ(target.transition_timeout, 7s) << "taken from the cut reply's header, which arrived whole";

  // Refreshes keep the extended header: every group descriptor arrives whole, only the last port is cut.
  ASSERT_TRUE(array_->SetAccessState(20, AluaState::kStandby).has_value());
  engine_->OnSense(kB, kStateChanged);
  executor_.RunUntilIdle();
  EXPECT_EQ(Latest(kB), (Reported{AccessState::kStandby, false}));
  EXPECT_EQ(formats_.back(), kExtended);

  // A new LU is verified length-only straight away (after the 3F/0E its arrival raised, handed on as a rescan).
  fake::LogicalUnitConfig lu1;
  lu1.lun = 1;
  lu1.blocks = 64;
  lu1.naa = NaaFor(1);
  ASSERT_TRUE(array_->AddLogicalUnit(lu1).has_value());
  const std::size_t before = formats_.size();
  AddPath(3, port2, 1, 2, 20);
  executor_.RunUntilIdle();
  EXPECT_EQ(std::vector<std::uint8_t>(formats_.begin() + static_cast<std::ptrdiff_t>(before), formats_.end()),
            (std::vector<std::uint8_t>{kLengthOnly, kLengthOnly}))
      << "the 3F/0E its arrival raised came back first";
  EXPECT_EQ(Latest(3), (Reported{AccessState::kStandby, false}));
  EXPECT_EQ(recorder_.rescans, (std::vector<PathKey>{3}));
}

TEST_F(AluaEngineTest, RefusedExtendedHeaderFallsBackToLengthOnlyAndRemembersIt) {
  MakeArray();
  ScsiTransport& port1 = Connect(1);
  ScsiTransport& port2 = Connect(2);
  ClearUnitAttentions(port1, 0);
  ClearUnitAttentions(port2, 0);
  // An older array: ILLEGAL REQUEST for PARAMETER DATA FORMAT 001b.
  array_->SetHandler(kRtpgOpcode, [this](fake::CommandContext& context) {
    formats_.push_back(static_cast<std::uint8_t>(context.command.cdb[1] >> 5));
    if (formats_.back() == kExtended) {
      spec::SetCheckCondition(context.command, spec::SenseFormat::kFixed, spec::asc::kInvalidFieldInCdb);
      context.command.residual = static_cast<std::uint32_t>(context.command.data.size());
      return;
    }
    context.array.DefaultHandler(context);
  });
  MakeEngine();
  AddPath(kA, port1, 0, 1, 10);
  AddPath(kB, port2, 0, 2, 20);
  executor_.RunUntilIdle();
  EXPECT_EQ(formats_, (std::vector<std::uint8_t>{kExtended, kLengthOnly}));
  EXPECT_EQ(Latest(kA), (Reported{AccessState::kOptimized, true}));
  EXPECT_EQ(Latest(kB), (Reported{AccessState::kNonOptimized, false}));
  const AluaTargetStatus target = engine_->TargetStatus(array_->config().target_name).value();
  EXPECT_FALSE(target.extended_header);
  EXPECT_EQ(target.transition_timeout, 60s) << "no header to say otherwise";

  ASSERT_TRUE(array_->SetAccessState(10, AluaState::kActiveNonOptimized).has_value());
  ASSERT_TRUE(array_->SetAccessState(20, AluaState::kActiveOptimized).has_value());
  engine_->OnSense(kA, kStateChanged);
  executor_.RunUntilIdle();
  EXPECT_EQ(formats_, (std::vector<std::uint8_t>{kExtended, kLengthOnly, kLengthOnly, kLengthOnly}))
      << "length-only from then on (the first met 2A/06)";
  EXPECT_EQ(Latest(kA).state, AccessState::kNonOptimized);
  EXPECT_EQ(Latest(kB).state, AccessState::kOptimized);
}

TEST_F(AluaEngineTest, TargetWithoutAluaReportsEveryPathOptimized) {
  fake::ArrayConfig config;
  config.tpgs = 0;  // tgt: RTPG is ILLEGAL REQUEST in both formats
  MakeArray(config, {{1, AluaState::kActiveOptimized, false, {1, 2}}});
  ScsiTransport& port1 = Connect(1);
  ScsiTransport& port2 = Connect(2);
  MakeEngine();
  AddPath(kA, port1, 0, 1, 0);
  AddPath(kB, port2, 0, 2, 0);
  executor_.RunUntilIdle();
  EXPECT_EQ(Latest(kA), (Reported{AccessState::kOptimized, false}));
  EXPECT_EQ(Latest(kB), (Reported{AccessState::kOptimized, false}));
  EXPECT_FALSE(engine_->TargetStatus(config.target_name)->alua);
  EXPECT_EQ(Rtpgs(), 3u) << "29/00, then refused extended, then refused length-only";

  engine_->OnSense(kA, kStateChanged);
  engine_->RefreshAll();
  AddPath(3, port1, 1, 1, 0);  // a LU the array does not have: still nothing to ask
  executor_.RunUntilIdle();
  EXPECT_EQ(Rtpgs(), 3u);
  EXPECT_EQ(Latest(3), (Reported{AccessState::kOptimized, false}));
}

TEST_F(AluaEngineTest, ExplicitAluaActivatesThePreferredGroup) {
  AluaOptions options;
  options.mode = AluaMode::kExplicit;
  MakeArray({}, {{10, AluaState::kStandby, false, {1}}, {20, AluaState::kStandby, true, {2}}});
  ScsiTransport& port1 = Connect(1);
  ScsiTransport& port2 = Connect(2);
  ClearUnitAttentions(port1, 0);
  ClearUnitAttentions(port2, 0);
  MakeEngine(options);
  AddPath(kA, port1, 0, 1, 10);
  AddPath(kB, port2, 0, 2, 20);
  executor_.RunUntilIdle();
  EXPECT_EQ(array_->CommandCount(kStpgOpcode), 1u);
  EXPECT_EQ(array_->AccessState(20).value(), AluaState::kActiveOptimized);
  EXPECT_EQ(Latest(kB), (Reported{AccessState::kOptimized, true})) << "re-read after the STPG";
  EXPECT_EQ(Latest(kA), (Reported{AccessState::kStandby, false}));
  executor_.Advance(10min);
  EXPECT_EQ(array_->CommandCount(kStpgOpcode), 1u);
}

TEST_F(AluaEngineTest, ExplicitAluaWithoutPreferenceActivatesTheFirstPathsGroup) {
  AluaOptions options;
  options.mode = AluaMode::kExplicit;
  MakeArray({}, {{10, AluaState::kStandby, false, {1}}, {20, AluaState::kActiveNonOptimized, false, {2}}});
  ScsiTransport& port1 = Connect(1);
  ScsiTransport& port2 = Connect(2);
  ClearUnitAttentions(port1, 0);
  ClearUnitAttentions(port2, 0);
  MakeEngine(options);
  AddPath(kB, port2, 0, 2, 20);  // the first path
  AddPath(kA, port1, 0, 1, 10);
  executor_.RunUntilIdle();
  EXPECT_EQ(array_->CommandCount(kStpgOpcode), 1u);
  EXPECT_EQ(array_->AccessState(20).value(), AluaState::kActiveOptimized);
  EXPECT_EQ(Latest(kB).state, AccessState::kOptimized);

  // Later the array demotes it again: the 2A/06 re-arms the engine, and it activates once more.
  ASSERT_TRUE(array_->SetAccessState(20, AluaState::kActiveNonOptimized).has_value());
  engine_->OnSense(kB, kStateChanged);
  executor_.RunUntilIdle();
  EXPECT_EQ(array_->CommandCount(kStpgOpcode), 2u);
  EXPECT_EQ(Latest(kB).state, AccessState::kOptimized);
}

TEST_F(AluaEngineTest, ImplicitAluaNeverSendsStpg) {
  MakeArray({}, {{10, AluaState::kStandby, false, {1}}, {20, AluaState::kStandby, true, {2}}});
  ScsiTransport& port1 = Connect(1);
  ScsiTransport& port2 = Connect(2);
  MakeEngine();
  AddPath(kA, port1, 0, 1, 10);
  AddPath(kB, port2, 0, 2, 20);
  executor_.RunUntilIdle();
  EXPECT_EQ(array_->CommandCount(kStpgOpcode), 0u);
  EXPECT_EQ(Latest(kB), (Reported{AccessState::kStandby, true}));
}

TEST_F(AluaEngineTest, ExplicitAluaOnAnImplicitOnlyTargetGivesUpQuietly) {
  AluaOptions options;
  options.mode = AluaMode::kExplicit;
  fake::ArrayConfig config;
  config.tpgs = 1;  // implicit only: STPG is an unsupported opcode
  MakeArray(config, {{10, AluaState::kStandby, false, {1}}, {20, AluaState::kStandby, true, {2}}});
  ScsiTransport& port1 = Connect(1);
  ScsiTransport& port2 = Connect(2);
  ClearUnitAttentions(port1, 0);
  ClearUnitAttentions(port2, 0);
  MakeEngine(options);
  AddPath(kA, port1, 0, 1, 10);
  AddPath(kB, port2, 0, 2, 20);
  executor_.RunUntilIdle();
  const std::uint64_t stpgs = array_->CommandCount(kStpgOpcode);
  EXPECT_EQ(stpgs, 1u);
  engine_->OnSense(kA, kStateChanged);
  engine_->OnSense(kB, kStateChanged);
  executor_.Advance(1min);
  EXPECT_EQ(array_->CommandCount(kStpgOpcode), stpgs) << "refused once, never asked again";
  EXPECT_EQ(Latest(kB), (Reported{AccessState::kStandby, true}));
}

TEST_F(AluaEngineTest, StandbyAndUnavailableSenseApplyToTheWholeGroupBeforeAnyRtpg) {
  MakeArray({}, DefaultGroups(), 2);
  ScsiTransport& port1 = Connect(1);
  ScsiTransport& port2 = Connect(2);
  MakeEngine();
  AddPath(kA, port1, 0, 1, 10);
  AddPath(kB, port2, 0, 2, 20);
  AddPath(3, port1, 1, 1, 10);  // LU 1 shares group 10
  AddPath(4, port2, 1, 2, 20);
  executor_.RunUntilIdle();
  ASSERT_EQ(Latest(3).state, AccessState::kOptimized);

  std::map<PathKey, std::uint64_t> rtpgs_at_report;
  recorder_.on_state_hook = [&](PathKey key, AccessState) { rtpgs_at_report[key] = Rtpgs(); };

  ASSERT_TRUE(array_->SetAccessState(10, AluaState::kStandby).has_value());
  std::uint64_t before = Rtpgs();
  engine_->OnSense(kA, spec::asc::kLunNotReadyTargetPortStandby);
  executor_.RunUntilIdle();
  EXPECT_EQ(Latest(kA), (Reported{AccessState::kStandby, true}));
  EXPECT_EQ(Latest(3), (Reported{AccessState::kStandby, true})) << "the other LU of the group, at once";
  EXPECT_EQ(rtpgs_at_report[kA], before);
  EXPECT_EQ(rtpgs_at_report[3], before);
  EXPECT_GT(Rtpgs(), before) << "an RTPG follows and agrees";
  EXPECT_EQ(recorder_.History(kA).size(), 2u);

  ASSERT_TRUE(array_->SetAccessState(20, AluaState::kUnavailable).has_value());
  before = Rtpgs();
  engine_->OnSense(4, spec::asc::kLunNotReadyTargetPortUnavailable);
  executor_.RunUntilIdle();
  EXPECT_EQ(Latest(4), (Reported{AccessState::kUnavailable, false}));
  EXPECT_EQ(Latest(kB), (Reported{AccessState::kUnavailable, false}));
  EXPECT_EQ(rtpgs_at_report[4], before);
  EXPECT_EQ(rtpgs_at_report[kB], before);
}

TEST_F(AluaEngineTest, RequestsWhileAnRtpgIsInFlightBecomeOneFollowUp) {
  MakeArray();
  ScsiTransport& port1 = Connect(1);
  ScsiTransport& port2 = Connect(2);
  GatedTransport gated1(port1);
  MakeEngine();
  AddPath(kA, gated1, 0, 1, 10);
  AddPath(kB, port2, 0, 2, 20);
  executor_.RunUntilIdle();
  ASSERT_EQ(Latest(kA).state, AccessState::kOptimized);

  const std::uint64_t before = Rtpgs();
  gated1.Close();
  engine_->Refresh(kA);
  executor_.RunUntilIdle();
  ASSERT_EQ(gated1.held(), 1u) << "answered by the array with the old state, not yet seen by the engine";

  // The change happens while that answer is on its way; the news arrives on many paths.
  ASSERT_TRUE(array_->SetAccessState(10, AluaState::kStandby).has_value());
  for (int i = 0; i < 20; ++i) {
    engine_->OnSense(kA, kStateChanged);
    engine_->OnSense(kB, kStateChanged);
    executor_.RunUntilIdle();
  }
  EXPECT_EQ(Rtpgs(), before + 1) << "nothing more while one RTPG of the target is in flight";

  gated1.Release();
  executor_.RunUntilIdle();
  EXPECT_EQ(Latest(kA), (Reported{AccessState::kStandby, true})) << "the follow-up saw the change";
  // The held one, then one follow-up (which met the 2A/06 the change queued, and was retried once).
  EXPECT_EQ(Rtpgs(), before + 3);
}

TEST_F(AluaEngineTest, UnitAttentionsConsumedByTheEngineAreHandedOn) {
  Discover();
  ASSERT_TRUE(array_->ChangeIdentity(0, NaaFor(0, 9)).has_value());                  // 3F/03
  array_->RaiseUnitAttentionEverywhere(spec::asc::kReservationsPreempted);           // 2A/03
  ASSERT_TRUE(array_->SetAccessState(10, AluaState::kActiveNonOptimized).has_value());  // 2A/06
  engine_->OnSense(kA, kStateChanged);
  executor_.RunUntilIdle();
  EXPECT_EQ(Latest(kA).state, AccessState::kNonOptimized);
  EXPECT_EQ(recorder_.identities, (std::vector<PathKey>{kA}));
  ASSERT_EQ(recorder_.unit_attentions.size(), 2u);  // 29/00 at discovery, then 2A/03
  EXPECT_EQ(recorder_.unit_attentions[1], (std::pair<PathKey, spec::SenseCode>{kA, spec::asc::kReservationsPreempted}));
}

TEST_F(AluaEngineTest, IdentityAndRescanSenseReachTheirCallbacksOncePerBatch) {
  MakeArray({}, DefaultGroups(), 2);
  ScsiTransport& port1 = Connect(1);
  ScsiTransport& port2 = Connect(2);
  MakeEngine();
  AddPath(kA, port1, 0, 1, 10);
  AddPath(kB, port2, 0, 2, 20);
  AddPath(3, port1, 1, 1, 10);
  executor_.RunUntilIdle();
  const std::uint64_t rtpgs = Rtpgs();
  for (int i = 0; i < 5; ++i) {
    engine_->OnSense(kA, spec::asc::kReportedLunsDataHasChanged);
    engine_->OnSense(3, spec::asc::kReportedLunsDataHasChanged);  // same nexus as kA
    engine_->OnSense(kB, spec::asc::kReportedLunsDataHasChanged);
    engine_->OnSense(kB, spec::asc::kInquiryDataHasChanged);
  }
  engine_->OnSense(kA, spec::asc::kUnrecoveredReadError);  // not the engine's business
  executor_.RunUntilIdle();
  EXPECT_EQ(recorder_.rescans, (std::vector<PathKey>{kA, kB})) << "one rescan per nexus";
  EXPECT_EQ(recorder_.identities, (std::vector<PathKey>{kB}));
  EXPECT_EQ(Rtpgs(), rtpgs) << "neither needs an RTPG";
}

TEST_F(AluaEngineTest, GroupMembershipComesFromTheLusOwnRtpg) {
  MakeArray();
  ScsiTransport& port1 = Connect(1);
  MakeEngine();
  // VPD 0x83 claims group 20, but the LU's RTPG lists port 1 in group 10.
  AddPath(kA, port1, 0, 1, 20);
  executor_.RunUntilIdle();
  EXPECT_EQ(Latest(kA), (Reported{AccessState::kOptimized, true}));
  EXPECT_EQ(engine_->PathStatus(kA)->target_port_group, 10);

  // A second path of the verified LU on a port its last RTPG already placed needs no new RTPG.
  ScsiTransport& port2 = Connect(2);
  const std::uint64_t rtpgs = Rtpgs();
  AddPath(kB, port2, 0, 2, 20);
  executor_.RunUntilIdle();
  EXPECT_EQ(Rtpgs(), rtpgs);
  EXPECT_EQ(Latest(kB), (Reported{AccessState::kNonOptimized, false}));
}

TEST_F(AluaEngineTest, LinkFailureMovesTheRtpgToAnotherNexusAndBacksOffWhenAllFail) {
  ManualClock& clock = clock_;
  auto san = sim::SimSan::Create({&clock}).value();
  fake::ArrayConfig config;
  fake::Array* array = san->AddScsiArray("array0", config).value();
  ASSERT_TRUE(array->AddPortGroup({10, AluaState::kActiveOptimized, true, {1}}).has_value());
  ASSERT_TRUE(array->AddPortGroup({20, AluaState::kActiveNonOptimized, false, {2}}).has_value());
  fake::LogicalUnitConfig lu0;
  lu0.blocks = 64;
  lu0.naa = NaaFor(0);
  ASSERT_TRUE(array->AddLogicalUnit(lu0).has_value());
  ScsiTransport* p1 = san->ConnectScsi({"p1", "array0", "iqn.host", 1}).value();
  ScsiTransport* p2 = san->ConnectScsi({"p2", "array0", "iqn.host", 2}).value();
  AluaOptions options;
  options.command_timeout = 5s;
  MakeEngine(options);
  ASSERT_TRUE(engine_->AddPath({kA, p1, 0, config.target_name, 1, 10}).has_value());
  ASSERT_TRUE(engine_->AddPath({kB, p2, 0, config.target_name, 2, 20}).has_value());
  executor_.RunUntilIdle();
  ASSERT_EQ(Latest(kA).state, AccessState::kOptimized);

  // Port 1's link is down: the refresh that kA asked for goes through port 2.
  san->Faults("p1").value()->SetLinkDown(true);
  ASSERT_TRUE(array->SetAccessState(10, AluaState::kActiveNonOptimized).has_value());
  ASSERT_TRUE(array->SetAccessState(20, AluaState::kActiveOptimized).has_value());
  engine_->OnSense(kA, kStateChanged);
  executor_.RunUntilIdle();
  EXPECT_EQ(Latest(kA).state, AccessState::kNonOptimized);
  EXPECT_EQ(Latest(kB).state, AccessState::kOptimized);
  EXPECT_EQ(san->Faults("p1").value()->counts().link_down, 1u);

  // Both down (port 2 hangs): retries back off instead of spinning.
  san->Faults("p2").value()->SetHang(true);
  ASSERT_TRUE(array->SetAccessState(20, AluaState::kStandby).has_value());
  engine_->Refresh(kB);
  executor_.Advance(30s);
  const auto p1_tries = san->Faults("p1").value()->counts().link_down;
  const auto p2_tries = san->Faults("p2").value()->counts().hung;
  EXPECT_LE(p1_tries + p2_tries, 12u);
  EXPECT_GE(p2_tries, 2u);
  EXPECT_EQ(Latest(kB).state, AccessState::kOptimized) << "nothing learned yet";

  san->Faults("p1").value()->Clear();
  executor_.Advance(40s);
  EXPECT_EQ(Latest(kB).state, AccessState::kStandby) << "port 1 came back and answered";
  engine_.reset();  // before the SAN and its hung commands' timers go away
  san->Faults("p2").value()->Clear();
  executor_.Advance(1min);
}

TEST_F(AluaEngineTest, MalformedRepliesFailTheCommandAndAreRetriedLater) {
  MakeArray();
  ScsiTransport& port1 = Connect(1);
  ClearUnitAttentions(port1, 0);
  int mode = 0;
  array_->SetHandler(kRtpgOpcode, [&mode](fake::CommandContext& context) {
    ScsiCommand& c = context.command;
    if (mode == 0) {  // GOOD with 2 bytes of data: not even a header
      c.data[0] = std::byte{0};
      c.data[1] = std::byte{0};
      c.residual = static_cast<std::uint32_t>(c.data.size() - 2);
    } else if (mode == 1) {  // CHECK CONDITION with garbage sense
      c.status = 0x02;
      c.sense_length = 5;
      c.sense.fill(0xFF);
      c.residual = static_cast<std::uint32_t>(c.data.size());
    } else if (mode == 2) {  // an absurd RETURN DATA LENGTH
      std::fill(c.data.begin(), c.data.end(), std::byte{0xFF});
      c.residual = 0;
    } else {
      context.array.DefaultHandler(context);
    }
  });
  MakeEngine();
  AddPath(kA, port1, 0, 1, 10);
  for (mode = 0; mode < 3; ++mode) {
    executor_.Advance(31s);
    EXPECT_TRUE(recorder_.changes.empty() || mode == 2);
  }
  mode = 3;
  executor_.Advance(31s);
  EXPECT_EQ(Latest(kA), (Reported{AccessState::kOptimized, true}));
}

TEST_F(AluaEngineTest, RemovedPathsHearNothingMoreAndCallbacksMayRemovePaths) {
  MakeArray({}, DefaultGroups(), 2);
  ScsiTransport& port1 = Connect(1);
  ScsiTransport& port2 = Connect(2);
  GatedTransport gated1(port1);
  MakeEngine();
  AddPath(kA, gated1, 0, 1, 10);
  AddPath(kB, port2, 0, 2, 20);
  AddPath(3, port2, 1, 2, 20);
  gated1.Close();
  executor_.RunUntilIdle();
  ASSERT_EQ(gated1.held(), 1u);
  ASSERT_TRUE(engine_->RemovePath(kA).has_value());
  gated1.Release();
  executor_.RunUntilIdle();
  EXPECT_FALSE(recorder_.latest.contains(kA));
  EXPECT_EQ(Latest(kB).state, AccessState::kNonOptimized);

  // A callback that removes another path of the same change: that path is not reported.
  recorder_.on_state_hook = [&](PathKey key, AccessState) {
    if (key == kB) {
      EXPECT_TRUE(engine_->RemovePath(3).has_value());
    }
    if (key == 3) {
      ADD_FAILURE() << "removed path reported";
    }
  };
  ASSERT_TRUE(array_->SetAccessState(20, AluaState::kStandby).has_value());
  engine_->OnSense(kB, kStateChanged);
  executor_.RunUntilIdle();
  EXPECT_EQ(Latest(kB).state, AccessState::kStandby);

  // Removing the last path forgets the target.
  ASSERT_TRUE(engine_->RemovePath(kB).has_value());
  EXPECT_FALSE(engine_->TargetStatus(array_->config().target_name).has_value());
}

TEST_F(AluaEngineTest, DestroyingTheEngineWithACommandInFlightIsSafe) {
  MakeArray();
  ScsiTransport& port1 = Connect(1);
  GatedTransport gated1(port1);
  MakeEngine();
  AddPath(kA, gated1, 0, 1, 10);
  gated1.Close();
  executor_.RunUntilIdle();
  ASSERT_EQ(gated1.held(), 1u);
  engine_->OnSense(kA, kStateChanged);  // a drain task queued behind the destruction
  engine_.reset();
  gated1.Release();  // the orphaned command frees itself
  executor_.RunUntilIdle();
  EXPECT_TRUE(recorder_.changes.empty());
}

TEST_F(AluaEngineTest, ACallbackMayDestroyTheEngine) {
  MakeArray({}, DefaultGroups(), 2);
  ScsiTransport& port1 = Connect(1);
  MakeEngine();
  AddPath(kA, port1, 0, 1, 10);
  AddPath(3, port1, 1, 1, 10);
  recorder_.on_state_hook = [&](PathKey, AccessState) { engine_.reset(); };
  executor_.RunUntilIdle();
  EXPECT_EQ(recorder_.changes.size(), 1u) << "nothing after the engine is gone";
  EXPECT_EQ(executor_.pending_timers(), 0u);
}

TEST_F(AluaEngineTest, SenseFromManyThreadsIsCoalesced) {
  Discover();
  ASSERT_TRUE(array_->SetAccessState(10, AluaState::kStandby).has_value());
  const std::uint64_t before = Rtpgs();
  std::atomic<int> running{4};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) engine_->OnSense(t % 2 == 0 ? kA : kB, kStateChanged);
      running.fetch_sub(1);
    });
  }
  while (running.load() > 0) executor_.RunUntilIdle();
  for (auto& thread : threads) thread.join();
  executor_.RunUntilIdle();
  EXPECT_EQ(Latest(kA).state, AccessState::kStandby);
  // However the 2000 events were batched, each batch costs at most one RTPG (with its 2A/06 retry) and a
  // follow-up: far fewer than one per event.
  EXPECT_LE(Rtpgs() - before, 40u);
}

}  // namespace
}  // namespace mpath::scsi::alua_testing
