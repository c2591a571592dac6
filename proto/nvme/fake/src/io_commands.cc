// NVM command set I/O as the simulated subsystem answers it: Read, Write, Flush, Write Zeroes, Dataset Management and
// the four reservation commands, each behind the ANA state of its namespace's group on the controller's port and
// the namespace's reservation.
#include <algorithm>
#include <optional>
#include <vector>

#include "mpath/nvme/spec/nvm_io.h"
#include "mpath/nvme/spec/opcodes.h"
#include "mpath/nvme/spec/reservations.h"
#include "subsystem_state.h"

namespace mpath::nvme::fake {

using spec::Dnr;
using spec::GenericStatus;
using spec::IoOpcode;
using spec::MakeStatus;
using spec::More;
using spec::PathStatus;
using spec::Status;

namespace {

constexpr Status kSuccess = MakeStatus(GenericStatus::kSuccess);
constexpr Status kInvalidField = MakeStatus(GenericStatus::kInvalidFieldInCommand, Dnr::kSet);
constexpr Status kLbaOutOfRange = MakeStatus(GenericStatus::kLbaOutOfRange, Dnr::kSet);
// See admin_commands.cc: a buffer shorter than the transfer is an SGL shorter than the transfer.
constexpr Status kShortBuffer = MakeStatus(GenericStatus::kDataSglLengthInvalid, Dnr::kSet);

// Whether [slba, slba + count) lies inside a namespace of `blocks` blocks, without overflowing.
bool InRange(std::uint64_t slba, std::uint64_t count, std::uint64_t blocks) {
  return slba < blocks && count <= blocks - slba;
}

// What I/O meets in each ANA state. nvmet sets More on these (0x2302 on the wire, see NOTES.md), pointing at an
// Error Information log it keeps; DNR stays clear, because another controller may well succeed.
std::optional<Status> AnaStatus(AnaState state) {
  switch (state) {
    case AnaState::kOptimized:
    case AnaState::kNonOptimized: return std::nullopt;
    case AnaState::kInaccessible:
      return MakeStatus(PathStatus::kAsymmetricAccessInaccessible, Dnr::kClear, More::kSet);
    case AnaState::kPersistentLoss:
      return MakeStatus(PathStatus::kAsymmetricAccessPersistentLoss, Dnr::kClear, More::kSet);
    case AnaState::kChange: return MakeStatus(PathStatus::kAsymmetricAccessTransition, Dnr::kClear, More::kSet);
    default: return MakeStatus(PathStatus::kInternalPathError, Dnr::kClear, More::kSet);
  }
}

std::optional<spec::AccessKind> AccessOf(IoOpcode opcode) {
  switch (opcode) {
    case IoOpcode::kRead: return spec::AccessKind::kRead;
    case IoOpcode::kWrite:
    case IoOpcode::kWriteZeroes:
    case IoOpcode::kDatasetManagement:
    case IoOpcode::kFlush: return spec::AccessKind::kWrite;
    default: return std::nullopt;  // the reservation commands themselves
  }
}

template <wire::WireStruct T>
std::optional<T> LoadData(const NvmeCommand& command) {
  return wire::Load<T>(std::span<const std::byte>(command.data.data(), command.data.size()));
}

}  // namespace

Status Subsystem::State::ExecuteIo(ControllerState& controller, NvmeCommand& command) {
  const auto opcode = static_cast<IoOpcode>(command.sqe.opc);
  switch (opcode) {
    case IoOpcode::kFlush:
    case IoOpcode::kWrite:
    case IoOpcode::kRead:
    case IoOpcode::kWriteZeroes:
    case IoOpcode::kDatasetManagement:
    case IoOpcode::kReservationRegister:
    case IoOpcode::kReservationReport:
    case IoOpcode::kReservationAcquire:
    case IoOpcode::kReservationRelease: break;
    default: return MakeStatus(GenericStatus::kInvalidCommandOpcode, Dnr::kSet);
  }
  const std::uint32_t nsid = command.sqe.nsid.value();
  // Identify reports a volatile write cache that flushes every namespace at once; the store is always durable.
  if (opcode == IoOpcode::kFlush && nsid == spec::kBroadcastNsid) return kSuccess;
  NamespaceState* ns = FindNamespace(nsid);
  if (ns == nullptr) return MakeStatus(GenericStatus::kInvalidNamespaceOrFormat, Dnr::kSet);
  if (auto status = AnaStatus(CurrentAnaState(controller.port_id, ns->config.ana_group))) return *status;
  if (auto access = AccessOf(opcode); access && !ns->reservations.Permits(controller.host_id, *access)) {
    return MakeStatus(GenericStatus::kReservationConflict, Dnr::kSet);
  }

  switch (opcode) {
    case IoOpcode::kRead: return ReadWrite(*ns, command, /*write=*/false);
    case IoOpcode::kWrite: return ReadWrite(*ns, command, /*write=*/true);
    case IoOpcode::kFlush: return kSuccess;
    case IoOpcode::kWriteZeroes: return WriteZeroes(*ns, command);
    case IoOpcode::kDatasetManagement: return DatasetManagement(*ns, command);
    case IoOpcode::kReservationRegister: {
      auto data = LoadData<spec::ReservationRegisterData>(command);
      if (!data) return kShortBuffer;
      return ns->reservations.Register(controller.host_id, spec::DecodeReservationRegister(command.sqe), *data);
    }
    case IoOpcode::kReservationAcquire: {
      auto data = LoadData<spec::ReservationAcquireData>(command);
      if (!data) return kShortBuffer;
      return ns->reservations.Acquire(controller.host_id, spec::DecodeReservationAcquire(command.sqe), *data);
    }
    case IoOpcode::kReservationRelease: {
      auto data = LoadData<spec::ReservationReleaseData>(command);
      if (!data) return kShortBuffer;
      return ns->reservations.Release(controller.host_id, spec::DecodeReservationRelease(command.sqe), *data);
    }
    case IoOpcode::kReservationReport: return ReservationReport(*ns, command);
    default: return MakeStatus(GenericStatus::kInvalidCommandOpcode, Dnr::kSet);
  }
}

Status Subsystem::State::ReadWrite(NamespaceState& ns, NvmeCommand& command, bool write) {
  const spec::ReadWriteFields fields = spec::DecodeReadWrite(command.sqe);
  const std::uint64_t blocks = fields.block_count();
  const std::uint64_t bytes = blocks << ns.lbads;
  if (const std::uint64_t max = MaxTransferBytes(); max != 0 && bytes > max) return kInvalidField;
  if (!InRange(fields.slba, blocks, ns.blocks())) return kLbaOutOfRange;
  if (command.data.size() < bytes) return kShortBuffer;
  const std::uint64_t offset = fields.slba << ns.lbads;
  if (write) {
    ns.data.Write(offset, command.data.first(static_cast<std::size_t>(bytes)));
  } else {
    ns.data.Read(offset, command.data.first(static_cast<std::size_t>(bytes)));
  }
  return kSuccess;
}

Status Subsystem::State::WriteZeroes(NamespaceState& ns, NvmeCommand& command) {
  const spec::ReadWriteFields fields = spec::DecodeReadWrite(command.sqe);
  if (!InRange(fields.slba, fields.block_count(), ns.blocks())) return kLbaOutOfRange;
  // Deallocated or not, the blocks read back as zeroes (DLFEAT); DEAC only changes what is kept in memory, and the
  // sparse store frees whole chunks either way.
  ns.data.Zero(fields.slba << ns.lbads, std::uint64_t{fields.block_count()} << ns.lbads);
  return kSuccess;
}

Status Subsystem::State::DatasetManagement(NamespaceState& ns, NvmeCommand& command) {
  const spec::DatasetManagementFields fields = spec::DecodeDatasetManagement(command.sqe);
  if (command.data.size() < fields.data_bytes()) return kShortBuffer;
  std::vector<spec::DsmRange> ranges(fields.range_count);
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    ranges[i] = *wire::Load<spec::DsmRange>(command.data, i * sizeof(spec::DsmRange));
    if (!InRange(ranges[i].slba.value(), ranges[i].nlb.value(), ns.blocks()) && ranges[i].nlb.value() != 0) {
      return kLbaOutOfRange;
    }
  }
  // Only deallocation changes anything; the integral read/write attributes are hints.
  if (fields.deallocate) {
    for (const spec::DsmRange& range : ranges) {
      ns.data.Zero(range.slba.value() << ns.lbads, std::uint64_t{range.nlb.value()} << ns.lbads);
    }
  }
  return kSuccess;
}

Status Subsystem::State::ReservationReport(NamespaceState& ns, NvmeCommand& command) {
  const spec::ReservationReportFields fields = spec::DecodeReservationReport(command.sqe);
  const std::uint64_t length = fields.length_bytes();
  if (command.data.size() < length) return kShortBuffer;
  // Every host here has a 128-bit identifier (fabrics), which only the extended structure can carry.
  if (fields.format != spec::ReportFormat::kExtended) {
    return MakeStatus(GenericStatus::kHostIdentifierInconsistentFormat, Dnr::kSet);
  }
  // One entry per controller of each registered host; a registered host with no controller here (another cluster
  // node) still shows, under the dynamic controller ID.
  std::vector<spec::RegisteredControllerExtended> entries;
  for (const ReservationBook::Registration& registration : ns.reservations.registrants()) {
    spec::RegisteredControllerExtended entry{};
    entry.rcsts = wire::SetBit<spec::kRcstsHoldsReservation>(std::uint8_t{0},
                                                              ns.reservations.IsHolder(registration.host));
    entry.rkey = registration.key;
    entry.hostid = registration.host;
    bool any = false;
    for (const auto& [cntlid, controller] : controllers) {
      if (controller.host_id != registration.host) continue;
      entry.cntlid = cntlid;
      entries.push_back(entry);
      any = true;
    }
    if (!any) {
      entry.cntlid = spec::kCntlidDynamic;
      entries.push_back(entry);
    }
  }

  std::vector<std::byte> report(sizeof(spec::ReservationStatusExtendedHeader) +
                                entries.size() * sizeof(spec::RegisteredControllerExtended));
  spec::ReservationStatusExtendedHeader header{};
  header.status.gen = ns.reservations.generation();
  header.status.rtype = static_cast<std::uint8_t>(ns.reservations.type());
  header.status.regctl = static_cast<std::uint16_t>(entries.size());
  header.status.ptpls = ns.reservations.ptpl() ? 1 : 0;
  std::size_t offset = wire::Store(report, header);
  for (const auto& entry : entries) offset += wire::Store(report, entry, offset);

  std::span<std::byte> out = command.data.first(static_cast<std::size_t>(length));
  const std::size_t n = std::min(out.size(), report.size());
  std::copy_n(report.begin(), n, out.begin());
  std::fill(out.begin() + static_cast<std::ptrdiff_t>(n), out.end(), std::byte{0});
  return kSuccess;
}

}  // namespace mpath::nvme::fake
