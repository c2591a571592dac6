// SCSI status bytes and sense keys: the vocabulary every other SCSI header speaks.
#pragma once

#include <cstdint>

namespace mpath::scsi::spec {

// SAM-5 r21 §5.3.1 "Status codes" (Table 39).
enum class Status : std::uint8_t {
  kGood = 0x00,
  kCheckCondition = 0x02,
  kConditionMet = 0x04,
  kBusy = 0x08,
  kReservationConflict = 0x18,
  kTaskSetFull = 0x28,
  kAcaActive = 0x30,
  kTaskAborted = 0x40,
};

// SPC-5 r19 §4.4.8 "Sense key and additional sense code definitions" (Table 52).
enum class SenseKey : std::uint8_t {
  kNoSense = 0x0,
  kRecoveredError = 0x1,
  kNotReady = 0x2,
  kMediumError = 0x3,
  kHardwareError = 0x4,
  kIllegalRequest = 0x5,
  kUnitAttention = 0x6,
  kDataProtect = 0x7,
  kBlankCheck = 0x8,
  kVendorSpecific = 0x9,
  kCopyAborted = 0xA,
  kAbortedCommand = 0xB,
  kVolumeOverflow = 0xD,
  kMiscompare = 0xE,
  kCompleted = 0xF,
};

// A sense key with its additional sense code and qualifier: what a target means, independent of the sense format.
struct SenseCode {
  SenseKey key = SenseKey::kNoSense;
  std::uint8_t asc = 0;
  std::uint8_t ascq = 0;
  friend constexpr bool operator==(const SenseCode&, const SenseCode&) = default;
};

// SPC-5 r19 Annex F.2 "Additional sense codes" (Table F.2): the ones mpath sends or acts on.
namespace asc {
inline constexpr SenseCode kLunNotReadyCauseNotReportable{SenseKey::kNotReady, 0x04, 0x00};
inline constexpr SenseCode kLunNotReadyAsymmetricTransition{SenseKey::kNotReady, 0x04, 0x0A};
inline constexpr SenseCode kLunNotReadyTargetPortStandby{SenseKey::kNotReady, 0x04, 0x0B};
inline constexpr SenseCode kLunNotReadyTargetPortUnavailable{SenseKey::kNotReady, 0x04, 0x0C};
inline constexpr SenseCode kLunNotAccessibleOffline{SenseKey::kNotReady, 0x04, 0x12};
inline constexpr SenseCode kInvalidCommandOperationCode{SenseKey::kIllegalRequest, 0x20, 0x00};
inline constexpr SenseCode kLbaOutOfRange{SenseKey::kIllegalRequest, 0x21, 0x00};
inline constexpr SenseCode kInvalidFieldInCdb{SenseKey::kIllegalRequest, 0x24, 0x00};
inline constexpr SenseCode kLogicalUnitNotSupported{SenseKey::kIllegalRequest, 0x25, 0x00};
inline constexpr SenseCode kInvalidFieldInParameterList{SenseKey::kIllegalRequest, 0x26, 0x00};
inline constexpr SenseCode kParameterListLengthError{SenseKey::kIllegalRequest, 0x1A, 0x00};
inline constexpr SenseCode kInvalidReleaseOfPersistentReservation{SenseKey::kIllegalRequest, 0x26, 0x04};
inline constexpr SenseCode kInsufficientRegistrationResources{SenseKey::kIllegalRequest, 0x55, 0x04};
inline constexpr SenseCode kPowerOnResetOrBusDeviceReset{SenseKey::kUnitAttention, 0x29, 0x00};
inline constexpr SenseCode kPowerOnOccurred{SenseKey::kUnitAttention, 0x29, 0x01};
inline constexpr SenseCode kITNexusLossOccurred{SenseKey::kUnitAttention, 0x29, 0x07};
inline constexpr SenseCode kParametersChanged{SenseKey::kUnitAttention, 0x2A, 0x00};
inline constexpr SenseCode kReservationsPreempted{SenseKey::kUnitAttention, 0x2A, 0x03};
inline constexpr SenseCode kReservationsReleased{SenseKey::kUnitAttention, 0x2A, 0x04};
inline constexpr SenseCode kRegistrationsPreempted{SenseKey::kUnitAttention, 0x2A, 0x05};
inline constexpr SenseCode kAsymmetricAccessStateChanged{SenseKey::kUnitAttention, 0x2A, 0x06};
inline constexpr SenseCode kImplicitAsymmetricAccessStateTransitionFailed{SenseKey::kUnitAttention, 0x2A, 0x07};
inline constexpr SenseCode kCapacityDataHasChanged{SenseKey::kUnitAttention, 0x2A, 0x09};
inline constexpr SenseCode kInquiryDataHasChanged{SenseKey::kUnitAttention, 0x3F, 0x03};
inline constexpr SenseCode kReportedLunsDataHasChanged{SenseKey::kUnitAttention, 0x3F, 0x0E};
inline constexpr SenseCode kScsiParityError{SenseKey::kAbortedCommand, 0x47, 0x00};
inline constexpr SenseCode kUnrecoveredReadError{SenseKey::kMediumError, 0x11, 0x00};
inline constexpr SenseCode kWriteProtected{SenseKey::kDataProtect, 0x27, 0x00};
inline constexpr SenseCode kMiscompareDuringVerify{SenseKey::kMiscompare, 0x1D, 0x00};
}  // namespace asc

}  // namespace mpath::scsi::spec
