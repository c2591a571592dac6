// NVMe reservations of one namespace (NVM Express Base Specification 2.0c §8.19): register, acquire (and preempt),
// release, clear and report. Registrations belong to the host identifier, not to a controller, so every controller of
// this host shares them and one command down one path is enough: unlike SCSI there is nothing to repeat per path.
// Commands travel over `route`, which the personality points at the head (down one usable path, never resent
// elsewhere); tests may point it at one controller.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/core/executor.h"
#include "mpath/nvme/spec/reservations.h"
#include "mpath/nvme/transport.h"

namespace mpath::nvme {

struct ReservationOptions {
  Nanos command_timeout = std::chrono::seconds(30);
  // Bytes asked for by Report: the extended header and up to this many registrants; a longer list is read again
  // whole.
  std::uint32_t initial_report_registrants = 16;
};

using ReservationDone = std::move_only_function<void(Result<void>)>;
using ReservationReportDone = std::move_only_function<void(Result<spec::ReservationStatus>)>;

// Every call sends its commands from the executor's thread and runs `done` exactly once, on that thread. Errors keep
// the raw NVMe status: a Reservation Conflict is kReservationConflict, a refused command kTargetError (or
// kUnsupported for Invalid Command Opcode), a command not delivered kPathError / kTimedOut / kAborted. Keys are the
// caller's; 0 is refused as a new key (kInvalidArgument) since NVMe uses it for "no key".
// Threading: every method runs on the executor's thread; the object must outlive every `done` it was given.
class NvmeReservations {
 public:
  // `route` and `executor` are borrowed and must outlive the object and its commands.
  static Result<std::unique_ptr<NvmeReservations>> Create(NvmeTransport& route, std::uint32_t nsid,
                                                          Executor& executor, ReservationOptions options = {});
  ~NvmeReservations();
  NvmeReservations(const NvmeReservations&) = delete;
  NvmeReservations& operator=(const NvmeReservations&) = delete;

  // Reservation Register. `ignore_existing` sets IEKEY (register whatever key is there, as mpathpersist's
  // REGISTER AND IGNORE EXISTING KEY does). `persist` sets CPTPL to persist through power loss.
  void Register(std::uint64_t new_key, bool ignore_existing, bool persist, ReservationDone done);
  void Unregister(std::uint64_t key, ReservationDone done);
  void Replace(std::uint64_t current_key, std::uint64_t new_key, ReservationDone done);
  // Reservation Acquire.
  void Acquire(std::uint64_t key, spec::ReservationType type, ReservationDone done);
  // Preempts the registrant holding `victim_key` (and its reservation), taking a reservation of `type`; `abort` asks
  // the controller to abort the victim's commands too (Preempt and Abort).
  void Preempt(std::uint64_t key, std::uint64_t victim_key, spec::ReservationType type, bool abort,
               ReservationDone done);
  // Reservation Release.
  void Release(std::uint64_t key, spec::ReservationType type, ReservationDone done);
  void Clear(std::uint64_t key, ReservationDone done);
  // Reservation Report in the extended format (128-bit host identifiers, which fabrics require), every registrant.
  void Report(ReservationReportDone done);

  [[nodiscard]] std::uint32_t nsid() const { return nsid_; }

 private:
  class Operation;
  NvmeReservations(NvmeTransport& route, std::uint32_t nsid, Executor& executor, ReservationOptions options);

  // Constant after construction.
  NvmeTransport& route_;
  const std::uint32_t nsid_;
  Executor& executor_;
  const ReservationOptions options_;
  // Lets commands that finish after the object is gone see that it is.
  const std::shared_ptr<NvmeReservations*> self_;
};

}  // namespace mpath::nvme
