#include "mpath/scsi/raw_status.h"

#include <fmt/format.h>

#include <algorithm>
#include <span>

#include "mpath/scsi/classify.h"
#include "mpath/scsi/spec/sense.h"
#include "mpath/scsi/spec/spc_cdb.h"

namespace mpath::scsi {
namespace {

using spec::SenseKey;
using spec::Status;

struct AscName {
  std::uint8_t asc;
  std::uint8_t ascq;
  std::string_view text;
};

// SPC-5 r19 Annex F.2 (Table F.2), in the words an operator reads in a log: the codes the classifier treats by name
// and the ones targets commonly send with them.
constexpr AscName kAscNames[] = {
    {0x04, 0x00, "logical unit not ready, cause not reportable"},
    {0x04, 0x01, "logical unit becoming ready"},
    {0x04, 0x02, "initializing command required"},
    {0x04, 0x03, "manual intervention required"},
    {0x04, 0x04, "format in progress"},
    {0x04, 0x05, "rebuild in progress"},
    {0x04, 0x06, "recalculation in progress"},
    {0x04, 0x07, "operation in progress"},
    {0x04, 0x08, "long write in progress"},
    {0x04, 0x09, "self-test in progress"},
    {0x04, 0x0A, "asymmetric access state transition"},
    {0x04, 0x0B, "target port in standby state"},
    {0x04, 0x0C, "target port in unavailable state"},
    {0x04, 0x12, "logical unit offline"},
    {0x04, 0x14, "space allocation in progress"},
    {0x04, 0x1A, "start stop unit command in progress"},
    {0x04, 0x1B, "sanitize in progress"},
    {0x08, 0x00, "logical unit communication failure"},
    {0x10, 0x01, "logical block guard check failed"},
    {0x10, 0x02, "logical block application tag check failed"},
    {0x10, 0x03, "logical block reference tag check failed"},
    {0x11, 0x00, "unrecovered read error"},
    {0x1A, 0x00, "parameter list length error"},
    {0x1D, 0x00, "miscompare during verify operation"},
    {0x20, 0x00, "invalid command operation code"},
    {0x21, 0x00, "logical block address out of range"},
    {0x24, 0x00, "invalid field in CDB"},
    {0x25, 0x00, "logical unit not supported"},
    {0x26, 0x00, "invalid field in parameter list"},
    {0x26, 0x04, "invalid release of persistent reservation"},
    {0x27, 0x00, "write protected"},
    {0x27, 0x07, "space allocation failed write protect"},
    {0x29, 0x00, "power on, reset, or bus device reset occurred"},
    {0x29, 0x01, "power on occurred"},
    {0x29, 0x07, "I_T nexus loss occurred"},
    {0x2A, 0x00, "parameters changed"},
    {0x2A, 0x03, "reservations preempted"},
    {0x2A, 0x04, "reservations released"},
    {0x2A, 0x05, "registrations preempted"},
    {0x2A, 0x06, "asymmetric access state changed"},
    {0x2A, 0x07, "implicit asymmetric access state transition failed"},
    {0x2A, 0x09, "capacity data has changed"},
    {0x3A, 0x00, "medium not present"},
    {0x3F, 0x03, "inquiry data has changed"},
    {0x3F, 0x0E, "reported luns data has changed"},
    {0x44, 0x00, "internal target failure"},
    {0x47, 0x00, "SCSI parity error"},
    {0x4B, 0x00, "data phase error"},
    {0x55, 0x04, "insufficient registration resources"},
};

std::string_view UndeliveredText(Delivery delivery) {
  switch (delivery) {
    case Delivery::kLinkDown: return "link down";
    case Delivery::kTimedOut: return "timed out";
    case Delivery::kAborted: return "aborted by the transport";
    case Delivery::kDelivered:
    default: return {};
  }
}

}  // namespace

ScsiOutcome OutcomeOf(const ScsiCommand& command) {
  ScsiOutcome outcome;
  outcome.delivery = command.delivery;
  outcome.opcode = command.cdb_length > 0 ? command.cdb[0] : 0;
  if (!outcome.delivered()) return outcome;
  outcome.status = static_cast<Status>(command.status);
  // sense_length is the transport's claim; the buffer is what exists.
  const std::size_t length = std::min<std::size_t>(command.sense_length, command.sense.size());
  if (length == 0) return outcome;
  const auto parsed = spec::ParseSense(std::span<const std::uint8_t>(command.sense.data(), length));
  if (parsed) {
    outcome.sense_parsed = true;
    outcome.sense = parsed->code;
    outcome.deferred = parsed->deferred;
  } else {
    outcome.sense_unparseable = true;
  }
  return outcome;
}

RawStatus EncodeRawStatus(const ScsiOutcome& outcome) {
  RawStatus raw;
  raw.family = kScsiStatusFamily;
  raw.bytes[0] = static_cast<std::uint8_t>(outcome.delivery);
  raw.bytes[6] = outcome.opcode;
  if (!outcome.delivered()) return raw;
  raw.bytes[1] = static_cast<std::uint8_t>(outcome.status);
  std::uint8_t flags = 0;
  if (outcome.sense_parsed) {
    raw.bytes[2] = static_cast<std::uint8_t>(outcome.sense.key) & 0x0F;
    raw.bytes[3] = outcome.sense.asc;
    raw.bytes[4] = outcome.sense.ascq;
    flags |= raw_flags::kSenseParsed;
    if (outcome.deferred) flags |= raw_flags::kDeferred;
  } else if (outcome.sense_unparseable) {
    flags |= raw_flags::kSenseUnparseable;
  }
  if (outcome.short_transfer) flags |= raw_flags::kShortTransfer;
  raw.bytes[5] = flags;
  return raw;
}

RawStatus EncodeRawStatus(const ScsiCommand& command) { return EncodeRawStatus(OutcomeOf(command)); }

std::optional<ScsiOutcome> DecodeRawStatus(const RawStatus& raw) {
  if (raw.family != kScsiStatusFamily) return std::nullopt;
  ScsiOutcome outcome;
  outcome.delivery = static_cast<Delivery>(raw.bytes[0]);
  outcome.opcode = raw.bytes[6];
  if (!outcome.delivered()) return outcome;
  outcome.status = static_cast<Status>(raw.bytes[1]);
  const std::uint8_t flags = raw.bytes[5];
  if ((flags & raw_flags::kSenseParsed) != 0) {
    outcome.sense_parsed = true;
    outcome.sense = {static_cast<SenseKey>(raw.bytes[2] & 0x0F), raw.bytes[3], raw.bytes[4]};
    outcome.deferred = (flags & raw_flags::kDeferred) != 0;
  } else {
    outcome.sense_unparseable = (flags & raw_flags::kSenseUnparseable) != 0;
  }
  outcome.short_transfer = (flags & raw_flags::kShortTransfer) != 0;
  return outcome;
}

std::string StatusName(Status status) {
  switch (status) {
    case Status::kGood: return "GOOD";
    case Status::kCheckCondition: return "CHECK CONDITION";
    case Status::kConditionMet: return "CONDITION MET";
    case Status::kBusy: return "BUSY";
    case Status::kReservationConflict: return "RESERVATION CONFLICT";
    case Status::kTaskSetFull: return "TASK SET FULL";
    case Status::kAcaActive: return "ACA ACTIVE";
    case Status::kTaskAborted: return "TASK ABORTED";
    default: return fmt::format("status 0x{:02X}", static_cast<unsigned>(status));
  }
}

std::string SenseKeyName(SenseKey key) {
  switch (key) {
    case SenseKey::kNoSense: return "NO SENSE";
    case SenseKey::kRecoveredError: return "RECOVERED ERROR";
    case SenseKey::kNotReady: return "NOT READY";
    case SenseKey::kMediumError: return "MEDIUM ERROR";
    case SenseKey::kHardwareError: return "HARDWARE ERROR";
    case SenseKey::kIllegalRequest: return "ILLEGAL REQUEST";
    case SenseKey::kUnitAttention: return "UNIT ATTENTION";
    case SenseKey::kDataProtect: return "DATA PROTECT";
    case SenseKey::kBlankCheck: return "BLANK CHECK";
    case SenseKey::kVendorSpecific: return "VENDOR SPECIFIC";
    case SenseKey::kCopyAborted: return "COPY ABORTED";
    case SenseKey::kAbortedCommand: return "ABORTED COMMAND";
    case SenseKey::kVolumeOverflow: return "VOLUME OVERFLOW";
    case SenseKey::kMiscompare: return "MISCOMPARE";
    case SenseKey::kCompleted: return "COMPLETED";
    default: return fmt::format("sense key 0x{:X}", static_cast<unsigned>(key));
  }
}

std::string OpcodeName(std::uint8_t opcode) {
  namespace op = spec::op;
  switch (opcode) {
    case op::kTestUnitReady: return "TEST UNIT READY";
    case op::kRequestSense: return "REQUEST SENSE";
    case 0x08: return "READ(6)";
    case 0x0A: return "WRITE(6)";
    case op::kInquiry: return "INQUIRY";
    case op::kModeSelect6: return "MODE SELECT(6)";
    case op::kModeSense6: return "MODE SENSE(6)";
    case 0x1B: return "START STOP UNIT";
    case op::kReceiveDiagnosticResults: return "RECEIVE DIAGNOSTIC RESULTS";
    case op::kSendDiagnostic: return "SEND DIAGNOSTIC";
    case op::kReadCapacity10: return "READ CAPACITY(10)";
    case op::kRead10: return "READ(10)";
    case op::kWrite10: return "WRITE(10)";
    case 0x2E: return "WRITE AND VERIFY(10)";
    case 0x2F: return "VERIFY(10)";
    case op::kSynchronizeCache10: return "SYNCHRONIZE CACHE(10)";
    case op::kWriteSame10: return "WRITE SAME(10)";
    case op::kUnmap: return "UNMAP";
    case op::kLogSelect: return "LOG SELECT";
    case op::kLogSense: return "LOG SENSE";
    case op::kModeSelect10: return "MODE SELECT(10)";
    case op::kModeSense10: return "MODE SENSE(10)";
    case op::kPersistentReserveIn: return "PERSISTENT RESERVE IN";
    case op::kPersistentReserveOut: return "PERSISTENT RESERVE OUT";
    case op::kRead16: return "READ(16)";
    case 0x89: return "COMPARE AND WRITE";
    case op::kWrite16: return "WRITE(16)";
    case 0x8E: return "WRITE AND VERIFY(16)";
    case 0x8F: return "VERIFY(16)";
    case op::kSynchronizeCache16: return "SYNCHRONIZE CACHE(16)";
    case op::kWriteSame16: return "WRITE SAME(16)";
    case op::kServiceActionIn16: return "SERVICE ACTION IN(16)";
    case op::kReportLuns: return "REPORT LUNS";
    case op::kMaintenanceIn: return "MAINTENANCE IN";
    case op::kMaintenanceOut: return "MAINTENANCE OUT";
    default: return fmt::format("opcode 0x{:02X}", opcode);
  }
}

std::string_view AdditionalSenseDescription(std::uint8_t asc, std::uint8_t ascq) {
  for (const AscName& name : kAscNames) {
    if (name.asc == asc && name.ascq == ascq) return name.text;
  }
  return {};
}

std::string DescribeRawStatus(const RawStatus& raw) {
  const std::optional<ScsiOutcome> decoded = DecodeRawStatus(raw);
  if (!decoded) {
    if (raw.family == 0) return "no device status";
    return fmt::format("not a SCSI status (family 0x{:02X})", raw.family);
  }
  const ScsiOutcome& o = *decoded;
  const std::string op = OpcodeName(o.opcode);
  if (!o.delivered()) {
    const std::string_view text = UndeliveredText(o.delivery);
    if (text.empty()) return fmt::format("undelivered (delivery {}) on {}", static_cast<unsigned>(o.delivery), op);
    return fmt::format("{} on {}", text, op);
  }
  std::string out = StatusName(o.status);
  if (o.sense_parsed) {
    fmt::format_to(std::back_inserter(out), ", {}{} {:02X}/{:02X}", o.deferred ? "deferred " : "",
                   SenseKeyName(o.sense.key), o.sense.asc, o.sense.ascq);
    const std::string_view description = AdditionalSenseDescription(o.sense.asc, o.sense.ascq);
    if (!description.empty()) fmt::format_to(std::back_inserter(out), " ({})", description);
  } else if (o.sense_unparseable) {
    out += ", unparseable sense data";
  } else if (o.status == Status::kCheckCondition) {
    out += ", no sense data";
  }
  if (o.short_transfer) out += ", short data transfer";
  fmt::format_to(std::back_inserter(out), " on {}", op);
  return out;
}

IoStatus ToIoStatus(const ScsiOutcome& outcome) {
  const ScsiVerdict verdict = JudgeScsi(outcome);
  return IoStatus{verdict.code, EncodeRawStatus(outcome), verdict.context};
}

IoStatus ToIoStatus(const ScsiCommand& command) { return ToIoStatus(OutcomeOf(command)); }

}  // namespace mpath::scsi
