// The Get Log Page command (which log, how much of it, from which offset, and whether reading it re-arms the
// asynchronous event it answers) and the Changed Namespace List log page.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "mpath/core/error.h"
#include "mpath/nvme/spec/common.h"
#include "mpath/nvme/spec/queue_entries.h"

namespace mpath::nvme::spec {

// NVM Express Base Specification 2.0c §5.16 "Get Log Page command" ("Get Log Page – Log Page Identifiers").
enum class LogPageId : std::uint8_t {
  kSupportedLogPages = 0x00,
  kErrorInformation = 0x01,
  kSmartHealth = 0x02,
  kFirmwareSlotInformation = 0x03,
  kChangedNamespaceList = 0x04,
  kCommandsSupportedAndEffects = 0x05,
  kDeviceSelfTest = 0x06,
  kTelemetryHostInitiated = 0x07,
  kTelemetryControllerInitiated = 0x08,
  kEnduranceGroupInformation = 0x09,
  kPredictableLatencyPerNvmSet = 0x0A,
  kPredictableLatencyEventAggregate = 0x0B,
  kAsymmetricNamespaceAccess = 0x0C,
  kPersistentEvent = 0x0D,
  kReservationNotification = 0x80,
  kSanitizeStatus = 0x81,
};

// RAE, CDW10 bit 15: kRetain keeps the asynchronous event that pointed at this log page outstanding, so the
// controller keeps that event type masked; kClear re-arms it.
enum class RetainAsyncEvent : std::uint8_t { kClear, kRetain };

// NVM Express Base Specification 2.0c §5.16 "Get Log Page command" ("Get Log Page – Command Dword 10" through
// "– Command Dword 14").
struct GetLogPageFields {
  LogPageId lid = LogPageId::kSupportedLogPages;  // CDW10 bits 7:0
  std::uint8_t lsp = 0;                            // CDW10 bits 14:8, log specific
  RetainAsyncEvent rae = RetainAsyncEvent::kClear; // CDW10 bit 15
  std::uint32_t numd = 0;                          // NUMDU:NUMDL (CDW11 15:0, CDW10 31:16), dwords, 0-based
  std::uint16_t lsi = 0;                           // CDW11 bits 31:16
  std::uint64_t offset = 0;                        // LPOU:LPOL (CDW13:CDW12), bytes, dword aligned
  std::uint8_t csi = 0;                            // CDW14 bits 31:24
  std::uint32_t nsid = 0;

  [[nodiscard]] constexpr std::uint64_t length_bytes() const { return (std::uint64_t{numd} + 1) * 4; }
};

struct GetLogPageArgs {
  LogPageId lid = LogPageId::kSupportedLogPages;
  std::uint32_t nsid = kBroadcastNsid;
  std::uint32_t length_bytes = 4;  // rounded down to whole dwords; at least one dword is requested
  std::uint64_t offset = 0;        // must be a multiple of 4
  std::uint8_t lsp = 0;
  RetainAsyncEvent rae = RetainAsyncEvent::kClear;
};

[[nodiscard]] SubmissionQueueEntry MakeGetLogPage(const GetLogPageArgs& args);
[[nodiscard]] GetLogPageFields DecodeGetLogPage(const SubmissionQueueEntry& sqe);

// NVM Express Base Specification 2.0c §5.16.1 "Log Specific Information" ("Changed Namespace List", Log Page
// Identifier 04h): up to 1024 NSIDs whose Identify Namespace data changed since the log was last read; a first entry
// of FFFFFFFFh means more than 1024 changed.
inline constexpr std::size_t kChangedNamespaceListSize = 4096;
inline constexpr std::size_t kMaxChangedNamespaces = kChangedNamespaceListSize / 4;

struct ChangedNamespaces {
  bool overflow = false;  // more than 1024 changed: rescan every namespace
  std::vector<std::uint32_t> nsids;
};
[[nodiscard]] ChangedNamespaces ParseChangedNamespaceList(std::span<const std::byte> bytes);

}  // namespace mpath::nvme::spec
