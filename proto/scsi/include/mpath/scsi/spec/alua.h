// Asymmetric logical unit access: REPORT TARGET PORT GROUPS parameter data (both header formats) with a reader
// that bounds itself by the bytes received (LIO 6.1 cuts its extended-header reply 4 bytes short), and the SET TARGET
// PORT GROUPS parameter list.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "mpath/proto/wire.h"

namespace mpath::scsi::spec {

// SPC-5 r19 §6.37.2 Table 267 "ASYMMETRIC ACCESS STATE field".
enum class AsymmetricAccessState : std::uint8_t {
  kActiveOptimized = 0x0,
  kActiveNonOptimized = 0x1,
  kStandby = 0x2,
  kUnavailable = 0x3,
  kLogicalBlockDependent = 0x4,
  kOffline = 0xE,
  kTransitioning = 0xF,
};

// SPC-5 r19 §6.37.1 Table 264 "PARAMETER DATA FORMAT field" (and the FORMAT TYPE the reply carries).
enum class RtpgFormat : std::uint8_t { kLengthOnly = 0b000, kExtended = 0b001 };

// SPC-5 r19 §6.37.2 Table 268 "STATUS CODE field".
enum class TpgStatusCode : std::uint8_t {
  kNoStatus = 0x00,
  kAlteredBySetTargetPortGroups = 0x01,
  kAlteredByImplicitBehavior = 0x02,
};

// SPC-5 r19 §6.37.2 "REPORT TARGET PORT GROUPS parameter data" (Table 265 "Length only header").
struct RtpgLengthOnlyHeader {
  wire::Be32 return_data_length;  // bytes after byte 3
};
MPATH_WIRE_LAYOUT(RtpgLengthOnlyHeader, 4);

// SPC-5 r19 §6.37.2 "REPORT TARGET PORT GROUPS parameter data" (Table 266 "Extended header").
struct RtpgExtendedHeader {
  wire::Be32 return_data_length;     // bytes after byte 3: 4 + the descriptors
  std::uint8_t format_type;          // FORMAT TYPE bits 6:4 (001b)
  std::uint8_t implicit_transition_time;  // seconds; 0: not specified
  std::uint8_t reserved6[2];

  [[nodiscard]] constexpr std::uint8_t format() const { return wire::GetBits<6, 4>(format_type); }
  constexpr void set_format(RtpgFormat format) {
    format_type = wire::SetBits<6, 4>(format_type, static_cast<std::uint8_t>(format));
  }
};
MPATH_WIRE_LAYOUT(RtpgExtendedHeader, 8);
MPATH_WIRE_FIELD(RtpgExtendedHeader, format_type, 4);
MPATH_WIRE_FIELD(RtpgExtendedHeader, implicit_transition_time, 5);

// Byte 1 of a target port group descriptor: which states the group supports.
namespace tpg_support {
inline constexpr std::uint8_t kTransitioning = 0x80;     // T_SUP, bit 7
inline constexpr std::uint8_t kOffline = 0x40;           // O_SUP, bit 6
inline constexpr std::uint8_t kLbaDependent = 0x10;      // LBD_SUP, bit 4
inline constexpr std::uint8_t kUnavailable = 0x08;       // U_SUP, bit 3
inline constexpr std::uint8_t kStandby = 0x04;           // S_SUP, bit 2
inline constexpr std::uint8_t kActiveNonOptimized = 0x02;  // AN_SUP, bit 1
inline constexpr std::uint8_t kActiveOptimized = 0x01;   // AO_SUP, bit 0
}  // namespace tpg_support

// SPC-5 r19 §6.37.2 "REPORT TARGET PORT GROUPS parameter data" (Table 266 "Target port group descriptor format").
struct TargetPortGroupDescriptor {
  std::uint8_t state;             // PREF bit 7, ASYMMETRIC ACCESS STATE bits 3:0
  std::uint8_t supported;         // tpg_support bits
  wire::Be16 target_port_group;
  std::uint8_t reserved4;
  std::uint8_t status_code;       // TpgStatusCode
  std::uint8_t vendor_specific;
  std::uint8_t target_port_count; // 4-byte target port descriptors that follow

  [[nodiscard]] constexpr bool pref() const { return wire::GetBit<7>(state); }
  [[nodiscard]] constexpr AsymmetricAccessState access_state() const {
    return static_cast<AsymmetricAccessState>(wire::GetBits<3, 0>(state));
  }
  [[nodiscard]] constexpr TpgStatusCode status() const { return static_cast<TpgStatusCode>(status_code); }
  constexpr void set_state(bool preferred, AsymmetricAccessState access_state) {
    state = wire::SetBits<3, 0>(wire::SetBit<7>(std::uint8_t{0}, preferred), static_cast<std::uint8_t>(access_state));
  }
};
MPATH_WIRE_LAYOUT(TargetPortGroupDescriptor, 8);
MPATH_WIRE_FIELD(TargetPortGroupDescriptor, target_port_group, 2);
MPATH_WIRE_FIELD(TargetPortGroupDescriptor, status_code, 5);
MPATH_WIRE_FIELD(TargetPortGroupDescriptor, target_port_count, 7);

// SPC-5 r19 §6.37.2 Table 269 "Target port descriptor format".
struct TargetPortDescriptor {
  std::uint8_t obsolete[2];
  wire::Be16 relative_target_port_identifier;
};
MPATH_WIRE_LAYOUT(TargetPortDescriptor, 4);
MPATH_WIRE_FIELD(TargetPortDescriptor, relative_target_port_identifier, 2);

// One target port group as received. `ports` holds only the target port descriptors that arrived whole.
struct RtpgGroup {
  TargetPortGroupDescriptor descriptor;
  std::span<const std::byte> ports;  // whole 4-byte TargetPortDescriptors
  bool truncated = false;            // fewer port descriptors arrived than TARGET PORT COUNT says

  [[nodiscard]] std::size_t port_count() const { return ports.size() / sizeof(TargetPortDescriptor); }
  [[nodiscard]] std::uint16_t relative_port(std::size_t i) const;
};

// Walks REPORT TARGET PORT GROUPS parameter data in either format. The format is the one the reply says it has
// (FORMAT TYPE 001b in byte 4 means the extended header), not the one asked for. Bounded by the bytes received and
// by RETURN DATA LENGTH, whichever ends first.
// Threading: a value type over borrowed bytes.
class RtpgReader {
 public:
  explicit RtpgReader(std::span<const std::byte> received);
  // False when fewer than 4 bytes arrived (or fewer than 8 with an extended header).
  [[nodiscard]] bool valid() const { return valid_; }
  [[nodiscard]] RtpgFormat format() const { return format_; }
  [[nodiscard]] std::uint32_t return_data_length() const { return return_data_length_; }
  [[nodiscard]] std::uint8_t implicit_transition_time() const { return implicit_transition_time_; }
  // The allocation length that would fetch the whole reply the target announced.
  [[nodiscard]] std::size_t announced_length() const { return std::size_t{return_data_length_} + 4; }
  [[nodiscard]] std::optional<RtpgGroup> Next();
  // Data ended before RETURN DATA LENGTH, or inside a descriptor.
  [[nodiscard]] bool truncated() const { return truncated_; }

 private:
  std::span<const std::byte> bytes_;
  std::size_t offset_ = 0;
  RtpgFormat format_ = RtpgFormat::kLengthOnly;
  std::uint32_t return_data_length_ = 0;
  std::uint8_t implicit_transition_time_ = 0;
  bool valid_ = false;
  bool truncated_ = false;
};

// SPC-5 r19 §6.45.2 "SET TARGET PORT GROUPS parameter list" (Table 284): 4 reserved bytes, then descriptors.
struct StpgParameterListHeader {
  std::uint8_t reserved[4];
};
MPATH_WIRE_LAYOUT(StpgParameterListHeader, 4);

// SPC-5 r19 §6.45.2 Table 285 "Set target port group descriptor format".
struct SetTargetPortGroupDescriptor {
  std::uint8_t state;  // ASYMMETRIC ACCESS STATE bits 3:0
  std::uint8_t reserved1;
  wire::Be16 target_port_group;

  [[nodiscard]] constexpr AsymmetricAccessState access_state() const {
    return static_cast<AsymmetricAccessState>(wire::GetBits<3, 0>(state));
  }
  static constexpr SetTargetPortGroupDescriptor Make(std::uint16_t group, AsymmetricAccessState access_state) {
    return SetTargetPortGroupDescriptor{static_cast<std::uint8_t>(access_state), 0, group};
  }
};
MPATH_WIRE_LAYOUT(SetTargetPortGroupDescriptor, 4);
MPATH_WIRE_FIELD(SetTargetPortGroupDescriptor, target_port_group, 2);

}  // namespace mpath::scsi::spec
