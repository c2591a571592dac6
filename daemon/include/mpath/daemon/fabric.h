// The composition root: one Fabric turns a Config into running heads. It owns the threads (one control loop, a pool of
// I/O loops), the simulated SAN, the registry and both personalities; it attaches every configured path, and it is
// the one place the daemon, the demo, scenarios and the control socket go through to look at or change anything.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mpath/core/counters.h"
#include "mpath/core/error.h"
#include "mpath/core/head.h"
#include "mpath/core/types.h"
#include "mpath/daemon/config.h"
#include "mpath/runtime/event_loop.h"

namespace mpath::sim {
class SimSan;
}

namespace mpath::daemon {

struct FabricOptions {
  std::size_t io_threads = 2;  // I/O event loops; 0: one per CPU
};

// One path as listings show it.
struct PathView {
  std::string name;
  std::string protocol;     // "scsi" | "nvme"
  std::string transport;    // "sim"
  std::string address;      // e.g. "sim array0 tpg1/port1 lun0", "sim subsys0 port2 nsid1 (cntlid 2)"
  PathState state = PathState::kLive;
  AccessState access = AccessState::kOptimized;
  bool preferred = false;
  MarginalReason marginal = MarginalReason::kNone;
  bool usable = false;
  std::uint64_t in_flight = 0;  // commands the path's transport holds now
  IoCounters counters;
  // Completion latency percentiles of the I/O the path carried (0 when it carried none), microseconds.
  double latency_p50_us = 0, latency_p99_us = 0, latency_max_us = 0;
};

// One head as listings show it.
struct HeadView {
  std::string name;
  std::string alias;        // from a matching [[device]], else empty
  std::string identity;
  std::string protocol;
  std::string vendor;       // SCSI vendor / NVMe model
  std::string product;      // SCSI product / NVMe serial
  std::uint64_t capacity_bytes = 0;
  std::uint32_t block_size = 0;
  IoPolicyKind policy = IoPolicyKind::kNuma;
  HeadState state = HeadState::kLive;
  IoCounters counters;
  std::vector<PathView> paths;  // ordered: optimized, non-optimized, then the rest; by name within each
};

// What Build reports: each configured path and how its attachment went.
struct BuildReport {
  struct PathOutcome {
    std::string path;
    bool attached = false;
    bool multipathed = false;
    std::string head;         // when multipathed
    std::string message;      // the opt-in reason, or the error
  };
  std::vector<PathOutcome> paths;
  [[nodiscard]] bool ok() const;
};

// A fault to inject (the CLI's `mpath inject TARGET FAULT [key=value...]` and a scenario's inject step).
// Link faults, TARGET = a configured path name:
//   link-down, link-up, hang, unhang, latency ms=N [jitter_ms=N], fail-io (reports ready, fails every I/O),
//   heal (clears fail-io), flap down_ms=N up_ms=N, drop p=0.01, clear
// Device faults, TARGET = an array or subsystem name:
//   alua group=N state=active/optimized|active/non-optimized|standby|unavailable|offline [transition_ms=N]
//   preferred group=N on=true|false
//   ana port=N group=N state=optimized|non-optimized|inaccessible|persistent-loss|change [transition_ms=N]
//   unit-attention lun=N asc=0x2A ascq=0x06
//   remap lun=N|nsid=N naa=HEX|nguid=HEX   (another volume now answers there)
//   resize lun=N|nsid=N size_mib=N
//   foreign-preempt lun=N|nsid=N key=N type=write-exclusive|...
//   power-cycle
struct FaultRequest {
  std::string target;
  std::string fault;
  std::map<std::string, std::string> args;
};

// A persistent reservation operation on a head (`mpath pr ...`), with mpathpersist's vocabulary. The head's protocol
// decides how it is carried out (SCSI: on every I_T nexus; NVMe: once, for the host).
struct PrRequest {
  std::string head;         // name, alias or identity
  std::string action;       // register | unregister | reserve | release | preempt | preempt-abort | clear |
                            // read-keys | read-reservation
  std::uint64_t key = 0;          // our reservation key (--key)
  std::uint64_t service_key = 0;  // register: the new key; preempt: the victim's key (--sa-key)
  std::string type = "write-exclusive";  // write-exclusive | exclusive-access | write-exclusive-registrants-only |
                                         // exclusive-access-registrants-only | write-exclusive-all-registrants |
                                         // exclusive-access-all-registrants
  bool ignore_existing = false;   // register: REGISTER AND IGNORE EXISTING KEY / IEKEY
  bool persist = false;           // register: APTPL / PTPL
};

struct PrReport {
  std::uint32_t generation = 0;
  std::vector<std::uint64_t> keys;          // read-keys: every registered key (one per registrant)
  std::optional<std::uint64_t> holder_key;  // read-reservation: the holder's key, when a reservation is held
  std::string type;                         // read-reservation: the type's name, "" when none
  std::string message;                      // what was done, for the CLI
};

// Threading: every public method is safe from any thread except the Fabric's own loops (it runs the work on the
// control loop and waits for it); destruction stops every loop after the heads' I/O has drained.
class Fabric {
 public:
  static Result<std::unique_ptr<Fabric>> Create(Config config, FabricOptions options = {});
  ~Fabric();
  Fabric(const Fabric&) = delete;
  Fabric& operator=(const Fabric&) = delete;

  // Connects every configured path and attaches it through its personality; returns when every attach has finished
  // and the access states have settled (the first RTPG / ANA log of each target is in).
  Result<BuildReport> Build();

  [[nodiscard]] std::vector<HeadView> Heads() const;
  [[nodiscard]] Result<HeadView> FindHeadView(std::string_view name_alias_or_identity) const;
  [[nodiscard]] std::shared_ptr<Head> FindHead(std::string_view name_alias_or_identity) const;
  // Unlike the other methods, safe from the Fabric's own loops too (it does not wait for the control loop).
  [[nodiscard]] std::vector<std::shared_ptr<Head>> AllHeads() const;

  Result<void> SetPolicy(std::string_view head, IoPolicyKind policy);
  // Operator fail / reinstate of one path (by path name): a failed path carries no I/O until reinstated.
  Result<void> FailPath(std::string_view path);
  Result<void> ReinstatePath(std::string_view path);
  // Returns a one-line description of what was done.
  Result<std::string> Inject(const FaultRequest& request);
  Result<PrReport> Reservation(const PrRequest& request);

  // Counters of the simulated devices, for scenario assertions: RTPG commands an array received, ANA log reads a
  // subsystem received (by target name).
  [[nodiscard]] Result<std::uint64_t> RtpgCount(std::string_view array) const;
  [[nodiscard]] Result<std::uint64_t> AnaLogReads(std::string_view subsystem) const;

  // The loops, for submitters (workloads, the NBD export): I/O must be submitted from an I/O loop's thread.
  [[nodiscard]] std::size_t io_threads() const;
  [[nodiscard]] EventLoop& io_loop(std::size_t index);
  [[nodiscard]] EventLoop& control_loop();
  [[nodiscard]] const Config& config() const;

 private:
  class Impl;
  explicit Fabric(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mpath::daemon
