// Failover: only path errors move I/O to another path; target errors surface unchanged; passthrough is never
// retried elsewhere; retries are bounded.
#include <gtest/gtest.h>

#include "mpath/testing/head_fixture.h"

namespace mpath {
namespace {

using testing::HeadFixture;

const IoStatus kPathDown = IoStatus::Of(Errc::kPathError, "link down");

TEST(Failover, PathErrorMovesTheIoToAnotherPath) {
  HeadFixture f;
  PathId a = f.AddPath("a");
  PathId b = f.AddPath("b");
  f.driver(a).SetOutcome(kPathDown);

  f.Submit(1);

  ASSERT_EQ(f.log().entries.size(), 1u);
  EXPECT_TRUE(f.log().entries[0].status.ok());
  EXPECT_EQ(f.driver(a).submitted(), 1u);
  EXPECT_EQ(f.driver(b).submitted(), 1u);
  EXPECT_EQ(f.head().Counters().failovers, 1u);
  EXPECT_EQ(f.head().Counters().errors, 0u);
  EXPECT_EQ(f.head().FindPath(a)->Counters().failovers, 1u);
  EXPECT_EQ(f.head().FindPath(b)->Counters().ios, 1u);
}

TEST(Failover, TargetErrorsSurfaceUnchangedAndAreNotRetried) {
  for (Errc target_error : {Errc::kMediumError, Errc::kReservationConflict, Errc::kTargetError, Errc::kInvalidArgument,
                            Errc::kProtection, Errc::kNoSpace}) {
    HeadFixture f;
    PathId a = f.AddPath("a");
    PathId b = f.AddPath("b");
    RawStatus raw{7, {0x02, 0x03, 0x11, 0x00}};  // whatever the device said must reach the submitter verbatim
    f.driver(a).SetOutcome(IoStatus::Of(target_error, "device said no", raw));

    f.Submit(1);

    ASSERT_EQ(f.log().entries.size(), 1u) << ErrcName(target_error);
    const IoStatus& st = f.log().entries[0].status;
    EXPECT_EQ(st.code, target_error);
    EXPECT_EQ(st.raw, raw);
    EXPECT_STREQ(st.context, "device said no");
    EXPECT_EQ(f.driver(b).submitted(), 0u) << ErrcName(target_error);
    EXPECT_EQ(f.head().Counters().failovers, 0u);
    EXPECT_EQ(f.head().Counters().errors, 1u);
  }
}

TEST(Failover, PassthroughGoesDownOnePathAndIsNeverRetriedElsewhere) {
  HeadFixture f;
  PathId a = f.AddPath("a");
  PathId b = f.AddPath("b");
  f.driver(a).SetOutcome(kPathDown);

  f.Submit(1, IoOp::kPassthrough);

  ASSERT_EQ(f.log().entries.size(), 1u);
  EXPECT_EQ(f.log().entries[0].status.code, Errc::kPathError);
  EXPECT_EQ(f.driver(a).submitted(), 1u);
  EXPECT_EQ(f.driver(b).submitted(), 0u);
}

TEST(Failover, PassthroughIsNotRetriedOnTheSamePathEither) {
  HeadFixture f;
  PathId a = f.AddPath("a");
  f.driver(a).SetOutcome(IoStatus::Of(Errc::kBusy, "busy"));

  f.Submit(1, IoOp::kPassthrough);
  f.executor().Advance(std::chrono::seconds(1));

  ASSERT_EQ(f.log().entries.size(), 1u);
  EXPECT_EQ(f.log().entries[0].status.code, Errc::kBusy);
  EXPECT_EQ(f.driver(a).submitted(), 1u);
}

TEST(Failover, RetrySamePathWaitsTheDelayAndIsBounded) {
  HeadOptions options;
  options.max_same_path_retries = 3;
  HeadFixture f(options);
  PathId a = f.AddPath("a");
  PathId b = f.AddPath("b");
  f.driver(a).SetOutcome(IoStatus::Of(Errc::kBusy, "busy"));  // NeutralTemplate: retry on the same path after 1 ms

  f.Submit(1);
  EXPECT_EQ(f.driver(a).submitted(), 1u);
  f.executor().Advance(std::chrono::microseconds(999));
  EXPECT_EQ(f.driver(a).submitted(), 1u) << "retried before its delay";
  f.executor().Advance(std::chrono::microseconds(1));
  EXPECT_EQ(f.driver(a).submitted(), 2u);
  EXPECT_TRUE(f.log().entries.empty());

  f.executor().Advance(std::chrono::milliseconds(10));
  ASSERT_EQ(f.log().entries.size(), 1u);
  EXPECT_EQ(f.log().entries[0].status.code, Errc::kBusy);
  EXPECT_EQ(f.driver(a).submitted(), 4u);  // the first try and three retries
  EXPECT_EQ(f.driver(b).submitted(), 0u);
  EXPECT_EQ(f.head().Counters().retries, 3u);
}

TEST(Failover, RetrySamePathSucceedsWhenThePathRecovers) {
  HeadFixture f;
  PathId a = f.AddPath("a");
  f.driver(a).SetOutcome(IoStatus::Of(Errc::kBusy, "busy"));
  f.Submit(1);
  f.driver(a).SetOutcome(IoStatus::Ok());
  f.executor().Advance(std::chrono::milliseconds(1));
  ASSERT_EQ(f.log().entries.size(), 1u);
  EXPECT_TRUE(f.log().entries[0].status.ok());
}

TEST(Failover, ARetryForAPathThatJustBecameUnusableGoesToAnotherPath) {
  HeadFixture f;
  PathId a = f.AddPath("a", AccessState::kOptimized, NullPath::Mode::kHold);
  PathId b = f.AddPath("b", AccessState::kNonOptimized);
  f.Submit(1);
  ASSERT_EQ(f.driver(a).held(), 1u);
  // The path leaves the usable set while its command is out, and the command then comes back "retry here".
  ASSERT_TRUE(f.head().SetAccessState(a, AccessState::kStandby));
  f.executor().RunUntilIdle();
  EXPECT_EQ(f.driver(a).CompleteHeld(IoStatus::Of(Errc::kBusy, "unit attention")), 1u);
  f.executor().RunUntilIdle();

  ASSERT_EQ(f.log().entries.size(), 1u);
  EXPECT_TRUE(f.log().entries[0].status.ok()) << f.log().entries[0].status.context;
  EXPECT_EQ(f.driver(b).submitted(), 1u);
  EXPECT_EQ(f.driver(a).submitted(), 1u) << "not sent again to the path that became unusable";
}

TEST(Failover, InFlightIoOnAPathThatDiesCompletesOnAnotherExactlyOnce) {
  HeadFixture f;
  PathId a = f.AddPath("a", AccessState::kOptimized, NullPath::Mode::kHold);
  PathId b = f.AddPath("b");
  for (std::size_t i = 0; i < 64; ++i) f.Submit(i);
  ASSERT_EQ(f.driver(a).held(), 64u);
  EXPECT_TRUE(f.log().entries.empty());

  ASSERT_TRUE(f.head().SetPathState(a, PathState::kFailed));
  EXPECT_EQ(f.driver(a).CompleteHeld(kPathDown), 64u);

  ASSERT_EQ(f.log().entries.size(), 64u);
  for (std::size_t i = 0; i < 64; ++i) {
    EXPECT_EQ(f.log().CountOf(i), 1u) << "request " << i;
    EXPECT_TRUE(f.log().entries[i].status.ok());
  }
  EXPECT_EQ(f.driver(b).submitted(), 64u);
  EXPECT_EQ(f.head().Counters().failovers, 64u);
}

TEST(Failover, EveryPathFailingSurfacesTheLastPathErrorAfterBoundedRounds) {
  HeadOptions options;
  options.max_failover_rounds = 3;
  options.failover_round_backoff = std::chrono::milliseconds(20);
  HeadFixture f(options);
  PathId a = f.AddPath("a");
  PathId b = f.AddPath("b");
  f.driver(a).SetOutcome(kPathDown);
  f.driver(b).SetOutcome(kPathDown);

  f.Submit(1);
  EXPECT_EQ(f.driver(a).submitted() + f.driver(b).submitted(), 2u);  // one round: each path once
  EXPECT_TRUE(f.log().entries.empty());
  f.executor().Advance(std::chrono::milliseconds(20));
  EXPECT_EQ(f.driver(a).submitted() + f.driver(b).submitted(), 4u);
  f.executor().Advance(std::chrono::milliseconds(20));

  ASSERT_EQ(f.log().entries.size(), 1u);
  EXPECT_EQ(f.log().entries[0].status.code, Errc::kPathError);
  EXPECT_EQ(f.driver(a).submitted() + f.driver(b).submitted(), 6u);
}

TEST(Failover, ARoundBackoffEndsWellWhenAPathRecovers) {
  HeadFixture f;
  PathId a = f.AddPath("a");
  PathId b = f.AddPath("b");
  f.driver(a).SetOutcome(kPathDown);
  f.driver(b).SetOutcome(kPathDown);
  f.Submit(1);
  f.driver(b).SetOutcome(IoStatus::Ok());
  f.executor().Advance(std::chrono::milliseconds(20));
  ASSERT_EQ(f.log().entries.size(), 1u);
  EXPECT_TRUE(f.log().entries[0].status.ok());
}

TEST(Failover, WriteQuiesceDelayHoldsAFailedOverWriteBack) {
  HeadOptions options;
  options.write_quiesce_delay = std::chrono::milliseconds(5);
  HeadFixture f(options);
  PathId a = f.AddPath("a");
  PathId b = f.AddPath("b");
  f.driver(a).SetOutcome(kPathDown);

  f.Submit(1, IoOp::kWrite);
  EXPECT_EQ(f.driver(b).submitted(), 0u);
  f.executor().Advance(std::chrono::microseconds(4999));
  EXPECT_EQ(f.driver(b).submitted(), 0u) << "a failed-over write went out before its quiesce delay";
  f.executor().Advance(std::chrono::microseconds(1));
  EXPECT_EQ(f.driver(b).submitted(), 1u);
  ASSERT_EQ(f.log().entries.size(), 1u);
  EXPECT_TRUE(f.log().entries[0].status.ok());

  // Reads are not delayed: they cannot land stale data.
  f.Submit(2, IoOp::kRead);
  EXPECT_EQ(f.driver(b).submitted(), 2u);
}

TEST(Failover, RemovedPathStillCompletesItsInFlightIo) {
  HeadFixture f;
  PathId a = f.AddPath("a", AccessState::kOptimized, NullPath::Mode::kHold);
  PathId b = f.AddPath("b");
  f.Submit(1);
  f.Submit(2);
  ASSERT_EQ(f.driver(a).held(), 2u);
  NullPath& a_driver = f.driver(a);  // the path (and its driver) lives on while I/O is in flight on it
  ASSERT_TRUE(f.head().RemovePath(a));
  EXPECT_EQ(f.head().path_count(), 1u);

  f.Submit(3);  // goes to b: a is no longer a candidate
  EXPECT_EQ(f.driver(b).submitted(), 1u);
  a_driver.CompleteHeld(IoStatus::Ok());
  ASSERT_EQ(f.log().entries.size(), 3u);
  for (std::size_t tag : {1u, 2u, 3u}) EXPECT_EQ(f.log().CountOf(tag), 1u);
  for (const auto& e : f.log().entries) EXPECT_TRUE(e.status.ok());
}

// A personality that says "the path is changing state" for ALUA-transitioning-like errors.
class TransitionAwareTemplate final : public HeadTemplate {
 public:
  [[nodiscard]] std::string_view protocol() const override { return "test"; }
  [[nodiscard]] Decision Classify(const IoRequest& io, const IoStatus& status, const Path& path) const override {
    if (status.raw.family == 9 && status.raw.bytes[0] == 0x0A) return {Disposition::kWaitForStateChange};
    return NeutralTemplate::Instance().Classify(io, status, path);
  }
};

TEST(Failover, WaitForStateChangeGoesElsewhereWithoutMarkingThePathMarginal) {
  HeadOptions options;
  options.marginal.error_threshold = 2;
  TransitionAwareTemplate personality;
  HeadFixture f(options, personality);
  PathId a = f.AddPath("a");
  PathId b = f.AddPath("b");
  f.driver(a).SetOutcome(IoStatus::Of(Errc::kPathError, "transitioning", RawStatus{9, {0x0A}}));
  for (std::size_t i = 0; i < 10; ++i) f.Submit(i);
  ASSERT_EQ(f.log().entries.size(), 10u);
  for (const auto& e : f.log().entries) EXPECT_TRUE(e.status.ok());
  EXPECT_EQ(f.driver(b).submitted(), 10u);
  EXPECT_FALSE(f.head().FindPath(a)->marginal());
}

}  // namespace
}  // namespace mpath
