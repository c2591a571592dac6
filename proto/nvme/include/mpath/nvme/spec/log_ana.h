// The Asymmetric Namespace Access log page (LID 0Ch): a header, then one descriptor per ANA group with the group's
// state as seen through the controller that answers, each followed by its NSIDs unless only groups were asked for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "mpath/core/error.h"
#include "mpath/nvme/spec/common.h"
#include "mpath/nvme/spec/log_page.h"
#include "mpath/nvme/spec/queue_entries.h"

namespace mpath::nvme::spec {

// NVM Express Base Specification 2.0c §8.1 "Asymmetric Namespace Access Reporting" ("ANA State" values, as the
// ANA Group Descriptor's ANAS field carries them).
enum class AnaState : std::uint8_t {
  kOptimized = 0x1,
  kNonOptimized = 0x2,
  kInaccessible = 0x3,
  kPersistentLoss = 0x4,
  kChange = 0xF,
};

[[nodiscard]] constexpr bool IsValidAnaState(std::uint8_t raw) {
  return (raw >= 0x1 && raw <= 0x4) || raw == 0xF;
}
// "optimized", "non-optimized", "inaccessible", "persistent loss", "change"; "unknown" otherwise.
std::string_view Name(AnaState state);

// LSP bit 0 of Get Log Page for LID 0Ch: RGO, return groups only (no NSID lists).
enum class AnaLogScope : std::uint8_t { kGroupsAndNamespaces, kGroupsOnly };
inline constexpr unsigned kAnaLspRgoBit = 0;

// NVM Express Base Specification 2.0c §5.16.1 "Log Specific Information" ("Asymmetric Namespace Access Log Page",
// header).
struct AnaLogHeader {
  Le64 chgcnt;  // change count of the whole log
  Le16 ngrps;   // number of ANA group descriptors that follow
  std::uint8_t reserved[6];
};
MPATH_WIRE_LAYOUT(AnaLogHeader, 16);
MPATH_WIRE_FIELD(AnaLogHeader, ngrps, 8);

// NVM Express Base Specification 2.0c §5.16.1 "Log Specific Information" ("ANA Group Descriptor format"), followed
// by NNSIDS 4-byte NSIDs.
struct AnaGroupDescriptor {
  Le32 anagrpid;
  Le32 nnsids;        // number of NSIDs listed; 0 when RGO was set
  Le64 chgcnt;        // change count of this group
  std::uint8_t anas;  // bits 3:0 the ANA state
  std::uint8_t reserved[15];

  [[nodiscard]] constexpr std::uint8_t state_raw() const { return wire::GetBits<3, 0>(anas); }
};
MPATH_WIRE_LAYOUT(AnaGroupDescriptor, 32);
MPATH_WIRE_FIELD(AnaGroupDescriptor, nnsids, 4);
MPATH_WIRE_FIELD(AnaGroupDescriptor, chgcnt, 8);
MPATH_WIRE_FIELD(AnaGroupDescriptor, anas, 16);

// Bytes of a log with `groups` descriptors listing `nsids` NSIDs in all: size a buffer with ANAGRPMAX/NANAGRPID and
// MNAN (or NN) from Identify Controller.
[[nodiscard]] constexpr std::uint64_t AnaLogSize(std::uint64_t groups, std::uint64_t nsids) {
  return sizeof(AnaLogHeader) + groups * sizeof(AnaGroupDescriptor) + nsids * 4;
}

// A Get Log Page SQE for the ANA log: broadcast NSID, `length_bytes` from offset 0.
[[nodiscard]] SubmissionQueueEntry MakeGetAnaLog(std::uint32_t length_bytes,
                                                 AnaLogScope scope = AnaLogScope::kGroupsAndNamespaces,
                                                 RetainAsyncEvent rae = RetainAsyncEvent::kClear);

struct AnaGroup {
  std::uint32_t id = 0;
  std::uint64_t chgcnt = 0;
  std::uint8_t state_raw = 0;  // AnaState when IsValidAnaState(state_raw)
  std::vector<std::uint32_t> nsids;

  [[nodiscard]] AnaState state() const { return static_cast<AnaState>(state_raw); }
};

struct AnaLog {
  std::uint64_t chgcnt = 0;
  std::vector<AnaGroup> groups;
};

// Decodes the log held in `bytes` (what arrived, possibly more than the log). Every descriptor and every NSID list
// must lie inside `bytes`: a log cut short, or a header claiming more groups than arrived, is an error (kTargetError)
// rather than a partial answer, so that a host never acts on half a group list.
[[nodiscard]] Result<AnaLog> ParseAnaLog(std::span<const std::byte> bytes);

}  // namespace mpath::nvme::spec
