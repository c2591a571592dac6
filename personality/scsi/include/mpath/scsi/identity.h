// What a SCSI logical unit says about itself, read from the bytes it sent: its identity (VPD 83h designators with
// logical unit association), the port it was reached through (relative target port, target port group, target
// name), a summary of its standard INQUIRY data, its capacity, and the core's DeviceInfo built from all of them.
// Every parser is bounded by the bytes received and by each length the device declared; nothing here sends a command
// (identity_probe.h does).
// Threading: value types and pure functions over borrowed bytes; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mpath/core/error.h"
#include "mpath/core/path.h"
#include "mpath/core/types.h"

namespace mpath::scsi {

// The designator an identity was taken from, best first: the order in which VPD 83h designators with logical unit
// association are preferred. NAA 3 (locally assigned) is not unique beyond the target, so it ranks below the IEEE
// based NAA types.
enum class IdentityKind : std::uint8_t {
  kNaaRegisteredExtended,  // NAA 6, 16 bytes
  kNaaRegistered,          // NAA 5, 8 bytes
  kNaaExtended,            // NAA 2, 8 bytes
  kNaaLocallyAssigned,     // NAA 3, 8 bytes
  kEui64,                  // 8, 12 or 16 bytes
  kScsiNameString,         // UTF-8
  kT10VendorId,            // ASCII
  kNone,
};
std::string_view Name(IdentityKind kind);

// The identity of a logical unit, printed the way Linux prints /sys/block/*/device/wwid: "naa.<lowercase hex>",
// "eui.<lowercase hex>", "t10.<ASCII as sent, trailing NULs dropped>", or a SCSI name string's own text.
struct LuIdentity {
  DeviceIdentity identity;  // empty when kind is kNone
  IdentityKind kind = IdentityKind::kNone;
  // Which designator was chosen and why, plus what was skipped, conflicting or cut; for logs and `mpath list`.
  std::string reason;
  // Another designator of the chosen kind with a different value was on the page; the first one was taken.
  bool conflict = false;
  // The page ended (bytes received or PAGE LENGTH) inside a designator; only whole designators were considered.
  bool truncated = false;
};

// Chooses the identity from a Device Identification VPD page (the bytes received, page header included).
// Errors: kTargetError when the bytes are not a page 83h (shorter than its header, or another page code);
// kNotFound, naming why, when no designator with logical unit association is usable.
[[nodiscard]] Result<LuIdentity> ParseLuIdentity(std::span<const std::byte> page);

// The port a VPD 83h page was read through. Port groups of different LUs behind one target are the same groups, so
// (target_name, target_port_group) names a port group across LUs.
struct TargetPortInfo {
  std::optional<std::uint16_t> relative_target_port;
  std::optional<std::uint16_t> target_port_group;
  // The target's name: the target port's SCSI name string without its iSCSI ",t,0x<tpgt>" suffix; else the target
  // device's SCSI name string or NAA; else the target port's NAA ("naa.<hex>"). Empty when there is none.
  std::string target_name;
};

// Reads the target port designators (association 01b) and target device designators (10b) of a VPD 83h page. A
// designator of the wrong length or code set is ignored; of two that disagree, the first is kept.
// Errors: kTargetError when the bytes are not a page 83h.
[[nodiscard]] Result<TargetPortInfo> ParseTargetPortInfo(std::span<const std::byte> page);

// The fields of standard INQUIRY data that discovery needs. A field the device did not send in full (fewer bytes
// received, or ADDITIONAL LENGTH ending before it) is absent.
struct InquirySummary {
  std::uint8_t peripheral_qualifier = 0;
  std::uint8_t peripheral_device_type = 0;
  std::optional<std::uint8_t> version;
  std::optional<std::uint8_t> tpgs;  // byte 5 bits 5:4: 01b implicit ALUA, 10b explicit, 11b both
  // Trimmed of surrounding spaces and NULs; bytes outside printable ASCII become '?'.
  std::optional<std::string> vendor;
  std::optional<std::string> product;
  std::optional<std::string> revision;
  std::size_t length = 0;  // bytes used: those received, cut at ADDITIONAL LENGTH + 5

  [[nodiscard]] bool reports_access_states() const { return tpgs.value_or(0) != 0; }
};

// Errors: kTargetError when no byte arrived.
[[nodiscard]] Result<InquirySummary> ParseStandardInquiry(std::span<const std::byte> data);

// Geometry from READ CAPACITY.
struct Capacity {
  std::uint64_t blocks = 0;
  std::uint32_t block_size = 0;
  [[nodiscard]] std::uint64_t bytes() const { return blocks * block_size; }
};

// READ CAPACITY (16) parameter data (at least its first 12 bytes). Errors: kTargetError for short data, a zero block
// length, or a capacity that does not fit 64 bits of bytes.
[[nodiscard]] Result<Capacity> ParseReadCapacity16(std::span<const std::byte> data);
// READ CAPACITY (10) parameter data. Errors: as above; kUnsupported when the device says the capacity needs
// READ CAPACITY (16) (RETURNED LOGICAL BLOCK ADDRESS FFFFFFFFh).
[[nodiscard]] Result<Capacity> ParseReadCapacity10(std::span<const std::byte> data);

// The page codes listed by a Supported VPD Pages page (00h). Errors: kTargetError when the bytes are not page 00h.
[[nodiscard]] Result<std::vector<std::uint8_t>> ParseSupportedVpdPages(std::span<const std::byte> page);

// Transfer limits from the Block Limits VPD page (B0h), in logical blocks; 0 where the device reports no limit or
// the page ended before the field. Errors: kTargetError when the bytes are not page B0h.
struct BlockLimits {
  std::uint32_t max_transfer_blocks = 0;
  std::uint32_t optimal_transfer_blocks = 0;
  std::uint32_t max_unmap_blocks = 0;
  std::uint32_t max_unmap_descriptors = 0;
  std::uint64_t max_write_same_blocks = 0;
};
[[nodiscard]] Result<BlockLimits> ParseBlockLimits(std::span<const std::byte> page);

// A device as one path describes it, ready for the core's opt-in and attach.
struct DeviceDescription {
  // identity, reports_access_states (TPGS != 0), capacity_bytes and block_size; the caller names the path and its
  // transport.
  DeviceInfo info;
  InquirySummary inquiry;
  LuIdentity identity;  // kind kNone, with the reason, when the page has no usable designator
  TargetPortInfo port;
};

// Builds the description from the answers to standard INQUIRY, INQUIRY VPD 83h and READ CAPACITY (16), each the
// bytes received. A page without a usable designator gives a device without identity (the core then never
// multipaths it), not an error.
// Errors: kNotFound when the peripheral qualifier says no LU is connected at this LUN; kUnsupported for a device
// that is not a direct access block device; kTargetError for malformed data.
[[nodiscard]] Result<DeviceDescription> DescribeDevice(std::span<const std::byte> inquiry,
                                                       std::span<const std::byte> vpd83,
                                                       std::span<const std::byte> read_capacity16);

// Checks what DescribeDevice and the prober require of standard INQUIRY data: an LU connected at this LUN
// (kNotFound otherwise) that is a direct access block device (kUnsupported otherwise).
[[nodiscard]] Result<void> CheckBlockDevice(const InquirySummary& inquiry);

}  // namespace mpath::scsi
