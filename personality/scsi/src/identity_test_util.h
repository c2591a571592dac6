// Byte builders shared by the identity tests: VPD 83h designators and pages, standard INQUIRY data and READ
// CAPACITY data, written byte by byte as a target sends them, plus the pages NOTES.md recorded from LIO and tgt.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mpath/proto/wire.h"
#include "mpath/scsi/spec/inquiry.h"
#include "mpath/scsi/spec/sbc_cdb.h"

namespace mpath::scsi::testing {

using Bytes = std::vector<std::byte>;
using spec::Association;
using spec::CodeSet;
using spec::DesignatorType;
using spec::Piv;

// resize + memcpy rather than insert: g++ 12 at -O2 misreads a span insert as an overflow (-Wstringop-overflow).
inline void AppendRaw(Bytes& out, const void* data, std::size_t size) {
  if (size == 0) return;
  const std::size_t at = out.size();
  out.resize(at + size);
  std::memcpy(out.data() + at, data, size);
}
inline void Append(Bytes& out, std::span<const std::byte> bytes) { AppendRaw(out, bytes.data(), bytes.size()); }

inline Bytes U8(std::initializer_list<std::uint8_t> values) {
  Bytes out;
  for (std::uint8_t v : values) out.push_back(std::byte{v});
  return out;
}
inline Bytes Text(std::string_view text) {
  Bytes out;
  AppendRaw(out, text.data(), text.size());
  return out;
}
// `text`, NUL terminated and NUL padded to a multiple of 4, as SPC-5 §7.7.6.11 lays out a SCSI name string.
inline Bytes NameString(std::string_view text) {
  Bytes out = Text(text);
  out.push_back(std::byte{0});
  while (out.size() % 4 != 0) out.push_back(std::byte{0});
  return out;
}
inline Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) Append(out, p);
  return out;
}

// One designation descriptor: its 4-byte header (DESIGNATOR LENGTH = value.size(), or `length` when given) and value.
inline Bytes Designator(Association association, DesignatorType type, CodeSet code_set, const Bytes& value,
                        std::uint8_t protocol = 0, Piv piv = Piv::kNo, int length = -1) {
  const auto header = spec::DesignationDescriptorHeader::Make(
      protocol, code_set, piv, association, type,
      static_cast<std::uint8_t>(length >= 0 ? length : static_cast<int>(value.size())));
  Bytes out;
  AppendRaw(out, &header, sizeof(header));
  Append(out, value);
  return out;
}
// A designator with logical unit association, the kind that can become the identity.
inline Bytes Lu(DesignatorType type, CodeSet code_set, const Bytes& value) {
  return Designator(Association::kLogicalUnit, type, code_set, value);
}
// A target port designator as LIO sends it: PIV 1, protocol iSCSI.
inline Bytes Port(DesignatorType type, CodeSet code_set, const Bytes& value) {
  return Designator(Association::kTargetPort, type, code_set, value, 0x5, Piv::kYes);
}

// A VPD 83h page: the header with PAGE LENGTH (the designators' size unless given), then the designators.
inline Bytes Page83(std::initializer_list<Bytes> designators, int page_length = -1, std::uint8_t page_code = 0x83) {
  Bytes body = Cat(designators);
  Bytes out = U8({0x00, page_code});
  const auto length = static_cast<std::uint16_t>(page_length >= 0 ? page_length : static_cast<int>(body.size()));
  const wire::Be16 be = length;
  AppendRaw(out, &be, sizeof(be));
  Append(out, body);
  return out;
}

inline Bytes Id16(std::uint16_t id) {
  return U8({0x00, 0x00, static_cast<std::uint8_t>(id >> 8), static_cast<std::uint8_t>(id)});
}

// NOTES.md §2a, LIO 6.1 with ALUA: NAA 6001405abd..., T10 "LIO-ORG IBLOCK:lab-lio-disk0" (NUL terminated), then
// for the port: relative target port, target port group, SCSI name string "<iqn>,t,0x000<tpgt>".
inline const Bytes kLioNaa = U8({0x60, 0x01, 0x40, 0x5a, 0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
inline Bytes LioPage(std::uint16_t relative_port, std::uint16_t group) {
  return Page83({
      Lu(DesignatorType::kNaa, CodeSet::kBinary, kLioNaa),
      Lu(DesignatorType::kT10VendorId, CodeSet::kAscii, Cat({Text("LIO-ORG IBLOCK:lab-lio-disk0"), U8({0})})),
      Port(DesignatorType::kRelativeTargetPort, CodeSet::kBinary, Id16(relative_port)),
      Port(DesignatorType::kTargetPortGroup, CodeSet::kBinary, Id16(group)),
      Port(DesignatorType::kScsiNameString, CodeSet::kUtf8,
           NameString("iqn.2024-01.lab.interop:lio1,t,0x000" + std::to_string(relative_port))),
  });
}
inline constexpr std::string_view kLioIdentity = "naa.6001405abd0000000000000000000000";

// NOTES.md §1, tgt: T10 "IET     00010001", NAA 3000000100000001, NAA 60000000000000000e00000000010001; nothing about
// ports.
inline Bytes TgtPage() {
  return Page83({
      Lu(DesignatorType::kT10VendorId, CodeSet::kAscii, Text("IET     00010001")),
      Lu(DesignatorType::kNaa, CodeSet::kBinary, U8({0x30, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01})),
      Lu(DesignatorType::kNaa, CodeSet::kBinary,
         U8({0x60, 0, 0, 0, 0, 0, 0, 0, 0x0e, 0, 0, 0, 0, 0x01, 0, 0x01})),
  });
}
inline constexpr std::string_view kTgtIdentity = "naa.60000000000000000e00000000010001";

// Standard INQUIRY data of `total` bytes (ADDITIONAL LENGTH total - 5), as LIO (tpgs 3) or tgt (tpgs 0) fill it.
inline Bytes StandardInquiry(std::uint8_t tpgs, std::string_view vendor, std::string_view product,
                             std::string_view revision, std::uint8_t version = 0x06, std::uint8_t peripheral = 0x00,
                             std::size_t total = 96) {
  spec::StandardInquiryData d{};
  d.peripheral = peripheral;
  d.version = version;
  d.set_hisup(true);
  d.set_response_data_format(2);
  d.additional_length = static_cast<std::uint8_t>(total - 5);
  d.set_tpgs(tpgs);
  d.set_cmdque(true);
  auto fill = [](char* field, std::size_t n, std::string_view text) {
    std::memset(field, ' ', n);
    std::memcpy(field, text.data(), std::min(n, text.size()));
  };
  fill(d.t10_vendor_identification, 8, vendor);
  fill(d.product_identification, 16, product);
  fill(d.product_revision_level, 4, revision);
  Bytes out;
  AppendRaw(out, &d, std::min(total, sizeof(d)));
  return out;
}
inline Bytes LioInquiry() { return StandardInquiry(3, "LIO-ORG", "IBLOCK", "4.0"); }
inline Bytes TgtInquiry() { return StandardInquiry(0, "IET", "VIRTUAL-DISK", "0001", 0x05, 0x00, 66); }

inline Bytes ReadCapacity16(std::uint64_t last_lba, std::uint32_t block_size) {
  spec::ReadCapacity16Data d{};
  d.returned_logical_block_address = last_lba;
  d.logical_block_length_in_bytes = block_size;
  Bytes out;
  AppendRaw(out, &d, sizeof(d));
  return out;
}

}  // namespace mpath::scsi::testing
