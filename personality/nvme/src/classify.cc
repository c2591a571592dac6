// The NVMe status-to-action table. It follows Linux's nvme_decide_disposition and blk_path_error (reference map
// §2.1, rows 19-20): path related statuses (SCT 3h) and undelivered commands fail over, the ANA ones also make the
// controller's ANA log be read again; DNR completes the command as it is; target verdicts (reservation conflict, media
// and protection errors, invalid commands and ranges) are handed up unchanged; the remaining transient statuses are
// resent on the same controller after the delay its CRD field selects. Where a row departs from a source, the comment
// beside it says why.
#include "mpath/nvme/classify.h"

#include <optional>

#include "mpath/nvme/spec/status.h"

namespace mpath::nvme {
namespace {

using spec::CommandSpecificStatus;
using spec::GenericStatus;
using spec::MediaStatus;
using spec::PathStatus;

constexpr Decision Success() { return {Disposition::kSuccess}; }
constexpr Decision SamePath() { return {Disposition::kRetrySamePath}; }  // delay filled in from CRD by JudgeNvme
constexpr Decision OtherPath() { return {Disposition::kRetryOtherPath}; }
constexpr Decision WaitForState() { return {Disposition::kWaitForStateChange}; }
constexpr Decision FailUp() { return {Disposition::kFailUp}; }

NvmeVerdict Undelivered(Delivery delivery) {
  switch (delivery) {
    case Delivery::kLinkDown:
      return {Errc::kPathError, "link down", OtherPath()};
    case Delivery::kTimedOut:
      // The controller may still execute it; the core's write quiesce delay guards the resubmission elsewhere.
      return {Errc::kTimedOut, "command timed out", OtherPath()};
    case Delivery::kAborted:
      return {Errc::kAborted, "aborted by the transport (connection reset or controller reset)", OtherPath()};
    case Delivery::kDelivered:
    default:
      return {Errc::kPathError, "not delivered (unknown transport outcome)", OtherPath()};
  }
}

// SCT 3h: the controller says the path, not the namespace, failed the command.
NvmeVerdict PathRelated(std::uint8_t sc) {
  switch (static_cast<PathStatus>(sc)) {
    case PathStatus::kInternalPathError:
      return {Errc::kPathError, "internal path error (path 0x300)", OtherPath()};
    case PathStatus::kAsymmetricAccessPersistentLoss:
      return {Errc::kPathError, "ANA persistent loss (path 0x301)", OtherPath(), true};
    case PathStatus::kAsymmetricAccessInaccessible:
      return {Errc::kPathError, "ANA inaccessible (path 0x302)", OtherPath(), true};
    case PathStatus::kAsymmetricAccessTransition:
      // The group is changing state: go elsewhere meanwhile, and wait when nothing else is usable (Linux requeues
      // on the head until the ANA log says the change is over).
      return {Errc::kPathError, "ANA transition (path 0x303)", WaitForState(), true};
    case PathStatus::kControllerPathingError:
      return {Errc::kPathError, "controller pathing error (path 0x360)", OtherPath()};
    case PathStatus::kHostPathingError:
      return {Errc::kPathError, "host pathing error (path 0x370)", OtherPath()};
    case PathStatus::kAbortedByHost:
      return {Errc::kPathError, "command aborted by host (path 0x371)", OtherPath()};
    default:
      // The spec keeps the rest of SCT 3h for path statuses yet to come: whatever they say, they speak of the path.
      return {Errc::kPathError, "path related status (path 0x3xx)", OtherPath()};
  }
}

NvmeVerdict Generic(std::uint8_t sc) {
  switch (static_cast<GenericStatus>(sc)) {
    case GenericStatus::kSuccess:
      return {Errc::kOk, "", Success()};
    // --- Target verdicts: the same command fails the same way through every controller.
    case GenericStatus::kReservationConflict:
      // Never failed over: NVMe registrations belong to the host identifier, which every controller of this host
      // shares, so another path would conflict too.
      return {Errc::kReservationConflict, "reservation conflict (generic 0x083)", FailUp()};
    case GenericStatus::kInvalidCommandOpcode:
      return {Errc::kUnsupported, "command not supported by the controller (generic 0x001)", FailUp()};
    case GenericStatus::kCommandNotSupportedForQueueInCmb:
      return {Errc::kUnsupported, "command not supported for a queue in the controller memory buffer", FailUp()};
    case GenericStatus::kInvalidFieldInCommand:
      return {Errc::kTargetError, "invalid field in command (generic 0x002)", FailUp()};
    case GenericStatus::kInvalidNamespaceOrFormat:
      // Linux counts it as a target error too (BLK_STS_NOTSUPP): the head's namespace identity was checked on every
      // path at attach, so an NSID this controller does not know is a remap the identity code handles, not a route.
      return {Errc::kTargetError, "invalid namespace or format (generic 0x00B)", FailUp()};
    case GenericStatus::kLbaOutOfRange:
      return {Errc::kOutOfRange, "LBA out of range (generic 0x080)", FailUp()};
    case GenericStatus::kCapacityExceeded:
      return {Errc::kNoSpace, "capacity exceeded (generic 0x081)", FailUp()};
    case GenericStatus::kNamespaceWriteProtected:
      return {Errc::kTargetError, "namespace is write protected (generic 0x020)", FailUp()};
    case GenericStatus::kInvalidSglSegmentDescriptor:
    case GenericStatus::kInvalidNumberOfSglDescriptors:
    case GenericStatus::kDataSglLengthInvalid:
    case GenericStatus::kMetadataSglLengthInvalid:
    case GenericStatus::kSglDescriptorTypeInvalid:
    case GenericStatus::kSglOffsetInvalid:
    case GenericStatus::kSglDataBlockGranularityInvalid:
    case GenericStatus::kPrpOffsetInvalid:
    case GenericStatus::kInvalidUseOfControllerMemoryBuffer:
      // The command's data description is malformed; resending the same command cannot fix it.
      return {Errc::kTargetError, "invalid data pointer or SGL (generic SGL/PRP status)", FailUp()};
    case GenericStatus::kCommandSequenceError:
    case GenericStatus::kAbortedFailedFusedCommand:
    case GenericStatus::kAbortedMissingFusedCommand:
    case GenericStatus::kAtomicWriteUnitExceeded:
    case GenericStatus::kOperationDenied:
    case GenericStatus::kHostIdentifierInconsistentFormat:
    case GenericStatus::kKeepAliveTimeoutInvalid:
    case GenericStatus::kSanitizeFailed:
    case GenericStatus::kProhibitedByLockdown:
      // Departs from "other generic statuses retry": each of these rejects the command itself (its form, its
      // sequence, a policy), so a resend changes nothing even when a controller forgets to set DNR.
      return {Errc::kTargetError, "command rejected by the controller (generic status)", FailUp()};
    // --- The controller's association is ending: another controller may be fine.
    case GenericStatus::kAbortedSqDeletion:
      // Queues are deleted when the controller resets or the association goes away: it is the path's, as SPDK
      // counts it (the same transport abort SCSI calls TASK ABORTED).
      return {Errc::kAborted, "command aborted due to SQ deletion (generic 0x008)", OtherPath()};
    case GenericStatus::kTransientTransportError:
      // The transport's own failure, which the spec says may succeed on another path.
      return {Errc::kPathError, "transient transport error (generic 0x022)", OtherPath()};
    case GenericStatus::kKeepAliveTimerExpired:
      // Departs from "other generic statuses retry": the controller has given this association up (it tears the
      // queues down next), so resending here only waits for the same failure.
      return {Errc::kPathError, "keep alive timer expired (generic 0x019)", OtherPath()};
    case GenericStatus::kAbortedPowerLossNotification:
      // Departs likewise: this controller is going down; its peers in the subsystem are not.
      return {Errc::kPathError, "aborted due to power loss notification (generic 0x005)", OtherPath()};
    // --- Transient statuses of the namespace or the controller: the same path, after the CRD delay.
    case GenericStatus::kInternalError:
      return {Errc::kTargetError, "internal error (generic 0x006)", SamePath()};
    case GenericStatus::kDataTransferError:
      return {Errc::kTargetError, "data transfer error (generic 0x004)", SamePath()};
    case GenericStatus::kAbortRequested:
      // An Abort command (ours, after a timeout, or another host tool's) ended it; nothing was wrong with the
      // command. kAborted says so if the bounded retries run out.
      return {Errc::kAborted, "command abort requested (generic 0x007)", SamePath()};
    case GenericStatus::kAbortedPreemptAndAbort:
      // Another host preempted our reservation and aborted our commands: resend, and meet the reservation conflict
      // (which fails up) if we are no longer allowed.
      return {Errc::kAborted, "aborted due to preempt and abort (generic 0x01B)", SamePath()};
    case GenericStatus::kCommandInterrupted:
      return {Errc::kBusy, "command interrupted (generic 0x021)", SamePath()};
    case GenericStatus::kNamespaceNotReady:
      return {Errc::kBusy, "namespace not ready (generic 0x082)", SamePath()};
    case GenericStatus::kFormatInProgress:
      return {Errc::kBusy, "format in progress (generic 0x084)", SamePath()};
    case GenericStatus::kSanitizeInProgress:
      return {Errc::kBusy, "sanitize in progress (generic 0x01D)", SamePath()};
    case GenericStatus::kAdminCommandMediaNotReady:
      return {Errc::kBusy, "admin command media not ready (generic 0x024)", SamePath()};
    case GenericStatus::kCommandIdConflict:
      // The transport owns command identifiers; a resend gets a fresh one.
      return {Errc::kTargetError, "command ID conflict (generic 0x003)", SamePath()};
    default:
      // Reserved or newer generic codes without DNR: the controller allows a retry, and the core bounds it.
      return {Errc::kTargetError, "generic command status", SamePath()};
  }
}

NvmeVerdict Media(std::uint8_t sc) {
  switch (static_cast<MediaStatus>(sc)) {
    case MediaStatus::kEndToEndGuardCheckError:
    case MediaStatus::kEndToEndApplicationTagCheckError:
    case MediaStatus::kEndToEndReferenceTagCheckError:
    case MediaStatus::kEndToEndStorageTagCheckError:
      // Protection information did not check: the same bytes fail again on any path (Linux: BLK_STS_PROTECTION).
      return {Errc::kProtection, "end-to-end protection check error (media)", FailUp()};
    case MediaStatus::kCompareFailure:
      // Not a defect of the medium but the answer a Compare asks for, as SCSI's MISCOMPARE is.
      return {Errc::kMismatch, "compare failure (media 0x285)", FailUp()};
    case MediaStatus::kWriteFault:
      return {Errc::kMediumError, "write fault (media 0x280)", FailUp()};
    case MediaStatus::kUnrecoveredReadError:
      return {Errc::kMediumError, "unrecovered read error (media 0x281)", FailUp()};
    default:
      return {Errc::kMediumError, "media or data integrity error", FailUp()};
  }
}

NvmeVerdict CommandSpecific(std::uint8_t sc) {
  if (static_cast<CommandSpecificStatus>(sc) == CommandSpecificStatus::kInvalidProtectionInformation) {
    return {Errc::kProtection, "invalid protection information (command specific 0x181)", FailUp()};
  }
  return {Errc::kTargetError, "command specific status", FailUp()};
}

// What the controller said, before DNR and CRD are applied.
NvmeVerdict Delivered(const NvmeOutcome& o) {
  switch (o.sct) {
    case spec::kSctGeneric: return Generic(o.sc);
    case spec::kSctCommandSpecific: return CommandSpecific(o.sc);
    case spec::kSctMediaError: return Media(o.sc);
    case spec::kSctPathRelated: return PathRelated(o.sc);
    case spec::kSctVendor: return {Errc::kTargetError, "vendor specific status", FailUp()};
    default: return {Errc::kTargetError, "reserved status code type", FailUp()};
  }
}

// The same classes NeutralTemplate::Classify acts on (classify_test checks that they agree): for statuses the driver
// raised itself, before or without the controller.
Decision NeutralDecision(const IoStatus& status) {
  switch (status.code) {
    case Errc::kOk:
      return Success();
    case Errc::kPathError:
    case Errc::kTimedOut:
    case Errc::kAborted:
    case Errc::kRemoved:
    case Errc::kNoPath:
      return OtherPath();
    case Errc::kBusy:
      return {Disposition::kRetrySamePath, std::chrono::milliseconds(1)};
    default:
      return FailUp();
  }
}

}  // namespace

NvmeVerdict JudgeNvme(const NvmeOutcome& outcome) {
  if (!outcome.delivered()) return Undelivered(outcome.delivery);
  NvmeVerdict verdict = Delivered(outcome);
  if (verdict.decision.disposition == Disposition::kSuccess) return verdict;
  if (outcome.dnr) {
    // The controller says a resend would fail again, on this path or (for the path statuses) as the controller sees
    // it any other; the status goes up as it is. An ANA status still says the log changed, so refresh_ana stays.
    verdict.decision = FailUp();
    // Busy promises that waiting helps, which DNR denies.
    if (verdict.code == Errc::kBusy) verdict.code = Errc::kTargetError;
    return verdict;
  }
  if (verdict.decision.disposition == Disposition::kRetrySamePath) {
    // CRD 1..3 names the controller's CRDT1..3 (a delay of 0 included: the controller asks for none); CRD 0 leaves
    // the delay to us.
    verdict.decision.delay = outcome.crd != 0 ? outcome.retry_delay() : kDefaultRetryDelay;
  }
  return verdict;
}

Decision ClassifyNvme(const IoRequest& /*io*/, const IoStatus& status) {
  const std::optional<NvmeOutcome> outcome = DecodeRawStatus(status.raw);
  if (!outcome) return NeutralDecision(status);
  return JudgeNvme(*outcome).decision;
}

}  // namespace mpath::nvme
