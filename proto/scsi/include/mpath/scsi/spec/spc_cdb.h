// SPC-5 command descriptor blocks that every SCSI device answers, plus the operation codes mpath sends or the
// simulated array answers. Each CDB has a Make() so that a caller fills it by name and gets the length right.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mpath/proto/wire.h"
#include "mpath/scsi/spec/sense.h"

namespace mpath::scsi::spec {

// SPC-5 r19 §6.1 "Commands for all device types" (Table 62) and SBC-4 r22 §5.1 (Table 33): operation codes.
namespace op {
inline constexpr std::uint8_t kTestUnitReady = 0x00;
inline constexpr std::uint8_t kRequestSense = 0x03;
inline constexpr std::uint8_t kInquiry = 0x12;
inline constexpr std::uint8_t kModeSelect6 = 0x15;
inline constexpr std::uint8_t kModeSense6 = 0x1A;
inline constexpr std::uint8_t kReceiveDiagnosticResults = 0x1C;
inline constexpr std::uint8_t kSendDiagnostic = 0x1D;
inline constexpr std::uint8_t kReadCapacity10 = 0x25;
inline constexpr std::uint8_t kRead10 = 0x28;
inline constexpr std::uint8_t kWrite10 = 0x2A;
inline constexpr std::uint8_t kSynchronizeCache10 = 0x35;
inline constexpr std::uint8_t kWriteSame10 = 0x41;
inline constexpr std::uint8_t kUnmap = 0x42;
inline constexpr std::uint8_t kLogSelect = 0x4C;
inline constexpr std::uint8_t kLogSense = 0x4D;
inline constexpr std::uint8_t kModeSelect10 = 0x55;
inline constexpr std::uint8_t kModeSense10 = 0x5A;
inline constexpr std::uint8_t kPersistentReserveIn = 0x5E;
inline constexpr std::uint8_t kPersistentReserveOut = 0x5F;
inline constexpr std::uint8_t kRead16 = 0x88;
inline constexpr std::uint8_t kWrite16 = 0x8A;
inline constexpr std::uint8_t kSynchronizeCache16 = 0x91;
inline constexpr std::uint8_t kWriteSame16 = 0x93;
inline constexpr std::uint8_t kServiceActionIn16 = 0x9E;
inline constexpr std::uint8_t kReportLuns = 0xA0;
inline constexpr std::uint8_t kMaintenanceIn = 0xA3;
inline constexpr std::uint8_t kMaintenanceOut = 0xA4;
}  // namespace op

// Service actions of the opcodes above that carry one in byte 1 bits 4:0.
namespace service_action {
inline constexpr std::uint8_t kReportTargetPortGroups = 0x0A;   // MAINTENANCE IN
inline constexpr std::uint8_t kSetTargetPortGroups = 0x0A;      // MAINTENANCE OUT
inline constexpr std::uint8_t kReadCapacity16 = 0x10;           // SERVICE ACTION IN(16)
}  // namespace service_action

// SPC-5 r19 §4.2.5.1 "Operation code" (Table 12): the CDB length that the GROUP CODE (bits 7:5) implies; 1 for the
// reserved and vendor specific groups, whose length the opcode alone does not tell.
[[nodiscard]] constexpr std::size_t CdbLengthForOpcode(std::uint8_t opcode) {
  switch (wire::GetBits<7, 5>(opcode)) {
    case 0: return 6;
    case 1:
    case 2: return 10;
    case 4: return 16;
    case 5: return 12;
    default: return 1;
  }
}

// The byte-1 service action field shared by MAINTENANCE IN/OUT and SERVICE ACTION IN(16).
[[nodiscard]] constexpr std::uint8_t ServiceActionOf(std::uint8_t cdb_byte1) { return wire::GetBits<4, 0>(cdb_byte1); }

// SPC-5 r19 §6.47 "TEST UNIT READY command" (Table 289).
struct TestUnitReadyCdb {
  std::uint8_t operation_code;
  std::uint8_t reserved[4];
  std::uint8_t control;

  static constexpr TestUnitReadyCdb Make() { return TestUnitReadyCdb{op::kTestUnitReady, {}, 0}; }
};
MPATH_WIRE_LAYOUT(TestUnitReadyCdb, 6);
MPATH_WIRE_FIELD(TestUnitReadyCdb, control, 5);

// SPC-5 r19 §6.6.1 "INQUIRY command" (Table 147).
struct InquiryCdb {
  std::uint8_t operation_code;
  std::uint8_t flags;  // EVPD bit 0 (CMDDT, bit 1, is obsolete)
  std::uint8_t page_code;
  wire::Be16 allocation_length;
  std::uint8_t control;

  [[nodiscard]] constexpr bool evpd() const { return wire::GetBit<0>(flags); }
  [[nodiscard]] constexpr bool cmddt() const { return wire::GetBit<1>(flags); }
  static constexpr InquiryCdb Standard(std::uint16_t allocation_length) {
    return InquiryCdb{op::kInquiry, 0, 0, allocation_length, 0};
  }
  static constexpr InquiryCdb Vpd(std::uint8_t page_code, std::uint16_t allocation_length) {
    return InquiryCdb{op::kInquiry, wire::SetBit<0>(std::uint8_t{0}, true), page_code, allocation_length, 0};
  }
};
MPATH_WIRE_LAYOUT(InquiryCdb, 6);
MPATH_WIRE_FIELD(InquiryCdb, page_code, 2);
MPATH_WIRE_FIELD(InquiryCdb, allocation_length, 3);

// SPC-5 r19 §6.39 "REQUEST SENSE command" (Table 271).
struct RequestSenseCdb {
  std::uint8_t operation_code;
  std::uint8_t flags;  // DESC bit 0
  std::uint8_t reserved[2];
  std::uint8_t allocation_length;
  std::uint8_t control;

  [[nodiscard]] constexpr bool desc() const { return wire::GetBit<0>(flags); }
  // DESC asks for descriptor format sense data.
  static constexpr RequestSenseCdb Make(std::uint8_t allocation_length, SenseFormat format = SenseFormat::kFixed) {
    return RequestSenseCdb{op::kRequestSense, wire::SetBit<0>(std::uint8_t{0}, format == SenseFormat::kDescriptor),
                           {}, allocation_length, 0};
  }
};
MPATH_WIRE_LAYOUT(RequestSenseCdb, 6);
MPATH_WIRE_FIELD(RequestSenseCdb, allocation_length, 4);

// SPC-5 r19 §6.33 "REPORT LUNS command" (Table 253).
struct ReportLunsCdb {
  std::uint8_t operation_code;
  std::uint8_t reserved1;
  std::uint8_t select_report;
  std::uint8_t reserved3[3];
  wire::Be32 allocation_length;
  std::uint8_t reserved10;
  std::uint8_t control;

  static constexpr ReportLunsCdb Make(std::uint32_t allocation_length, std::uint8_t select_report = 0) {
    return ReportLunsCdb{op::kReportLuns, 0, select_report, {}, allocation_length, 0, 0};
  }
};
MPATH_WIRE_LAYOUT(ReportLunsCdb, 12);
MPATH_WIRE_FIELD(ReportLunsCdb, select_report, 2);
MPATH_WIRE_FIELD(ReportLunsCdb, allocation_length, 6);

// SPC-5 r19 §6.33 Table 254 "SELECT REPORT field".
namespace select_report {
inline constexpr std::uint8_t kAllExceptWellKnown = 0x00;
inline constexpr std::uint8_t kWellKnownOnly = 0x01;
inline constexpr std::uint8_t kAll = 0x02;
}  // namespace select_report

// SPC-5 r19 §6.37.1 "REPORT TARGET PORT GROUPS command" (Table 263): MAINTENANCE IN, service action 0Ah.
struct ReportTargetPortGroupsCdb {
  std::uint8_t operation_code;
  std::uint8_t format_and_action;  // PARAMETER DATA FORMAT bits 7:5, SERVICE ACTION bits 4:0
  std::uint8_t reserved2[4];
  wire::Be32 allocation_length;
  std::uint8_t reserved10;
  std::uint8_t control;

  [[nodiscard]] constexpr std::uint8_t parameter_data_format() const {
    return wire::GetBits<7, 5>(format_and_action);
  }
  [[nodiscard]] constexpr std::uint8_t service_action() const { return wire::GetBits<4, 0>(format_and_action); }
  // `parameter_data_format` is an RtpgFormat value (alua.h): 000b length only, 001b extended header.
  static constexpr ReportTargetPortGroupsCdb Make(std::uint32_t allocation_length,
                                                  std::uint8_t parameter_data_format = 0) {
    std::uint8_t b1 = wire::SetBits<4, 0>(std::uint8_t{0}, service_action::kReportTargetPortGroups);
    b1 = wire::SetBits<7, 5>(b1, parameter_data_format);
    return ReportTargetPortGroupsCdb{op::kMaintenanceIn, b1, {}, allocation_length, 0, 0};
  }
};
MPATH_WIRE_LAYOUT(ReportTargetPortGroupsCdb, 12);
MPATH_WIRE_FIELD(ReportTargetPortGroupsCdb, format_and_action, 1);
MPATH_WIRE_FIELD(ReportTargetPortGroupsCdb, allocation_length, 6);

// SPC-5 r19 §6.45.1 "SET TARGET PORT GROUPS command" (Table 283): MAINTENANCE OUT, service action 0Ah.
struct SetTargetPortGroupsCdb {
  std::uint8_t operation_code;
  std::uint8_t service_action_field;  // SERVICE ACTION bits 4:0
  std::uint8_t reserved2[4];
  wire::Be32 parameter_list_length;
  std::uint8_t reserved10;
  std::uint8_t control;

  [[nodiscard]] constexpr std::uint8_t service_action() const { return wire::GetBits<4, 0>(service_action_field); }
  static constexpr SetTargetPortGroupsCdb Make(std::uint32_t parameter_list_length) {
    return SetTargetPortGroupsCdb{op::kMaintenanceOut, service_action::kSetTargetPortGroups, {},
                                  parameter_list_length, 0, 0};
  }
};
MPATH_WIRE_LAYOUT(SetTargetPortGroupsCdb, 12);
MPATH_WIRE_FIELD(SetTargetPortGroupsCdb, parameter_list_length, 6);

}  // namespace mpath::scsi::spec
