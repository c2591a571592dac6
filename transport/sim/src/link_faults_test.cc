#include "mpath/sim/link_faults.h"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

namespace mpath::sim {
namespace {

using namespace std::chrono_literals;

TEST(LinkFaults, AHealthyLinkDeliversAtOnce) {
  ManualClock clock;
  LinkFaults faults(clock, 7);
  LinkVerdict v = faults.Decide(true, 0);
  EXPECT_EQ(v.action, LinkAction::kDeliver);
  EXPECT_EQ(v.delay, Nanos(0));
  EXPECT_EQ(faults.counts().delivered, 1u);
}

TEST(LinkFaults, LinkDownFailsEveryCommandUntilCleared) {
  ManualClock clock;
  LinkFaults faults(clock, 7);
  faults.SetLinkDown(true);
  EXPECT_EQ(faults.Decide(false, 0).action, LinkAction::kLinkDown) << "health checks fail too";
  EXPECT_EQ(faults.Decide(true, 0).action, LinkAction::kLinkDown);
  EXPECT_TRUE(faults.IsDown());
  faults.Clear();
  EXPECT_EQ(faults.Decide(true, 0).action, LinkAction::kDeliver);
  EXPECT_EQ(faults.counts().link_down, 2u);
}

TEST(LinkFaults, LinkDownWinsOverHangAndHangOverFailIo) {
  ManualClock clock;
  LinkFaults faults(clock, 7);
  faults.SetFailIo(true);
  faults.SetHang(true);
  EXPECT_EQ(faults.Decide(true, 0).action, LinkAction::kHang);
  faults.SetLinkDown(true);
  EXPECT_EQ(faults.Decide(true, 0).action, LinkAction::kLinkDown);
}

TEST(LinkFaults, FlappingAlternatesOnTheClock) {
  ManualClock clock;
  LinkFaults faults(clock, 7);
  faults.SetFlapping(1s, 2s);
  struct Step {
    Nanos at;
    bool down;
  };
  const std::vector<Step> steps = {{0ms, true},    {999ms, true}, {1000ms, false}, {2999ms, false},
                                   {3000ms, true}, {3500ms, true}, {4000ms, false}};
  Nanos now{0};
  for (const Step& step : steps) {
    clock.Advance(step.at - now);
    now = step.at;
    EXPECT_EQ(faults.IsDown(), step.down) << "at " << step.at.count() << " ns";
    EXPECT_EQ(faults.Decide(true, 0).action, step.down ? LinkAction::kLinkDown : LinkAction::kDeliver);
  }
  faults.SetFlapping(Nanos(0), Nanos(0));
  EXPECT_FALSE(faults.IsDown());
}

TEST(LinkFaults, FailIoSparesHealthChecksAndOtherUnits) {
  ManualClock clock;
  LinkFaults faults(clock, 7);
  faults.SetFailIo(true, 3);
  EXPECT_EQ(faults.Decide(false, 3).action, LinkAction::kDeliver) << "TEST UNIT READY / Keep Alive still succeed";
  EXPECT_EQ(faults.Decide(true, 2).action, LinkAction::kDeliver) << "only unit 3 is failing";
  EXPECT_EQ(faults.Decide(true, 3).action, LinkAction::kFailIo);
  faults.SetFailIo(true);
  EXPECT_EQ(faults.Decide(true, 2).action, LinkAction::kFailIo);
  EXPECT_EQ(faults.counts().failed_io, 2u);
}

TEST(LinkFaults, LatencyWithJitterStaysInRangeAndFollowsTheSeed) {
  ManualClock clock;
  LinkFaults a(clock, 42);
  LinkFaults b(clock, 42);
  LinkFaults c(clock, 43);
  for (auto* f : {&a, &b, &c}) f->SetLatency(1ms, 500us);
  bool differs_from_other_seed = false;
  for (int i = 0; i < 200; ++i) {
    Nanos da = a.Decide(true, 0).delay;
    EXPECT_GE(da, 1ms);
    EXPECT_LE(da, 1500us);
    EXPECT_EQ(da, b.Decide(true, 0).delay) << "same seed, same draws";
    differs_from_other_seed |= da != c.Decide(true, 0).delay;
  }
  EXPECT_TRUE(differs_from_other_seed);
}

TEST(LinkFaults, DroppedCompletionsFollowTheProbabilityAndTheSeed) {
  ManualClock clock;
  LinkFaults faults(clock, 1);
  faults.SetDropCompletions(1.0);
  EXPECT_EQ(faults.Decide(true, 0).action, LinkAction::kDropCompletion);
  EXPECT_EQ(faults.Decide(false, 0).action, LinkAction::kDropCompletion) << "any answer can be lost";

  LinkFaults half_a(clock, 99);
  LinkFaults half_b(clock, 99);
  half_a.SetDropCompletions(0.5);
  half_b.SetDropCompletions(0.5);
  int dropped = 0;
  for (int i = 0; i < 1000; ++i) {
    LinkAction x = half_a.Decide(true, 0).action;
    EXPECT_EQ(x, half_b.Decide(true, 0).action);
    dropped += x == LinkAction::kDropCompletion;
  }
  EXPECT_GT(dropped, 400);
  EXPECT_LT(dropped, 600);
}

TEST(LinkFaults, SettingsReportWhatWasInjected) {
  ManualClock clock;
  LinkFaults faults(clock, 1);
  faults.SetLatency(2ms);
  faults.SetFailIo(true, 5);
  faults.SetDropCompletions(2.0);
  LinkFaultSettings s = faults.settings();
  EXPECT_EQ(s.latency, 2ms);
  EXPECT_TRUE(s.fail_io);
  EXPECT_EQ(s.fail_io_unit, 5u);
  EXPECT_EQ(s.drop_probability, 1.0) << "clamped";
  faults.Clear();
  EXPECT_FALSE(faults.settings().fail_io);
}

}  // namespace
}  // namespace mpath::sim
