// Command opcodes: the first byte of every SQE, for the admin queue and for I/O queues of the NVM command set.
#pragma once

#include <cstdint>
#include <string_view>

namespace mpath::nvme::spec {

// NVM Express Base Specification 2.0c §5 "Admin Command Set" ("Opcodes for Admin Commands").
enum class AdminOpcode : std::uint8_t {
  kDeleteIoSubmissionQueue = 0x00,
  kCreateIoSubmissionQueue = 0x01,
  kGetLogPage = 0x02,
  kDeleteIoCompletionQueue = 0x04,
  kCreateIoCompletionQueue = 0x05,
  kIdentify = 0x06,
  kAbort = 0x08,
  kSetFeatures = 0x09,
  kGetFeatures = 0x0A,
  kAsynchronousEventRequest = 0x0C,
  kNamespaceManagement = 0x0D,
  kFirmwareCommit = 0x10,
  kFirmwareImageDownload = 0x11,
  kDeviceSelfTest = 0x14,
  kNamespaceAttachment = 0x15,
  kKeepAlive = 0x18,
  kDirectiveSend = 0x19,
  kDirectiveReceive = 0x1A,
  kVirtualizationManagement = 0x1C,
  kNvmeMiSend = 0x1D,
  kNvmeMiReceive = 0x1E,
  kCapacityManagement = 0x20,
  kLockdown = 0x24,
  kDoorbellBufferConfig = 0x7C,
  kFabricsCommand = 0x7F,
  kFormatNvm = 0x80,
  kSecuritySend = 0x81,
  kSecurityReceive = 0x82,
  kSanitize = 0x84,
  kGetLbaStatus = 0x86,
};

// NVM Command Set Specification 1.0c §3 "I/O Commands for the NVM Command Set" ("Opcodes for NVM Command Set
// Commands"), together with NVM Express Base Specification 2.0c §7 "I/O Commands" common to every command set
// (Flush and the four reservation commands).
enum class IoOpcode : std::uint8_t {
  kFlush = 0x00,
  kWrite = 0x01,
  kRead = 0x02,
  kWriteUncorrectable = 0x04,
  kCompare = 0x05,
  kWriteZeroes = 0x08,
  kDatasetManagement = 0x09,
  kVerify = 0x0C,
  kReservationRegister = 0x0D,
  kReservationReport = 0x0E,
  kReservationAcquire = 0x11,
  kReservationRelease = 0x15,
  kCopy = 0x19,
};

// The spec's name of an opcode ("Identify", "Reservation Acquire"); "unknown" for one not listed above.
std::string_view Name(AdminOpcode opcode);
std::string_view Name(IoOpcode opcode);

constexpr std::uint8_t Raw(AdminOpcode opcode) { return static_cast<std::uint8_t>(opcode); }
constexpr std::uint8_t Raw(IoOpcode opcode) { return static_cast<std::uint8_t>(opcode); }

}  // namespace mpath::nvme::spec
