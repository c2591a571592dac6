// Persistent reservations for one multipath head: one logical unit seen through several paths, each its own I_T
// nexus. SCSI registrations belong to an I_T nexus, not to a host, so the head's key must be on every path (or on
// every target port at once with ALL_TG_PT), a path that appears or returns must be registered before it carries I/O,
// a reservation held through a dead path must be moved, and another host's preempt must be noticed and left alone.
// SPC-5 r19 §5.14 is the model; the wire formats are spec/pr.h's.
//
// Control plane only: every PERSISTENT RESERVE command is issued on the injected executor, commands carry it as
// command.executor, and results come back as callbacks on it. Operations run one at a time, in call order.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/core/executor.h"
#include "mpath/scsi/spec/pr.h"
#include "mpath/scsi/spec/status.h"
#include "mpath/scsi/transport.h"

namespace mpath::scsi {

// Names one path to the coordinator. The caller picks it (e.g. the core's PathId); unique within one coordinator.
using PrPathKey = std::uint64_t;

// What the caller knows of a path's I_T nexus. Only used to prove that an ALL_TG_PT registration covers the path
// (READ FULL STATUS names registrations by initiator port); a path without it is registered on its own.
struct PrNexusInfo {
  std::string initiator_port;                         // as in a TransportID: "iqn...,i,0x<ISID>"; empty: unknown
  std::optional<std::uint16_t> relative_target_port;  // VPD 83h relative target port; unset: unknown
};

enum class PrState : std::uint8_t {
  kUnregistered,  // no key of ours: paths carry I/O without registering
  kRegistered,    // our key is on every ready path; new and returning paths are registered before they are ready
  kPreempted,     // another host removed our registrations: nothing is re-registered until Register is called again
};
[[nodiscard]] std::string_view PrStateName(PrState state);

enum class PrPreemptMode : std::uint8_t { kPreempt, kPreemptAndAbort };

struct PrRegisterOptions {
  bool aptpl = false;  // ACTIVATE PERSIST THROUGH POWER LOSS, sent with every registration
};

// Why a PR operation failed: a class and a message, plus the failing path and exactly what its target (or
// transport) answered, byte for byte.
struct PrError {
  Errc code = Errc::kInternal;
  std::string message;
  std::optional<PrPathKey> path;              // the path whose command failed, when one did
  Delivery delivery = Delivery::kDelivered;   // how that command was delivered
  std::uint8_t status = 0;                    // its SAM-5 status byte, when delivered
  std::optional<spec::SenseCode> sense;       // its sense, when CHECK CONDITION sense parsed
  std::uint8_t sense_length = 0;
  std::array<std::uint8_t, kMaxSenseLength> sense_bytes{};
  // The same answer in the SCSI personality's RawStatus encoding (raw_status.h); family 0 when no command failed.
  RawStatus raw{};

  [[nodiscard]] std::span<const std::uint8_t> raw_sense() const { return {sense_bytes.data(), sense_length}; }
  [[nodiscard]] bool IsReservationConflict() const {
    return delivery == Delivery::kDelivered && status == static_cast<std::uint8_t>(spec::Status::kReservationConflict);
  }
  // The core's Error, carrying `raw`.
  [[nodiscard]] Error ToError() const;
  [[nodiscard]] std::string ToString() const;  // "<class>: <message>"
};

template <typename T = void>
using PrResult = std::expected<T, PrError>;
template <typename T = void>
using PrCallback = std::move_only_function<void(PrResult<T>)>;

// Another host took our registrations away.
struct PrPreemption {
  PrPathKey reported_by = 0;                           // the path the news came from
  // The 2A/03 or 2A/05 seen; nullopt when a RESERVATION CONFLICT, or READ KEYS before registering a returning
  // path, showed it.
  std::optional<spec::SenseCode> unit_attention;
  std::vector<std::uint64_t> keys;                     // READ KEYS after the takeover
  std::optional<spec::PrHeldReservation> reservation;  // READ RESERVATION after the takeover, when it answered
};

// Every callback runs on the executor. Any may be empty.
struct PrCallbacks {
  // The path may carry I/O: it is registered, or nothing needs it to be (no key of ours, or preempted). Until then
  // the caller keeps it out of the head. Called again after every on_path_hold and after a failed path returns.
  std::move_only_function<void(PrPathKey)> on_path_ready;
  // Keep I/O off the path until on_path_ready: its registration is about to be removed and restored while a
  // reservation moves (a self-preempt removes every other registration of our key).
  std::move_only_function<void(PrPathKey)> on_path_hold;
  // Registering a new or returning path failed: it stays out of the head until it is restored or added again.
  std::move_only_function<void(PrPathKey, const PrError&)> on_path_register_failed;
  // Another host preempted us (confirmed with READ KEYS). We stop registering and do not fight back.
  std::move_only_function<void(const PrPreemption&)> on_preempted;
  // A unit attention that one of our PR commands consumed on `path` (it was retried there). Whoever else acts on
  // unit attentions (ALUA 2A/06, 29/xx, 3F/xx) would otherwise never see it.
  std::move_only_function<void(PrPathKey, spec::SenseCode)> on_unit_attention;
};

struct PrCoordinatorOptions {
  // Retries on the same path of a PR command answered with UNIT ATTENTION (29/00 on a fresh nexus, ...).
  std::uint32_t unit_attention_retries = 8;
  Nanos command_timeout = std::chrono::seconds(30);  // 0: the transport's default
  // Register once with ALL_TG_PT when REPORT CAPABILITIES says ATP_C; off: always one registration per path.
  bool use_all_target_ports = true;
  // First allocation length of PERSISTENT RESERVE IN; a longer answer is read again at its full length.
  std::uint16_t pr_in_allocation = 1024;
};

struct PrPathStatus {
  PrPathKey path = 0;
  bool live = false;        // not failed or removed
  bool registered = false;  // our key covers its I_T nexus, as far as we know
  bool ready = false;       // reported by on_path_ready and not held, failed or removed since
};

struct PrSnapshot {
  PrState state = PrState::kUnregistered;
  std::uint64_t key = 0;                     // our key: registered, or the one preempted
  bool all_target_ports = false;             // registered with ALL_TG_PT
  std::optional<spec::PrType> reservation;   // the reservation we hold
  std::optional<PrPathKey> holder;           // the path it was made through (unset for the all-registrants types)
  bool holder_lost = false;                  // the holder path is down and the reservation not moved yet
  std::optional<PrPreemption> preemption;    // set in kPreempted
  std::vector<PrPathStatus> paths;           // in AddPath order
};

// Threading: every method may be called from any thread. The work runs on the executor, which also runs every
// callback; Snapshot() and state() read a copy published there. Destroy the coordinator on the executor's thread:
// pending operations are then dropped without their callbacks. Transports are borrowed: each must outlive the
// coordinator's commands on it (see RemovePath), and the executor must outlive the coordinator.
class PrCoordinator {
 public:
  static Result<std::unique_ptr<PrCoordinator>> Create(Executor& executor, PrCallbacks callbacks = {},
                                                       PrCoordinatorOptions options = {});
  ~PrCoordinator();
  PrCoordinator(const PrCoordinator&) = delete;
  PrCoordinator& operator=(const PrCoordinator&) = delete;

  // --- Paths.
  // A new path to the LU through `transport` at `lun`. It becomes ready (on_path_ready) at once when nothing is
  // registered, else once its I_T nexus is registered. A key already in use is refused (on_path_register_failed).
  void AddPath(PrPathKey path, ScsiTransport& transport, std::uint64_t lun, PrNexusInfo nexus = {});
  // The path is gone; `released` runs once no command of ours is in flight on its transport any more.
  void RemovePath(PrPathKey path, std::move_only_function<void()> released = {});
  // The path cannot carry commands. If it holds our reservation (not an all-registrants type), the reservation is
  // moved to a live path by a self-preempt and our other live paths are registered again.
  void PathFailed(PrPathKey path);
  // The path is back (or its registration failed and should be tried again); while we are registered it is
  // registered again before on_path_ready.
  void PathRestored(PrPathKey path);

  // --- What the I/O path saw (a unit attention or RESERVATION CONFLICT on a media command of `path`).
  // 2A/03 RESERVATIONS PREEMPTED and 2A/05 REGISTRATIONS PREEMPTED are confirmed with READ KEYS: without our key,
  // another host took over (kPreempted, on_preempted); with it, the path is registered again. 2A/04 RESERVATIONS
  // RELEASED re-reads the reservation. Other codes are ignored.
  void OnSense(PrPathKey path, spec::SenseCode code);
  // RESERVATION CONFLICT on a path we believe registered: confirmed with READ KEYS as above.
  void OnReservationConflict(PrPathKey path);

  // --- Operations on the head. RESERVATION CONFLICT is returned, never retried on another path; only a command
  // the target cannot have executed (link down, NOT READY) moves on to another path.
  // Registers `key` on every live path (REGISTER AND IGNORE EXISTING KEY), or once with ALL_TG_PT when the target
  // reports ATP_C, then checks with READ FULL STATUS that every path is covered and registers those that are not.
  // If any path fails, the registrations made are removed again and the error names that path.
  void Register(std::uint64_t key, PrRegisterOptions options, PrCallback<> done);
  // Removes our key from every live path (and, with a preempt of our own key, from paths that are down).
  void Unregister(PrCallback<> done);
  void Reserve(spec::PrType type, PrCallback<> done);
  // Releases through the holder path (moving the reservation off a dead holder first).
  void Release(spec::PrType type, PrCallback<> done);
  // PREEMPT (AND ABORT) of `victim_key`. Our own key is a self-preempt: the reservation moves to a live path,
  // with `type`, and our other paths are registered again.
  void Preempt(std::uint64_t victim_key, spec::PrType type, PrPreemptMode mode, PrCallback<> done);
  void Clear(PrCallback<> done);
  void ReadKeys(PrCallback<spec::PrKeyList> done);
  void ReadReservation(PrCallback<spec::PrReservationReport> done);
  void ReportCapabilities(PrCallback<spec::PrReportCapabilitiesData> done);
  void ReadFullStatus(PrCallback<spec::PrFullStatus> done);

  [[nodiscard]] PrSnapshot Snapshot() const;
  [[nodiscard]] PrState state() const;

 private:
  class Core;
  explicit PrCoordinator(std::shared_ptr<Core> core);
  template <typename F>
  void Run(F&& work);

  const std::shared_ptr<Core> core_;
};

}  // namespace mpath::scsi
