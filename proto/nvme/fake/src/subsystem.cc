#include "mpath/nvme/fake/subsystem.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <string>
#include <utility>

#include "mpath/nvme/spec/features.h"
#include "mpath/nvme/spec/log_ana.h"
#include "subsystem_state.h"

namespace mpath::nvme::fake {

using spec::Dnr;
using spec::GenericStatus;
using spec::MakeStatus;
using spec::Status;

// One host's connection through one port. Destroying it ends the controller: its outstanding Asynchronous Event
// Requests finish with kAborted, its host's registrations stay (they belong to the host, not the controller).
// Threading: Submit may be called from any thread; the subsystem must outlive the controller.
class Controller final : public NvmeTransport {
 public:
  Controller(Subsystem& subsystem, std::uint16_t cntlid) : subsystem_(subsystem), cntlid_(cntlid) {}
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  ~Controller() override {
    Subsystem::State& state = *subsystem_.state_;
    std::deque<NvmeCommand*> aborted;
    {
      std::lock_guard lock(state.mu);
      auto it = state.controllers.find(cntlid_);
      aborted.swap(it->second.outstanding_aers);
      state.controllers.erase(it);
    }
    for (NvmeCommand* command : aborted) {
      command->ResetAnswer();
      command->delivery = Delivery::kAborted;
      command->executor->Post([command] { command->Finish(); });
    }
  }

  void Submit(NvmeCommand& command) override {
    Subsystem::State& state = *subsystem_.state_;
    const bool finished = state.Locked([&] { return state.Execute(subsystem_, cntlid_, command); });
    if (finished) command.Finish();
  }

 private:
  Subsystem& subsystem_;
  const std::uint16_t cntlid_;
};

void Subsystem::State::PostCompletions(const std::vector<NvmeCommand*>& finished) {
  for (NvmeCommand* command : finished) command->executor->Post([command] { command->Finish(); });
}

// --- Command execution.

bool Subsystem::State::Execute(Subsystem& self, std::uint16_t cntlid, NvmeCommand& command) {
  command.ResetAnswer();
  const auto queue = static_cast<std::size_t>(command.queue);
  ++command_counts[queue][command.sqe.opc];
  CommandContext context{self, cntlid, command};
  if (const CommandHandler& handler = handlers[queue][command.sqe.opc]) {
    handler(context);
  } else {
    Dispatch(context);
  }
  if (context.held) return false;
  FillCompletionHeader(controllers.at(cntlid), command);
  return true;
}

void Subsystem::State::Dispatch(CommandContext& context) {
  ControllerState& controller = controllers.at(context.controller_id);
  NvmeCommand& command = context.command;
  const Status status = command.queue == QueueKind::kAdmin ? ExecuteAdmin(context, controller)
                                                           : ExecuteIo(controller, command);
  if (!context.held) command.cqe.set_status(status);
}

void Subsystem::State::FillCompletionHeader(ControllerState& controller, NvmeCommand& command) {
  const auto queue = static_cast<std::size_t>(command.queue);
  std::uint16_t& head = controller.sq_head[queue];
  head = static_cast<std::uint16_t>((head + 1) % kQueueEntries);
  command.cqe.cid = command.sqe.cid;
  command.cqe.sqid = static_cast<std::uint16_t>(command.queue == QueueKind::kAdmin ? 0 : 1);
  command.cqe.sqhd = head;
}

NamespaceState* Subsystem::State::FindNamespace(std::uint32_t nsid) {
  auto it = namespaces.find(nsid);
  return it == namespaces.end() ? nullptr : it->second.get();
}

std::uint64_t Subsystem::State::MaxTransferBytes() const {
  return config.mdts == 0 ? 0 : std::uint64_t{4096} << config.mdts;
}

// --- ANA.

void Subsystem::State::AdvanceTransitions() {
  const TimePoint now = clock.Now();
  for (auto& [port_id, port] : ports) {
    for (auto& [group_id, group] : port.groups) {
      if (group.target && now >= group.transition_end) {
        group.state = *group.target;
        group.target.reset();
        ChangeGroup(port_id, group);
      }
    }
  }
}

AnaState Subsystem::State::CurrentAnaState(std::uint16_t port_id, std::uint32_t group) {
  const PortState& port = ports.at(port_id);
  auto it = port.groups.find(group);
  return it == port.groups.end() ? AnaState::kOptimized : it->second.state;
}

void Subsystem::State::ChangeGroup(std::uint16_t port_id, GroupState& group) {
  ++group.chgcnt;
  ++ana_chgcnt;
  NotifyPort(port_id, spec::kAnaChangeNotice);
}

std::vector<std::byte> Subsystem::State::BuildAnaLog(const ControllerState& controller, bool groups_only) {
  // Groups that hold namespaces, each with its namespaces in increasing NSID order.
  std::map<std::uint32_t, std::vector<std::uint32_t>> members;
  for (const auto& [nsid, ns] : namespaces) members[ns->config.ana_group].push_back(nsid);

  std::size_t nsid_count = 0;
  for (const auto& [group, nsids] : members) nsid_count += nsids.size();
  std::vector<std::byte> log(spec::AnaLogSize(members.size(), groups_only ? 0 : nsid_count));

  spec::AnaLogHeader header{};
  header.chgcnt = ana_chgcnt;
  header.ngrps = static_cast<std::uint16_t>(members.size());
  std::size_t offset = wire::Store(log, header);
  const PortState& port = ports.at(controller.port_id);
  for (const auto& [group_id, nsids] : members) {
    auto it = port.groups.find(group_id);
    const GroupState group = it == port.groups.end() ? GroupState{} : it->second;
    spec::AnaGroupDescriptor desc{};
    desc.anagrpid = group_id;
    desc.nnsids = static_cast<std::uint32_t>(groups_only ? 0 : nsids.size());
    desc.chgcnt = group.chgcnt;
    desc.anas = static_cast<std::uint8_t>(group.state);
    offset += wire::Store(log, desc, offset);
    if (groups_only) continue;
    for (std::uint32_t nsid : nsids) offset += wire::Store(log, spec::Le32(nsid), offset);
  }
  return log;
}

// --- Asynchronous events.

void Subsystem::State::RaiseNotice(ControllerState& controller, const spec::AsyncEvent& event) {
  const unsigned enable_bit = event.info == static_cast<std::uint8_t>(spec::NoticeEvent::kAnaChange)
                                  ? spec::async_event_config::kAnaChangeNotices
                                  : spec::async_event_config::kNamespaceAttributeNotices;
  if (((controller.async_event_config >> enable_bit) & 1) == 0) return;
  // Once sent (or queued), a notice stays masked until the host reads its log with RAE cleared: the log already
  // tells it everything a second notice would.
  const std::uint32_t mask = std::uint32_t{1} << event.info;
  if ((controller.masked_notices & mask) != 0) return;
  controller.masked_notices |= mask;
  if (controller.outstanding_aers.empty()) {
    controller.pending_events.push_back(event);
    return;
  }
  NvmeCommand* command = controller.outstanding_aers.front();
  controller.outstanding_aers.pop_front();
  CompleteAer(controller, *command, event);
}

void Subsystem::State::NotifyPort(std::uint16_t port_id, const spec::AsyncEvent& event) {
  for (auto& [cntlid, controller] : controllers) {
    if (controller.port_id == port_id) RaiseNotice(controller, event);
  }
}

void Subsystem::State::NamespaceChanged(std::uint32_t nsid) {
  for (auto& [cntlid, controller] : controllers) {
    if (controller.changed_nsids.size() >= spec::kMaxChangedNamespaces && !controller.changed_nsids.contains(nsid)) {
      controller.changed_overflow = true;
    } else {
      controller.changed_nsids.insert(nsid);
    }
    RaiseNotice(controller, spec::kNamespaceAttributeChangedNotice);
  }
}

void Subsystem::State::CompleteAer(ControllerState& controller, NvmeCommand& command, const spec::AsyncEvent& event) {
  command.ResetAnswer();
  command.cqe.dw0 = event.Encode();
  command.cqe.set_status(MakeStatus(GenericStatus::kSuccess));
  FillCompletionHeader(controller, command);
  outbox.push_back(&command);
}

// --- Public API.

Subsystem::Subsystem(std::unique_ptr<State> state) : state_(std::move(state)) {}

Subsystem::~Subsystem() {
  // Controllers hold a reference to the subsystem; one left behind would dangle.
  assert(state_->controllers.empty());
}

Result<std::unique_ptr<Subsystem>> Subsystem::Create(SubsystemConfig config, const Clock& clock) {
  // Lengths of the Identify Controller fields these strings fill; SUBNQN keeps a terminating NUL.
  if (config.nqn.empty() || config.nqn.size() > 223) {
    return MakeError(Errc::kInvalidArgument, "subsystem NQN must be 1..223 bytes: '" + config.nqn + "'");
  }
  if (config.model.size() > 40 || config.serial.size() > 20 || config.firmware.size() > 8) {
    return MakeError(Errc::kInvalidArgument, "model, serial or firmware longer than 40, 20 or 8 bytes");
  }
  if (config.anagrpmax == 0 || config.nanagrpid == 0 || config.nanagrpid > config.anagrpmax) {
    return MakeError(Errc::kInvalidArgument, "need 1 <= NANAGRPID <= ANAGRPMAX, got " +
                                                 std::to_string(config.nanagrpid) + " and " +
                                                 std::to_string(config.anagrpmax));
  }
  if (config.max_namespaces == 0 || config.max_namespaces >= spec::kBroadcastNsid - 1) {
    return MakeError(Errc::kInvalidArgument, "max_namespaces out of range: " + std::to_string(config.max_namespaces));
  }
  if (config.mdts > 16) return MakeError(Errc::kInvalidArgument, "mdts above 16: " + std::to_string(config.mdts));
  return std::unique_ptr<Subsystem>(new Subsystem(std::make_unique<State>(std::move(config), clock)));
}

Result<void> Subsystem::AddPort(std::uint16_t port_id) {
  return state_->Locked([&]() -> Result<void> {
    if (!state_->ports.try_emplace(port_id).second) {
      return MakeError(Errc::kAlreadyExists, "port " + std::to_string(port_id) + " exists");
    }
    return {};
  });
}

Result<void> Subsystem::AddNamespace(NamespaceConfig ns) {
  const SubsystemConfig& config = state_->config;
  if (ns.nsid == 0 || ns.nsid > config.max_namespaces) {
    return MakeError(Errc::kInvalidArgument, "NSID " + std::to_string(ns.nsid) + " outside 1.." +
                                                 std::to_string(config.max_namespaces));
  }
  if (ns.blocks == 0) return MakeError(Errc::kInvalidArgument, "namespace " + std::to_string(ns.nsid) + " has no blocks");
  if (!std::has_single_bit(ns.block_size) || ns.block_size < 512 || ns.block_size > 4096) {
    return MakeError(Errc::kInvalidArgument, "block size " + std::to_string(ns.block_size) +
                                                 " is not a power of two in 512..4096");
  }
  if (ns.ana_group == 0 || ns.ana_group > config.anagrpmax) {
    return MakeError(Errc::kInvalidArgument, "ANA group " + std::to_string(ns.ana_group) + " outside 1.." +
                                                 std::to_string(config.anagrpmax));
  }
  return state_->Locked([&]() -> Result<void> {
    const std::uint32_t nsid = ns.nsid;
    if (state_->namespaces.contains(nsid)) {
      return MakeError(Errc::kAlreadyExists, "namespace " + std::to_string(nsid) + " exists");
    }
    auto state = std::make_unique<NamespaceState>();
    state->lbads = static_cast<std::uint8_t>(std::countr_zero(ns.block_size));
    state->config = std::move(ns);
    state_->namespaces.emplace(nsid, std::move(state));
    state_->NamespaceChanged(nsid);
    return {};
  });
}

Result<void> Subsystem::RemoveNamespace(std::uint32_t nsid) {
  return state_->Locked([&]() -> Result<void> {
    if (state_->namespaces.erase(nsid) == 0) {
      return MakeError(Errc::kNotFound, "no namespace " + std::to_string(nsid));
    }
    state_->NamespaceChanged(nsid);
    return {};
  });
}

Result<std::unique_ptr<NvmeTransport>> Subsystem::Connect(const std::string& host_nqn,
                                                          const std::array<std::uint8_t, 16>& host_id,
                                                          std::uint16_t port_id) {
  if (host_nqn.empty() || host_nqn.size() > 223) {
    return MakeError(Errc::kInvalidArgument, "host NQN must be 1..223 bytes: '" + host_nqn + "'");
  }
  return state_->Locked([&]() -> Result<std::unique_ptr<NvmeTransport>> {
    if (!state_->ports.contains(port_id)) return MakeError(Errc::kNotFound, "no port " + std::to_string(port_id));
    // CNTLIDs FFF0h and above are reserved.
    if (state_->next_cntlid >= 0xFFF0) return MakeError(Errc::kNoSpace, "controller IDs exhausted");
    const std::uint16_t cntlid = state_->next_cntlid++;
    ControllerState controller;
    controller.cntlid = cntlid;
    controller.port_id = port_id;
    controller.host_nqn = host_nqn;
    controller.host_id = host_id;
    // nvmet enables every notice it supports at creation, before the host asks.
    controller.async_event_config = (std::uint32_t{1} << spec::async_event_config::kNamespaceAttributeNotices) |
                                    (std::uint32_t{1} << spec::async_event_config::kAnaChangeNotices);
    state_->controllers.emplace(cntlid, std::move(controller));
    return std::unique_ptr<NvmeTransport>(std::make_unique<Controller>(*this, cntlid));
  });
}

Result<void> Subsystem::SetAnaState(std::uint16_t port_id, std::uint32_t group, AnaState state,
                                    Nanos transition_time) {
  if (group == 0 || group > state_->config.anagrpmax) {
    return MakeError(Errc::kInvalidArgument, "ANA group " + std::to_string(group) + " outside 1.." +
                                                 std::to_string(state_->config.anagrpmax));
  }
  if (!spec::IsValidAnaState(static_cast<std::uint8_t>(state))) {
    return MakeError(Errc::kInvalidArgument, "not an ANA state: " + std::to_string(static_cast<int>(state)));
  }
  if (transition_time < Nanos(0)) return MakeError(Errc::kInvalidArgument, "negative transition time");
  return state_->Locked([&]() -> Result<void> {
    auto port = state_->ports.find(port_id);
    if (port == state_->ports.end()) return MakeError(Errc::kNotFound, "no port " + std::to_string(port_id));
    GroupState& g = port->second.groups[group];
    if (transition_time > Nanos(0) && state != AnaState::kChange) {
      g.state = AnaState::kChange;
      g.target = state;
      g.transition_end = state_->clock.Now() + transition_time;
    } else {
      g.state = state;
      g.target.reset();
    }
    state_->ChangeGroup(port_id, g);
    return {};
  });
}

Result<AnaState> Subsystem::GetAnaState(std::uint16_t port_id, std::uint32_t group) const {
  if (group == 0 || group > state_->config.anagrpmax) {
    return MakeError(Errc::kInvalidArgument, "ANA group " + std::to_string(group) + " outside 1.." +
                                                 std::to_string(state_->config.anagrpmax));
  }
  return state_->Locked([&]() -> Result<AnaState> {
    if (!state_->ports.contains(port_id)) return MakeError(Errc::kNotFound, "no port " + std::to_string(port_id));
    return state_->CurrentAnaState(port_id, group);
  });
}

Result<void> Subsystem::ChangeIdentity(std::uint32_t nsid, const std::array<std::uint8_t, 16>& nguid,
                                       const std::array<std::uint8_t, 8>& eui64,
                                       const std::array<std::uint8_t, 16>& uuid) {
  return state_->Locked([&]() -> Result<void> {
    NamespaceState* ns = state_->FindNamespace(nsid);
    if (ns == nullptr) return MakeError(Errc::kNotFound, "no namespace " + std::to_string(nsid));
    ns->config.nguid = nguid;
    ns->config.eui64 = eui64;
    ns->config.uuid = uuid;
    // Another volume now answers at this NSID: none of the old one's data or reservations carry over.
    ns->data.Clear();
    ns->reservations.Reset();
    state_->NamespaceChanged(nsid);
    return {};
  });
}

Result<void> Subsystem::ChangeCapacity(std::uint32_t nsid, std::uint64_t blocks) {
  if (blocks == 0) return MakeError(Errc::kInvalidArgument, "namespace capacity of 0 blocks");
  return state_->Locked([&]() -> Result<void> {
    NamespaceState* ns = state_->FindNamespace(nsid);
    if (ns == nullptr) return MakeError(Errc::kNotFound, "no namespace " + std::to_string(nsid));
    if (blocks < ns->config.blocks) {
      // What a shrink cuts off is gone; growing back must read zeroes there.
      ns->data.Zero(blocks << ns->lbads, (ns->config.blocks - blocks) << ns->lbads);
    }
    ns->config.blocks = blocks;
    state_->NamespaceChanged(nsid);
    return {};
  });
}

Result<void> Subsystem::ForeignPreempt(std::uint32_t nsid, const std::array<std::uint8_t, 16>& foreign_host_id,
                                       std::uint64_t foreign_key, std::uint8_t type) {
  if (!spec::IsValidReservationType(type)) {
    return MakeError(Errc::kInvalidArgument, "not a reservation type: " + std::to_string(type));
  }
  return state_->Locked([&]() -> Result<void> {
    NamespaceState* ns = state_->FindNamespace(nsid);
    if (ns == nullptr) return MakeError(Errc::kNotFound, "no namespace " + std::to_string(nsid));
    ns->reservations.ForeignPreempt(foreign_host_id, foreign_key, static_cast<spec::ReservationType>(type));
    return {};
  });
}

std::uint64_t Subsystem::CommandCount(QueueKind queue, std::uint8_t opcode) const {
  std::lock_guard lock(state_->mu);
  return state_->command_counts[static_cast<std::size_t>(queue)][opcode];
}

void Subsystem::SetHandler(QueueKind queue, std::uint8_t opcode, CommandHandler handler) {
  std::lock_guard lock(state_->mu);
  state_->handlers[static_cast<std::size_t>(queue)][opcode] = std::move(handler);
}

void Subsystem::DefaultHandler(CommandContext& context) { state_->Dispatch(context); }

const SubsystemConfig& Subsystem::config() const { return state_->config; }

}  // namespace mpath::nvme::fake
