// No usable path: queue while a path may come back or the delayed-removal window is open, resume in order, fail
// cleanly when the time is up, then remove the head. Nothing is lost and nothing completes twice.
#include <gtest/gtest.h>

#include "mpath/core/registry.h"
#include "mpath/testing/head_fixture.h"

namespace mpath {
namespace {

using namespace std::chrono_literals;
using testing::HeadFixture;

HeadOptions WithDelayedRemoval(Nanos window) {
  HeadOptions options;
  options.delayed_removal = window;
  return options;
}

void ExpectEachCompletedOnceInOrder(const testing::CompletionLog& log, std::size_t n, Errc code) {
  ASSERT_EQ(log.entries.size(), n);
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(log.entries[i].tag, i) << "completion " << i << " out of order";
    EXPECT_EQ(log.entries[i].status.code, code) << "request " << i;
  }
}

TEST(NoPath, FailsAtOnceWhenNoPathCanComeBackAndThereIsNoWindow) {
  HeadFixture f;
  PathId a = f.AddPath("a");
  ASSERT_TRUE(f.head().SetPathState(a, PathState::kFailed));
  EXPECT_EQ(f.head().state(), HeadState::kFailing);

  f.Submit(0);
  ASSERT_EQ(f.log().entries.size(), 1u);
  EXPECT_EQ(f.log().entries[0].status.code, Errc::kNoPath);
  EXPECT_EQ(f.head().Counters().no_path_failures, 1u);
  EXPECT_EQ(f.driver(a).submitted(), 0u);
}

TEST(NoPath, QueuesWhileAPathIsConnectingAndResumesInOrder) {
  HeadFixture f;
  PathId a = f.AddPath("a", AccessState::kOptimized, NullPath::Mode::kInline, kUnknownLocality,
                       PathState::kConnecting);
  EXPECT_EQ(f.head().state(), HeadState::kQueueing);
  for (std::size_t i = 0; i < 10; ++i) f.Submit(i);
  f.executor().Advance(10min);  // the core itself does not time out a connecting path: its transport does
  EXPECT_TRUE(f.log().entries.empty());
  EXPECT_EQ(f.channel().queued(), 10u);
  EXPECT_EQ(f.head().Counters().requeues, 10u);

  ASSERT_TRUE(f.head().SetPathState(a, PathState::kLive));
  f.executor().RunUntilIdle();
  ExpectEachCompletedOnceInOrder(f.log(), 10, Errc::kOk);
  EXPECT_EQ(f.driver(a).submitted(), 10u);
}

TEST(NoPath, QueuesWhileTheOnlyPathIsTransitioning) {
  HeadFixture f;
  PathId a = f.AddPath("a", AccessState::kTransitioning);
  f.Submit(0);
  f.Submit(1);
  EXPECT_TRUE(f.log().entries.empty());
  ASSERT_TRUE(f.head().SetAccessState(a, AccessState::kNonOptimized));
  f.executor().RunUntilIdle();
  ExpectEachCompletedOnceInOrder(f.log(), 2, Errc::kOk);
}

TEST(NoPath, NewIoQueuesBehindQueuedIoAndAllResumeInArrivalOrder) {
  HeadFixture f(WithDelayedRemoval(5s));
  PathId a = f.AddPath("a");
  ASSERT_TRUE(f.head().SetPathState(a, PathState::kFailed));
  for (std::size_t i = 0; i < 5; ++i) f.Submit(i);
  ASSERT_TRUE(f.head().SetPathState(a, PathState::kLive));
  // The channel has not run its kick yet: a new I/O must still go behind the five queued ones.
  f.Submit(5);
  f.executor().RunUntilIdle();
  ExpectEachCompletedOnceInOrder(f.log(), 6, Errc::kOk);
}

TEST(NoPath, LastPathGoneAndBackWithinDelayedRemovalLosesNothing) {
  HeadFixture f(WithDelayedRemoval(5s));
  PathId a = f.AddPath("a");
  ASSERT_TRUE(f.head().RemovePath(a));
  EXPECT_EQ(f.head().state(), HeadState::kQueueing);
  for (std::size_t i = 0; i < 8; ++i) f.Submit(i);

  f.executor().Advance(4s);
  EXPECT_TRUE(f.log().entries.empty());
  PathId again = f.AddPath("a-again");
  f.executor().RunUntilIdle();

  ExpectEachCompletedOnceInOrder(f.log(), 8, Errc::kOk);
  EXPECT_EQ(f.driver(again).submitted(), 8u);
  EXPECT_EQ(f.head().state(), HeadState::kLive);
  f.executor().Advance(10s);  // the old window must not fire after the path came back
  EXPECT_EQ(f.head().state(), HeadState::kLive);
  EXPECT_EQ(f.removed_announcements(), 0);
}

TEST(NoPath, DelayedRemovalExpiryFailsQueuedIoThenRemovesTheHead) {
  HeadFixture f(WithDelayedRemoval(5s));
  PathId a = f.AddPath("a");
  ASSERT_TRUE(f.head().RemovePath(a));
  for (std::size_t i = 0; i < 4; ++i) f.Submit(i);

  f.executor().Advance(4999ms);
  EXPECT_TRUE(f.log().entries.empty());
  EXPECT_EQ(f.head().state(), HeadState::kQueueing);
  f.executor().Advance(1ms);

  ExpectEachCompletedOnceInOrder(f.log(), 4, Errc::kNoPath);
  EXPECT_EQ(f.head().state(), HeadState::kRemoved);
  EXPECT_EQ(f.removed_announcements(), 1);
  EXPECT_EQ(f.head().Counters().no_path_failures, 4u);

  f.Submit(4);  // a removed head fails new I/O at once
  ASSERT_EQ(f.log().entries.size(), 5u);
  EXPECT_EQ(f.log().entries[4].status.code, Errc::kNoPath);

  auto late = f.head().AddPath(f.DescribePath("late"), std::make_unique<NullPath>());
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code(), Errc::kRemoved);
}

TEST(NoPath, WithoutDelayedRemovalTheLastPathTakesTheHeadWithIt) {
  HeadFixture f;
  PathId a = f.AddPath("a");
  ASSERT_TRUE(f.head().RemovePath(a));
  EXPECT_EQ(f.head().state(), HeadState::kRemoved);
  f.executor().RunUntilIdle();
  EXPECT_EQ(f.removed_announcements(), 1);
  f.Submit(0);
  ASSERT_EQ(f.log().entries.size(), 1u);
  EXPECT_EQ(f.log().entries[0].status.code, Errc::kNoPath);
}

TEST(NoPath, FailedPathsQueueForTheWindowThenFailButTheHeadStays) {
  HeadFixture f(WithDelayedRemoval(2s));
  PathId a = f.AddPath("a");
  PathId b = f.AddPath("b");
  ASSERT_TRUE(f.head().SetPathState(a, PathState::kFailed));
  ASSERT_TRUE(f.head().SetPathState(b, PathState::kFailed));
  f.Submit(0);
  f.executor().Advance(1999ms);
  EXPECT_TRUE(f.log().entries.empty());
  f.executor().Advance(1ms);
  ASSERT_EQ(f.log().entries.size(), 1u);
  EXPECT_EQ(f.log().entries[0].status.code, Errc::kNoPath);
  EXPECT_EQ(f.head().state(), HeadState::kFailing);
  EXPECT_EQ(f.removed_announcements(), 0);

  // A path comes back: the head is live again, and the next episode gets a whole new window.
  ASSERT_TRUE(f.head().SetPathState(b, PathState::kLive));
  f.Submit(1);
  EXPECT_TRUE(f.log().entries[1].status.ok());
  ASSERT_TRUE(f.head().SetPathState(b, PathState::kFailed));
  f.Submit(2);
  f.executor().Advance(1500ms);
  EXPECT_EQ(f.log().entries.size(), 2u) << "the second episode's window was shorter than delayed_removal";
  f.executor().Advance(500ms);
  ASSERT_EQ(f.log().entries.size(), 3u);
  EXPECT_EQ(f.log().entries[2].status.code, Errc::kNoPath);
}

TEST(NoPath, InFlightIoOfTheLastPathWaitsForItsReturn) {
  HeadFixture f(WithDelayedRemoval(5s));
  PathId a = f.AddPath("a", AccessState::kOptimized, NullPath::Mode::kHold);
  for (std::size_t i = 0; i < 3; ++i) f.Submit(i);
  ASSERT_TRUE(f.head().SetPathState(a, PathState::kFailed));
  f.driver(a).CompleteHeld(IoStatus::Of(Errc::kPathError, "link down"));
  EXPECT_TRUE(f.log().entries.empty()) << "I/O failed while the window was open";
  f.driver(a).SetMode(NullPath::Mode::kInline);
  ASSERT_TRUE(f.head().SetPathState(a, PathState::kLive));
  f.executor().RunUntilIdle();
  ExpectEachCompletedOnceInOrder(f.log(), 3, Errc::kOk);
}

TEST(NoPath, RegistryReattachWithinTheWindowRejoinsTheSameHead) {
  ManualClock clock;
  testing::ManualExecutor executor(clock);
  RegistryOptions options;
  options.opt_in.mode = MultipathMode::kAlways;
  options.head.delayed_removal = 3s;
  auto registry = Registry::Create(options, executor).value();
  DeviceInfo info;
  info.name = "sdb";
  info.transport = "sim";
  info.identity = DeviceIdentity("naa.60014050000000000000000000000001");
  info.capacity_bytes = 1 << 20;
  auto first = registry->Attach(info, NeutralTemplate::Instance(), std::make_unique<NullPath>()).value();
  ASSERT_TRUE(first.multipathed());
  ASSERT_TRUE(registry->Detach("sdb"));
  executor.Advance(2s);
  info.name = "sdc";
  auto second = registry->Attach(info, NeutralTemplate::Instance(), std::make_unique<NullPath>()).value();
  EXPECT_EQ(second.head, first.head);
  EXPECT_EQ(registry->Heads().size(), 1u);

  ASSERT_TRUE(registry->Detach("sdc"));
  executor.Advance(3s);
  EXPECT_EQ(first.head->state(), HeadState::kRemoved);
  EXPECT_TRUE(registry->Heads().empty());
  EXPECT_EQ(registry->FindHead(info.identity.str()), nullptr);
}

}  // namespace
}  // namespace mpath
