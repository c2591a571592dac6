#include "mpath/nvme/spec/identify.h"

#include <cstring>
#include <string>

#include "mpath/nvme/spec/opcodes.h"

namespace mpath::nvme::spec {

SubmissionQueueEntry MakeIdentify(Cns cns, std::uint32_t nsid, std::uint16_t cntid, std::uint8_t csi) {
  SubmissionQueueEntry sqe{};
  sqe.opc = Raw(AdminOpcode::kIdentify);
  sqe.nsid = nsid;
  sqe.cdw10 = wire::SetBits<31, 16>(std::uint32_t{static_cast<std::uint8_t>(cns)}, cntid);
  sqe.cdw11 = wire::SetBits<31, 24>(std::uint32_t{0}, csi);
  return sqe;
}

IdentifyFields DecodeIdentify(const SubmissionQueueEntry& sqe) {
  const std::uint32_t cdw10 = sqe.cdw10.value();
  const std::uint32_t cdw11 = sqe.cdw11.value();
  return IdentifyFields{
      .cns = static_cast<Cns>(wire::GetBits<7, 0>(cdw10)),
      .cntid = static_cast<std::uint16_t>(wire::GetBits<31, 16>(cdw10)),
      .cnssid = static_cast<std::uint16_t>(wire::GetBits<15, 0>(cdw11)),
      .csi = static_cast<std::uint8_t>(wire::GetBits<31, 24>(cdw11)),
      .nsid = sqe.nsid.value(),
  };
}

std::vector<std::uint32_t> ParseNamespaceList(std::span<const std::byte> bytes) {
  std::vector<std::uint32_t> nsids;
  for (std::size_t offset = 0; offset + 4 <= bytes.size() && nsids.size() < kMaxNamespaceListEntries; offset += 4) {
    std::uint32_t nsid = wire::Load<Le32>(bytes, offset)->value();
    if (nsid == 0) break;
    nsids.push_back(nsid);
  }
  return nsids;
}

Result<NamespaceIdentifiers> ParseNamespaceIdDescriptors(std::span<const std::byte> bytes) {
  NamespaceIdentifiers ids;
  std::size_t offset = 0;
  while (offset + sizeof(NamespaceIdDescriptorHeader) <= bytes.size()) {
    const auto header = *wire::Load<NamespaceIdDescriptorHeader>(bytes, offset);
    if (header.nidl == 0) break;
    const std::size_t nid_offset = offset + sizeof(header);
    if (bytes.size() - nid_offset < header.nidl) {
      return MakeError(Errc::kTargetError, "namespace identification descriptor of type " +
                                               std::to_string(header.nidt) + " runs past the data");
    }
    const auto type = static_cast<NidType>(header.nidt);
    const std::uint8_t expected = NidLength(type);
    if (expected != 0 && header.nidl != expected) {
      return MakeError(Errc::kTargetError, "namespace identification descriptor of type " +
                                               std::to_string(header.nidt) + " has length " +
                                               std::to_string(header.nidl));
    }
    const auto nid = bytes.subspan(nid_offset, header.nidl);
    auto take = [&]<std::size_t N>(std::optional<std::array<std::uint8_t, N>>& slot) -> Result<void> {
      if (slot) return MakeError(Errc::kTargetError, "namespace identifier type " + std::to_string(header.nidt) + " repeats");
      std::array<std::uint8_t, N> value{};
      std::memcpy(value.data(), nid.data(), N);
      slot = value;
      return {};
    };
    switch (type) {
      case NidType::kEui64: MPATH_TRY(take(ids.eui64)); break;
      case NidType::kNguid: MPATH_TRY(take(ids.nguid)); break;
      case NidType::kUuid: MPATH_TRY(take(ids.uuid)); break;
      case NidType::kCsi:
        if (ids.csi) return MakeError(Errc::kTargetError, "namespace identifier type 4 repeats");
        ids.csi = static_cast<std::uint8_t>(nid[0]);
        break;
      default: break;  // a type this host does not know: skip it
    }
    offset = nid_offset + header.nidl;
  }
  return ids;
}

std::optional<std::size_t> AppendNamespaceIdDescriptor(std::span<std::byte> out, std::size_t offset, NidType type,
                                                       std::span<const std::uint8_t> nid) {
  const std::size_t total = sizeof(NamespaceIdDescriptorHeader) + nid.size();
  if (nid.empty() || nid.size() > 0xFF || offset > out.size() || out.size() - offset < total) return std::nullopt;
  NamespaceIdDescriptorHeader header{};
  header.nidt = static_cast<std::uint8_t>(type);
  header.nidl = static_cast<std::uint8_t>(nid.size());
  wire::Store(out, header, offset);
  std::memcpy(out.data() + offset + sizeof(header), nid.data(), nid.size());
  return offset + total;
}

}  // namespace mpath::nvme::spec
