#include "mpath/scsi/personality.h"

#include <fmt/format.h>

#include <utility>
#include <vector>

#include "mpath/scsi/classify.h"

namespace mpath::scsi {

Decision ScsiHeadTemplate::Classify(const IoRequest& io, const IoStatus& status, const Path& /*path*/) const {
  return ClassifyScsi(io, status);
}

const ScsiHeadTemplate& ScsiHeadTemplate::Instance() {
  static const ScsiHeadTemplate instance;
  return instance;
}

// Carries what the I/O path learns from sense (unit attentions, NOT READY) to the control plane.
// Threading: OnSense runs on any I/O thread; it only posts to the control executor.
class ScsiPersonality::SenseRelay final : public ScsiPathObserver {
 public:
  SenseRelay(std::weak_ptr<ScsiPersonality*> owner, Executor& control, PathKey key)
      : owner_(std::move(owner)), control_(control), key_(key) {}

  void OnSense(const spec::SenseCode& code) override {
    // Unit attentions are rare; posting (and its allocation) is off the steady-state I/O path.
    control_.Post([owner = owner_, key = key_, code] {
      if (auto personality = owner.lock()) (*personality)->OnSense(key, code);
    });
  }
  void OnReservationConflict() override {
    control_.Post([owner = owner_, key = key_] {
      if (auto personality = owner.lock()) (*personality)->OnReservationConflict(key);
    });
  }

 private:
  const std::weak_ptr<ScsiPersonality*> owner_;
  Executor& control_;
  const PathKey key_;
};

struct ScsiPersonality::PathRecord {
  PathKey key = 0;
  std::string name;
  ScsiTransport* nexus = nullptr;
  std::uint64_t lun = 0;
  bool reprobing = false;
  std::shared_ptr<Head> head;  // null for a direct device
  PathId path_id = 0;
  bool in_alua = false;
  std::unique_ptr<SenseRelay> relay;
};

struct ScsiPersonality::HeadRecord {
  std::shared_ptr<Head> head;
  std::unique_ptr<PrCoordinator> reservations;
};

Result<std::unique_ptr<ScsiPersonality>> ScsiPersonality::Create(Registry& registry, Executor& control,
                                                                 ScsiPersonalityOptions options) {
  std::unique_ptr<ScsiPersonality> personality(new ScsiPersonality(registry, control, std::move(options)));
  ScsiPersonality* self = personality.get();
  AluaCallbacks callbacks;
  callbacks.on_state = [self](PathKey key, AccessState state, bool preferred) {
    self->OnAccessState(key, state, preferred);
  };
  // RTPGs consume unit attentions too; the reservation ones (2A/03, 2A/05) belong to the PR coordinator.
  callbacks.on_unit_attention = [self](PathKey key, spec::SenseCode code) { self->TellReservations(key, code); };
  callbacks.on_identity = [self](PathKey key) { self->Reprobe(key); };
  callbacks.on_rescan = [self](PathKey key) { self->OnLunsChanged(key); };
  personality->alua_ = MPATH_TRY(AluaEngine::Create(control, personality->options_.alua, std::move(callbacks)));
  return personality;
}

ScsiPersonality::ScsiPersonality(Registry& registry, Executor& control, ScsiPersonalityOptions options)
    : registry_(registry), control_(control), options_(std::move(options)),
      self_(std::make_shared<ScsiPersonality*>(this)) {}

ScsiPersonality::~ScsiPersonality() {
  self_.reset();
  // The engines call back into this object; they go before the records they refer to.
  for (auto& [name, head] : heads_) head->reservations.reset();
  alua_.reset();
}

void ScsiPersonality::AttachPath(ScsiPathSpec spec, AttachCallback done) {
  if (spec.nexus == nullptr || spec.name.empty()) {
    done(MakeError(Errc::kInvalidArgument, "SCSI path: a path needs a name and a nexus"));
    return;
  }
  for (const auto& [key, record] : paths_) {
    if (record->name == spec.name) {
      done(MakeError(Errc::kAlreadyExists, fmt::format("SCSI path '{}' is already attached", spec.name)));
      return;
    }
  }
  ScsiTransport& nexus = *spec.nexus;
  const std::uint64_t lun = spec.lun;
  ProbeLogicalUnit(nexus, lun, control_, options_.probe,
                   [owner = std::weak_ptr<ScsiPersonality*>(self_), spec = std::move(spec),
                    done = std::move(done)](Result<ProbedUnit> unit) mutable {
                     auto personality = owner.lock();
                     if (!personality) return;
                     if (!unit) {
                       done(std::unexpected(Error(unit.error().code(),
                                                  fmt::format("SCSI path '{}': {}", spec.name, unit.error().message()),
                                                  unit.error().raw())));
                       return;
                     }
                     (*personality)->Attach(std::move(spec), *unit, std::move(done));
                   });
}

void ScsiPersonality::Attach(ScsiPathSpec spec, const ProbedUnit& unit, AttachCallback done) {
  DeviceInfo info = unit.ToDeviceInfo();
  info.name = spec.name;
  info.transport = spec.transport;
  info.locality = spec.locality;
  std::shared_ptr<Head> existing = info.identity.empty() ? nullptr : registry_.FindHead(info.identity.str());
  if (info.capacity_bytes == 0) {
    // A port in standby or unavailable refuses READ CAPACITY; the head already knows the LU's geometry.
    if (existing == nullptr) {
      done(MakeError(Errc::kBusy, fmt::format("SCSI path '{}': the port refuses READ CAPACITY and no head of {} "
                                              "knows the capacity yet; attach it after an active path",
                                              spec.name, info.identity.str())));
      return;
    }
    info.capacity_bytes = existing->capacity_bytes();
    info.block_size = existing->block_size();
    ApplyBlockLimits(unit.block_limits, info);
  }
  // A head that holds our PR key must see a new path registered before it carries I/O.
  if (existing != nullptr) {
    auto head_record = heads_.find(existing->name());
    if (head_record != heads_.end() && head_record->second->reservations->state() != PrState::kUnregistered) {
      info.initial_state = PathState::kConnecting;
    }
  }

  auto record = std::make_unique<PathRecord>();
  record->key = next_key_++;
  record->name = spec.name;
  record->nexus = spec.nexus;
  record->lun = spec.lun;
  record->relay = std::make_unique<SenseRelay>(self_, control_, record->key);
  auto driver = ScsiPathDriver::Create(*spec.nexus, spec.lun, info.block_size, info.capacity_bytes / info.block_size,
                                       options_.driver, record->relay.get());
  if (!driver) {
    done(std::unexpected(std::move(driver).error()));
    return;
  }
  auto attachment = registry_.Attach(info, ScsiHeadTemplate::Instance(), std::move(*driver));
  if (!attachment) {
    done(std::unexpected(std::move(attachment).error()));
    return;
  }
  const PathKey key = record->key;
  if (attachment->multipathed()) {
    record->head = attachment->head;
    record->path_id = attachment->path;
    HeadRecord& head = HeadFor(attachment->head);
    if (info.reports_access_states) {
      auto added = alua_->AddPath({.key = key, .nexus = spec.nexus, .lun = spec.lun,
                                   .target_name = unit.port.target_name,
                                   .relative_target_port = unit.port.relative_target_port.value_or(0),
                                   .target_port_group = unit.port.target_port_group.value_or(0)});
      record->in_alua = added.has_value();
    }
    paths_.emplace(key, std::move(record));
    head.reservations->AddPath(key, *spec.nexus, spec.lun,
                               PrNexusInfo{.initiator_port = spec.initiator_port,
                                           .relative_target_port = unit.port.relative_target_port});
  } else {
    paths_.emplace(key, std::move(record));
  }
  done(std::move(attachment));
}

ScsiPersonality::HeadRecord& ScsiPersonality::HeadFor(const std::shared_ptr<Head>& head) {
  auto it = heads_.find(head->name());
  if (it != heads_.end() && it->second->head == head) return *it->second;
  auto record = std::make_unique<HeadRecord>();
  record->head = head;
  PrCallbacks callbacks;
  callbacks.on_path_ready = [this](PrPathKey key) { OnPrReady(key, true); };
  callbacks.on_path_hold = [this](PrPathKey key) { OnPrReady(key, false); };
  // PR commands consume unit attentions (2A/06, 29/xx) that the ALUA engine would otherwise never see.
  callbacks.on_unit_attention = [this](PrPathKey key, spec::SenseCode code) {
    auto it = paths_.find(key);
    if (it != paths_.end() && it->second->in_alua) alua_->OnSense(key, code);
  };
  auto coordinator = PrCoordinator::Create(control_, std::move(callbacks), options_.reservations);
  // Creation only fails on invalid options, which Create of the personality would already have refused.
  record->reservations = std::move(coordinator).value();
  HeadRecord& ref = *record;
  heads_[head->name()] = std::move(record);
  return ref;
}

Result<void> ScsiPersonality::DetachPath(std::string_view name) {
  for (auto it = paths_.begin(); it != paths_.end(); ++it) {
    PathRecord& record = *it->second;
    if (record.name != name) continue;
    if (record.in_alua) (void)alua_->RemovePath(record.key);
    if (PrCoordinator* reservations = ReservationsOf(record.key)) reservations->RemovePath(record.key);
    MPATH_TRY(registry_.Detach(name));
    // The driver may still be finishing I/O and calls the relay; the relay stays until the personality goes.
    retired_relays_.push_back(std::move(record.relay));
    paths_.erase(it);
    return {};
  }
  return MakeError(Errc::kNotFound, fmt::format("no SCSI path named '{}'", name));
}

PrCoordinator* ScsiPersonality::Reservations(std::string_view head_name_or_identity) {
  std::shared_ptr<Head> head = registry_.FindHead(head_name_or_identity);
  if (head == nullptr) return nullptr;
  auto it = heads_.find(head->name());
  return it == heads_.end() ? nullptr : it->second->reservations.get();
}

void ScsiPersonality::OnSense(PathKey key, spec::SenseCode code) {
  auto it = paths_.find(key);
  if (it == paths_.end()) return;
  if (it->second->in_alua) {
    alua_->OnSense(key, code);  // which also answers 3F/03 and 3F/0E through on_identity and on_rescan
  } else if (code == spec::asc::kInquiryDataHasChanged) {
    Reprobe(key);
  } else if (code == spec::asc::kReportedLunsDataHasChanged) {
    OnLunsChanged(key);
  }
  TellReservations(key, code);
}

void ScsiPersonality::Reprobe(PathKey key) {
  auto it = paths_.find(key);
  if (it == paths_.end() || it->second->reprobing) return;
  PathRecord& record = *it->second;
  record.reprobing = true;
  ProbeLogicalUnit(*record.nexus, record.lun, control_, options_.probe,
                   [owner = std::weak_ptr<ScsiPersonality*>(self_), key](Result<ProbedUnit> unit) {
                     auto personality = owner.lock();
                     if (!personality) return;
                     ScsiPersonality& self = **personality;
                     auto it = self.paths_.find(key);
                     if (it == self.paths_.end()) return;
                     PathRecord& record = *it->second;
                     record.reprobing = false;
                     // A probe that fails says nothing about identity; the I/O path's errors will speak for it.
                     if (!unit) return;
                     const DeviceIdentity was = record.head != nullptr ? record.head->identity() : DeviceIdentity();
                     if (record.head == nullptr || unit->identity.identity == was) return;
                     // Another volume now answers here: it must never be merged into the old head.
                     const std::string name = record.name;
                     (void)self.DetachPath(name);
                     if (self.options_.on_path_remapped) self.options_.on_path_remapped(name, *unit);
                   });
}

void ScsiPersonality::OnLunsChanged(PathKey key) {
  auto it = paths_.find(key);
  if (it != paths_.end() && options_.on_luns_changed) options_.on_luns_changed(it->second->name);
}

void ScsiPersonality::TellReservations(PathKey key, spec::SenseCode code) {
  if (PrCoordinator* reservations = ReservationsOf(key)) reservations->OnSense(key, code);
}

PrCoordinator* ScsiPersonality::ReservationsOf(PathKey key) {
  auto it = paths_.find(key);
  if (it == paths_.end() || it->second->head == nullptr) return nullptr;
  auto head = heads_.find(it->second->head->name());
  return head == heads_.end() ? nullptr : head->second->reservations.get();
}

void ScsiPersonality::OnReservationConflict(PathKey key) {
  if (PrCoordinator* reservations = ReservationsOf(key)) reservations->OnReservationConflict(key);
}

void ScsiPersonality::OnAccessState(PathKey key, AccessState state, bool preferred) {
  auto it = paths_.find(key);
  if (it == paths_.end() || it->second->head == nullptr) return;
  (void)it->second->head->SetAccessState(it->second->path_id, state, preferred);
}

void ScsiPersonality::OnPrReady(PathKey key, bool ready) {
  auto it = paths_.find(key);
  if (it == paths_.end() || it->second->head == nullptr) return;
  (void)it->second->head->SetPathState(it->second->path_id, ready ? PathState::kLive : PathState::kConnecting);
}

}  // namespace mpath::scsi
