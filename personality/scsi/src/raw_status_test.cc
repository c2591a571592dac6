// The SCSI RawStatus layout byte by byte, its decoding, the descriptions operators read, and ToIoStatus on real
// answers (sense built in both formats by the spec helpers, the way targets send it).
#include "mpath/scsi/raw_status.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>

#include "mpath/scsi/spec/sense.h"
#include "mpath/scsi/spec/spc_cdb.h"

namespace mpath::scsi {
namespace {

using spec::SenseCode;
using spec::SenseFormat;
using spec::SenseKey;

ScsiCommand CommandWithOpcode(std::uint8_t opcode) {
  ScsiCommand c;
  c.cdb[0] = opcode;
  c.cdb_length = static_cast<std::uint8_t>(spec::CdbLengthForOpcode(opcode));
  return c;
}

ScsiCommand CheckCondition(std::uint8_t opcode, SenseCode code, SenseFormat format = SenseFormat::kFixed,
                           bool deferred = false) {
  ScsiCommand c = CommandWithOpcode(opcode);
  spec::SetCheckCondition(c, format, code, {.deferred = deferred, .information = std::nullopt});
  return c;
}

std::array<std::uint8_t, 7> Bytes(std::uint8_t b0, std::uint8_t b1, std::uint8_t b2, std::uint8_t b3, std::uint8_t b4,
                                  std::uint8_t b5, std::uint8_t b6) {
  return {b0, b1, b2, b3, b4, b5, b6};
}

TEST(RawStatusTest, CheckConditionIsLaidOutByteByByteInBothSenseFormats) {
  for (SenseFormat format : {SenseFormat::kFixed, SenseFormat::kDescriptor}) {
    const RawStatus raw =
        EncodeRawStatus(CheckCondition(spec::op::kRead16, spec::asc::kLunNotReadyTargetPortStandby, format));
    EXPECT_EQ(raw.family, 0x53);
    EXPECT_EQ(raw.bytes, Bytes(0x00, 0x02, 0x02, 0x04, 0x0B, 0x01, 0x88));
  }
}

TEST(RawStatusTest, DeferredSenseSetsItsFlag) {
  const RawStatus raw = EncodeRawStatus(
      CheckCondition(spec::op::kWrite10, spec::asc::kUnrecoveredReadError, SenseFormat::kDescriptor, true));
  EXPECT_EQ(raw.bytes, Bytes(0x00, 0x02, 0x03, 0x11, 0x00, 0x03, 0x2A));
}

TEST(RawStatusTest, UnparseableSenseKeepsNoCodeAndSetsItsFlag) {
  ScsiCommand c = CommandWithOpcode(spec::op::kInquiry);
  c.status = 0x02;
  c.sense[0] = 0x7F;  // vendor specific response code: not sense data mpath can read
  c.sense[2] = 0x06;
  c.sense_length = 18;
  EXPECT_EQ(EncodeRawStatus(c).bytes, Bytes(0x00, 0x02, 0x00, 0x00, 0x00, 0x04, 0x12));
  // All zeroes, and a single byte: both unparseable.
  c.sense = {};
  EXPECT_EQ(EncodeRawStatus(c).bytes[5], raw_flags::kSenseUnparseable);
  c.sense[0] = 0x70;
  c.sense_length = 1;
  EXPECT_EQ(EncodeRawStatus(c).bytes[5], raw_flags::kSenseUnparseable);
}

TEST(RawStatusTest, SenseLengthIsBoundedByTheSenseBuffer) {
  // A transport claiming more sense than the buffer holds must not make the parser read past it.
  ScsiCommand c = CheckCondition(spec::op::kRead10, spec::asc::kAsymmetricAccessStateChanged);
  c.sense_length = 0xFF;
  EXPECT_EQ(EncodeRawStatus(c).bytes, Bytes(0x00, 0x02, 0x06, 0x2A, 0x06, 0x01, 0x28));
}

TEST(RawStatusTest, SenseWithOnlyAKeyParsesWithZeroAscAscq) {
  ScsiCommand c = CommandWithOpcode(spec::op::kRead10);
  c.status = 0x02;
  c.sense[0] = 0x70;
  c.sense[2] = 0x06;
  c.sense_length = 3;
  EXPECT_EQ(EncodeRawStatus(c).bytes, Bytes(0x00, 0x02, 0x06, 0x00, 0x00, 0x01, 0x28));
}

TEST(RawStatusTest, UndeliveredCommandsCarryOnlyDeliveryAndOpcode) {
  ScsiCommand c = CheckCondition(spec::op::kWrite16, spec::asc::kLunNotReadyTargetPortStandby);
  c.delivery = Delivery::kTimedOut;  // stale status and sense from the device must not leak into the raw status
  EXPECT_EQ(EncodeRawStatus(c).bytes, Bytes(0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x8A));
  c.delivery = Delivery::kLinkDown;
  EXPECT_EQ(EncodeRawStatus(c).bytes, Bytes(0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x8A));
  c.delivery = Delivery::kAborted;
  EXPECT_EQ(EncodeRawStatus(c).bytes, Bytes(0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x8A));
}

TEST(RawStatusTest, EmptyCdbEncodesOpcodeZero) {
  ScsiCommand c;
  c.status = 0x18;
  EXPECT_EQ(EncodeRawStatus(c).bytes, Bytes(0x00, 0x18, 0x00, 0x00, 0x00, 0x00, 0x00));
}

TEST(RawStatusTest, DecodeInvertsEncode) {
  const ScsiOutcome outcomes[] = {
      {},
      {.delivery = Delivery::kLinkDown, .opcode = 0x28},
      {.status = spec::Status::kCheckCondition,
       .sense = spec::asc::kLunNotReadyAsymmetricTransition,
       .sense_parsed = true,
       .opcode = 0x88},
      {.status = spec::Status::kCheckCondition,
       .sense = spec::asc::kUnrecoveredReadError,
       .sense_parsed = true,
       .deferred = true,
       .opcode = 0x2A},
      {.status = spec::Status::kCheckCondition, .sense_unparseable = true, .opcode = 0x12},
      {.status = spec::Status::kGood, .short_transfer = true, .opcode = 0x28},
      {.status = static_cast<spec::Status>(0x22), .opcode = 0xC1},
  };
  for (const ScsiOutcome& outcome : outcomes) {
    const auto decoded = DecodeRawStatus(EncodeRawStatus(outcome));
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(*decoded, outcome) << DescribeRawStatus(EncodeRawStatus(outcome));
  }
}

TEST(RawStatusTest, OtherFamiliesDoNotDecode) {
  EXPECT_FALSE(DecodeRawStatus(RawStatus{}).has_value());
  RawStatus nvme{.family = 0x4E, .bytes = {0x00, 0x02, 0x06, 0x2A, 0x06, 0x01, 0x28}};
  EXPECT_FALSE(DecodeRawStatus(nvme).has_value());
}

TEST(RawStatusTest, DescriptionsReadLikeALog) {
  EXPECT_EQ(DescribeRawStatus(
                EncodeRawStatus(CheckCondition(spec::op::kRead16, spec::asc::kLunNotReadyTargetPortStandby))),
            "CHECK CONDITION, NOT READY 04/0B (target port in standby state) on READ(16)");
  EXPECT_EQ(DescribeRawStatus(EncodeRawStatus(
                CheckCondition(spec::op::kWrite10, spec::asc::kUnrecoveredReadError, SenseFormat::kDescriptor, true))),
            "CHECK CONDITION, deferred MEDIUM ERROR 11/00 (unrecovered read error) on WRITE(10)");
  EXPECT_EQ(DescribeRawStatus(EncodeRawStatus(
                CheckCondition(spec::op::kRead10, SenseCode{SenseKey::kIllegalRequest, 0x99, 0x01}))),
            "CHECK CONDITION, ILLEGAL REQUEST 99/01 on READ(10)");
  EXPECT_EQ(DescribeRawStatus(EncodeRawStatus(ScsiOutcome{.delivery = Delivery::kLinkDown, .opcode = 0x2A})),
            "link down on WRITE(10)");
  EXPECT_EQ(DescribeRawStatus(EncodeRawStatus(ScsiOutcome{.delivery = Delivery::kTimedOut, .opcode = 0x35})),
            "timed out on SYNCHRONIZE CACHE(10)");
  EXPECT_EQ(DescribeRawStatus(EncodeRawStatus(ScsiOutcome{.delivery = Delivery::kAborted, .opcode = 0x00})),
            "aborted by the transport on TEST UNIT READY");
  EXPECT_EQ(DescribeRawStatus(
                EncodeRawStatus(ScsiOutcome{.status = spec::Status::kReservationConflict, .opcode = 0x28})),
            "RESERVATION CONFLICT on READ(10)");
  EXPECT_EQ(DescribeRawStatus(EncodeRawStatus(
                ScsiOutcome{.status = spec::Status::kCheckCondition, .sense_unparseable = true, .opcode = 0x12})),
            "CHECK CONDITION, unparseable sense data on INQUIRY");
  EXPECT_EQ(DescribeRawStatus(EncodeRawStatus(ScsiOutcome{.status = spec::Status::kCheckCondition, .opcode = 0x93})),
            "CHECK CONDITION, no sense data on WRITE SAME(16)");
  EXPECT_EQ(DescribeRawStatus(EncodeRawStatus(ScsiOutcome{.short_transfer = true, .opcode = 0x88})),
            "GOOD, short data transfer on READ(16)");
  EXPECT_EQ(DescribeRawStatus(EncodeRawStatus(ScsiOutcome{.status = static_cast<spec::Status>(0x22), .opcode = 0xC1})),
            "status 0x22 on opcode 0xC1");
  EXPECT_EQ(DescribeRawStatus(RawStatus{.family = 0x4E, .bytes = {}}), "not a SCSI status (family 0x4E)");
  EXPECT_EQ(DescribeRawStatus(RawStatus{}), "no device status");
}

TEST(RawStatusTest, EveryNamedSenseKeyAndStatusHasAName) {
  for (unsigned key = 0; key <= 0xF; ++key) {
    const std::string name = SenseKeyName(static_cast<SenseKey>(key));
    if (key == 0xC) {
      EXPECT_EQ(name, "sense key 0xC");  // reserved since SPC-4 (was EQUAL)
    } else {
      EXPECT_EQ(name.find("sense key"), std::string::npos) << name;
    }
  }
  for (std::uint8_t s : {0x00, 0x02, 0x04, 0x08, 0x18, 0x28, 0x30, 0x40}) {
    EXPECT_EQ(StatusName(static_cast<spec::Status>(s)).find("status 0x"), std::string::npos);
  }
}

TEST(RawStatusTest, ToIoStatusKeepsTheRawStatusOfTheCommand) {
  const ScsiCommand c = CheckCondition(spec::op::kRead16, spec::asc::kLunNotReadyTargetPortStandby);
  const IoStatus status = ToIoStatus(c);
  EXPECT_EQ(status.code, Errc::kPathError);
  EXPECT_EQ(status.raw, EncodeRawStatus(c));
  EXPECT_STREQ(status.context, "target port in standby state (NOT READY 04/0B)");
}

TEST(RawStatusTest, GoodConditionMetRecoveredAndCompletedAreOk) {
  ScsiCommand good = CommandWithOpcode(spec::op::kRead10);
  EXPECT_TRUE(ToIoStatus(good).ok());
  ScsiCommand met = CommandWithOpcode(0x90);  // PRE-FETCH(16) answers CONDITION MET
  met.status = 0x04;
  EXPECT_TRUE(ToIoStatus(met).ok());
  for (SenseKey key : {SenseKey::kRecoveredError, SenseKey::kCompleted}) {
    const ScsiCommand c = CheckCondition(spec::op::kWrite10, SenseCode{key, 0x17, 0x01});
    const IoStatus status = ToIoStatus(c);
    EXPECT_TRUE(status.ok()) << SenseKeyName(key);
    // The raw status still says what the target reported, for whoever wants to log a recovered error.
    EXPECT_EQ(status.raw.bytes[2], static_cast<std::uint8_t>(key));
  }
}

}  // namespace
}  // namespace mpath::scsi
