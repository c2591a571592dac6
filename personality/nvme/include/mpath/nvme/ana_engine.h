// The ANA engine: asymmetric namespace access states of every NVMe path (NVM Express Base Specification 2.0c §8.1.3
// "Asymmetric Namespace Access Reporting"), learned from the ANA log page (§5.16.1.12) and kept current by the ANA
// change notice (an Asynchronous Event Request kept outstanding on every controller) and by I/O that completes with an
// ANA status.
//
// The log is per controller and lists every group with its namespaces, so a change across any number of namespaces
// costs one log read per controller; reads asked for while one is in flight collapse into a single read after it.
// Control plane only; it never sits on the I/O path.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/core/executor.h"
#include "mpath/core/types.h"
#include "mpath/nvme/identity.h"
#include "mpath/nvme/spec/log_page.h"
#include "mpath/nvme/transport.h"

namespace mpath::nvme {

// Names a controller to the engine; chosen by the caller, unique among the engine's controllers.
using ControllerKey = std::uint64_t;

struct AnaController {
  ControllerKey key = 0;
  NvmeTransport* transport = nullptr;  // not owned; must outlive the controller and every command sent on it
  ControllerSummary summary;           // sizes the log (AnaLogBytes) and gives ANATT, AERL and the notices
};

struct AnaOptions {
  Nanos command_timeout = std::chrono::seconds(60);  // Get Log Page
  // Used when the controller reports an ANATT of 0.
  Nanos default_transition_timeout = std::chrono::seconds(10);
  // While a group is in the change state the log is also read at this interval (0: never), so that the end of a
  // transition is seen even when its notice is lost or the controller does not send one.
  Nanos transition_poll = std::chrono::seconds(1);
  // Retrying a failed log read, and re-arming an Asynchronous Event Request that was not delivered or failed: doubling
  // from the first value up to the cap.
  Nanos retry_initial = std::chrono::seconds(1);
  Nanos retry_max = std::chrono::seconds(30);
};

// What the engine reports. Every callback runs on the executor, in a task of the engine's, never inside a call into
// the engine; a callback may call any engine method (RemoveController included).
struct AnaCallbacks {
  // Required. A watched namespace's state through a controller changed, or became known. Mapping:
  //   optimized -> kOptimized; non-optimized -> kNonOptimized; inaccessible -> kUnavailable; persistent loss ->
  //   kPersistentLoss; change -> kTransitioning until ANATT has passed, then kUnavailable (and on_reconnect).
  //   A controller that does not report ANA (CMIC.ANARS clear): kOptimized for every namespace.
  //   A namespace the log does not list: the state of its ANAGRPID's group; none either: kUnavailable.
  std::function<void(ControllerKey, std::uint32_t nsid, AccessState)> on_state;
  // A Namespace Attribute Changed notice: the namespaces listed (the Changed Namespace List log, read by the engine)
  // may have come, gone, or changed identity or size. `all` when the list overflowed (rescan everything).
  std::function<void(ControllerKey, const std::vector<std::uint32_t>& nsids, bool all)> on_namespaces_changed;
  // A group stayed in the change state past ANATT: the controller should be reset and reconnected (Linux resets it).
  std::function<void(ControllerKey, std::uint32_t group)> on_reconnect_needed;
};

// What the engine knows of one controller, for listings and tests.
struct AnaControllerStatus {
  bool ana = true;                  // false: ANA not reported; every namespace is optimized
  std::uint64_t log_reads = 0;      // Get Log Page commands sent for the ANA log
  std::uint64_t log_failures = 0;   // of those, failed or malformed
  std::uint64_t events = 0;         // Asynchronous Event Request completions with an event
  std::uint32_t aers_outstanding = 0;
  std::uint64_t change_count = 0;   // the log's CHGCNT at the last read
  bool reconnect_needed = false;    // set when ANATT expired; cleared by a log that shows no group in change
  Nanos transition_timeout{0};
};

// Threading: OnAnaStatus, Refresh and RefreshAll are safe from any thread (they queue an event for the executor).
// Everything else, including destruction, runs on the executor's thread. Commands in flight when the engine is
// destroyed finish harmlessly later.
class AnaEngine {
 public:
  // `executor` runs all the engine's work, times ANATT and retries on its clock(), and receives the completions of its
  // commands; it must outlive the engine.
  static Result<std::unique_ptr<AnaEngine>> Create(Executor& executor, AnaOptions options, AnaCallbacks callbacks);
  ~AnaEngine();
  AnaEngine(const AnaEngine&) = delete;
  AnaEngine& operator=(const AnaEngine&) = delete;

  // Starts tracking a controller: reads its ANA log and keeps one Asynchronous Event Request outstanding on it (when
  // it sends ANA change or namespace attribute notices). Events of other types are acknowledged by reading the log
  // page they name, so that the controller does not mask them.
  Result<void> AddController(AnaController controller);
  // Forgets a controller and its namespaces; an AER still outstanding on it completes harmlessly later.
  Result<void> RemoveController(ControllerKey key);

  // Reports the state of `nsid` through the controller from now on (at once, in a task, when it is known).
  // `anagrpid` is Identify Namespace's, used until the log lists the namespace.
  Result<void> WatchNamespace(ControllerKey key, std::uint32_t nsid, std::uint32_t anagrpid);
  Result<void> UnwatchNamespace(ControllerKey key, std::uint32_t nsid);

  // An I/O on the controller completed with an ANA status (0x301, 0x302, 0x303): read its log again (coalesced).
  void OnAnaStatus(ControllerKey key);
  // Reads the controller's log again (coalesced with any read already asked for).
  void Refresh(ControllerKey key);
  void RefreshAll();

  [[nodiscard]] std::optional<AnaControllerStatus> ControllerStatus(ControllerKey key) const;
  // The state last reported for a watched namespace; nullopt before the first report.
  [[nodiscard]] std::optional<AccessState> NamespaceState(ControllerKey key, std::uint32_t nsid) const;

 private:
  class Impl;
  explicit AnaEngine(std::shared_ptr<Impl> impl);

  // Constant after construction. Tasks the engine posts hold it weakly, so none outlives the engine's work.
  const std::shared_ptr<Impl> impl_;
};

}  // namespace mpath::nvme
