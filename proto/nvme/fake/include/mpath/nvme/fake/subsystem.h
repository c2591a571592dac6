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
#include "mpath/nvme/transport.h"

namespace mpath::nvme::fake {

// NVM Express Base 2.0c §8.1.3 / Figure 203 "ANA State".
enum class AnaState : std::uint8_t {
  kOptimized = 0x1,
  kNonOptimized = 0x2,
  kInaccessible = 0x3,
  kPersistentLoss = 0x4,
  kChange = 0xF,
};

struct NamespaceConfig {
  std::uint32_t nsid = 1;
  std::uint64_t blocks = 0;
  std::uint32_t block_size = 512;          // a power of two, 512..4096 (LBADS)
  std::array<std::uint8_t, 16> nguid{};    // all zero: not reported
  std::array<std::uint8_t, 8> eui64{};     // all zero: not reported
  std::array<std::uint8_t, 16> uuid{};     // all zero: not reported
  std::uint32_t ana_group = 1;             // ANAGRPID, 1..anagrpmax
  bool shared = true;                      // NMIC bit 0: may be attached to several controllers
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
struct CommandContext {
  Subsystem& subsystem;
  std::uint16_t controller_id;   // CNTLID of the controller the command arrived on
  NvmeCommand& command;
};
using CommandHandler = std::function<void(CommandContext&)>;

// Threading: every method and every controller's Submit may be called from any thread; one mutex serializes the
// subsystem's state. Controllers complete commands inline, except Asynchronous Event Requests, which stay outstanding
// and are finished on their command.executor when an event arrives (or with ABORTED when the controller is destroyed).
// Every transport returned by Connect must be destroyed before the subsystem.
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

  // Creates a controller for `host_nqn` / `host_id` through `port_id`. Reservations are per host identifier: two
  // controllers with the same host_id are one registrant.
  Result<std::unique_ptr<NvmeTransport>> Connect(const std::string& host_nqn, const std::array<std::uint8_t, 16>& host_id,
                                                 std::uint16_t port_id);

  // Sets the ANA state of `group` as seen through `port_id`. With a transition time the group reports change
  // (status 0x303 on I/O) until the clock passes it. Each change bumps the ANA log change count and sends an ANA
  // change notice to every controller on the port.
  Result<void> SetAnaState(std::uint16_t port_id, std::uint32_t group, AnaState state, Nanos transition_time = Nanos(0));
  [[nodiscard]] Result<AnaState> GetAnaState(std::uint16_t port_id, std::uint32_t group) const;

  // --- Fault injection at the device (link faults are transport decorators; see transport/sim).
  // Gives the namespace new identifiers (a remap); controllers get a Namespace Attribute Changed notice.
  Result<void> ChangeIdentity(std::uint32_t nsid, const std::array<std::uint8_t, 16>& nguid,
                              const std::array<std::uint8_t, 8>& eui64, const std::array<std::uint8_t, 16>& uuid);
  Result<void> ChangeCapacity(std::uint32_t nsid, std::uint64_t blocks);
  // Another host registers `foreign_key` and preempts every other registrant, holding a reservation of `type`
  // (NVMe reservation type 1..6).
  Result<void> ForeignPreempt(std::uint32_t nsid, const std::array<std::uint8_t, 16>& foreign_host_id,
                              std::uint64_t foreign_key, std::uint8_t type);

  // --- Observation and overrides.
  [[nodiscard]] std::uint64_t CommandCount(QueueKind queue, std::uint8_t opcode) const;
  // Replaces the handler of `opcode` on `queue`; an empty handler restores the default. Handlers run under the
  // subsystem's lock and may call DefaultHandler to fall through.
  void SetHandler(QueueKind queue, std::uint8_t opcode, CommandHandler handler);
  void DefaultHandler(CommandContext& context);

  [[nodiscard]] const SubsystemConfig& config() const;

 private:
  struct State;
  explicit Subsystem(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace mpath::nvme::fake
