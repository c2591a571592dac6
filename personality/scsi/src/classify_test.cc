// The error-to-action table, row by row: every delivery value, every status byte, every sense key, and every ASC/ASCQ
// the classifier names, each sent as a real answer (sense built in fixed and in descriptor format) through ToIoStatus
// and ClassifyScsi, the way the path driver and the core use them.
#include "mpath/scsi/classify.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mpath/core/path.h"
#include "mpath/core/path_driver.h"
#include "mpath/core/personality.h"
#include "mpath/scsi/raw_status.h"
#include "mpath/scsi/spec/sbc_cdb.h"
#include "mpath/scsi/spec/sense.h"

namespace mpath::scsi {
namespace {

using namespace std::chrono_literals;
using spec::SenseCode;
using spec::SenseFormat;
using spec::SenseKey;

constexpr Disposition kSuccess = Disposition::kSuccess;
constexpr Disposition kSame = Disposition::kRetrySamePath;
constexpr Disposition kOther = Disposition::kRetryOtherPath;
constexpr Disposition kWait = Disposition::kWaitForStateChange;
constexpr Disposition kFail = Disposition::kFailUp;

struct Row {
  std::string name;
  Delivery delivery = Delivery::kDelivered;
  std::uint8_t status = 0;
  std::optional<SenseCode> sense;
  Errc code;
  Disposition disposition;
  Nanos delay{0};
};

Row Sense(SenseKey key, std::uint8_t asc, std::uint8_t ascq, Errc code, Disposition disposition, Nanos delay = Nanos(0)) {
  char name[48];
  std::snprintf(name, sizeof(name), "key %X %02X/%02X", static_cast<unsigned>(key), asc, ascq);
  return {name, Delivery::kDelivered, 0x02, SenseCode{key, asc, ascq}, code, disposition, delay};
}

Row StatusRow(std::uint8_t status, Errc code, Disposition disposition, Nanos delay = Nanos(0)) {
  char name[32];
  std::snprintf(name, sizeof(name), "status 0x%02X", status);
  return {name, Delivery::kDelivered, status, std::nullopt, code, disposition, delay};
}

std::vector<Row> Table() {
  const SenseKey kNotReady = SenseKey::kNotReady;
  const SenseKey kUa = SenseKey::kUnitAttention;
  const SenseKey kIllegal = SenseKey::kIllegalRequest;
  const SenseKey kAborted = SenseKey::kAbortedCommand;
  std::vector<Row> rows = {
      // Every delivery value; 0x7F stands for one a future transport might invent.
      {"link down", Delivery::kLinkDown, 0, {}, Errc::kPathError, kOther},
      {"timed out", Delivery::kTimedOut, 0, {}, Errc::kTimedOut, kOther},
      {"transport abort", Delivery::kAborted, 0, {}, Errc::kPathError, kOther},
      {"unknown delivery", static_cast<Delivery>(0x7F), 0, {}, Errc::kPathError, kOther},
      // Every status byte: SAM-5's, the obsolete ones and garbage.
      StatusRow(0x00, Errc::kOk, kSuccess),
      StatusRow(0x02, Errc::kTargetError, kFail),  // CHECK CONDITION without sense
      StatusRow(0x04, Errc::kOk, kSuccess),
      StatusRow(0x08, Errc::kBusy, kSame, kBusyRetryDelay),
      StatusRow(0x10, Errc::kTargetError, kFail),
      StatusRow(0x14, Errc::kTargetError, kFail),
      StatusRow(0x18, Errc::kReservationConflict, kFail),
      StatusRow(0x22, Errc::kTargetError, kFail),
      StatusRow(0x28, Errc::kBusy, kSame, kBusyRetryDelay),
      StatusRow(0x30, Errc::kBusy, kSame, kBusyRetryDelay),
      StatusRow(0x40, Errc::kAborted, kOther),
      StatusRow(0xFF, Errc::kTargetError, kFail),
      // Every sense key, with the ASC/ASCQs the classifier names.
      Sense(SenseKey::kNoSense, 0x00, 0x00, Errc::kTargetError, kSame, kAbortedCommandRetryDelay),
      Sense(SenseKey::kRecoveredError, 0x17, 0x01, Errc::kOk, kSuccess),
      Sense(kNotReady, 0x04, 0x00, Errc::kPathError, kOther),
      Sense(kNotReady, 0x04, 0x01, Errc::kBusy, kSame, kBecomingReadyRetryDelay),
      Sense(kNotReady, 0x04, 0x02, Errc::kPathError, kOther),
      Sense(kNotReady, 0x04, 0x03, Errc::kPathError, kOther),
      Sense(kNotReady, 0x04, 0x04, Errc::kBusy, kSame, kBecomingReadyRetryDelay),
      Sense(kNotReady, 0x04, 0x05, Errc::kBusy, kSame, kBecomingReadyRetryDelay),
      Sense(kNotReady, 0x04, 0x06, Errc::kBusy, kSame, kBecomingReadyRetryDelay),
      Sense(kNotReady, 0x04, 0x07, Errc::kBusy, kSame, kBecomingReadyRetryDelay),
      Sense(kNotReady, 0x04, 0x08, Errc::kBusy, kSame, kBecomingReadyRetryDelay),
      Sense(kNotReady, 0x04, 0x09, Errc::kBusy, kSame, kBecomingReadyRetryDelay),
      Sense(kNotReady, 0x04, 0x0A, Errc::kPathError, kWait),
      Sense(kNotReady, 0x04, 0x0B, Errc::kPathError, kOther),
      Sense(kNotReady, 0x04, 0x0C, Errc::kPathError, kOther),
      Sense(kNotReady, 0x04, 0x12, Errc::kPathError, kOther),
      Sense(kNotReady, 0x04, 0x14, Errc::kBusy, kSame, kBecomingReadyRetryDelay),
      Sense(kNotReady, 0x04, 0x1A, Errc::kBusy, kSame, kBecomingReadyRetryDelay),
      Sense(kNotReady, 0x04, 0x1B, Errc::kBusy, kSame, kBecomingReadyRetryDelay),
      Sense(kNotReady, 0x08, 0x00, Errc::kPathError, kOther),
      Sense(kNotReady, 0x3A, 0x00, Errc::kTargetError, kFail),
      Sense(SenseKey::kMediumError, 0x11, 0x00, Errc::kMediumError, kFail),
      Sense(SenseKey::kHardwareError, 0x44, 0x00, Errc::kTargetError, kFail),
      Sense(kIllegal, 0x1A, 0x00, Errc::kTargetError, kFail),
      Sense(kIllegal, 0x20, 0x00, Errc::kUnsupported, kFail),
      Sense(kIllegal, 0x21, 0x00, Errc::kOutOfRange, kFail),
      Sense(kIllegal, 0x24, 0x00, Errc::kTargetError, kFail),
      Sense(kIllegal, 0x25, 0x00, Errc::kPathError, kOther),
      Sense(kIllegal, 0x26, 0x00, Errc::kTargetError, kFail),
      Sense(kIllegal, 0x26, 0x04, Errc::kTargetError, kFail),
      Sense(kIllegal, 0x55, 0x04, Errc::kTargetError, kFail),
      Sense(kUa, 0x00, 0x00, Errc::kBusy, kSame),
      Sense(kUa, 0x29, 0x00, Errc::kBusy, kSame),
      Sense(kUa, 0x29, 0x01, Errc::kBusy, kSame),
      Sense(kUa, 0x29, 0x07, Errc::kBusy, kSame),
      Sense(kUa, 0x2A, 0x00, Errc::kBusy, kSame),
      Sense(kUa, 0x2A, 0x03, Errc::kBusy, kSame),
      Sense(kUa, 0x2A, 0x04, Errc::kBusy, kSame),
      Sense(kUa, 0x2A, 0x05, Errc::kBusy, kSame),
      Sense(kUa, 0x2A, 0x06, Errc::kBusy, kSame),
      Sense(kUa, 0x2A, 0x07, Errc::kBusy, kSame),
      Sense(kUa, 0x2A, 0x09, Errc::kBusy, kSame),
      Sense(kUa, 0x3F, 0x03, Errc::kBusy, kSame),
      Sense(kUa, 0x3F, 0x0E, Errc::kBusy, kSame),
      Sense(SenseKey::kDataProtect, 0x27, 0x00, Errc::kProtection, kFail),
      Sense(SenseKey::kDataProtect, 0x27, 0x07, Errc::kNoSpace, kFail),
      Sense(SenseKey::kBlankCheck, 0x00, 0x00, Errc::kTargetError, kFail),
      Sense(SenseKey::kVendorSpecific, 0x80, 0x00, Errc::kTargetError, kFail),
      Sense(SenseKey::kCopyAborted, 0x0D, 0x00, Errc::kTargetError, kFail),
      Sense(kAborted, 0x00, 0x00, Errc::kAborted, kSame, kAbortedCommandRetryDelay),
      Sense(kAborted, 0x47, 0x00, Errc::kAborted, kSame, kAbortedCommandRetryDelay),
      Sense(kAborted, 0x4B, 0x00, Errc::kAborted, kSame, kAbortedCommandRetryDelay),
      Sense(kAborted, 0x10, 0x01, Errc::kProtection, kFail),
      Sense(static_cast<SenseKey>(0xC), 0x00, 0x00, Errc::kTargetError, kFail),
      Sense(SenseKey::kVolumeOverflow, 0x00, 0x02, Errc::kTargetError, kFail),
      Sense(SenseKey::kMiscompare, 0x1D, 0x00, Errc::kMismatch, kFail),
      Sense(SenseKey::kCompleted, 0x00, 0x1D, Errc::kOk, kSuccess),
  };
  return rows;
}

ScsiCommand Answer(const Row& row, SenseFormat format, bool deferred = false) {
  ScsiCommand c;
  c.SetCdb(spec::Read16Cdb::Make(0, 1));
  c.delivery = row.delivery;
  c.status = row.status;
  if (row.sense) spec::WriteSense(c, format, *row.sense, {.deferred = deferred, .information = std::nullopt});
  return c;
}

const IoRequest& AnyRequest() {
  static const IoRequest io;
  return io;
}

TEST(ClassifyTest, EveryRowOfTheTableInBothSenseFormats) {
  for (const Row& row : Table()) {
    for (SenseFormat format : {SenseFormat::kFixed, SenseFormat::kDescriptor}) {
      SCOPED_TRACE(row.name + (format == SenseFormat::kFixed ? " (fixed)" : " (descriptor)"));
      const ScsiCommand c = Answer(row, format);
      const IoStatus status = ToIoStatus(c);
      EXPECT_EQ(status.code, row.code) << ErrcName(status.code) << ": " << DescribeRawStatus(status.raw);
      EXPECT_EQ(status.raw, EncodeRawStatus(c));
      if (row.code == Errc::kOk) {
        EXPECT_STREQ(status.context, "");
      } else {
        EXPECT_GT(std::string(status.context).size(), 4u);
      }
      const Decision decision = ClassifyScsi(AnyRequest(), status);
      EXPECT_EQ(decision.disposition, row.disposition) << Name(decision.disposition);
      EXPECT_EQ(decision.delay, row.delay);
      // The same row reached through the decoded raw status alone.
      EXPECT_EQ(JudgeScsi(*DecodeRawStatus(status.raw)).decision.disposition, row.disposition);
      if (!row.sense) break;
    }
  }
}

TEST(ClassifyTest, SameRetryDelaysAreNonZeroWhereABackOffIsMeant) {
  EXPECT_GT(kBecomingReadyRetryDelay, Nanos(0));
  EXPECT_GT(kAbortedCommandRetryDelay, Nanos(0));
  EXPECT_GT(kBusyRetryDelay, kAbortedCommandRetryDelay);
  EXPECT_EQ(kUnitAttentionRetryDelay, Nanos(0));
}

TEST(ClassifyTest, DeferredErrorsResendTheCommandAndKeepTheirClass) {
  const Row medium = Sense(SenseKey::kMediumError, 0x11, 0x00, Errc::kMediumError, kFail);
  for (SenseFormat format : {SenseFormat::kFixed, SenseFormat::kDescriptor}) {
    const IoStatus status = ToIoStatus(Answer(medium, format, /*deferred=*/true));
    EXPECT_EQ(status.code, Errc::kMediumError);
    EXPECT_STREQ(status.context, "deferred error reported for an earlier command");
    const Decision decision = ClassifyScsi(AnyRequest(), status);
    EXPECT_EQ(decision.disposition, kSame);
    EXPECT_EQ(decision.delay, Nanos(0));
  }
  const Row recovered = Sense(SenseKey::kRecoveredError, 0x17, 0x01, Errc::kOk, kSuccess);
  EXPECT_TRUE(ToIoStatus(Answer(recovered, SenseFormat::kFixed, true)).ok());
}

TEST(ClassifyTest, GarbageSenseFailsUpWithTheRawBytesKept) {
  const std::vector<std::vector<std::uint8_t>> garbage = {
      {0x7F, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0A, 0, 0, 0, 0, 0x04, 0x0B},  // vendor response code
      {0x70},                                                                   // ends before the key
      {0x00, 0x00, 0x00, 0x00},                                                 // not sense at all
      {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF},
  };
  for (const auto& bytes : garbage) {
    ScsiCommand c;
    c.SetCdb(spec::Read16Cdb::Make(0, 1));
    c.status = 0x02;
    std::copy(bytes.begin(), bytes.end(), c.sense.begin());
    c.sense_length = static_cast<std::uint8_t>(bytes.size());
    const IoStatus status = ToIoStatus(c);
    EXPECT_EQ(status.code, Errc::kTargetError);
    EXPECT_STREQ(status.context, "CHECK CONDITION with unparseable sense data");
    EXPECT_EQ(status.raw.bytes[1], 0x02);
    EXPECT_EQ(status.raw.bytes[5], raw_flags::kSenseUnparseable);
    EXPECT_EQ(status.raw.bytes[6], 0x88);
    EXPECT_EQ(ClassifyScsi(AnyRequest(), status).disposition, kFail);
  }
}

TEST(ClassifyTest, ShortTransferUnderGoodStatusFailsOver) {
  const IoStatus status = ToIoStatus(ScsiOutcome{.short_transfer = true, .opcode = 0x28});
  EXPECT_EQ(status.code, Errc::kPathError);
  EXPECT_EQ(ClassifyScsi(AnyRequest(), status).disposition, kOther);
}

TEST(ClassifyTest, StatusesWithoutScsiRawStatusFollowTheNeutralTemplate) {
  DeviceInfo info;
  info.name = "p";
  const Path path(1, 0, info, std::make_unique<NullPath>());
  IoRequest io;
  for (auto code = static_cast<std::uint8_t>(Errc::kInvalidArgument); code <= static_cast<std::uint8_t>(Errc::kInternal);
       ++code) {
    const auto errc = static_cast<Errc>(code);
    for (std::uint8_t family : {std::uint8_t{0}, std::uint8_t{0x4E}}) {
      const IoStatus status = IoStatus::Of(errc, "host-side", RawStatus{.family = family, .bytes = {}});
      const Decision mine = ClassifyScsi(io, status);
      const Decision neutral = NeutralTemplate::Instance().Classify(io, status, path);
      EXPECT_EQ(mine.disposition, neutral.disposition) << ErrcName(errc);
      EXPECT_EQ(mine.delay, neutral.delay) << ErrcName(errc);
    }
  }
}

TEST(ClassifyTest, TheRawStatusDecidesNotTheErrc) {
  // A SCSI status is judged by what the target said, whatever Errc a caller attached to it.
  IoStatus status = ToIoStatus(Answer(Sense(SenseKey::kUnitAttention, 0x2A, 0x06, Errc::kBusy, kSame), SenseFormat::kFixed));
  status.code = Errc::kMediumError;
  EXPECT_EQ(ClassifyScsi(AnyRequest(), status).disposition, kSame);
}

TEST(ClassifyTest, PassthroughIsClassifiedLikeAnyIo) {
  // The core, not the classifier, keeps passthrough from being resent; its path errors still count against the path.
  IoRequest io;
  io.op = IoOp::kPassthrough;
  const IoStatus standby = ToIoStatus(Answer(Sense(SenseKey::kNotReady, 0x04, 0x0B, Errc::kPathError, kOther),
                                             SenseFormat::kFixed));
  EXPECT_EQ(ClassifyScsi(io, standby).disposition, kOther);
}

}  // namespace
}  // namespace mpath::scsi
