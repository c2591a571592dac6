#include "mpath/scsi/fake/array.h"

#include <algorithm>
#include <utility>

#include "array_state.h"
#include "mpath/scsi/spec/report_luns.h"
#include "mpath/scsi/spec/spc_cdb.h"

namespace mpath::scsi::fake {

namespace internal {
namespace {

namespace op = spec::op;

// The opcodes the array answers itself; the rest get INVALID COMMAND OPERATION CODE.
constexpr std::array<BuiltinHandler, 256> MakeBuiltins() {
  std::array<BuiltinHandler, 256> t{};
  t[op::kTestUnitReady] = TestUnitReady;
  t[op::kInquiry] = Inquiry;
  t[op::kReportLuns] = ReportLuns;
  t[op::kMaintenanceIn] = MaintenanceIn;
  t[op::kMaintenanceOut] = MaintenanceOut;
  t[op::kPersistentReserveIn] = PersistentReserveIn;
  t[op::kPersistentReserveOut] = PersistentReserveOut;
  t[op::kReadCapacity10] = ReadCapacity10;
  t[op::kServiceActionIn16] = ServiceActionIn16;
  t[op::kRead10] = Read10;
  t[op::kRead16] = Read16;
  t[op::kWrite10] = Write10;
  t[op::kWrite16] = Write16;
  t[op::kSynchronizeCache10] = SynchronizeCache10;
  t[op::kSynchronizeCache16] = SynchronizeCache16;
  t[op::kWriteSame16] = WriteSame16;
  t[op::kUnmap] = Unmap;
  return t;
}
constexpr std::array<BuiltinHandler, 256> kBuiltins = MakeBuiltins();

bool IsRtpg(const ScsiCommand& c) {
  return c.cdb[0] == op::kMaintenanceIn &&
         spec::ServiceActionOf(c.cdb[1]) == spec::service_action::kReportTargetPortGroups;
}
bool IsStpg(const ScsiCommand& c) {
  return c.cdb[0] == op::kMaintenanceOut &&
         spec::ServiceActionOf(c.cdb[1]) == spec::service_action::kSetTargetPortGroups;
}

// SPC-5 r19 "Asymmetric logical unit access", the subclauses on each target port asymmetric access state, as LIO
// applies them (core_alua_state_standby & co.): which commands a target port in `state` still answers. SPC-5 lets
// an offline port answer little; INQUIRY, REPORT LUNS and REQUEST SENSE stay so that the initiator can tell why.
bool AccessStateAllows(AluaState state, const ScsiCommand& c) {
  const std::uint8_t opcode = c.cdb[0];
  const bool describes_device = opcode == op::kInquiry || opcode == op::kReportLuns || opcode == op::kRequestSense;
  switch (state) {
    case AluaState::kActiveOptimized:
    case AluaState::kActiveNonOptimized:
    case AluaState::kLogicalBlockDependent: return true;
    case AluaState::kStandby:
      return describes_device || IsRtpg(c) || IsStpg(c) || opcode == op::kPersistentReserveIn ||
             opcode == op::kPersistentReserveOut || opcode == op::kModeSense6 || opcode == op::kModeSense10 ||
             opcode == op::kModeSelect6 || opcode == op::kModeSelect10 || opcode == op::kLogSense ||
             opcode == op::kLogSelect || opcode == op::kReceiveDiagnosticResults || opcode == op::kSendDiagnostic;
    case AluaState::kUnavailable: return describes_device || IsRtpg(c) || IsStpg(c);
    case AluaState::kTransitioning: return describes_device || IsRtpg(c);
    case AluaState::kOffline: return describes_device;
    default: return false;
  }
}

spec::SenseCode NotReadyCode(AluaState state) {
  switch (state) {
    case AluaState::kStandby: return spec::asc::kLunNotReadyTargetPortStandby;
    case AluaState::kUnavailable: return spec::asc::kLunNotReadyTargetPortUnavailable;
    case AluaState::kTransitioning: return spec::asc::kLunNotReadyAsymmetricTransition;
    case AluaState::kOffline: return spec::asc::kLunNotAccessibleOffline;
    default: return spec::asc::kLunNotReadyCauseNotReportable;
  }
}

constexpr std::uint8_t kResetAsc = 0x29;

}  // namespace

PortGroup* ArrayState::FindGroup(std::uint16_t id) {
  auto it = std::find_if(groups.begin(), groups.end(), [&](const PortGroup& g) { return g.id == id; });
  return it == groups.end() ? nullptr : &*it;
}

LogicalUnit* ArrayState::FindLu(std::uint64_t lun) {
  auto it = lus.find(lun);
  return it == lus.end() ? nullptr : &it->second;
}

void ArrayState::Tick() {
  // Runs before every command: the clock is read only while some group is transitioning.
  std::optional<TimePoint> now;
  for (PortGroup& g : groups) {
    if (!g.transition_ends) continue;
    if (!now) now = clock.Now();
    if (*now >= *g.transition_ends) {
      g.transition_ends.reset();
      // LIO reports the end of a transition with a second 2A/06 (NOTES.md, trans_delay_msecs).
      QueueUnitAttentionEverywhere(spec::asc::kAsymmetricAccessStateChanged);
    }
  }
}

void ArrayState::QueueUnitAttention(LogicalUnit& lu, std::size_t nexus, spec::SenseCode code) {
  auto& queue = lu.unit_attentions[nexus];
  if (std::find(queue.begin(), queue.end(), code) != queue.end()) return;
  // A pending reset already tells the initiator to re-check everything a later reset would.
  if (code.asc == kResetAsc &&
      std::any_of(queue.begin(), queue.end(), [](const spec::SenseCode& c) { return c.asc == kResetAsc; })) {
    return;
  }
  queue.push_back(code);
}

void ArrayState::QueueUnitAttentionOnLu(LogicalUnit& lu, spec::SenseCode code) {
  for (std::size_t n = 0; n < nexuses.size(); ++n) QueueUnitAttention(lu, n, code);
}

void ArrayState::QueueUnitAttentionEverywhere(spec::SenseCode code, std::optional<std::size_t> except) {
  for (auto& [lun, lu] : lus) {
    for (std::size_t n = 0; n < nexuses.size(); ++n) {
      if (n != except) QueueUnitAttention(lu, n, code);
    }
  }
}

void ArrayState::QueueReservationUnitAttentions(LogicalUnit& lu, const std::vector<UnitAttention>& attentions) {
  for (const UnitAttention& ua : attentions) {
    for (std::size_t n = 0; n < nexuses.size(); ++n) {
      const NexusId& id = nexuses[n].id;
      if (id.initiator_port != ua.nexus.initiator_port) continue;
      if (ua.nexus.relative_target_port != kEveryTargetPort &&
          ua.nexus.relative_target_port != id.relative_target_port) {
        continue;
      }
      QueueUnitAttention(lu, n, ua.code);
    }
  }
}

// SAM-5 r21 §5.14 "Unit attention conditions" and LIO's order (target_cmd_init_cdb): unit attention, then the
// ALUA access state, then the CDB itself; reservations are checked by each media command once its CDB is valid.
void ArrayState::Execute(CommandContext& context) {
  ScsiCommand& c = context.command;
  Exec e{*this, context, c, nexuses[context.nexus_index], FindLu(context.lun)};
  const std::uint8_t opcode = c.cdb[0];
  if (c.cdb_length < spec::CdbLengthForOpcode(opcode)) {
    Fail(e, spec::asc::kInvalidFieldInCdb);
    return;
  }
  if (e.lu == nullptr) {
    // SPC-5 r19 §6.6.2 and §6.39: an incorrect LUN still answers INQUIRY (qualifier 011b), REPORT LUNS and
    // REQUEST SENSE (LOGICAL UNIT NOT SUPPORTED as sense data); anything else is refused.
    if (opcode == op::kInquiry) {
      Inquiry(e);
    } else if (opcode == op::kReportLuns) {
      ReportLuns(e);
    } else if (opcode == op::kRequestSense) {
      RequestSense(e, spec::asc::kLogicalUnitNotSupported);
    } else {
      Fail(e, spec::asc::kLogicalUnitNotSupported);
    }
    return;
  }
  if (opcode != op::kInquiry && opcode != op::kReportLuns) {
    auto& queue = e.lu->unit_attentions[context.nexus_index];
    if (!queue.empty()) {
      const spec::SenseCode ua = queue.front();
      queue.pop_front();
      if (opcode == op::kRequestSense) {
        RequestSense(e, ua);
      } else {
        Fail(e, ua);
      }
      return;
    }
  }
  const AluaState state = groups[e.nexus.group].Reported();
  if (!AccessStateAllows(state, c)) {
    Fail(e, NotReadyCode(state));
    return;
  }
  if (opcode == op::kRequestSense) {
    RequestSense(e, std::nullopt);
    return;
  }
  if (kBuiltins[opcode] == nullptr) {
    Fail(e, spec::asc::kInvalidCommandOperationCode);
    return;
  }
  kBuiltins[opcode](e);
}

void Fail(Exec& e, spec::SenseCode code) {
  spec::SetCheckCondition(e.command, e.array.config.sense_format, code);
  e.command.residual = static_cast<std::uint32_t>(e.command.data.size());
}

void Conflict(Exec& e) {
  e.command.status = static_cast<std::uint8_t>(spec::Status::kReservationConflict);
  e.command.sense_length = 0;
  e.command.residual = static_cast<std::uint32_t>(e.command.data.size());
}

void SendData(Exec& e, std::span<const std::byte> reply, std::size_t allocation_length) {
  const std::size_t n = std::min({reply.size(), allocation_length, e.command.data.size()});
  std::copy_n(reply.begin(), n, e.command.data.begin());
  Complete(e, n);
}

void Complete(Exec& e, std::size_t used) {
  e.command.status = static_cast<std::uint8_t>(spec::Status::kGood);
  e.command.sense_length = 0;
  e.command.residual = static_cast<std::uint32_t>(e.command.data.size() - std::min(used, e.command.data.size()));
}

bool ReservationAllows(Exec& e, AccessKind kind) {
  if (e.lu->reservations->Allows(e.nexus.id, kind)) return true;
  Conflict(e);
  return false;
}

namespace {

// One I_T nexus as a transport: every command is answered inline, under the array's lock, and finished after the
// lock is dropped so that a completion may submit again.
// Threading: Submit from any thread; borrows the array, which must outlive it.
class NexusTransport final : public ScsiTransport {
 public:
  NexusTransport(Array& array, ArrayState& state, std::uint32_t nexus) : array_(array), state_(state), nexus_(nexus) {}

  void Submit(std::uint64_t lun, ScsiCommand& command) override {
    {
      std::lock_guard lock(state_.mu);
      Process(lun, command);
    }
    command.Finish();
  }

 private:
  // REQUIRES(state_.mu).
  void Process(std::uint64_t lun, ScsiCommand& c) {
    c.delivery = Delivery::kDelivered;
    c.status = static_cast<std::uint8_t>(spec::Status::kGood);
    c.sense_length = 0;
    c.residual = static_cast<std::uint32_t>(c.data.size());
    if (c.cdb_length == 0 || c.cdb_length > kMaxCdbLength) {
      spec::SetCheckCondition(c, state_.config.sense_format, spec::asc::kInvalidFieldInCdb);
      return;
    }
    state_.Tick();
    const std::uint8_t opcode = c.cdb[0];
    ++state_.counts[opcode];
    CommandContext context{array_, nexus_, lun, c};
    if (state_.handlers[opcode]) {
      state_.handlers[opcode](context);
    } else {
      state_.Execute(context);
    }
  }

  Array& array_;
  ArrayState& state_;
  const std::uint32_t nexus_;
};

}  // namespace
}  // namespace internal

using internal::ArrayState;
using internal::LogicalUnit;
using internal::PortGroup;

Result<std::unique_ptr<Array>> Array::Create(ArrayConfig config, const Clock& clock) {
  if (config.tpgs > 0x3) return MakeError(Errc::kInvalidArgument, "ArrayConfig.tpgs must be 0..3");
  if (config.vendor.size() > 8 || config.product.size() > 16 || config.revision.size() > 4) {
    return MakeError(Errc::kInvalidArgument, "vendor/product/revision longer than 8/16/4 bytes");
  }
  return std::unique_ptr<Array>(new Array(std::make_unique<ArrayState>(std::move(config), clock)));
}

Array::Array(std::unique_ptr<ArrayState> state) : state_(std::move(state)) {}
Array::~Array() = default;

Result<void> Array::AddPortGroup(PortGroupConfig group) {
  std::lock_guard lock(state_->mu);
  if (state_->FindGroup(group.id) != nullptr) {
    return MakeError(Errc::kAlreadyExists, "target port group " + std::to_string(group.id) + " exists");
  }
  if (group.relative_ports.size() > 0xFF) return MakeError(Errc::kInvalidArgument, "more than 255 ports in a group");
  if (group.state == AluaState::kTransitioning) {
    return MakeError(Errc::kInvalidArgument, "a group starts in a settled state");
  }
  std::sort(group.relative_ports.begin(), group.relative_ports.end());
  for (std::size_t i = 0; i < group.relative_ports.size(); ++i) {
    const std::uint16_t port = group.relative_ports[i];
    // SPC-5 reserves relative target port 0.
    if (port == 0) return MakeError(Errc::kInvalidArgument, "relative target port 0 is reserved");
    if (state_->port_group.contains(port) || (i > 0 && group.relative_ports[i - 1] == port)) {
      return MakeError(Errc::kAlreadyExists, "relative target port " + std::to_string(port) + " is in a group");
    }
  }
  const std::size_t index = state_->groups.size();
  for (std::uint16_t port : group.relative_ports) state_->port_group[port] = index;
  state_->groups.push_back(PortGroup{group.id, group.state, std::nullopt, group.preferred,
                                     spec::TpgStatusCode::kNoStatus, std::move(group.relative_ports)});
  return {};
}

Result<void> Array::AddLogicalUnit(LogicalUnitConfig lu) {
  std::lock_guard lock(state_->mu);
  if (lu.lun > spec::kMaxFlatSpaceLun) return MakeError(Errc::kInvalidArgument, "LUN above 16383");
  if (state_->lus.contains(lu.lun)) return MakeError(Errc::kAlreadyExists, "LUN " + std::to_string(lu.lun) + " exists");
  if (lu.blocks == 0 || lu.block_size < 512 || lu.block_size > (1u << 20) ||
      lu.blocks > UINT64_MAX / lu.block_size) {
    return MakeError(Errc::kInvalidArgument, "LU geometry: blocks >= 1, block size 512 B..1 MiB");
  }
  if (lu.max_transfer_blocks == 0) return MakeError(Errc::kInvalidArgument, "max_transfer_blocks must be >= 1");
  const PrCapabilities caps{state_->config.pr_all_target_ports, state_->config.pr_persist_through_power_loss};
  const std::uint64_t lun = lu.lun;
  LogicalUnit unit{std::move(lu), proto::SparseStore(), std::make_unique<PersistentReservations>(caps), {}};
  unit.unit_attentions.resize(state_->nexuses.size());
  state_->lus.emplace(lun, std::move(unit));
  state_->QueueUnitAttentionEverywhere(spec::asc::kReportedLunsDataHasChanged);
  return {};
}

Result<void> Array::RemoveLogicalUnit(std::uint64_t lun) {
  std::lock_guard lock(state_->mu);
  if (state_->lus.erase(lun) == 0) return MakeError(Errc::kNotFound, "no LUN " + std::to_string(lun));
  state_->QueueUnitAttentionEverywhere(spec::asc::kReportedLunsDataHasChanged);
  return {};
}

Result<std::unique_ptr<ScsiTransport>> Array::Connect(const std::string& initiator_port, std::uint16_t relative_port) {
  std::lock_guard lock(state_->mu);
  if (initiator_port.empty()) return MakeError(Errc::kInvalidArgument, "empty initiator port name");
  auto port = state_->port_group.find(relative_port);
  if (port == state_->port_group.end()) {
    return MakeError(Errc::kNotFound, "no target port " + std::to_string(relative_port) + " in any port group");
  }
  const NexusId id{initiator_port, relative_port};
  auto& nexuses = state_->nexuses;
  auto it = std::find_if(nexuses.begin(), nexuses.end(), [&](const internal::Nexus& n) { return n.id == id; });
  std::size_t index = static_cast<std::size_t>(it - nexuses.begin());
  if (it != nexuses.end()) {
    for (auto& [lun, lu] : state_->lus) state_->QueueUnitAttention(lu, index, spec::asc::kITNexusLossOccurred);
  } else {
    nexuses.push_back(internal::Nexus{id, port->second});
    for (auto& [lun, lu] : state_->lus) {
      lu.unit_attentions.resize(nexuses.size());
      state_->QueueUnitAttention(lu, index, spec::asc::kPowerOnResetOrBusDeviceReset);
    }
  }
  return std::unique_ptr<ScsiTransport>(
      std::make_unique<internal::NexusTransport>(*this, *state_, static_cast<std::uint32_t>(index)));
}

Result<void> Array::SetAccessState(std::uint16_t group, AluaState state, Nanos transition_time) {
  std::lock_guard lock(state_->mu);
  state_->Tick();
  PortGroup* g = state_->FindGroup(group);
  if (g == nullptr) return MakeError(Errc::kNotFound, "no target port group " + std::to_string(group));
  g->state = state;
  if (transition_time > Nanos(0) && state != AluaState::kTransitioning) {
    g->transition_ends = state_->clock.Now() + transition_time;
  } else {
    g->transition_ends.reset();
  }
  g->status = spec::TpgStatusCode::kAlteredByImplicitBehavior;
  state_->QueueUnitAttentionEverywhere(spec::asc::kAsymmetricAccessStateChanged);
  return {};
}

Result<void> Array::SetPreferred(std::uint16_t group, bool preferred) {
  std::lock_guard lock(state_->mu);
  PortGroup* g = state_->FindGroup(group);
  if (g == nullptr) return MakeError(Errc::kNotFound, "no target port group " + std::to_string(group));
  g->preferred = preferred;
  return {};
}

Result<AluaState> Array::AccessState(std::uint16_t group) const {
  std::lock_guard lock(state_->mu);
  state_->Tick();
  const PortGroup* g = state_->FindGroup(group);
  if (g == nullptr) return MakeError(Errc::kNotFound, "no target port group " + std::to_string(group));
  return g->Reported();
}

void Array::RaiseUnitAttentionEverywhere(spec::SenseCode code) {
  std::lock_guard lock(state_->mu);
  state_->QueueUnitAttentionEverywhere(code);
}

Result<void> Array::ChangeIdentity(std::uint64_t lun, const std::array<std::uint8_t, 16>& naa) {
  std::lock_guard lock(state_->mu);
  LogicalUnit* lu = state_->FindLu(lun);
  if (lu == nullptr) return MakeError(Errc::kNotFound, "no LUN " + std::to_string(lun));
  // A different volume behind the same LUN: its own identity, contents and reservations.
  lu->config.naa = naa;
  lu->store.Clear();
  lu->reservations = std::make_unique<PersistentReservations>(
      PrCapabilities{state_->config.pr_all_target_ports, state_->config.pr_persist_through_power_loss});
  state_->QueueUnitAttentionOnLu(*lu, spec::asc::kInquiryDataHasChanged);
  return {};
}

Result<void> Array::ChangeCapacity(std::uint64_t lun, std::uint64_t blocks) {
  std::lock_guard lock(state_->mu);
  LogicalUnit* lu = state_->FindLu(lun);
  if (lu == nullptr) return MakeError(Errc::kNotFound, "no LUN " + std::to_string(lun));
  if (blocks == 0 || blocks > UINT64_MAX / lu->config.block_size) {
    return MakeError(Errc::kInvalidArgument, "capacity must be >= 1 block");
  }
  // Shrinking drops the tail, so growing again reveals zeroes, not the old data.
  if (blocks < lu->config.blocks) {
    lu->store.Zero(blocks * lu->config.block_size, (lu->config.blocks - blocks) * lu->config.block_size);
  }
  lu->config.blocks = blocks;
  state_->QueueUnitAttentionOnLu(*lu, spec::asc::kCapacityDataHasChanged);
  return {};
}

Result<void> Array::ForeignPreempt(std::uint64_t lun, const std::string& foreign_port, std::uint64_t foreign_key,
                                   std::uint8_t type) {
  std::lock_guard lock(state_->mu);
  LogicalUnit* lu = state_->FindLu(lun);
  if (lu == nullptr) return MakeError(Errc::kNotFound, "no LUN " + std::to_string(lun));
  PrAnswer answer = lu->reservations->ForeignPreempt(NexusId{foreign_port, 1}, foreign_key, type);
  state_->QueueReservationUnitAttentions(*lu, answer.unit_attentions);
  if (answer.status != spec::Status::kGood) {
    return MakeError(Errc::kInvalidArgument, "the reservation engine refused the preemption (type " +
                                                 std::to_string(type) + ")");
  }
  return {};
}

void Array::PowerCycle() {
  std::lock_guard lock(state_->mu);
  for (auto& [lun, lu] : state_->lus) {
    lu.reservations->PowerCycle();
    // Power loss forgets every earlier unit attention: the reset is the one thing left to report.
    for (auto& queue : lu.unit_attentions) queue.clear();
  }
  state_->QueueUnitAttentionEverywhere(spec::asc::kPowerOnOccurred);
}

std::uint64_t Array::CommandCount(std::uint8_t opcode) const {
  std::lock_guard lock(state_->mu);
  return state_->counts[opcode];
}

void Array::SetHandler(std::uint8_t opcode, CommandHandler handler) {
  std::lock_guard lock(state_->mu);
  state_->handlers[opcode] = std::move(handler);
}

void Array::DefaultHandler(CommandContext& context) { state_->Execute(context); }

Result<std::uint64_t> Array::AllocatedBytes(std::uint64_t lun) const {
  std::lock_guard lock(state_->mu);
  const LogicalUnit* lu = state_->FindLu(lun);
  if (lu == nullptr) return MakeError(Errc::kNotFound, "no LUN " + std::to_string(lun));
  return lu->store.allocated_bytes();
}

const ArrayConfig& Array::config() const { return state_->config; }

}  // namespace mpath::scsi::fake
