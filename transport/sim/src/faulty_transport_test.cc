// Each link fault's effect on the wire: what reaches the device and what the initiator sees, timed by a manual clock.
#include "mpath/sim/faulty_transport.h"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <memory>

#include "mpath/testing/manual_executor.h"

namespace mpath::sim {
namespace {

using namespace std::chrono_literals;
using proto::Delivery;
using testing::ManualExecutor;

// A device that executes everything at once with GOOD status and counts what reached it.
class CountingScsiDevice final : public scsi::ScsiTransport {
 public:
  void Submit(std::uint64_t lun, scsi::ScsiCommand& command) override {
    ++received;
    last_lun = lun;
    command.ResetAnswer();
    command.Finish();
  }
  int received = 0;
  std::uint64_t last_lun = ~0ull;
};

class CountingNvmeDevice final : public nvme::NvmeTransport {
 public:
  void Submit(nvme::NvmeCommand& command) override {
    ++received;
    command.ResetAnswer();
    command.cqe.cid = command.sqe.cid;
    command.Finish();
  }
  int received = 0;
};

// Records when and how a command finished.
struct Outcome {
  int finished = 0;
  Delivery delivery = Delivery::kDelivered;
  TimePoint at{};
  const Clock* clock = nullptr;
};

template <typename Command>
void Record(Command& command, void* arg) {
  auto* outcome = static_cast<Outcome*>(arg);
  ++outcome->finished;
  outcome->delivery = command.delivery;
  outcome->at = outcome->clock->Now();
}

class FaultyScsiTest : public ::testing::Test {
 protected:
  FaultyScsiTest() {
    auto device = std::make_unique<CountingScsiDevice>();
    device_ = device.get();
    transport_ = std::make_unique<FaultyScsiTransport>(std::move(device), std::make_unique<LinkFaults>(clock_, 5), 30s);
    outcome_.clock = &clock_;
  }

  // A READ(10) of one 512-byte block, or TEST UNIT READY.
  scsi::ScsiCommand& Prepare(bool read) {
    command_ = {};
    command_.cdb[0] = read ? 0x28 : 0x00;
    command_.cdb_length = read ? 10 : 6;
    command_.direction = read ? scsi::DataDirection::kFromDevice : scsi::DataDirection::kNone;
    command_.data = read ? std::span<std::byte>(buffer_) : std::span<std::byte>();
    command_.executor = &executor_;
    command_.OnFinish(&Record<scsi::ScsiCommand>, &outcome_);
    return command_;
  }

  LinkFaults& faults() { return transport_->faults(); }

  ManualClock clock_;
  const TimePoint start_ = clock_.Now();
  ManualExecutor executor_{clock_};
  CountingScsiDevice* device_ = nullptr;
  std::unique_ptr<FaultyScsiTransport> transport_;
  std::array<std::byte, 512> buffer_{};
  scsi::ScsiCommand command_;
  Outcome outcome_;
};

TEST_F(FaultyScsiTest, HealthyLinkDeliversInline) {
  transport_->Submit(2, Prepare(true));
  EXPECT_EQ(outcome_.finished, 1);
  EXPECT_EQ(outcome_.delivery, Delivery::kDelivered);
  EXPECT_EQ(device_->received, 1);
  EXPECT_EQ(device_->last_lun, 2u);
}

TEST_F(FaultyScsiTest, LinkDownFailsAtOnceWithoutReachingTheDevice) {
  faults().SetLinkDown(true);
  transport_->Submit(0, Prepare(true));
  EXPECT_EQ(outcome_.finished, 1);
  EXPECT_EQ(outcome_.delivery, Delivery::kLinkDown);
  EXPECT_EQ(command_.residual, 512u) << "no data moved";
  EXPECT_EQ(device_->received, 0);
}

TEST_F(FaultyScsiTest, HangEndsAtTheCommandTimeout) {
  faults().SetHang(true);
  scsi::ScsiCommand& command = Prepare(true);
  command.timeout = 5s;
  transport_->Submit(0, command);
  executor_.Advance(5s - 1ns);
  EXPECT_EQ(outcome_.finished, 0) << "a hung link answers nothing before the timeout";
  executor_.Advance(1ns);
  EXPECT_EQ(outcome_.finished, 1);
  EXPECT_EQ(outcome_.delivery, Delivery::kTimedOut);
  EXPECT_EQ(device_->received, 0);
}

TEST_F(FaultyScsiTest, HangUsesTheDefaultTimeoutWhenTheCommandHasNone) {
  faults().SetHang(true);
  transport_->Submit(0, Prepare(false));
  executor_.Advance(30s - 1ns);
  EXPECT_EQ(outcome_.finished, 0);
  executor_.Advance(1ns);
  EXPECT_EQ(outcome_.delivery, Delivery::kTimedOut);
}

TEST_F(FaultyScsiTest, LatencyDelaysTheDeviceAndTheAnswer) {
  faults().SetLatency(2ms);
  transport_->Submit(0, Prepare(true));
  EXPECT_EQ(device_->received, 0);
  executor_.Advance(2ms);
  EXPECT_EQ(device_->received, 1);
  EXPECT_EQ(outcome_.finished, 1);
  EXPECT_EQ(outcome_.at, start_ + 2ms);
  EXPECT_EQ(outcome_.delivery, Delivery::kDelivered);
}

TEST_F(FaultyScsiTest, ALinkThatDiesWhileACommandIsOnTheWireFailsIt) {
  faults().SetLatency(2ms);
  transport_->Submit(0, Prepare(true));
  faults().SetLinkDown(true);
  executor_.Advance(2ms);
  EXPECT_EQ(outcome_.delivery, Delivery::kLinkDown);
  EXPECT_EQ(device_->received, 0);
}

TEST_F(FaultyScsiTest, FailIoAbortsMediaCommandsButNotHealthChecks) {
  faults().SetFailIo(true);
  transport_->Submit(0, Prepare(false));
  EXPECT_EQ(outcome_.delivery, Delivery::kDelivered) << "TEST UNIT READY reports ready";
  transport_->Submit(0, Prepare(true));
  EXPECT_EQ(outcome_.delivery, Delivery::kAborted);
  EXPECT_EQ(device_->received, 1) << "the READ never reached the device";
}

TEST_F(FaultyScsiTest, DroppedAnswerIsExecutedThenTimesOut) {
  faults().SetDropCompletions(1.0);
  scsi::ScsiCommand& command = Prepare(true);
  command.timeout = 3s;
  transport_->Submit(0, command);
  EXPECT_EQ(device_->received, 1) << "the device executed it";
  EXPECT_EQ(outcome_.finished, 0) << "but the answer is lost";
  executor_.Advance(3s - 1ns);
  EXPECT_EQ(outcome_.finished, 0);
  executor_.Advance(1ns);
  EXPECT_EQ(outcome_.finished, 1);
  EXPECT_EQ(outcome_.delivery, Delivery::kTimedOut);
}

TEST_F(FaultyScsiTest, LatencyBeyondTheTimeoutIsALostAnswer) {
  faults().SetLatency(10s);
  scsi::ScsiCommand& command = Prepare(true);
  command.timeout = 4s;
  transport_->Submit(0, command);
  executor_.Advance(4s);
  EXPECT_EQ(outcome_.finished, 0) << "the device has not even seen it yet";
  executor_.Advance(6s);
  EXPECT_EQ(device_->received, 1);
  EXPECT_EQ(outcome_.finished, 1);
  EXPECT_EQ(outcome_.delivery, Delivery::kTimedOut);
  EXPECT_EQ(outcome_.at, start_ + 10s) << "the deadline passed while the command was in flight";
}

TEST_F(FaultyScsiTest, WithoutAnExecutorWaitsAreDecidedAtOnce) {
  faults().SetHang(true);
  scsi::ScsiCommand& command = Prepare(true);
  command.executor = nullptr;
  transport_->Submit(0, command);
  EXPECT_EQ(outcome_.finished, 1);
  EXPECT_EQ(outcome_.delivery, Delivery::kTimedOut);
}

TEST_F(FaultyScsiTest, TheSubmittersHookIsRestoredAfterADroppedAnswer) {
  faults().SetDropCompletions(1.0);
  transport_->Submit(0, Prepare(true));
  executor_.Advance(30s);
  ASSERT_EQ(outcome_.finished, 1);
  faults().Clear();
  transport_->Submit(0, command_);  // resubmit the same command object
  EXPECT_EQ(outcome_.finished, 2);
  EXPECT_EQ(outcome_.delivery, Delivery::kDelivered);
}

class FaultyNvmeTest : public ::testing::Test {
 protected:
  FaultyNvmeTest() {
    auto device = std::make_unique<CountingNvmeDevice>();
    device_ = device.get();
    transport_ = std::make_unique<FaultyNvmeTransport>(std::move(device), std::make_unique<LinkFaults>(clock_, 5), 30s,
                                                       60s);
    outcome_.clock = &clock_;
  }

  nvme::NvmeCommand& Prepare(nvme::QueueKind queue, std::uint8_t opcode, std::uint32_t nsid) {
    command_ = {};
    command_.queue = queue;
    command_.sqe.opc = opcode;
    command_.sqe.nsid = nsid;
    command_.executor = &executor_;
    command_.OnFinish(&Record<nvme::NvmeCommand>, &outcome_);
    return command_;
  }

  ManualClock clock_;
  ManualExecutor executor_{clock_};
  CountingNvmeDevice* device_ = nullptr;
  std::unique_ptr<FaultyNvmeTransport> transport_;
  nvme::NvmeCommand command_;
  Outcome outcome_;
};

TEST_F(FaultyNvmeTest, AdminAndIoCommandsTimeOutOnTheirOwnDefaults) {
  transport_->faults().SetHang(true);
  transport_->Submit(Prepare(nvme::QueueKind::kIo, 0x02, 1));
  executor_.Advance(30s);
  EXPECT_EQ(outcome_.finished, 1);
  EXPECT_EQ(outcome_.delivery, Delivery::kTimedOut);
  transport_->Submit(Prepare(nvme::QueueKind::kAdmin, 0x06, 0));  // Identify
  executor_.Advance(30s);
  EXPECT_EQ(outcome_.finished, 1) << "admin commands wait 60 s";
  executor_.Advance(30s);
  EXPECT_EQ(outcome_.finished, 2);
}

TEST_F(FaultyNvmeTest, AsynchronousEventRequestsAreNeverHungButFailOnADownLink) {
  transport_->faults().SetHang(true);
  transport_->Submit(Prepare(nvme::QueueKind::kAdmin, 0x0C, 0));
  EXPECT_EQ(device_->received, 1) << "the controller holds the AER itself";
  transport_->faults().Clear();
  transport_->faults().SetLinkDown(true);
  transport_->Submit(Prepare(nvme::QueueKind::kAdmin, 0x0C, 0));
  EXPECT_EQ(outcome_.delivery, Delivery::kLinkDown);
  EXPECT_EQ(device_->received, 1);
}

TEST_F(FaultyNvmeTest, FailIoOfOneNamespaceSparesTheOthersAndKeepAlive) {
  transport_->faults().SetFailIo(true, 2);
  transport_->Submit(Prepare(nvme::QueueKind::kIo, 0x02, 2));
  EXPECT_EQ(outcome_.delivery, Delivery::kAborted);
  transport_->Submit(Prepare(nvme::QueueKind::kIo, 0x02, 1));
  EXPECT_EQ(outcome_.delivery, Delivery::kDelivered);
  transport_->Submit(Prepare(nvme::QueueKind::kAdmin, 0x18, 0));  // Keep Alive
  EXPECT_EQ(outcome_.delivery, Delivery::kDelivered);
  transport_->Submit(Prepare(nvme::QueueKind::kIo, 0x0D, 2));  // Reservation Register is not media I/O
  EXPECT_EQ(outcome_.delivery, Delivery::kDelivered);
  EXPECT_EQ(device_->received, 3);
}

TEST_F(FaultyNvmeTest, DroppedAnswerTimesOut) {
  transport_->faults().SetDropCompletions(1.0);
  nvme::NvmeCommand& command = Prepare(nvme::QueueKind::kIo, 0x01, 1);
  command.timeout = 1s;
  transport_->Submit(command);
  EXPECT_EQ(device_->received, 1);
  EXPECT_EQ(outcome_.finished, 0);
  executor_.Advance(1s);
  EXPECT_EQ(outcome_.delivery, Delivery::kTimedOut);
}

}  // namespace
}  // namespace mpath::sim
