// The NVMe wire headers against bytes written out by hand from the spec: builders put each field at its spec
// offset and bit, decoders read them back, and the parsers stay inside the bytes they are given.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

#include "mpath/nvme/spec/async_event.h"
#include "mpath/nvme/spec/common.h"
#include "mpath/nvme/spec/features.h"
#include "mpath/nvme/spec/identify.h"
#include "mpath/nvme/spec/log_ana.h"
#include "mpath/nvme/spec/log_page.h"
#include "mpath/nvme/spec/nvm_io.h"
#include "mpath/nvme/spec/opcodes.h"
#include "mpath/nvme/spec/queue_entries.h"
#include "mpath/nvme/spec/reservations.h"
#include "mpath/nvme/spec/status.h"

namespace mpath::nvme::spec {
namespace {

std::array<std::uint8_t, 64> Bytes(const SubmissionQueueEntry& sqe) {
  std::array<std::uint8_t, 64> out{};
  std::memcpy(out.data(), &sqe, sizeof(sqe));
  return out;
}

// The four little-endian bytes at `offset`.
std::array<std::uint8_t, 4> Dword(const std::array<std::uint8_t, 64>& bytes, std::size_t offset) {
  return {bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3]};
}

using Dw = std::array<std::uint8_t, 4>;

// A little-endian byte buffer built up field by field, as a target would send it.
class Buffer {
 public:
  Buffer& U8(std::uint8_t v) { bytes_.push_back(std::byte{v}); return *this; }
  Buffer& U16(std::uint16_t v) { return U8(v & 0xFF).U8(v >> 8); }
  Buffer& U32(std::uint32_t v) { return U16(v & 0xFFFF).U16(v >> 16); }
  Buffer& U64(std::uint64_t v) { return U32(static_cast<std::uint32_t>(v)).U32(static_cast<std::uint32_t>(v >> 32)); }
  Buffer& Zeros(std::size_t n) { bytes_.insert(bytes_.end(), n, std::byte{0}); return *this; }
  Buffer& Raw(std::initializer_list<std::uint8_t> v) {
    for (auto b : v) U8(b);
    return *this;
  }
  [[nodiscard]] std::span<const std::byte> span() const { return bytes_; }
  [[nodiscard]] std::span<const std::byte> first(std::size_t n) const { return span().first(n); }
  [[nodiscard]] std::size_t size() const { return bytes_.size(); }

 private:
  std::vector<std::byte> bytes_;
};

// --- Builders and decoders.

TEST(NvmeSpecBuilders, ReadPutsSlbaNlbAndFuaAtTheirBits) {
  const SubmissionQueueEntry sqe = MakeRead(7, 0x1122'3344'5566'7788, 8, ForceUnitAccess::kYes);
  const auto b = Bytes(sqe);
  EXPECT_EQ(b[0], 0x02);
  EXPECT_EQ(Dword(b, 4), (Dw{7, 0, 0, 0}));
  EXPECT_EQ(Dword(b, 40), (Dw{0x88, 0x77, 0x66, 0x55}));  // CDW10: SLBA low
  EXPECT_EQ(Dword(b, 44), (Dw{0x44, 0x33, 0x22, 0x11}));  // CDW11: SLBA high
  EXPECT_EQ(Dword(b, 48), (Dw{0x07, 0x00, 0x00, 0x40}));  // CDW12: NLB 7 (0-based), FUA bit 30
  const ReadWriteFields f = DecodeReadWrite(sqe);
  EXPECT_EQ(f.slba, 0x1122'3344'5566'7788u);
  EXPECT_EQ(f.nlb, 7);
  EXPECT_EQ(f.block_count(), 8u);
  EXPECT_TRUE(f.fua);
  EXPECT_FALSE(f.deac);
}

TEST(NvmeSpecBuilders, WriteOfTheLargestCommandHasNlbFfff) {
  const auto b = Bytes(MakeWrite(1, 0, kMaxBlocksPerCommand));
  EXPECT_EQ(b[0], 0x01);
  EXPECT_EQ(Dword(b, 48), (Dw{0xFF, 0xFF, 0x00, 0x00}));
}

TEST(NvmeSpecBuilders, WriteZeroesCarriesDeacInBit25) {
  const SubmissionQueueEntry sqe = MakeWriteZeroes(2, 100, 1, Deallocate::kYes);
  const auto b = Bytes(sqe);
  EXPECT_EQ(b[0], 0x08);
  EXPECT_EQ(Dword(b, 48), (Dw{0x00, 0x00, 0x00, 0x02}));
  EXPECT_TRUE(DecodeReadWrite(sqe).deac);
}

TEST(NvmeSpecBuilders, FlushAndDeallocate) {
  const auto flush = Bytes(MakeFlush(kBroadcastNsid));
  EXPECT_EQ(flush[0], 0x00);
  EXPECT_EQ(Dword(flush, 4), (Dw{0xFF, 0xFF, 0xFF, 0xFF}));

  const SubmissionQueueEntry dsm = MakeDeallocate(3, 3);
  const auto b = Bytes(dsm);
  EXPECT_EQ(b[0], 0x09);
  EXPECT_EQ(Dword(b, 40), (Dw{0x02, 0, 0, 0}));  // NR, 0-based
  EXPECT_EQ(Dword(b, 44), (Dw{0x04, 0, 0, 0}));  // AD, bit 2
  const DatasetManagementFields f = DecodeDatasetManagement(dsm);
  EXPECT_EQ(f.range_count, 3);
  EXPECT_TRUE(f.deallocate);
  EXPECT_FALSE(f.integral_read);
  EXPECT_EQ(f.data_bytes(), 48u);
}

TEST(NvmeSpecBuilders, IdentifyPutsCnsCntidAndCsi) {
  const SubmissionQueueEntry sqe = MakeIdentify(Cns::kNamespaceIdentificationDescriptors, 5, 0x1234, 0x02);
  const auto b = Bytes(sqe);
  EXPECT_EQ(b[0], 0x06);
  EXPECT_EQ(Dword(b, 4), (Dw{5, 0, 0, 0}));
  EXPECT_EQ(Dword(b, 40), (Dw{0x03, 0x00, 0x34, 0x12}));
  EXPECT_EQ(Dword(b, 44), (Dw{0x00, 0x00, 0x00, 0x02}));
  const IdentifyFields f = DecodeIdentify(sqe);
  EXPECT_EQ(f.cns, Cns::kNamespaceIdentificationDescriptors);
  EXPECT_EQ(f.cntid, 0x1234);
  EXPECT_EQ(f.csi, 0x02);
  EXPECT_EQ(f.nsid, 5u);
}

TEST(NvmeSpecBuilders, GetLogPageSplitsNumdAndOffset) {
  // 1 MiB = 262144 dwords: NUMD 3FFFFh splits into NUMDL FFFFh and NUMDU 3h.
  const SubmissionQueueEntry sqe = MakeGetLogPage({.lid = LogPageId::kAsymmetricNamespaceAccess,
                                                   .nsid = kBroadcastNsid,
                                                   .length_bytes = 1u << 20,
                                                   .offset = 0x1'0000'0008,
                                                   .lsp = 1,
                                                   .rae = RetainAsyncEvent::kRetain});
  const auto b = Bytes(sqe);
  EXPECT_EQ(b[0], 0x02);
  EXPECT_EQ(Dword(b, 40), (Dw{0x0C, 0x81, 0xFF, 0xFF}));  // LID, LSP bit 8, RAE bit 15, NUMDL
  EXPECT_EQ(Dword(b, 44), (Dw{0x03, 0x00, 0x00, 0x00}));  // NUMDU
  EXPECT_EQ(Dword(b, 48), (Dw{0x08, 0x00, 0x00, 0x00}));  // LPOL
  EXPECT_EQ(Dword(b, 52), (Dw{0x01, 0x00, 0x00, 0x00}));  // LPOU
  const GetLogPageFields f = DecodeGetLogPage(sqe);
  EXPECT_EQ(f.lid, LogPageId::kAsymmetricNamespaceAccess);
  EXPECT_EQ(f.lsp, 1);
  EXPECT_EQ(f.rae, RetainAsyncEvent::kRetain);
  EXPECT_EQ(f.numd, 0x3FFFFu);
  EXPECT_EQ(f.length_bytes(), 1u << 20);
  EXPECT_EQ(f.offset, 0x1'0000'0008u);
}

TEST(NvmeSpecBuilders, AnaLogRequestSetsRgoAndRoundsLengthToDwords) {
  const GetLogPageFields groups_only = DecodeGetLogPage(MakeGetAnaLog(4098, AnaLogScope::kGroupsOnly));
  EXPECT_EQ(groups_only.lsp, 1);
  EXPECT_EQ(groups_only.numd, 1023u);
  EXPECT_EQ(groups_only.rae, RetainAsyncEvent::kClear);
  EXPECT_EQ(groups_only.nsid, kBroadcastNsid);
  EXPECT_EQ(DecodeGetLogPage(MakeGetAnaLog(2)).numd, 0u);  // never less than one dword
}

TEST(NvmeSpecBuilders, FeaturesCarryFidSaveAndSelect) {
  const SubmissionQueueEntry set = MakeSetFeatures(FeatureId::kAsynchronousEventConfiguration, 0x900, SaveFeature::kYes);
  auto b = Bytes(set);
  EXPECT_EQ(b[0], 0x09);
  EXPECT_EQ(Dword(b, 40), (Dw{0x0B, 0x00, 0x00, 0x80}));
  EXPECT_EQ(Dword(b, 44), (Dw{0x00, 0x09, 0x00, 0x00}));
  EXPECT_EQ(DecodeSetFeatures(set).save, SaveFeature::kYes);

  const SubmissionQueueEntry get = MakeGetFeatures(FeatureId::kKeepAliveTimer, FeatureSelect::kSupportedCapabilities);
  b = Bytes(get);
  EXPECT_EQ(b[0], 0x0A);
  EXPECT_EQ(Dword(b, 40), (Dw{0x0F, 0x03, 0x00, 0x00}));
  EXPECT_EQ(DecodeGetFeatures(get).select, FeatureSelect::kSupportedCapabilities);

  EXPECT_EQ((NumberOfQueues{0x3F, 0x7}.Encode()), 0x0007'003Fu);
  EXPECT_EQ(NumberOfQueues::Decode(0x0007'003F).completion_queues_0based, 7);
}

TEST(NvmeSpecBuilders, ReservationCommandDwords) {
  const SubmissionQueueEntry reg =
      MakeReservationRegister(1, RegisterAction::kReplace, IgnoreExistingKey::kYes, ChangePtpl::kSet);
  auto b = Bytes(reg);
  EXPECT_EQ(b[0], 0x0D);
  EXPECT_EQ(Dword(b, 40), (Dw{0x0A, 0x00, 0x00, 0xC0}));
  const ReservationRegisterFields rf = DecodeReservationRegister(reg);
  EXPECT_EQ(rf.action, 2);
  EXPECT_TRUE(rf.iekey);
  EXPECT_EQ(rf.cptpl, 3);

  const SubmissionQueueEntry acq = MakeReservationAcquire(1, AcquireAction::kPreemptAndAbort,
                                                          ReservationType::kExclusiveAccessAllRegistrants);
  b = Bytes(acq);
  EXPECT_EQ(b[0], 0x11);
  EXPECT_EQ(Dword(b, 40), (Dw{0x02, 0x06, 0x00, 0x00}));
  EXPECT_EQ(DecodeReservationAcquire(acq).rtype, 6);

  const SubmissionQueueEntry rel = MakeReservationRelease(1, ReleaseAction::kClear, ReservationType::kNone);
  b = Bytes(rel);
  EXPECT_EQ(b[0], 0x15);
  EXPECT_EQ(Dword(b, 40), (Dw{0x01, 0x00, 0x00, 0x00}));

  const SubmissionQueueEntry rep = MakeReservationReport(1, 4096);
  b = Bytes(rep);
  EXPECT_EQ(b[0], 0x0E);
  EXPECT_EQ(Dword(b, 40), (Dw{0xFF, 0x03, 0x00, 0x00}));
  EXPECT_EQ(Dword(b, 44), (Dw{0x01, 0x00, 0x00, 0x00}));  // EDS
  EXPECT_EQ(DecodeReservationReport(rep).length_bytes(), 4096u);
  EXPECT_EQ(DecodeReservationReport(MakeReservationReport(1, 64, ReportFormat::kCompact)).format,
            ReportFormat::kCompact);
}

TEST(NvmeSpecBuilders, AsyncEventRequestIsOpcodeCh) { EXPECT_EQ(Bytes(MakeAsyncEventRequest())[0], 0x0C); }

// --- Status.

TEST(NvmeSpecStatus, PathStatusWithMoreIsTheWireValueNvmetSends) {
  const Status s = MakeStatus(PathStatus::kAsymmetricAccessInaccessible, Dnr::kClear, More::kSet);
  EXPECT_EQ(s.field, 0x2302);
  EXPECT_EQ(s.code(), 0x302);
  EXPECT_TRUE(s.more());
  EXPECT_FALSE(s.dnr());
  EXPECT_TRUE(IsAsymmetricAccessError(s));
  EXPECT_TRUE(Is(s, PathStatus::kAsymmetricAccessInaccessible));

  CompletionQueueEntry cqe{};
  cqe.status_and_phase = 1;  // phase tag set
  cqe.set_status(s);
  std::array<std::uint8_t, 16> b{};
  std::memcpy(b.data(), &cqe, sizeof(cqe));
  EXPECT_EQ(b[14], 0x05);  // 0x2302 << 1 | phase
  EXPECT_EQ(b[15], 0x46);
  EXPECT_EQ(cqe.status(), s);
}

TEST(NvmeSpecStatus, DnrAndCodes) {
  const Status s = MakeStatus(GenericStatus::kLbaOutOfRange, Dnr::kSet);
  EXPECT_EQ(s.field, 0x4080);
  EXPECT_EQ(CodeOf(GenericStatus::kReservationConflict), 0x083);
  EXPECT_EQ(CodeOf(CommandSpecificStatus::kAsynchronousEventRequestLimitExceeded), 0x105);
  EXPECT_EQ(CodeOf(PathStatus::kAbortedByHost), 0x371);
  EXPECT_FALSE(IsAsymmetricAccessError(MakeStatus(PathStatus::kControllerPathingError)));
  EXPECT_FALSE(IsAsymmetricAccessError(MakeStatus(GenericStatus::kInvalidFieldInCommand)));
}

TEST(NvmeSpecStatus, Names) {
  struct Case {
    Status status;
    std::string_view name;
  };
  const Case cases[] = {
      {MakeStatus(GenericStatus::kSuccess), "Successful Completion"},
      {MakeStatus(GenericStatus::kInvalidCommandOpcode), "Invalid Command Opcode"},
      {MakeStatus(GenericStatus::kInvalidFieldInCommand, Dnr::kSet), "Invalid Field in Command"},
      {MakeStatus(GenericStatus::kDataTransferError), "Data Transfer Error"},
      {MakeStatus(GenericStatus::kInternalError), "Internal Error"},
      {MakeStatus(GenericStatus::kInvalidNamespaceOrFormat), "Invalid Namespace or Format"},
      {MakeStatus(GenericStatus::kLbaOutOfRange), "LBA Out of Range"},
      {MakeStatus(GenericStatus::kReservationConflict), "Reservation Conflict"},
      {MakeStatus(CommandSpecificStatus::kAsynchronousEventRequestLimitExceeded),
       "Asynchronous Event Request Limit Exceeded"},
      {MakeStatus(CommandSpecificStatus::kInvalidLogPage), "Invalid Log Page"},
      {MakeStatus(MediaStatus::kUnrecoveredReadError), "Unrecovered Read Error"},
      {MakeStatus(PathStatus::kInternalPathError), "Internal Path Error"},
      {MakeStatus(PathStatus::kAsymmetricAccessPersistentLoss), "Asymmetric Access Persistent Loss"},
      {MakeStatus(PathStatus::kAsymmetricAccessInaccessible), "Asymmetric Access Inaccessible"},
      {MakeStatus(PathStatus::kAsymmetricAccessTransition), "Asymmetric Access Transition"},
      {MakeStatus(PathStatus::kControllerPathingError), "Controller Pathing Error"},
      {MakeStatus(PathStatus::kHostPathingError), "Host Pathing Error"},
      {MakeStatus(PathStatus::kAbortedByHost), "Command Aborted By Host"},
      {Status::Of(kSctGeneric, 0x7E), "unknown"},
      {Status::Of(kSctPathRelated, 0x10), "unknown"},
      {Status::Of(0x5, 0x00), "unknown"},
  };
  for (const Case& c : cases) EXPECT_EQ(StatusName(c.status), c.name) << std::hex << c.status.field;
  EXPECT_EQ(StatusCodeTypeName(kSctPathRelated), "Path Related Status");
  EXPECT_EQ(Name(AdminOpcode::kAsynchronousEventRequest), "Asynchronous Event Request");
  EXPECT_EQ(Name(IoOpcode::kReservationAcquire), "Reservation Acquire");
  EXPECT_EQ(Name(static_cast<IoOpcode>(0x7E)), "unknown");
  EXPECT_EQ(Name(AnaState::kChange), "change");
  EXPECT_EQ(Name(ReservationType::kWriteExclusiveAllRegistrants), "Write Exclusive - All Registrants");
}

// --- Asynchronous events.

TEST(NvmeSpecAsyncEvent, NoticesEncodeTypeInfoAndLogPage) {
  EXPECT_EQ(kAnaChangeNotice.Encode(), 0x000C'0302u);
  EXPECT_EQ(kNamespaceAttributeChangedNotice.Encode(), 0x0004'0002u);
  const AsyncEvent e = AsyncEvent::Decode(0xFF0C'0302);  // reserved high bits ignored
  EXPECT_EQ(e, kAnaChangeNotice);
  EXPECT_TRUE(e.IsNotice(NoticeEvent::kAnaChange));
  EXPECT_FALSE(e.IsNotice(NoticeEvent::kNamespaceAttributeChanged));
}

// --- Identify.

TEST(NvmeSpecIdentify, ControllerAccessorsReadSpecBits) {
  IdentifyController id{};
  id.cmic = 0x0B;
  id.oaes = 0x900;
  id.oncs = 0x2C;
  id.ver = 0x0002'0100;
  id.mdts = 5;
  SetSpacePadded(id.mn, "Linux");
  SetNulPadded(id.subnqn, "nqn.2024-01.lab.interop:nvmet1");
  EXPECT_TRUE(id.multiple_ports());
  EXPECT_TRUE(id.multiple_controllers());
  EXPECT_TRUE(id.ana_reporting());
  EXPECT_TRUE(id.ana_change_notices());
  EXPECT_TRUE(id.namespace_attribute_notices());
  EXPECT_TRUE(id.supports_write_zeroes());
  EXPECT_TRUE(id.supports_dataset_management());
  EXPECT_TRUE(id.supports_reservations());
  EXPECT_EQ(id.version_major(), 2);
  EXPECT_EQ(id.version_minor(), 1);
  EXPECT_EQ(id.max_transfer_bytes(), 128u * 1024);
  EXPECT_EQ(TrimmedText(id.mn), "Linux");
  EXPECT_EQ(id.mn[5], ' ');
  EXPECT_EQ(TrimmedText(id.subnqn), "nqn.2024-01.lab.interop:nvmet1");

  const auto* raw = reinterpret_cast<const std::uint8_t*>(&id);
  EXPECT_EQ(raw[76], 0x0B);
  EXPECT_EQ(raw[93], 0x09);  // OAES bits 11 and 8 in its second byte
  EXPECT_EQ(raw[520], 0x2C);
  EXPECT_EQ(raw[768], 'n');
}

TEST(NvmeSpecIdentify, NamespaceBlockSizeFollowsFlbas) {
  IdentifyNamespace id{};
  id.lbaf[0].lbads = 9;
  id.lbaf[1].lbads = 12;
  EXPECT_EQ(id.block_size(), 512u);
  id.flbas = 0x01;
  EXPECT_EQ(id.block_size(), 4096u);
  id.flbas = 0x21;  // high bits 6:5 = 1: index 17, a format with LBADS 0
  EXPECT_EQ(id.format_index(), 17);
  EXPECT_EQ(id.block_size(), 0u);
  id.nmic = 1;
  EXPECT_TRUE(id.shared());
}

TEST(NvmeSpecIdentify, NamespaceListStopsAtZero) {
  Buffer b;
  b.U32(1).U32(2).U32(7).U32(0).U32(9);
  EXPECT_EQ(ParseNamespaceList(b.span()), (std::vector<std::uint32_t>{1, 2, 7}));
  EXPECT_EQ(ParseNamespaceList(b.first(6)), (std::vector<std::uint32_t>{1}));  // a partial entry is ignored
}

TEST(NvmeSpecIdentify, DescriptorListRoundTrips) {
  std::array<std::byte, kIdentifyDataSize> page{};
  const std::array<std::uint8_t, 8> eui{1, 2, 3, 4, 5, 6, 7, 8};
  std::array<std::uint8_t, 16> nguid{};
  nguid[0] = 0x6C;
  nguid[15] = 0x01;
  const std::uint8_t csi = 0;
  std::size_t offset = *AppendNamespaceIdDescriptor(page, 0, NidType::kEui64, eui);
  EXPECT_EQ(offset, 12u);
  offset = *AppendNamespaceIdDescriptor(page, offset, NidType::kNguid, nguid);
  offset = *AppendNamespaceIdDescriptor(page, offset, NidType::kCsi, std::span(&csi, 1));
  EXPECT_EQ(offset, 12u + 20u + 5u);
  EXPECT_EQ(page[12], std::byte{2});   // NIDT
  EXPECT_EQ(page[13], std::byte{16});  // NIDL
  EXPECT_EQ(page[16], std::byte{0x6C});

  auto ids = ParseNamespaceIdDescriptors(page);
  ASSERT_TRUE(ids) << ids.error().ToString();
  EXPECT_EQ(ids->eui64, eui);
  EXPECT_EQ(ids->nguid, nguid);
  EXPECT_FALSE(ids->uuid);
  EXPECT_EQ(ids->csi, 0);

  std::array<std::byte, 8> tiny{};
  EXPECT_FALSE(AppendNamespaceIdDescriptor(tiny, 0, NidType::kEui64, eui));
}

TEST(NvmeSpecIdentify, DescriptorParserRejectsWhatDoesNotFit) {
  struct Case {
    const char* what;
    Buffer bytes;
    bool ok;
  };
  std::vector<Case> cases;
  cases.push_back({"runs past the end", std::move(Buffer().Raw({2, 16, 0, 0}).Zeros(8)), false});
  cases.push_back({"NGUID of length 8", std::move(Buffer().Raw({2, 8, 0, 0}).Zeros(8)), false});
  cases.push_back({"UUID twice", std::move(Buffer().Raw({3, 16, 0, 0}).Zeros(16).Raw({3, 16, 0, 0}).Zeros(16)), false});
  cases.push_back({"unknown type skipped", std::move(Buffer().Raw({9, 2, 0, 0, 0xAA, 0xBB, 4, 1, 0, 0, 0})), true});
  cases.push_back({"ends without terminator", std::move(Buffer().Raw({4, 1, 0, 0, 0})), true});
  cases.push_back({"empty", Buffer(), true});
  for (const Case& c : cases) EXPECT_EQ(ParseNamespaceIdDescriptors(c.bytes.span()).has_value(), c.ok) << c.what;
}

// --- Log pages.

TEST(NvmeSpecLogs, AnaLogParsesGroupsAndNsids) {
  Buffer b;
  b.U64(7).U16(2).Zeros(6);
  b.U32(1).U32(2).U64(3).U8(0x01).Zeros(15).U32(1).U32(3);
  b.U32(2).U32(0).U64(4).U8(0x0F).Zeros(15);
  b.Zeros(40);  // the rest of the buffer the host gave
  auto log = ParseAnaLog(b.span());
  ASSERT_TRUE(log) << log.error().ToString();
  EXPECT_EQ(log->chgcnt, 7u);
  ASSERT_EQ(log->groups.size(), 2u);
  EXPECT_EQ(log->groups[0].id, 1u);
  EXPECT_EQ(log->groups[0].chgcnt, 3u);
  EXPECT_EQ(log->groups[0].state(), AnaState::kOptimized);
  EXPECT_EQ(log->groups[0].nsids, (std::vector<std::uint32_t>{1, 3}));
  EXPECT_EQ(log->groups[1].state(), AnaState::kChange);
  EXPECT_TRUE(log->groups[1].nsids.empty());
  EXPECT_EQ(AnaLogSize(2, 2), b.size() - 40);
}

TEST(NvmeSpecLogs, AnaLogParserStaysInsideItsBytes) {
  Buffer full;
  full.U64(1).U16(1).Zeros(6).U32(5).U32(2).U64(1).U8(0x03).Zeros(15).U32(10).U32(11);
  ASSERT_TRUE(ParseAnaLog(full.span()));
  for (std::size_t n : {std::size_t{0}, std::size_t{15}, std::size_t{16}, std::size_t{47}, std::size_t{48},
                        std::size_t{55}}) {
    EXPECT_FALSE(ParseAnaLog(full.first(n))) << n << " bytes";
  }
  // A header claiming 65535 groups over an empty body.
  Buffer liar;
  liar.U64(1).U16(0xFFFF).Zeros(6);
  EXPECT_FALSE(ParseAnaLog(liar.span()));
  // A descriptor claiming four billion NSIDs.
  Buffer greedy;
  greedy.U64(1).U16(1).Zeros(6).U32(5).U32(0xFFFF'FFFF).U64(1).U8(0x01).Zeros(15).U32(1);
  EXPECT_FALSE(ParseAnaLog(greedy.span()));
}

TEST(NvmeSpecLogs, ChangedNamespaceList) {
  Buffer some;
  some.U32(2).U32(5).U32(0);
  auto changed = ParseChangedNamespaceList(some.span());
  EXPECT_FALSE(changed.overflow);
  EXPECT_EQ(changed.nsids, (std::vector<std::uint32_t>{2, 5}));
  Buffer overflow;
  overflow.U32(kBroadcastNsid).Zeros(4);
  EXPECT_TRUE(ParseChangedNamespaceList(overflow.span()).overflow);
}

// --- Reservations.

TEST(NvmeSpecReservations, ExtendedStatusParses) {
  Buffer b;
  b.U32(9).U8(0x05).U16(2).Zeros(2).U8(0x01).Zeros(14).Zeros(40);
  b.U16(1).U8(0x01).Zeros(5).U64(0xAAAA).Raw({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}).Zeros(32);
  b.U16(0xFFFF).U8(0x00).Zeros(5).U64(0xBBBB).Zeros(16).Zeros(32);
  auto status = ParseReservationStatus(b.span(), ReportFormat::kExtended);
  ASSERT_TRUE(status) << status.error().ToString();
  EXPECT_EQ(status->generation, 9u);
  EXPECT_EQ(status->type(), ReservationType::kWriteExclusiveAllRegistrants);
  EXPECT_EQ(status->regctl, 2);
  EXPECT_TRUE(status->ptpl);
  ASSERT_EQ(status->registrants.size(), 2u);
  EXPECT_EQ(status->registrants[0].cntlid, 1);
  EXPECT_TRUE(status->registrants[0].holds_reservation);
  EXPECT_EQ(status->registrants[0].rkey, 0xAAAAu);
  EXPECT_EQ(status->registrants[0].hostid[15], 16);
  EXPECT_EQ(status->registrants[1].cntlid, kCntlidDynamic);
  EXPECT_FALSE(status->truncated());

  auto cut = ParseReservationStatus(b.first(64 + 64 + 10), ReportFormat::kExtended);
  ASSERT_TRUE(cut);
  EXPECT_EQ(cut->registrants.size(), 1u);
  EXPECT_TRUE(cut->truncated());
  EXPECT_FALSE(ParseReservationStatus(b.first(63), ReportFormat::kExtended));
}

TEST(NvmeSpecReservations, CompactStatusParses) {
  Buffer b;
  b.U32(1).U8(0x01).U16(1).Zeros(2).U8(0).Zeros(14);
  b.U16(3).U8(0x01).Zeros(5).Raw({1, 2, 3, 4, 5, 6, 7, 8}).U64(0x1234);
  auto status = ParseReservationStatus(b.span(), ReportFormat::kCompact);
  ASSERT_TRUE(status);
  ASSERT_EQ(status->registrants.size(), 1u);
  EXPECT_EQ(status->registrants[0].cntlid, 3);
  EXPECT_EQ(status->registrants[0].rkey, 0x1234u);
  EXPECT_EQ(status->registrants[0].hostid[7], 8);
  EXPECT_EQ(status->registrants[0].hostid[8], 0);
}

// Base 2.0c §8.19, "Command Behavior in the Presence of a Reservation": read and write access for the holder, another
// registrant and a non-registrant under each type.
TEST(NvmeSpecReservations, AccessMatrix) {
  struct Row {
    ReservationType type;
    bool registrant_read, registrant_write, other_read, other_write;
  };
  const Row rows[] = {
      {ReservationType::kWriteExclusive, true, false, true, false},
      {ReservationType::kExclusiveAccess, false, false, false, false},
      {ReservationType::kWriteExclusiveRegistrantsOnly, true, true, true, false},
      {ReservationType::kExclusiveAccessRegistrantsOnly, true, true, false, false},
      {ReservationType::kWriteExclusiveAllRegistrants, true, true, true, false},
      {ReservationType::kExclusiveAccessAllRegistrants, true, true, false, false},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(Name(r.type));
    EXPECT_TRUE(ReservationPermits(r.type, ReservationRole::kHolder, AccessKind::kRead));
    EXPECT_TRUE(ReservationPermits(r.type, ReservationRole::kHolder, AccessKind::kWrite));
    EXPECT_EQ(ReservationPermits(r.type, ReservationRole::kRegistrant, AccessKind::kRead), r.registrant_read);
    EXPECT_EQ(ReservationPermits(r.type, ReservationRole::kRegistrant, AccessKind::kWrite), r.registrant_write);
    EXPECT_EQ(ReservationPermits(r.type, ReservationRole::kNonRegistrant, AccessKind::kRead), r.other_read);
    EXPECT_EQ(ReservationPermits(r.type, ReservationRole::kNonRegistrant, AccessKind::kWrite), r.other_write);
  }
  EXPECT_TRUE(ReservationPermits(ReservationType::kNone, ReservationRole::kNonRegistrant, AccessKind::kWrite));
  EXPECT_TRUE(IsAllRegistrants(ReservationType::kExclusiveAccessAllRegistrants));
  EXPECT_FALSE(IsValidReservationType(7));
}

}  // namespace
}  // namespace mpath::nvme::spec
