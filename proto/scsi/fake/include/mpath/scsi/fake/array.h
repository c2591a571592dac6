// A simulated SCSI array: RAM-backed logical units behind target ports grouped into ALUA target port groups, with
// persistent reservations and unit attentions kept per I_T nexus. It answers real CDBs with real data, status and
// sense, matching what Linux LIO answers (../shared/lab/NOTES.md), and is both the embedded default SAN and the
// device the SCSI personality is tested against.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/scsi/spec/status.h"
#include "mpath/scsi/transport.h"

namespace mpath::scsi::fake {

// SPC-5 r19 §6.37 Table 254 "ASYMMETRIC ACCESS STATE field".
enum class AluaState : std::uint8_t {
  kActiveOptimized = 0x0,
  kActiveNonOptimized = 0x1,
  kStandby = 0x2,
  kUnavailable = 0x3,
  kLogicalBlockDependent = 0x4,
  kOffline = 0xE,
  kTransitioning = 0xF,
};

enum class SenseFormat : std::uint8_t { kFixed, kDescriptor };

struct LogicalUnitConfig {
  std::uint64_t lun = 0;
  std::uint64_t blocks = 0;
  std::uint32_t block_size = 512;
  // NAA IEEE Registered Extended (type 6) designator, 16 bytes, reported in VPD 0x83 with LU association.
  std::array<std::uint8_t, 16> naa{};
  std::string serial;        // VPD 0x80
  bool thin = true;          // UNMAP supported (VPD 0xB0 / 0xB2 limits)
};

struct PortGroupConfig {
  std::uint16_t id = 0;                       // target port group identifier
  AluaState state = AluaState::kActiveOptimized;
  bool preferred = false;                     // PREF bit
  std::vector<std::uint16_t> relative_ports;  // relative target port identifiers in this group (1-based)
};

struct ArrayConfig {
  std::string vendor = "MPATHSIM";     // 8 bytes in INQUIRY, space padded
  std::string product = "ALUA-ARRAY";  // 16 bytes
  std::string revision = "0001";
  std::string target_name = "iqn.2026-11.io.mpath.sim:array0";  // SCSI name string designator of the ports
  std::uint8_t tpgs = 0x3;             // 0: no ALUA (RTPG is ILLEGAL REQUEST, as on tgt); 1 implicit; 2 explicit; 3 both
  std::uint8_t transition_time_secs = 10;  // IMPLICIT TRANSITION TIME in the RTPG extended header
  // Reproduce LIO 6.1: with the extended header, RETURN DATA LENGTH counts only the descriptors and the reply is
  // cut 4 bytes short.
  bool lio_truncated_extended_rtpg = false;
  SenseFormat sense_format = SenseFormat::kFixed;
  bool pr_all_target_ports = true;   // ATP_C
  bool pr_persist_through_power_loss = true;  // PTPL_C
};

// What a command handler sees: the nexus, the LU it addressed, and the command to answer.
class Array;
struct CommandContext {
  Array& array;
  std::uint32_t nexus_index;   // stable index of the I_T nexus within the array
  std::uint64_t lun;
  ScsiCommand& command;
};
using CommandHandler = std::function<void(CommandContext&)>;

// Threading: every method and every nexus's Submit may be called from any thread; one mutex serializes the array's
// state. Nexus transports complete inline (inside Submit), so they never touch command.executor. Every transport
// returned by Connect must be destroyed before the array.
class Array {
 public:
  // `clock` times ALUA transitions (evaluated lazily at each command, so a ManualClock drives them) and must outlive
  // the array.
  static Result<std::unique_ptr<Array>> Create(ArrayConfig config, const Clock& clock);
  ~Array();

  Result<void> AddPortGroup(PortGroupConfig group);
  // Adds a LU; every nexus gets 3F/0E REPORTED LUNS DATA HAS CHANGED.
  Result<void> AddLogicalUnit(LogicalUnitConfig lu);
  Result<void> RemoveLogicalUnit(std::uint64_t lun);

  // Opens the I_T nexus from `initiator_port` to target port `relative_port`. Its first command other than INQUIRY,
  // REPORT LUNS or REQUEST SENSE gets 29/00 POWER ON, RESET, OR BUS DEVICE RESET OCCURRED. Connecting a nexus that
  // already exists reopens it (same registrations; a new 29/00 is not queued, 29/07 I_T NEXUS LOSS is).
  Result<std::unique_ptr<ScsiTransport>> Connect(const std::string& initiator_port, std::uint16_t relative_port);

  // Implicit ALUA change of one group (every LU). With a transition time the group reports transitioning (04/0A on
  // media access) until the clock passes it. 2A/06 is queued on every nexus at the start and again at the end.
  Result<void> SetAccessState(std::uint16_t group, AluaState state, Nanos transition_time = Nanos(0));
  Result<void> SetPreferred(std::uint16_t group, bool preferred);
  [[nodiscard]] Result<AluaState> AccessState(std::uint16_t group) const;

  // --- Fault injection at the device (link faults are transport decorators; see transport/sim).
  // Queues `code` (a UNIT ATTENTION) on every nexus for every LU.
  void RaiseUnitAttentionEverywhere(spec::SenseCode code);
  // Gives the LU a new NAA identity (a remap); every nexus gets 3F/03 INQUIRY DATA HAS CHANGED.
  Result<void> ChangeIdentity(std::uint64_t lun, const std::array<std::uint8_t, 16>& naa);
  // Resizes the LU; every nexus gets 2A/09 CAPACITY DATA HAS CHANGED.
  Result<void> ChangeCapacity(std::uint64_t lun, std::uint64_t blocks);
  // Another host (initiator port `foreign_port` on target port 1) registers `foreign_key` and preempts every other
  // registration with a reservation of `type` (SPC-5 TYPE code).
  Result<void> ForeignPreempt(std::uint64_t lun, const std::string& foreign_port, std::uint64_t foreign_key,
                              std::uint8_t type);
  // Power loss: non-APTPL registrations vanish; every nexus gets 29/01.
  void PowerCycle();

  // --- Observation and overrides.
  // Commands of `opcode` received (for the RTPG coalescing checks); service actions are not split.
  [[nodiscard]] std::uint64_t CommandCount(std::uint8_t opcode) const;
  // Replaces the handler of `opcode`; an empty handler restores the default. Handlers run under the array's lock
  // and may call DefaultHandler to fall through.
  void SetHandler(std::uint8_t opcode, CommandHandler handler);
  void DefaultHandler(CommandContext& context);

  [[nodiscard]] const ArrayConfig& config() const;

 private:
  struct State;
  explicit Array(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace mpath::scsi::fake
