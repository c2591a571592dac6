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
#include "mpath/scsi/spec/alua.h"
#include "mpath/scsi/spec/sense.h"
#include "mpath/scsi/spec/status.h"
#include "mpath/scsi/transport.h"

namespace mpath::scsi::fake {

// The ASYMMETRIC ACCESS STATE and sense format vocabularies are the wire ones (spec/alua.h, spec/sense.h).
using AluaState = spec::AsymmetricAccessState;
using SenseFormat = spec::SenseFormat;

struct LogicalUnitConfig {
  std::uint64_t lun = 0;
  std::uint64_t blocks = 0;
  std::uint32_t block_size = 512;
  // NAA IEEE Registered Extended (type 6) designator, 16 bytes, reported in VPD 0x83 with LU association.
  std::array<std::uint8_t, 16> naa{};
  std::string serial;        // VPD 0x80
  bool thin = true;          // UNMAP supported (VPD 0xB0 / 0xB2 limits)
  // VPD 0xB0 limits, in logical blocks (counts for the descriptor limit); longer requests get 24/00 or 26/00.
  std::uint32_t max_transfer_blocks = 8192;
  std::uint32_t max_unmap_blocks = 0x40000;
  std::uint32_t max_unmap_descriptors = 256;
  std::uint64_t max_write_same_blocks = 0x10000;
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

namespace internal {
struct ArrayState;
}  // namespace internal

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
  // Adds a LU (LUN <= 16383, blocks >= 1); every nexus gets 3F/0E REPORTED LUNS DATA HAS CHANGED on every LU.
  Result<void> AddLogicalUnit(LogicalUnitConfig lu);
  // Removes a LU with its data and reservations; every nexus gets 3F/0E on every remaining LU.
  Result<void> RemoveLogicalUnit(std::uint64_t lun);

  // Opens the I_T nexus from `initiator_port` to target port `relative_port` (which must be in a port group). Its
  // first command to each LU other than INQUIRY or REPORT LUNS gets 29/00 POWER ON, RESET, OR BUS DEVICE RESET
  // OCCURRED (REQUEST SENSE returns it as sense data). Connecting a nexus that already exists reopens it (same
  // registrations; a new 29/00 is not queued, 29/07 I_T NEXUS LOSS is).
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
  // Replaces the handler of `opcode`; an empty handler restores the default. The command is counted first and its
  // answer reset to GOOD with nothing transferred (delivery kDelivered; a handler may set another to fake a path
  // fault). Handlers run under the array's lock on the submitter's thread: they may call DefaultHandler to fall
  // through, and no other Array method.
  void SetHandler(std::uint8_t opcode, CommandHandler handler);
  // The array's own processing of a command: LUN lookup, unit attention, ALUA access state, then the opcode.
  // REQUIRES: called from a handler (the array's lock is held).
  void DefaultHandler(CommandContext& context);
  // RAM holding the LU's data (whole chunks): for checking that UNMAP and WRITE SAME with UNMAP deallocate.
  [[nodiscard]] Result<std::uint64_t> AllocatedBytes(std::uint64_t lun) const;

  // Constant after Create.
  [[nodiscard]] const ArrayConfig& config() const;

 private:
  explicit Array(std::unique_ptr<internal::ArrayState> state);
  std::unique_ptr<internal::ArrayState> state_;
};

}  // namespace mpath::scsi::fake
