// Marginal paths: live but failing (or far slower than their peers), kept out while anything better exists,
// reinstated after a clean probe period.
#include <gtest/gtest.h>

#include "mpath/testing/head_fixture.h"

namespace mpath {
namespace {

using namespace std::chrono_literals;
using testing::HeadFixture;

const IoStatus kPathDown = IoStatus::Of(Errc::kPathError, "fails every I/O");

HeadOptions RoundRobin() {
  HeadOptions options;
  options.policy = IoPolicyKind::kRoundRobin;
  return options;
}

TEST(Marginal, APathThatFailsEveryIoIsCaughtAndKeptOut) {
  HeadFixture f(RoundRobin());
  PathId bad = f.AddPath("bad");
  PathId good = f.AddPath("good");
  f.driver(bad).SetOutcome(kPathDown);

  for (std::size_t i = 0; i < 100; ++i) f.Submit(i);

  ASSERT_EQ(f.log().entries.size(), 100u);
  for (const auto& e : f.log().entries) EXPECT_TRUE(e.status.ok());
  auto path = f.head().FindPath(bad);
  EXPECT_EQ(path->marginal_reason(), MarginalReason::kErrors);
  // Round-robin sent every other I/O to the bad path until 8 had failed; after that, none.
  EXPECT_EQ(f.driver(bad).submitted(), 8u);
  EXPECT_EQ(f.driver(good).submitted(), 100u);
  auto before = f.driver(bad).submitted();
  for (std::size_t i = 100; i < 200; ++i) f.Submit(i);
  EXPECT_EQ(f.driver(bad).submitted(), before);
}

TEST(Marginal, OccasionalErrorsBelowTheThresholdDoNotMarkAPath) {
  HeadOptions options = RoundRobin();
  options.marginal.window = 32;
  options.marginal.error_threshold = 8;
  HeadFixture f(options);
  PathId flaky = f.AddPath("flaky");
  f.AddPath("good");
  // Fail one I/O in eight on the flaky path: at most 2 of any 16 outcomes it sees.
  for (std::size_t i = 0; i < 400; ++i) {
    f.driver(flaky).SetOutcome(i % 16 == 0 ? kPathDown : IoStatus::Ok());
    f.Submit(i);
  }
  EXPECT_FALSE(f.head().FindPath(flaky)->marginal());
  EXPECT_EQ(f.head().Counters().errors, 0u);
}

TEST(Marginal, AMarginalPathIsStillUsedWhenNothingBetterExists) {
  HeadFixture f(RoundRobin());
  PathId bad = f.AddPath("bad");
  PathId good = f.AddPath("good");
  f.driver(bad).SetOutcome(kPathDown);
  for (std::size_t i = 0; i < 20; ++i) f.Submit(i);
  ASSERT_TRUE(f.head().FindPath(bad)->marginal());

  f.driver(bad).SetOutcome(IoStatus::Ok());
  ASSERT_TRUE(f.head().SetPathState(good, PathState::kFailed));
  auto before = f.driver(bad).submitted();
  f.Submit(100);
  EXPECT_EQ(f.driver(bad).submitted(), before + 1);
  EXPECT_TRUE(f.log().entries.back().status.ok());
}

TEST(Marginal, ReinstatedAfterACleanProbePeriod) {
  HeadOptions options = RoundRobin();
  options.marginal.probe_interval = 1s;
  options.marginal.probes_to_reinstate = 5;
  HeadFixture f(options);
  PathId bad = f.AddPath("bad");
  PathId good = f.AddPath("good");
  f.driver(bad).SetOutcome(kPathDown);
  for (std::size_t i = 0; i < 20; ++i) f.Submit(i);
  auto path = f.head().FindPath(bad);
  ASSERT_TRUE(path->marginal());

  // Still failing: probes go out once a second and keep it marginal.
  auto sent = f.driver(bad).submitted();
  f.executor().Advance(3s);
  EXPECT_EQ(f.driver(bad).submitted(), sent + 3) << "one probe per second";
  EXPECT_TRUE(path->marginal());

  // Healthy again: five clean probes in a row reinstate it; a failed probe in between starts the count again.
  f.driver(bad).SetOutcome(IoStatus::Ok());
  f.executor().Advance(3s);
  f.driver(bad).SetOutcome(kPathDown);
  f.executor().Advance(1s);
  f.driver(bad).SetOutcome(IoStatus::Ok());
  f.executor().Advance(4s);
  EXPECT_TRUE(path->marginal()) << "reinstated without five consecutive clean probes";
  f.executor().Advance(1s);
  EXPECT_FALSE(path->marginal());

  // Back in the rotation.
  sent = f.driver(bad).submitted();
  for (std::size_t i = 100; i < 110; ++i) f.Submit(i);
  EXPECT_EQ(f.driver(bad).submitted(), sent + 5);
  EXPECT_EQ(f.driver(good).submitted() > 0, true);
  EXPECT_EQ(f.executor().pending_timers(), 0u) << "probing must stop once nothing is marginal";
}

TEST(Marginal, ProbesSkipAPathThatIsDown) {
  HeadFixture f(RoundRobin());
  PathId bad = f.AddPath("bad");
  f.AddPath("good");
  f.driver(bad).SetOutcome(kPathDown);
  for (std::size_t i = 0; i < 20; ++i) f.Submit(i);
  ASSERT_TRUE(f.head().FindPath(bad)->marginal());
  ASSERT_TRUE(f.head().SetPathState(bad, PathState::kFailed));
  auto sent = f.driver(bad).submitted();
  f.executor().Advance(10s);
  EXPECT_EQ(f.driver(bad).submitted(), sent);
  EXPECT_TRUE(f.head().FindPath(bad)->marginal());
}

// Two delayed paths with the given latencies, kept busy with 400 I/Os over a second of simulated time.
std::pair<PathId, PathId> RunTwoPathsBusy(HeadFixture& f, Nanos first_latency, Nanos second_latency) {
  PathId first = f.AddPath("first", AccessState::kOptimized, NullPath::Mode::kDelayed);
  PathId second = f.AddPath("second", AccessState::kOptimized, NullPath::Mode::kDelayed);
  f.driver(first).SetLatency(first_latency);
  f.driver(second).SetLatency(second_latency);
  for (std::size_t i = 0; i < 400; ++i) {
    f.Submit(i);
    if (i % 8 == 7) f.executor().Advance(2ms);
  }
  f.executor().Advance(1s);
  return {first, second};
}

TEST(Marginal, AFarSlowerPathIsMarkedForLatency) {
  HeadFixture f(RoundRobin());
  auto [slow, fast] = RunTwoPathsBusy(f, 100ms, 1ms);
  EXPECT_EQ(f.head().FindPath(slow)->marginal_reason(), MarginalReason::kLatency);
  EXPECT_FALSE(f.head().FindPath(fast)->marginal());
  EXPECT_EQ(f.log().entries.size(), 400u);
  for (const auto& e : f.log().entries) EXPECT_TRUE(e.status.ok());

  // Fast again: reinstated once its probes answer under the latency floor.
  f.driver(slow).SetLatency(1ms);
  f.executor().Advance(6s);
  EXPECT_FALSE(f.head().FindPath(slow)->marginal());
}

TEST(Marginal, UniformlySlowPathsAreNotMarginal) {
  HeadFixture f(RoundRobin());
  auto [a, b] = RunTwoPathsBusy(f, 80ms, 100ms);
  EXPECT_FALSE(f.head().FindPath(a)->marginal());
  EXPECT_FALSE(f.head().FindPath(b)->marginal());
}

TEST(Marginal, OperatorCanClearIt) {
  HeadFixture f(RoundRobin());
  PathId bad = f.AddPath("bad");
  f.AddPath("good");
  f.driver(bad).SetOutcome(kPathDown);
  for (std::size_t i = 0; i < 20; ++i) f.Submit(i);
  ASSERT_TRUE(f.head().FindPath(bad)->marginal());
  ASSERT_TRUE(f.head().ClearMarginal(bad));
  EXPECT_FALSE(f.head().FindPath(bad)->marginal());
  EXPECT_FALSE(f.head().ClearMarginal(9999));
}

}  // namespace
}  // namespace mpath
