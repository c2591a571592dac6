// The admin command set as the simulated subsystem answers it: Identify, Get Log Page (error information, changed
// namespace list, ANA), Set/Get Features, Asynchronous Event Request, Keep Alive and Abort.
#include <algorithm>
#include <cstring>

#include "mpath/nvme/spec/features.h"
#include "mpath/nvme/spec/identify.h"
#include "mpath/nvme/spec/log_ana.h"
#include "mpath/nvme/spec/log_page.h"
#include "mpath/nvme/spec/opcodes.h"
#include "subsystem_state.h"

namespace mpath::nvme::fake {

using spec::AdminOpcode;
using spec::CommandSpecificStatus;
using spec::Dnr;
using spec::GenericStatus;
using spec::MakeStatus;
using spec::Status;

namespace {

constexpr Status kSuccess = MakeStatus(GenericStatus::kSuccess);
constexpr Status kInvalidField = MakeStatus(GenericStatus::kInvalidFieldInCommand, Dnr::kSet);
constexpr Status kInvalidNamespace = MakeStatus(GenericStatus::kInvalidNamespaceOrFormat, Dnr::kSet);
// A data buffer shorter than the command transfers: over fabrics the SGL describes fewer bytes than needed, which
// nvmet answers with Data SGL Length Invalid.
constexpr Status kShortBuffer = MakeStatus(GenericStatus::kDataSglLengthInvalid, Dnr::kSet);

constexpr std::uint32_t kNvmeVersion20 = 0x0002'0000;
constexpr std::uint16_t kKeepAliveGranularity100ms = 10;

void FillIdentifyController(const SubsystemConfig& config, const ControllerState& controller,
                            spec::IdentifyController& id) {
  spec::SetSpacePadded(id.sn, config.serial);
  spec::SetSpacePadded(id.mn, config.model);
  spec::SetSpacePadded(id.fr, config.firmware);
  id.rab = 6;
  id.cmic = config.cmic;
  id.mdts = config.mdts;
  id.cntlid = controller.cntlid;
  id.ver = kNvmeVersion20;
  id.oaes = wire::SetBit<spec::oaes::kAnaChangeNotices>(
      wire::SetBit<spec::oaes::kNamespaceAttributeNotices>(std::uint32_t{0}, true), true);
  id.ctratt = wire::SetBit<spec::ctratt::kHostIdentifier128Bit>(std::uint32_t{0}, true);
  id.cntrltype = 1;  // I/O controller
  id.acl = 3;
  id.aerl = static_cast<std::uint8_t>(kAerLimit - 1);
  id.lpa = wire::SetBit<spec::lpa::kExtendedData>(std::uint8_t{0}, true);
  id.kas = kKeepAliveGranularity100ms;
  id.anatt = config.anatt_secs;
  id.anacap = config.anacap;
  id.anagrpmax = config.anagrpmax;
  id.nanagrpid = config.nanagrpid;
  id.sqes = 0x66;  // 64-byte entries, required and maximum
  id.cqes = 0x44;  // 16-byte entries
  id.maxcmd = kQueueEntries;
  id.nn = config.max_namespaces;
  std::uint16_t oncs = 0;
  oncs = wire::SetBit<spec::oncs::kDatasetManagement>(oncs, true);
  oncs = wire::SetBit<spec::oncs::kWriteZeroes>(oncs, true);
  oncs = wire::SetBit<spec::oncs::kReservations>(oncs, true);
  id.oncs = oncs;
  id.vwc = 0x07;   // present; Flush with the broadcast NSID flushes every namespace
  id.sgls = 0x1;   // SGLs supported, no alignment requirement
  id.mnan = config.max_namespaces;
  spec::SetNulPadded(id.subnqn, config.nqn);
  id.ioccsz = 4;   // a 64-byte SQE, no in-capsule data
  id.iorcsz = 1;   // a 16-byte CQE
  id.msdbd = 1;
}

void FillIdentifyNamespace(const NamespaceState& ns, spec::IdentifyNamespace& id) {
  id.nsze = ns.blocks();
  id.ncap = ns.blocks();
  id.nuse = ns.blocks();
  id.nlbaf = 0;
  id.flbas = 0;
  id.nmic = wire::SetBit<spec::nmic::kSharedNamespace>(std::uint8_t{0}, ns.config.shared);
  id.rescap = 0xFF;  // persist through power loss, all six types, IEKEY as revision 1.3 defines it
  id.dlfeat = 0x09;  // deallocated blocks read as zeroes; Write Zeroes may deallocate
  id.nvmcap.low = ns.blocks() << ns.lbads;
  id.anagrpid = ns.config.ana_group;
  id.nguid = ns.config.nguid;
  id.eui64 = ns.config.eui64;
  id.lbaf[0].lbads = ns.lbads;
}

// Copies the part of `log` that starts at `offset` into `out`, zero-filling what lies past the log's end.
void CopyLogWindow(std::span<const std::byte> log, std::uint64_t offset, std::span<std::byte> out) {
  const std::size_t available = offset >= log.size() ? 0 : log.size() - static_cast<std::size_t>(offset);
  const std::size_t n = std::min(out.size(), available);
  if (n > 0) std::memcpy(out.data(), log.data() + offset, n);
  std::fill(out.begin() + static_cast<std::ptrdiff_t>(n), out.end(), std::byte{0});
}

}  // namespace

Status Subsystem::State::ExecuteAdmin(CommandContext& context, ControllerState& controller) {
  NvmeCommand& command = context.command;
  switch (static_cast<AdminOpcode>(command.sqe.opc)) {
    case AdminOpcode::kIdentify: return Identify(controller, command);
    case AdminOpcode::kGetLogPage: return GetLogPage(controller, command);
    case AdminOpcode::kSetFeatures: return SetFeatures(controller, command);
    case AdminOpcode::kGetFeatures: return GetFeatures(controller, command);
    case AdminOpcode::kAsynchronousEventRequest: return AsyncEventRequest(context, controller);
    case AdminOpcode::kKeepAlive: return kSuccess;
    case AdminOpcode::kAbort:
      // Commands finish inside Submit, so there is never one left to abort: Dword 0 bit 0 says "not aborted".
      command.cqe.dw0 = 1;
      return kSuccess;
    default: return MakeStatus(GenericStatus::kInvalidCommandOpcode, Dnr::kSet);
  }
}

Status Subsystem::State::Identify(ControllerState& controller, NvmeCommand& command) {
  const spec::IdentifyFields fields = spec::DecodeIdentify(command.sqe);
  const std::uint32_t nsid = fields.nsid;
  switch (fields.cns) {
    case spec::Cns::kNamespace:
      // No namespace management: the broadcast NSID names nothing here. An inactive valid NSID reads as zeroes.
      if (nsid == 0 || nsid > config.max_namespaces) return kInvalidNamespace;
      break;
    case spec::Cns::kActiveNamespaceList:
      if (nsid >= spec::kBroadcastNsid - 1) return kInvalidNamespace;
      break;
    case spec::Cns::kNamespaceIdentificationDescriptors:
      // nvmet answers an inactive NSID here with Invalid Namespace or Format rather than an empty list.
      if (FindNamespace(nsid) == nullptr) return kInvalidNamespace;
      break;
    case spec::Cns::kController: break;
    default: return kInvalidField;
  }
  if (command.data.size() < spec::kIdentifyDataSize) return kShortBuffer;
  std::span<std::byte> out = command.data.first(spec::kIdentifyDataSize);
  std::fill(out.begin(), out.end(), std::byte{0});

  switch (fields.cns) {
    case spec::Cns::kController: {
      spec::IdentifyController id{};
      FillIdentifyController(config, controller, id);
      wire::Store(out, id);
      break;
    }
    case spec::Cns::kNamespace:
      if (const NamespaceState* ns = FindNamespace(nsid)) {
        spec::IdentifyNamespace id{};
        FillIdentifyNamespace(*ns, id);
        wire::Store(out, id);
      }
      break;
    case spec::Cns::kActiveNamespaceList: {
      std::size_t offset = 0;
      for (auto it = namespaces.upper_bound(nsid); it != namespaces.end() && offset < out.size(); ++it) {
        offset += wire::Store(out, spec::Le32(it->first), offset);
      }
      break;
    }
    case spec::Cns::kNamespaceIdentificationDescriptors: {
      // Identifiers are reported only when set; the command set identifier always (NVM: 0).
      const NamespaceConfig& ns = FindNamespace(nsid)->config;
      std::size_t offset = 0;
      if (!spec::IsAllZero(ns.eui64)) {
        offset = *spec::AppendNamespaceIdDescriptor(out, offset, spec::NidType::kEui64, ns.eui64);
      }
      if (!spec::IsAllZero(ns.nguid)) {
        offset = *spec::AppendNamespaceIdDescriptor(out, offset, spec::NidType::kNguid, ns.nguid);
      }
      if (!spec::IsAllZero(ns.uuid)) {
        offset = *spec::AppendNamespaceIdDescriptor(out, offset, spec::NidType::kUuid, ns.uuid);
      }
      const std::uint8_t csi = 0;
      offset = *spec::AppendNamespaceIdDescriptor(out, offset, spec::NidType::kCsi, std::span(&csi, 1));
      break;
    }
    default: break;
  }
  return kSuccess;
}

Status Subsystem::State::GetLogPage(ControllerState& controller, NvmeCommand& command) {
  const spec::GetLogPageFields fields = spec::DecodeGetLogPage(command.sqe);
  const std::uint64_t length = fields.length_bytes();
  if (fields.offset % 4 != 0) return kInvalidField;

  std::vector<std::byte> log;
  switch (fields.lid) {
    case spec::LogPageId::kErrorInformation:
      // No entry is ever logged: one all-zero entry (error count 0) is an empty log.
      log.resize(64);
      break;
    case spec::LogPageId::kChangedNamespaceList: {
      log.resize(spec::kChangedNamespaceListSize);
      if (controller.changed_overflow) {
        wire::Store(log, spec::Le32(spec::kBroadcastNsid));
      } else {
        std::size_t offset = 0;
        for (std::uint32_t nsid : controller.changed_nsids) offset += wire::Store(log, spec::Le32(nsid), offset);
      }
      break;
    }
    case spec::LogPageId::kAsymmetricNamespaceAccess:
      log = BuildAnaLog(controller, wire::GetBit<spec::kAnaLspRgoBit>(fields.lsp));
      break;
    default: return MakeStatus(CommandSpecificStatus::kInvalidLogPage, Dnr::kSet);
  }
  if (fields.offset > log.size()) return kInvalidField;
  if (command.data.size() < length) return kShortBuffer;
  CopyLogWindow(log, fields.offset, command.data.first(static_cast<std::size_t>(length)));

  // Reading a log hands its news to the host; with RAE cleared it also re-arms the notice that pointed at it.
  std::uint8_t notice = 0xFF;
  if (fields.lid == spec::LogPageId::kChangedNamespaceList) {
    controller.changed_nsids.clear();
    controller.changed_overflow = false;
    notice = static_cast<std::uint8_t>(spec::NoticeEvent::kNamespaceAttributeChanged);
  } else if (fields.lid == spec::LogPageId::kAsymmetricNamespaceAccess) {
    notice = static_cast<std::uint8_t>(spec::NoticeEvent::kAnaChange);
  }
  if (notice != 0xFF && fields.rae == spec::RetainAsyncEvent::kClear) {
    controller.masked_notices &= ~(std::uint32_t{1} << notice);
  }
  return kSuccess;
}

Status Subsystem::State::SetFeatures(ControllerState& controller, NvmeCommand& command) {
  const spec::SetFeaturesFields fields = spec::DecodeSetFeatures(command.sqe);
  switch (fields.fid) {
    case spec::FeatureId::kNumberOfQueues:
    case spec::FeatureId::kAsynchronousEventConfiguration:
    case spec::FeatureId::kKeepAliveTimer: break;
    default: return kInvalidField;
  }
  if (fields.save == spec::SaveFeature::kYes) {
    return MakeStatus(CommandSpecificStatus::kFeatureIdentifierNotSaveable, Dnr::kSet);
  }
  switch (fields.fid) {
    case spec::FeatureId::kNumberOfQueues: {
      const auto requested = spec::NumberOfQueues::Decode(fields.cdw11);
      if (requested.submission_queues_0based == 0xFFFF || requested.completion_queues_0based == 0xFFFF) {
        return kInvalidField;
      }
      // Like nvmet, grant what the controller has, whatever was asked.
      command.cqe.dw0 = spec::NumberOfQueues{kIoQueues - 1, kIoQueues - 1}.Encode();
      break;
    }
    case spec::FeatureId::kAsynchronousEventConfiguration: controller.async_event_config = fields.cdw11; break;
    case spec::FeatureId::kKeepAliveTimer: controller.kato_ms = fields.cdw11; break;
    default: break;
  }
  return kSuccess;
}

Status Subsystem::State::GetFeatures(ControllerState& controller, NvmeCommand& command) {
  const spec::GetFeaturesFields fields = spec::DecodeGetFeatures(command.sqe);
  if (static_cast<std::uint8_t>(fields.select) > static_cast<std::uint8_t>(spec::FeatureSelect::kSupportedCapabilities)) {
    return kInvalidField;
  }
  std::uint32_t current = 0;
  std::uint32_t default_value = 0;
  switch (fields.fid) {
    case spec::FeatureId::kNumberOfQueues:
      current = default_value = spec::NumberOfQueues{kIoQueues - 1, kIoQueues - 1}.Encode();
      break;
    case spec::FeatureId::kAsynchronousEventConfiguration:
      current = controller.async_event_config;
      default_value = (std::uint32_t{1} << spec::async_event_config::kNamespaceAttributeNotices) |
                      (std::uint32_t{1} << spec::async_event_config::kAnaChangeNotices);
      break;
    case spec::FeatureId::kKeepAliveTimer:
      current = controller.kato_ms;
      break;
    default: return kInvalidField;
  }
  switch (fields.select) {
    case spec::FeatureSelect::kCurrent: command.cqe.dw0 = current; break;
    // Nothing is saveable, so the saved value is the default one.
    case spec::FeatureSelect::kDefault:
    case spec::FeatureSelect::kSaved: command.cqe.dw0 = default_value; break;
    case spec::FeatureSelect::kSupportedCapabilities:
      command.cqe.dw0 = std::uint32_t{1} << spec::feature_capabilities::kChangeable;
      break;
    default: break;
  }
  return kSuccess;
}

Status Subsystem::State::AsyncEventRequest(CommandContext& context, ControllerState& controller) {
  NvmeCommand& command = context.command;
  // The completion comes later, from whichever thread raises the event; it can only be delivered on an executor.
  if (command.executor == nullptr) return kInvalidField;
  if (controller.outstanding_aers.size() >= kAerLimit) {
    return MakeStatus(CommandSpecificStatus::kAsynchronousEventRequestLimitExceeded, Dnr::kSet);
  }
  context.held = true;
  if (!controller.pending_events.empty()) {
    const spec::AsyncEvent event = controller.pending_events.front();
    controller.pending_events.pop_front();
    CompleteAer(controller, command, event);
  } else {
    controller.outstanding_aers.push_back(&command);
  }
  return kSuccess;
}

}  // namespace mpath::nvme::fake
