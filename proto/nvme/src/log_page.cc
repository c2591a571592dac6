#include "mpath/nvme/spec/log_page.h"

#include <algorithm>

#include "mpath/nvme/spec/opcodes.h"

namespace mpath::nvme::spec {

SubmissionQueueEntry MakeGetLogPage(const GetLogPageArgs& args) {
  const std::uint32_t numd = std::max<std::uint32_t>(args.length_bytes / 4, 1) - 1;
  SubmissionQueueEntry sqe{};
  sqe.opc = Raw(AdminOpcode::kGetLogPage);
  sqe.nsid = args.nsid;
  std::uint32_t cdw10 = static_cast<std::uint8_t>(args.lid);
  cdw10 = wire::SetBits<14, 8>(cdw10, args.lsp);
  cdw10 = wire::SetBit<15>(cdw10, args.rae == RetainAsyncEvent::kRetain);
  cdw10 = wire::SetBits<31, 16>(cdw10, wire::GetBits<15, 0>(numd));
  sqe.cdw10 = cdw10;
  sqe.cdw11 = wire::GetBits<31, 16>(numd);
  sqe.cdw12 = static_cast<std::uint32_t>(args.offset);
  sqe.cdw13 = static_cast<std::uint32_t>(args.offset >> 32);
  return sqe;
}

GetLogPageFields DecodeGetLogPage(const SubmissionQueueEntry& sqe) {
  const std::uint32_t cdw10 = sqe.cdw10.value();
  const std::uint32_t cdw11 = sqe.cdw11.value();
  return GetLogPageFields{
      .lid = static_cast<LogPageId>(wire::GetBits<7, 0>(cdw10)),
      .lsp = static_cast<std::uint8_t>(wire::GetBits<14, 8>(cdw10)),
      .rae = wire::GetBit<15>(cdw10) ? RetainAsyncEvent::kRetain : RetainAsyncEvent::kClear,
      .numd = wire::SetBits<31, 16>(wire::GetBits<31, 16>(cdw10), wire::GetBits<15, 0>(cdw11)),
      .lsi = static_cast<std::uint16_t>(wire::GetBits<31, 16>(cdw11)),
      .offset = (std::uint64_t{sqe.cdw13.value()} << 32) | sqe.cdw12.value(),
      .csi = static_cast<std::uint8_t>(wire::GetBits<31, 24>(sqe.cdw14.value())),
      .nsid = sqe.nsid.value(),
  };
}

ChangedNamespaces ParseChangedNamespaceList(std::span<const std::byte> bytes) {
  ChangedNamespaces changed;
  for (std::size_t offset = 0; offset + 4 <= bytes.size() && changed.nsids.size() < kMaxChangedNamespaces;
       offset += 4) {
    const std::uint32_t nsid = wire::Load<Le32>(bytes, offset)->value();
    if (nsid == 0) break;
    if (offset == 0 && nsid == kBroadcastNsid) {
      changed.overflow = true;
      break;
    }
    changed.nsids.push_back(nsid);
  }
  return changed;
}

}  // namespace mpath::nvme::spec
