// The hot path allocates nothing: every IoOp's Submit and completion, an error answer with sense (observer call,
// classification included), counted on the submitting thread (mpath_allocation_counter replaces this binary's operator new).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "mpath/scsi/classify.h"
#include "mpath/scsi/path_driver.h"
#include "mpath/scsi/spec/sense.h"
#include "mpath/testing/allocation_scope.h"
#include "path_driver_test_util.h"

namespace mpath::scsi {
namespace {

using testing::kBlock;
using testing::Request;

// Answers inline: GOOD, or CHECK CONDITION with a unit attention when told to.
class InlineTransport final : public ScsiTransport {
 public:
  void Submit(std::uint64_t /*lun*/, ScsiCommand& command) override {
    command.ResetAnswer();
    if (unit_attention) spec::SetCheckCondition(command, spec::SenseFormat::kFixed, spec::asc::kAsymmetricAccessStateChanged);
    command.Finish();
  }
  bool unit_attention = false;
};

class CountingObserver final : public ScsiPathObserver {
 public:
  void OnSense(const spec::SenseCode& /*code*/) override { calls.fetch_add(1, std::memory_order_relaxed); }
  std::atomic<int> calls{0};
};

using mpath::testing::AllocationScope;

TEST(ScsiPathDriverAllocationTest, SubmitAndCompleteAllocateNothing) {
  InlineTransport transport;
  CountingObserver observer;
  auto created = ScsiPathDriver::Create(transport, 0, kBlock, 1024, {.write_same_ndob = false, .unmap = true},
                                        &observer);
  ASSERT_TRUE(created.has_value());
  ScsiPathDriver& driver = **created;
  std::vector<std::byte> buffer(8 * kBlock);
  const std::uint8_t inquiry[] = {0x12, 0, 0, 0, 0x24, 0};
  const ScsiPassthrough pass{.cdb = inquiry, .direction = DataDirection::kFromDevice, .data = {buffer.data(), 0x24}};
  const IoOp ops[] = {IoOp::kRead, IoOp::kWrite, IoOp::kFlush, IoOp::kWriteZeroes,
                      IoOp::kDiscard, IoOp::kProbe, IoOp::kPassthrough};
  for (bool unit_attention : {false, true}) {
    transport.unit_attention = unit_attention;
    for (IoOp op : ops) {
      Request r(op, 8 * kBlock, 8 * kBlock, buffer.data());
      r.io.passthrough = &pass;
      Decision decision;
      {
        AllocationScope scope;
        driver.Submit(r.io);
        decision = ClassifyScsi(r.io, r.status);
        EXPECT_EQ(scope.count(), 0u) << static_cast<int>(op);
      }
      ASSERT_EQ(r.completions, 1);
      EXPECT_EQ(r.status.ok(), !unit_attention);
      EXPECT_EQ(decision.disposition,
                unit_attention ? Disposition::kRetrySamePath : Disposition::kSuccess);
    }
  }
  EXPECT_EQ(observer.calls.load(), 7);
}

TEST(ScsiPathDriverAllocationTest, TheCounterSeesAllocations) {
  // Guards the test above against a counter that never counts.
  static std::vector<int>* volatile escaped = nullptr;  // keeps the compiler from eliding the pair
  AllocationScope scope;
  escaped = new std::vector<int>(4);
  delete escaped;
  EXPECT_GE(scope.count(), 2u);
}

}  // namespace
}  // namespace mpath::scsi
