#include "mpath/nvme/personality.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <utility>

#include "mpath/core/head_channel.h"
#include "mpath/core/io_request.h"
#include "mpath/nvme/classify.h"
#include "mpath/nvme/raw_status.h"

namespace mpath::nvme {

Decision NvmeHeadTemplate::Classify(const IoRequest& io, const IoStatus& status, const Path& /*path*/) const {
  return ClassifyNvme(io, status);
}

const NvmeHeadTemplate& NvmeHeadTemplate::Instance() {
  static const NvmeHeadTemplate instance;
  return instance;
}

// Carries ANA statuses seen on the I/O path to the ANA engine, on the control plane.
// Threading: OnAnaStatus runs on any I/O thread; it only posts to the control executor.
class NvmePersonality::AnaRelay final : public NvmePathObserver {
 public:
  AnaRelay(std::weak_ptr<NvmePersonality*> owner, Executor& control, ControllerKey key)
      : owner_(std::move(owner)), control_(control), key_(key) {}

  void OnAnaStatus(std::uint16_t /*status_code*/) override {
    // An ANA change fails every I/O in flight on the path at once; one refresh answers them all, so only the first
    // of a burst posts (and allocates).
    if (pending_.exchange(true, std::memory_order_acq_rel)) return;
    control_.Post([this, owner = owner_, key = key_] {
      auto personality = owner.lock();
      if (!personality) return;
      pending_.store(false, std::memory_order_release);
      (*personality)->ana_->OnAnaStatus(key);
    });
  }

 private:
  const std::weak_ptr<NvmePersonality*> owner_;
  Executor& control_;
  const ControllerKey key_;
  std::atomic<bool> pending_{false};
};

// An NvmeTransport that sends each command through a head as passthrough: down one usable path, never resent on
// another. Reservations use it, so that they follow the head's paths as they come and go.
// Threading: Submit and every completion run on the control executor's thread.
class NvmePersonality::HeadRoute final : public NvmeTransport {
 public:
  HeadRoute(std::shared_ptr<Head> head, Executor& control) : head_(std::move(head)), control_(control) {}
  ~HeadRoute() override {
    if (channel_ != nullptr) channel_->Close();
  }

  void Submit(NvmeCommand& command) override {
    if (channel_ == nullptr) channel_ = head_->OpenChannel(control_);
    auto operation = std::make_unique<Operation>();
    Operation& op = *operation;
    op.command = &command;
    op.passthrough.sqe = command.sqe;
    op.passthrough.queue = command.queue;
    op.passthrough.direction = command.direction;
    op.passthrough.data = command.data;
    op.passthrough.timeout = command.timeout;
    op.passthrough.answer = &op.answer;
    op.io = op.pool.Acquire();
    op.io->op = IoOp::kPassthrough;
    op.io->passthrough = &op.passthrough;
    op.io->user = operation.release();
    op.io->OnComplete(&HeadRoute::OnComplete, nullptr);
    channel_->Submit(*op.io);
  }

 private:
  struct Operation {
    IoRequestPool pool{1, NvmePathDriver::RequiredContextSize()};
    IoRequest* io = nullptr;
    NvmeCommand* command = nullptr;
    NvmePassthrough passthrough;
    NvmePassthrough::Answer answer;
  };

  static void OnComplete(IoRequest& io, void* /*arg*/) {
    std::unique_ptr<Operation> op(static_cast<Operation*>(io.user));
    NvmeCommand& command = *op->command;
    if (io.status.ok() || io.status.raw.family == kNvmeStatusFamily) {
      // The command reached a controller (or its transport gave up on it): its own answer stands.
      command.delivery = op->answer.delivery;
      command.cqe = op->answer.cqe;
    } else {
      // The head had no path to send it down (or refused it): as far as the caller can tell, it never arrived.
      command.delivery = Delivery::kLinkDown;
      command.cqe = {};
    }
    op->pool.Release(&io);
    op.reset();
    command.Finish();
  }

  const std::shared_ptr<Head> head_;
  Executor& control_;
  std::shared_ptr<HeadChannel> channel_;
};

struct NvmePersonality::NamespaceRecord {
  std::uint32_t nsid = 0;
  std::string path;
  DeviceIdentity identity;
  std::shared_ptr<Head> head;  // null for a direct device
  PathId path_id = 0;
  std::unique_ptr<AnaRelay> relay;
};

struct NvmePersonality::ControllerRecord {
  ControllerKey key = 0;
  NvmeControllerSpec spec;
  ControllerSummary summary;
  std::map<std::uint32_t, NamespaceRecord> namespaces;
  // Reconciliation after notices and rescans runs one at a time per controller; what arrives meanwhile waits here.
  bool reconciling = false;
  bool pending_all = false;
  std::set<std::uint32_t> pending;
};

struct NvmePersonality::HeadRecord {
  std::shared_ptr<Head> head;
  std::unique_ptr<HeadRoute> route;
  std::unique_ptr<NvmeReservations> reservations;
};

Result<std::unique_ptr<NvmePersonality>> NvmePersonality::Create(Registry& registry, Executor& control,
                                                                 NvmePersonalityOptions options) {
  std::unique_ptr<NvmePersonality> personality(new NvmePersonality(registry, control, std::move(options)));
  NvmePersonality* self = personality.get();
  AnaCallbacks callbacks;
  callbacks.on_state = [self](ControllerKey key, std::uint32_t nsid, AccessState state) {
    self->OnAccessState(key, nsid, state);
  };
  callbacks.on_namespaces_changed = [self](ControllerKey key, const std::vector<std::uint32_t>& nsids, bool all) {
    auto it = self->controllers_.find(key);
    if (it == self->controllers_.end()) return;
    ControllerRecord& controller = *it->second;
    controller.pending_all = controller.pending_all || all;
    controller.pending.insert(nsids.begin(), nsids.end());
    self->Reconcile(key);
  };
  callbacks.on_reconnect_needed = [self](ControllerKey key, std::uint32_t group) {
    auto it = self->controllers_.find(key);
    if (it != self->controllers_.end() && self->options_.on_reconnect_needed) {
      self->options_.on_reconnect_needed(it->second->spec.name, group);
    }
  };
  personality->ana_ = MPATH_TRY(AnaEngine::Create(control, personality->options_.ana, std::move(callbacks)));
  return personality;
}

NvmePersonality::NvmePersonality(Registry& registry, Executor& control, NvmePersonalityOptions options)
    : registry_(registry), control_(control), options_(std::move(options)),
      self_(std::make_shared<NvmePersonality*>(this)) {}

NvmePersonality::~NvmePersonality() {
  self_.reset();
  // Reservations send through the routes, and the engine calls back into this object: both go before the records.
  for (auto& [name, head] : heads_) {
    head->reservations.reset();
    head->route.reset();
  }
  ana_.reset();
}

NvmePersonality::ControllerRecord* NvmePersonality::FindController(std::string_view name) {
  for (auto& [key, record] : controllers_) {
    if (record->spec.name == name) return record.get();
  }
  return nullptr;
}

const ControllerSummary* NvmePersonality::Controller(std::string_view name) const {
  for (const auto& [key, record] : controllers_) {
    if (record->spec.name == name) return &record->summary;
  }
  return nullptr;
}

void NvmePersonality::AttachController(NvmeControllerSpec spec, ControllerAttachCallback done) {
  if (spec.controller == nullptr || spec.name.empty()) {
    done(MakeError(Errc::kInvalidArgument, "NVMe controller: a controller needs a name and a transport"));
    return;
  }
  if (FindController(spec.name) != nullptr) {
    done(MakeError(Errc::kAlreadyExists, fmt::format("NVMe controller '{}' is already attached", spec.name)));
    return;
  }
  NvmeTransport& transport = *spec.controller;
  ProbeController(transport, control_, options_.probe,
                  [owner = std::weak_ptr<NvmePersonality*>(self_), spec = std::move(spec),
                   done = std::move(done)](Result<ProbedController> probed) mutable {
                    auto personality = owner.lock();
                    if (!personality) return;
                    if (!probed) {
                      done(std::unexpected(Error(probed.error().code(),
                                                 fmt::format("NVMe controller '{}': {}", spec.name,
                                                             probed.error().message()),
                                                 probed.error().raw())));
                      return;
                    }
                    (*personality)->OnControllerProbed(std::move(spec), std::move(*probed), std::move(done));
                  });
}

namespace {

std::string HexOf(const std::array<std::uint8_t, 16>& bytes) { return fmt::format("{:02x}", fmt::join(bytes, "")); }

}  // namespace

void NvmePersonality::OnControllerProbed(NvmeControllerSpec spec, ProbedController probed,
                                         ControllerAttachCallback done) {
  // Checked again: another attach of the same name may have finished while this one probed.
  if (FindController(spec.name) != nullptr) {
    done(MakeError(Errc::kAlreadyExists, fmt::format("NVMe controller '{}' is already attached", spec.name)));
    return;
  }
  // Reservations belong to the host identifier: a controller presenting another one would be another registrant, and
  // a reservation taken through one path would conflict with I/O on the other.
  for (const auto& [key, other] : controllers_) {
    if (other->summary.subnqn == probed.controller.subnqn && other->spec.host_id != spec.host_id) {
      done(MakeError(Errc::kInvalidArgument,
                     fmt::format("NVMe controller '{}' presents host identifier {} to subsystem {}, but controller "
                                 "'{}' presents {}; every controller of a host must present the same one, since "
                                 "reservations belong to it",
                                 spec.name, HexOf(spec.host_id), probed.controller.subnqn, other->spec.name,
                                 HexOf(other->spec.host_id))));
      return;
    }
  }
  auto record = std::make_unique<ControllerRecord>();
  record->key = next_key_++;
  record->spec = std::move(spec);
  record->summary = probed.controller;
  const ControllerKey key = record->key;
  NvmeTransport* transport = record->spec.controller;
  controllers_.emplace(key, std::move(record));
  if (auto added = ana_->AddController({.key = key, .transport = transport, .summary = probed.controller}); !added) {
    controllers_.erase(key);
    done(std::unexpected(std::move(added).error()));
    return;
  }
  ProbeNamespaces(key, std::move(probed.active_nsids),
                  [summary = probed.controller, done = std::move(done)](
                      std::vector<NamespaceAttachment> namespaces) mutable {
                    done(ControllerAttachment{.controller = summary, .namespaces = std::move(namespaces)});
                  });
}

void NvmePersonality::ProbeNamespaces(ControllerKey key, std::vector<std::uint32_t> nsids,
                                      std::move_only_function<void(std::vector<NamespaceAttachment>)> done) {
  // One namespace at a time: a controller with a thousand namespaces should not get a thousand admin commands at once
  // (its admin queue is small), and the order of attachment stays the order of NSIDs.
  struct Walk {
    ControllerKey key;
    std::vector<std::uint32_t> nsids;
    std::size_t next = 0;
    std::vector<NamespaceAttachment> out;
    std::move_only_function<void(std::vector<NamespaceAttachment>)> done;
  };
  auto walk = std::make_shared<Walk>(Walk{key, std::move(nsids), 0, {}, std::move(done)});
  auto step = std::make_shared<std::function<void()>>();
  *step = [this, owner = std::weak_ptr<NvmePersonality*>(self_), walk, weak_step = std::weak_ptr(step)]() {
    auto it = controllers_.find(walk->key);
    if (it == controllers_.end() || walk->next >= walk->nsids.size()) {
      walk->done(std::move(walk->out));
      return;
    }
    ControllerRecord& controller = *it->second;
    const std::uint32_t nsid = walk->nsids[walk->next++];
    auto keep_step = weak_step.lock();
    ProbeNamespace(*controller.spec.controller, controller.summary, nsid, control_, options_.probe,
                   [owner, walk, keep_step, nsid](Result<ProbedNamespace> probed) {
                     auto personality = owner.lock();
                     if (!personality) return;
                     NvmePersonality& self = **personality;
                     auto it = self.controllers_.find(walk->key);
                     if (it != self.controllers_.end()) {
                       if (probed) {
                         walk->out.push_back(self.AttachNamespace(*it->second, *probed));
                       } else if (probed.error().code() != Errc::kNotFound) {
                         walk->out.push_back(NamespaceAttachment{
                             .nsid = nsid,
                             .path = fmt::format("{}n{}", it->second->spec.name, nsid),
                             .attachment = std::unexpected(probed.error())});
                       }
                     }
                     (*keep_step)();
                   });
  };
  (*step)();
}

NamespaceAttachment NvmePersonality::AttachNamespace(ControllerRecord& controller, const ProbedNamespace& probed) {
  const std::uint32_t nsid = probed.ns.nsid;
  NamespaceAttachment out{.nsid = nsid, .path = fmt::format("{}n{}", controller.spec.name, nsid), .attachment = {}};
  if (controller.namespaces.contains(nsid)) {
    out.attachment = MakeError(Errc::kAlreadyExists, fmt::format("NVMe path '{}' is already attached", out.path));
    return out;
  }
  DeviceInfo info = ToDeviceInfo(controller.summary, probed.ns, probed.identity);
  info.name = out.path;
  info.transport = controller.spec.transport;
  info.locality = controller.spec.locality;
  // The ANA log, not Identify, says how this path may be used; until the engine has placed it, it may become
  // available but is not chosen.
  if (controller.summary.ana_reporting) info.initial_access = AccessState::kTransitioning;

  NamespaceRecord record;
  record.nsid = nsid;
  record.path = out.path;
  record.identity = info.identity;
  record.relay = std::make_unique<AnaRelay>(self_, control_, controller.key);
  const NvmePathDriverOptions driver_options{.retry_delays = controller.summary.retry_delays,
                                             .write_zeroes = controller.summary.write_zeroes,
                                             .deallocate = controller.summary.dataset_management,
                                             .max_transfer_bytes = controller.summary.MaxTransferBytes(),
                                             .command_timeout = options_.command_timeout};
  auto driver = NvmePathDriver::Create(*controller.spec.controller, nsid, probed.ns.block_size, probed.ns.nsze,
                                       driver_options, record.relay.get());
  if (!driver) {
    out.attachment = std::unexpected(std::move(driver).error());
    return out;
  }
  auto attachment = registry_.Attach(info, NvmeHeadTemplate::Instance(), std::move(*driver));
  if (!attachment) {
    out.attachment = std::unexpected(std::move(attachment).error());
    return out;
  }
  if (attachment->multipathed()) {
    record.head = attachment->head;
    record.path_id = attachment->path;
    HeadFor(attachment->head, nsid);
    (void)ana_->WatchNamespace(controller.key, nsid, probed.ns.anagrpid);
  }
  controller.namespaces.emplace(nsid, std::move(record));
  out.attachment = std::move(attachment);
  return out;
}

NvmePersonality::HeadRecord& NvmePersonality::HeadFor(const std::shared_ptr<Head>& head, std::uint32_t nsid) {
  auto it = heads_.find(head->name());
  if (it != heads_.end() && it->second->head == head) return *it->second;
  // A head that removed itself (delayed removal ran out) leaves its record behind; a new head may reuse the name.
  std::erase_if(heads_, [](const auto& entry) { return entry.second->head->state() == HeadState::kRemoved; });
  auto record = std::make_unique<HeadRecord>();
  record->head = head;
  record->route = std::make_unique<HeadRoute>(head, control_);
  // Creation only fails on invalid options. The NSID is the same on every controller of the subsystem.
  record->reservations = NvmeReservations::Create(*record->route, nsid, control_, options_.reservations).value();
  HeadRecord& ref = *record;
  heads_[head->name()] = std::move(record);
  return ref;
}

Result<void> NvmePersonality::DetachNamespace(ControllerRecord& controller, std::uint32_t nsid) {
  auto it = controller.namespaces.find(nsid);
  if (it == controller.namespaces.end()) {
    return MakeError(Errc::kNotFound, fmt::format("controller '{}' has no namespace {}", controller.spec.name, nsid));
  }
  NamespaceRecord& record = it->second;
  if (record.head != nullptr) {
    (void)ana_->UnwatchNamespace(controller.key, nsid);
    MPATH_TRY(registry_.Detach(record.path));
  }
  const std::string path = record.path;
  const DeviceIdentity was = record.identity;
  // The driver may still be finishing I/O and calls the relay; the relay stays until the personality goes.
  retired_relays_.push_back(std::move(record.relay));
  controller.namespaces.erase(it);
  if (options_.on_namespace_detached) options_.on_namespace_detached(path, was);
  return {};
}

Result<void> NvmePersonality::DetachController(std::string_view name) {
  ControllerRecord* controller = FindController(name);
  if (controller == nullptr) return MakeError(Errc::kNotFound, fmt::format("no NVMe controller named '{}'", name));
  while (!controller->namespaces.empty()) {
    const std::uint32_t nsid = controller->namespaces.begin()->first;
    if (auto detached = DetachNamespace(*controller, nsid); !detached) {
      // The registry no longer knows the path (its head went away): forget it anyway.
      auto it = controller->namespaces.find(nsid);
      if (it != controller->namespaces.end()) {
        retired_relays_.push_back(std::move(it->second.relay));
        controller->namespaces.erase(it);
      }
    }
  }
  (void)ana_->RemoveController(controller->key);
  controllers_.erase(controller->key);
  return {};
}

Result<void> NvmePersonality::Rescan(std::string_view name) {
  ControllerRecord* controller = FindController(name);
  if (controller == nullptr) return MakeError(Errc::kNotFound, fmt::format("no NVMe controller named '{}'", name));
  controller->pending_all = true;
  Reconcile(controller->key);
  return {};
}

void NvmePersonality::Reconcile(ControllerKey key) {
  auto it = controllers_.find(key);
  if (it == controllers_.end()) return;
  ControllerRecord& controller = *it->second;
  if (controller.reconciling) return;  // the running pass picks the pending work up when it ends
  if (!controller.pending_all && controller.pending.empty()) return;
  controller.reconciling = true;
  if (!controller.pending_all) {
    std::vector<std::uint32_t> targets(controller.pending.begin(), controller.pending.end());
    controller.pending.clear();
    ReidentifyNamespaces(key, std::move(targets));
    return;
  }
  // A full pass: what the controller lists now, and what this personality holds (an NSID that went inactive
  // answers Identify with zeroes, which is how it is found gone).
  controller.pending_all = false;
  controller.pending.clear();
  ProbeController(*controller.spec.controller, control_, options_.probe,
                  [owner = std::weak_ptr<NvmePersonality*>(self_), key](Result<ProbedController> probed) {
                    auto personality = owner.lock();
                    if (!personality) return;
                    NvmePersonality& self = **personality;
                    auto it = self.controllers_.find(key);
                    if (it == self.controllers_.end()) return;
                    ControllerRecord& controller = *it->second;
                    if (!probed) {
                      // The controller cannot be asked now; the next notice or rescan tries again.
                      controller.reconciling = false;
                      return;
                    }
                    std::set<std::uint32_t> targets(probed->active_nsids.begin(), probed->active_nsids.end());
                    for (const auto& [nsid, ns] : controller.namespaces) targets.insert(nsid);
                    self.ReidentifyNamespaces(key, std::vector<std::uint32_t>(targets.begin(), targets.end()));
                  });
}

void NvmePersonality::ReidentifyNamespaces(ControllerKey key, std::vector<std::uint32_t> nsids) {
  // Re-identify each: gone -> detach; new -> attach; another identity -> the old path leaves its head and the
  // namespace attaches anew, so a remapped volume is never merged into the old head.
  struct Pass {
    std::vector<std::uint32_t> nsids;
    std::size_t next = 0;
  };
  auto pass = std::make_shared<Pass>(Pass{std::move(nsids), 0});
  auto step = std::make_shared<std::function<void()>>();
  *step = [this, owner = std::weak_ptr<NvmePersonality*>(self_), key, pass, weak_step = std::weak_ptr(step)]() {
    auto it = controllers_.find(key);
    if (it == controllers_.end()) return;
    ControllerRecord& controller = *it->second;
    if (pass->next >= pass->nsids.size()) {
      controller.reconciling = false;
      Reconcile(key);
      return;
    }
    const std::uint32_t nsid = pass->nsids[pass->next++];
    ProbeNamespace(*controller.spec.controller, controller.summary, nsid, control_, options_.probe,
                   [owner, key, nsid, keep_step = weak_step.lock()](Result<ProbedNamespace> probed) {
                     auto personality = owner.lock();
                     if (!personality) return;
                     NvmePersonality& self = **personality;
                     auto it = self.controllers_.find(key);
                     if (it == self.controllers_.end()) return;
                     ControllerRecord& controller = *it->second;
                     auto ns = controller.namespaces.find(nsid);
                     const bool known = ns != controller.namespaces.end();
                     if (!probed) {
                       // Only a namespace the controller calls inactive leaves; a failed probe says nothing.
                       if (probed.error().code() == Errc::kNotFound && known) {
                         (void)self.DetachNamespace(controller, nsid);
                       }
                     } else {
                       const DeviceIdentity now = probed->identity.ToDeviceIdentity();
                       if (known && ns->second.identity != now) (void)self.DetachNamespace(controller, nsid);
                       if (!controller.namespaces.contains(nsid)) {
                         NamespaceAttachment attached = self.AttachNamespace(controller, *probed);
                         if (self.options_.on_namespace_attached) {
                           self.options_.on_namespace_attached(controller.spec.name, attached);
                         }
                       }
                     }
                     (*keep_step)();
                   });
  };
  (*step)();
}

NvmeReservations* NvmePersonality::Reservations(std::string_view head_name_or_identity) {
  std::shared_ptr<Head> head = registry_.FindHead(head_name_or_identity);
  if (head == nullptr) return nullptr;
  auto it = heads_.find(head->name());
  return it == heads_.end() || it->second->head != head ? nullptr : it->second->reservations.get();
}

void NvmePersonality::OnAccessState(ControllerKey key, std::uint32_t nsid, AccessState state) {
  auto it = controllers_.find(key);
  if (it == controllers_.end()) return;
  auto ns = it->second->namespaces.find(nsid);
  if (ns == it->second->namespaces.end() || ns->second.head == nullptr) return;
  (void)ns->second.head->SetAccessState(ns->second.path_id, state);
}

}  // namespace mpath::nvme
