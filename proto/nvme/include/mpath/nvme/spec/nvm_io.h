// NVM command set I/O: Read, Write, Flush, Write Zeroes and Dataset Management (deallocate), with builders for the
// SQEs and decoders of their command dwords.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mpath/nvme/spec/common.h"
#include "mpath/nvme/spec/queue_entries.h"
#include "mpath/proto/wire.h"

namespace mpath::nvme::spec {

// NLB is 16 bits, 0-based: one command moves at most 65536 logical blocks (MDTS usually allows fewer).
inline constexpr std::uint32_t kMaxBlocksPerCommand = 0x10000;

// FUA, CDW12 bit 30: the data reaches non-volatile media before the command completes.
enum class ForceUnitAccess : std::uint8_t { kNo, kYes };
// DEAC, Write Zeroes CDW12 bit 25: deallocate the blocks as well as zeroing them.
enum class Deallocate : std::uint8_t { kNo, kYes };

// NVM Command Set Specification 1.0c §3.2.4 "Read command" and §3.2.6 "Write command" ("Command Dword 10 and
// Command Dword 11", "Command Dword 12"); Write Zeroes (§3.2.8) shares the layout and adds DEAC.
struct ReadWriteFields {
  std::uint64_t slba = 0;       // CDW11:CDW10
  std::uint16_t nlb = 0;        // CDW12 bits 15:0, 0-based
  bool deac = false;            // CDW12 bit 25 (Write Zeroes only)
  std::uint8_t prinfo = 0;      // CDW12 bits 29:26
  bool fua = false;             // CDW12 bit 30
  bool limited_retry = false;   // CDW12 bit 31

  [[nodiscard]] constexpr std::uint32_t block_count() const { return std::uint32_t{nlb} + 1; }
};

// REQUIRES: 1 <= block_count <= kMaxBlocksPerCommand. The transport fills CID and the data pointer.
[[nodiscard]] SubmissionQueueEntry MakeRead(std::uint32_t nsid, std::uint64_t slba, std::uint32_t block_count,
                                            ForceUnitAccess fua = ForceUnitAccess::kNo);
[[nodiscard]] SubmissionQueueEntry MakeWrite(std::uint32_t nsid, std::uint64_t slba, std::uint32_t block_count,
                                             ForceUnitAccess fua = ForceUnitAccess::kNo);
[[nodiscard]] SubmissionQueueEntry MakeWriteZeroes(std::uint32_t nsid, std::uint64_t slba, std::uint32_t block_count,
                                                   Deallocate deac = Deallocate::kNo,
                                                   ForceUnitAccess fua = ForceUnitAccess::kNo);
// NVM Express Base Specification 2.0c §7.1 "Flush command". kBroadcastNsid flushes every namespace when the
// controller's VWC field says so.
[[nodiscard]] SubmissionQueueEntry MakeFlush(std::uint32_t nsid);
[[nodiscard]] ReadWriteFields DecodeReadWrite(const SubmissionQueueEntry& sqe);

// NVM Command Set Specification 1.0c §3.2.3 "Dataset Management command" ("Dataset Management – Range").
struct DsmRange {
  Le32 context_attributes;
  Le32 nlb;   // length in logical blocks, 1-based (unlike the NLB of Read and Write)
  Le64 slba;
};
MPATH_WIRE_LAYOUT(DsmRange, 16);
MPATH_WIRE_FIELD(DsmRange, nlb, 4);
MPATH_WIRE_FIELD(DsmRange, slba, 8);

inline constexpr std::size_t kMaxDsmRanges = 256;

// NVM Command Set Specification 1.0c §3.2.3 ("Dataset Management – Command Dword 10", "– Command Dword 11").
struct DatasetManagementFields {
  std::uint16_t range_count = 1;  // NR (CDW10 bits 7:0) + 1
  bool integral_read = false;     // IDR, CDW11 bit 0
  bool integral_write = false;    // IDW, CDW11 bit 1
  bool deallocate = false;        // AD, CDW11 bit 2

  [[nodiscard]] constexpr std::size_t data_bytes() const { return std::size_t{range_count} * sizeof(DsmRange); }
};

// A Dataset Management SQE with the AD attribute for `range_count` ranges (1..256) that follow as data.
[[nodiscard]] SubmissionQueueEntry MakeDeallocate(std::uint32_t nsid, std::uint16_t range_count);
[[nodiscard]] DatasetManagementFields DecodeDatasetManagement(const SubmissionQueueEntry& sqe);

}  // namespace mpath::nvme::spec
