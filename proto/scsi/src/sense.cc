#include "mpath/scsi/spec/sense.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "mpath/scsi/transport.h"

namespace mpath::scsi::spec {
namespace {

// The bytes that belong to the sense data: what arrived, cut at ADDITIONAL SENSE LENGTH once byte 7 is there.
// Both formats keep that length in byte 7.
std::span<const std::uint8_t> Bounded(std::span<const std::uint8_t> bytes) {
  constexpr std::size_t kLengthByte = 7;
  if (bytes.size() <= kLengthByte) return bytes;
  const std::size_t announced = kLengthByte + 1 + bytes[kLengthByte];
  return bytes.first(std::min(bytes.size(), announced));
}

SenseData ParseFixed(std::span<const std::uint8_t> b, bool deferred) {
  SenseData out;
  out.format = SenseFormat::kFixed;
  out.deferred = deferred;
  const auto fixed = wire::LoadPadded<FixedSenseData>(std::as_bytes(b));
  out.code.key = static_cast<SenseKey>(fixed.sense_key());
  constexpr std::size_t kAscqEnd = offsetof(FixedSenseData, additional_sense_code_qualifier) + 1;
  if (b.size() >= kAscqEnd) {
    out.code.asc = fixed.additional_sense_code;
    out.code.ascq = fixed.additional_sense_code_qualifier;
    out.has_additional_sense_code = true;
  }
  constexpr std::size_t kInformationEnd = offsetof(FixedSenseData, information) + sizeof(wire::Be32);
  if (fixed.valid() && b.size() >= kInformationEnd) out.information = fixed.information.value();
  return out;
}

SenseData ParseDescriptor(std::span<const std::uint8_t> b, bool deferred) {
  SenseData out;
  out.format = SenseFormat::kDescriptor;
  out.deferred = deferred;
  const auto header = wire::LoadPadded<DescriptorSenseHeader>(std::as_bytes(b));
  out.code.key = static_cast<SenseKey>(wire::GetBits<3, 0>(header.sense_key));
  constexpr std::size_t kAscqEnd = offsetof(DescriptorSenseHeader, additional_sense_code_qualifier) + 1;
  if (b.size() >= kAscqEnd) {
    out.code.asc = header.additional_sense_code;
    out.code.ascq = header.additional_sense_code_qualifier;
    out.has_additional_sense_code = true;
  }
  // Descriptors follow the header; one that does not fit whole in the bounded bytes is ignored, and so is
  // everything after it, since its length cannot be trusted to find the next.
  std::size_t offset = sizeof(DescriptorSenseHeader);
  while (offset < b.size() && b.size() - offset >= sizeof(SenseDescriptorHeader)) {
    const auto d = *wire::Load<SenseDescriptorHeader>(std::as_bytes(b), offset);
    const std::size_t length = sizeof(SenseDescriptorHeader) + d.additional_length;
    if (length > b.size() - offset) break;
    if (d.descriptor_type == kInformationDescriptor && length >= sizeof(InformationSenseDescriptor) &&
        !out.information) {
      const auto info = *wire::Load<InformationSenseDescriptor>(std::as_bytes(b), offset);
      if (wire::GetBit<7>(info.valid)) out.information = info.information.value();
    }
    offset += length;
  }
  return out;
}

}  // namespace

std::string_view SenseParseErrorName(SenseParseError error) {
  switch (error) {
    case SenseParseError::kEmpty: return "no sense data";
    case SenseParseError::kUnknownResponseCode: return "unknown sense response code";
    case SenseParseError::kTooShort: return "sense data ends before the sense key";
    default: return "unknown sense parse error";
  }
}

std::expected<SenseData, SenseParseError> ParseSense(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return std::unexpected(SenseParseError::kEmpty);
  const auto b = Bounded(bytes);
  switch (static_cast<SenseResponseCode>(wire::GetBits<6, 0>(b[0]))) {
    case SenseResponseCode::kFixedCurrent:
    case SenseResponseCode::kFixedDeferred: {
      constexpr std::size_t kKeyEnd = offsetof(FixedSenseData, flags_and_key) + 1;
      if (b.size() < kKeyEnd) return std::unexpected(SenseParseError::kTooShort);
      return ParseFixed(b, wire::GetBits<6, 0>(b[0]) == static_cast<std::uint8_t>(SenseResponseCode::kFixedDeferred));
    }
    case SenseResponseCode::kDescriptorCurrent:
    case SenseResponseCode::kDescriptorDeferred: {
      constexpr std::size_t kKeyEnd = offsetof(DescriptorSenseHeader, sense_key) + 1;
      if (b.size() < kKeyEnd) return std::unexpected(SenseParseError::kTooShort);
      return ParseDescriptor(
          b, wire::GetBits<6, 0>(b[0]) == static_cast<std::uint8_t>(SenseResponseCode::kDescriptorDeferred));
    }
    default: return std::unexpected(SenseParseError::kUnknownResponseCode);
  }
}

std::expected<SenseData, SenseParseError> ParseSense(std::span<const std::byte> bytes) {
  return ParseSense(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

std::size_t BuildSense(std::span<std::uint8_t> out, SenseFormat format, SenseCode code, const SenseOptions& options) {
  return BuildSense(std::as_writable_bytes(out), format, code, options);
}

std::size_t BuildSense(std::span<std::byte> out, SenseFormat format, SenseCode code, const SenseOptions& options) {
  const auto key = static_cast<std::uint8_t>(code.key);
  if (format == SenseFormat::kFixed) {
    FixedSenseData s{};
    const bool info_fits = options.information && *options.information <= 0xFFFF'FFFFu;
    auto response = options.deferred ? SenseResponseCode::kFixedDeferred : SenseResponseCode::kFixedCurrent;
    s.response = wire::SetBit<7>(static_cast<std::uint8_t>(response), info_fits);
    s.flags_and_key = wire::SetBits<3, 0>(std::uint8_t{0}, key);
    if (info_fits) s.information = static_cast<std::uint32_t>(*options.information);
    s.additional_sense_length = sizeof(FixedSenseData) - 8;
    s.additional_sense_code = code.asc;
    s.additional_sense_code_qualifier = code.ascq;
    wire::Store(out, s);
    return sizeof(s);
  }
  DescriptorSenseHeader h{};
  auto response = options.deferred ? SenseResponseCode::kDescriptorDeferred : SenseResponseCode::kDescriptorCurrent;
  h.response = static_cast<std::uint8_t>(response);
  h.sense_key = wire::SetBits<3, 0>(std::uint8_t{0}, key);
  h.additional_sense_code = code.asc;
  h.additional_sense_code_qualifier = code.ascq;
  std::size_t length = sizeof(h);
  if (options.information) {
    InformationSenseDescriptor info{};
    info.valid = wire::SetBit<7>(std::uint8_t{0}, true);
    info.information = *options.information;
    wire::Store(out, info, length);
    length += sizeof(info);
  }
  h.additional_sense_length = static_cast<std::uint8_t>(length - sizeof(h));
  wire::Store(out, h);
  return length;
}

void WriteSense(ScsiCommand& command, SenseFormat format, SenseCode code, const SenseOptions& options) {
  const std::size_t length = BuildSense(std::span<std::uint8_t>(command.sense), format, code, options);
  command.sense_length = static_cast<std::uint8_t>(std::min(length, command.sense.size()));
}

void SetCheckCondition(ScsiCommand& command, SenseFormat format, SenseCode code, const SenseOptions& options) {
  command.status = static_cast<std::uint8_t>(Status::kCheckCondition);
  WriteSense(command, format, code, options);
}

}  // namespace mpath::scsi::spec
