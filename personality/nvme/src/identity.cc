// Identify Controller, Identify Namespace and the descriptor list, reduced to what multipath needs. Every decode is
// bounded by the bytes that arrived; a field that no controller may report fails with the field's name and value, so
// that an operator reading the log knows which controller lied and how.
#include "mpath/nvme/identity.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <limits>
#include <string>
#include <string_view>

#include "mpath/nvme/spec/common.h"
#include "mpath/nvme/spec/log_ana.h"
#include "mpath/nvme/spec/nvm_io.h"
#include "mpath/proto/wire.h"

namespace mpath::nvme {
namespace {

// NVM Command Set Specification 1.0c §4.1.5.1 (LBA Format Data Structure, LBADS): "a value smaller than 9 (512
// bytes) is not supported"; the host side caps block sizes at 64 KiB as Linux does.
constexpr std::uint8_t kMinLbads = 9;
constexpr std::uint8_t kMaxLbads = 16;
// MDTS is in units of the minimum memory page, which over fabrics is 4 KiB.
constexpr std::uint32_t kMinimumPageBytes = 4096;
// The largest power of two an uint32_t holds: an MDTS beyond it is no limit a command could reach.
constexpr unsigned kMaxTransferShift = 31;

template <std::size_t N>
std::string Hex(const std::array<std::uint8_t, N>& bytes) {
  std::string out;
  out.reserve(2 * N);
  for (std::uint8_t b : bytes) fmt::format_to(std::back_inserter(out), "{:02x}", b);
  return out;
}

// RFC 4122 text form, bytes in the order the descriptor carries them.
std::string UuidText(const std::array<std::uint8_t, 16>& u) {
  const std::string hex = Hex(u);
  return fmt::format("{}-{}-{}-{}-{}", hex.substr(0, 8), hex.substr(8, 4), hex.substr(12, 4), hex.substr(16, 4),
                     hex.substr(20, 12));
}

bool IsAllZero(std::span<const std::byte> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
}

// The NQN becomes part of every identity key and of log lines: control characters in it are corruption, not a name.
std::optional<std::size_t> FirstControlCharacter(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F) return i;
  }
  return std::nullopt;
}

// One identifier as the two sources report it: a value from Identify Namespace and one from the descriptor list,
// all-zero meaning "not reported" in both (as Linux treats them).
template <std::size_t N>
Result<std::optional<std::array<std::uint8_t, N>>> Reconcile(std::string_view what,
                                                            const std::optional<std::array<std::uint8_t, N>>& listed,
                                                            const std::array<std::uint8_t, N>& identified) {
  const bool from_list = listed.has_value() && !spec::IsAllZero(*listed);
  const bool from_identify = !spec::IsAllZero(identified);
  if (from_list && from_identify && *listed != identified) {
    return MakeError(Errc::kTargetError,
                     fmt::format("the namespace identification descriptor list reports {} {} but Identify Namespace "
                                 "reports {}",
                                 what, Hex(*listed), Hex(identified)));
  }
  if (from_list) return *listed;
  if (from_identify) return identified;
  return std::nullopt;
}

}  // namespace

std::uint64_t ControllerSummary::AnaLogBytes() const {
  if (!ana_reporting) return 0;
  return spec::AnaLogSize(nanagrpid, mnan != 0 ? mnan : nn);
}

std::uint32_t ControllerSummary::MaxTransferBytes() const {
  if (mdts == 0) return 0;
  // 4 KiB is 2^12, so MDTS 19 is the last exponent that fits; larger ones cap at 2 GiB rather than wrap.
  const unsigned shift = std::min<unsigned>(12u + mdts, kMaxTransferShift);
  static_assert(kMinimumPageBytes == 1u << 12);
  return std::uint32_t{1} << shift;
}

Result<ControllerSummary> ParseIdentifyController(std::span<const std::byte> bytes) {
  const auto id = wire::Load<spec::IdentifyController>(bytes);
  if (!id) {
    return MakeError(Errc::kTargetError, fmt::format("Identify Controller data is {} bytes, {} expected", bytes.size(),
                                                     spec::kIdentifyDataSize));
  }
  ControllerSummary out;
  out.subnqn = spec::TrimmedText(id->subnqn);
  if (out.subnqn.empty()) return MakeError(Errc::kTargetError, "Identify Controller reports an empty SUBNQN");
  if (const auto bad = FirstControlCharacter(out.subnqn)) {
    return MakeError(Errc::kTargetError,
                     fmt::format("Identify Controller SUBNQN holds control character {:#04x} at offset {}",
                                 static_cast<unsigned char>(out.subnqn[*bad]), *bad));
  }
  out.cntlid = id->cntlid.value();
  out.model = spec::TrimmedText(id->mn);
  out.serial = spec::TrimmedText(id->sn);
  out.firmware = spec::TrimmedText(id->fr);
  out.multi_controller = id->multiple_controllers();
  out.ana_reporting = id->ana_reporting();
  out.ana_change_notices = id->ana_change_notices();
  out.namespace_attribute_notices = id->namespace_attribute_notices();
  out.anatt_secs = out.ana_reporting ? id->anatt : 0;
  out.anacap = id->anacap;
  out.anagrpmax = id->anagrpmax.value();
  out.nanagrpid = id->nanagrpid.value();
  out.mnan = id->mnan.value();
  out.nn = id->nn.value();
  out.aerl = id->aerl;
  out.mdts = id->mdts;
  out.retry_delays = {id->crdt1.value(), id->crdt2.value(), id->crdt3.value()};
  out.write_zeroes = id->supports_write_zeroes();
  out.dataset_management = id->supports_dataset_management();
  out.reservations = id->supports_reservations();
  out.volatile_write_cache = wire::GetBit<0>(id->vwc);
  out.extended_log_data = wire::GetBit<spec::lpa::kExtendedData>(id->lpa);
  // Base 2.0c §5.17.2.1: with ANARS set, NANAGRPID "shall be a non-zero value"; a log sized from zero groups could
  // never hold a state, so the engine would read nothing it can act on.
  if (out.ana_reporting && out.nanagrpid == 0) {
    return MakeError(Errc::kTargetError, "Identify Controller reports ANA (CMIC bit 3) but NANAGRPID is 0");
  }
  return out;
}

std::string_view Name(NamespaceIdKind kind) {
  switch (kind) {
    case NamespaceIdKind::kNguid: return "NGUID";
    case NamespaceIdKind::kEui64: return "EUI-64";
    case NamespaceIdKind::kUuid: return "UUID";
    case NamespaceIdKind::kNone: return "none";
    default: return "unknown";
  }
}

DeviceIdentity NamespaceIdentity::ToDeviceIdentity() const {
  if (kind == NamespaceIdKind::kNone || designator.empty()) return DeviceIdentity();
  return DeviceIdentity(fmt::format("{}@{}/ns{}", designator, subnqn, nsid));
}

Result<NamespaceSummary> ParseIdentifyNamespace(std::uint32_t nsid, std::span<const std::byte> bytes) {
  const auto id = wire::Load<spec::IdentifyNamespace>(bytes);
  if (!id) {
    return MakeError(Errc::kTargetError, fmt::format("Identify Namespace data for NSID {} is {} bytes, {} expected",
                                                     nsid, bytes.size(), spec::kIdentifyDataSize));
  }
  // Base 2.0c §5.17.2.1 (CNS 00h): an inactive NSID of a valid range answers with a zero-filled structure.
  if (IsAllZero(bytes.first(spec::kIdentifyDataSize))) {
    return MakeError(Errc::kNotFound, fmt::format("NSID {} is not active (Identify Namespace is all zero)", nsid));
  }
  const std::uint8_t format = id->format_index();
  if (format > id->nlbaf) {
    return MakeError(Errc::kTargetError,
                     fmt::format("Identify Namespace for NSID {}: FLBAS {:#04x} selects LBA format {}, but NLBAF "
                                 "lists formats 0..{}",
                                 nsid, id->flbas, format, id->nlbaf));
  }
  const std::uint8_t lbads = id->lbaf[format].lbads;
  if (lbads < kMinLbads || lbads > kMaxLbads) {
    return MakeError(Errc::kTargetError,
                     fmt::format("Identify Namespace for NSID {}: LBA format {} has LBADS {}, outside {}..{}", nsid,
                                 format, lbads, kMinLbads, kMaxLbads));
  }
  NamespaceSummary out;
  out.nsid = nsid;
  out.nsze = id->nsze.value();
  out.block_size = std::uint32_t{1} << lbads;
  if (out.nsze > std::numeric_limits<std::uint64_t>::max() >> lbads) {
    return MakeError(Errc::kTargetError,
                     fmt::format("Identify Namespace for NSID {}: NSZE {} blocks of {} bytes exceeds 2^64 bytes", nsid,
                                 out.nsze, out.block_size));
  }
  out.shared = id->shared();
  out.anagrpid = id->anagrpid.value();
  out.rescap = id->rescap;
  out.nguid = id->nguid;
  out.eui64 = id->eui64;
  return out;
}

Result<NamespaceIdentity> ChooseNamespaceIdentity(const ControllerSummary& controller, const NamespaceSummary& ns,
                                                  const std::optional<spec::NamespaceIdentifiers>& descriptors) {
  if (controller.subnqn.empty()) {
    return MakeError(Errc::kInvalidArgument, "the controller has no SUBNQN to scope the namespace identity by");
  }
  if (ns.nsid == 0) return MakeError(Errc::kInvalidArgument, "the namespace has NSID 0");
  const spec::NamespaceIdentifiers none;
  const spec::NamespaceIdentifiers& listed = descriptors ? *descriptors : none;
  // Both pairs are checked even when the first decides: a controller whose two sources disagree on any identifier
  // cannot be trusted with either.
  auto nguid = Reconcile("NGUID", listed.nguid, ns.nguid);
  if (!nguid) return std::unexpected(std::move(nguid).error());
  auto eui64 = Reconcile("EUI-64", listed.eui64, ns.eui64);
  if (!eui64) return std::unexpected(std::move(eui64).error());

  NamespaceIdentity out;
  out.subnqn = controller.subnqn;
  out.nsid = ns.nsid;
  if (*nguid) {
    out.kind = NamespaceIdKind::kNguid;
    out.designator = "nguid." + Hex(**nguid);
  } else if (*eui64) {
    out.kind = NamespaceIdKind::kEui64;
    out.designator = "eui." + Hex(**eui64);
  } else if (listed.uuid && !spec::IsAllZero(*listed.uuid)) {
    out.kind = NamespaceIdKind::kUuid;
    out.designator = "uuid." + UuidText(*listed.uuid);
  } else {
    out.reason = descriptors
                     ? fmt::format("NSID {} reports no NGUID, EUI-64 or UUID", ns.nsid)
                     : fmt::format("NSID {} reports neither NGUID nor EUI-64 in Identify Namespace, and the controller "
                                   "refused the namespace identification descriptor list (where a UUID would be)",
                                   ns.nsid);
  }
  return out;
}

DeviceInfo ToDeviceInfo(const ControllerSummary& controller, const NamespaceSummary& ns,
                        const NamespaceIdentity& identity) {
  DeviceInfo info;
  info.identity = identity.ToDeviceIdentity();
  info.reports_access_states = controller.multi_controller && ns.shared;
  info.capacity_bytes = ns.nsze * ns.block_size;
  info.block_size = ns.block_size;
  // Read, Write and Write Zeroes count blocks in a 16-bit NLB; reads and writes are also bound by MDTS. A Dataset
  // Management range counts 32 bits, so the NLB bound is the tighter of the two zeroing commands.
  const std::uint64_t per_command = std::uint64_t{spec::kMaxBlocksPerCommand} * ns.block_size;
  const std::uint64_t mdts = controller.MaxTransferBytes();
  const std::uint64_t transfer = mdts == 0 ? per_command : std::min(per_command, mdts);
  // 65536 blocks of 64 KiB do not fit 32 bits: the cap is the most whole blocks that do, so it neither wraps to 0
  // ("no limit") nor ends mid-block.
  constexpr std::uint64_t kMaxBytes = std::numeric_limits<std::uint32_t>::max();
  const std::uint64_t cap = ns.block_size == 0 ? 0 : kMaxBytes - kMaxBytes % ns.block_size;
  info.max_transfer_bytes = static_cast<std::uint32_t>(std::min(transfer, cap));
  info.max_zeroing_bytes = per_command;
  return info;
}

}  // namespace mpath::nvme
