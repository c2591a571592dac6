// Standard INQUIRY, READ CAPACITY and the small VPD pages, and the DeviceInfo the core attaches. Short replies are
// normal (an allocation length, an old target), so every field is read only when all of its bytes arrived inside
// the length the device declared.
#include <fmt/format.h>

#include <cstddef>
#include <limits>
#include <string>

#include "mpath/scsi/identity.h"
#include "mpath/scsi/spec/inquiry.h"
#include "mpath/scsi/spec/sbc_cdb.h"

namespace mpath::scsi {
namespace {

// SPC-5 r19 §6.6.2: ADDITIONAL LENGTH counts the bytes after byte 4.
constexpr std::size_t kInquiryHeaderBytes = 5;

template <std::size_t N>
std::optional<std::string> TextField(const char (&field)[N], std::size_t offset, std::size_t usable) {
  if (usable < offset + N) return std::nullopt;
  std::string text;
  text.reserve(N);
  for (char c : field) text.push_back(c == '\0' || (c >= 0x20 && c <= 0x7E) ? c : '?');
  const std::size_t first = text.find_first_not_of(std::string_view(" \0", 2));
  if (first == std::string::npos) return std::string();
  const std::size_t last = text.find_last_not_of(std::string_view(" \0", 2));
  return text.substr(first, last - first + 1);
}

// The bytes of a VPD page that belong to it: those received, cut at PAGE LENGTH.
Result<std::span<const std::byte>> VpdPage(std::span<const std::byte> page, std::uint8_t expected, const char* name) {
  const auto header = wire::Load<spec::VpdPageHeader>(page);
  if (!header) {
    return MakeError(Errc::kTargetError, fmt::format("{} VPD page ({:02x}h) reply of {} bytes is shorter than the "
                                                     "page header",
                                                     name, expected, page.size()));
  }
  if (header->page_code != expected) {
    return MakeError(Errc::kTargetError, fmt::format("VPD page {:02x}h received where page {:02x}h ({}) was expected",
                                                     header->page_code, expected, name));
  }
  return page.first(std::min(page.size(), sizeof(spec::VpdPageHeader) + header->page_length.value()));
}

Result<Capacity> MakeCapacity(std::uint64_t last_lba, std::uint32_t block_size, const char* command) {
  if (block_size == 0) {
    return MakeError(Errc::kTargetError, fmt::format("{} reports a logical block length of 0", command));
  }
  if (last_lba == std::numeric_limits<std::uint64_t>::max() ||
      last_lba + 1 > std::numeric_limits<std::uint64_t>::max() / block_size) {
    return MakeError(Errc::kTargetError,
                     fmt::format("{} reports {:#x} as the last LBA with {}-byte blocks: more bytes than 64 bits hold",
                                 command, last_lba, block_size));
  }
  return Capacity{last_lba + 1, block_size};
}

}  // namespace

Result<InquirySummary> ParseStandardInquiry(std::span<const std::byte> data) {
  if (data.empty()) return MakeError(Errc::kTargetError, "standard INQUIRY returned no data");
  const auto d = wire::LoadPadded<spec::StandardInquiryData>(data);
  InquirySummary out;
  out.length = data.size();
  if (data.size() >= kInquiryHeaderBytes) {
    out.length = std::min(data.size(), kInquiryHeaderBytes + d.additional_length);
  }
  out.peripheral_qualifier = d.peripheral_qualifier();
  out.peripheral_device_type = d.peripheral_device_type();
  if (out.length > offsetof(spec::StandardInquiryData, version)) out.version = d.version;
  if (out.length > offsetof(spec::StandardInquiryData, flags5)) out.tpgs = d.tpgs();
  out.vendor = TextField(d.t10_vendor_identification, offsetof(spec::StandardInquiryData, t10_vendor_identification),
                         out.length);
  out.product = TextField(d.product_identification, offsetof(spec::StandardInquiryData, product_identification),
                          out.length);
  out.revision = TextField(d.product_revision_level, offsetof(spec::StandardInquiryData, product_revision_level),
                           out.length);
  return out;
}

Result<void> CheckBlockDevice(const InquirySummary& inquiry) {
  if (inquiry.peripheral_qualifier != spec::kPeripheralQualifierConnected) {
    return MakeError(Errc::kNotFound,
                     fmt::format("no logical unit is connected at this LUN (peripheral qualifier {:03b}b)",
                                 inquiry.peripheral_qualifier));
  }
  if (inquiry.peripheral_device_type != spec::kDeviceTypeDirectAccessBlock) {
    return MakeError(Errc::kUnsupported,
                     fmt::format("peripheral device type {:#04x} is not a direct access block device",
                                 inquiry.peripheral_device_type));
  }
  return {};
}

Result<Capacity> ParseReadCapacity16(std::span<const std::byte> data) {
  constexpr std::size_t kNeeded = offsetof(spec::ReadCapacity16Data, protection);
  if (data.size() < kNeeded) {
    return MakeError(Errc::kTargetError,
                     fmt::format("READ CAPACITY (16) returned {} bytes; the capacity needs {}", data.size(), kNeeded));
  }
  const auto d = wire::LoadPadded<spec::ReadCapacity16Data>(data);
  return MakeCapacity(d.returned_logical_block_address.value(), d.logical_block_length_in_bytes.value(),
                      "READ CAPACITY (16)");
}

Result<Capacity> ParseReadCapacity10(std::span<const std::byte> data) {
  const auto d = wire::Load<spec::ReadCapacity10Data>(data);
  if (!d) {
    return MakeError(Errc::kTargetError, fmt::format("READ CAPACITY (10) returned {} bytes; the capacity needs {}",
                                                     data.size(), sizeof(spec::ReadCapacity10Data)));
  }
  if (d->returned_logical_block_address.value() == 0xFFFF'FFFFu) {
    return MakeError(Errc::kUnsupported, "READ CAPACITY (10) says the capacity needs READ CAPACITY (16)");
  }
  return MakeCapacity(d->returned_logical_block_address.value(), d->logical_block_length_in_bytes.value(),
                      "READ CAPACITY (10)");
}

Result<std::vector<std::uint8_t>> ParseSupportedVpdPages(std::span<const std::byte> page) {
  const auto bytes = MPATH_TRY(VpdPage(page, spec::vpd::kSupportedPages, "Supported VPD Pages"));
  std::vector<std::uint8_t> pages;
  pages.reserve(bytes.size() - sizeof(spec::VpdPageHeader));
  for (std::byte b : bytes.subspan(sizeof(spec::VpdPageHeader))) pages.push_back(std::to_integer<std::uint8_t>(b));
  return pages;
}

Result<BlockLimits> ParseBlockLimits(std::span<const std::byte> page) {
  const auto bytes = MPATH_TRY(VpdPage(page, spec::vpd::kBlockLimits, "Block Limits"));
  // Zero-filled past the bounded bytes: SBC-4 gives 0 the meaning "no limit reported" for every field used here.
  const auto p = wire::LoadPadded<spec::BlockLimitsVpdPage>(bytes);
  return BlockLimits{
      .max_transfer_blocks = p.maximum_transfer_length.value(),
      .optimal_transfer_blocks = p.optimal_transfer_length.value(),
      .max_unmap_blocks = p.maximum_unmap_lba_count.value(),
      .max_unmap_descriptors = p.maximum_unmap_block_descriptor_count.value(),
      .max_write_same_blocks = p.maximum_write_same_length.value(),
  };
}

Result<DeviceDescription> DescribeDevice(std::span<const std::byte> inquiry, std::span<const std::byte> vpd83,
                                         std::span<const std::byte> read_capacity16) {
  DeviceDescription out;
  out.inquiry = MPATH_TRY(ParseStandardInquiry(inquiry));
  MPATH_TRY(CheckBlockDevice(out.inquiry));
  if (auto identity = ParseLuIdentity(vpd83)) {
    out.identity = std::move(*identity);
  } else if (identity.error().code() == Errc::kNotFound) {
    out.identity.reason = identity.error().message();
  } else {
    return std::unexpected(std::move(identity).error());
  }
  out.port = MPATH_TRY(ParseTargetPortInfo(vpd83));
  const Capacity capacity = MPATH_TRY(ParseReadCapacity16(read_capacity16));
  out.info.identity = out.identity.identity;
  out.info.reports_access_states = out.inquiry.reports_access_states();
  out.info.capacity_bytes = capacity.bytes();
  out.info.block_size = capacity.block_size;
  return out;
}

}  // namespace mpath::scsi
