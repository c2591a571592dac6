// The four iopolicies, driven through a real Head and HeadChannel over null paths. Time and execution are manual, so
// every distribution asserted here is exact or bounded by a deterministic simulation, never by luck.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "mpath/core/head.h"
#include "mpath/core/head_channel.h"
#include "mpath/core/io_request.h"
#include "mpath/core/path_driver.h"
#include "mpath/core/personality.h"
#include "mpath/testing/head_fixture.h"

namespace mpath {
namespace {

using mpath::testing::ManualExecutor;

constexpr std::uint64_t kCapacity = 1 << 20;
constexpr std::uint32_t kBlock = 512;
constexpr const char* kIdentity = "naa.600140500000000000000000000000a1";

// A head over null paths with one channel; the test thread plays the control plane and the I/O thread at once.
// Requests come from a pool and go back to it when their completion hook runs.
class PolicyHarness {
 public:
  explicit PolicyHarness(IoPolicyKind policy, HeadOptions options = {}) : executor_(clock_) {
    options.policy = policy;
    head_ = Head::Create({"mpath0", DeviceIdentity(kIdentity), kCapacity, kBlock, options},
                         NeutralTemplate::Instance(), executor_)
                .value();
  }

  ~PolicyHarness() {
    // Everything still on a path comes back before the channel goes: the channel must outlive its I/O.
    for (const PathInfo& info : head_->Paths()) {
      auto& driver = static_cast<NullPath&>(head_->FindPath(info.id)->driver());
      driver.SetMode(NullPath::Mode::kInline);
      driver.CompleteHeld(IoStatus::Ok());
    }
    executor_.Advance(std::chrono::seconds(10));
    if (channel_) channel_->Close();
    channel_.reset();
  }

  struct AddedPath {
    PathId id;
    NullPath* driver;
  };

  AddedPath AddPath(std::string name, int locality, AccessState access = AccessState::kOptimized,
                    PathState state = PathState::kLive, NullPath::Mode mode = NullPath::Mode::kInline,
                    Nanos latency = Nanos(0)) {
    DeviceInfo info = testing::NullPathInfo(std::move(name), DeviceIdentity(kIdentity), kCapacity, kBlock, locality);
    info.initial_state = state;
    info.initial_access = access;
    auto driver = std::make_unique<NullPath>(mode, &executor_, latency);
    NullPath* raw = driver.get();
    PathId id = head_->AddPath(info, std::move(driver)).value();
    return {id, raw};
  }

  void OpenChannel(int locality = kUnknownLocality) { channel_ = head_->OpenChannel(executor_, locality); }

  // Submits `n` one-block reads. Each completion returns its request to the pool.
  void Submit(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      IoRequest* io = pool_.Acquire();
      ASSERT_NE(io, nullptr) << "request pool exhausted";
      io->op = IoOp::kRead;
      io->offset = (submitted_ % (kCapacity / kBlock)) * kBlock;
      io->length = kBlock;
      io->data = buffer_.data();
      io->OnComplete(&PolicyHarness::OnDone, this);
      ++submitted_;
      channel_->Submit(*io);
    }
  }

  // Keeps `depth` reads outstanding for `duration`, topping up every `step` of manual time, then drains.
  void RunClosedLoop(std::size_t depth, Nanos duration, Nanos step) {
    for (Nanos t(0); t < duration; t += step) {
      Submit(depth - outstanding());
      executor_.Advance(step);
    }
    executor_.Advance(std::chrono::seconds(1));
  }

  [[nodiscard]] std::size_t outstanding() const { return submitted_ - succeeded_ - failed_; }

  Head& head() { return *head_; }
  HeadChannel& channel() { return *channel_; }
  ManualExecutor& executor() { return executor_; }
  std::size_t succeeded() const { return succeeded_; }
  std::size_t failed() const { return failed_; }
  const IoStatus& last_failure() const { return last_failure_; }

 private:
  static void OnDone(IoRequest& io, void* arg) {
    auto* self = static_cast<PolicyHarness*>(arg);
    if (io.status.ok()) {
      ++self->succeeded_;
    } else {
      ++self->failed_;
      self->last_failure_ = io.status;
    }
    self->pool_.Release(&io);
  }

  ManualClock clock_;
  ManualExecutor executor_;
  std::shared_ptr<Head> head_;
  IoRequestPool pool_{512, 0};
  std::array<std::byte, kBlock> buffer_{};
  std::size_t submitted_ = 0;
  std::size_t succeeded_ = 0;
  std::size_t failed_ = 0;
  IoStatus last_failure_;
  // Last, so that it goes first: closing it may complete queued requests into the members above.
  std::shared_ptr<HeadChannel> channel_;
};

std::string PolicyParamName(IoPolicyKind policy) {
  std::string name(Name(policy));
  for (char& c : name) {
    if (c == '-') c = '_';
  }
  return name;
}

// ---------------------------------------------------------------------------------------------------------------
// numa

TEST(NumaPolicy, PicksThePathOnTheChannelsNode) {
  PolicyHarness h(IoPolicyKind::kNuma);
  auto node0 = h.AddPath("p0", 0);
  auto node1 = h.AddPath("p1", 1);
  auto node2 = h.AddPath("p2", 2);
  h.OpenChannel(/*locality=*/1);

  h.Submit(50);

  EXPECT_EQ(h.succeeded(), 50u);
  EXPECT_EQ(node0.driver->submitted(), 0u);
  EXPECT_EQ(node1.driver->submitted(), 50u);
  EXPECT_EQ(node2.driver->submitted(), 0u);
}

TEST(NumaPolicy, PathOfUnknownLocalityCountsAsLocal) {
  PolicyHarness h(IoPolicyKind::kNuma);
  auto remote = h.AddPath("remote", 0);  // first, so that a tie-break by order would pick it
  auto unknown = h.AddPath("unknown", kUnknownLocality);
  h.OpenChannel(/*locality=*/1);

  h.Submit(20);

  EXPECT_EQ(remote.driver->submitted(), 0u);
  EXPECT_EQ(unknown.driver->submitted(), 20u);
}

TEST(NumaPolicy, ChannelOfUnknownLocalityStaysOnOnePath) {
  PolicyHarness h(IoPolicyKind::kNuma);
  auto a = h.AddPath("a", 3);
  auto b = h.AddPath("b", 0);
  h.OpenChannel(kUnknownLocality);

  h.Submit(20);

  // Every path is "local" to a thread of unknown node, so no path is nearer: numa must not spread, it sticks to one.
  EXPECT_EQ(a.driver->submitted() + b.driver->submitted(), 20u);
  EXPECT_TRUE(a.driver->submitted() == 20u || b.driver->submitted() == 20u);
}

TEST(NumaPolicy, NearerRemoteNodeWinsWhenNoneIsLocal) {
  PolicyHarness h(IoPolicyKind::kNuma);
  auto far = h.AddPath("far", 3);
  auto near = h.AddPath("near", 1);
  h.OpenChannel(/*locality=*/0);

  h.Submit(10);

  EXPECT_EQ(far.driver->submitted(), 0u);
  EXPECT_EQ(near.driver->submitted(), 10u);
}

TEST(NumaPolicy, StaysOnTheChosenPathWhileItsQueueGrows) {
  PolicyHarness h(IoPolicyKind::kNuma);
  auto local = h.AddPath("local", 0, AccessState::kOptimized, PathState::kLive, NullPath::Mode::kHold);
  auto remote = h.AddPath("remote", 1, AccessState::kOptimized, PathState::kLive, NullPath::Mode::kHold);
  h.OpenChannel(/*locality=*/0);

  h.Submit(40);

  // Unlike queue-depth, numa does not look at load: all 40 pile up on the cached local path.
  EXPECT_EQ(local.driver->held(), 40u);
  EXPECT_EQ(remote.driver->held(), 0u);
  EXPECT_EQ(h.channel().in_flight(), 40u);
}

TEST(NumaPolicy, RecomputesAfterAccessStateChanges) {
  PolicyHarness h(IoPolicyKind::kNuma);
  auto local = h.AddPath("local", 0);
  auto remote = h.AddPath("remote", 1);
  h.OpenChannel(/*locality=*/0);

  h.Submit(5);
  EXPECT_EQ(local.driver->submitted(), 5u);

  ASSERT_TRUE(h.head().SetAccessState(local.id, AccessState::kNonOptimized).has_value());
  h.Submit(5);
  EXPECT_EQ(local.driver->submitted(), 5u);
  EXPECT_EQ(remote.driver->submitted(), 5u);

  ASSERT_TRUE(h.head().SetAccessState(local.id, AccessState::kOptimized).has_value());
  h.Submit(5);
  EXPECT_EQ(local.driver->submitted(), 10u);
  EXPECT_EQ(remote.driver->submitted(), 5u);
}

TEST(NumaPolicy, RecomputesAfterPathStateChanges) {
  PolicyHarness h(IoPolicyKind::kNuma);
  auto local = h.AddPath("local", 0);
  auto remote = h.AddPath("remote", 1);
  h.OpenChannel(/*locality=*/0);

  h.Submit(3);
  ASSERT_TRUE(h.head().SetPathState(local.id, PathState::kFailed).has_value());
  h.Submit(4);
  ASSERT_TRUE(h.head().SetPathState(local.id, PathState::kLive).has_value());
  h.Submit(5);

  EXPECT_EQ(local.driver->submitted(), 3u + 5u);
  EXPECT_EQ(remote.driver->submitted(), 4u);
}

TEST(NumaPolicy, MovesToANearerPathWhenOneIsAdded) {
  PolicyHarness h(IoPolicyKind::kNuma);
  auto remote = h.AddPath("remote", 1);
  h.OpenChannel(/*locality=*/0);
  h.Submit(5);

  auto local = h.AddPath("local", 0);
  h.Submit(5);

  EXPECT_EQ(remote.driver->submitted(), 5u);
  EXPECT_EQ(local.driver->submitted(), 5u);
}

TEST(NumaPolicy, RecomputesAfterPolicyRoundTrip) {
  PolicyHarness h(IoPolicyKind::kNuma);
  auto local = h.AddPath("local", 0);
  auto remote = h.AddPath("remote", 1);
  h.OpenChannel(/*locality=*/0);

  h.Submit(4);
  h.head().SetIoPolicy(IoPolicyKind::kRoundRobin);
  h.Submit(4);
  h.head().SetIoPolicy(IoPolicyKind::kNuma);
  h.Submit(4);

  EXPECT_EQ(local.driver->submitted(), 4u + 2u + 4u);
  EXPECT_EQ(remote.driver->submitted(), 2u);
}

TEST(NumaPolicy, PrefersOptimizedOverANearerNonOptimizedPath) {
  PolicyHarness h(IoPolicyKind::kNuma);
  auto near_nonopt = h.AddPath("near", 0, AccessState::kNonOptimized);
  auto far_opt = h.AddPath("far", 2, AccessState::kOptimized);
  h.OpenChannel(/*locality=*/0);

  h.Submit(10);

  EXPECT_EQ(near_nonopt.driver->submitted(), 0u);
  EXPECT_EQ(far_opt.driver->submitted(), 10u);
}

TEST(NumaPolicy, NearestNonOptimizedWhenNoOptimizedPathIsUsable) {
  PolicyHarness h(IoPolicyKind::kNuma);
  auto opt = h.AddPath("opt", 0, AccessState::kOptimized, PathState::kFailed);
  auto far_nonopt = h.AddPath("far", 3, AccessState::kNonOptimized);
  auto near_nonopt = h.AddPath("near", 1, AccessState::kNonOptimized);
  h.OpenChannel(/*locality=*/1);

  h.Submit(6);

  EXPECT_EQ(opt.driver->submitted(), 0u);
  EXPECT_EQ(far_nonopt.driver->submitted(), 0u);
  EXPECT_EQ(near_nonopt.driver->submitted(), 6u);
}

// ---------------------------------------------------------------------------------------------------------------
// round-robin

TEST(RoundRobinPolicy, RotatesInOrderOverOptimizedPathsOnly) {
  PolicyHarness h(IoPolicyKind::kRoundRobin);
  std::vector<PolicyHarness::AddedPath> opt = {h.AddPath("a", 0), h.AddPath("b", 1), h.AddPath("c", 0)};
  auto nonopt = h.AddPath("d", 0, AccessState::kNonOptimized);
  h.OpenChannel(/*locality=*/0);

  // The first 6 I/Os visit a, b, c, a, b, c.
  for (std::size_t i = 0; i < 6; ++i) {
    h.Submit(1);
    for (std::size_t p = 0; p < opt.size(); ++p) {
      EXPECT_EQ(opt[p].driver->submitted(), i / 3 + (p <= i % 3 ? 1 : 0)) << "after I/O " << i << ", path " << p;
    }
  }
  h.Submit(294);

  for (const auto& p : opt) EXPECT_EQ(p.driver->submitted(), 100u);
  EXPECT_EQ(nonopt.driver->submitted(), 0u);
  EXPECT_EQ(h.succeeded(), 300u);
}

TEST(RoundRobinPolicy, NeverUsesNonOptimizedWhileOneOptimizedIsUsable) {
  PolicyHarness h(IoPolicyKind::kRoundRobin);
  auto a = h.AddPath("a", 0);
  auto b = h.AddPath("b", 0);
  auto nonopt1 = h.AddPath("n1", 0, AccessState::kNonOptimized);
  auto nonopt2 = h.AddPath("n2", 0, AccessState::kNonOptimized);
  h.OpenChannel();

  h.Submit(10);
  ASSERT_TRUE(h.head().SetPathState(a.id, PathState::kFailed).has_value());
  h.Submit(10);

  EXPECT_EQ(a.driver->submitted(), 5u);
  EXPECT_EQ(b.driver->submitted(), 15u);
  EXPECT_EQ(nonopt1.driver->submitted(), 0u);
  EXPECT_EQ(nonopt2.driver->submitted(), 0u);
}

TEST(RoundRobinPolicy, FallsBackToNonOptimizedOnlyWhenNoOptimizedIsUsable) {
  PolicyHarness h(IoPolicyKind::kRoundRobin);
  auto a = h.AddPath("a", 0);
  auto b = h.AddPath("b", 0, AccessState::kStandby);
  auto n1 = h.AddPath("n1", 0, AccessState::kNonOptimized);
  auto n2 = h.AddPath("n2", 0, AccessState::kNonOptimized);
  h.OpenChannel();

  ASSERT_TRUE(h.head().SetAccessState(a.id, AccessState::kUnavailable).has_value());
  h.Submit(10);
  EXPECT_EQ(n1.driver->submitted(), 5u);
  EXPECT_EQ(n2.driver->submitted(), 5u);

  // An optimized path comes back: the non-optimized tier is dropped at once.
  ASSERT_TRUE(h.head().SetAccessState(b.id, AccessState::kOptimized).has_value());
  h.Submit(10);
  EXPECT_EQ(a.driver->submitted(), 0u);
  EXPECT_EQ(b.driver->submitted(), 10u);
  EXPECT_EQ(n1.driver->submitted(), 5u);
  EXPECT_EQ(n2.driver->submitted(), 5u);
}

TEST(RoundRobinPolicy, SpreadsEvenlyOverTheMaximumNumberOfPaths) {
  PolicyHarness h(IoPolicyKind::kRoundRobin);
  std::vector<PolicyHarness::AddedPath> paths;
  for (std::size_t i = 0; i < Head::kMaxPaths; ++i) paths.push_back(h.AddPath(fmt::format("p{}", i), 0));
  h.OpenChannel();

  h.Submit(2 * Head::kMaxPaths);

  for (const auto& p : paths) EXPECT_EQ(p.driver->submitted(), 2u);
  EXPECT_EQ(h.succeeded(), 2 * Head::kMaxPaths);
}

// ---------------------------------------------------------------------------------------------------------------
// queue-depth

TEST(QueueDepthPolicy, SendsToThePathWithFewestInFlight) {
  PolicyHarness h(IoPolicyKind::kQueueDepth);
  constexpr auto kHold = NullPath::Mode::kHold;
  auto a = h.AddPath("a", 0, AccessState::kOptimized, PathState::kLive, kHold);
  auto b = h.AddPath("b", 0, AccessState::kOptimized, PathState::kLive, kHold);
  auto c = h.AddPath("c", 0, AccessState::kOptimized, PathState::kLive, kHold);
  h.OpenChannel();

  h.Submit(9);
  EXPECT_EQ(a.driver->held(), 3u);
  EXPECT_EQ(b.driver->held(), 3u);
  EXPECT_EQ(c.driver->held(), 3u);

  // b drains; the next three all go to b, because it has fewest in flight until it catches up.
  EXPECT_EQ(b.driver->CompleteHeld(IoStatus::Ok()), 3u);
  h.Submit(3);
  EXPECT_EQ(a.driver->submitted(), 3u);
  EXPECT_EQ(b.driver->submitted(), 6u);
  EXPECT_EQ(c.driver->submitted(), 3u);

  // Then a drains: at 0 against 3 and 3, it takes the next three.
  EXPECT_EQ(a.driver->CompleteHeld(IoStatus::Ok()), 3u);
  h.Submit(3);
  EXPECT_EQ(a.driver->submitted(), 6u);
  EXPECT_EQ(b.driver->submitted(), 6u);
  EXPECT_EQ(c.driver->submitted(), 3u);
  EXPECT_EQ(h.channel().in_flight(), 9u);
}

TEST(QueueDepthPolicy, FillsTheOptimizedTierFirst) {
  PolicyHarness h(IoPolicyKind::kQueueDepth);
  constexpr auto kHold = NullPath::Mode::kHold;
  auto a = h.AddPath("a", 0, AccessState::kOptimized, PathState::kLive, kHold);
  auto b = h.AddPath("b", 0, AccessState::kOptimized, PathState::kLive, kHold);
  auto n = h.AddPath("n", 0, AccessState::kNonOptimized, PathState::kLive, kHold);
  h.OpenChannel();

  // However deep the optimized queues get, the idle non-optimized path is not used.
  h.Submit(20);
  EXPECT_EQ(a.driver->held(), 10u);
  EXPECT_EQ(b.driver->held(), 10u);
  EXPECT_EQ(n.driver->held(), 0u);

  ASSERT_TRUE(h.head().SetPathState(a.id, PathState::kFailed).has_value());
  ASSERT_TRUE(h.head().SetPathState(b.id, PathState::kFailed).has_value());
  h.Submit(2);
  EXPECT_EQ(n.driver->held(), 2u);
  EXPECT_EQ(a.driver->submitted(), 10u);
  EXPECT_EQ(b.driver->submitted(), 10u);
}

// ---------------------------------------------------------------------------------------------------------------
// service-time

struct SlowFastSplit {
  std::uint64_t slow = 0;
  std::uint64_t fast = 0;
  [[nodiscard]] double fast_share() const { return static_cast<double>(fast) / static_cast<double>(slow + fast); }
};

// One slow (30 ms) and one fast (1 ms) path, the slow one first so that any warm-up bias favours it, under a closed
// loop of 8 outstanding reads for 300 ms of manual time.
SlowFastSplit RunSlowFast(IoPolicyKind policy) {
  HeadOptions options;
  options.marginal.latency_factor = 0.0;  // measure the policy alone: no latency-based demotion of the slow path
  PolicyHarness h(policy, options);
  constexpr auto kDelayed = NullPath::Mode::kDelayed;
  auto slow = h.AddPath("slow", 0, AccessState::kOptimized, PathState::kLive, kDelayed, std::chrono::milliseconds(30));
  auto fast = h.AddPath("fast", 0, AccessState::kOptimized, PathState::kLive, kDelayed, std::chrono::milliseconds(1));
  h.OpenChannel();

  h.RunClosedLoop(/*depth=*/8, std::chrono::milliseconds(300), std::chrono::milliseconds(1));

  EXPECT_EQ(h.outstanding(), 0u);
  EXPECT_EQ(h.failed(), 0u);
  return {slow.driver->submitted(), fast.driver->submitted()};
}

TEST(ServiceTimePolicy, FastPathTakesAlmostEverythingAfterWarmUp) {
  SlowFastSplit split = RunSlowFast(IoPolicyKind::kServiceTime);

  // Warm-up: the first 8 go to the (unmeasured) slow path; once both have a sample, 1 ms x (k+1) never exceeds
  // 30 ms x 1 for k < 8 in flight, so the slow path gets nothing more.
  EXPECT_EQ(split.slow, 8u);
  EXPECT_GT(split.fast, 2000u);
  EXPECT_GT(split.fast_share(), 0.99);
}

TEST(ServiceTimePolicy, BeatsQueueDepthOnMixedLatencies) {
  SlowFastSplit st = RunSlowFast(IoPolicyKind::kServiceTime);
  SlowFastSplit qd = RunSlowFast(IoPolicyKind::kQueueDepth);

  // Queue-depth balances in-flight counts, so the slow path always holds about half the window: 4 per 30 ms.
  EXPECT_EQ(qd.slow, 40u);
  EXPECT_GT(st.fast_share(), qd.fast_share());
  EXPECT_GT(st.fast, qd.fast);
}

TEST(ServiceTimePolicy, OnlyTheOptimizedTierIsWeighed) {
  PolicyHarness h(IoPolicyKind::kServiceTime);
  constexpr auto kDelayed = NullPath::Mode::kDelayed;
  auto slow_opt =
      h.AddPath("slow", 0, AccessState::kOptimized, PathState::kLive, kDelayed, std::chrono::milliseconds(30));
  auto fast_nonopt =
      h.AddPath("fast", 0, AccessState::kNonOptimized, PathState::kLive, kDelayed, std::chrono::milliseconds(1));
  h.OpenChannel();

  h.RunClosedLoop(/*depth=*/4, std::chrono::milliseconds(120), std::chrono::milliseconds(1));

  EXPECT_EQ(fast_nonopt.driver->submitted(), 0u);
  EXPECT_EQ(slow_opt.driver->submitted(), 16u);  // 4 every 30 ms
}

// ---------------------------------------------------------------------------------------------------------------
// Paths that may not carry I/O, under every policy.

struct UnusableCase {
  const char* name;
  AccessState access;
  PathState state;
};

constexpr UnusableCase kUnusableCases[] = {
    {"standby", AccessState::kStandby, PathState::kLive},
    {"unavailable", AccessState::kUnavailable, PathState::kLive},
    {"transitioning", AccessState::kTransitioning, PathState::kLive},
    {"persistent_loss", AccessState::kPersistentLoss, PathState::kLive},
    {"failed", AccessState::kOptimized, PathState::kFailed},
    {"connecting", AccessState::kOptimized, PathState::kConnecting},
};

constexpr IoPolicyKind kPolicies[] = {IoPolicyKind::kNuma, IoPolicyKind::kRoundRobin, IoPolicyKind::kQueueDepth,
                                      IoPolicyKind::kServiceTime};

class UnusablePathTest : public ::testing::TestWithParam<std::tuple<IoPolicyKind, UnusableCase>> {};

TEST_P(UnusablePathTest, NeverReceivesIo) {
  const auto [policy, unusable] = GetParam();
  PolicyHarness h(policy);
  // The unusable path is local and first, so every policy's preference would pick it if it were usable.
  auto bad = h.AddPath("bad", 0, unusable.access, unusable.state);
  auto remote_nonopt = h.AddPath("remote", 1, AccessState::kNonOptimized);
  h.OpenChannel(/*locality=*/0);

  h.Submit(30);
  EXPECT_EQ(bad.driver->submitted(), 0u);
  EXPECT_EQ(remote_nonopt.driver->submitted(), 30u);
  EXPECT_EQ(h.succeeded(), 30u);

  // Now it is the only path left: the I/O queues or fails, but still never reaches it.
  ASSERT_TRUE(h.head().SetPathState(remote_nonopt.id, PathState::kFailed).has_value());
  h.Submit(10);
  h.executor().RunUntilIdle();
  EXPECT_EQ(bad.driver->submitted(), 0u);
  EXPECT_EQ(remote_nonopt.driver->submitted(), 30u);
  EXPECT_EQ(h.failed() + h.channel().queued(), 10u);
}

INSTANTIATE_TEST_SUITE_P(AllPolicies, UnusablePathTest,
                         ::testing::Combine(::testing::ValuesIn(kPolicies), ::testing::ValuesIn(kUnusableCases)),
                         [](const auto& info) {
                           return PolicyParamName(std::get<0>(info.param)) + "_" + std::get<1>(info.param).name;
                         });

TEST(UnusablePath, TransitioningPathGetsQueuedIoOnceOptimized) {
  PolicyHarness h(IoPolicyKind::kRoundRobin);
  auto p = h.AddPath("p", 0, AccessState::kTransitioning);
  h.OpenChannel();

  h.Submit(5);
  EXPECT_EQ(h.head().state(), HeadState::kQueueing);
  EXPECT_EQ(h.channel().queued(), 5u);
  EXPECT_EQ(p.driver->submitted(), 0u);

  ASSERT_TRUE(h.head().SetAccessState(p.id, AccessState::kOptimized).has_value());
  h.executor().RunUntilIdle();  // the head kicks the channel through its executor

  EXPECT_EQ(h.channel().queued(), 0u);
  EXPECT_EQ(p.driver->submitted(), 5u);
  EXPECT_EQ(h.succeeded(), 5u);
}

TEST(UnusablePath, StandbyOnlyHeadFailsIoWithNoPath) {
  PolicyHarness h(IoPolicyKind::kNuma);
  auto p = h.AddPath("p", 0, AccessState::kStandby);
  h.OpenChannel();

  h.Submit(3);

  EXPECT_EQ(h.head().state(), HeadState::kFailing);
  EXPECT_EQ(h.failed(), 3u);
  EXPECT_EQ(h.last_failure().code, Errc::kNoPath);
  EXPECT_EQ(p.driver->submitted(), 0u);
}

// ---------------------------------------------------------------------------------------------------------------
// Switching policy at run time.

TEST(PolicySwitch, TakesEffectOnTheNextIo) {
  PolicyHarness h(IoPolicyKind::kNuma);
  constexpr auto kHold = NullPath::Mode::kHold;
  auto local = h.AddPath("local", 0, AccessState::kOptimized, PathState::kLive, kHold);
  auto remote = h.AddPath("remote", 1, AccessState::kOptimized, PathState::kLive, kHold);
  h.OpenChannel(/*locality=*/0);

  h.Submit(6);
  EXPECT_EQ(local.driver->held(), 6u);
  EXPECT_EQ(remote.driver->held(), 0u);

  // Queue-depth: remote has 0 in flight against local's 6, so it takes the next 6.
  h.head().SetIoPolicy(IoPolicyKind::kQueueDepth);
  EXPECT_EQ(h.head().policy(), IoPolicyKind::kQueueDepth);
  h.Submit(6);
  EXPECT_EQ(local.driver->held(), 6u);
  EXPECT_EQ(remote.driver->held(), 6u);

  h.head().SetIoPolicy(IoPolicyKind::kRoundRobin);
  h.Submit(6);
  EXPECT_EQ(local.driver->held(), 9u);
  EXPECT_EQ(remote.driver->held(), 9u);

  h.head().SetIoPolicy(IoPolicyKind::kNuma);
  h.Submit(6);
  EXPECT_EQ(local.driver->held(), 15u);
  EXPECT_EQ(remote.driver->held(), 9u);

  // In-flight I/O is unaffected by the switches: every request completes once, on the path it was sent to.
  EXPECT_EQ(local.driver->CompleteHeld(IoStatus::Ok()), 15u);
  EXPECT_EQ(remote.driver->CompleteHeld(IoStatus::Ok()), 9u);
  EXPECT_EQ(h.succeeded(), 24u);
  EXPECT_EQ(h.channel().in_flight(), 0u);
}

TEST(PolicySwitch, ReachesEveryChannel) {
  PolicyHarness h(IoPolicyKind::kRoundRobin);
  auto local = h.AddPath("local", 0);
  auto remote = h.AddPath("remote", 1);
  h.OpenChannel(/*locality=*/1);
  // A second channel on another node, sharing the head and the executor.
  auto other = h.head().OpenChannel(h.executor(), /*locality=*/0);

  h.head().SetIoPolicy(IoPolicyKind::kNuma);
  h.Submit(4);
  std::array<std::byte, kBlock> buffer{};
  int done = 0;
  for (int i = 0; i < 4; ++i) {
    IoRequest io;
    io.op = IoOp::kRead;
    io.length = kBlock;
    io.data = buffer.data();
    io.OnComplete([](IoRequest& r, void* arg) { *static_cast<int*>(arg) += r.status.ok() ? 1 : 0; }, &done);
    other->Submit(io);  // inline paths: complete before Submit returns
  }

  EXPECT_EQ(done, 4);
  EXPECT_EQ(remote.driver->submitted(), 4u);  // the first channel is on node 1
  EXPECT_EQ(local.driver->submitted(), 4u);   // the second on node 0
}

}  // namespace
}  // namespace mpath
