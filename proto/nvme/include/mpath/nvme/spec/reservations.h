// Reservations: the four reservation commands, their data, the Reservation Status data structure that Report returns,
// and the access rules of the six reservation types.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "mpath/core/error.h"
#include "mpath/nvme/spec/common.h"
#include "mpath/nvme/spec/queue_entries.h"
#include "mpath/proto/wire.h"

namespace mpath::nvme::spec {

// NVM Express Base Specification 2.0c §8.19 "Reservations" ("Reservation Type Encoding").
enum class ReservationType : std::uint8_t {
  kNone = 0x0,
  kWriteExclusive = 0x1,
  kExclusiveAccess = 0x2,
  kWriteExclusiveRegistrantsOnly = 0x3,
  kExclusiveAccessRegistrantsOnly = 0x4,
  kWriteExclusiveAllRegistrants = 0x5,
  kExclusiveAccessAllRegistrants = 0x6,
};

[[nodiscard]] constexpr bool IsValidReservationType(std::uint8_t raw) { return raw >= 0x1 && raw <= 0x6; }
// Every registrant holds an all-registrants reservation.
[[nodiscard]] constexpr bool IsAllRegistrants(ReservationType type) {
  return type == ReservationType::kWriteExclusiveAllRegistrants ||
         type == ReservationType::kExclusiveAccessAllRegistrants;
}
std::string_view Name(ReservationType type);

// How a host stands towards a namespace's reservation.
enum class ReservationRole : std::uint8_t { kHolder, kRegistrant, kNonRegistrant };
// Which command group a command belongs to: Read (Read, Compare, Verify) or Write (Write, Write Zeroes, Dataset
// Management, Write Uncorrectable, Flush, Copy).
enum class AccessKind : std::uint8_t { kRead, kWrite };

// NVM Express Base Specification 2.0c §8.19 "Reservations" ("Command Behavior in the Presence of a Reservation"):
// whether a command of `access` from a host in `role` may proceed under a reservation of `type`. A host that may not
// gets Reservation Conflict.
[[nodiscard]] constexpr bool ReservationPermits(ReservationType type, ReservationRole role, AccessKind access) {
  if (type == ReservationType::kNone || role == ReservationRole::kHolder) return true;
  const bool registrant = role == ReservationRole::kRegistrant;
  switch (type) {
    case ReservationType::kWriteExclusive: return access == AccessKind::kRead;
    case ReservationType::kExclusiveAccess: return false;
    case ReservationType::kWriteExclusiveRegistrantsOnly:
    case ReservationType::kWriteExclusiveAllRegistrants: return access == AccessKind::kRead || registrant;
    case ReservationType::kExclusiveAccessRegistrantsOnly:
    case ReservationType::kExclusiveAccessAllRegistrants: return registrant;
    default: return true;
  }
}

// IEKEY, CDW10 bit 3: skip the current-key check. Revision 1.3 and later define it for Reservation Register only.
enum class IgnoreExistingKey : std::uint8_t { kNo, kYes };

// NVM Express Base Specification 2.0c §7.3 "Reservation Register command" ("Command Dword 10").
enum class RegisterAction : std::uint8_t { kRegister = 0x0, kUnregister = 0x1, kReplace = 0x2 };
// CPTPL, CDW10 bits 31:30. 01b is reserved.
enum class ChangePtpl : std::uint8_t { kNoChange = 0x0, kClear = 0x2, kSet = 0x3 };

struct ReservationRegisterFields {
  std::uint8_t action = 0;  // RREGA, bits 2:0 (RegisterAction when valid)
  bool iekey = false;       // bit 3
  std::uint8_t cptpl = 0;   // bits 31:30 (ChangePtpl when valid)
};

// NVM Express Base Specification 2.0c §7.3 "Reservation Register command" ("Reservation Register Data Structure").
struct ReservationRegisterData {
  Le64 crkey;  // current reservation key
  Le64 nrkey;  // new reservation key
};
MPATH_WIRE_LAYOUT(ReservationRegisterData, 16);
MPATH_WIRE_FIELD(ReservationRegisterData, nrkey, 8);

// NVM Express Base Specification 2.0c §7.2 "Reservation Acquire command" ("Command Dword 10").
enum class AcquireAction : std::uint8_t { kAcquire = 0x0, kPreempt = 0x1, kPreemptAndAbort = 0x2 };

struct ReservationAcquireFields {
  std::uint8_t action = 0;  // RACQA, bits 2:0
  bool iekey = false;       // bit 3
  std::uint8_t rtype = 0;   // bits 15:8
};

// NVM Express Base Specification 2.0c §7.2 "Reservation Acquire command" ("Reservation Acquire Data Structure").
struct ReservationAcquireData {
  Le64 crkey;  // current reservation key
  Le64 prkey;  // preempt reservation key
};
MPATH_WIRE_LAYOUT(ReservationAcquireData, 16);
MPATH_WIRE_FIELD(ReservationAcquireData, prkey, 8);

// NVM Express Base Specification 2.0c §7.4 "Reservation Release command" ("Command Dword 10").
enum class ReleaseAction : std::uint8_t { kRelease = 0x0, kClear = 0x1 };

struct ReservationReleaseFields {
  std::uint8_t action = 0;  // RRELA, bits 2:0
  bool iekey = false;       // bit 3
  std::uint8_t rtype = 0;   // bits 15:8
};

// NVM Express Base Specification 2.0c §7.4 "Reservation Release command" ("Reservation Release Data Structure").
struct ReservationReleaseData {
  Le64 crkey;
};
MPATH_WIRE_LAYOUT(ReservationReleaseData, 8);

// EDS, Reservation Report CDW11 bit 0: registrants with 128-bit host identifiers (required over fabrics).
enum class ReportFormat : std::uint8_t { kCompact, kExtended };

// NVM Express Base Specification 2.0c §7.5 "Reservation Report command" ("Command Dword 10", "Command Dword 11").
struct ReservationReportFields {
  std::uint32_t numd = 0;  // CDW10, dwords to return, 0-based
  ReportFormat format = ReportFormat::kCompact;

  [[nodiscard]] constexpr std::uint64_t length_bytes() const { return (std::uint64_t{numd} + 1) * 4; }
};

// NVM Express Base Specification 2.0c §7.5 "Reservation Report command" ("Reservation Status Data Structure").
struct ReservationStatusHeader {
  Le32 gen;            // generation, bumped by every successful Register, preempt and clear
  std::uint8_t rtype;  // ReservationType; 0 when no reservation is held
  Le16 regctl;         // number of Registered Controller data structures that follow
  std::uint8_t reserved7[2];
  std::uint8_t ptpls;  // persist through power loss state, bit 0
  std::uint8_t reserved10[14];
};
MPATH_WIRE_LAYOUT(ReservationStatusHeader, 24);
MPATH_WIRE_FIELD(ReservationStatusHeader, rtype, 4);
MPATH_WIRE_FIELD(ReservationStatusHeader, regctl, 5);
MPATH_WIRE_FIELD(ReservationStatusHeader, ptpls, 9);

// NVM Express Base Specification 2.0c §7.5 ("Reservation Status Extended Data Structure"): the same header padded to
// 64 bytes, followed by extended registered controller data structures.
struct ReservationStatusExtendedHeader {
  ReservationStatusHeader status;
  std::uint8_t reserved24[40];
};
MPATH_WIRE_LAYOUT(ReservationStatusExtendedHeader, 64);

// RCSTS bit 0: this registrant holds the reservation.
inline constexpr unsigned kRcstsHoldsReservation = 0;
// CNTLID of a registrant no controller of which is known to the answering subsystem (dynamic controller model).
inline constexpr std::uint16_t kCntlidDynamic = 0xFFFF;

// NVM Express Base Specification 2.0c §7.5 ("Registered Controller Data Structure").
struct RegisteredController {
  Le16 cntlid;
  std::uint8_t rcsts;
  std::uint8_t reserved3[5];
  std::array<std::uint8_t, 8> hostid;  // 64-bit host identifier
  Le64 rkey;
};
MPATH_WIRE_LAYOUT(RegisteredController, 24);
MPATH_WIRE_FIELD(RegisteredController, hostid, 8);
MPATH_WIRE_FIELD(RegisteredController, rkey, 16);

// NVM Express Base Specification 2.0c §7.5 ("Registered Controller Extended Data Structure").
struct RegisteredControllerExtended {
  Le16 cntlid;
  std::uint8_t rcsts;
  std::uint8_t reserved3[5];
  Le64 rkey;
  HostId hostid;  // 128-bit host identifier
  std::uint8_t reserved32[32];
};
MPATH_WIRE_LAYOUT(RegisteredControllerExtended, 64);
MPATH_WIRE_FIELD(RegisteredControllerExtended, rkey, 8);
MPATH_WIRE_FIELD(RegisteredControllerExtended, hostid, 16);

[[nodiscard]] SubmissionQueueEntry MakeReservationRegister(std::uint32_t nsid, RegisterAction action,
                                                           IgnoreExistingKey iekey = IgnoreExistingKey::kNo,
                                                           ChangePtpl cptpl = ChangePtpl::kNoChange);
[[nodiscard]] SubmissionQueueEntry MakeReservationAcquire(std::uint32_t nsid, AcquireAction action,
                                                          ReservationType type);
[[nodiscard]] SubmissionQueueEntry MakeReservationRelease(std::uint32_t nsid, ReleaseAction action,
                                                          ReservationType type);
// `length_bytes` is rounded down to whole dwords (at least one).
[[nodiscard]] SubmissionQueueEntry MakeReservationReport(std::uint32_t nsid, std::uint32_t length_bytes,
                                                         ReportFormat format = ReportFormat::kExtended);

[[nodiscard]] ReservationRegisterFields DecodeReservationRegister(const SubmissionQueueEntry& sqe);
[[nodiscard]] ReservationAcquireFields DecodeReservationAcquire(const SubmissionQueueEntry& sqe);
[[nodiscard]] ReservationReleaseFields DecodeReservationRelease(const SubmissionQueueEntry& sqe);
[[nodiscard]] ReservationReportFields DecodeReservationReport(const SubmissionQueueEntry& sqe);

struct Registrant {
  std::uint16_t cntlid = 0;
  bool holds_reservation = false;
  std::uint64_t rkey = 0;
  HostId hostid{};  // compact format: the 64-bit identifier in bytes 0..7, the rest zero
};

struct ReservationStatus {
  std::uint32_t generation = 0;
  std::uint8_t rtype = 0;  // ReservationType when IsValidReservationType(rtype); 0: none
  std::uint16_t regctl = 0;
  bool ptpl = false;
  std::vector<Registrant> registrants;  // those that arrived: fewer than regctl when the reply was cut short
  [[nodiscard]] bool truncated() const { return registrants.size() < regctl; }
  [[nodiscard]] ReservationType type() const { return static_cast<ReservationType>(rtype); }
};

// Decodes a Reservation Status data structure in the given format. Fails only when even the header did not arrive;
// registrants beyond the bytes received are left out (see ReservationStatus::truncated).
[[nodiscard]] Result<ReservationStatus> ParseReservationStatus(std::span<const std::byte> bytes, ReportFormat format);

}  // namespace mpath::nvme::spec
