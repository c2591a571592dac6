// The simulated array's state and the pieces its command handlers share. Private to the fake: array.cc owns the
// lifecycle, unit attentions and ALUA; spc_commands.cc and sbc_commands.cc answer the opcodes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "mpath/core/clock.h"
#include "mpath/proto/wire.h"
#include "mpath/scsi/fake/array.h"
#include "mpath/scsi/spec/alua.h"
#include "mpath/scsi/spec/sense.h"
#include "persistent_reservations.h"
#include "mpath/proto/sparse_store.h"

namespace mpath::scsi::fake::internal {

struct LogicalUnit {
  LogicalUnitConfig config;  // config.blocks follows ChangeCapacity, config.naa follows ChangeIdentity
  proto::SparseStore store;  // byte-addressed: LBA x block size
  std::unique_ptr<PersistentReservations> reservations;
  // Pending unit attentions, oldest first, indexed by nexus index.
  std::vector<std::deque<spec::SenseCode>> unit_attentions;
};

struct PortGroup {
  std::uint16_t id = 0;
  AluaState state = AluaState::kActiveOptimized;  // the state once any transition has ended
  std::optional<TimePoint> transition_ends;       // set while the group is transitioning to `state`
  bool preferred = false;
  spec::TpgStatusCode status = spec::TpgStatusCode::kNoStatus;
  std::vector<std::uint16_t> ports;               // relative target port identifiers, ascending

  [[nodiscard]] AluaState Reported() const { return transition_ends ? AluaState::kTransitioning : state; }
};

struct Nexus {
  NexusId id;
  std::size_t group = 0;  // index into ArrayState::groups of the target port's group
};

// Threading: every field below `mu` is guarded by it; the functions marked REQUIRES(mu) expect it held.
struct ArrayState {
  ArrayState(ArrayConfig config, const Clock& clock) : config(std::move(config)), clock(clock) {}

  // Constant after construction.
  const ArrayConfig config;
  const Clock& clock;

  mutable std::mutex mu;
  // Guarded by mu.
  std::vector<PortGroup> groups;
  std::map<std::uint16_t, std::size_t> port_group;  // relative target port -> index into groups
  std::map<std::uint64_t, LogicalUnit> lus;          // ordered, for REPORT LUNS
  std::vector<Nexus> nexuses;
  std::array<CommandHandler, 256> handlers;
  std::array<std::uint64_t, 256> counts{};

  // REQUIRES(mu): ends the transitions whose time has come (queueing their second 2A/06).
  void Tick();
  // REQUIRES(mu): queues `code` for one nexus on one LU, unless it (or, for a 29h reset, any 29h) is pending.
  void QueueUnitAttention(LogicalUnit& lu, std::size_t nexus, spec::SenseCode code);
  // REQUIRES(mu): on every LU for every nexus but `except`.
  void QueueUnitAttentionEverywhere(spec::SenseCode code, std::optional<std::size_t> except = std::nullopt);
  // REQUIRES(mu): every nexus of one LU.
  void QueueUnitAttentionOnLu(LogicalUnit& lu, spec::SenseCode code);
  // REQUIRES(mu): the unit attentions a PR operation reported, expanded to nexuses.
  void QueueReservationUnitAttentions(LogicalUnit& lu, const std::vector<UnitAttention>& attentions);
  [[nodiscard]] PortGroup* FindGroup(std::uint16_t id);
  [[nodiscard]] LogicalUnit* FindLu(std::uint64_t lun);

  // REQUIRES(mu): what DefaultHandler does.
  void Execute(CommandContext& context);
};

// One command being answered by the array's own handlers.
struct Exec {
  ArrayState& array;
  CommandContext& context;
  ScsiCommand& command;
  Nexus& nexus;
  LogicalUnit* lu;  // null when no LU answers at this LUN (only INQUIRY, REPORT LUNS, REQUEST SENSE get this far)

  [[nodiscard]] std::span<const std::byte> cdb() const {
    return std::as_bytes(std::span<const std::uint8_t>(command.cdb.data(), command.cdb_length));
  }
  // The CDB as `Cdb`; the dispatcher has checked that cdb_length covers the opcode's CDB length, and LoadPadded
  // keeps a shorter struct read in bounds regardless.
  template <wire::WireStruct Cdb>
  [[nodiscard]] Cdb CdbAs() const {
    return wire::LoadPadded<Cdb>(cdb());
  }
};

// --- Answers. Every command leaves with status, sense and residual set.
// CHECK CONDITION with `code` in the array's sense format; nothing transferred.
void Fail(Exec& e, spec::SenseCode code);
// RESERVATION CONFLICT, no sense; nothing transferred.
void Conflict(Exec& e);
// GOOD, transferring `reply` cut to the allocation length and to the data-in buffer.
void SendData(Exec& e, std::span<const std::byte> reply, std::size_t allocation_length);
// GOOD after consuming `used` bytes of the data buffer.
void Complete(Exec& e, std::size_t used);
// False (after answering RESERVATION CONFLICT) when the LU's reservation forbids `kind` from this nexus.
[[nodiscard]] bool ReservationAllows(Exec& e, AccessKind kind);

// An append-only reply buffer. Threading: a value type.
class Reply {
 public:
  template <wire::WireStruct T>
  void Put(const T& value) {
    const auto bytes = wire::BytesOf(value);
    bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
  }
  void PutBytes(std::span<const std::byte> bytes) { bytes_.insert(bytes_.end(), bytes.begin(), bytes.end()); }
  void PutText(std::string_view text) { PutBytes(std::as_bytes(std::span<const char>(text.data(), text.size()))); }
  void PutZeroes(std::size_t n) { bytes_.insert(bytes_.end(), n, std::byte{0}); }
  // Overwrites a struct already put at `offset` (a length field known only at the end).
  template <wire::WireStruct T>
  void PutAt(std::size_t offset, const T& value) {
    wire::Store(std::span<std::byte>(bytes_), value, offset);
  }
  [[nodiscard]] std::size_t size() const { return bytes_.size(); }
  [[nodiscard]] std::span<const std::byte> bytes() const { return bytes_; }

 private:
  std::vector<std::byte> bytes_;
};

// --- The opcodes (spc_commands.cc, sbc_commands.cc).
using BuiltinHandler = void (*)(Exec&);
void TestUnitReady(Exec& e);
void Inquiry(Exec& e);            // also answers for a missing LU
void RequestSense(Exec& e, std::optional<spec::SenseCode> pending);  // also for a missing LU
void ReportLuns(Exec& e);         // also answers for a missing LU
void MaintenanceIn(Exec& e);      // REPORT TARGET PORT GROUPS
void MaintenanceOut(Exec& e);     // SET TARGET PORT GROUPS
void PersistentReserveIn(Exec& e);
void PersistentReserveOut(Exec& e);
void ReadCapacity10(Exec& e);
void ServiceActionIn16(Exec& e);  // READ CAPACITY (16)
void Read10(Exec& e);
void Read16(Exec& e);
void Write10(Exec& e);
void Write16(Exec& e);
void SynchronizeCache10(Exec& e);
void SynchronizeCache16(Exec& e);
void WriteSame16(Exec& e);
void Unmap(Exec& e);

}  // namespace mpath::scsi::fake::internal
