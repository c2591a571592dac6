#include "mpath/nvme/spec/status.h"

namespace mpath::nvme::spec {
namespace {

std::string_view GenericName(std::uint8_t sc) {
  switch (static_cast<GenericStatus>(sc)) {
    case GenericStatus::kSuccess: return "Successful Completion";
    case GenericStatus::kInvalidCommandOpcode: return "Invalid Command Opcode";
    case GenericStatus::kInvalidFieldInCommand: return "Invalid Field in Command";
    case GenericStatus::kCommandIdConflict: return "Command ID Conflict";
    case GenericStatus::kDataTransferError: return "Data Transfer Error";
    case GenericStatus::kAbortedPowerLossNotification: return "Commands Aborted due to Power Loss Notification";
    case GenericStatus::kInternalError: return "Internal Error";
    case GenericStatus::kAbortRequested: return "Command Abort Requested";
    case GenericStatus::kAbortedSqDeletion: return "Command Aborted due to SQ Deletion";
    case GenericStatus::kAbortedFailedFusedCommand: return "Command Aborted due to Failed Fused Command";
    case GenericStatus::kAbortedMissingFusedCommand: return "Command Aborted due to Missing Fused Command";
    case GenericStatus::kInvalidNamespaceOrFormat: return "Invalid Namespace or Format";
    case GenericStatus::kCommandSequenceError: return "Command Sequence Error";
    case GenericStatus::kInvalidSglSegmentDescriptor: return "Invalid SGL Segment Descriptor";
    case GenericStatus::kInvalidNumberOfSglDescriptors: return "Invalid Number of SGL Descriptors";
    case GenericStatus::kDataSglLengthInvalid: return "Data SGL Length Invalid";
    case GenericStatus::kMetadataSglLengthInvalid: return "Metadata SGL Length Invalid";
    case GenericStatus::kSglDescriptorTypeInvalid: return "SGL Descriptor Type Invalid";
    case GenericStatus::kInvalidUseOfControllerMemoryBuffer: return "Invalid Use of Controller Memory Buffer";
    case GenericStatus::kPrpOffsetInvalid: return "PRP Offset Invalid";
    case GenericStatus::kAtomicWriteUnitExceeded: return "Atomic Write Unit Exceeded";
    case GenericStatus::kOperationDenied: return "Operation Denied";
    case GenericStatus::kSglOffsetInvalid: return "SGL Offset Invalid";
    case GenericStatus::kHostIdentifierInconsistentFormat: return "Host Identifier Inconsistent Format";
    case GenericStatus::kKeepAliveTimerExpired: return "Keep Alive Timer Expired";
    case GenericStatus::kKeepAliveTimeoutInvalid: return "Keep Alive Timeout Invalid";
    case GenericStatus::kAbortedPreemptAndAbort: return "Command Aborted due to Preempt and Abort";
    case GenericStatus::kSanitizeFailed: return "Sanitize Failed";
    case GenericStatus::kSanitizeInProgress: return "Sanitize In Progress";
    case GenericStatus::kSglDataBlockGranularityInvalid: return "SGL Data Block Granularity Invalid";
    case GenericStatus::kCommandNotSupportedForQueueInCmb: return "Command Not Supported for Queue in CMB";
    case GenericStatus::kNamespaceWriteProtected: return "Namespace is Write Protected";
    case GenericStatus::kCommandInterrupted: return "Command Interrupted";
    case GenericStatus::kTransientTransportError: return "Transient Transport Error";
    case GenericStatus::kProhibitedByLockdown: return "Command Prohibited by Command and Feature Lockdown";
    case GenericStatus::kAdminCommandMediaNotReady: return "Admin Command Media Not Ready";
    case GenericStatus::kLbaOutOfRange: return "LBA Out of Range";
    case GenericStatus::kCapacityExceeded: return "Capacity Exceeded";
    case GenericStatus::kNamespaceNotReady: return "Namespace Not Ready";
    case GenericStatus::kReservationConflict: return "Reservation Conflict";
    case GenericStatus::kFormatInProgress: return "Format In Progress";
    default: return "unknown";
  }
}

std::string_view CommandSpecificName(std::uint8_t sc) {
  switch (static_cast<CommandSpecificStatus>(sc)) {
    case CommandSpecificStatus::kCompletionQueueInvalid: return "Completion Queue Invalid";
    case CommandSpecificStatus::kInvalidQueueIdentifier: return "Invalid Queue Identifier";
    case CommandSpecificStatus::kInvalidQueueSize: return "Invalid Queue Size";
    case CommandSpecificStatus::kAbortCommandLimitExceeded: return "Abort Command Limit Exceeded";
    case CommandSpecificStatus::kAsynchronousEventRequestLimitExceeded:
      return "Asynchronous Event Request Limit Exceeded";
    case CommandSpecificStatus::kInvalidFirmwareSlot: return "Invalid Firmware Slot";
    case CommandSpecificStatus::kInvalidFirmwareImage: return "Invalid Firmware Image";
    case CommandSpecificStatus::kInvalidInterruptVector: return "Invalid Interrupt Vector";
    case CommandSpecificStatus::kInvalidLogPage: return "Invalid Log Page";
    case CommandSpecificStatus::kInvalidFormat: return "Invalid Format";
    case CommandSpecificStatus::kFirmwareActivationRequiresConventionalReset:
      return "Firmware Activation Requires Conventional Reset";
    case CommandSpecificStatus::kInvalidQueueDeletion: return "Invalid Queue Deletion";
    case CommandSpecificStatus::kFeatureIdentifierNotSaveable: return "Feature Identifier Not Saveable";
    case CommandSpecificStatus::kFeatureNotChangeable: return "Feature Not Changeable";
    case CommandSpecificStatus::kFeatureNotNamespaceSpecific: return "Feature Not Namespace Specific";
    case CommandSpecificStatus::kFirmwareActivationRequiresSubsystemReset:
      return "Firmware Activation Requires NVM Subsystem Reset";
    case CommandSpecificStatus::kFirmwareActivationRequiresControllerReset:
      return "Firmware Activation Requires Controller Level Reset";
    case CommandSpecificStatus::kFirmwareActivationRequiresMaximumTimeViolation:
      return "Firmware Activation Requires Maximum Time Violation";
    case CommandSpecificStatus::kFirmwareActivationProhibited: return "Firmware Activation Prohibited";
    case CommandSpecificStatus::kOverlappingRange: return "Overlapping Range";
    case CommandSpecificStatus::kNamespaceInsufficientCapacity: return "Namespace Insufficient Capacity";
    case CommandSpecificStatus::kNamespaceIdentifierUnavailable: return "Namespace Identifier Unavailable";
    case CommandSpecificStatus::kNamespaceAlreadyAttached: return "Namespace Already Attached";
    case CommandSpecificStatus::kNamespaceIsPrivate: return "Namespace Is Private";
    case CommandSpecificStatus::kNamespaceNotAttached: return "Namespace Not Attached";
    case CommandSpecificStatus::kThinProvisioningNotSupported: return "Thin Provisioning Not Supported";
    case CommandSpecificStatus::kControllerListInvalid: return "Controller List Invalid";
    case CommandSpecificStatus::kDeviceSelfTestInProgress: return "Device Self-test In Progress";
    case CommandSpecificStatus::kBootPartitionWriteProhibited: return "Boot Partition Write Prohibited";
    case CommandSpecificStatus::kInvalidControllerIdentifier: return "Invalid Controller Identifier";
    case CommandSpecificStatus::kInvalidSecondaryControllerState: return "Invalid Secondary Controller State";
    case CommandSpecificStatus::kInvalidNumberOfControllerResources: return "Invalid Number of Controller Resources";
    case CommandSpecificStatus::kInvalidResourceIdentifier: return "Invalid Resource Identifier";
    case CommandSpecificStatus::kSanitizeProhibitedWhilePmrEnabled:
      return "Sanitize Prohibited While Persistent Memory Region is Enabled";
    case CommandSpecificStatus::kAnaGroupIdentifierInvalid: return "ANA Group Identifier Invalid";
    case CommandSpecificStatus::kAnaAttachFailed: return "ANA Attach Failed";
    case CommandSpecificStatus::kInsufficientCapacity: return "Insufficient Capacity";
    case CommandSpecificStatus::kNamespaceAttachmentLimitExceeded: return "Namespace Attachment Limit Exceeded";
    case CommandSpecificStatus::kProhibitionOfCommandExecutionNotSupported:
      return "Prohibition of Command Execution Not Supported";
    case CommandSpecificStatus::kIoCommandSetNotSupported: return "I/O Command Set Not Supported";
    case CommandSpecificStatus::kIoCommandSetNotEnabled: return "I/O Command Set Not Enabled";
    case CommandSpecificStatus::kIoCommandSetCombinationRejected: return "I/O Command Set Combination Rejected";
    case CommandSpecificStatus::kInvalidIoCommandSet: return "Invalid I/O Command Set";
    case CommandSpecificStatus::kIdentifierUnavailable: return "Identifier Unavailable";
    case CommandSpecificStatus::kConflictingAttributes: return "Conflicting Attributes";
    case CommandSpecificStatus::kInvalidProtectionInformation: return "Invalid Protection Information";
    case CommandSpecificStatus::kAttemptedWriteToReadOnlyRange: return "Attempted Write to Read Only Range";
    case CommandSpecificStatus::kCommandSizeLimitExceeded: return "Command Size Limit Exceeded";
    default: return "unknown";
  }
}

std::string_view MediaName(std::uint8_t sc) {
  switch (static_cast<MediaStatus>(sc)) {
    case MediaStatus::kWriteFault: return "Write Fault";
    case MediaStatus::kUnrecoveredReadError: return "Unrecovered Read Error";
    case MediaStatus::kEndToEndGuardCheckError: return "End-to-end Guard Check Error";
    case MediaStatus::kEndToEndApplicationTagCheckError: return "End-to-end Application Tag Check Error";
    case MediaStatus::kEndToEndReferenceTagCheckError: return "End-to-end Reference Tag Check Error";
    case MediaStatus::kCompareFailure: return "Compare Failure";
    case MediaStatus::kAccessDenied: return "Access Denied";
    case MediaStatus::kDeallocatedOrUnwrittenLogicalBlock: return "Deallocated or Unwritten Logical Block";
    case MediaStatus::kEndToEndStorageTagCheckError: return "End-to-End Storage Tag Check Error";
    default: return "unknown";
  }
}

std::string_view PathName(std::uint8_t sc) {
  switch (static_cast<PathStatus>(sc)) {
    case PathStatus::kInternalPathError: return "Internal Path Error";
    case PathStatus::kAsymmetricAccessPersistentLoss: return "Asymmetric Access Persistent Loss";
    case PathStatus::kAsymmetricAccessInaccessible: return "Asymmetric Access Inaccessible";
    case PathStatus::kAsymmetricAccessTransition: return "Asymmetric Access Transition";
    case PathStatus::kControllerPathingError: return "Controller Pathing Error";
    case PathStatus::kHostPathingError: return "Host Pathing Error";
    case PathStatus::kAbortedByHost: return "Command Aborted By Host";
    default: return "unknown";
  }
}

}  // namespace

std::string_view StatusName(Status status) {
  switch (status.sct()) {
    case kSctGeneric: return GenericName(status.sc());
    case kSctCommandSpecific: return CommandSpecificName(status.sc());
    case kSctMediaError: return MediaName(status.sc());
    case kSctPathRelated: return PathName(status.sc());
    case kSctVendor: return "Vendor Specific";
    default: return "unknown";
  }
}

std::string_view StatusCodeTypeName(std::uint8_t sct) {
  switch (sct) {
    case kSctGeneric: return "Generic Command Status";
    case kSctCommandSpecific: return "Command Specific Status";
    case kSctMediaError: return "Media and Data Integrity Errors";
    case kSctPathRelated: return "Path Related Status";
    case kSctVendor: return "Vendor Specific";
    default: return "unknown";
  }
}

}  // namespace mpath::nvme::spec
