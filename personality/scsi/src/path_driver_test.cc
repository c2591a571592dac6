// The SCSI path driver against the simulated array: real CDBs in, real data, status and sense out. Each IoOp's CDB
// is checked byte by byte at the array, data written on one path is read back on another, every ALUA state's answer
// is classified, and link faults from the simulated fabric reach the classifier as path errors.
#include "mpath/scsi/path_driver.h"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <thread>
#include <vector>

#include "mpath/core/head_options.h"
#include "mpath/scsi/spec/pr.h"
#include "mpath/scsi/spec/spc_cdb.h"
#include "path_driver_test_util.h"

namespace mpath::scsi {
namespace {

using namespace std::chrono_literals;
using spec::SenseCode;
using testing::kBlock;
using testing::kBlocks;
using testing::kCapacity;
using testing::Request;

class ScsiPathDriverTest : public testing::SanFixture {};

// What one command looked like when it reached the array.
struct Seen {
  std::vector<std::uint8_t> cdb;
  DataDirection direction = DataDirection::kNone;
  std::vector<std::byte> data_out;
  std::size_t data_size = 0;
  Nanos timeout{0};
  Executor* executor = nullptr;
};

// Captures every command of the given opcodes, then lets the array answer it as usual.
class CdbCapture {
 public:
  CdbCapture(fake::Array& array, std::initializer_list<std::uint8_t> opcodes) : array_(array), opcodes_(opcodes) {
    for (std::uint8_t opcode : opcodes_) {
      array_.SetHandler(opcode, [this](fake::CommandContext& context) {
        const ScsiCommand& c = context.command;
        Seen seen;
        seen.cdb.assign(c.cdb.begin(), c.cdb.begin() + c.cdb_length);
        seen.direction = c.direction;
        seen.data_size = c.data.size();
        if (c.direction == DataDirection::kToDevice) seen.data_out.assign(c.data.begin(), c.data.end());
        seen.timeout = c.timeout;
        seen.executor = c.executor;
        seen_.push_back(std::move(seen));
        context.array.DefaultHandler(context);
      });
    }
  }
  ~CdbCapture() {
    for (std::uint8_t opcode : opcodes_) array_.SetHandler(opcode, {});
  }
  [[nodiscard]] const Seen& last() const { return seen_.back(); }
  [[nodiscard]] std::size_t size() const { return seen_.size(); }

 private:
  fake::Array& array_;
  std::vector<std::uint8_t> opcodes_;
  std::vector<Seen> seen_;  // handlers run on the submitting thread, one at a time
};

std::vector<std::uint8_t> U8(std::initializer_list<int> bytes) {
  std::vector<std::uint8_t> out;
  for (int b : bytes) out.push_back(static_cast<std::uint8_t>(b));
  return out;
}

TEST_F(ScsiPathDriverTest, BytesWrittenThroughOnePathReadBackThroughAnother) {
  auto a = MakeDriver(Connect("p1", 1));
  auto b = MakeDriver(Connect("p2", 2));
  TakePowerOnAttention(*a);
  TakePowerOnAttention(*b);

  std::vector<std::byte> out = testing::Pattern(8 * kBlock, 3);
  ASSERT_TRUE(Write(*a, 100 * kBlock, out).ok());
  EXPECT_EQ(Read(*b, 100 * kBlock, out.size()), out);
  // And the other way, at the last blocks of the LU.
  std::vector<std::byte> tail = testing::Pattern(2 * kBlock, 9);
  ASSERT_TRUE(Write(*b, kCapacity - tail.size(), tail, /*fua=*/true).ok());
  EXPECT_EQ(Read(*a, kCapacity - tail.size(), tail.size()), tail);
}

TEST_F(ScsiPathDriverTest, EachOperationsCdbByteByByte) {
  auto plain = MakeDriver(Connect("p1", 1), {.write_same_ndob = true, .unmap = true, .command_timeout = 7s});
  auto wide = MakeDriver(Connect("p2", 2), {.rw_cdb = RwCdbSize::kAlways16, .write_same_unmap = true});
  TakePowerOnAttention(*plain);
  TakePowerOnAttention(*wide);
  namespace op = spec::op;
  CdbCapture capture(*array_, {op::kTestUnitReady, op::kInquiry, op::kRead10, op::kWrite10, op::kRead16, op::kWrite16,
                               op::kSynchronizeCache10, op::kSynchronizeCache16, op::kWriteSame16, op::kUnmap});
  std::vector<std::byte> buffer(8 * kBlock);
  const std::uint64_t offset = 0x234 * kBlock;

  auto run = [&](ScsiPathDriver& driver, IoOp io_op, bool fua = false, std::uint32_t length = 8 * kBlock) -> const Seen& {
    Request r(io_op, offset, length, buffer.data());
    r.io.fua = fua;
    Submit(driver, r, executor_);
    EXPECT_EQ(r.completions, 1);
    EXPECT_TRUE(r.status.ok()) << r.describe();
    return capture.last();
  };

  const Seen& read10 = run(*plain, IoOp::kRead);
  EXPECT_EQ(read10.cdb, U8({0x28, 0x00, 0x00, 0x00, 0x02, 0x34, 0x00, 0x00, 0x08, 0x00}));
  EXPECT_EQ(read10.direction, DataDirection::kFromDevice);
  EXPECT_EQ(read10.data_size, 8 * kBlock);
  EXPECT_EQ(read10.timeout, 7s);

  EXPECT_EQ(run(*plain, IoOp::kWrite).cdb, U8({0x2A, 0x00, 0x00, 0x00, 0x02, 0x34, 0x00, 0x00, 0x08, 0x00}));
  const Seen& write10_fua = run(*plain, IoOp::kWrite, /*fua=*/true);
  EXPECT_EQ(write10_fua.cdb, U8({0x2A, 0x08, 0x00, 0x00, 0x02, 0x34, 0x00, 0x00, 0x08, 0x00}));
  EXPECT_EQ(write10_fua.direction, DataDirection::kToDevice);
  // FUA is a write flag; a read never carries it.
  EXPECT_EQ(run(*plain, IoOp::kRead, /*fua=*/true).cdb[1], 0x00);

  const Seen& read16 = run(*wide, IoOp::kRead);
  EXPECT_EQ(read16.cdb, U8({0x88, 0x00, 0, 0, 0, 0, 0, 0, 0x02, 0x34, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00}));
  EXPECT_EQ(read16.timeout, Nanos(0));
  EXPECT_EQ(run(*wide, IoOp::kWrite, true).cdb,
            U8({0x8A, 0x08, 0, 0, 0, 0, 0, 0, 0x02, 0x34, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00}));

  const Seen& flush10 = run(*plain, IoOp::kFlush);
  EXPECT_EQ(flush10.cdb, U8({0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(flush10.direction, DataDirection::kNone);
  EXPECT_EQ(run(*wide, IoOp::kFlush).cdb, U8({0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));

  const Seen& zeroes_ndob = run(*plain, IoOp::kWriteZeroes);
  EXPECT_EQ(zeroes_ndob.cdb, U8({0x93, 0x01, 0, 0, 0, 0, 0, 0, 0x02, 0x34, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00}));
  EXPECT_EQ(zeroes_ndob.direction, DataDirection::kNone);
  const Seen& zeroes_block = run(*wide, IoOp::kWriteZeroes);
  EXPECT_EQ(zeroes_block.cdb, U8({0x93, 0x00, 0, 0, 0, 0, 0, 0, 0x02, 0x34, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00}));
  EXPECT_EQ(zeroes_block.direction, DataDirection::kToDevice);
  EXPECT_EQ(zeroes_block.data_out, std::vector<std::byte>(kBlock));

  const Seen& unmap = run(*plain, IoOp::kDiscard);
  EXPECT_EQ(unmap.cdb, U8({0x42, 0, 0, 0, 0, 0, 0, 0x00, 0x18, 0x00}));
  EXPECT_EQ(unmap.direction, DataDirection::kToDevice);
  const auto expected_list = U8({0x00, 0x16, 0x00, 0x10, 0, 0, 0, 0,                 // header: 22 and 16 bytes follow
                                 0, 0, 0, 0, 0, 0, 0x02, 0x34, 0x00, 0x00, 0x00, 0x08,  // LBA 0x234, 8 blocks
                                 0, 0, 0, 0});
  ASSERT_EQ(unmap.data_out.size(), expected_list.size());
  EXPECT_EQ(std::memcmp(unmap.data_out.data(), expected_list.data(), expected_list.size()), 0);

  const Seen& ws_unmap = run(*wide, IoOp::kDiscard);
  EXPECT_EQ(ws_unmap.cdb, U8({0x93, 0x08, 0, 0, 0, 0, 0, 0, 0x02, 0x34, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00}));
  EXPECT_EQ(ws_unmap.data_out, std::vector<std::byte>(kBlock));

  const Seen& tur = run(*plain, IoOp::kProbe, false, 0);
  EXPECT_EQ(tur.cdb, U8({0x00, 0, 0, 0, 0, 0}));
  EXPECT_EQ(tur.direction, DataDirection::kNone);

  const auto inquiry = U8({0x12, 0x00, 0x00, 0x00, 0x60, 0x00});
  std::vector<std::byte> inquiry_data(0x60);
  const ScsiPassthrough pass{.cdb = inquiry, .direction = DataDirection::kFromDevice, .data = inquiry_data,
                             .timeout = 3s};
  Request r(IoOp::kPassthrough, 0, 0);
  r.io.passthrough = &pass;
  Submit(*plain, r, executor_);
  ASSERT_TRUE(r.status.ok()) << r.describe();
  EXPECT_EQ(capture.last().cdb, inquiry);
  EXPECT_EQ(capture.last().timeout, 3s);
}

TEST_F(ScsiPathDriverTest, RangesBeyondTheReachOfTenByteCdbsUseSixteen) {
  // A LU of 2^33 blocks (sparse): LBAs at and past 2^32 need READ/WRITE(16); below, (10) is enough.
  fake::LogicalUnitConfig big{.lun = 1, .blocks = std::uint64_t{1} << 33, .block_size = kBlock, .naa = {},
                              .serial = "big", .thin = true};
  big.naa[0] = 0x60;
  big.naa[15] = 0x02;
  ASSERT_TRUE(array_->AddLogicalUnit(big).has_value());
  auto driver = MakeDriver(Connect("p1", 1), {}, nullptr, 1, big.blocks);
  TakePowerOnAttention(*driver);
  namespace op = spec::op;
  const std::uint64_t w10 = array_->CommandCount(op::kWrite10);
  const std::uint64_t w16 = array_->CommandCount(op::kWrite16);

  // Ends exactly at 2^32: still (10).
  std::vector<std::byte> below = testing::Pattern(2 * kBlock, 1);
  ASSERT_TRUE(Write(*driver, ((std::uint64_t{1} << 32) - 2) * kBlock, below).ok());
  EXPECT_EQ(array_->CommandCount(op::kWrite10), w10 + 1);
  // Crosses 2^32: (16).
  std::vector<std::byte> across = testing::Pattern(2 * kBlock, 2);
  ASSERT_TRUE(Write(*driver, ((std::uint64_t{1} << 32) - 1) * kBlock, across).ok());
  EXPECT_EQ(array_->CommandCount(op::kWrite16), w16 + 1);
  EXPECT_EQ(Read(*driver, ((std::uint64_t{1} << 32) - 1) * kBlock, across.size()), across);
  EXPECT_EQ(array_->CommandCount(op::kRead16), 1u);
  std::vector<std::byte> first = Read(*driver, ((std::uint64_t{1} << 32) - 2) * kBlock, kBlock);
  EXPECT_EQ(std::memcmp(first.data(), below.data(), kBlock), 0);

  // 65536 blocks do not fit TRANSFER LENGTH (10): (16) even at LBA 0. The array refuses the length (its VPD B0h
  // maximum is 8192 blocks), which is beside the point here: the CDB is.
  CdbCapture capture(*array_, {op::kRead16});
  std::vector<std::byte> huge(std::size_t{0x10000} * kBlock);
  Request r(IoOp::kRead, 0, static_cast<std::uint32_t>(huge.size()), huge.data());
  Submit(*driver, r, executor_);
  ASSERT_EQ(capture.size(), 1u);
  EXPECT_EQ(capture.last().cdb, U8({0x88, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00}));
  EXPECT_EQ(r.status.code, Errc::kTargetError) << r.describe();
}

TEST_F(ScsiPathDriverTest, FlushReachesTheArray) {
  auto driver = MakeDriver(Connect("p1", 1));
  TakePowerOnAttention(*driver);
  const std::uint64_t before = array_->CommandCount(spec::op::kSynchronizeCache10);
  Request flush(IoOp::kFlush, 0, 0);
  Submit(*driver, flush, executor_);
  EXPECT_TRUE(flush.status.ok()) << flush.describe();
  EXPECT_EQ(array_->CommandCount(spec::op::kSynchronizeCache10), before + 1);
}

TEST_F(ScsiPathDriverTest, WriteZeroesZeroesExactlyTheRange) {
  for (bool ndob : {true, false}) {
    SCOPED_TRACE(ndob ? "NDOB" : "one zero block");
    auto driver = MakeDriver(Connect(ndob ? "z1" : "z2", 1), {.write_same_ndob = ndob});
    TakePowerOnAttention(*driver);
    std::vector<std::byte> data = testing::Pattern(32 * kBlock, 5);
    ASSERT_TRUE(Write(*driver, 0, data).ok());
    Request zero(IoOp::kWriteZeroes, 8 * kBlock, 16 * kBlock);
    Submit(*driver, zero, executor_);
    ASSERT_TRUE(zero.status.ok()) << zero.describe();
    std::vector<std::byte> expected = data;
    std::fill(expected.begin() + 8 * kBlock, expected.begin() + 24 * kBlock, std::byte{0});
    EXPECT_EQ(Read(*driver, 0, data.size()), expected);
  }
}

TEST_F(ScsiPathDriverTest, DiscardDeallocatesAndReadsBackZeroes) {
  struct Case {
    const char* name;
    ScsiPathDriverOptions options;
  };
  const Case cases[] = {
      {"UNMAP", {.unmap = true}},
      {"WRITE SAME with UNMAP and NDOB", {.write_same_ndob = true, .write_same_unmap = true}},
      {"WRITE SAME with UNMAP and a zero block", {.write_same_unmap = true}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    // Each path reopens the same I_T nexus, which the array reports with 29/07.
    auto driver = MakeDriver(Connect(c.name, 1), c.options);
    TakePowerOnAttention(*driver);
    // 256 blocks = two of the array's 64 KiB chunks.
    std::vector<std::byte> data = testing::Pattern(256 * kBlock, 6);
    ASSERT_TRUE(Write(*driver, 0, data).ok());
    const std::uint64_t allocated = *array_->AllocatedBytes(0);
    Request discard(IoOp::kDiscard, 0, 256 * kBlock);
    Submit(*driver, discard, executor_);
    ASSERT_TRUE(discard.status.ok()) << discard.describe();
    EXPECT_EQ(*array_->AllocatedBytes(0), allocated - 256 * kBlock);
    EXPECT_TRUE(testing::AllZero(Read(*driver, 0, data.size())));
  }
}

TEST_F(ScsiPathDriverTest, DiscardWithoutSupportIsRefusedBeforeTheTransport) {
  testing::CountingTransport counting(Connect("p1", 1));
  auto driver = MakeDriver(counting);
  Request discard(IoOp::kDiscard, 0, 8 * kBlock);
  Submit(*driver, discard, executor_);
  EXPECT_EQ(discard.completions, 1);
  EXPECT_EQ(discard.status.code, Errc::kUnsupported);
  EXPECT_EQ(counting.count(), 0u);
}

TEST_F(ScsiPathDriverTest, ProbeIsTestUnitReady) {
  auto driver = MakeDriver(Connect("p2", 2));
  TakePowerOnAttention(*driver);
  const std::uint64_t before = array_->CommandCount(spec::op::kTestUnitReady);
  Request probe(IoOp::kProbe, 0, 0);
  Submit(*driver, probe, executor_);
  EXPECT_TRUE(probe.status.ok()) << probe.describe();
  EXPECT_EQ(array_->CommandCount(spec::op::kTestUnitReady), before + 1);
}

TEST_F(ScsiPathDriverTest, PassthroughInquiryReturnsTheArraysData) {
  auto driver = MakeDriver(Connect("p1", 1));
  const auto cdb = U8({0x12, 0x00, 0x00, 0x00, 0xFF, 0x00});  // standard INQUIRY, 255 bytes
  std::vector<std::byte> data(255);
  ScsiPassthroughAnswer answer;
  answer.status = 0xEE;
  const ScsiPassthrough pass{.cdb = cdb, .direction = DataDirection::kFromDevice, .data = data, .answer = &answer};
  Request r(IoOp::kPassthrough, 0, 0);
  r.io.passthrough = &pass;
  Submit(*driver, r, executor_);
  ASSERT_EQ(r.completions, 1);
  ASSERT_TRUE(r.status.ok()) << r.describe();
  EXPECT_EQ(answer.delivery, Delivery::kDelivered);
  EXPECT_EQ(answer.status, 0x00);
  EXPECT_EQ(answer.sense_length, 0);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(data.data()) + 8, 8), "MPATHSIM");
  const std::size_t returned = 5 + static_cast<std::uint8_t>(data[4]);  // ADDITIONAL LENGTH + header
  EXPECT_EQ(answer.residual, data.size() - returned);
  EXPECT_EQ(static_cast<std::uint8_t>(data[5]) & 0x30, 0x30) << "TPGS: implicit and explicit";
}

TEST_F(ScsiPathDriverTest, PassthroughFailureCopiesTheSenseForTheCaller) {
  auto driver = MakeDriver(Connect("p1", 1));
  TakePowerOnAttention(*driver);
  const auto cdb = U8({0x41, 0, 0, 0, 0, 0, 0, 0, 1, 0});  // WRITE SAME(10): not implemented by the array
  std::vector<std::byte> block(kBlock);
  ScsiPassthroughAnswer answer;
  const ScsiPassthrough pass{.cdb = cdb, .direction = DataDirection::kToDevice, .data = block, .answer = &answer};
  Request r(IoOp::kPassthrough, 0, 0);
  r.io.passthrough = &pass;
  Submit(*driver, r, executor_);
  EXPECT_EQ(r.status.code, Errc::kUnsupported) << r.describe();
  EXPECT_EQ(r.decision().disposition, Disposition::kFailUp);
  EXPECT_EQ(answer.status, 0x02);
  ASSERT_GE(answer.sense_length, 14);
  auto sense = spec::ParseSense(std::span<const std::uint8_t>(answer.sense.data(), answer.sense_length));
  ASSERT_TRUE(sense.has_value());
  EXPECT_EQ(sense->code, spec::asc::kInvalidCommandOperationCode);
  EXPECT_EQ(DescribeRawStatus(r.status.raw),
            "CHECK CONDITION, ILLEGAL REQUEST 20/00 (invalid command operation code) on WRITE SAME(10)");
}

TEST_F(ScsiPathDriverTest, StandbyAnswersUnitAttentionThenStandbySenseAndTheObserverHearsBoth) {
  testing::RecordingObserver observer;
  auto driver = MakeDriver(Connect("p2", 2), {}, &observer);
  TakePowerOnAttention(*driver);
  EXPECT_EQ(observer.Take(), std::vector<SenseCode>{spec::asc::kPowerOnResetOrBusDeviceReset});

  ASSERT_TRUE(array_->SetAccessState(kGroupB, fake::AluaState::kStandby).has_value());
  std::vector<std::byte> data(kBlock);
  Request ua(IoOp::kRead, 0, kBlock, data.data());
  Submit(*driver, ua, executor_);
  EXPECT_EQ(ua.status.code, Errc::kBusy) << ua.describe();
  EXPECT_EQ(ua.decision().disposition, Disposition::kRetrySamePath);
  EXPECT_EQ(ua.decision().delay, Nanos(0));
  EXPECT_EQ(observer.Take(), std::vector<SenseCode>{spec::asc::kAsymmetricAccessStateChanged});

  Request standby(IoOp::kRead, 0, kBlock, data.data());
  Submit(*driver, standby, executor_);
  EXPECT_EQ(standby.status.code, Errc::kPathError);
  EXPECT_EQ(standby.decision().disposition, Disposition::kRetryOtherPath);
  EXPECT_EQ(DescribeRawStatus(standby.status.raw),
            "CHECK CONDITION, NOT READY 04/0B (target port in standby state) on READ(10)");
  EXPECT_EQ(observer.Take(), std::vector<SenseCode>{spec::asc::kLunNotReadyTargetPortStandby});
}

TEST_F(ScsiPathDriverTest, ObserverHearsTheSenseBeforeTheRequestCompletes) {
  // So that the ALUA engine has marked the path before the core decides where the retry goes.
  struct OrderObserver final : ScsiPathObserver {
    void OnSense(const SenseCode& code) override {
      heard.push_back(code);
      completed_when_heard.push_back(watched != nullptr && watched->done());
    }
    const Request* watched = nullptr;
    std::vector<SenseCode> heard;
    std::vector<bool> completed_when_heard;
  } observer;
  auto driver = MakeDriver(Connect("p2", 2), {}, &observer);
  std::vector<std::byte> data(kBlock);
  Request r(IoOp::kRead, 0, kBlock, data.data());
  observer.watched = &r;
  Submit(*driver, r, executor_);
  ASSERT_EQ(r.completions, 1);
  EXPECT_EQ(observer.heard, std::vector<SenseCode>{spec::asc::kPowerOnResetOrBusDeviceReset});
  EXPECT_EQ(observer.completed_when_heard, std::vector<bool>{false});
}

TEST_F(ScsiPathDriverTest, EveryAluaStateReachesTheClassifier) {
  testing::RecordingObserver observer;
  auto driver = MakeDriver(Connect("p2", 2), {}, &observer);
  TakePowerOnAttention(*driver);
  EXPECT_EQ(observer.Take(), std::vector<SenseCode>{spec::asc::kPowerOnResetOrBusDeviceReset});
  std::vector<std::byte> data(kBlock);
  auto read = [&]() {
    auto r = std::make_unique<Request>(IoOp::kRead, 0, kBlock, data.data());
    Submit(*driver, *r, executor_);
    EXPECT_EQ(r->completions, 1);
    return r;
  };
  struct Case {
    fake::AluaState state;
    SenseCode sense;
    Disposition disposition;
  };
  const Case cases[] = {
      {fake::AluaState::kStandby, spec::asc::kLunNotReadyTargetPortStandby, Disposition::kRetryOtherPath},
      {fake::AluaState::kUnavailable, spec::asc::kLunNotReadyTargetPortUnavailable, Disposition::kRetryOtherPath},
      {fake::AluaState::kOffline, spec::asc::kLunNotAccessibleOffline, Disposition::kRetryOtherPath},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(static_cast<int>(c.state));
    ASSERT_TRUE(array_->SetAccessState(kGroupB, c.state).has_value());
    EXPECT_EQ(read()->decision().disposition, Disposition::kRetrySamePath);  // 2A/06
    const auto r = read();
    EXPECT_EQ(r->status.code, Errc::kPathError);
    EXPECT_EQ(r->decision().disposition, c.disposition) << r->describe();
    EXPECT_EQ(observer.Take(), (std::vector<SenseCode>{spec::asc::kAsymmetricAccessStateChanged, c.sense}));
  }

  // Back to active through a 5 s transition: 2A/06, then 04/0A (wait) until the clock passes it, 2A/06 again, data.
  ASSERT_TRUE(array_->SetAccessState(kGroupB, fake::AluaState::kActiveOptimized, 5s).has_value());
  EXPECT_EQ(read()->decision().disposition, Disposition::kRetrySamePath);
  auto transitioning = read();
  EXPECT_EQ(transitioning->decision().disposition, Disposition::kWaitForStateChange) << transitioning->describe();
  EXPECT_EQ(transitioning->status.code, Errc::kPathError);
  executor_.Advance(4s);
  EXPECT_EQ(read()->decision().disposition, Disposition::kWaitForStateChange);
  executor_.Advance(1s);
  EXPECT_EQ(read()->decision().disposition, Disposition::kRetrySamePath);
  EXPECT_TRUE(read()->status.ok());
  EXPECT_EQ(observer.Take(),
            (std::vector<SenseCode>{spec::asc::kAsymmetricAccessStateChanged, spec::asc::kLunNotReadyAsymmetricTransition,
                                    spec::asc::kLunNotReadyAsymmetricTransition,
                                    spec::asc::kAsymmetricAccessStateChanged}));
}

TEST_F(ScsiPathDriverTest, ReservationConflictFailsUpAndIsNotAnObserverMatter) {
  testing::RecordingObserver observer;
  auto driver = MakeDriver(Connect("p1", 1), {}, &observer);
  TakePowerOnAttention(*driver);
  observer.Take();
  ASSERT_TRUE(array_->ForeignPreempt(0, "iqn.2026-11.io.other:host", 0xABC,
                                     static_cast<std::uint8_t>(spec::PrType::kExclusiveAccess))
                  .has_value());
  std::vector<std::byte> data(kBlock);
  Request r(IoOp::kRead, 0, kBlock, data.data());
  Submit(*driver, r, executor_);
  EXPECT_EQ(r.status.code, Errc::kReservationConflict) << r.describe();
  EXPECT_EQ(r.decision().disposition, Disposition::kFailUp);
  EXPECT_EQ(DescribeRawStatus(r.status.raw), "RESERVATION CONFLICT on READ(10)");
  EXPECT_TRUE(observer.codes().empty());
}

TEST_F(ScsiPathDriverTest, LinkDownFailsOverWithoutReachingTheArray) {
  auto driver = MakeDriver(Connect("p1", 1));
  TakePowerOnAttention(*driver);
  Faults("p1").SetLinkDown(true);
  const std::uint64_t before = array_->CommandCount(spec::op::kRead10);
  std::vector<std::byte> data(kBlock);
  Request r(IoOp::kRead, 0, kBlock, data.data());
  Submit(*driver, r, executor_);
  ASSERT_EQ(r.completions, 1);
  EXPECT_EQ(r.status.code, Errc::kPathError);
  EXPECT_EQ(r.status.raw.bytes[0], static_cast<std::uint8_t>(Delivery::kLinkDown));
  EXPECT_EQ(r.decision().disposition, Disposition::kRetryOtherPath);
  EXPECT_EQ(DescribeRawStatus(r.status.raw), "link down on READ(10)");
  EXPECT_EQ(array_->CommandCount(spec::op::kRead10), before);
}

TEST_F(ScsiPathDriverTest, HungPathTimesOutAtTheCommandTimeoutOnTheSubmittersExecutor) {
  auto fast = MakeDriver(Connect("p1", 1), {.command_timeout = 2s});
  auto patient = MakeDriver(Connect("p2", 2));  // the SAN's default SCSI timeout, 30 s
  TakePowerOnAttention(*fast);
  TakePowerOnAttention(*patient);
  Faults("p1").SetHang(true);
  Faults("p2").SetHang(true);
  std::vector<std::byte> data(kBlock);
  Request a(IoOp::kWrite, 0, kBlock, data.data());
  Request b(IoOp::kWrite, 0, kBlock, data.data());
  Submit(*fast, a, executor_);
  Submit(*patient, b, executor_);
  executor_.Advance(1999ms);
  EXPECT_FALSE(a.done());
  executor_.Advance(1ms);
  ASSERT_EQ(a.completions, 1);
  EXPECT_EQ(a.status.code, Errc::kTimedOut);
  EXPECT_EQ(a.decision().disposition, Disposition::kRetryOtherPath);
  EXPECT_EQ(DescribeRawStatus(a.status.raw), "timed out on WRITE(10)");
  executor_.Advance(27s);
  EXPECT_FALSE(b.done());
  executor_.Advance(1s);
  ASSERT_EQ(b.completions, 1);
  EXPECT_EQ(b.status.code, Errc::kTimedOut);
}

TEST_F(ScsiPathDriverTest, FailIoPathAbortsMediaCommandsButAnswersProbes) {
  auto driver = MakeDriver(Connect("p1", 1));
  TakePowerOnAttention(*driver);
  Faults("p1").SetFailIo(true);
  std::vector<std::byte> data(kBlock);
  Request r(IoOp::kRead, 0, kBlock, data.data());
  Submit(*driver, r, executor_);
  EXPECT_EQ(r.status.code, Errc::kPathError);
  EXPECT_EQ(r.status.raw.bytes[0], static_cast<std::uint8_t>(Delivery::kAborted));
  EXPECT_EQ(r.decision().disposition, Disposition::kRetryOtherPath);
  Request probe(IoOp::kProbe, 0, 0);
  Submit(*driver, probe, executor_);
  EXPECT_TRUE(probe.status.ok()) << probe.describe();
}

TEST_F(ScsiPathDriverTest, AnswerArrivingLaterIsDeliveredOnTheSubmittersExecutor) {
  auto driver = MakeDriver(Connect("p1", 1));
  TakePowerOnAttention(*driver);
  CdbCapture capture(*array_, {spec::op::kRead10});
  Faults("p1").SetLatency(3ms);
  std::vector<std::byte> data(kBlock);
  Request r(IoOp::kRead, 0, kBlock, data.data());
  Submit(*driver, r, executor_);
  EXPECT_FALSE(r.done());
  executor_.Advance(3ms);
  ASSERT_EQ(r.completions, 1);
  EXPECT_TRUE(r.status.ok()) << r.describe();
  ASSERT_EQ(capture.size(), 1u);
  EXPECT_EQ(capture.last().executor, &executor_);
}

TEST_F(ScsiPathDriverTest, ShortTransferUnderGoodStatusIsAPathError) {
  auto driver = MakeDriver(Connect("p1", 1));
  TakePowerOnAttention(*driver);
  array_->SetHandler(spec::op::kRead10, [](fake::CommandContext& context) {
    context.array.DefaultHandler(context);
    context.command.residual = kBlock;  // the last block never arrived
  });
  std::vector<std::byte> data(4 * kBlock);
  Request r(IoOp::kRead, 0, 4 * kBlock, data.data());
  Submit(*driver, r, executor_);
  array_->SetHandler(spec::op::kRead10, {});
  EXPECT_EQ(r.status.code, Errc::kPathError);
  EXPECT_EQ(r.decision().disposition, Disposition::kRetryOtherPath);
  EXPECT_EQ(DescribeRawStatus(r.status.raw), "GOOD, short data transfer on READ(10)");
}

TEST_F(ScsiPathDriverTest, MalformedRequestsNeverReachTheTransport) {
  testing::CountingTransport counting(Connect("p1", 1));
  auto driver = MakeDriver(counting, {.unmap = true});
  std::vector<std::byte> data(2 * kBlock);
  const auto tur = U8({0x00, 0, 0, 0, 0, 0});
  const std::vector<std::uint8_t> too_long(33, 0x00);
  const ScsiPassthrough empty_cdb{};
  const ScsiPassthrough long_cdb{.cdb = too_long};
  const ScsiPassthrough data_without_direction{.cdb = tur, .data = data};
  const ScsiPassthrough direction_without_data{.cdb = tur, .direction = DataDirection::kFromDevice};
  struct Case {
    const char* name;
    IoOp op;
    std::uint64_t offset;
    std::uint32_t length;
    std::byte* data;
    const ScsiPassthrough* passthrough;
    Errc code;
  };
  const Case cases[] = {
      {"misaligned offset", IoOp::kRead, 100, kBlock, data.data(), nullptr, Errc::kInvalidArgument},
      {"misaligned length", IoOp::kWrite, 0, kBlock + 1, data.data(), nullptr, Errc::kInvalidArgument},
      {"zero length", IoOp::kRead, 0, 0, data.data(), nullptr, Errc::kInvalidArgument},
      {"no buffer", IoOp::kWrite, 0, kBlock, nullptr, nullptr, Errc::kInvalidArgument},
      {"at the capacity", IoOp::kRead, kCapacity, kBlock, data.data(), nullptr, Errc::kOutOfRange},
      {"across the capacity", IoOp::kWrite, kCapacity - kBlock, 2 * kBlock, data.data(), nullptr, Errc::kOutOfRange},
      {"far beyond", IoOp::kRead, ~std::uint64_t{0} - 511, kBlock, data.data(), nullptr, Errc::kOutOfRange},
      {"write zeroes beyond", IoOp::kWriteZeroes, kCapacity, kBlock, nullptr, nullptr, Errc::kOutOfRange},
      {"discard misaligned", IoOp::kDiscard, 1, kBlock, nullptr, nullptr, Errc::kInvalidArgument},
      {"passthrough without command", IoOp::kPassthrough, 0, 0, nullptr, nullptr, Errc::kInvalidArgument},
      {"passthrough empty CDB", IoOp::kPassthrough, 0, 0, nullptr, &empty_cdb, Errc::kInvalidArgument},
      {"passthrough 33-byte CDB", IoOp::kPassthrough, 0, 0, nullptr, &long_cdb, Errc::kInvalidArgument},
      {"passthrough data, no direction", IoOp::kPassthrough, 0, 0, nullptr, &data_without_direction,
       Errc::kInvalidArgument},
      {"passthrough direction, no data", IoOp::kPassthrough, 0, 0, nullptr, &direction_without_data,
       Errc::kInvalidArgument},
      {"unknown op", static_cast<IoOp>(0x7F), 0, kBlock, data.data(), nullptr, Errc::kUnsupported},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Request r(c.op, c.offset, c.length, c.data);
    r.io.passthrough = c.passthrough;
    Submit(*driver, r, executor_);
    EXPECT_EQ(r.completions, 1);
    EXPECT_EQ(r.status.code, c.code) << r.describe();
    EXPECT_GT(std::strlen(r.status.context), 8u);
    EXPECT_EQ(r.status.raw.family, 0) << "refused by the host, not by the target";
    EXPECT_EQ(r.decision().disposition, Disposition::kFailUp);
  }
  // A request whose context is too small for the driver.
  Request tiny(IoOp::kRead, 0, kBlock, data.data());
  tiny.io.AttachDriverContext(tiny.context, ScsiPathDriver::RequiredContextSize() - 1);
  Submit(*driver, tiny, executor_);
  EXPECT_EQ(tiny.status.code, Errc::kInternal);
  EXPECT_EQ(counting.count(), 0u);
}

TEST_F(ScsiPathDriverTest, CreateRefusesImpossibleGeometry) {
  ScsiTransport& transport = Connect("p1", 1);
  EXPECT_FALSE(ScsiPathDriver::Create(transport, 0, 0, kBlocks).has_value());
  EXPECT_FALSE(ScsiPathDriver::Create(transport, 0, kBlock, 0).has_value());
  EXPECT_FALSE(ScsiPathDriver::Create(transport, 0, 4096, ~std::uint64_t{0} / 1024).has_value());
  EXPECT_FALSE(ScsiPathDriver::Create(transport, 0, kBlock, kBlocks, {.command_timeout = -1s}).has_value());
  auto driver = ScsiPathDriver::Create(transport, 3, kBlock, kBlocks);
  ASSERT_TRUE(driver.has_value());
  EXPECT_EQ((*driver)->lun(), 3u);
  EXPECT_LE((*driver)->ContextSize(), HeadOptions{}.request_context_size);
}

TEST_F(ScsiPathDriverTest, ConcurrentSubmittersShareOneDriver) {
  testing::RecordingObserver observer;
  auto driver = MakeDriver(Connect("p1", 1), {}, &observer);
  TakePowerOnAttention(*driver);
  observer.Take();
  constexpr int kThreads = 2;
  constexpr int kRounds = 100;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        const std::uint64_t offset = (static_cast<std::uint64_t>(t) * kRounds + i) * 2 * kBlock;
        std::vector<std::byte> out = testing::Pattern(2 * kBlock, static_cast<std::uint8_t>(t * 31 + i));
        Request w(IoOp::kWrite, offset, 2 * kBlock, out.data());
        driver->Submit(w.io);  // the array answers inline: no executor needed
        std::vector<std::byte> in(2 * kBlock);
        Request r(IoOp::kRead, offset, 2 * kBlock, in.data());
        driver->Submit(r.io);
        if (w.completions != 1 || r.completions != 1 || !w.status.ok() || !r.status.ok() || in != out) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_TRUE(observer.codes().empty());
}

}  // namespace
}  // namespace mpath::scsi
