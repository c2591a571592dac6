// Persistent reservations on the wire: the PERSISTENT RESERVE IN and OUT CDBs, their parameter lists and parameter
// data, and the iSCSI TransportID that names an initiator port inside them. The simulated array answers with these
// structs and the SCSI personality builds and parses with them, so both sides read the same bytes the same way.
//
// Section numbers are those of SPC-5 r19 (reservations model §5.14, PERSISTENT RESERVE IN §6.15, PERSISTENT
// RESERVE OUT §6.16, TransportIDs §7.6.4).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mpath/proto/wire.h"
#include "mpath/scsi/spec/inquiry.h"
#include "mpath/scsi/spec/spc_cdb.h"
#include "mpath/scsi/spec/status.h"

namespace mpath::scsi::spec {

using wire::Be16;
using wire::Be32;
using wire::Be64;

// SPC-5 r19 §6.15.1 "PERSISTENT RESERVE IN service action codes"; 04h to 1Fh are reserved.
enum class PrInServiceAction : std::uint8_t {
  kReadKeys = 0x00,
  kReadReservation = 0x01,
  kReportCapabilities = 0x02,
  kReadFullStatus = 0x03,
};

// SPC-5 r19 §6.16.2 "PERSISTENT RESERVE OUT service action codes". 08h (REPLACE LOST RESERVATION) exists in SPC-5
// but mpath neither sends it nor simulates lost reservations.
enum class PrOutServiceAction : std::uint8_t {
  kRegister = 0x00,
  kReserve = 0x01,
  kRelease = 0x02,
  kClear = 0x03,
  kPreempt = 0x04,
  kPreemptAndAbort = 0x05,
  kRegisterAndIgnoreExistingKey = 0x06,
  kRegisterAndMove = 0x07,
};

// SPC-5 r19 §6.15.3.3 "Persistent reservations scope": LU_SCOPE is the only scope that is not obsolete.
enum class PrScope : std::uint8_t { kLogicalUnit = 0x0 };

// SPC-5 r19 §6.15.3.4 "Persistent reservations type codes"; every other value is reserved or obsolete.
enum class PrType : std::uint8_t {
  kWriteExclusive = 0x1,
  kExclusiveAccess = 0x3,
  kWriteExclusiveRegistrantsOnly = 0x5,
  kExclusiveAccessRegistrantsOnly = 0x6,
  kWriteExclusiveAllRegistrants = 0x7,
  kExclusiveAccessAllRegistrants = 0x8,
};

inline constexpr std::array<PrType, 6> kPrTypes = {
    PrType::kWriteExclusive,
    PrType::kExclusiveAccess,
    PrType::kWriteExclusiveRegistrantsOnly,
    PrType::kExclusiveAccessRegistrantsOnly,
    PrType::kWriteExclusiveAllRegistrants,
    PrType::kExclusiveAccessAllRegistrants,
};

// The TYPE code as it sits in a CDB or descriptor, when it names one of the six types.
[[nodiscard]] constexpr std::optional<PrType> ToPrType(std::uint8_t code) {
  for (PrType type : kPrTypes) {
    if (static_cast<std::uint8_t>(type) == code) return type;
  }
  return std::nullopt;
}

// Every registered I_T nexus holds the reservation (SPC-5 §5.14.10).
[[nodiscard]] constexpr bool IsAllRegistrants(PrType type) {
  return type == PrType::kWriteExclusiveAllRegistrants || type == PrType::kExclusiveAccessAllRegistrants;
}
[[nodiscard]] constexpr bool IsRegistrantsOnly(PrType type) {
  return type == PrType::kWriteExclusiveRegistrantsOnly || type == PrType::kExclusiveAccessRegistrantsOnly;
}
// The Write Exclusive family: reads stay open to every I_T nexus; only writes are restricted.
[[nodiscard]] constexpr bool IsWriteExclusive(PrType type) {
  return type == PrType::kWriteExclusive || type == PrType::kWriteExclusiveRegistrantsOnly ||
         type == PrType::kWriteExclusiveAllRegistrants;
}

// SPC-5 r19 §6.15.1 "PERSISTENT RESERVE IN command".
struct PersistentReserveInCdb {
  std::uint8_t operation_code = op::kPersistentReserveIn;
  std::uint8_t service_action_byte = 0;  // SERVICE ACTION bits 4:0
  std::array<std::uint8_t, 5> reserved{};
  Be16 allocation_length;
  std::uint8_t control = 0;

  [[nodiscard]] constexpr std::uint8_t service_action() const { return wire::GetBits<4, 0>(service_action_byte); }
  constexpr void set_service_action(PrInServiceAction action) {
    service_action_byte = wire::SetBits<4, 0>(service_action_byte, static_cast<std::uint8_t>(action));
  }
  static constexpr PersistentReserveInCdb Make(PrInServiceAction action, std::uint16_t allocation) {
    PersistentReserveInCdb cdb;
    cdb.set_service_action(action);
    cdb.allocation_length = allocation;
    return cdb;
  }
};
MPATH_WIRE_LAYOUT(PersistentReserveInCdb, 10);
MPATH_WIRE_FIELD(PersistentReserveInCdb, service_action_byte, 1);
MPATH_WIRE_FIELD(PersistentReserveInCdb, allocation_length, 7);
MPATH_WIRE_FIELD(PersistentReserveInCdb, control, 9);

// SPC-5 r19 §6.16.1 "PERSISTENT RESERVE OUT command".
struct PersistentReserveOutCdb {
  std::uint8_t operation_code = op::kPersistentReserveOut;
  std::uint8_t service_action_byte = 0;  // SERVICE ACTION bits 4:0
  std::uint8_t scope_type = 0;           // SCOPE bits 7:4, TYPE bits 3:0
  std::array<std::uint8_t, 2> reserved{};
  Be32 parameter_list_length;
  std::uint8_t control = 0;

  [[nodiscard]] constexpr std::uint8_t service_action() const { return wire::GetBits<4, 0>(service_action_byte); }
  [[nodiscard]] constexpr std::uint8_t scope() const { return wire::GetBits<7, 4>(scope_type); }
  [[nodiscard]] constexpr std::uint8_t type() const { return wire::GetBits<3, 0>(scope_type); }
  constexpr void set_service_action(PrOutServiceAction action) {
    service_action_byte = wire::SetBits<4, 0>(service_action_byte, static_cast<std::uint8_t>(action));
  }
  constexpr void set_scope(std::uint8_t scope) { scope_type = wire::SetBits<7, 4>(scope_type, scope); }
  constexpr void set_type(std::uint8_t type) { scope_type = wire::SetBits<3, 0>(scope_type, type); }
  constexpr void set_type(PrType type) { set_type(static_cast<std::uint8_t>(type)); }

  // `type` only matters to RESERVE, RELEASE and the PREEMPTs; the others ignore SCOPE and TYPE.
  static constexpr PersistentReserveOutCdb Make(PrOutServiceAction action, std::uint32_t parameter_list_length,
                                                PrType type = PrType::kWriteExclusive) {
    PersistentReserveOutCdb cdb;
    cdb.set_service_action(action);
    cdb.set_scope(static_cast<std::uint8_t>(PrScope::kLogicalUnit));
    cdb.set_type(type);
    cdb.parameter_list_length = parameter_list_length;
    return cdb;
  }
};
MPATH_WIRE_LAYOUT(PersistentReserveOutCdb, 10);
MPATH_WIRE_FIELD(PersistentReserveOutCdb, scope_type, 2);
MPATH_WIRE_FIELD(PersistentReserveOutCdb, parameter_list_length, 5);
MPATH_WIRE_FIELD(PersistentReserveOutCdb, control, 9);

// SPC-5 r19 §6.16.3 "Basic PERSISTENT RESERVE OUT parameter list": every service action but REGISTER AND MOVE.
// With SPEC_I_PT set a PrOutTransportIdListHeader and the TransportIDs follow; otherwise the list is exactly 24 bytes.
struct PrOutParameterList {
  Be64 reservation_key;
  Be64 service_action_reservation_key;
  std::array<std::uint8_t, 4> obsolete1{};
  std::uint8_t flags = 0;  // SPEC_I_PT bit 3, ALL_TG_PT bit 2, APTPL bit 0
  std::uint8_t reserved = 0;
  std::array<std::uint8_t, 2> obsolete2{};

  [[nodiscard]] constexpr bool spec_i_pt() const { return wire::GetBit<3>(flags); }
  [[nodiscard]] constexpr bool all_tg_pt() const { return wire::GetBit<2>(flags); }
  [[nodiscard]] constexpr bool aptpl() const { return wire::GetBit<0>(flags); }
  constexpr void set_spec_i_pt(bool on) { flags = wire::SetBit<3>(flags, on); }
  constexpr void set_all_tg_pt(bool on) { flags = wire::SetBit<2>(flags, on); }
  constexpr void set_aptpl(bool on) { flags = wire::SetBit<0>(flags, on); }

  static constexpr PrOutParameterList Make(std::uint64_t key, std::uint64_t service_action_key) {
    PrOutParameterList list;
    list.reservation_key = key;
    list.service_action_reservation_key = service_action_key;
    return list;
  }
};
MPATH_WIRE_LAYOUT(PrOutParameterList, 24);
MPATH_WIRE_FIELD(PrOutParameterList, service_action_reservation_key, 8);
MPATH_WIRE_FIELD(PrOutParameterList, flags, 20);

// SPC-5 r19 §6.16.3: bytes 24..27 of a basic parameter list with SPEC_I_PT set, followed by that many bytes of
// TransportIDs.
struct PrOutTransportIdListHeader {
  Be32 transport_id_parameter_data_length;
};
MPATH_WIRE_LAYOUT(PrOutTransportIdListHeader, 4);

// SPC-5 r19 §6.16.4 "REGISTER AND MOVE service action parameter list"; one TransportID follows.
struct PrRegisterAndMoveParameterList {
  Be64 reservation_key;
  Be64 service_action_reservation_key;
  std::uint8_t reserved = 0;
  std::uint8_t flags = 0;  // UNREG bit 1, APTPL bit 0
  Be16 relative_target_port_identifier;
  Be32 transport_id_parameter_data_length;

  [[nodiscard]] constexpr bool unreg() const { return wire::GetBit<1>(flags); }
  [[nodiscard]] constexpr bool aptpl() const { return wire::GetBit<0>(flags); }
  constexpr void set_unreg(bool on) { flags = wire::SetBit<1>(flags, on); }
  constexpr void set_aptpl(bool on) { flags = wire::SetBit<0>(flags, on); }
};
MPATH_WIRE_LAYOUT(PrRegisterAndMoveParameterList, 24);
MPATH_WIRE_FIELD(PrRegisterAndMoveParameterList, flags, 17);
MPATH_WIRE_FIELD(PrRegisterAndMoveParameterList, relative_target_port_identifier, 18);
MPATH_WIRE_FIELD(PrRegisterAndMoveParameterList, transport_id_parameter_data_length, 20);

// SPC-5 r19 §6.15.2 "READ KEYS service action", §6.15.3 "READ RESERVATION service action" and §6.15.5 "READ
// FULL STATUS service action": the header the three parameter data formats start with. ADDITIONAL LENGTH counts
// what follows it and is never cut down to the allocation length.
struct PrInHeader {
  Be32 prgeneration;
  Be32 additional_length;
};
MPATH_WIRE_LAYOUT(PrInHeader, 8);
MPATH_WIRE_FIELD(PrInHeader, additional_length, 4);

// SPC-5 r19 §6.15.3 "READ RESERVATION" parameter data, bytes 8..23: present only while a reservation exists
// (ADDITIONAL LENGTH 10h, else 0). The key is zero for the all-registrants types.
struct PrReservationDescriptor {
  Be64 reservation_key;
  std::array<std::uint8_t, 4> obsolete1{};
  std::uint8_t reserved = 0;
  std::uint8_t scope_type = 0;  // SCOPE bits 7:4, TYPE bits 3:0
  std::array<std::uint8_t, 2> obsolete2{};

  [[nodiscard]] constexpr std::uint8_t scope() const { return wire::GetBits<7, 4>(scope_type); }
  [[nodiscard]] constexpr std::uint8_t type() const { return wire::GetBits<3, 0>(scope_type); }
  constexpr void set_scope(std::uint8_t scope) { scope_type = wire::SetBits<7, 4>(scope_type, scope); }
  constexpr void set_type(std::uint8_t type) { scope_type = wire::SetBits<3, 0>(scope_type, type); }
};
MPATH_WIRE_LAYOUT(PrReservationDescriptor, 16);
MPATH_WIRE_FIELD(PrReservationDescriptor, scope_type, 13);

// Bit of each type in the PERSISTENT RESERVATION TYPE MASK, read as one big-endian 16-bit field (byte 4 is bits
// 15:8, byte 5 bits 7:0).
[[nodiscard]] constexpr std::uint16_t PrTypeMaskBit(PrType type) {
  switch (type) {
    case PrType::kWriteExclusiveAllRegistrants: return 0x8000;    // WR_EX_AR: byte 4 bit 7
    case PrType::kExclusiveAccessRegistrantsOnly: return 0x4000;  // EX_AC_RO: byte 4 bit 6
    case PrType::kWriteExclusiveRegistrantsOnly: return 0x2000;   // WR_EX_RO: byte 4 bit 5
    case PrType::kExclusiveAccess: return 0x0800;                 // EX_AC: byte 4 bit 3
    case PrType::kWriteExclusive: return 0x0200;                  // WR_EX: byte 4 bit 1
    case PrType::kExclusiveAccessAllRegistrants: return 0x0001;   // EX_AC_AR: byte 5 bit 0
  }
  return 0;
}

// SPC-5 r19 §6.15.4 "REPORT CAPABILITIES" parameter data. LENGTH is 0008h.
struct PrReportCapabilitiesData {
  Be16 length;
  std::uint8_t flags1 = 0;  // RLR_C bit 7, CRH bit 4, SIP_C bit 3, ATP_C bit 2, PTPL_C bit 0
  std::uint8_t flags2 = 0;  // TMV bit 7, ALLOW COMMANDS bits 6:4, PTPL_A bit 0
  Be16 type_mask;           // PERSISTENT RESERVATION TYPE MASK, valid when TMV is set
  std::array<std::uint8_t, 2> reserved{};

  [[nodiscard]] constexpr bool rlr_c() const { return wire::GetBit<7>(flags1); }
  [[nodiscard]] constexpr bool crh() const { return wire::GetBit<4>(flags1); }
  [[nodiscard]] constexpr bool sip_c() const { return wire::GetBit<3>(flags1); }
  [[nodiscard]] constexpr bool atp_c() const { return wire::GetBit<2>(flags1); }
  [[nodiscard]] constexpr bool ptpl_c() const { return wire::GetBit<0>(flags1); }
  [[nodiscard]] constexpr bool tmv() const { return wire::GetBit<7>(flags2); }
  [[nodiscard]] constexpr std::uint8_t allow_commands() const { return wire::GetBits<6, 4>(flags2); }
  [[nodiscard]] constexpr bool ptpl_a() const { return wire::GetBit<0>(flags2); }
  [[nodiscard]] constexpr bool supports(PrType type) const {
    return tmv() && (type_mask.value() & PrTypeMaskBit(type)) != 0;
  }
  constexpr void set_crh(bool on) { flags1 = wire::SetBit<4>(flags1, on); }
  constexpr void set_sip_c(bool on) { flags1 = wire::SetBit<3>(flags1, on); }
  constexpr void set_atp_c(bool on) { flags1 = wire::SetBit<2>(flags1, on); }
  constexpr void set_ptpl_c(bool on) { flags1 = wire::SetBit<0>(flags1, on); }
  constexpr void set_tmv(bool on) { flags2 = wire::SetBit<7>(flags2, on); }
  constexpr void set_allow_commands(std::uint8_t value) { flags2 = wire::SetBits<6, 4>(flags2, value); }
  constexpr void set_ptpl_a(bool on) { flags2 = wire::SetBit<0>(flags2, on); }
  constexpr void set_supports(PrType type, bool on) {
    std::uint16_t mask = type_mask.value();
    type_mask = on ? static_cast<std::uint16_t>(mask | PrTypeMaskBit(type))
                   : static_cast<std::uint16_t>(mask & ~PrTypeMaskBit(type));
  }
};
MPATH_WIRE_LAYOUT(PrReportCapabilitiesData, 8);
MPATH_WIRE_FIELD(PrReportCapabilitiesData, flags1, 2);
MPATH_WIRE_FIELD(PrReportCapabilitiesData, type_mask, 4);

// SPC-5 r19 §6.15.5 "READ FULL STATUS": one descriptor per registered I_T nexus, after a PrInHeader, each followed
// by ADDITIONAL DESCRIPTOR LENGTH bytes of TransportID. SCOPE and TYPE are meaningful only with R_HOLDER set; the
// RELATIVE TARGET PORT IDENTIFIER is not defined by the standard when ALL_TG_PT is set.
struct PrFullStatusDescriptor {
  Be64 reservation_key;
  std::array<std::uint8_t, 4> reserved1{};
  std::uint8_t flags = 0;       // ALL_TG_PT bit 1, R_HOLDER bit 0
  std::uint8_t scope_type = 0;  // SCOPE bits 7:4, TYPE bits 3:0
  std::array<std::uint8_t, 4> reserved2{};
  Be16 relative_target_port_identifier;
  Be32 additional_descriptor_length;

  [[nodiscard]] constexpr bool all_tg_pt() const { return wire::GetBit<1>(flags); }
  [[nodiscard]] constexpr bool r_holder() const { return wire::GetBit<0>(flags); }
  [[nodiscard]] constexpr std::uint8_t scope() const { return wire::GetBits<7, 4>(scope_type); }
  [[nodiscard]] constexpr std::uint8_t type() const { return wire::GetBits<3, 0>(scope_type); }
  constexpr void set_all_tg_pt(bool on) { flags = wire::SetBit<1>(flags, on); }
  constexpr void set_r_holder(bool on) { flags = wire::SetBit<0>(flags, on); }
  constexpr void set_scope(std::uint8_t scope) { scope_type = wire::SetBits<7, 4>(scope_type, scope); }
  constexpr void set_type(std::uint8_t type) { scope_type = wire::SetBits<3, 0>(scope_type, type); }
};
MPATH_WIRE_LAYOUT(PrFullStatusDescriptor, 24);
MPATH_WIRE_FIELD(PrFullStatusDescriptor, flags, 12);
MPATH_WIRE_FIELD(PrFullStatusDescriptor, scope_type, 13);
MPATH_WIRE_FIELD(PrFullStatusDescriptor, relative_target_port_identifier, 18);
MPATH_WIRE_FIELD(PrFullStatusDescriptor, additional_descriptor_length, 20);

// --- TransportIDs.

// SPC-5 r19 §7.6.4.6 "iSCSI TransportID formats": 00b names the initiator device (its iSCSI name), 01b one
// initiator port (iSCSI name, ",i,0x" and the ISID in hex).
inline constexpr std::uint8_t kIscsiTransportIdDeviceFormat = 0b00;
inline constexpr std::uint8_t kIscsiTransportIdPortFormat = 0b01;
inline constexpr std::string_view kIscsiPortSeparator = ",i,0x";
// §7.6.4.1: every TransportID is at least 24 bytes and a multiple of four long.
inline constexpr std::size_t kMinTransportIdLength = 24;

// SPC-5 r19 §7.6.4.1 "TransportID format", with the iSCSI ADDITIONAL LENGTH of §7.6.4.6 (Tables "iSCSI initiator
// device TransportID format" and "iSCSI initiator port TransportID format"): the name follows, NUL terminated and
// NUL padded.
struct TransportIdHeader {
  std::uint8_t format_protocol = 0;  // FORMAT CODE bits 7:6, PROTOCOL IDENTIFIER bits 3:0
  std::uint8_t reserved = 0;
  Be16 additional_length;  // bytes after this header: at least 20, a multiple of four

  [[nodiscard]] constexpr std::uint8_t format_code() const { return wire::GetBits<7, 6>(format_protocol); }
  [[nodiscard]] constexpr std::uint8_t protocol_identifier() const { return wire::GetBits<3, 0>(format_protocol); }
  constexpr void set_format_code(std::uint8_t code) { format_protocol = wire::SetBits<7, 6>(format_protocol, code); }
  constexpr void set_protocol_identifier(std::uint8_t id) {
    format_protocol = wire::SetBits<3, 0>(format_protocol, id);
  }
};
MPATH_WIRE_LAYOUT(TransportIdHeader, 4);
MPATH_WIRE_FIELD(TransportIdHeader, additional_length, 2);

// Length of the iSCSI TransportID naming `initiator_port`: the name and its NUL, padded to a multiple of four and
// to the 20-byte minimum, after the 4-byte header.
[[nodiscard]] constexpr std::size_t IscsiTransportIdLength(std::string_view initiator_port) {
  std::size_t name = (initiator_port.size() + 1 + 3) / 4 * 4;
  return sizeof(TransportIdHeader) + (name < 20 ? 20 : name);
}

// Writes the iSCSI TransportID for `initiator_port` into `out`, cut short when `out` is (as a reply truncated to
// an allocation length is); returns the bytes written. A port name carrying ",i,0x<ISID>" is sent in the initiator
// port format (01b), whose bytes are the same string; a bare iSCSI name in the device format (00b).
inline std::size_t EncodeIscsiTransportId(std::string_view initiator_port, std::span<std::byte> out) {
  std::size_t length = IscsiTransportIdLength(initiator_port);
  TransportIdHeader header;
  header.set_protocol_identifier(static_cast<std::uint8_t>(ProtocolIdentifier::kIscsi));
  header.set_format_code(initiator_port.find(kIscsiPortSeparator) == std::string_view::npos
                             ? kIscsiTransportIdDeviceFormat
                             : kIscsiTransportIdPortFormat);
  header.additional_length = static_cast<std::uint16_t>(length - sizeof(TransportIdHeader));
  std::size_t written = wire::Store(out, header);
  for (std::size_t i = sizeof(TransportIdHeader); i < length && i < out.size(); ++i) {
    std::size_t at = i - sizeof(TransportIdHeader);
    out[i] = at < initiator_port.size() ? static_cast<std::byte>(initiator_port[at]) : std::byte{0};
    written = i + 1;
  }
  return written;
}

[[nodiscard]] inline std::vector<std::byte> IscsiTransportId(std::string_view initiator_port) {
  std::vector<std::byte> bytes(IscsiTransportIdLength(initiator_port));
  EncodeIscsiTransportId(initiator_port, bytes);
  return bytes;
}

enum class TransportIdError : std::uint8_t {
  kTruncated,  // fewer bytes than the header or its ADDITIONAL LENGTH says
  kNotIscsi,   // another PROTOCOL IDENTIFIER
  kBadFormat,  // FORMAT CODE 10b or 11b
  kBadLength,  // ADDITIONAL LENGTH under 20 or not a multiple of four
  kBadName,    // empty, not NUL terminated, or a port format without ",i,0x"
};

struct DecodedTransportId {
  std::string initiator_port;  // "iqn...", or "iqn...,i,0x<ISID>" for the port format
  std::size_t length = 0;      // bytes the TransportID occupies
};

// Reads the iSCSI TransportID at the start of `bytes`, never past them.
[[nodiscard]] inline std::expected<DecodedTransportId, TransportIdError> DecodeIscsiTransportId(
    std::span<const std::byte> bytes) {
  std::optional<TransportIdHeader> header = wire::Load<TransportIdHeader>(bytes);
  if (!header) return std::unexpected(TransportIdError::kTruncated);
  if (header->protocol_identifier() != static_cast<std::uint8_t>(ProtocolIdentifier::kIscsi)) {
    return std::unexpected(TransportIdError::kNotIscsi);
  }
  std::uint8_t format = header->format_code();
  if (format != kIscsiTransportIdDeviceFormat && format != kIscsiTransportIdPortFormat) {
    return std::unexpected(TransportIdError::kBadFormat);
  }
  std::size_t additional = header->additional_length.value();
  if (additional < kMinTransportIdLength - sizeof(TransportIdHeader) || additional % 4 != 0) {
    return std::unexpected(TransportIdError::kBadLength);
  }
  std::size_t length = sizeof(TransportIdHeader) + additional;
  if (bytes.size() < length) return std::unexpected(TransportIdError::kTruncated);
  std::span<const std::byte> name_bytes = bytes.subspan(sizeof(TransportIdHeader), additional);
  std::string name;
  bool terminated = false;
  for (std::byte b : name_bytes) {
    if (b == std::byte{0}) {
      terminated = true;
      break;
    }
    name.push_back(static_cast<char>(b));
  }
  if (!terminated || name.empty()) return std::unexpected(TransportIdError::kBadName);
  if (format == kIscsiTransportIdPortFormat && name.find(kIscsiPortSeparator) == std::string::npos) {
    return std::unexpected(TransportIdError::kBadName);
  }
  return DecodedTransportId{std::move(name), length};
}

// --- Decoding PERSISTENT RESERVE IN parameter data. Each parser reads only the bytes that arrived and reports the
// target's own lengths, so a caller can tell a reply cut by its allocation length from a complete one and ask again.

struct PrKeyList {
  std::uint32_t generation = 0;
  std::uint32_t additional_length = 0;  // as the target reported it: 8 per registration
  std::vector<std::uint64_t> keys;      // the keys that arrived whole
  [[nodiscard]] bool complete() const { return keys.size() * 8 >= additional_length; }
};

// READ KEYS (§6.15.2). nullopt when not even the header arrived.
[[nodiscard]] inline std::optional<PrKeyList> ParseReadKeys(std::span<const std::byte> data) {
  std::optional<PrInHeader> header = wire::Load<PrInHeader>(data);
  if (!header) return std::nullopt;
  PrKeyList list{header->prgeneration.value(), header->additional_length.value(), {}};
  std::size_t end = std::min(data.size(), sizeof(PrInHeader) + std::size_t{list.additional_length});
  for (std::size_t at = sizeof(PrInHeader); at + sizeof(Be64) <= end; at += sizeof(Be64)) {
    list.keys.push_back(wire::Load<Be64>(data, at)->value());
  }
  return list;
}

struct PrHeldReservation {
  std::uint64_t key = 0;  // zero for the all-registrants types
  std::uint8_t scope = 0;
  std::uint8_t type = 0;
};

struct PrReservationReport {
  std::uint32_t generation = 0;
  std::optional<PrHeldReservation> reservation;
};

// READ RESERVATION (§6.15.3). nullopt when the header did not arrive, or a reservation is announced but its
// descriptor was cut.
[[nodiscard]] inline std::optional<PrReservationReport> ParseReadReservation(std::span<const std::byte> data) {
  std::optional<PrInHeader> header = wire::Load<PrInHeader>(data);
  if (!header) return std::nullopt;
  PrReservationReport report{header->prgeneration.value(), std::nullopt};
  if (header->additional_length.value() < sizeof(PrReservationDescriptor)) return report;
  std::optional<PrReservationDescriptor> descriptor = wire::Load<PrReservationDescriptor>(data, sizeof(PrInHeader));
  if (!descriptor) return std::nullopt;
  report.reservation = PrHeldReservation{descriptor->reservation_key.value(), descriptor->scope(), descriptor->type()};
  return report;
}

struct PrFullStatusEntry {
  std::uint64_t key = 0;
  bool all_target_ports = false;
  bool holder = false;
  std::uint8_t scope = 0;  // meaningful when `holder`
  std::uint8_t type = 0;   // meaningful when `holder`
  std::uint16_t relative_target_port = 0;
  std::string initiator_port;  // empty when the TransportID is not a well-formed iSCSI one
};

struct PrFullStatus {
  std::uint32_t generation = 0;
  std::uint32_t additional_length = 0;     // as the target reported it
  std::vector<PrFullStatusEntry> entries;  // the descriptors that arrived whole
  std::size_t parsed_length = 0;           // bytes of descriptors consumed
  [[nodiscard]] bool complete() const { return parsed_length >= additional_length; }
};

// READ FULL STATUS (§6.15.5). nullopt when not even the header arrived.
[[nodiscard]] inline std::optional<PrFullStatus> ParseReadFullStatus(std::span<const std::byte> data) {
  std::optional<PrInHeader> header = wire::Load<PrInHeader>(data);
  if (!header) return std::nullopt;
  PrFullStatus status{header->prgeneration.value(), header->additional_length.value(), {}, 0};
  std::size_t limit = std::min<std::size_t>(data.size(), sizeof(PrInHeader) + std::size_t{status.additional_length});
  std::span<const std::byte> body = data.subspan(sizeof(PrInHeader), limit - sizeof(PrInHeader));
  std::size_t at = 0;
  while (std::optional<PrFullStatusDescriptor> d = wire::Load<PrFullStatusDescriptor>(body, at)) {
    std::size_t transport_id_length = d->additional_descriptor_length.value();
    if (body.size() - at - sizeof(PrFullStatusDescriptor) < transport_id_length) break;
    std::span<const std::byte> transport_id = body.subspan(at + sizeof(PrFullStatusDescriptor), transport_id_length);
    PrFullStatusEntry entry;
    entry.key = d->reservation_key.value();
    entry.all_target_ports = d->all_tg_pt();
    entry.holder = d->r_holder();
    entry.scope = d->scope();
    entry.type = d->type();
    entry.relative_target_port = d->relative_target_port_identifier.value();
    if (auto decoded = DecodeIscsiTransportId(transport_id)) entry.initiator_port = std::move(decoded->initiator_port);
    status.entries.push_back(std::move(entry));
    at += sizeof(PrFullStatusDescriptor) + transport_id_length;
  }
  status.parsed_length = at;
  return status;
}

}  // namespace mpath::scsi::spec
