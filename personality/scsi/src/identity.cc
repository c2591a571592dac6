// VPD 83h: the LU identity and the port designators. Each designator is judged on its own (type, code set, length,
// content) so that one bad designator never hides a good one, and the choice among the good ones depends only on
// their kinds and their order on the page.
#include "mpath/scsi/identity.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>
#include <expected>
#include <string>
#include <string_view>

#include "mpath/scsi/spec/inquiry.h"

namespace mpath::scsi {
namespace {

using spec::Association;
using spec::CodeSet;
using spec::Designator;
using spec::DesignatorReader;
using spec::DesignatorType;

// SPC-5 r19 §7.7.6.6.1 Table 537 "NAA field".
constexpr std::uint8_t kNaaIeeeExtended = 0x2;
constexpr std::uint8_t kNaaLocallyAssigned = 0x3;
constexpr std::uint8_t kNaaIeeeRegistered = 0x5;
constexpr std::uint8_t kNaaIeeeRegisteredExtended = 0x6;

std::string Hex(std::span<const std::byte> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes.size());
  for (std::byte b : bytes) {
    const auto v = std::to_integer<unsigned>(b);
    out.push_back(kDigits[v >> 4]);
    out.push_back(kDigits[v & 0xF]);
  }
  return out;
}

std::string_view CodeSetName(CodeSet code_set) {
  switch (code_set) {
    case CodeSet::kBinary: return "binary";
    case CodeSet::kAscii: return "ASCII";
    case CodeSet::kUtf8: return "UTF-8";
    default: return "reserved";
  }
}

// Well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF) without control characters: a SCSI
// name string is printable text (SPC-5 §7.7.6.11).
bool IsPrintableUtf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7F) return false;
      ++i;
      continue;
    }
    std::size_t extra;
    std::uint32_t code;
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
      code = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      code = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      code = c & 0x07;
    } else {
      return false;
    }
    if (text.size() - i <= extra) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      code = (code << 6) | (cc & 0x3F);
    }
    const bool overlong = (extra == 2 && code < 0x800) || (extra == 3 && code < 0x10000);
    if (overlong || (code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF) return false;
    i += extra + 1;
  }
  return true;
}

struct Candidate {
  IdentityKind kind;
  std::string text;
};

// Why a designator cannot be used, in words for the reason string.
using Judgement = std::expected<Candidate, std::string>;

std::optional<std::string> CodeSetMismatch(const Designator& d, CodeSet wanted, std::string_view what) {
  if (d.header.code_set() == wanted) return std::nullopt;
  return fmt::format("{} with code set {} ({:#x}), not {}", what, CodeSetName(d.header.code_set()),
                     static_cast<unsigned>(d.header.code_set()), CodeSetName(wanted));
}

// SPC-5 r19 §7.7.6.6: the NAA field (high nibble of the first byte) fixes the designator's length.
Judgement JudgeNaa(const Designator& d) {
  if (auto wrong = CodeSetMismatch(d, CodeSet::kBinary, "NAA designator")) return std::unexpected(std::move(*wrong));
  if (d.designator.empty()) return std::unexpected(std::string("empty NAA designator"));
  const auto naa = static_cast<std::uint8_t>(std::to_integer<unsigned>(d.designator[0]) >> 4);
  IdentityKind kind;
  std::size_t length;
  switch (naa) {
    case kNaaIeeeExtended: kind = IdentityKind::kNaaExtended; length = 8; break;
    case kNaaLocallyAssigned: kind = IdentityKind::kNaaLocallyAssigned; length = 8; break;
    case kNaaIeeeRegistered: kind = IdentityKind::kNaaRegistered; length = 8; break;
    case kNaaIeeeRegisteredExtended: kind = IdentityKind::kNaaRegisteredExtended; length = 16; break;
    default: return std::unexpected(fmt::format("NAA designator of reserved NAA type {:#x}", naa));
  }
  if (d.designator.size() != length) {
    return std::unexpected(fmt::format("NAA type {} designator of {} bytes; the type has {}", naa,
                                       d.designator.size(), length));
  }
  return Candidate{kind, "naa." + Hex(d.designator)};
}

// SPC-5 r19 §7.7.6.5: EUI-64 based designators are 8, 12 or 16 bytes.
Judgement JudgeEui64(const Designator& d) {
  if (auto wrong = CodeSetMismatch(d, CodeSet::kBinary, "EUI-64 designator")) return std::unexpected(std::move(*wrong));
  const std::size_t n = d.designator.size();
  if (n != 8 && n != 12 && n != 16) {
    return std::unexpected(fmt::format("EUI-64 designator of {} bytes; EUI-64 has 8, 12 or 16", n));
  }
  return Candidate{IdentityKind::kEui64, "eui." + Hex(d.designator)};
}

// SPC-5 r19 §7.7.6.11: NUL terminated and NUL padded; the text ends at the first NUL.
std::expected<std::string, std::string> NameStringText(const Designator& d) {
  if (auto wrong = CodeSetMismatch(d, CodeSet::kUtf8, "SCSI name string")) return std::unexpected(std::move(*wrong));
  std::string_view text(reinterpret_cast<const char*>(d.designator.data()), d.designator.size());
  text = text.substr(0, text.find('\0'));
  if (text.empty()) return std::unexpected(std::string("empty SCSI name string"));
  if (!IsPrintableUtf8(text)) return std::unexpected(std::string("SCSI name string that is not printable UTF-8"));
  return std::string(text);
}

Judgement JudgeScsiName(const Designator& d) {
  auto text = NameStringText(d);
  if (!text) return std::unexpected(std::move(text).error());
  return Candidate{IdentityKind::kScsiNameString, std::move(*text)};
}

// SPC-5 r19 §7.7.6.4: an 8-byte T10 VENDOR IDENTIFICATION, then a vendor specific identifier. Linux prints it as
// sent; trailing NULs are terminators some targets add (LIO), not part of the name.
Judgement JudgeT10(const Designator& d) {
  if (auto wrong = CodeSetMismatch(d, CodeSet::kAscii, "T10 vendor ID designator")) {
    return std::unexpected(std::move(*wrong));
  }
  std::string_view text = d.Text();
  if (text.size() < 8) {
    return std::unexpected(fmt::format("T10 vendor ID designator of {} bytes; its vendor field alone has 8",
                                       text.size()));
  }
  for (char c : text) {
    if (c < 0x20 || c > 0x7E) return std::unexpected(std::string("T10 vendor ID designator with non-printable bytes"));
  }
  return Candidate{IdentityKind::kT10VendorId, "t10." + std::string(text)};
}

// nullopt: a designator type that never names the LU for multipath (vendor specific, MD5, UUID, LU group...).
std::optional<Judgement> JudgeLuDesignator(const Designator& d) {
  switch (d.header.designator_type()) {
    case DesignatorType::kNaa: return JudgeNaa(d);
    case DesignatorType::kEui64: return JudgeEui64(d);
    case DesignatorType::kScsiNameString: return JudgeScsiName(d);
    case DesignatorType::kT10VendorId: return JudgeT10(d);
    default: return std::nullopt;
  }
}

Result<DesignatorReader> OpenPage(std::span<const std::byte> page) {
  DesignatorReader reader(page);
  if (!reader.valid()) {
    if (page.size() < sizeof(spec::VpdPageHeader)) {
      return MakeError(Errc::kTargetError,
                       fmt::format("VPD page 83h reply of {} bytes is shorter than the page header", page.size()));
    }
    return MakeError(Errc::kTargetError, fmt::format("VPD page {:02x}h received where page 83h was expected",
                                                     std::to_integer<unsigned>(page[1])));
  }
  return reader;
}

std::string TruncationNote(std::span<const std::byte> page, std::size_t whole_designators) {
  const auto header = *wire::Load<spec::VpdPageHeader>(page);
  const std::size_t announced = sizeof(spec::VpdPageHeader) + header.page_length.value();
  return fmt::format("the page is cut after {} whole designators ({} bytes received, PAGE LENGTH announces {})",
                     whole_designators, page.size(), announced);
}

// Removes an iSCSI target port name's ",t,0x<TPGT in hex>" (RFC 7143 §13.2 via SPC-5 §7.7.6.11) to leave the
// target's own name, shared by all its ports.
std::string WithoutPortSuffix(std::string name) {
  constexpr std::string_view kSuffix = ",t,0x";
  const std::size_t at = name.rfind(kSuffix);
  if (at == std::string::npos || at == 0) return name;
  const std::string_view tpgt = std::string_view(name).substr(at + kSuffix.size());
  if (tpgt.empty()) return name;
  for (char c : tpgt) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return name;
  }
  name.resize(at);
  return name;
}

// The 16-bit identifier of a relative target port or target port group designator: binary, 4 bytes.
std::optional<std::uint16_t> PortIdentifier(const Designator& d) {
  if (d.header.code_set() != CodeSet::kBinary || d.designator.size() != 4) return std::nullopt;
  return d.PortOrGroupIdentifier();
}

}  // namespace

std::string_view Name(IdentityKind kind) {
  switch (kind) {
    case IdentityKind::kNaaRegisteredExtended: return "NAA IEEE Registered Extended";
    case IdentityKind::kNaaRegistered: return "NAA IEEE Registered";
    case IdentityKind::kNaaExtended: return "NAA IEEE Extended";
    case IdentityKind::kNaaLocallyAssigned: return "NAA Locally Assigned";
    case IdentityKind::kEui64: return "EUI-64";
    case IdentityKind::kScsiNameString: return "SCSI name string";
    case IdentityKind::kT10VendorId: return "T10 vendor ID";
    case IdentityKind::kNone: return "none";
    default: return "unknown";
  }
}

Result<LuIdentity> ParseLuIdentity(std::span<const std::byte> page) {
  DesignatorReader reader = MPATH_TRY(OpenPage(page));
  std::optional<Candidate> best;
  std::size_t best_index = 0;
  std::vector<std::string> notes;      // skipped designators, in page order
  std::vector<std::string> conflicts;  // differing designators of the chosen kind
  std::size_t index = 0;
  std::size_t port_or_device = 0;
  while (auto d = reader.Next()) {
    ++index;
    const Association association = d->header.association();
    if (association == Association::kTargetPort || association == Association::kTargetDevice) {
      ++port_or_device;
      continue;
    }
    if (association != Association::kLogicalUnit) {
      notes.push_back(fmt::format("descriptor {} skipped: reserved association 11b", index));
      continue;
    }
    std::optional<Judgement> judged = JudgeLuDesignator(*d);
    if (!judged) {
      notes.push_back(fmt::format("descriptor {} skipped: designator type {:#x} does not name the LU", index,
                                  static_cast<unsigned>(d->header.designator_type())));
      continue;
    }
    if (!*judged) {
      notes.push_back(fmt::format("descriptor {} skipped: {}", index, judged->error()));
      continue;
    }
    Candidate& c = **judged;
    if (!best || c.kind < best->kind) {
      best = std::move(c);
      best_index = index;
      conflicts.clear();
    } else if (c.kind == best->kind && c.text != best->text) {
      conflicts.push_back(fmt::format("descriptor {} ({})", index, c.text));
    }
  }

  std::string trailer;
  for (const std::string& note : notes) trailer += "; " + note;
  if (reader.truncated()) trailer += "; " + TruncationNote(page, index);

  if (!best) {
    std::string why;
    if (index == 0) {
      why = reader.truncated() ? "no designator arrived whole" : "the page carries no designators";
    } else if (index == port_or_device) {
      why = fmt::format("only target port or target device designators ({})", port_or_device);
    } else {
      why = fmt::format("{} designators read", index);
    }
    return MakeError(Errc::kNotFound,
                     fmt::format("VPD page 83h has no usable logical unit designator: {}{}", why, trailer));
  }

  LuIdentity out;
  out.kind = best->kind;
  out.conflict = !conflicts.empty();
  out.truncated = reader.truncated();
  out.reason = fmt::format("{} designator, descriptor {}", Name(best->kind), best_index);
  if (out.conflict) {
    out.reason += fmt::format("; conflicting {} designators: {}; the first is used", Name(best->kind),
                              fmt::join(conflicts, ", "));
  }
  out.reason += trailer;
  out.identity = DeviceIdentity(std::move(best->text));
  return out;
}

Result<TargetPortInfo> ParseTargetPortInfo(std::span<const std::byte> page) {
  DesignatorReader reader = MPATH_TRY(OpenPage(page));
  TargetPortInfo out;
  std::optional<std::string> port_name, device_name, device_naa, port_naa;
  auto keep_first = [](auto& slot, auto value) {
    if (!slot && value) slot = std::move(value);
  };
  while (auto d = reader.Next()) {
    const Association association = d->header.association();
    if (association != Association::kTargetPort && association != Association::kTargetDevice) continue;
    const bool port = association == Association::kTargetPort;
    switch (d->header.designator_type()) {
      case DesignatorType::kRelativeTargetPort:
        if (port) keep_first(out.relative_target_port, PortIdentifier(*d));
        break;
      case DesignatorType::kTargetPortGroup:
        if (port) keep_first(out.target_port_group, PortIdentifier(*d));
        break;
      case DesignatorType::kScsiNameString: {
        auto text = NameStringText(*d);
        if (!text) break;
        if (port) {
          keep_first(port_name, std::optional<std::string>(WithoutPortSuffix(std::move(*text))));
        } else {
          keep_first(device_name, std::optional<std::string>(std::move(*text)));
        }
        break;
      }
      case DesignatorType::kNaa: {
        auto naa = JudgeNaa(*d);
        if (!naa) break;
        keep_first(port ? port_naa : device_naa, std::optional<std::string>(std::move(naa->text)));
        break;
      }
      default: break;
    }
  }
  for (auto* name : {&port_name, &device_name, &device_naa, &port_naa}) {
    if (*name) {
      out.target_name = std::move(**name);
      break;
    }
  }
  return out;
}

}  // namespace mpath::scsi
