#include "mpath/nvme/raw_status.h"

#include <fmt/format.h>

#include <iterator>

#include "mpath/nvme/classify.h"
#include "mpath/nvme/spec/opcodes.h"
#include "mpath/nvme/spec/status.h"

namespace mpath::nvme {
namespace {

std::string_view UndeliveredText(Delivery delivery) {
  switch (delivery) {
    case Delivery::kLinkDown: return "link down";
    case Delivery::kTimedOut: return "timed out";
    case Delivery::kAborted: return "aborted by the transport";
    case Delivery::kDelivered:
    default: return {};
  }
}

// How a description names the status code type before the code itself: "path 0x302".
std::string_view SctShortName(std::uint8_t sct) {
  switch (sct) {
    case spec::kSctGeneric: return "generic";
    case spec::kSctCommandSpecific: return "command specific";
    case spec::kSctMediaError: return "media";
    case spec::kSctPathRelated: return "path";
    case spec::kSctVendor: return "vendor";
    default: return "reserved SCT";
  }
}

std::string OpcodeName(bool admin, std::uint8_t opcode) {
  const std::string_view name = admin ? spec::Name(static_cast<spec::AdminOpcode>(opcode))
                                      : spec::Name(static_cast<spec::IoOpcode>(opcode));
  std::string out = name == "unknown" ? fmt::format("opcode 0x{:02X}", opcode) : std::string(name);
  if (admin) out += " (admin)";
  return out;
}

}  // namespace

NvmeOutcome OutcomeOf(const NvmeCommand& command, const RetryDelayTimes& delays) {
  NvmeOutcome outcome;
  outcome.delivery = command.delivery;
  outcome.admin = command.queue == QueueKind::kAdmin;
  outcome.opcode = command.sqe.opc;
  // A command the transport failed has no CQE worth reading: whatever sits there is stale or the transport's filler.
  if (!outcome.delivered()) return outcome;
  const spec::Status status = command.cqe.status();
  outcome.sct = status.sct();
  outcome.sc = status.sc();
  outcome.dnr = status.dnr();
  outcome.more = status.more();
  outcome.crd = status.crd();
  if (outcome.crd != 0) outcome.retry_delay_100ms = delays[outcome.crd - 1];
  return outcome;
}

RawStatus EncodeRawStatus(const NvmeOutcome& outcome) {
  RawStatus raw;
  raw.family = kNvmeStatusFamily;
  raw.bytes[0] = static_cast<std::uint8_t>(outcome.delivery);
  std::uint8_t flags = outcome.admin ? nvme_raw_flags::kAdminQueue : 0;
  if (outcome.delivered()) {
    raw.bytes[1] = outcome.sct;
    raw.bytes[2] = outcome.sc;
    if (outcome.dnr) flags |= nvme_raw_flags::kDoNotRetry;
    if (outcome.more) flags |= nvme_raw_flags::kMore;
    flags |= static_cast<std::uint8_t>((outcome.crd & 0x3u) << nvme_raw_flags::kCrdShift);
    raw.bytes[5] = static_cast<std::uint8_t>(outcome.retry_delay_100ms & 0xFF);
    raw.bytes[6] = static_cast<std::uint8_t>(outcome.retry_delay_100ms >> 8);
  }
  raw.bytes[3] = flags;
  raw.bytes[4] = outcome.opcode;
  return raw;
}

std::optional<NvmeOutcome> DecodeRawStatus(const RawStatus& raw) {
  if (raw.family != kNvmeStatusFamily) return std::nullopt;
  NvmeOutcome outcome;
  outcome.delivery = static_cast<Delivery>(raw.bytes[0]);
  const std::uint8_t flags = raw.bytes[3];
  outcome.admin = (flags & nvme_raw_flags::kAdminQueue) != 0;
  outcome.opcode = raw.bytes[4];
  if (!outcome.delivered()) return outcome;
  // Kept as stored, even a value no CQE can hold (SCT above 7): the classifier judges it as reserved.
  outcome.sct = raw.bytes[1];
  outcome.sc = raw.bytes[2];
  outcome.dnr = (flags & nvme_raw_flags::kDoNotRetry) != 0;
  outcome.more = (flags & nvme_raw_flags::kMore) != 0;
  outcome.crd = static_cast<std::uint8_t>((flags >> nvme_raw_flags::kCrdShift) & 0x3u);
  outcome.retry_delay_100ms = static_cast<std::uint16_t>(raw.bytes[5] | raw.bytes[6] << 8);
  return outcome;
}

std::string StatusName(std::uint8_t sct, std::uint8_t sc) {
  // The three ANA statuses are what an operator meets most; they get the short names nvme-cli and the kernel print.
  if (sct == spec::kSctPathRelated) {
    switch (static_cast<spec::PathStatus>(sc)) {
      case spec::PathStatus::kAsymmetricAccessPersistentLoss: return "ANA Persistent Loss";
      case spec::PathStatus::kAsymmetricAccessInaccessible: return "ANA Inaccessible";
      case spec::PathStatus::kAsymmetricAccessTransition: return "ANA Transition";
      default: break;
    }
  }
  if (sct <= 0x7) {
    const std::string_view name = spec::StatusName(spec::Status::Of(sct, sc));
    if (name != "unknown") return std::string(name);
    return fmt::format("status 0x{:X}{:02X}", sct, sc);
  }
  return fmt::format("status SCT 0x{:02X} SC 0x{:02X}", sct, sc);
}

std::string DescribeRawStatus(const RawStatus& raw) {
  const std::optional<NvmeOutcome> decoded = DecodeRawStatus(raw);
  if (!decoded) {
    if (raw.family == 0) return "no device status";
    return fmt::format("not an NVMe status (family 0x{:02X})", raw.family);
  }
  const NvmeOutcome& o = *decoded;
  const std::string op = OpcodeName(o.admin, o.opcode);
  if (!o.delivered()) {
    const std::string_view text = UndeliveredText(o.delivery);
    if (text.empty()) return fmt::format("undelivered (delivery {}) on {}", static_cast<unsigned>(o.delivery), op);
    return fmt::format("{} on {}", text, op);
  }
  std::string out = StatusName(o.sct, o.sc);
  if (o.sct <= 0x7) {
    fmt::format_to(std::back_inserter(out), " ({} 0x{:03X}", SctShortName(o.sct), o.code());
  } else {
    out += " (reserved SCT";
  }
  if (o.dnr) out += ", DNR";
  // More is left out: it points at the Error Information log, which mpath does not read. The raw status keeps it.
  if (o.crd != 0) {
    fmt::format_to(std::back_inserter(out), ", CRD {}: retry after {} ms", o.crd,
                   static_cast<unsigned>(o.retry_delay_100ms) * 100u);
  }
  fmt::format_to(std::back_inserter(out), ") on {}", op);
  return out;
}

IoStatus ToIoStatus(const NvmeOutcome& outcome) {
  const NvmeVerdict verdict = JudgeNvme(outcome);
  return IoStatus{verdict.code, EncodeRawStatus(outcome), verdict.context};
}

}  // namespace mpath::nvme
