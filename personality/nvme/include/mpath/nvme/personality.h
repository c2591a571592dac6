// The NVMe personality assembled: probes a controller and its namespaces through one transport, decides opt-in per
// namespace through the core's registry, gives each multipathed namespace path its driver, keeps the head's view of
// each path current from the ANA engine, follows namespaces that come, go or are remapped, and offers reservations
// per head. This is what the daemon, the demo and the tests use to turn NVMe controllers into heads.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mpath/core/executor.h"
#include "mpath/core/personality.h"
#include "mpath/core/registry.h"
#include "mpath/nvme/ana_engine.h"
#include "mpath/nvme/path_driver.h"
#include "mpath/nvme/probe.h"
#include "mpath/nvme/reservations.h"
#include "mpath/nvme/transport.h"

namespace mpath::nvme {

// The core's view of NVMe: routing predicates from the core's defaults, completions judged by ClassifyNvme.
// Threading: stateless; safe from any thread.
class NvmeHeadTemplate final : public HeadTemplate {
 public:
  [[nodiscard]] std::string_view protocol() const override { return "nvme"; }
  [[nodiscard]] Decision Classify(const IoRequest& io, const IoStatus& status, const Path& path) const override;
  static const NvmeHeadTemplate& Instance();
};

// One namespace of a controller, as attached.
struct NamespaceAttachment {
  std::uint32_t nsid = 0;
  std::string path;              // "<controller name>n<nsid>"
  Result<Attachment> attachment;  // a head's path, a direct device, or why the namespace was not attached
};

struct ControllerAttachment {
  ControllerSummary controller;
  std::vector<NamespaceAttachment> namespaces;  // one per active namespace, ascending NSID
};

struct NvmePersonalityOptions {
  ProbeOptions probe;
  AnaOptions ana;
  Nanos command_timeout{0};  // every I/O command's timeout; 0: the transport's default
  ReservationOptions reservations;
  // A namespace that appeared after its controller was attached (a notice, a rescan, or a remap that made the old
  // path leave its head): the owner takes its direct device, if it is one. Runs on the control executor.
  std::function<void(const std::string& controller, NamespaceAttachment&)> on_namespace_attached;
  // A namespace path that left because its namespace went away or changed identity (was: the old head's identity).
  std::function<void(const std::string& path, const DeviceIdentity& was)> on_namespace_detached;
  // ANATT expired on a controller: its transport should reset and reconnect it.
  std::function<void(const std::string& controller, std::uint32_t group)> on_reconnect_needed;
};

// One controller reached through one transport connection (one path to every namespace behind it).
struct NvmeControllerSpec {
  std::string name;                 // unique, e.g. "subsys0:c1"; its namespace paths are "<name>n<nsid>"
  std::string transport = "sim";    // for the registry's per-transport opt-out
  NvmeTransport* controller = nullptr;  // not owned; must outlive DetachController and the I/O on its paths
  std::string host_nqn;
  // The host identifier this connection presented. Reservations belong to it, so every controller of one subsystem
  // must present the same one; a controller that does not is refused.
  std::array<std::uint8_t, 16> host_id{};
  int locality = kUnknownLocality;
};

using ControllerAttachCallback = std::move_only_function<void(Result<ControllerAttachment>)>;

// Threading: every method runs on the control executor's thread (the one given to Create), as do the callbacks.
// The personality must outlive every path it attached and the I/O on them.
class NvmePersonality {
 public:
  // `registry` and `control` must outlive the personality; `control` is the registry's control executor too.
  static Result<std::unique_ptr<NvmePersonality>> Create(Registry& registry, Executor& control,
                                                         NvmePersonalityOptions options = {});
  ~NvmePersonality();
  NvmePersonality(const NvmePersonality&) = delete;
  NvmePersonality& operator=(const NvmePersonality&) = delete;

  // Probes the controller and every active namespace behind it and attaches each namespace: to a head when the
  // registry's opt-in takes it, else as a direct device. The controller joins the ANA engine. `done` runs once; it
  // fails only when the controller itself cannot be used (probe failed, name taken, host identifier inconsistent),
  // and otherwise reports each namespace's own outcome.
  void AttachController(NvmeControllerSpec spec, ControllerAttachCallback done);
  // Detaches every namespace path of the controller (heads stay, as delayed removal says) and forgets it.
  Result<void> DetachController(std::string_view name);
  // Reads the controller's active namespaces again and reconciles: new ones attach, gone ones detach, remapped ones
  // leave their head and attach anew.
  Result<void> Rescan(std::string_view name);

  // The reservations of the head with this name or identity; nullptr when there is no such head.
  [[nodiscard]] NvmeReservations* Reservations(std::string_view head_name_or_identity);
  [[nodiscard]] AnaEngine& ana() { return *ana_; }
  // The controller of this name; nullptr when there is none.
  [[nodiscard]] const ControllerSummary* Controller(std::string_view name) const;

 private:
  struct ControllerRecord;
  struct NamespaceRecord;
  struct HeadRecord;
  class AnaRelay;
  class HeadRoute;

  NvmePersonality(Registry& registry, Executor& control, NvmePersonalityOptions options);
  void OnControllerProbed(NvmeControllerSpec spec, ProbedController probed, ControllerAttachCallback done);
  void ProbeNamespaces(ControllerKey key, std::vector<std::uint32_t> nsids,
                       std::move_only_function<void(std::vector<NamespaceAttachment>)> done);
  NamespaceAttachment AttachNamespace(ControllerRecord& controller, const ProbedNamespace& probed);
  Result<void> DetachNamespace(ControllerRecord& controller, std::uint32_t nsid);
  // Works off the controller's pending notices and rescans, one pass at a time.
  void Reconcile(ControllerKey key);
  void ReidentifyNamespaces(ControllerKey key, std::vector<std::uint32_t> nsids);
  void OnAccessState(ControllerKey key, std::uint32_t nsid, AccessState state);
  HeadRecord& HeadFor(const std::shared_ptr<Head>& head, std::uint32_t nsid);
  ControllerRecord* FindController(std::string_view name);

  Registry& registry_;
  Executor& control_;
  const NvmePersonalityOptions options_;
  std::unique_ptr<AnaEngine> ana_;
  ControllerKey next_key_ = 1;
  std::map<ControllerKey, std::unique_ptr<ControllerRecord>> controllers_;
  std::map<std::string, std::unique_ptr<HeadRecord>, std::less<>> heads_;  // by head name
  std::vector<std::unique_ptr<AnaRelay>> retired_relays_;  // of detached paths whose drivers may still run
  // Outlives the I/O threads' relays: they check it before posting to a personality that is gone.
  std::shared_ptr<NvmePersonality*> self_;
};

}  // namespace mpath::nvme
