// INQUIRY data: the standard data, the VPD page header, and the pages multipath depends on (supported pages, unit
// serial number, device identification, block limits, logical block provisioning). Device identification is where
// a multipath initiator learns identity (NAA), port (relative target port) and port group, so its designators come
// with a bounded reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "mpath/proto/wire.h"

namespace mpath::scsi::spec {

// SPC-5 r19 §6.6.2 Table 149 "PERIPHERAL QUALIFIER field" and Table 150 "PERIPHERAL DEVICE TYPE field".
inline constexpr std::uint8_t kPeripheralQualifierConnected = 0b000;
inline constexpr std::uint8_t kPeripheralQualifierNotConnected = 0b001;
inline constexpr std::uint8_t kPeripheralQualifierNotSupported = 0b011;  // no LU at this LUN
inline constexpr std::uint8_t kDeviceTypeDirectAccessBlock = 0x00;
inline constexpr std::uint8_t kDeviceTypeUnknown = 0x1F;

// SPC-5 r19 §6.6.2 Table 151 "TPGS field".
inline constexpr std::uint8_t kTpgsImplicit = 0b01;
inline constexpr std::uint8_t kTpgsExplicit = 0b10;

// SPC-5 r19 §6.6.2 Table 152 "Version descriptor values": the ones LIO reports.
namespace version_descriptor {
inline constexpr std::uint16_t kSam5 = 0x00A0;
inline constexpr std::uint16_t kIscsi = 0x0960;
inline constexpr std::uint16_t kSpc4 = 0x0460;
inline constexpr std::uint16_t kSbc3 = 0x04C0;
}  // namespace version_descriptor

// SPC-5 r19 §6.6.2 "Standard INQUIRY data" (Table 148). A target may send fewer bytes (36 is the usual minimum);
// read it with wire::LoadPadded and bound by ADDITIONAL LENGTH.
struct StandardInquiryData {
  std::uint8_t peripheral;          // PERIPHERAL QUALIFIER bits 7:5, PERIPHERAL DEVICE TYPE bits 4:0
  std::uint8_t rmb;                 // RMB bit 7, LU_CONG bit 6
  std::uint8_t version;
  std::uint8_t flags3;              // NORMACA bit 5, HISUP bit 4, RESPONSE DATA FORMAT bits 3:0
  std::uint8_t additional_length;   // bytes after byte 4
  std::uint8_t flags5;              // SCCS 7, ACC 6, TPGS 5:4, 3PC 3, PROTECT 0
  std::uint8_t flags6;              // ENCSERV 6, VS 5, MULTIP 4
  std::uint8_t flags7;              // CMDQUE 1, VS 0
  char t10_vendor_identification[8];
  char product_identification[16];
  char product_revision_level[4];
  std::uint8_t vendor_specific36[20];
  std::uint8_t flags56;             // obsolete in SPC-5 (SPI clocking, QAS, IUS)
  std::uint8_t reserved57;
  wire::Be16 version_descriptors[8];
  std::uint8_t reserved74[22];

  [[nodiscard]] constexpr std::uint8_t peripheral_qualifier() const { return wire::GetBits<7, 5>(peripheral); }
  [[nodiscard]] constexpr std::uint8_t peripheral_device_type() const { return wire::GetBits<4, 0>(peripheral); }
  [[nodiscard]] constexpr bool hisup() const { return wire::GetBit<4>(flags3); }
  [[nodiscard]] constexpr std::uint8_t response_data_format() const { return wire::GetBits<3, 0>(flags3); }
  [[nodiscard]] constexpr std::uint8_t tpgs() const { return wire::GetBits<5, 4>(flags5); }
  [[nodiscard]] constexpr bool third_party_copy() const { return wire::GetBit<3>(flags5); }
  [[nodiscard]] constexpr bool protect() const { return wire::GetBit<0>(flags5); }
  [[nodiscard]] constexpr bool multip() const { return wire::GetBit<4>(flags6); }
  [[nodiscard]] constexpr bool cmdque() const { return wire::GetBit<1>(flags7); }

  constexpr void set_peripheral(std::uint8_t qualifier, std::uint8_t device_type) {
    peripheral = wire::SetBits<4, 0>(wire::SetBits<7, 5>(std::uint8_t{0}, qualifier), device_type);
  }
  constexpr void set_hisup(bool on) { flags3 = wire::SetBit<4>(flags3, on); }
  constexpr void set_response_data_format(std::uint8_t format) { flags3 = wire::SetBits<3, 0>(flags3, format); }
  constexpr void set_tpgs(std::uint8_t tpgs) { flags5 = wire::SetBits<5, 4>(flags5, tpgs); }
  constexpr void set_cmdque(bool on) { flags7 = wire::SetBit<1>(flags7, on); }
};
MPATH_WIRE_LAYOUT(StandardInquiryData, 96);
MPATH_WIRE_FIELD(StandardInquiryData, additional_length, 4);
MPATH_WIRE_FIELD(StandardInquiryData, flags5, 5);
MPATH_WIRE_FIELD(StandardInquiryData, t10_vendor_identification, 8);
MPATH_WIRE_FIELD(StandardInquiryData, product_identification, 16);
MPATH_WIRE_FIELD(StandardInquiryData, product_revision_level, 32);
MPATH_WIRE_FIELD(StandardInquiryData, version_descriptors, 58);

// Page codes: SPC-5 r19 §7.7.1 Table 511 and SBC-4 r22 §6.6.1 Table 205.
namespace vpd {
inline constexpr std::uint8_t kSupportedPages = 0x00;
inline constexpr std::uint8_t kUnitSerialNumber = 0x80;
inline constexpr std::uint8_t kDeviceIdentification = 0x83;
inline constexpr std::uint8_t kBlockLimits = 0xB0;
inline constexpr std::uint8_t kBlockDeviceCharacteristics = 0xB1;
inline constexpr std::uint8_t kLogicalBlockProvisioning = 0xB2;
}  // namespace vpd

// SPC-5 r19 §7.7.1 "VPD parameters overview" (Table 510 "VPD page format"). Pages 83h and 89h use all of PAGE
// LENGTH; the others fit in its low byte, which is what older targets fill.
struct VpdPageHeader {
  std::uint8_t peripheral;  // PERIPHERAL QUALIFIER bits 7:5, PERIPHERAL DEVICE TYPE bits 4:0
  std::uint8_t page_code;
  wire::Be16 page_length;   // bytes after byte 3
};
MPATH_WIRE_LAYOUT(VpdPageHeader, 4);
MPATH_WIRE_FIELD(VpdPageHeader, page_length, 2);

// SPC-5 r19 §7.7.6.1 Table 529 "CODE SET field".
enum class CodeSet : std::uint8_t { kBinary = 0x1, kAscii = 0x2, kUtf8 = 0x3 };
// SPC-5 r19 §7.7.6.1 Table 530 "ASSOCIATION field".
enum class Association : std::uint8_t { kLogicalUnit = 0b00, kTargetPort = 0b01, kTargetDevice = 0b10 };
// SPC-5 r19 §7.7.6.1 Table 531 "DESIGNATOR TYPE field".
enum class DesignatorType : std::uint8_t {
  kVendorSpecific = 0x0,
  kT10VendorId = 0x1,
  kEui64 = 0x2,
  kNaa = 0x3,
  kRelativeTargetPort = 0x4,
  kTargetPortGroup = 0x5,
  kLogicalUnitGroup = 0x6,
  kMd5LogicalUnitIdentifier = 0x7,
  kScsiNameString = 0x8,
  kProtocolSpecificPortIdentifier = 0x9,
  kUuid = 0xA,
};
// SPC-5 r19 §7.6.1 Table 488 "PROTOCOL IDENTIFIER values": the ones mpath meets.
enum class ProtocolIdentifier : std::uint8_t { kFibreChannel = 0x0, kSrp = 0x4, kIscsi = 0x5, kSas = 0x6, kNone = 0xF };

// PIV: whether PROTOCOL IDENTIFIER is meaningful (only for target port and target device association).
enum class Piv : bool { kNo, kYes };

// SPC-5 r19 §7.7.6.1 "Device Identification VPD page overview" (Table 528 "Designation descriptor").
struct DesignationDescriptorHeader {
  std::uint8_t protocol_and_code_set;  // PROTOCOL IDENTIFIER bits 7:4, CODE SET bits 3:0
  std::uint8_t flags;                  // PIV bit 7, ASSOCIATION bits 5:4, DESIGNATOR TYPE bits 3:0
  std::uint8_t reserved;
  std::uint8_t designator_length;      // bytes after byte 3

  [[nodiscard]] constexpr std::uint8_t protocol_identifier() const {
    return wire::GetBits<7, 4>(protocol_and_code_set);
  }
  [[nodiscard]] constexpr CodeSet code_set() const {
    return static_cast<CodeSet>(wire::GetBits<3, 0>(protocol_and_code_set));
  }
  [[nodiscard]] constexpr bool piv() const { return wire::GetBit<7>(flags); }
  [[nodiscard]] constexpr Association association() const {
    return static_cast<Association>(wire::GetBits<5, 4>(flags));
  }
  [[nodiscard]] constexpr DesignatorType designator_type() const {
    return static_cast<DesignatorType>(wire::GetBits<3, 0>(flags));
  }
  static constexpr DesignationDescriptorHeader Make(std::uint8_t protocol, CodeSet code_set, Piv piv,
                                                    Association association, DesignatorType type,
                                                    std::uint8_t length) {
    std::uint8_t b0 = wire::SetBits<7, 4>(std::uint8_t{0}, protocol);
    b0 = wire::SetBits<3, 0>(b0, static_cast<std::uint8_t>(code_set));
    std::uint8_t b1 = wire::SetBit<7>(std::uint8_t{0}, piv == Piv::kYes);
    b1 = wire::SetBits<5, 4>(b1, static_cast<std::uint8_t>(association));
    b1 = wire::SetBits<3, 0>(b1, static_cast<std::uint8_t>(type));
    return DesignationDescriptorHeader{b0, b1, 0, length};
  }
};
MPATH_WIRE_LAYOUT(DesignationDescriptorHeader, 4);
MPATH_WIRE_FIELD(DesignationDescriptorHeader, designator_length, 3);

// SPC-5 r19 §7.7.6.7 "Relative target port designator format" (Table 541).
struct RelativeTargetPortDesignator {
  std::uint8_t obsolete[2];
  wire::Be16 relative_target_port_identifier;
};
MPATH_WIRE_LAYOUT(RelativeTargetPortDesignator, 4);
MPATH_WIRE_FIELD(RelativeTargetPortDesignator, relative_target_port_identifier, 2);

// SPC-5 r19 §7.7.6.8 "Target port group designator format" (Table 542).
struct TargetPortGroupDesignator {
  std::uint8_t reserved[2];
  wire::Be16 target_port_group;
};
MPATH_WIRE_LAYOUT(TargetPortGroupDesignator, 4);
MPATH_WIRE_FIELD(TargetPortGroupDesignator, target_port_group, 2);

// One designation descriptor as received: its header and the designator bytes that follow it.
struct Designator {
  DesignationDescriptorHeader header;
  std::span<const std::byte> designator;  // header.designator_length bytes, inside the buffer read

  // The 16-bit identifier of a relative target port or target port group designator; nullopt for other types or
  // a designator shorter than 4 bytes.
  [[nodiscard]] std::optional<std::uint16_t> PortOrGroupIdentifier() const;
  // The designator as text (T10 vendor id, SCSI name string), with trailing NULs dropped.
  [[nodiscard]] std::string_view Text() const;
};

// Walks the designation descriptors of a Device Identification VPD page (header included), bounded by the bytes
// received and by PAGE LENGTH; a descriptor cut by either is not returned, and truncated() says so.
// Threading: a value type over borrowed bytes.
class DesignatorReader {
 public:
  explicit DesignatorReader(std::span<const std::byte> page);
  // False when fewer than 4 bytes arrived or the page is not 83h.
  [[nodiscard]] bool valid() const { return valid_; }
  [[nodiscard]] std::optional<Designator> Next();
  [[nodiscard]] bool truncated() const { return truncated_; }
  // The first designator of `type` with `association`, from the start of the page.
  [[nodiscard]] std::optional<Designator> Find(DesignatorType type, Association association) const;

 private:
  std::span<const std::byte> bytes_;  // bounded by PAGE LENGTH
  std::size_t offset_ = sizeof(VpdPageHeader);
  bool valid_ = false;
  bool truncated_ = false;
};

// SBC-4 r22 §6.6.4 "Block Limits VPD page" (Table 209).
struct BlockLimitsVpdPage {
  VpdPageHeader header;                      // page length 3Ch
  std::uint8_t wsnz;                         // WSNZ bit 0: WRITE SAME with 0 blocks is refused
  std::uint8_t maximum_compare_and_write_length;
  wire::Be16 optimal_transfer_length_granularity;
  wire::Be32 maximum_transfer_length;        // in logical blocks; 0: not reported
  wire::Be32 optimal_transfer_length;
  wire::Be32 maximum_prefetch_length;
  wire::Be32 maximum_unmap_lba_count;
  wire::Be32 maximum_unmap_block_descriptor_count;
  wire::Be32 optimal_unmap_granularity;
  wire::Be32 unmap_granularity_alignment;    // UGAVALID bit 31
  wire::Be64 maximum_write_same_length;
  wire::Be32 maximum_atomic_transfer_length;
  wire::Be32 atomic_alignment;
  wire::Be32 atomic_transfer_length_granularity;
  wire::Be32 maximum_atomic_transfer_length_with_atomic_boundary;
  wire::Be32 maximum_atomic_boundary_size;

  [[nodiscard]] constexpr bool wsnz_bit() const { return wire::GetBit<0>(wsnz); }
};
MPATH_WIRE_LAYOUT(BlockLimitsVpdPage, 64);
MPATH_WIRE_FIELD(BlockLimitsVpdPage, maximum_transfer_length, 8);
MPATH_WIRE_FIELD(BlockLimitsVpdPage, maximum_unmap_lba_count, 20);
MPATH_WIRE_FIELD(BlockLimitsVpdPage, maximum_unmap_block_descriptor_count, 24);
MPATH_WIRE_FIELD(BlockLimitsVpdPage, maximum_write_same_length, 36);
MPATH_WIRE_FIELD(BlockLimitsVpdPage, maximum_atomic_boundary_size, 60);

// SBC-4 r22 §6.6.6 Table 213 "PROVISIONING TYPE field".
inline constexpr std::uint8_t kProvisioningTypeFull = 0b000;
inline constexpr std::uint8_t kProvisioningTypeResource = 0b001;
inline constexpr std::uint8_t kProvisioningTypeThin = 0b010;

// SBC-4 r22 §6.6.6 "Logical Block Provisioning VPD page" (Table 212), without provisioning group descriptor.
struct LogicalBlockProvisioningVpdPage {
  VpdPageHeader header;             // page length 4 when DP is 0
  std::uint8_t threshold_exponent;
  std::uint8_t flags;               // LBPU 7, LBPWS 6, LBPWS10 5, LBPRZ 4:2, ANC_SUP 1, DP 0
  std::uint8_t provisioning;        // MINIMUM PERCENTAGE bits 7:3, PROVISIONING TYPE bits 2:0
  std::uint8_t threshold_percentage;

  [[nodiscard]] constexpr bool lbpu() const { return wire::GetBit<7>(flags); }
  [[nodiscard]] constexpr bool lbpws() const { return wire::GetBit<6>(flags); }
  [[nodiscard]] constexpr bool lbpws10() const { return wire::GetBit<5>(flags); }
  [[nodiscard]] constexpr std::uint8_t lbprz() const { return wire::GetBits<4, 2>(flags); }
  [[nodiscard]] constexpr bool dp() const { return wire::GetBit<0>(flags); }
  [[nodiscard]] constexpr std::uint8_t provisioning_type() const { return wire::GetBits<2, 0>(provisioning); }
};
MPATH_WIRE_LAYOUT(LogicalBlockProvisioningVpdPage, 8);
MPATH_WIRE_FIELD(LogicalBlockProvisioningVpdPage, flags, 5);

}  // namespace mpath::scsi::spec
