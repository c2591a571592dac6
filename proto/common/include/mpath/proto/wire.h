// Building blocks of every wire struct: integers of a fixed byte order, sub-byte fields addressed by the spec's own
// bit numbers, and a layout assertion. Byte order lives in the type, so a field read in the wrong order does not
// compile; structs are decoded with memcpy from whatever bytes arrived, never by casting unaligned buffers.
#pragma once

#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <type_traits>

namespace mpath::wire {

// An unsigned integer of `Bytes` bytes (Bytes <= sizeof(T)) stored most significant byte first (SCSI).
// Threading: a value type.
template <std::unsigned_integral T, std::size_t Bytes = sizeof(T)>
class BigEndian {
  static_assert(Bytes >= 1 && Bytes <= sizeof(T));

 public:
  constexpr BigEndian() = default;
  constexpr BigEndian(T value) { set(value); }  // NOLINT: implicit, so that fields read like plain assignments
  [[nodiscard]] constexpr T value() const {
    T v = 0;
    for (std::size_t i = 0; i < Bytes; ++i) v = static_cast<T>((v << 8) | bytes_[i]);
    return v;
  }
  constexpr void set(T value) {
    for (std::size_t i = 0; i < Bytes; ++i) bytes_[Bytes - 1 - i] = static_cast<std::uint8_t>(value >> (8 * i));
  }
  friend constexpr bool operator==(const BigEndian& a, const BigEndian& b) = default;

 private:
  std::array<std::uint8_t, Bytes> bytes_{};
};

// An unsigned integer of `Bytes` bytes stored least significant byte first (NVMe).
// Threading: a value type.
template <std::unsigned_integral T, std::size_t Bytes = sizeof(T)>
class LittleEndian {
  static_assert(Bytes >= 1 && Bytes <= sizeof(T));

 public:
  constexpr LittleEndian() = default;
  constexpr LittleEndian(T value) { set(value); }  // NOLINT: implicit, as above
  [[nodiscard]] constexpr T value() const {
    T v = 0;
    for (std::size_t i = Bytes; i-- > 0;) v = static_cast<T>((v << 8) | bytes_[i]);
    return v;
  }
  constexpr void set(T value) {
    for (std::size_t i = 0; i < Bytes; ++i) bytes_[i] = static_cast<std::uint8_t>(value >> (8 * i));
  }
  friend constexpr bool operator==(const LittleEndian& a, const LittleEndian& b) = default;

 private:
  std::array<std::uint8_t, Bytes> bytes_{};
};

using Be16 = BigEndian<std::uint16_t>;
using Be24 = BigEndian<std::uint32_t, 3>;
using Be32 = BigEndian<std::uint32_t>;
using Be64 = BigEndian<std::uint64_t>;
using Le16 = LittleEndian<std::uint16_t>;
using Le24 = LittleEndian<std::uint32_t, 3>;
using Le32 = LittleEndian<std::uint32_t>;
using Le64 = LittleEndian<std::uint64_t>;

// Bits Hi..Lo (inclusive, numbered as the spec numbers them, bit 0 least significant) of an integer field.
template <unsigned Hi, unsigned Lo, std::unsigned_integral T>
[[nodiscard]] constexpr T GetBits(T word) {
  static_assert(Hi >= Lo && Hi < 8 * sizeof(T));
  constexpr unsigned kWidth = Hi - Lo + 1;
  constexpr T kMask = kWidth >= 8 * sizeof(T) ? static_cast<T>(~T{0}) : static_cast<T>((T{1} << kWidth) - 1);
  return static_cast<T>((word >> Lo) & kMask);
}

template <unsigned Hi, unsigned Lo, std::unsigned_integral T>
[[nodiscard]] constexpr T SetBits(T word, std::type_identity_t<T> value) {
  static_assert(Hi >= Lo && Hi < 8 * sizeof(T));
  constexpr unsigned kWidth = Hi - Lo + 1;
  constexpr T kMask = kWidth >= 8 * sizeof(T) ? static_cast<T>(~T{0}) : static_cast<T>((T{1} << kWidth) - 1);
  return static_cast<T>((word & ~static_cast<T>(kMask << Lo)) | static_cast<T>((value & kMask) << Lo));
}

template <unsigned Bit, std::unsigned_integral T>
[[nodiscard]] constexpr bool GetBit(T word) {
  return GetBits<Bit, Bit>(word) != 0;
}

template <unsigned Bit, std::unsigned_integral T>
[[nodiscard]] constexpr T SetBit(T word, bool on) {
  return SetBits<Bit, Bit>(word, on ? 1 : 0);
}

// A struct that may be copied to and from wire bytes.
template <typename T>
concept WireStruct = std::is_trivially_copyable_v<T> && std::is_standard_layout_v<T>;

// Reads a T at `offset` of `bytes`; nullopt when fewer bytes arrived than T needs.
template <WireStruct T>
[[nodiscard]] std::optional<T> Load(std::span<const std::byte> bytes, std::size_t offset = 0) {
  if (offset > bytes.size() || bytes.size() - offset < sizeof(T)) return std::nullopt;
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

// Reads a T from the bytes that arrived, zero-filling whatever is missing: for replies a target may cut short,
// where the caller bounds itself by the received length separately.
template <WireStruct T>
[[nodiscard]] T LoadPadded(std::span<const std::byte> bytes, std::size_t offset = 0) {
  T value{};
  if (offset < bytes.size()) {
    std::size_t n = std::min(sizeof(T), bytes.size() - offset);
    std::memcpy(&value, bytes.data() + offset, n);
  }
  return value;
}

// Writes `value` at `offset`; returns the bytes written, which is fewer than sizeof(T) when `bytes` is too short
// (a reply truncated to the initiator's allocation length).
template <WireStruct T>
std::size_t Store(std::span<std::byte> bytes, const T& value, std::size_t offset = 0) {
  if (offset >= bytes.size()) return 0;
  std::size_t n = std::min(sizeof(T), bytes.size() - offset);
  std::memcpy(bytes.data() + offset, &value, n);
  return n;
}

template <WireStruct T>
[[nodiscard]] std::span<const std::byte, sizeof(T)> BytesOf(const T& value) {
  return std::span<const std::byte, sizeof(T)>(reinterpret_cast<const std::byte*>(&value), sizeof(T));
}

}  // namespace mpath::wire

// Asserts a wire struct's size and that it can travel as bytes. Name the struct once; anchor fields follow with
// MPATH_WIRE_FIELD so that a field that slid is caught at compile time.
#define MPATH_WIRE_LAYOUT(T, size)                                       \
  static_assert(sizeof(T) == (size), #T " does not have its spec size"); \
  static_assert(::mpath::wire::WireStruct<T>, #T " cannot travel as bytes")

#define MPATH_WIRE_FIELD(T, field, offset) \
  static_assert(offsetof(T, field) == (offset), #T "::" #field " is not at its spec offset")
