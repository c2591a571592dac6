// Vocabulary shared by every NVMe spec header: special namespace identifiers, 128-bit little-endian counters, host
// identifiers, and the ASCII/UTF-8 string fields of identify data.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mpath/proto/wire.h"

namespace mpath::nvme::spec {

using wire::Le16;
using wire::Le32;
using wire::Le64;

// NVM Express Base Specification 2.0c §3.2.1 "Namespaces" ("Valid and Invalid NSIDs"): FFFFFFFFh is the broadcast
// value that addresses every namespace.
inline constexpr std::uint32_t kBroadcastNsid = 0xFFFF'FFFF;

// NVM Express Base Specification 2.0c §5.27.1 "Host Identifier" (Feature Identifier 81h): over fabrics the host
// identifier is the 128-bit HOSTID of the Connect command.
using HostId = std::array<std::uint8_t, 16>;

// A 128-bit unsigned counter stored least significant byte first (NVMCAP, TNVMCAP and the like). Only the low
// 64 bits are interpreted; no device in reach holds 2^64 bytes.
struct Le128 {
  Le64 low;
  Le64 high;
};
MPATH_WIRE_LAYOUT(Le128, 16);

// Fixed-width ASCII fields of identify data (SN, MN, FR) are padded with spaces; NQN fields with NULs.
template <std::size_t N>
constexpr void SetSpacePadded(std::array<char, N>& field, std::string_view text) {
  field.fill(' ');
  std::copy_n(text.begin(), std::min(N, text.size()), field.begin());
}

template <std::size_t N>
constexpr void SetNulPadded(std::array<char, N>& field, std::string_view text) {
  field.fill('\0');
  std::copy_n(text.begin(), std::min(N - 1, text.size()), field.begin());
}

// The text of a padded field without its trailing spaces and NULs.
template <std::size_t N>
[[nodiscard]] std::string TrimmedText(const std::array<char, N>& field) {
  std::size_t end = N;
  while (end > 0 && (field[end - 1] == ' ' || field[end - 1] == '\0')) --end;
  // An NQN stops at its first NUL even when garbage follows.
  std::size_t nul = std::string_view(field.data(), end).find('\0');
  return std::string(field.data(), nul == std::string_view::npos ? end : nul);
}

template <std::size_t N>
[[nodiscard]] constexpr bool IsAllZero(const std::array<std::uint8_t, N>& bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

}  // namespace mpath::nvme::spec
