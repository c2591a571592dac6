// REPORT LUNS parameter data and the SAM-5 single-level LUN encodings mpath uses (peripheral device addressing
// below 256, flat space addressing up to 16383), the same choice Linux's scsilun_to_int/int_to_scsilun make.
#pragma once

#include <cstdint>
#include <optional>

#include "mpath/proto/wire.h"

namespace mpath::scsi::spec {

// SPC-5 r19 §6.33 "REPORT LUNS command" (Table 255 "REPORT LUNS parameter data format"): this header, then one
// 8-byte LUN per logical unit.
struct ReportLunsHeader {
  wire::Be32 lun_list_length;  // bytes of LUN entries (8 per LUN) after byte 7
  std::uint8_t reserved4[4];
};
MPATH_WIRE_LAYOUT(ReportLunsHeader, 8);
MPATH_WIRE_FIELD(ReportLunsHeader, lun_list_length, 0);

// SAM-5 r21 §4.7.6 "Single level LUN structure using peripheral device addressing method", §4.7.7 "... flat space
// addressing method" (Table 12 ADDRESS METHOD 00b / 01b).
inline constexpr std::uint64_t kMaxPeripheralLun = 0xFF;
inline constexpr std::uint64_t kMaxFlatSpaceLun = 0x3FFF;

// The 8-byte LUN for `lun`, as a big-endian integer (byte 0 most significant); nullopt above 16383.
[[nodiscard]] constexpr std::optional<std::uint64_t> EncodeLun(std::uint64_t lun) {
  if (lun <= kMaxPeripheralLun) return lun << 48;
  if (lun <= kMaxFlatSpaceLun) return (std::uint64_t{0x40} << 56) | (lun << 48);
  return std::nullopt;
}

// The LUN number of a single-level 8-byte LUN in either method; nullopt for other methods or levels.
[[nodiscard]] constexpr std::optional<std::uint64_t> DecodeLun(std::uint64_t encoded) {
  if ((encoded & 0x0000'FFFF'FFFF'FFFFull) != 0) return std::nullopt;  // a second level is in use
  const auto first = static_cast<std::uint16_t>(encoded >> 48);
  switch (wire::GetBits<15, 14>(first)) {
    case 0b00:
      if (wire::GetBits<13, 8>(first) != 0) return std::nullopt;  // a bus identifier: not a single-level LUN
      return first & 0xFFu;
    case 0b01: return first & 0x3FFFu;
    default: return std::nullopt;
  }
}

// SPC-5 r19 §6.33 Table 256 "LUN entry".
struct LunEntry {
  wire::Be64 lun;
};
MPATH_WIRE_LAYOUT(LunEntry, 8);

}  // namespace mpath::scsi::spec
