// The SBC-4 commands the array answers: capacity, READ/WRITE (10)/(16), SYNCHRONIZE CACHE, WRITE SAME (16) and
// UNMAP. Each checks its CDB first (INVALID FIELD IN CDB, LBA OUT OF RANGE), then the reservation, then acts, so a
// refused command changes nothing.
#include <algorithm>

#include "array_state.h"
#include "mpath/scsi/spec/sbc_cdb.h"

namespace mpath::scsi::fake::internal {
namespace {

// SBC-4 r22 §4.5 "Logical blocks": a range that reaches past the last LBA. A zero-length range at the capacity
// itself is not an access, as LIO's sbc_parse_cdb has it.
bool OutOfRange(const LogicalUnit& lu, std::uint64_t lba, std::uint64_t blocks) {
  const std::uint64_t capacity = lu.config.blocks;
  return lba > capacity || blocks > capacity - lba;
}

enum class Direction : bool { kRead, kWrite };

void ReadOrWrite(Exec& e, Direction direction, std::uint8_t flags, std::uint64_t lba, std::uint64_t blocks) {
  LogicalUnit& lu = *e.lu;
  // No protection information: RDPROTECT/WRPROTECT must be 0 (SBC-4 §5.16 Table 60).
  if (spec::RwFlags::Protect(flags) != 0 || blocks > lu.config.max_transfer_blocks) {
    Fail(e, spec::asc::kInvalidFieldInCdb);
    return;
  }
  if (OutOfRange(lu, lba, blocks)) {
    Fail(e, spec::asc::kLbaOutOfRange);
    return;
  }
  const std::size_t bytes = blocks * lu.config.block_size;
  // A buffer shorter than the CDB asks for cannot be the initiator's intent; refuse before touching anything.
  if (e.command.data.size() < bytes) {
    Fail(e, spec::asc::kInvalidFieldInCdb);
    return;
  }
  if (!ReservationAllows(e, direction == Direction::kRead ? AccessKind::kRead : AccessKind::kWrite)) return;
  if (direction == Direction::kRead) {
    lu.store.Read(lba * lu.config.block_size, e.command.data.first(bytes));
  } else {
    lu.store.Write(lba * lu.config.block_size, e.command.data.first(bytes));
  }
  // FUA and DPO need nothing: RAM is the medium.
  Complete(e, bytes);
}

void SynchronizeCache(Exec& e, std::uint64_t lba, std::uint64_t blocks) {
  // NUMBER OF LOGICAL BLOCKS 0: from LBA through the last block, so LBA itself must exist.
  if (blocks == 0 ? lba >= e.lu->config.blocks : OutOfRange(*e.lu, lba, blocks)) {
    Fail(e, spec::asc::kLbaOutOfRange);
    return;
  }
  if (!ReservationAllows(e, AccessKind::kWrite)) return;
  Complete(e, 0);
}

}  // namespace

// SBC-4 r22 §5.20 "READ CAPACITY (10) command".
void ReadCapacity10(Exec& e) {
  const LogicalUnitConfig& lu = e.lu->config;
  const std::uint64_t last = lu.blocks - 1;
  spec::ReadCapacity10Data d{};
  d.returned_logical_block_address = last >= 0xFFFF'FFFFu ? 0xFFFF'FFFFu : static_cast<std::uint32_t>(last);
  d.logical_block_length_in_bytes = lu.block_size;
  SendData(e, wire::BytesOf(d), sizeof(d));
}

// SBC-4 r22 §5.21 "READ CAPACITY (16) command"; the only SERVICE ACTION IN(16) action the array knows.
void ServiceActionIn16(Exec& e) {
  const auto cdb = e.CdbAs<spec::ReadCapacity16Cdb>();
  if (cdb.service_action() != spec::service_action::kReadCapacity16) {
    Fail(e, spec::asc::kInvalidFieldInCdb);
    return;
  }
  const LogicalUnitConfig& lu = e.lu->config;
  spec::ReadCapacity16Data d{};
  d.returned_logical_block_address = lu.blocks - 1;
  d.logical_block_length_in_bytes = lu.block_size;
  d.set_provisioning(lu.thin, lu.thin);  // deallocated blocks read as zeroes
  SendData(e, wire::BytesOf(d), cdb.allocation_length.value());
}

void Read10(Exec& e) {
  const auto cdb = e.CdbAs<spec::Read10Cdb>();
  ReadOrWrite(e, Direction::kRead, cdb.flags, cdb.logical_block_address.value(), cdb.transfer_length.value());
}

void Read16(Exec& e) {
  const auto cdb = e.CdbAs<spec::Read16Cdb>();
  ReadOrWrite(e, Direction::kRead, cdb.flags, cdb.logical_block_address.value(), cdb.transfer_length.value());
}

void Write10(Exec& e) {
  const auto cdb = e.CdbAs<spec::Write10Cdb>();
  ReadOrWrite(e, Direction::kWrite, cdb.flags, cdb.logical_block_address.value(), cdb.transfer_length.value());
}

void Write16(Exec& e) {
  const auto cdb = e.CdbAs<spec::Write16Cdb>();
  ReadOrWrite(e, Direction::kWrite, cdb.flags, cdb.logical_block_address.value(), cdb.transfer_length.value());
}

void SynchronizeCache10(Exec& e) {
  const auto cdb = e.CdbAs<spec::SynchronizeCache10Cdb>();
  SynchronizeCache(e, cdb.logical_block_address.value(), cdb.number_of_logical_blocks.value());
}

void SynchronizeCache16(Exec& e) {
  const auto cdb = e.CdbAs<spec::SynchronizeCache16Cdb>();
  SynchronizeCache(e, cdb.logical_block_address.value(), cdb.number_of_logical_blocks.value());
}

// SBC-4 r22 §5.50 "WRITE SAME (16) command".
void WriteSame16(Exec& e) {
  LogicalUnit& lu = *e.lu;
  const auto cdb = e.CdbAs<spec::WriteSame16Cdb>();
  const std::uint64_t lba = cdb.logical_block_address.value();
  const std::uint64_t blocks = cdb.number_of_logical_blocks.value();
  // WSNZ is 1 (VPD B0h), there is no anchored state (ANC_SUP 0), no protection, and a fully provisioned LU does
  // not unmap (LBPWS 0).
  if (cdb.wrprotect() != 0 || cdb.anchor() || blocks == 0 || blocks > lu.config.max_write_same_blocks ||
      (cdb.unmap() && !lu.config.thin)) {
    Fail(e, spec::asc::kInvalidFieldInCdb);
    return;
  }
  if (OutOfRange(lu, lba, blocks)) {
    Fail(e, spec::asc::kLbaOutOfRange);
    return;
  }
  const std::size_t block_size = lu.config.block_size;
  std::vector<std::byte> zeroes;
  std::span<const std::byte> pattern;
  if (cdb.ndob()) {
    zeroes.assign(block_size, std::byte{0});
    pattern = zeroes;
  } else if (e.command.data.size() < block_size) {
    Fail(e, spec::asc::kInvalidFieldInCdb);
    return;
  } else {
    pattern = e.command.data.first(block_size);
  }
  if (!ReservationAllows(e, AccessKind::kWrite)) return;
  // SBC-4 §4.7.3.4: with UNMAP set the device server may deallocate only when a read would then return the same
  // data, i.e. when the block written is the zeroes a deallocated block reads as.
  const bool zero_pattern = std::all_of(pattern.begin(), pattern.end(), [](std::byte b) { return b == std::byte{0}; });
  if (cdb.unmap() && zero_pattern) {
    lu.store.Zero(lba * block_size, blocks * block_size);
  } else {
    for (std::uint64_t i = 0; i < blocks; ++i) lu.store.Write((lba + i) * block_size, pattern);
  }
  Complete(e, cdb.ndob() ? 0 : block_size);
}

// SBC-4 r22 §5.35 "UNMAP command".
void Unmap(Exec& e) {
  LogicalUnit& lu = *e.lu;
  // LIO refuses UNMAP on a backstore without emulate_tpu as an unsupported opcode; LBPU is 0 then.
  if (!lu.config.thin) {
    Fail(e, spec::asc::kInvalidCommandOperationCode);
    return;
  }
  const auto cdb = e.CdbAs<spec::UnmapCdb>();
  const std::size_t length = cdb.parameter_list_length.value();
  if (cdb.anchor() || length > e.command.data.size()) {
    Fail(e, spec::asc::kInvalidFieldInCdb);
    return;
  }
  if (!ReservationAllows(e, AccessKind::kWrite)) return;
  // PARAMETER LIST LENGTH 0 sends nothing and is not an error.
  if (length == 0) {
    Complete(e, 0);
    return;
  }
  if (length < sizeof(spec::UnmapParameterListHeader)) {
    Fail(e, spec::asc::kParameterListLengthError);
    return;
  }
  const std::span<const std::byte> list = e.command.data.first(length);
  const auto header = *wire::Load<spec::UnmapParameterListHeader>(list);
  const std::size_t data_length = header.unmap_data_length.value();
  const std::size_t descriptor_length = header.unmap_block_descriptor_data_length.value();
  constexpr std::size_t kHeaderTail = sizeof(spec::UnmapParameterListHeader) - 2;  // bytes UNMAP DATA LENGTH counts
  // The three lengths must agree: the descriptors fit inside what UNMAP DATA LENGTH says follows, and that inside
  // the parameter list actually sent.
  if (descriptor_length + kHeaderTail > data_length || data_length + 2 > length) {
    Fail(e, spec::asc::kInvalidFieldInParameterList);
    return;
  }
  // A trailing partial descriptor is ignored (SBC-4 §5.35.2).
  const std::size_t count = descriptor_length / sizeof(spec::UnmapBlockDescriptor);
  if (count > lu.config.max_unmap_descriptors) {
    Fail(e, spec::asc::kInvalidFieldInParameterList);
    return;
  }
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  ranges.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const auto d = *wire::Load<spec::UnmapBlockDescriptor>(
        list, sizeof(spec::UnmapParameterListHeader) + i * sizeof(spec::UnmapBlockDescriptor));
    const std::uint64_t lba = d.unmap_logical_block_address.value();
    const std::uint64_t blocks = d.number_of_logical_blocks.value();
    if (blocks > lu.config.max_unmap_blocks) {
      Fail(e, spec::asc::kInvalidFieldInParameterList);
      return;
    }
    if (OutOfRange(lu, lba, blocks)) {
      Fail(e, spec::asc::kLbaOutOfRange);
      return;
    }
    ranges.emplace_back(lba, blocks);
  }
  for (const auto& [lba, blocks] : ranges) lu.store.Zero(lba * lu.config.block_size, blocks * lu.config.block_size);
  Complete(e, length);
}

}  // namespace mpath::scsi::fake::internal
