#include "mpath/nvme/spec/log_ana.h"

#include <string>

namespace mpath::nvme::spec {

std::string_view Name(AnaState state) {
  switch (state) {
    case AnaState::kOptimized: return "optimized";
    case AnaState::kNonOptimized: return "non-optimized";
    case AnaState::kInaccessible: return "inaccessible";
    case AnaState::kPersistentLoss: return "persistent loss";
    case AnaState::kChange: return "change";
    default: return "unknown";
  }
}

SubmissionQueueEntry MakeGetAnaLog(std::uint32_t length_bytes, AnaLogScope scope, RetainAsyncEvent rae) {
  return MakeGetLogPage(GetLogPageArgs{
      .lid = LogPageId::kAsymmetricNamespaceAccess,
      .nsid = kBroadcastNsid,
      .length_bytes = length_bytes,
      .offset = 0,
      .lsp = wire::SetBit<kAnaLspRgoBit>(std::uint8_t{0}, scope == AnaLogScope::kGroupsOnly),
      .rae = rae,
  });
}

Result<AnaLog> ParseAnaLog(std::span<const std::byte> bytes) {
  const auto header = wire::Load<AnaLogHeader>(bytes);
  if (!header) return MakeError(Errc::kTargetError, "ANA log shorter than its header");
  AnaLog log;
  log.chgcnt = header->chgcnt.value();
  const std::uint16_t ngrps = header->ngrps.value();
  // No more groups can have arrived than whole descriptors fit; reserving by NGRPS alone would trust the target.
  log.groups.reserve(std::min<std::size_t>(ngrps, (bytes.size() - sizeof(AnaLogHeader)) / sizeof(AnaGroupDescriptor)));
  std::size_t offset = sizeof(AnaLogHeader);
  for (std::uint16_t i = 0; i < ngrps; ++i) {
    const auto desc = wire::Load<AnaGroupDescriptor>(bytes, offset);
    if (!desc) {
      return MakeError(Errc::kTargetError, "ANA log cut short: descriptor " + std::to_string(i) + " of " +
                                               std::to_string(ngrps) + " did not arrive");
    }
    offset += sizeof(AnaGroupDescriptor);
    const std::uint64_t nnsids = desc->nnsids.value();
    if ((bytes.size() - offset) / 4 < nnsids) {
      return MakeError(Errc::kTargetError, "ANA log cut short: group " + std::to_string(desc->anagrpid.value()) +
                                               " lists " + std::to_string(nnsids) + " NSIDs that did not arrive");
    }
    AnaGroup group{.id = desc->anagrpid.value(), .chgcnt = desc->chgcnt.value(), .state_raw = desc->state_raw(), .nsids = {}};
    group.nsids.reserve(nnsids);
    for (std::uint64_t n = 0; n < nnsids; ++n, offset += 4) group.nsids.push_back(wire::Load<Le32>(bytes, offset)->value());
    log.groups.push_back(std::move(group));
  }
  return log;
}

}  // namespace mpath::nvme::spec
