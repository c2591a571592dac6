// The SCSI personality assembled: probes a LUN through a nexus, decides opt-in through the core's registry, gives a
// multipathed path its driver, and keeps the head's view of each path current from the ALUA engine and the PR
// coordinator. This is what the daemon, the demo and the tests use to turn SCSI transports into heads.
#pragma once

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
#include "mpath/scsi/alua_engine.h"
#include "mpath/scsi/identity_probe.h"
#include "mpath/scsi/path_driver.h"
#include "mpath/scsi/pr_coordinator.h"
#include "mpath/scsi/transport.h"

namespace mpath::scsi {

// The core's view of SCSI: routing predicates from the core's defaults, completions judged by ClassifyScsi.
// Threading: stateless; safe from any thread.
class ScsiHeadTemplate final : public HeadTemplate {
 public:
  [[nodiscard]] std::string_view protocol() const override { return "scsi"; }
  [[nodiscard]] Decision Classify(const IoRequest& io, const IoStatus& status, const Path& path) const override;
  static const ScsiHeadTemplate& Instance();
};

struct ScsiPersonalityOptions {
  AluaOptions alua;
  ProbeOptions probe;
  ScsiPathDriverOptions driver;
  PrCoordinatorOptions reservations;
  // A path whose LU answered 3F/03 and now reports another identity (a remap) leaves its head; this hears the path's
  // name and what it now leads to, so the owner can attach it anew (to another head).
  std::function<void(const std::string& path, const ProbedUnit& now)> on_path_remapped;
  // 3F/0E REPORTED LUNS DATA HAS CHANGED on a path: LUNs behind its nexus came or went.
  std::function<void(const std::string& path)> on_luns_changed;
};

// One LUN seen through one I_T nexus.
struct ScsiPathSpec {
  std::string name;                // unique path name, e.g. "array0:tp1:lun0"
  std::string transport = "sim";   // for the registry's per-transport opt-out
  ScsiTransport* nexus = nullptr;  // not owned; must outlive the path (until DetachPath and its I/O are done)
  std::uint64_t lun = 0;
  std::string initiator_port;      // the nexus's initiator port name, for PR TransportIDs; empty when unknown
  int locality = kUnknownLocality;
};

using AttachCallback = std::move_only_function<void(Result<Attachment>)>;

// Threading: every method runs on the control executor's thread (the one given to Create), as do the callbacks.
// The personality must outlive every path it attached and the I/O on them.
class ScsiPersonality {
 public:
  // `registry` and `control` must outlive the personality; `control` is the registry's control executor too.
  static Result<std::unique_ptr<ScsiPersonality>> Create(Registry& registry, Executor& control,
                                                         ScsiPersonalityOptions options = {});
  ~ScsiPersonality();
  ScsiPersonality(const ScsiPersonality&) = delete;
  ScsiPersonality& operator=(const ScsiPersonality&) = delete;

  // Probes spec.lun through spec.nexus and attaches it: to a head when the registry's opt-in takes it (then the ALUA
  // engine and the head's PR coordinator learn of it), else as a direct device. `done` runs once.
  void AttachPath(ScsiPathSpec spec, AttachCallback done);
  Result<void> DetachPath(std::string_view name);

  // The persistent reservations of the head with this name or identity; nullptr when there is no such head.
  [[nodiscard]] PrCoordinator* Reservations(std::string_view head_name_or_identity);
  [[nodiscard]] AluaEngine& alua() { return *alua_; }

 private:
  struct PathRecord;
  struct HeadRecord;
  class SenseRelay;

  ScsiPersonality(Registry& registry, Executor& control, ScsiPersonalityOptions options);
  void Attach(ScsiPathSpec spec, const ProbedUnit& unit, AttachCallback done);
  HeadRecord& HeadFor(const std::shared_ptr<Head>& head);
  void OnSense(PathKey key, spec::SenseCode code);
  void OnReservationConflict(PathKey key);
  void TellReservations(PathKey key, spec::SenseCode code);
  // The PR coordinator of the head `key` belongs to; nullptr for a direct device.
  PrCoordinator* ReservationsOf(PathKey key);
  void OnAccessState(PathKey key, AccessState state, bool preferred);
  void OnPrReady(PathKey key, bool ready);
  void Reprobe(PathKey key);
  void OnLunsChanged(PathKey key);

  Registry& registry_;
  Executor& control_;
  const ScsiPersonalityOptions options_;
  std::unique_ptr<AluaEngine> alua_;
  PathKey next_key_ = 1;
  std::map<PathKey, std::unique_ptr<PathRecord>> paths_;
  std::map<std::string, std::unique_ptr<HeadRecord>, std::less<>> heads_;  // by head name
  std::vector<std::unique_ptr<SenseRelay>> retired_relays_;  // of detached paths whose drivers may still run
  // Outlives the I/O threads' relays: they check it before posting to a personality that is gone.
  std::shared_ptr<ScsiPersonality*> self_;
};

}  // namespace mpath::scsi
