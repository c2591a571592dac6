// End to end through a core Head: two SCSI path drivers on the simulated SAN, a HeadTemplate double whose Classify is
// ClassifyScsi, and round-robin so that both paths carry I/O. When one path's port group goes standby behind the
// head's back, I/O keeps succeeding on the other path with nothing surfaced; passthrough and reservation conflicts
// are never resent elsewhere.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "mpath/core/head.h"
#include "mpath/core/head_channel.h"
#include "mpath/core/personality.h"
#include "mpath/scsi/classify.h"
#include "mpath/scsi/path_driver.h"
#include "mpath/scsi/spec/pr.h"
#include "path_driver_test_util.h"

namespace mpath::scsi {
namespace {

using testing::kBlock;
using testing::kCapacity;

// The lead's HeadTemplate will wrap ClassifyScsi the same way; the predicates stay the core's defaults.
class ScsiTemplateDouble final : public HeadTemplate {
 public:
  [[nodiscard]] std::string_view protocol() const override { return "scsi"; }
  [[nodiscard]] Decision Classify(const IoRequest& io, const IoStatus& status, const Path& /*path*/) const override {
    return ClassifyScsi(io, status);
  }
};

class ScsiHeadTest : public testing::SanFixture {
 protected:
  void SetUp() override {
    BuildSan(fake::AluaState::kActiveOptimized);  // both groups active/optimized: round-robin alternates
    p1_ = std::make_unique<testing::CountingTransport>(Connect("p1", 1));
    p2_ = std::make_unique<testing::CountingTransport>(Connect("p2", 2));
    HeadOptions options;
    options.policy = IoPolicyKind::kRoundRobin;
    auto head = Head::Create({"mpath0", DeviceIdentity("naa.60000000000000000000000000000001"), kCapacity, kBlock,
                              options},
                             template_, executor_);
    ASSERT_TRUE(head.has_value()) << head.error().ToString();
    head_ = std::move(*head);
    AddPath("p1", *p1_, observer1_);
    AddPath("p2", *p2_, observer2_);
    channel_ = head_->OpenChannel(executor_);
  }

  void TearDown() override {
    channel_->Close();
    executor_.RunUntilIdle();
  }

  void AddPath(const std::string& name, ScsiTransport& transport, testing::RecordingObserver& observer) {
    DeviceInfo info;
    info.name = name;
    info.transport = "sim";
    info.identity = head_->identity();
    info.reports_access_states = true;
    info.capacity_bytes = kCapacity;
    info.block_size = kBlock;
    auto driver = ScsiPathDriver::Create(transport, 0, kBlock, testing::kBlocks, {}, &observer);
    ASSERT_TRUE(driver.has_value());
    ASSERT_TRUE(head_->AddPath(info, std::move(*driver)).has_value());
  }

  struct Outcome {
    int completions = 0;
    IoStatus status;
  };
  static void Done(IoRequest& io, void* arg) {
    auto* outcome = static_cast<Outcome*>(arg);
    ++outcome->completions;
    outcome->status = io.status;
  }

  // Sends one request through the head and runs everything it sets off (same-path retries, failover).
  IoStatus Do(IoOp op, std::uint64_t offset, std::uint32_t length, std::byte* data, const void* passthrough = nullptr) {
    IoRequest* io = pool_.Acquire();
    io->op = op;
    io->fua = false;
    io->offset = offset;
    io->length = length;
    io->data = data;
    io->passthrough = passthrough;
    Outcome outcome;
    io->OnComplete(&ScsiHeadTest::Done, &outcome);
    {
      ScopedCurrentExecutor current(&executor_);
      channel_->Submit(*io);
    }
    executor_.RunUntilIdle();
    EXPECT_EQ(outcome.completions, 1);
    pool_.Release(io);
    return outcome.status;
  }

  // The first command on each nexus meets 29/00: normal I/O retries it on the same path and succeeds.
  void WarmUp() {
    std::vector<std::byte> data(kBlock);
    for (int i = 0; i < 2; ++i) ASSERT_TRUE(Do(IoOp::kRead, 0, kBlock, data.data()).ok());
    ASSERT_GT(p1_->count(), 0u);
    ASSERT_GT(p2_->count(), 0u);
  }

  ScsiTemplateDouble template_;
  std::unique_ptr<testing::CountingTransport> p1_;
  std::unique_ptr<testing::CountingTransport> p2_;
  testing::RecordingObserver observer1_;
  testing::RecordingObserver observer2_;
  IoRequestPool pool_{4, HeadOptions{}.request_context_size};
  std::shared_ptr<Head> head_;
  std::shared_ptr<HeadChannel> channel_;
};

TEST_F(ScsiHeadTest, StandbyGroupIsFailedOverWithoutSurfacingAnError) {
  // Before: both paths carry writes and every write reads back.
  for (std::uint32_t i = 0; i < 8; ++i) {
    std::vector<std::byte> out = testing::Pattern(4 * kBlock, static_cast<std::uint8_t>(i));
    ASSERT_TRUE(Do(IoOp::kWrite, i * 4 * kBlock, 4 * kBlock, out.data()).ok());
  }
  EXPECT_GT(p1_->count(), 2u);
  EXPECT_GT(p2_->count(), 2u);
  EXPECT_EQ(head_->Counters().errors, 0u);

  ASSERT_TRUE(array_->SetAccessState(kGroupB, fake::AluaState::kStandby).has_value());
  observer2_.Take();
  const std::uint64_t p2_before = p2_->count();
  const std::uint64_t failovers_before = head_->Counters().failovers;
  for (std::uint32_t i = 0; i < 16; ++i) {
    std::vector<std::byte> out = testing::Pattern(4 * kBlock, static_cast<std::uint8_t>(100 + i));
    const IoStatus written = Do(IoOp::kWrite, (64 + i * 4) * kBlock, 4 * kBlock, out.data());
    ASSERT_TRUE(written.ok()) << DescribeRawStatus(written.raw);
    std::vector<std::byte> in(out.size());
    const IoStatus read = Do(IoOp::kRead, (64 + i * 4) * kBlock, 4 * kBlock, in.data());
    ASSERT_TRUE(read.ok()) << DescribeRawStatus(read.raw);
    EXPECT_EQ(in, out);
  }
  // The standby path was tried (and answered 2A/06, then 04/0B), and the head moved those I/Os to the other path.
  EXPECT_GT(p2_->count(), p2_before);
  EXPECT_GT(head_->Counters().failovers, failovers_before);
  EXPECT_EQ(head_->Counters().errors, 0u);
  const auto heard = observer2_.codes();
  ASSERT_GE(heard.size(), 2u);
  EXPECT_EQ(heard[0], spec::asc::kAsymmetricAccessStateChanged);
  EXPECT_EQ(heard[1], spec::asc::kLunNotReadyTargetPortStandby);
  // Path 1 hears the power-on reset and the state change of the other group, and never a NOT READY.
  for (const spec::SenseCode& code : observer1_.codes()) {
    EXPECT_EQ(code.key, spec::SenseKey::kUnitAttention) << int(code.asc) << "/" << int(code.ascq);
  }
}

TEST_F(ScsiHeadTest, PassthroughFailingOnAPathIsNotRetriedOnTheOther) {
  WarmUp();
  Faults("p2").SetLinkDown(true);
  const std::uint8_t inquiry[] = {0x12, 0, 0, 0, 0x60, 0};
  std::vector<std::byte> first(0x60);
  std::vector<std::byte> second(0x60);
  const ScsiPassthrough a{.cdb = inquiry, .direction = DataDirection::kFromDevice, .data = first};
  const ScsiPassthrough b{.cdb = inquiry, .direction = DataDirection::kFromDevice, .data = second};
  const std::uint64_t p1_before = p1_->count();
  const std::uint64_t p2_before = p2_->count();
  // Round-robin sends one to each path.
  const IoStatus sa = Do(IoOp::kPassthrough, 0, 0, nullptr, &a);
  const IoStatus sb = Do(IoOp::kPassthrough, 0, 0, nullptr, &b);
  EXPECT_EQ(sa.ok() + sb.ok(), 1);
  const IoStatus& failed = sa.ok() ? sb : sa;
  EXPECT_EQ(failed.code, Errc::kPathError);
  EXPECT_EQ(DescribeRawStatus(failed.raw), "link down on INQUIRY");
  // One command each: the failed one never went to the healthy path.
  EXPECT_EQ(p1_->count() - p1_before, 1u);
  EXPECT_EQ(p2_->count() - p2_before, 1u);
}

TEST_F(ScsiHeadTest, PassthroughMeetingStandbyComesBackWithItsSense) {
  WarmUp();
  ASSERT_TRUE(array_->SetAccessState(kGroupB, fake::AluaState::kStandby).has_value());
  // Plain reads take the 2A/06 on both nexuses (retried in place) and fail over from standby.
  std::vector<std::byte> data(kBlock);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(Do(IoOp::kRead, 0, kBlock, data.data()).ok());
  const std::uint8_t read10[] = {0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0};
  std::vector<std::byte> buffers[2] = {std::vector<std::byte>(kBlock), std::vector<std::byte>(kBlock)};
  ScsiPassthroughAnswer answers[2];
  const std::uint64_t total_before = p1_->count() + p2_->count();
  int standby = 0;
  for (int i = 0; i < 2; ++i) {
    const ScsiPassthrough pass{.cdb = read10, .direction = DataDirection::kFromDevice, .data = buffers[i],
                               .answer = &answers[i]};
    const IoStatus status = Do(IoOp::kPassthrough, 0, 0, nullptr, &pass);
    if (status.ok()) continue;
    ++standby;
    EXPECT_EQ(status.code, Errc::kPathError);
    EXPECT_EQ(answers[i].status, 0x02);
    auto sense = spec::ParseSense(std::span<const std::uint8_t>(answers[i].sense.data(), answers[i].sense_length));
    ASSERT_TRUE(sense.has_value());
    EXPECT_EQ(sense->code, spec::asc::kLunNotReadyTargetPortStandby);
  }
  EXPECT_EQ(standby, 1);
  EXPECT_EQ(p1_->count() + p2_->count() - total_before, 2u);
}

TEST_F(ScsiHeadTest, ReservationConflictIsSurfacedWithoutTryingAnotherPath) {
  WarmUp();
  ASSERT_TRUE(array_->ForeignPreempt(0, "iqn.2026-11.io.other:host", 0xABC,
                                     static_cast<std::uint8_t>(spec::PrType::kExclusiveAccess))
                  .has_value());
  const std::uint64_t total_before = p1_->count() + p2_->count();
  std::vector<std::byte> data(kBlock);
  const IoStatus status = Do(IoOp::kRead, 0, kBlock, data.data());
  EXPECT_EQ(status.code, Errc::kReservationConflict) << DescribeRawStatus(status.raw);
  EXPECT_EQ(p1_->count() + p2_->count() - total_before, 1u);
}

}  // namespace
}  // namespace mpath::scsi
