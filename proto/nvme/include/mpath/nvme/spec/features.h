// Set Features and Get Features, and the three features a multipath host sets: which asynchronous events to report,
// how many I/O queues, and the keep alive timeout.
#pragma once

#include <cstdint>

#include "mpath/nvme/spec/queue_entries.h"
#include "mpath/proto/wire.h"

namespace mpath::nvme::spec {

// NVM Express Base Specification 2.0c §5.27.1 "Feature Specific Information" ("Feature Identifiers").
enum class FeatureId : std::uint8_t {
  kArbitration = 0x01,
  kPowerManagement = 0x02,
  kTemperatureThreshold = 0x04,
  kVolatileWriteCache = 0x06,
  kNumberOfQueues = 0x07,                  // see NumberOfQueues
  kInterruptCoalescing = 0x08,
  kInterruptVectorConfiguration = 0x09,
  kAsynchronousEventConfiguration = 0x0B,  // see async_event_config
  kAutonomousPowerStateTransition = 0x0C,
  kHostMemoryBuffer = 0x0D,
  kTimestamp = 0x0E,
  kKeepAliveTimer = 0x0F,                  // CDW11: KATO in milliseconds; 0 disables the timer
  kHostIdentifier = 0x81,
  kReservationNotificationMask = 0x82,
  kReservationPersistence = 0x83,
};

// NVM Express Base Specification 2.0c §5.15 "Get Features command" ("Get Features – Select").
enum class FeatureSelect : std::uint8_t {
  kCurrent = 0x0,
  kDefault = 0x1,
  kSaved = 0x2,
  kSupportedCapabilities = 0x3,
};

// SV, Set Features CDW10 bit 31: also save the value across resets.
enum class SaveFeature : std::uint8_t { kNo, kYes };

// NVM Express Base Specification 2.0c §5.27 "Set Features command" ("Set Features – Command Dword 10").
struct SetFeaturesFields {
  FeatureId fid = FeatureId::kArbitration;  // CDW10 bits 7:0
  SaveFeature save = SaveFeature::kNo;      // CDW10 bit 31
  std::uint32_t cdw11 = 0;                  // feature specific value
};

// NVM Express Base Specification 2.0c §5.15 "Get Features command" ("Get Features – Command Dword 10").
struct GetFeaturesFields {
  FeatureId fid = FeatureId::kArbitration;          // CDW10 bits 7:0
  FeatureSelect select = FeatureSelect::kCurrent;   // CDW10 bits 10:8
  std::uint32_t cdw11 = 0;
};

[[nodiscard]] SubmissionQueueEntry MakeSetFeatures(FeatureId fid, std::uint32_t cdw11,
                                                   SaveFeature save = SaveFeature::kNo);
[[nodiscard]] SubmissionQueueEntry MakeGetFeatures(FeatureId fid, FeatureSelect select = FeatureSelect::kCurrent);
[[nodiscard]] SetFeaturesFields DecodeSetFeatures(const SubmissionQueueEntry& sqe);
[[nodiscard]] GetFeaturesFields DecodeGetFeatures(const SubmissionQueueEntry& sqe);

// NVM Express Base Specification 2.0c §5.15 ("Get Features – Select", supported capabilities in Dword 0).
namespace feature_capabilities {
inline constexpr unsigned kSaveable = 0;
inline constexpr unsigned kNamespaceSpecific = 1;
inline constexpr unsigned kChangeable = 2;
}  // namespace feature_capabilities

// NVM Express Base Specification 2.0c §5.27.1 "Asynchronous Event Configuration" (Feature Identifier 0Bh), CDW11
// bits: which notices the controller sends. Bits 7:0 are SMART / health critical warnings.
namespace async_event_config {
inline constexpr unsigned kNamespaceAttributeNotices = 8;
inline constexpr unsigned kFirmwareActivationNotices = 9;
inline constexpr unsigned kTelemetryLogNotices = 10;
inline constexpr unsigned kAnaChangeNotices = 11;
}  // namespace async_event_config

// NVM Express Base Specification 2.0c §5.27.1 "Number of Queues" (Feature Identifier 07h): requested counts in CDW11
// and allocated counts in completion Dword 0, both 0-based, submission queues in bits 15:0 and completion queues in
// bits 31:16. FFFFh is not a valid request.
struct NumberOfQueues {
  std::uint16_t submission_queues_0based = 0;
  std::uint16_t completion_queues_0based = 0;

  [[nodiscard]] static constexpr NumberOfQueues Decode(std::uint32_t dword) {
    return NumberOfQueues{static_cast<std::uint16_t>(wire::GetBits<15, 0>(dword)),
                          static_cast<std::uint16_t>(wire::GetBits<31, 16>(dword))};
  }
  [[nodiscard]] constexpr std::uint32_t Encode() const {
    return wire::SetBits<31, 16>(std::uint32_t{submission_queues_0based}, completion_queues_0based);
  }
};

}  // namespace mpath::nvme::spec
