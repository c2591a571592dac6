// A simulated NVMe subsystem: RAM-backed namespaces reached through ports, one controller per host connection, ANA
// groups with a state per port, reservations per host identifier, and Asynchronous Event Requests held until an
// event. It answers real SQEs with real data and CQEs, matching what Linux nvmet answers (../shared/lab/NOTES.md),
// and is both the embedded default SAN and the device the NVMe personality is tested against.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/nvme/spec/log_ana.h"
#include "mpath/nvme/transport.h"

namespace mpath::nvme::fake {

// The ANA states a group can be put in, as the ANA log page reports them (spec::AnaState).
using AnaState = spec::AnaState;

struct NamespaceConfig {
  std::uint32_t nsid = 1;
  std::uint64_t blocks = 0;
  std::uint32_t block_size = 512;          // a power of two, 512..4096 (LBADS)
  std::array<std::uint8_t, 16> nguid{};    // all zero: not reported
  std::array<std::uint8_t, 8> eui64{};     // all zero: not reported
  std::array<std::uint8_t, 16> uuid{};     // all zero: not reported
  std::uint32_t ana_group = 1;             // ANAGRPID, 1..anagrpmax
  bool shared = true;                      // NMIC bit 0, reported only: every namespace is attached to every controller
};

struct SubsystemConfig {
  std::string nqn = "nqn.2026-11.io.mpath.sim:subsys0";
  std::string model = "mpath simulated NVMe";
  std::string serial = "MPATHSIM0001";
  std::string firmware = "1.0";
  std::uint8_t cmic = 0x0B;        // multi-port, multi-controller, ANA reporting
  std::uint8_t anacap = 0x5F;      // all five states reported, ANAGRPID does not change, non-zero ANAGRPID
  std::uint32_t anagrpmax = 128;
  std::uint32_t nanagrpid = 128;
  std::uint8_t anatt_secs = 10;    // ANA transition time
  std::uint8_t mdts = 5;           // max data transfer, 2^mdts minimum pages (4 KiB) = 128 KiB
  std::uint32_t max_namespaces = 1024;  // NN and MNAN
};

class Subsystem;
class Controller;
// What a command handler sees. A handler answers by setting command.cqe (status, dw0) and command.delivery; the
// controller then fills CID, SQID and SQHD and finishes the command inside Submit, unless the handler set `held`.
struct CommandContext {
  Subsystem& subsystem;
  std::uint16_t controller_id;   // CNTLID of the controller the command arrived on
  NvmeCommand& command;
  // Set by a handler that keeps the command to finish it later on command.executor (the default Asynchronous Event
  // Request handler does). Submit then returns without finishing it.
  bool held = false;
};
using CommandHandler = std::function<void(CommandContext&)>;

// What it answers, in brief (README.md has the details):
//  - Admin: Identify CNS 00h/01h/02h/03h, Get Log Page 01h/04h/0Ch (offset, NUMD truncation, RGO, RAE), Set/Get
//    Features 07h/0Bh/0Fh, Asynchronous Event Request (AERL 3), Keep Alive, Abort. Anything else: Invalid Command
//    Opcode.
//  - I/O: Read, Write, Flush, Write Zeroes, Dataset Management, and the four reservation commands, each first held to
//    the namespace's ANA state on the controller's port (0x301/0x302/0x303 with More set, as nvmet) and then to its
//    reservation (Reservation Conflict). A data buffer shorter than the transfer is Data SGL Length Invalid with DNR,
//    and nothing is written; command.direction is not checked.
//  - Completions carry the SQE's CID, SQID 0 (admin) or 1 (I/O), an SQHD that advances per queue (128 entries) and
//    phase 0.
// Threading: every method and every controller's Submit may be called from any thread; one mutex serializes the
// subsystem's state. Controllers complete commands inline, except Asynchronous Event Requests, which stay outstanding
// and are finished on their command.executor when an event arrives (or with ABORTED when the controller is destroyed),
// always after the mutex is released. Every transport returned by Connect must be destroyed before the subsystem.
class Subsystem {
 public:
  // `clock` times ANA transitions (evaluated lazily at each command, so a ManualClock drives them).
  static Result<std::unique_ptr<Subsystem>> Create(SubsystemConfig config, const Clock& clock);
  ~Subsystem();

  // A port is a path endpoint (nvmet's ports/N); every ANA group starts optimized on it.
  Result<void> AddPort(std::uint16_t port_id);
  // Adds a namespace; controllers get a Namespace Attribute Changed notice.
  Result<void> AddNamespace(NamespaceConfig ns);
  Result<void> RemoveNamespace(std::uint32_t nsid);

  // Creates a controller for `host_nqn` / `host_id` through `port_id`, with CNTLID 1, 2, ... in connection order.
  // Reservations are per host identifier: two controllers with the same host_id are one registrant, and the
  // registration outlives the controllers. Destroying the transport ends the controller.
  Result<std::unique_ptr<NvmeTransport>> Connect(const std::string& host_nqn, const std::array<std::uint8_t, 16>& host_id,
                                                 std::uint16_t port_id);

  // Sets the ANA state of `group` as seen through `port_id`. With a transition time the group reports change
  // (state 0Fh in the log, status 0x303 on I/O) until the clock passes it; the end is noticed lazily, by the next
  // command or GetAnaState. The start and the end each bump the ANA log change count (global and the group's) and
  // send an ANA change notice to every controller on the port. The log lists the groups that hold namespaces.
  Result<void> SetAnaState(std::uint16_t port_id, std::uint32_t group, AnaState state, Nanos transition_time = Nanos(0));
  [[nodiscard]] Result<AnaState> GetAnaState(std::uint16_t port_id, std::uint32_t group) const;

  // --- Fault injection at the device (link faults are transport decorators; see transport/sim).
  // Gives the namespace new identifiers (a remap): another volume now answers at the NSID, so its data reads zero
  // and its reservations are gone. Controllers get a Namespace Attribute Changed notice. Zero identifiers are not
  // reported.
  Result<void> ChangeIdentity(std::uint32_t nsid, const std::array<std::uint8_t, 16>& nguid,
                              const std::array<std::uint8_t, 8>& eui64, const std::array<std::uint8_t, 16>& uuid);
  // Resizes the namespace (NSZE, NCAP, NUSE); what a shrink cuts off reads zero if it grows back. Controllers get a
  // Namespace Attribute Changed notice.
  Result<void> ChangeCapacity(std::uint32_t nsid, std::uint64_t blocks);
  // Another host registers `foreign_key` and preempts every other registrant, holding a reservation of `type`
  // (NVMe reservation type 1..6).
  Result<void> ForeignPreempt(std::uint32_t nsid, const std::array<std::uint8_t, 16>& foreign_host_id,
                              std::uint64_t foreign_key, std::uint8_t type);

  // --- Observation and overrides.
  // Commands received with `opcode` on `queue` (admin or I/O), whatever their outcome.
  [[nodiscard]] std::uint64_t CommandCount(QueueKind queue, std::uint8_t opcode) const;
  // Replaces the handler of `opcode` on `queue`; an empty handler restores the default. Handlers run under the
  // subsystem's lock and may call DefaultHandler to fall through, but no other method of the subsystem.
  void SetHandler(QueueKind queue, std::uint8_t opcode, CommandHandler handler);
  // REQUIRES: called from a handler (the subsystem's lock is held).
  void DefaultHandler(CommandContext& context);

  [[nodiscard]] const SubsystemConfig& config() const;

 private:
  friend class Controller;
  struct State;
  explicit Subsystem(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace mpath::nvme::fake
