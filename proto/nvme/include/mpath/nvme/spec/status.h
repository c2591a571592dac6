// Completion status codes by status code type, with constructors for the Status field and a name for logs. The raw
// field itself (SCT, SC, CRD, More, DNR) is Status in queue_entries.h.
#pragma once

#include <cstdint>
#include <string_view>

#include "mpath/nvme/spec/queue_entries.h"

namespace mpath::nvme::spec {

// NVM Express Base Specification 2.0c §4.6.1.2.1 "Generic Command Status Definition" ("Status Code – Generic
// Command Status Values", with the I/O command set specific values from 80h).
enum class GenericStatus : std::uint8_t {
  kSuccess = 0x00,
  kInvalidCommandOpcode = 0x01,
  kInvalidFieldInCommand = 0x02,
  kCommandIdConflict = 0x03,
  kDataTransferError = 0x04,
  kAbortedPowerLossNotification = 0x05,
  kInternalError = 0x06,
  kAbortRequested = 0x07,
  kAbortedSqDeletion = 0x08,
  kAbortedFailedFusedCommand = 0x09,
  kAbortedMissingFusedCommand = 0x0A,
  kInvalidNamespaceOrFormat = 0x0B,
  kCommandSequenceError = 0x0C,
  kInvalidSglSegmentDescriptor = 0x0D,
  kInvalidNumberOfSglDescriptors = 0x0E,
  kDataSglLengthInvalid = 0x0F,
  kMetadataSglLengthInvalid = 0x10,
  kSglDescriptorTypeInvalid = 0x11,
  kInvalidUseOfControllerMemoryBuffer = 0x12,
  kPrpOffsetInvalid = 0x13,
  kAtomicWriteUnitExceeded = 0x14,
  kOperationDenied = 0x15,
  kSglOffsetInvalid = 0x16,
  kHostIdentifierInconsistentFormat = 0x18,
  kKeepAliveTimerExpired = 0x19,
  kKeepAliveTimeoutInvalid = 0x1A,
  kAbortedPreemptAndAbort = 0x1B,
  kSanitizeFailed = 0x1C,
  kSanitizeInProgress = 0x1D,
  kSglDataBlockGranularityInvalid = 0x1E,
  kCommandNotSupportedForQueueInCmb = 0x1F,
  kNamespaceWriteProtected = 0x20,
  kCommandInterrupted = 0x21,
  kTransientTransportError = 0x22,
  kProhibitedByLockdown = 0x23,
  kAdminCommandMediaNotReady = 0x24,
  kLbaOutOfRange = 0x80,
  kCapacityExceeded = 0x81,
  kNamespaceNotReady = 0x82,
  kReservationConflict = 0x83,
  kFormatInProgress = 0x84,
};

// NVM Express Base Specification 2.0c §4.6.1.2.2 "Command Specific Status Definition" ("Status Code – Command
// Specific Status Values"). Values from 80h depend on the command set and the command; those listed are the NVM
// command set's.
enum class CommandSpecificStatus : std::uint8_t {
  kCompletionQueueInvalid = 0x00,
  kInvalidQueueIdentifier = 0x01,
  kInvalidQueueSize = 0x02,
  kAbortCommandLimitExceeded = 0x03,
  kAsynchronousEventRequestLimitExceeded = 0x05,
  kInvalidFirmwareSlot = 0x06,
  kInvalidFirmwareImage = 0x07,
  kInvalidInterruptVector = 0x08,
  kInvalidLogPage = 0x09,
  kInvalidFormat = 0x0A,
  kFirmwareActivationRequiresConventionalReset = 0x0B,
  kInvalidQueueDeletion = 0x0C,
  kFeatureIdentifierNotSaveable = 0x0D,
  kFeatureNotChangeable = 0x0E,
  kFeatureNotNamespaceSpecific = 0x0F,
  kFirmwareActivationRequiresSubsystemReset = 0x10,
  kFirmwareActivationRequiresControllerReset = 0x11,
  kFirmwareActivationRequiresMaximumTimeViolation = 0x12,
  kFirmwareActivationProhibited = 0x13,
  kOverlappingRange = 0x14,
  kNamespaceInsufficientCapacity = 0x15,
  kNamespaceIdentifierUnavailable = 0x16,
  kNamespaceAlreadyAttached = 0x18,
  kNamespaceIsPrivate = 0x19,
  kNamespaceNotAttached = 0x1A,
  kThinProvisioningNotSupported = 0x1B,
  kControllerListInvalid = 0x1C,
  kDeviceSelfTestInProgress = 0x1D,
  kBootPartitionWriteProhibited = 0x1E,
  kInvalidControllerIdentifier = 0x1F,
  kInvalidSecondaryControllerState = 0x20,
  kInvalidNumberOfControllerResources = 0x21,
  kInvalidResourceIdentifier = 0x22,
  kSanitizeProhibitedWhilePmrEnabled = 0x23,
  kAnaGroupIdentifierInvalid = 0x24,
  kAnaAttachFailed = 0x25,
  kInsufficientCapacity = 0x26,
  kNamespaceAttachmentLimitExceeded = 0x27,
  kProhibitionOfCommandExecutionNotSupported = 0x28,
  kIoCommandSetNotSupported = 0x29,
  kIoCommandSetNotEnabled = 0x2A,
  kIoCommandSetCombinationRejected = 0x2B,
  kInvalidIoCommandSet = 0x2C,
  kIdentifierUnavailable = 0x2D,
  kConflictingAttributes = 0x80,
  kInvalidProtectionInformation = 0x81,
  kAttemptedWriteToReadOnlyRange = 0x82,
  kCommandSizeLimitExceeded = 0x83,
};

// NVM Express Base Specification 2.0c §4.6.1.2.3 "Media and Data Integrity Errors Definition".
enum class MediaStatus : std::uint8_t {
  kWriteFault = 0x80,
  kUnrecoveredReadError = 0x81,
  kEndToEndGuardCheckError = 0x82,
  kEndToEndApplicationTagCheckError = 0x83,
  kEndToEndReferenceTagCheckError = 0x84,
  kCompareFailure = 0x85,
  kAccessDenied = 0x86,
  kDeallocatedOrUnwrittenLogicalBlock = 0x87,
  kEndToEndStorageTagCheckError = 0x88,
};

// NVM Express Base Specification 2.0c §4.6.1.2.4 "Path Related Status Definition".
enum class PathStatus : std::uint8_t {
  kInternalPathError = 0x00,
  kAsymmetricAccessPersistentLoss = 0x01,
  kAsymmetricAccessInaccessible = 0x02,
  kAsymmetricAccessTransition = 0x03,
  kControllerPathingError = 0x60,
  kHostPathingError = 0x70,
  kAbortedByHost = 0x71,
};

// Do Not Retry (bit 14 of the status field): the command would fail again if resubmitted unchanged.
enum class Dnr : std::uint8_t { kClear, kSet };
// More (bit 13): the Error Information log page holds more about this failure.
enum class More : std::uint8_t { kClear, kSet };

constexpr Status MakeStatus(GenericStatus sc, Dnr dnr = Dnr::kClear, More more = More::kClear) {
  return Status::Of(kSctGeneric, static_cast<std::uint8_t>(sc), dnr == Dnr::kSet, more == More::kSet);
}
constexpr Status MakeStatus(CommandSpecificStatus sc, Dnr dnr = Dnr::kClear, More more = More::kClear) {
  return Status::Of(kSctCommandSpecific, static_cast<std::uint8_t>(sc), dnr == Dnr::kSet, more == More::kSet);
}
constexpr Status MakeStatus(MediaStatus sc, Dnr dnr = Dnr::kClear, More more = More::kClear) {
  return Status::Of(kSctMediaError, static_cast<std::uint8_t>(sc), dnr == Dnr::kSet, more == More::kSet);
}
constexpr Status MakeStatus(PathStatus sc, Dnr dnr = Dnr::kClear, More more = More::kClear) {
  return Status::Of(kSctPathRelated, static_cast<std::uint8_t>(sc), dnr == Dnr::kSet, more == More::kSet);
}

// SCT and SC as one 11-bit code, the way specs and logs print them (0x302 = path related, ANA inaccessible).
constexpr std::uint16_t CodeOf(GenericStatus sc) { return MakeStatus(sc).code(); }
constexpr std::uint16_t CodeOf(CommandSpecificStatus sc) { return MakeStatus(sc).code(); }
constexpr std::uint16_t CodeOf(MediaStatus sc) { return MakeStatus(sc).code(); }
constexpr std::uint16_t CodeOf(PathStatus sc) { return MakeStatus(sc).code(); }

// Whether `status` carries exactly this code, whatever its DNR, More and CRD bits say.
constexpr bool Is(Status status, GenericStatus sc) { return status.code() == CodeOf(sc); }
constexpr bool Is(Status status, CommandSpecificStatus sc) { return status.code() == CodeOf(sc); }
constexpr bool Is(Status status, MediaStatus sc) { return status.code() == CodeOf(sc); }
constexpr bool Is(Status status, PathStatus sc) { return status.code() == CodeOf(sc); }

// The three ANA states that fail I/O (§8.1 "Asymmetric Namespace Access Reporting"): the namespace is reachable
// through another controller, or will be once the transition ends.
constexpr bool IsAsymmetricAccessError(Status status) {
  return status.sct() == kSctPathRelated && status.sc() >= 0x01 && status.sc() <= 0x03;
}

// The spec's name of the status code ("Invalid Field in Command", "Asymmetric Access Inaccessible"), or "unknown".
// Command specific values from 80h are named as the NVM command set's I/O commands define them.
std::string_view StatusName(Status status);
std::string_view StatusCodeTypeName(std::uint8_t sct);

}  // namespace mpath::nvme::spec
