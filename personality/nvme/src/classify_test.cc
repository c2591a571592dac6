// The NVMe status-to-action table, row by row: every generic, path related and media status the spec headers name
// (and unknown ones), each answered as a real CQE with DNR clear and set and with each CRD value, through OutcomeOf,
// ToIoStatus and ClassifyNvme, the way the path driver and the core use them. Then the whole 15-bit status field
// under every delivery, to prove the table total and its two outputs (Errc, Decision) consistent.
#include "mpath/nvme/classify.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "mpath/core/path.h"
#include "mpath/core/path_driver.h"
#include "mpath/core/personality.h"
#include "mpath/nvme/raw_status.h"
#include "mpath/nvme/spec/opcodes.h"
#include "mpath/nvme/spec/status.h"
#include "mpath/proto/wire.h"

namespace mpath::nvme {
namespace {

using namespace std::chrono_literals;
using spec::CommandSpecificStatus;
using spec::GenericStatus;
using spec::MediaStatus;
using spec::PathStatus;

constexpr Disposition kSuccess = Disposition::kSuccess;
constexpr Disposition kSame = Disposition::kRetrySamePath;
constexpr Disposition kOther = Disposition::kRetryOtherPath;
constexpr Disposition kWait = Disposition::kWaitForStateChange;
constexpr Disposition kFail = Disposition::kFailUp;

constexpr RetryDelayTimes kDelays = {1, 25, 600};

struct Row {
  std::uint8_t sct;
  std::uint8_t sc;
  Errc code;               // with DNR clear
  Disposition disposition;  // with DNR clear
  bool refresh_ana = false;
};

Row G(GenericStatus sc, Errc code, Disposition disposition) {
  return {spec::kSctGeneric, static_cast<std::uint8_t>(sc), code, disposition};
}
Row P(PathStatus sc, Errc code, Disposition disposition, bool refresh = false) {
  return {spec::kSctPathRelated, static_cast<std::uint8_t>(sc), code, disposition, refresh};
}
Row M(MediaStatus sc, Errc code) { return {spec::kSctMediaError, static_cast<std::uint8_t>(sc), code, kFail}; }
Row C(CommandSpecificStatus sc, Errc code) {
  return {spec::kSctCommandSpecific, static_cast<std::uint8_t>(sc), code, kFail};
}

std::vector<Row> Table() {
  using E = Errc;
  return {
      // Generic (SCT 0h): every code status.h names, and two it does not.
      G(GenericStatus::kSuccess, E::kOk, kSuccess),
      G(GenericStatus::kInvalidCommandOpcode, E::kUnsupported, kFail),
      G(GenericStatus::kInvalidFieldInCommand, E::kTargetError, kFail),
      G(GenericStatus::kCommandIdConflict, E::kTargetError, kSame),
      G(GenericStatus::kDataTransferError, E::kTargetError, kSame),
      G(GenericStatus::kAbortedPowerLossNotification, E::kPathError, kOther),
      G(GenericStatus::kInternalError, E::kTargetError, kSame),
      G(GenericStatus::kAbortRequested, E::kAborted, kSame),
      G(GenericStatus::kAbortedSqDeletion, E::kAborted, kOther),
      G(GenericStatus::kAbortedFailedFusedCommand, E::kTargetError, kFail),
      G(GenericStatus::kAbortedMissingFusedCommand, E::kTargetError, kFail),
      G(GenericStatus::kInvalidNamespaceOrFormat, E::kTargetError, kFail),
      G(GenericStatus::kCommandSequenceError, E::kTargetError, kFail),
      G(GenericStatus::kInvalidSglSegmentDescriptor, E::kTargetError, kFail),
      G(GenericStatus::kInvalidNumberOfSglDescriptors, E::kTargetError, kFail),
      G(GenericStatus::kDataSglLengthInvalid, E::kTargetError, kFail),
      G(GenericStatus::kMetadataSglLengthInvalid, E::kTargetError, kFail),
      G(GenericStatus::kSglDescriptorTypeInvalid, E::kTargetError, kFail),
      G(GenericStatus::kInvalidUseOfControllerMemoryBuffer, E::kTargetError, kFail),
      G(GenericStatus::kPrpOffsetInvalid, E::kTargetError, kFail),
      G(GenericStatus::kAtomicWriteUnitExceeded, E::kTargetError, kFail),
      G(GenericStatus::kOperationDenied, E::kTargetError, kFail),
      G(GenericStatus::kSglOffsetInvalid, E::kTargetError, kFail),
      G(GenericStatus::kHostIdentifierInconsistentFormat, E::kTargetError, kFail),
      G(GenericStatus::kKeepAliveTimerExpired, E::kPathError, kOther),
      G(GenericStatus::kKeepAliveTimeoutInvalid, E::kTargetError, kFail),
      G(GenericStatus::kAbortedPreemptAndAbort, E::kAborted, kSame),
      G(GenericStatus::kSanitizeFailed, E::kTargetError, kFail),
      G(GenericStatus::kSanitizeInProgress, E::kBusy, kSame),
      G(GenericStatus::kSglDataBlockGranularityInvalid, E::kTargetError, kFail),
      G(GenericStatus::kCommandNotSupportedForQueueInCmb, E::kUnsupported, kFail),
      G(GenericStatus::kNamespaceWriteProtected, E::kTargetError, kFail),
      G(GenericStatus::kCommandInterrupted, E::kBusy, kSame),
      G(GenericStatus::kTransientTransportError, E::kPathError, kOther),
      G(GenericStatus::kProhibitedByLockdown, E::kTargetError, kFail),
      G(GenericStatus::kAdminCommandMediaNotReady, E::kBusy, kSame),
      G(GenericStatus::kLbaOutOfRange, E::kOutOfRange, kFail),
      G(GenericStatus::kCapacityExceeded, E::kNoSpace, kFail),
      G(GenericStatus::kNamespaceNotReady, E::kBusy, kSame),
      G(GenericStatus::kReservationConflict, E::kReservationConflict, kFail),
      G(GenericStatus::kFormatInProgress, E::kBusy, kSame),
      G(static_cast<GenericStatus>(0x17), E::kTargetError, kSame),  // reserved
      G(static_cast<GenericStatus>(0xC5), E::kTargetError, kSame),  // beyond the NVM command set's
      // Path related (SCT 3h): all fail over; the ANA ones refresh the log; a transition waits.
      P(PathStatus::kInternalPathError, E::kPathError, kOther),
      P(PathStatus::kAsymmetricAccessPersistentLoss, E::kPathError, kOther, true),
      P(PathStatus::kAsymmetricAccessInaccessible, E::kPathError, kOther, true),
      P(PathStatus::kAsymmetricAccessTransition, E::kPathError, kWait, true),
      P(PathStatus::kControllerPathingError, E::kPathError, kOther),
      P(PathStatus::kHostPathingError, E::kPathError, kOther),
      P(PathStatus::kAbortedByHost, E::kPathError, kOther),
      P(static_cast<PathStatus>(0x04), E::kPathError, kOther),
      P(static_cast<PathStatus>(0x61), E::kPathError, kOther),
      P(static_cast<PathStatus>(0xFF), E::kPathError, kOther),
      // Media and data integrity (SCT 2h): fail up, protection and compare apart.
      M(MediaStatus::kWriteFault, E::kMediumError),
      M(MediaStatus::kUnrecoveredReadError, E::kMediumError),
      M(MediaStatus::kEndToEndGuardCheckError, E::kProtection),
      M(MediaStatus::kEndToEndApplicationTagCheckError, E::kProtection),
      M(MediaStatus::kEndToEndReferenceTagCheckError, E::kProtection),
      M(MediaStatus::kCompareFailure, E::kMismatch),
      M(MediaStatus::kAccessDenied, E::kMediumError),
      M(MediaStatus::kDeallocatedOrUnwrittenLogicalBlock, E::kMediumError),
      M(MediaStatus::kEndToEndStorageTagCheckError, E::kProtection),
      M(static_cast<MediaStatus>(0x00), E::kMediumError),
      // Command specific (SCT 1h): target verdicts.
      C(CommandSpecificStatus::kInvalidLogPage, E::kTargetError),
      C(CommandSpecificStatus::kConflictingAttributes, E::kTargetError),
      C(CommandSpecificStatus::kInvalidProtectionInformation, E::kProtection),
      C(CommandSpecificStatus::kAttemptedWriteToReadOnlyRange, E::kTargetError),
      C(static_cast<CommandSpecificStatus>(0xFF), E::kTargetError),
      // Vendor specific (SCT 7h) and the reserved types.
      {spec::kSctVendor, 0x00, E::kTargetError, kFail},
      {spec::kSctVendor, 0xC1, E::kTargetError, kFail},
      {0x4, 0x02, E::kTargetError, kFail},
      {0x5, 0x00, E::kTargetError, kFail},
      {0x6, 0x83, E::kTargetError, kFail},
  };
}

// A status field with DNR and CRD as asked.
spec::Status Field(const Row& row, bool dnr, std::uint8_t crd) {
  spec::Status status = spec::Status::Of(row.sct, row.sc, dnr, /*more=*/true);
  return spec::Status{wire::SetBits<12, 11>(status.field, std::uint16_t{crd})};
}

NvmeCommand Answer(spec::Status status, Delivery delivery = Delivery::kDelivered) {
  NvmeCommand c;
  c.queue = QueueKind::kIo;
  c.sqe.opc = spec::Raw(spec::IoOpcode::kRead);
  c.delivery = delivery;
  c.cqe.set_status(status);
  return c;
}

const IoRequest& AnyRequest() {
  static const IoRequest io;
  return io;
}

TEST(NvmeClassifyTest, EveryRowWithAndWithoutDnrAndEveryCrd) {
  int rows = 0;
  for (const Row& row : Table()) {
    for (bool dnr : {false, true}) {
      for (std::uint8_t crd = 0; crd <= 3; ++crd) {
        char name[64];
        std::snprintf(name, sizeof(name), "code 0x%X%02X%s CRD %u", row.sct, row.sc, dnr ? " DNR" : "", crd);
        SCOPED_TRACE(name);
        const NvmeOutcome outcome = OutcomeOf(Answer(Field(row, dnr, crd)), kDelays);
        const IoStatus status = ToIoStatus(outcome);
        const NvmeVerdict verdict = JudgeNvme(outcome);

        Errc code = row.code;
        Disposition disposition = row.disposition;
        if (dnr && disposition != kSuccess) {
          disposition = kFail;
          if (code == Errc::kBusy) code = Errc::kTargetError;  // DNR denies what busy promises
        }
        Nanos delay{0};
        if (disposition == kSame) delay = crd == 0 ? kDefaultRetryDelay : 100ms * kDelays[crd - 1];

        EXPECT_EQ(status.code, code) << ErrcName(status.code) << ": " << DescribeRawStatus(status.raw);
        EXPECT_EQ(verdict.code, code);
        EXPECT_EQ(verdict.decision.disposition, disposition) << Name(verdict.decision.disposition);
        EXPECT_EQ(verdict.decision.delay, delay);
        EXPECT_EQ(verdict.refresh_ana, row.refresh_ana);
        // What the core reaches through the IoStatus alone is the same decision.
        const Decision decision = ClassifyNvme(AnyRequest(), status);
        EXPECT_EQ(decision.disposition, disposition);
        EXPECT_EQ(decision.delay, delay);
        if (code == Errc::kOk) {
          EXPECT_STREQ(status.context, "");
        } else {
          EXPECT_GT(std::strlen(status.context), 8u);
        }
        ++rows;
      }
    }
  }
  EXPECT_EQ(rows, static_cast<int>(Table().size()) * 8);
}

TEST(NvmeClassifyTest, EveryDeliveryFailsOverWhateverTheStaleCqeSays) {
  struct Case {
    Delivery delivery;
    Errc code;
  };
  const Case cases[] = {
      {Delivery::kLinkDown, Errc::kPathError},
      {Delivery::kTimedOut, Errc::kTimedOut},
      {Delivery::kAborted, Errc::kAborted},
      {static_cast<Delivery>(0x7F), Errc::kPathError},  // one a future transport might invent
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(static_cast<int>(c.delivery));
    // A CQE that would fail up with DNR if it were read.
    const NvmeCommand answer = Answer(spec::MakeStatus(GenericStatus::kReservationConflict, spec::Dnr::kSet), c.delivery);
    const IoStatus status = ToIoStatus(OutcomeOf(answer, kDelays));
    EXPECT_EQ(status.code, c.code);
    const Decision decision = ClassifyNvme(AnyRequest(), status);
    EXPECT_EQ(decision.disposition, kOther);
    EXPECT_EQ(decision.delay, Nanos(0));
    EXPECT_FALSE(JudgeNvme(*DecodeRawStatus(status.raw)).refresh_ana);
  }
}

TEST(NvmeClassifyTest, CrdWithAZeroCrdtMeansNoDelayNotTheDefault) {
  // The controller named a delay slot whose time is 0: it asked for an immediate retry.
  const RetryDelayTimes zeroes{};
  const NvmeOutcome o = OutcomeOf(
      Answer(spec::Status{wire::SetBits<12, 11>(spec::MakeStatus(GenericStatus::kNamespaceNotReady).field,
                                                  std::uint16_t{1})}),
      zeroes);
  EXPECT_EQ(JudgeNvme(o).decision.delay, Nanos(0));
  EXPECT_GT(kDefaultRetryDelay, Nanos(0));
}

TEST(NvmeClassifyTest, CrdDoesNotDelayAFailover) {
  // CRD speaks of resubmitting to the same controller; another path is not held back by it.
  const Row inaccessible = P(PathStatus::kAsymmetricAccessInaccessible, Errc::kPathError, kOther, true);
  const Decision decision = JudgeNvme(OutcomeOf(Answer(Field(inaccessible, false, 3)), kDelays)).decision;
  EXPECT_EQ(decision.disposition, kOther);
  EXPECT_EQ(decision.delay, Nanos(0));
}

// Every 15-bit status field (SC, SCT, CRD, More, DNR) under every delivery, on both queues: the table answers each
// without crashing, and its answers hang together.
TEST(NvmeClassifyTest, TotalOverEveryStatusFieldAndDelivery) {
  const Delivery deliveries[] = {Delivery::kDelivered, Delivery::kLinkDown, Delivery::kTimedOut, Delivery::kAborted,
                                 static_cast<Delivery>(0x7F)};
  std::size_t judged = 0;
  for (Delivery delivery : deliveries) {
    for (std::uint32_t field = 0; field < (1u << 15); ++field) {
      for (QueueKind queue : {QueueKind::kIo, QueueKind::kAdmin}) {
        NvmeCommand c = Answer(spec::Status{static_cast<std::uint16_t>(field)}, delivery);
        c.queue = queue;
        const NvmeOutcome o = OutcomeOf(c, kDelays);
        const NvmeVerdict v = JudgeNvme(o);
        const IoStatus status = ToIoStatus(o);
        const spec::Status s{static_cast<std::uint16_t>(field)};
        const bool delivered = delivery == Delivery::kDelivered;
        ++judged;

        // The two outputs agree, and the raw status alone leads to the same decision.
        ASSERT_EQ(status.code, v.code) << field;
        ASSERT_EQ(status.context, v.context);
        ASSERT_NE(v.context, nullptr);
        const auto decoded = DecodeRawStatus(status.raw);
        ASSERT_TRUE(decoded.has_value());
        ASSERT_EQ(*decoded, o);
        const Decision d = ClassifyNvme(AnyRequest(), status);
        ASSERT_EQ(d.disposition, v.decision.disposition) << field;
        ASSERT_EQ(d.delay, v.decision.delay);

        // Success exactly for a delivered 0/0, whatever the other bits say; never an Errc without a reason.
        const bool success = delivered && s.sct() == 0 && s.sc() == 0;
        ASSERT_EQ(v.decision.disposition == kSuccess, success) << field;
        ASSERT_EQ(v.code == Errc::kOk, success) << field;
        if (!success) {
          ASSERT_GT(std::strlen(v.context), 4u) << field;
        }
        // DNR fails up whatever the code; undelivered commands always fail over.
        if (delivered && !success && s.dnr()) {
          ASSERT_EQ(v.decision.disposition, kFail) << field;
        }
        if (!delivered) {
          ASSERT_EQ(v.decision.disposition, kOther);
        }
        // Only the three ANA statuses refresh the ANA log.
        ASSERT_EQ(v.refresh_ana, delivered && spec::IsAsymmetricAccessError(s)) << field;
        // A delay only on same-path retries, and from CRD when it asks.
        if (v.decision.disposition != kSame) {
          ASSERT_EQ(v.decision.delay, Nanos(0));
        } else if (s.crd() != 0) {
          ASSERT_EQ(v.decision.delay, 100ms * kDelays[s.crd() - 1]);
        } else {
          ASSERT_EQ(v.decision.delay, kDefaultRetryDelay);
        }
        // Path related statuses without DNR never stay on the path, and never fail up.
        if (delivered && s.sct() == spec::kSctPathRelated && !s.dnr()) {
          ASSERT_TRUE(v.decision.disposition == kOther || v.decision.disposition == kWait) << field;
          ASSERT_EQ(v.code, Errc::kPathError);
        }
        // Target verdicts stay on this side of the line blk_path_error draws.
        if (v.code == Errc::kReservationConflict || v.code == Errc::kMediumError || v.code == Errc::kProtection ||
            v.code == Errc::kNoSpace || v.code == Errc::kUnsupported || v.code == Errc::kOutOfRange) {
          ASSERT_EQ(v.decision.disposition, kFail) << field;
        }
      }
    }
  }
  EXPECT_EQ(judged, std::size_t{5} * 2 * (1u << 15));
}

TEST(NvmeClassifyTest, GarbageRawStatusesAreJudgedToo) {
  // Bytes no encoder writes (SCT above 7, unknown delivery) are judged like the reserved values they are.
  for (unsigned sct = 8; sct <= 0xFF; sct += 7) {
    const RawStatus raw{.family = kNvmeStatusFamily, .bytes = {0x00, static_cast<std::uint8_t>(sct), 0x02, 0, 0x02, 0, 0}};
    const IoStatus status{Errc::kTargetError, raw, "garbage"};
    EXPECT_EQ(ClassifyNvme(AnyRequest(), status).disposition, kFail) << sct;
  }
  const RawStatus undelivered{.family = kNvmeStatusFamily, .bytes = {0x42, 0, 0, 0, 0x02, 0, 0}};
  EXPECT_EQ(ClassifyNvme(AnyRequest(), IoStatus{Errc::kPathError, undelivered, "x"}).disposition, kOther);
}

TEST(NvmeClassifyTest, StatusesWithoutNvmeRawStatusFollowTheNeutralTemplate) {
  DeviceInfo info;
  info.name = "p";
  const Path path(1, 0, info, std::make_unique<NullPath>());
  IoRequest io;
  for (auto code = static_cast<std::uint8_t>(Errc::kInvalidArgument); code <= static_cast<std::uint8_t>(Errc::kInternal);
       ++code) {
    const auto errc = static_cast<Errc>(code);
    // No device status, and another personality's.
    for (std::uint8_t family : {std::uint8_t{0}, std::uint8_t{0x53}}) {
      const IoStatus status = IoStatus::Of(errc, "host-side", RawStatus{.family = family, .bytes = {}});
      const Decision mine = ClassifyNvme(io, status);
      const Decision neutral = NeutralTemplate::Instance().Classify(io, status, path);
      EXPECT_EQ(mine.disposition, neutral.disposition) << ErrcName(errc);
      EXPECT_EQ(mine.delay, neutral.delay) << ErrcName(errc);
    }
  }
  EXPECT_EQ(ClassifyNvme(io, IoStatus::Ok()).disposition, kSuccess);
}

TEST(NvmeClassifyTest, TheRawStatusDecidesNotTheErrc) {
  // An NVMe status is judged by what the controller said, whatever Errc a caller attached to it.
  IoStatus status = ToIoStatus(
      OutcomeOf(Answer(spec::MakeStatus(PathStatus::kAsymmetricAccessInaccessible, spec::Dnr::kClear, spec::More::kSet))));
  status.code = Errc::kMediumError;
  EXPECT_EQ(ClassifyNvme(AnyRequest(), status).disposition, kOther);
}

TEST(NvmeClassifyTest, PassthroughIsClassifiedLikeAnyIo) {
  // The core, not the classifier, keeps passthrough from being resent; its path errors still count against the path.
  IoRequest io;
  io.op = IoOp::kPassthrough;
  NvmeCommand admin = Answer(spec::MakeStatus(PathStatus::kHostPathingError));
  admin.queue = QueueKind::kAdmin;
  admin.sqe.opc = spec::Raw(spec::AdminOpcode::kIdentify);
  EXPECT_EQ(ClassifyNvme(io, ToIoStatus(OutcomeOf(admin))).disposition, kOther);
}

}  // namespace
}  // namespace mpath::nvme
