// The unit attention storm: one ALUA change of a target reaches every LU through every nexus, and must cost the
// target a couple of RTPGs, not one per LU or per path.
#include <gtest/gtest.h>

#include "alua_test_util.h"
#include "mpath/scsi/alua_engine.h"

namespace mpath::scsi::alua_testing {
namespace {

constexpr std::uint64_t kLus = 1024;
constexpr std::uint16_t kPorts = 4;  // group 1: ports 1 and 2; group 2: ports 3 and 4

PathKey KeyOf(std::uint64_t lun, std::uint16_t port) { return lun * kPorts + (port - 1); }
std::uint16_t GroupOf(std::uint16_t port) { return port <= 2 ? 1 : 2; }

class AluaCoalescingTest : public AluaFixture {
 protected:
  void SetUp() override {
    MakeArray({}, {{1, AluaState::kActiveOptimized, true, {1, 2}}, {2, AluaState::kActiveNonOptimized, false, {3, 4}}},
              kLus);
    for (std::uint16_t port = 1; port <= kPorts; ++port) {
      gates_.push_back(std::make_unique<GatedTransport>(Connect(port)));
    }
    MakeEngine();
    for (std::uint64_t lun = 0; lun < kLus; ++lun) {
      for (std::uint16_t port = 1; port <= kPorts; ++port) {
        AddPath(KeyOf(lun, port), *gates_[port - 1], lun, port, GroupOf(port));
      }
    }
    executor_.RunUntilIdle();
  }

  // Every path reports its group's state: group `optimized` active/optimized (and preferred iff it is group 1).
  void ExpectEveryPath(std::uint16_t optimized) {
    std::size_t wrong = 0;
    for (std::uint64_t lun = 0; lun < kLus; ++lun) {
      for (std::uint16_t port = 1; port <= kPorts; ++port) {
        const std::uint16_t group = GroupOf(port);
        const Reported want{group == optimized ? AccessState::kOptimized : AccessState::kNonOptimized, group == 1};
        if (Latest(KeyOf(lun, port)) != want) ++wrong;
      }
    }
    EXPECT_EQ(wrong, 0u);
  }

  std::vector<std::unique_ptr<GatedTransport>> gates_;  // open unless a test closes them
};

TEST_F(AluaCoalescingTest, DiscoveryReadsEachLuOnceAndReportsEveryPath) {
  ExpectEveryPath(1);
  EXPECT_EQ(recorder_.changes.size(), kLus * kPorts) << "each path reported exactly once";
  // One RTPG per LU to verify its membership, plus one retry each for the fresh nexus's 29/00.
  EXPECT_EQ(Rtpgs(), 2 * kLus);
}

TEST_F(AluaCoalescingTest, AStormOverEveryPathCostsOneRtpgOfTheTarget) {
  const std::uint64_t before = Rtpgs();
  const std::size_t changes = recorder_.changes.size();
  ASSERT_TRUE(array_->SetAccessState(1, AluaState::kActiveNonOptimized).has_value());
  ASSERT_TRUE(array_->SetAccessState(2, AluaState::kActiveOptimized).has_value());
  for (std::uint64_t lun = 0; lun < kLus; ++lun) {
    for (std::uint16_t port = 1; port <= kPorts; ++port) engine_->OnSense(KeyOf(lun, port), kStateChanged);
  }
  executor_.RunUntilIdle();

  const std::uint64_t storm = Rtpgs() - before;
  RecordProperty("rtpg_commands_for_4096_unit_attentions", static_cast<int>(storm));
  std::printf("RTPG commands (MAINTENANCE IN) for 2A/06 on %llu paths: %llu\n",
              static_cast<unsigned long long>(kLus * kPorts), static_cast<unsigned long long>(storm));
  EXPECT_LE(storm, 4u);
  // Exactly: one RTPG, which met the 2A/06 the array had queued on that (LU, nexus), and its retry.
  EXPECT_EQ(storm, 2u);
  ExpectEveryPath(2);
  EXPECT_EQ(recorder_.changes.size(), changes + kLus * kPorts) << "every path changed once";
}

TEST_F(AluaCoalescingTest, AStormArrivingWhileTheRtpgIsInFlightCostsOneFollowUp) {
  // The news trickles in, one nexus's LUs at a time, while the first RTPG's answer is still on the wire.
  const std::uint64_t before = Rtpgs();
  ASSERT_TRUE(array_->SetAccessState(1, AluaState::kStandby).has_value());
  for (auto& gate : gates_) gate->Close();
  for (std::uint16_t port = 1; port <= kPorts; ++port) {
    for (std::uint64_t lun = 0; lun < kLus; ++lun) engine_->OnSense(KeyOf(lun, port), kStateChanged);
    executor_.RunUntilIdle();
  }
  EXPECT_EQ(Rtpgs() - before, 1u) << "one RTPG in flight for the whole target";
  for (auto& gate : gates_) gate->Release();
  executor_.RunUntilIdle();

  const std::uint64_t storm = Rtpgs() - before;
  std::printf("RTPG commands for the storm in %u batches: %llu\n", kPorts, static_cast<unsigned long long>(storm));
  // The held one met the queued 2A/06 and was retried; then one follow-up for everything that came meanwhile.
  EXPECT_EQ(storm, 3u);
  std::size_t wrong = 0;
  for (std::uint64_t lun = 0; lun < kLus; ++lun) {
    for (std::uint16_t port = 1; port <= kPorts; ++port) {
      const Reported want = port <= 2 ? Reported{AccessState::kStandby, true}
                                      : Reported{AccessState::kNonOptimized, false};
      if (Latest(KeyOf(lun, port)) != want) ++wrong;
    }
  }
  EXPECT_EQ(wrong, 0u);
}

}  // namespace
}  // namespace mpath::scsi::alua_testing
