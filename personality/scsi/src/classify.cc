// The SCSI error-to-action table. It follows the reference map (shared/reference/multipath.md §2.6): fail over on
// anything that speaks of the path (transport loss, timeouts, ALUA standby/unavailable/offline), wait out ALUA
// transitions, retry unit attentions where they were reported, and hand target verdicts (medium, illegal request,
// data protect, reservation conflict, miscompare) up unchanged, as Linux's blk_path_error draws the line. Where a
// row departs from a source, the comment beside it says why.
#include "mpath/scsi/classify.h"

#include <optional>

namespace mpath::scsi {
namespace {

using spec::SenseKey;
using spec::Status;

constexpr Decision Success() { return {Disposition::kSuccess}; }
constexpr Decision SamePath(Nanos delay) { return {Disposition::kRetrySamePath, delay}; }
constexpr Decision OtherPath() { return {Disposition::kRetryOtherPath}; }
constexpr Decision WaitForState() { return {Disposition::kWaitForStateChange}; }
constexpr Decision FailUp() { return {Disposition::kFailUp}; }

ScsiVerdict Undelivered(Delivery delivery) {
  switch (delivery) {
    case Delivery::kLinkDown:
      return {Errc::kPathError, "link down", OtherPath()};
    case Delivery::kTimedOut:
      // The target may still execute it; the core's write quiesce delay guards the resubmission elsewhere.
      return {Errc::kTimedOut, "command timed out", OtherPath()};
    case Delivery::kAborted:
      return {Errc::kPathError, "aborted by the transport (connection reset or task management)", OtherPath()};
    case Delivery::kDelivered:
    default:
      return {Errc::kPathError, "not delivered (unknown transport outcome)", OtherPath()};
  }
}

// NOT READY: the LU cannot serve this command through this port right now.
ScsiVerdict NotReady(const spec::SenseCode& code) {
  if (code.asc == 0x04) {
    switch (code.ascq) {
      case 0x0A:
        // ALUA transition: the group will settle; go elsewhere meanwhile, and wait when nothing else is usable.
        return {Errc::kPathError, "asymmetric access state transition (NOT READY 04/0A)", WaitForState()};
      case 0x0B:
        return {Errc::kPathError, "target port in standby state (NOT READY 04/0B)", OtherPath()};
      case 0x0C:
        return {Errc::kPathError, "target port unavailable (NOT READY 04/0C)", OtherPath()};
      case 0x12:
        return {Errc::kPathError, "logical unit offline (NOT READY 04/12)", OtherPath()};
      case 0x01:  // becoming ready
      case 0x04:  // format in progress
      case 0x05:  // rebuild in progress
      case 0x06:  // recalculation in progress
      case 0x07:  // operation in progress
      case 0x08:  // long write in progress
      case 0x09:  // self-test in progress
      case 0x14:  // space allocation in progress
      case 0x1A:  // start stop unit in progress
      case 0x1B:  // sanitize in progress
        // LU-wide and temporary: another port would say the same. Linux sd retries these after a delay too.
        return {Errc::kBusy, "logical unit becoming ready or busy with an operation (NOT READY 04/xx)",
                SamePath(kBecomingReadyRetryDelay)};
      case 0x03:
        // Manual intervention: the issue leaves it open. Arrays send it for a fenced or administratively disabled
        // port as well as for a dead LU; failing over costs one bounded round when every port says it, and saves
        // the I/O when only this one does (Linux: BLK_STS_IOERR, a path error for dm-multipath).
      default:
        break;
    }
  }
  if (code.asc == 0x3A) {
    // Medium not present is the LU's state, not the port's.
    return {Errc::kTargetError, "medium not present (NOT READY 3A/xx)", FailUp()};
  }
  // Every other NOT READY (04/00, 04/02, 04/03, 08/xx communication failure...): blk_path_error counts them as path
  // errors; another port may well reach the LU.
  return {Errc::kPathError, "logical unit not ready through this port (NOT READY)", OtherPath()};
}

ScsiVerdict UnitAttention(const spec::SenseCode& code) {
  // The answer that reported the UA also cleared it, and the path driver has handed it to the observer (ALUA refresh,
  // PR bookkeeping) before completing: resend at once on the same path, as Linux does for a UA it did not expect.
  const Decision retry = SamePath(kUnitAttentionRetryDelay);
  switch (code.asc) {
    case 0x29: return {Errc::kBusy, "unit attention: power on, reset or I_T nexus loss (29/xx)", retry};
    case 0x2A:
      switch (code.ascq) {
        case 0x06: return {Errc::kBusy, "unit attention: asymmetric access state changed (2A/06)", retry};
        case 0x03:
        case 0x05: return {Errc::kBusy, "unit attention: reservations or registrations preempted (2A/03, 2A/05)", retry};
        default: return {Errc::kBusy, "unit attention: parameters changed (2A/xx)", retry};
      }
    case 0x3F: return {Errc::kBusy, "unit attention: inquiry or LUN data changed (3F/xx)", retry};
    default: return {Errc::kBusy, "unit attention", retry};
  }
}

ScsiVerdict IllegalRequest(const spec::SenseCode& code) {
  switch (code.asc) {
    case 0x25:
      // LOGICAL UNIT NOT SUPPORTED. Departs from "ILLEGAL REQUEST, any ASC, fails up": this one says the LU is not
      // mapped behind this target port (LUN masking, a port being reconfigured), and the reference map has
      // multipathd treat 05/25/00 as a disconnected path. A LU gone from every port costs one bounded failover round.
      return {Errc::kPathError, "logical unit not supported through this port (ILLEGAL REQUEST 25/00)", OtherPath()};
    case 0x20:
      return {Errc::kUnsupported, "command not supported by the target (ILLEGAL REQUEST 20/00)", FailUp()};
    case 0x21:
      return {Errc::kOutOfRange, "logical block address out of range (ILLEGAL REQUEST 21/00)", FailUp()};
    default:
      return {Errc::kTargetError, "rejected by the target (ILLEGAL REQUEST)", FailUp()};
  }
}

ScsiVerdict CheckCondition(const ScsiOutcome& o) {
  if (o.sense_unparseable) {
    // The raw status keeps what little we know (flags); nothing in it may be trusted enough to route on.
    return {Errc::kTargetError, "CHECK CONDITION with unparseable sense data", FailUp()};
  }
  if (!o.sense_parsed) {
    // A target that says CHECK CONDITION and gives no reason is malformed in the same way.
    return {Errc::kTargetError, "CHECK CONDITION without sense data", FailUp()};
  }
  const spec::SenseCode& code = o.sense;
  std::optional<ScsiVerdict> current;
  switch (code.key) {
    case SenseKey::kRecoveredError:
      return {Errc::kOk, "", Success()};
    case SenseKey::kCompleted:
      // SPC-5: the command completed; the sense is informational (ATA passthrough with CK_COND, for one).
      return {Errc::kOk, "", Success()};
    case SenseKey::kNoSense:
      // Not an error the target explains, and nothing moved: a bounded resend, as Linux's error handler does.
      current = {Errc::kTargetError, "CHECK CONDITION with NO SENSE", SamePath(kAbortedCommandRetryDelay)};
      break;
    case SenseKey::kNotReady:
      current = NotReady(code);
      break;
    case SenseKey::kUnitAttention:
      current = UnitAttention(code);
      break;
    case SenseKey::kMediumError:
      current = {Errc::kMediumError, "medium error", FailUp()};
      break;
    case SenseKey::kHardwareError:
      current = {Errc::kTargetError, "hardware error in the target", FailUp()};
      break;
    case SenseKey::kIllegalRequest:
      current = IllegalRequest(code);
      break;
    case SenseKey::kDataProtect:
      if (code.asc == 0x27 && code.ascq == 0x07) {
        // Thin pool exhausted: Linux reports it as BLK_STS_NOSPC.
        current = {Errc::kNoSpace, "space allocation failed (DATA PROTECT 27/07)", FailUp()};
      } else {
        current = {Errc::kProtection, "write protected (DATA PROTECT)", FailUp()};
      }
      break;
    case SenseKey::kAbortedCommand:
      if (code.asc == 0x10) {
        // Protection information check failed: the same bytes would fail again on any path.
        current = {Errc::kProtection, "protection information check failed (ABORTED COMMAND 10/xx)", FailUp()};
      } else {
        // Bounded by HeadOptions::max_same_path_retries; after the last one the core completes the I/O with this
        // status (kAborted), and the application sees it. The classifier cannot count retries itself.
        current = {Errc::kAborted, "aborted by the target (ABORTED COMMAND)", SamePath(kAbortedCommandRetryDelay)};
      }
      break;
    case SenseKey::kMiscompare:
      current = {Errc::kMismatch, "miscompare", FailUp()};
      break;
    case SenseKey::kBlankCheck:
      current = {Errc::kTargetError, "blank check", FailUp()};
      break;
    case SenseKey::kCopyAborted:
      current = {Errc::kTargetError, "copy aborted", FailUp()};
      break;
    case SenseKey::kVolumeOverflow:
      current = {Errc::kTargetError, "volume overflow", FailUp()};
      break;
    case SenseKey::kVendorSpecific:
    default:
      current = {Errc::kTargetError, "CHECK CONDITION with a vendor specific or reserved sense key", FailUp()};
      break;
  }
  if (o.deferred && current->code != Errc::kOk) {
    // A deferred error belongs to an earlier command (a cached write); this one was not executed (SPC-5 §4.4.1.5),
    // so resend it, as Linux's scsi_check_sense does. Its class stays in the IoStatus in case the retries run out.
    return {current->code, "deferred error reported for an earlier command", SamePath(Nanos(0))};
  }
  return *current;
}

// The same classes NeutralTemplate::Classify acts on (classify_test checks that they agree): for statuses the driver
// raised itself, before or without the target.
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
      return SamePath(std::chrono::milliseconds(1));
    default:
      return FailUp();
  }
}

}  // namespace

ScsiVerdict JudgeScsi(const ScsiOutcome& o) {
  if (!o.delivered()) return Undelivered(o.delivery);
  switch (o.status) {
    case Status::kGood:
    case Status::kConditionMet:
      if (o.short_transfer) {
        // The target said GOOD but fewer bytes crossed than the READ/WRITE moves: the transport lost some.
        return {Errc::kPathError, "short data transfer with GOOD status", OtherPath()};
      }
      return {Errc::kOk, "", Success()};
    case Status::kCheckCondition:
      return CheckCondition(o);
    case Status::kBusy:
      return {Errc::kBusy, "target busy (BUSY)", SamePath(kBusyRetryDelay)};
    case Status::kTaskSetFull:
      return {Errc::kBusy, "task set full", SamePath(kBusyRetryDelay)};
    case Status::kAcaActive:
      // mpath never sets NACA, so the ACA belongs to another initiator and ends without us.
      return {Errc::kBusy, "ACA active", SamePath(kBusyRetryDelay)};
    case Status::kReservationConflict:
      // Never failed over: every nexus of this host is registered alike, so another path would conflict too, and
      // failing over would fight a foreign preempt instead of reporting it.
      return {Errc::kReservationConflict, "reservation conflict", FailUp()};
    case Status::kTaskAborted:
      // Another nexus's task management (PREEMPT AND ABORT, CLEAR TASK SET) aborted it; Linux resends it on the same
      // device, the issue asks for another path, which the abort does not follow.
      return {Errc::kAborted, "task aborted by the target (TASK ABORTED)", OtherPath()};
    default:
      // INTERMEDIATE, COMMAND TERMINATED (obsolete) or garbage: nothing to act on.
      return {Errc::kTargetError, "unknown SCSI status", FailUp()};
  }
}

Decision ClassifyScsi(const IoRequest& /*io*/, const IoStatus& status) {
  const std::optional<ScsiOutcome> outcome = DecodeRawStatus(status.raw);
  if (!outcome) return NeutralDecision(status);
  return JudgeScsi(*outcome).decision;
}

}  // namespace mpath::scsi
