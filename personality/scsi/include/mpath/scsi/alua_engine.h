// The ALUA engine: asymmetric access states of every SCSI path (SPC-5 r19 "Asymmetric logical unit access"), learned
// from REPORT TARGET PORT GROUPS (§6.37) and kept current from the sense data the I/O path sees.
//
// One port-group state object exists per (target, target port group) and is shared by every LU and path behind it,
// so a unit attention storm over many LUs costs one RTPG per target, not one per LU: one RTPG answer reports every
// group of the target. The engine is control plane only; it never sits on the I/O path.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/core/executor.h"
#include "mpath/core/types.h"
#include "mpath/scsi/spec/status.h"
#include "mpath/scsi/transport.h"

namespace mpath::scsi {

// `alua = implicit | explicit`: whether the engine may send SET TARGET PORT GROUPS.
enum class AluaMode : std::uint8_t {
  kImplicit,  // only follow the states the target chooses (the default)
  kExplicit,  // when no path of a target is active/optimized, make the preferred group active/optimized
};

std::string_view Name(AluaMode mode);
Result<AluaMode> ParseAluaMode(std::string_view text);

// Names a path to the engine; chosen by the caller, unique among the engine's paths.
using PathKey = std::uint64_t;

// One path: a LU reached through one I_T nexus, placed by its VPD 0x83 target port designators.
struct AluaPath {
  PathKey key = 0;
  ScsiTransport* nexus = nullptr;     // not owned; must outlive the path and every command the engine sent on it
  std::uint64_t lun = 0;
  std::string target_name;            // LUs of one target share its port groups
  std::uint16_t relative_target_port = 0;
  std::uint16_t target_port_group = 0;
};

struct AluaOptions {
  AluaMode mode = AluaMode::kImplicit;
  // Used when the target does not state an IMPLICIT TRANSITION TIME (length-only header, or 0 there).
  Nanos default_transition_timeout = std::chrono::seconds(60);
  Nanos command_timeout = std::chrono::seconds(30);  // for RTPG and STPG
  // First allocation length of RTPG; a target's announced length is remembered and used from then on.
  std::uint32_t initial_rtpg_length = 128;
  // Unit attentions answered to one RTPG or STPG before the engine gives up on it and backs off.
  int max_unit_attention_retries = 8;
  // Polling a transitioning group: first interval, doubling up to the cap.
  Nanos transition_poll_initial = std::chrono::seconds(1);
  Nanos transition_poll_max = std::chrono::seconds(10);
  // Retrying after failed commands (every nexus down, busy target, malformed answer): doubling up to the cap.
  Nanos retry_initial = std::chrono::seconds(1);
  Nanos retry_max = std::chrono::seconds(30);
};

// What the engine reports. Every callback runs on the executor, in a task of the engine's, never inside a call into
// the engine; a callback may call any engine method (RemovePath included).
struct AluaCallbacks {
  // Required. A path's access state or preferred bit changed; also called once when a path's state is first known
  // (after its LU's own RTPG confirmed its group, or sooner when its own sense named the state). Mapping:
  //   active/optimized -> kOptimized; active/non-optimized and logical block dependent -> kNonOptimized (the core
  //   routes per path, not per LBA); standby -> kStandby; unavailable, offline and reserved values ->
  //   kUnavailable; transitioning -> kTransitioning until the transition timeout, kStandby after it.
  //   A target without ALUA (RTPG refused in both formats): kOptimized on every path. `preferred` is the PREF bit.
  std::function<void(PathKey, AccessState, bool preferred)> on_state;
  // 3F/0E REPORTED LUNS DATA HAS CHANGED reached the engine for a path: rescan the LUNs behind its nexus.
  std::function<void(PathKey)> on_rescan;
  // 3F/03 INQUIRY DATA HAS CHANGED: re-read the path's identity.
  std::function<void(PathKey)> on_identity;
  // A unit attention that one of the engine's own commands consumed and that the engine does not act on itself
  // (reservations preempted or released, capacity changed, resets...): handed on so that it is not lost.
  std::function<void(PathKey, spec::SenseCode)> on_unit_attention;
};

// What the engine knows of one path, for listings and tests.
struct AluaPathStatus {
  bool reported = false;               // on_state has been called for it
  AccessState state = AccessState::kUnavailable;
  bool preferred = false;
  std::uint16_t target_port_group = 0;  // as the LU's own RTPG places it (VPD 0x83's until verified)
  bool verified = false;               // the LU's RTPG confirmed the group membership
};

// What the engine has learned of one target.
struct AluaTargetStatus {
  bool alua = true;              // false: RTPG refused in both formats; every path is reported optimized
  bool extended_header = true;   // false: the extended header was refused and the engine asks length-only
  bool cuts_extended_reply = false;  // the LIO 6.1 quirk was seen
  Nanos transition_timeout{0};
  std::uint32_t rtpg_length = 0;  // the allocation length RTPG starts with
};

// Threading: OnSense, Refresh and RefreshAll are safe from any thread (they queue an event for the executor).
// Everything else, including destruction, runs on the executor's thread. Commands in flight when the engine is
// destroyed finish harmlessly later.
class AluaEngine {
 public:
  // `executor` runs all the engine's work, times its polls and retries on its clock(), and receives the completions
  // of its commands; it must outlive the engine.
  static Result<std::unique_ptr<AluaEngine>> Create(Executor& executor, AluaOptions options, AluaCallbacks callbacks);
  ~AluaEngine();
  AluaEngine(const AluaEngine&) = delete;
  AluaEngine& operator=(const AluaEngine&) = delete;

  // Starts tracking a path. The first path of a LU makes the engine read that LU's RTPG (to verify the VPD 0x83
  // group membership); on_state follows once the state is known.
  Result<void> AddPath(AluaPath path);
  // Forgets a path: on_state is never called for it again.
  Result<void> RemovePath(PathKey key);

  // Sense seen on a path's I/O. Acts on 2A/06, 2A/07 and 29/xx (refresh), 04/0A (transitioning now, then poll),
  // 04/0B, 04/0C and 04/12 (standby / unavailable now, then refresh), 3F/03 (on_identity) and 3F/0E (on_rescan);
  // ignores the rest.
  void OnSense(PathKey key, spec::SenseCode code);
  // Re-reads the states of the path's target (coalesced with any other refresh of that target).
  void Refresh(PathKey key);
  void RefreshAll();

  [[nodiscard]] std::optional<AluaPathStatus> PathStatus(PathKey key) const;
  [[nodiscard]] std::optional<AluaTargetStatus> TargetStatus(std::string_view target_name) const;

 private:
  class Impl;
  explicit AluaEngine(std::shared_ptr<Impl> impl);

  // Constant after construction. Tasks the engine posts hold it weakly, so none outlives the engine's work.
  const std::shared_ptr<Impl> impl_;
};

}  // namespace mpath::scsi
