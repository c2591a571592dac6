// The Identify command and the four data structures the NVMe personality reads: the controller (CNS 01h), a
// namespace (CNS 00h), the active namespace list (CNS 02h) and the namespace identification descriptors (CNS 03h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "mpath/core/error.h"
#include "mpath/nvme/spec/common.h"
#include "mpath/nvme/spec/queue_entries.h"
#include "mpath/proto/wire.h"

namespace mpath::nvme::spec {

// Every Identify data structure is one 4 KiB page.
inline constexpr std::size_t kIdentifyDataSize = 4096;

// NVM Express Base Specification 2.0c §5.17 "Identify command" ("Identify – CNS Values").
enum class Cns : std::uint8_t {
  kNamespace = 0x00,
  kController = 0x01,
  kActiveNamespaceList = 0x02,
  kNamespaceIdentificationDescriptors = 0x03,
  kNvmSetList = 0x04,
  kIoCommandSetNamespace = 0x05,
  kIoCommandSetController = 0x06,
  kIoCommandSetActiveNamespaceList = 0x07,
  kIoCommandSetIndependentNamespace = 0x08,
};

// NVM Express Base Specification 2.0c §5.17 "Identify command" ("Identify – Command Dword 10", "– Command Dword 11").
struct IdentifyFields {
  Cns cns = Cns::kNamespace;
  std::uint16_t cntid = 0;   // CDW10 bits 31:16
  std::uint16_t cnssid = 0;  // CDW11 bits 15:0
  std::uint8_t csi = 0;      // CDW11 bits 31:24
  std::uint32_t nsid = 0;
};

// An Identify SQE; the transport fills CID and the data pointer. The reply is kIdentifyDataSize bytes.
[[nodiscard]] SubmissionQueueEntry MakeIdentify(Cns cns, std::uint32_t nsid = 0, std::uint16_t cntid = 0,
                                                std::uint8_t csi = 0);
[[nodiscard]] IdentifyFields DecodeIdentify(const SubmissionQueueEntry& sqe);

// Bit numbers of Identify Controller fields, as the spec numbers them.
namespace cmic {
inline constexpr unsigned kMultiplePorts = 0;        // MPORTS
inline constexpr unsigned kMultipleControllers = 1;  // MCTRS
inline constexpr unsigned kSrIov = 2;
inline constexpr unsigned kAnaReporting = 3;         // ANARS
}  // namespace cmic
namespace oaes {
inline constexpr unsigned kNamespaceAttributeNotices = 8;
inline constexpr unsigned kFirmwareActivationNotices = 9;
inline constexpr unsigned kAnaChangeNotices = 11;
}  // namespace oaes
namespace oncs {
inline constexpr unsigned kCompare = 0;
inline constexpr unsigned kWriteUncorrectable = 1;
inline constexpr unsigned kDatasetManagement = 2;
inline constexpr unsigned kWriteZeroes = 3;
inline constexpr unsigned kSaveAndSelectInFeatures = 4;
inline constexpr unsigned kReservations = 5;
inline constexpr unsigned kTimestamp = 6;
inline constexpr unsigned kVerify = 7;
inline constexpr unsigned kCopy = 8;
}  // namespace oncs
namespace anacap {
inline constexpr unsigned kReportsOptimized = 0;
inline constexpr unsigned kReportsNonOptimized = 1;
inline constexpr unsigned kReportsInaccessible = 2;
inline constexpr unsigned kReportsPersistentLoss = 3;
inline constexpr unsigned kReportsChange = 4;
inline constexpr unsigned kGroupIdDoesNotChange = 6;
inline constexpr unsigned kNonZeroGroupIdInNamespaceManagement = 7;
}  // namespace anacap
namespace ctratt {
inline constexpr unsigned kHostIdentifier128Bit = 0;  // HIDS
}  // namespace ctratt
namespace lpa {
inline constexpr unsigned kExtendedData = 2;  // NUMDU and the log page offset are honoured
}  // namespace lpa

// NVM Express Base Specification 2.0c §5.17.2.1 "Identify Controller Data Structure" ("Identify – Identify Controller
// Data Structure, I/O Command Set Independent", Figure 275).
struct IdentifyController {
  Le16 vid;                            // PCI vendor ID
  Le16 ssvid;                          // PCI subsystem vendor ID
  std::array<char, 20> sn;             // serial number, ASCII, space padded
  std::array<char, 40> mn;             // model number
  std::array<char, 8> fr;              // firmware revision
  std::uint8_t rab;                    // recommended arbitration burst
  std::array<std::uint8_t, 3> ieee;    // IEEE OUI
  std::uint8_t cmic;                   // multi-path I/O and namespace sharing capabilities
  std::uint8_t mdts;                   // maximum data transfer size, 2^n minimum memory pages; 0: no limit
  Le16 cntlid;
  Le32 ver;                            // MJR 31:16, MNR 15:8, TER 7:0
  Le32 rtd3r;
  Le32 rtd3e;
  Le32 oaes;                           // optional asynchronous events supported
  Le32 ctratt;
  Le16 rrls;
  std::uint8_t reserved102[9];
  std::uint8_t cntrltype;              // 1: I/O controller
  std::array<std::uint8_t, 16> fguid;
  Le16 crdt1;
  Le16 crdt2;
  Le16 crdt3;
  std::uint8_t reserved134[119];
  std::uint8_t nvmsr;
  std::uint8_t vwci;
  std::uint8_t mec;
  Le16 oacs;                           // optional admin command support
  std::uint8_t acl;                    // abort command limit, 0-based
  std::uint8_t aerl;                   // asynchronous event request limit, 0-based
  std::uint8_t frmw;
  std::uint8_t lpa;                    // log page attributes
  std::uint8_t elpe;                   // error log page entries, 0-based
  std::uint8_t npss;
  std::uint8_t avscc;
  std::uint8_t apsta;
  Le16 wctemp;
  Le16 cctemp;
  Le16 mtfa;
  Le32 hmpre;
  Le32 hmmin;
  Le128 tnvmcap;
  Le128 unvmcap;
  Le32 rpmbs;
  Le16 edstt;
  std::uint8_t dsto;
  std::uint8_t fwug;
  Le16 kas;                            // keep alive granularity, 100 ms units
  Le16 hctma;
  Le16 mntmt;
  Le16 mxtmt;
  Le32 sanicap;
  Le32 hmminds;
  Le16 hmmaxd;
  Le16 nsetidmax;
  Le16 endgidmax;
  std::uint8_t anatt;                  // ANA transition time, seconds
  std::uint8_t anacap;
  Le32 anagrpmax;
  Le32 nanagrpid;
  Le32 pels;
  Le16 domainid;
  std::uint8_t reserved358[10];
  Le128 megcap;
  std::uint8_t reserved384[128];
  std::uint8_t sqes;
  std::uint8_t cqes;
  Le16 maxcmd;
  Le32 nn;                             // number of namespaces: the highest valid NSID
  Le16 oncs;                           // optional NVM command support
  Le16 fuses;
  std::uint8_t fna;
  std::uint8_t vwc;                    // bit 0 present; bits 2:1 broadcast Flush behaviour
  Le16 awun;
  Le16 awupf;
  std::uint8_t icsvscc;
  std::uint8_t nwpc;
  Le16 acwu;
  Le16 ocfs;
  Le32 sgls;
  Le32 mnan;                           // maximum number of allowed namespaces
  Le128 maxdna;
  Le32 maxcna;
  std::uint8_t reserved564[204];
  std::array<char, 256> subnqn;        // NVM subsystem NQN, UTF-8, NUL padded
  std::uint8_t reserved1024[768];
  Le32 ioccsz;                         // fabrics: I/O queue command capsule size, 16-byte units
  Le32 iorcsz;                         // fabrics: I/O queue response capsule size
  Le16 icdoff;
  std::uint8_t fcatt;                  // bit 0 clear: dynamic controller model
  std::uint8_t msdbd;
  Le16 ofcs;
  std::uint8_t reserved1806[242];
  std::uint8_t psd[1024];              // power state descriptors 0..31
  std::uint8_t vendor_specific[1024];

  [[nodiscard]] constexpr bool multiple_ports() const { return wire::GetBit<cmic::kMultiplePorts>(cmic); }
  [[nodiscard]] constexpr bool multiple_controllers() const { return wire::GetBit<cmic::kMultipleControllers>(cmic); }
  [[nodiscard]] constexpr bool ana_reporting() const { return wire::GetBit<cmic::kAnaReporting>(cmic); }
  [[nodiscard]] constexpr bool ana_change_notices() const { return wire::GetBit<oaes::kAnaChangeNotices>(oaes.value()); }
  [[nodiscard]] constexpr bool namespace_attribute_notices() const {
    return wire::GetBit<oaes::kNamespaceAttributeNotices>(oaes.value());
  }
  [[nodiscard]] constexpr bool supports_write_zeroes() const { return wire::GetBit<oncs::kWriteZeroes>(oncs.value()); }
  [[nodiscard]] constexpr bool supports_dataset_management() const {
    return wire::GetBit<oncs::kDatasetManagement>(oncs.value());
  }
  [[nodiscard]] constexpr bool supports_reservations() const { return wire::GetBit<oncs::kReservations>(oncs.value()); }
  [[nodiscard]] constexpr std::uint16_t version_major() const {
    return static_cast<std::uint16_t>(wire::GetBits<31, 16>(ver.value()));
  }
  [[nodiscard]] constexpr std::uint8_t version_minor() const {
    return static_cast<std::uint8_t>(wire::GetBits<15, 8>(ver.value()));
  }
  // Largest transfer in bytes for a controller whose minimum memory page is `page_bytes` (CAP.MPSMIN; 4 KiB over
  // fabrics); 0 when MDTS sets no limit.
  [[nodiscard]] constexpr std::uint64_t max_transfer_bytes(std::uint64_t page_bytes = 4096) const {
    return mdts == 0 ? 0 : page_bytes << mdts;
  }
};
MPATH_WIRE_LAYOUT(IdentifyController, 4096);
MPATH_WIRE_FIELD(IdentifyController, sn, 4);
MPATH_WIRE_FIELD(IdentifyController, mn, 24);
MPATH_WIRE_FIELD(IdentifyController, fr, 64);
MPATH_WIRE_FIELD(IdentifyController, cmic, 76);
MPATH_WIRE_FIELD(IdentifyController, mdts, 77);
MPATH_WIRE_FIELD(IdentifyController, cntlid, 78);
MPATH_WIRE_FIELD(IdentifyController, ver, 80);
MPATH_WIRE_FIELD(IdentifyController, oaes, 92);
MPATH_WIRE_FIELD(IdentifyController, ctratt, 96);
MPATH_WIRE_FIELD(IdentifyController, cntrltype, 111);
MPATH_WIRE_FIELD(IdentifyController, oacs, 256);
MPATH_WIRE_FIELD(IdentifyController, aerl, 259);
MPATH_WIRE_FIELD(IdentifyController, lpa, 261);
MPATH_WIRE_FIELD(IdentifyController, tnvmcap, 280);
MPATH_WIRE_FIELD(IdentifyController, kas, 320);
MPATH_WIRE_FIELD(IdentifyController, anatt, 342);
MPATH_WIRE_FIELD(IdentifyController, anacap, 343);
MPATH_WIRE_FIELD(IdentifyController, anagrpmax, 344);
MPATH_WIRE_FIELD(IdentifyController, nanagrpid, 348);
MPATH_WIRE_FIELD(IdentifyController, megcap, 368);
MPATH_WIRE_FIELD(IdentifyController, sqes, 512);
MPATH_WIRE_FIELD(IdentifyController, nn, 516);
MPATH_WIRE_FIELD(IdentifyController, oncs, 520);
MPATH_WIRE_FIELD(IdentifyController, vwc, 525);
MPATH_WIRE_FIELD(IdentifyController, sgls, 536);
MPATH_WIRE_FIELD(IdentifyController, mnan, 540);
MPATH_WIRE_FIELD(IdentifyController, maxcna, 560);
MPATH_WIRE_FIELD(IdentifyController, subnqn, 768);
MPATH_WIRE_FIELD(IdentifyController, ioccsz, 1792);
MPATH_WIRE_FIELD(IdentifyController, msdbd, 1803);
MPATH_WIRE_FIELD(IdentifyController, psd, 2048);
MPATH_WIRE_FIELD(IdentifyController, vendor_specific, 3072);

// NVM Command Set Specification 1.0c §4.1.5.1 "NVM Command Set Identify Namespace Data Structure" ("LBA Format Data
// Structure, NVM Command Set Specific").
struct LbaFormat {
  Le16 ms;            // metadata bytes per logical block
  std::uint8_t lbads; // logical block size as a power of two; 0: format not available
  std::uint8_t rp;    // relative performance, bits 1:0

  [[nodiscard]] constexpr std::uint64_t block_size() const { return lbads == 0 ? 0 : std::uint64_t{1} << lbads; }
};
MPATH_WIRE_LAYOUT(LbaFormat, 4);
MPATH_WIRE_FIELD(LbaFormat, lbads, 2);

// Bit numbers of Identify Namespace fields.
namespace nmic {
inline constexpr unsigned kSharedNamespace = 0;  // SHRNS
}  // namespace nmic
namespace rescap {
inline constexpr unsigned kPersistThroughPowerLoss = 0;
inline constexpr unsigned kWriteExclusive = 1;
inline constexpr unsigned kExclusiveAccess = 2;
inline constexpr unsigned kWriteExclusiveRegistrantsOnly = 3;
inline constexpr unsigned kExclusiveAccessRegistrantsOnly = 4;
inline constexpr unsigned kWriteExclusiveAllRegistrants = 5;
inline constexpr unsigned kExclusiveAccessAllRegistrants = 6;
inline constexpr unsigned kIgnoreExistingKeyRev13 = 7;  // IEKEY_x13: IEKEY as revision 1.3 and later define it
}  // namespace rescap

// NVM Command Set Specification 1.0c §4.1.5.1 "NVM Command Set Identify Namespace Data Structure" (CNS 00h).
struct IdentifyNamespace {
  Le64 nsze;           // namespace size, logical blocks
  Le64 ncap;           // namespace capacity
  Le64 nuse;           // namespace utilization
  std::uint8_t nsfeat;
  std::uint8_t nlbaf;  // number of LBA formats, 0-based
  std::uint8_t flbas;  // formatted LBA size: format index bits 3:0 (low) and 6:5 (high)
  std::uint8_t mc;
  std::uint8_t dpc;
  std::uint8_t dps;
  std::uint8_t nmic;   // namespace multi-path I/O and sharing capabilities
  std::uint8_t rescap; // reservation capabilities
  std::uint8_t fpi;
  std::uint8_t dlfeat; // deallocate logical block features: bits 2:0 what a deallocated block reads as
  Le16 nawun;
  Le16 nawupf;
  Le16 nacwu;
  Le16 nabsn;
  Le16 nabo;
  Le16 nabspf;
  Le16 noiob;
  Le128 nvmcap;        // NVM capacity, bytes
  Le16 npwg;
  Le16 npwa;
  Le16 npdg;
  Le16 npda;
  Le16 nows;
  Le16 mssrl;
  Le32 mcl;
  std::uint8_t msrc;
  std::uint8_t reserved81;
  std::uint8_t nulbaf;
  std::uint8_t reserved83[9];
  Le32 anagrpid;       // ANA group identifier
  std::uint8_t reserved96[3];
  std::uint8_t nsattr;
  Le16 nvmsetid;
  Le16 endgid;
  std::array<std::uint8_t, 16> nguid;  // namespace globally unique identifier; zero: not reported
  std::array<std::uint8_t, 8> eui64;   // IEEE extended unique identifier; zero: not reported
  std::array<LbaFormat, 64> lbaf;
  std::uint8_t vendor_specific[3712];

  [[nodiscard]] constexpr bool shared() const { return wire::GetBit<nmic::kSharedNamespace>(nmic); }
  [[nodiscard]] constexpr std::uint8_t format_index() const {
    return static_cast<std::uint8_t>(wire::GetBits<3, 0>(flbas) | (wire::GetBits<6, 5>(flbas) << 4));
  }
  // Logical block size of the formatted LBA format; 0 when the index is out of range.
  [[nodiscard]] constexpr std::uint64_t block_size() const {
    std::uint8_t index = format_index();
    return index < lbaf.size() ? lbaf[index].block_size() : 0;
  }
};
MPATH_WIRE_LAYOUT(IdentifyNamespace, 4096);
MPATH_WIRE_FIELD(IdentifyNamespace, nsfeat, 24);
MPATH_WIRE_FIELD(IdentifyNamespace, flbas, 26);
MPATH_WIRE_FIELD(IdentifyNamespace, nmic, 30);
MPATH_WIRE_FIELD(IdentifyNamespace, rescap, 31);
MPATH_WIRE_FIELD(IdentifyNamespace, dlfeat, 33);
MPATH_WIRE_FIELD(IdentifyNamespace, nvmcap, 48);
MPATH_WIRE_FIELD(IdentifyNamespace, mcl, 76);
MPATH_WIRE_FIELD(IdentifyNamespace, anagrpid, 92);
MPATH_WIRE_FIELD(IdentifyNamespace, nsattr, 99);
MPATH_WIRE_FIELD(IdentifyNamespace, nguid, 104);
MPATH_WIRE_FIELD(IdentifyNamespace, eui64, 120);
MPATH_WIRE_FIELD(IdentifyNamespace, lbaf, 128);
MPATH_WIRE_FIELD(IdentifyNamespace, vendor_specific, 384);

// NVM Express Base Specification 2.0c §5.17.2.2 "Active Namespace ID list" (CNS 02h): up to 1024 NSIDs greater than
// the command's NSID, increasing, zero padded.
inline constexpr std::size_t kMaxNamespaceListEntries = kIdentifyDataSize / 4;
// The NSIDs of an active namespace list, stopping at the first zero entry or at the end of `bytes`.
[[nodiscard]] std::vector<std::uint32_t> ParseNamespaceList(std::span<const std::byte> bytes);

// NVM Express Base Specification 2.0c §5.17.2.3 "Namespace Identification Descriptor list" ("Namespace
// Identification Descriptor", and the "Namespace Identifier Type Values" it names).
enum class NidType : std::uint8_t {
  kEui64 = 0x1,  // NIDL 8
  kNguid = 0x2,  // NIDL 16
  kUuid = 0x3,   // NIDL 16
  kCsi = 0x4,    // NIDL 1: command set identifier, 0 for the NVM command set
};

struct NamespaceIdDescriptorHeader {
  std::uint8_t nidt;
  std::uint8_t nidl;  // length of the NID that follows; 0 ends the list
  std::uint8_t reserved[2];
};
MPATH_WIRE_LAYOUT(NamespaceIdDescriptorHeader, 4);
MPATH_WIRE_FIELD(NamespaceIdDescriptorHeader, nidl, 1);

// The NID length the spec fixes for `type` (0 for a type it does not define).
[[nodiscard]] constexpr std::uint8_t NidLength(NidType type) {
  switch (type) {
    case NidType::kEui64: return 8;
    case NidType::kNguid: return 16;
    case NidType::kUuid: return 16;
    case NidType::kCsi: return 1;
    default: return 0;
  }
}

// What a descriptor list reports. Types that the list does not carry stay empty.
struct NamespaceIdentifiers {
  std::optional<std::array<std::uint8_t, 8>> eui64;
  std::optional<std::array<std::uint8_t, 16>> nguid;
  std::optional<std::array<std::uint8_t, 16>> uuid;
  std::optional<std::uint8_t> csi;
};

// Walks a descriptor list within `bytes` (normally kIdentifyDataSize). Unknown types are skipped, as the spec tells
// hosts to. Fails when a descriptor runs past `bytes`, a known type has the wrong length, or a type repeats.
[[nodiscard]] Result<NamespaceIdentifiers> ParseNamespaceIdDescriptors(std::span<const std::byte> bytes);

// Appends one descriptor at `offset` of `out`; returns the offset after it, or nullopt (nothing written) when it does
// not fit.
[[nodiscard]] std::optional<std::size_t> AppendNamespaceIdDescriptor(std::span<std::byte> out, std::size_t offset,
                                                                    NidType type,
                                                                    std::span<const std::uint8_t> nid);

}  // namespace mpath::nvme::spec
