// The Asynchronous Event Request command and what its completion's Dword 0 says: which kind of event, which notice,
// and which log page to read (with RAE cleared) to re-arm it.
#pragma once

#include <cstdint>

#include "mpath/nvme/spec/log_page.h"
#include "mpath/nvme/spec/queue_entries.h"
#include "mpath/proto/wire.h"

namespace mpath::nvme::spec {

// NVM Express Base Specification 2.0c §5.2 "Asynchronous Event Request command" ("Asynchronous Event Request –
// Completion Queue Entry Dword 0", Asynchronous Event Type values).
enum class AsyncEventType : std::uint8_t {
  kErrorStatus = 0x0,
  kSmartHealthStatus = 0x1,
  kNotice = 0x2,
  kIoCommandSpecificStatus = 0x6,
  kVendorSpecific = 0x7,
};

// NVM Express Base Specification 2.0c §5.2 ("Asynchronous Event Information – Notice").
enum class NoticeEvent : std::uint8_t {
  kNamespaceAttributeChanged = 0x00,
  kFirmwareActivationStarting = 0x01,
  kTelemetryLogChanged = 0x02,
  kAnaChange = 0x03,
  kPredictableLatencyEventAggregateLogChange = 0x04,
  kLbaStatusInformationAlert = 0x05,
  kEnduranceGroupEventAggregateLogChange = 0x06,
  kNormalNvmSubsystemShutdown = 0x07,
  kDiscoveryLogPageChange = 0xF0,
};

// NVM Express Base Specification 2.0c §5.2 ("Asynchronous Event Request – Completion Queue Entry Dword 0").
struct AsyncEvent {
  std::uint8_t type = 0;         // bits 2:0, AsyncEventType
  std::uint8_t info = 0;         // bits 15:8, e.g. NoticeEvent for notices
  std::uint8_t log_page = 0;     // bits 23:16, the LogPageId to read

  [[nodiscard]] static constexpr AsyncEvent Decode(std::uint32_t dw0) {
    return AsyncEvent{static_cast<std::uint8_t>(wire::GetBits<2, 0>(dw0)),
                      static_cast<std::uint8_t>(wire::GetBits<15, 8>(dw0)),
                      static_cast<std::uint8_t>(wire::GetBits<23, 16>(dw0))};
  }
  [[nodiscard]] constexpr std::uint32_t Encode() const {
    std::uint32_t dw0 = 0;
    dw0 = wire::SetBits<2, 0>(dw0, type);
    dw0 = wire::SetBits<15, 8>(dw0, info);
    dw0 = wire::SetBits<23, 16>(dw0, log_page);
    return dw0;
  }
  [[nodiscard]] constexpr bool IsNotice(NoticeEvent event) const {
    return type == static_cast<std::uint8_t>(AsyncEventType::kNotice) && info == static_cast<std::uint8_t>(event);
  }
  friend constexpr bool operator==(const AsyncEvent&, const AsyncEvent&) = default;
};

// The two notices a multipath host acts on.
inline constexpr AsyncEvent kAnaChangeNotice{static_cast<std::uint8_t>(AsyncEventType::kNotice),
                                             static_cast<std::uint8_t>(NoticeEvent::kAnaChange),
                                             static_cast<std::uint8_t>(LogPageId::kAsymmetricNamespaceAccess)};
inline constexpr AsyncEvent kNamespaceAttributeChangedNotice{
    static_cast<std::uint8_t>(AsyncEventType::kNotice), static_cast<std::uint8_t>(NoticeEvent::kNamespaceAttributeChanged),
    static_cast<std::uint8_t>(LogPageId::kChangedNamespaceList)};

// An Asynchronous Event Request SQE. It stays outstanding until an event; give it an executor and no timeout.
[[nodiscard]] SubmissionQueueEntry MakeAsyncEventRequest();

}  // namespace mpath::nvme::spec
