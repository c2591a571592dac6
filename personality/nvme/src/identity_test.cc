// Identify data written byte by byte at the offsets the spec gives (Base 2.0c Figure 275, NVM Command Set 1.0c
// §4.1.5.1), so that these tests check the parsers against the spec rather than against the wire structs they use.
#include "mpath/nvme/identity.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "mpath/core/registry.h"

namespace mpath::nvme {
namespace {

using Bytes = std::vector<std::byte>;

// A 4 KiB Identify page with little-endian puts at byte offsets.
class Page {
 public:
  explicit Page(std::size_t size = 4096) : bytes_(size, std::byte{0}) {}

  Page& U8(std::size_t offset, std::uint8_t v) {
    bytes_.at(offset) = std::byte{v};
    return *this;
  }
  Page& Le(std::size_t offset, std::uint64_t v, std::size_t width) {
    for (std::size_t i = 0; i < width; ++i) U8(offset + i, static_cast<std::uint8_t>(v >> (8 * i)));
    return *this;
  }
  Page& Le16(std::size_t offset, std::uint16_t v) { return Le(offset, v, 2); }
  Page& Le32(std::size_t offset, std::uint32_t v) { return Le(offset, v, 4); }
  Page& Le64(std::size_t offset, std::uint64_t v) { return Le(offset, v, 8); }
  // `text` in a field of `width` bytes padded with `pad`.
  Page& Text(std::size_t offset, std::size_t width, std::string_view text, char pad) {
    for (std::size_t i = 0; i < width; ++i) U8(offset + i, static_cast<std::uint8_t>(i < text.size() ? text[i] : pad));
    return *this;
  }
  template <std::size_t N>
  Page& Raw(std::size_t offset, const std::array<std::uint8_t, N>& v) {
    for (std::size_t i = 0; i < N; ++i) U8(offset + i, v[i]);
    return *this;
  }

  [[nodiscard]] std::span<const std::byte> span() const { return bytes_; }
  [[nodiscard]] std::span<const std::byte> first(std::size_t n) const { return span().first(n); }
  Bytes& bytes() { return bytes_; }

 private:
  Bytes bytes_;
};

constexpr std::string_view kNqn = "nqn.2014-08.org.nvmexpress:uuid:5a1c0e4d-ef00-4b4c-9e0a-0123456789ab";
constexpr std::array<std::uint8_t, 16> kNguid = {0x00, 0x25, 0x38, 0x8b, 0x91, 0xc2, 0x4e, 0x7f,
                                                 0xa3, 0x10, 0x5d, 0x66, 0x09, 0xe1, 0xbc, 0x42};
constexpr std::string_view kNguidText = "nguid.0025388b91c24e7fa3105d6609e1bc42";
constexpr std::array<std::uint8_t, 8> kEui64 = {0x00, 0x0e, 0x1e, 0x09, 0x00, 0xa1, 0xb2, 0xc3};
constexpr std::string_view kEuiText = "eui.000e1e0900a1b2c3";
constexpr std::array<std::uint8_t, 16> kUuid = {0x5a, 0x1c, 0x0e, 0x4d, 0xef, 0x00, 0x4b, 0x4c,
                                                0x9e, 0x0a, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab};
constexpr std::string_view kUuidText = "uuid.5a1c0e4d-ef00-4b4c-9e0a-0123456789ab";

// Identify Controller as a multi-controller, ANA-reporting fabrics controller fills it.
Page ControllerPage() {
  Page p;
  p.Le16(0, 0x1b36)                                   // VID
      .Text(4, 20, "  SN-0042", ' ')                  // SN, leading spaces are part of it
      .Text(24, 40, "Example Array", ' ')             // MN
      .Text(64, 8, "8.1", ' ')                        // FR
      .U8(76, 0x0B)                                   // CMIC: MPORTS, MCTRS, ANARS
      .U8(77, 5)                                      // MDTS
      .Le16(78, 0x0102)                               // CNTLID
      .Le32(80, 0x00020000)                           // VER 2.0
      .Le32(92, (1u << 11) | (1u << 8))               // OAES: ANA change, namespace attribute
      .Le16(128, 3)                                   // CRDT1
      .Le16(130, 20)                                  // CRDT2
      .Le16(132, 600)                                 // CRDT3
      .U8(259, 3)                                     // AERL
      .U8(261, 0x04)                                  // LPA: extended data
      .U8(342, 15)                                    // ANATT
      .U8(343, 0x5F)                                  // ANACAP
      .Le32(344, 64)                                  // ANAGRPMAX
      .Le32(348, 16)                                  // NANAGRPID
      .Le32(516, 1000)                                // NN
      .Le16(520, (1u << 2) | (1u << 3) | (1u << 5))   // ONCS: DSM, Write Zeroes, reservations
      .U8(525, 0x01)                                  // VWC present
      .Le32(540, 300)                                 // MNAN
      .Text(768, 256, kNqn, '\0');                    // SUBNQN
  return p;
}

// Identify Namespace with two LBA formats, format 1 (4 KiB) in use.
Page NamespacePage() {
  Page p;
  p.Le64(0, 0x20000)       // NSZE
      .Le64(8, 0x20000)    // NCAP
      .Le64(16, 0x1000)    // NUSE
      .U8(25, 1)           // NLBAF: formats 0 and 1
      .U8(26, 0x01)        // FLBAS: format 1
      .U8(30, 0x01)        // NMIC: shared
      .U8(31, 0x7F)        // RESCAP
      .Le32(92, 7)         // ANAGRPID
      .Raw(104, kNguid)    // NGUID
      .Raw(120, kEui64)    // EUI64
      .U8(128 + 2, 9)      // LBAF0: 512 bytes
      .U8(132 + 2, 12);    // LBAF1: 4096 bytes
  return p;
}

ControllerSummary Controller(std::string_view nqn = kNqn, bool multi_controller = true) {
  ControllerSummary c;
  c.cntlid = 1;
  c.subnqn = std::string(nqn);
  c.multi_controller = multi_controller;
  return c;
}

NamespaceSummary Namespace(std::uint32_t nsid, std::array<std::uint8_t, 16> nguid = {},
                           std::array<std::uint8_t, 8> eui64 = {}, bool shared = true) {
  NamespaceSummary ns;
  ns.nsid = nsid;
  ns.nsze = 1000;
  ns.block_size = 512;
  ns.shared = shared;
  ns.nguid = nguid;
  ns.eui64 = eui64;
  return ns;
}

void ExpectError(const auto& result, Errc code, std::initializer_list<std::string_view> phrases) {
  ASSERT_FALSE(result.has_value()) << "expected " << ErrcName(code);
  EXPECT_EQ(result.error().code(), code) << result.error().ToString();
  for (std::string_view phrase : phrases) {
    EXPECT_NE(result.error().message().find(phrase), std::string::npos)
        << "'" << phrase << "' not in: " << result.error().message();
  }
}

// ---- Identify Controller

TEST(IdentifyControllerTest, ReadsEveryFieldAtItsOffset) {
  const auto c = ParseIdentifyController(ControllerPage().span());
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->cntlid, 0x0102);
  EXPECT_EQ(c->subnqn, kNqn);
  EXPECT_EQ(c->model, "Example Array");
  EXPECT_EQ(c->serial, "  SN-0042");
  EXPECT_EQ(c->firmware, "8.1");
  EXPECT_TRUE(c->multi_controller);
  EXPECT_TRUE(c->ana_reporting);
  EXPECT_TRUE(c->ana_change_notices);
  EXPECT_TRUE(c->namespace_attribute_notices);
  EXPECT_EQ(c->anatt_secs, 15);
  EXPECT_EQ(c->anacap, 0x5F);
  EXPECT_EQ(c->anagrpmax, 64u);
  EXPECT_EQ(c->nanagrpid, 16u);
  EXPECT_EQ(c->mnan, 300u);
  EXPECT_EQ(c->nn, 1000u);
  EXPECT_EQ(c->aerl, 3);
  EXPECT_EQ(c->mdts, 5);
  EXPECT_EQ(c->retry_delays, (RetryDelayTimes{3, 20, 600}));
  EXPECT_TRUE(c->write_zeroes);
  EXPECT_TRUE(c->dataset_management);
  EXPECT_TRUE(c->reservations);
  EXPECT_TRUE(c->volatile_write_cache);
  EXPECT_TRUE(c->extended_log_data);
  // 16 + 16 groups of 32 + 300 NSIDs of 4.
  EXPECT_EQ(c->AnaLogBytes(), 16u + 16u * 32u + 300u * 4u);
  EXPECT_EQ(c->MaxTransferBytes(), 128u * 1024u);
}

TEST(IdentifyControllerTest, EachBitIsReadAlone) {
  // Every optional capability off, and CMIC with MPORTS only: the parser must not read neighbouring bits.
  Page p = ControllerPage();
  p.U8(76, 0x01).Le32(92, 0).Le16(520, 0).U8(525, 0x06).U8(261, 0x03);
  auto c = ParseIdentifyController(p.span());
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_FALSE(c->multi_controller);
  EXPECT_FALSE(c->ana_reporting);
  EXPECT_FALSE(c->ana_change_notices);
  EXPECT_FALSE(c->namespace_attribute_notices);
  EXPECT_FALSE(c->write_zeroes);
  EXPECT_FALSE(c->dataset_management);
  EXPECT_FALSE(c->reservations);
  EXPECT_FALSE(c->volatile_write_cache);
  EXPECT_FALSE(c->extended_log_data);
  // Without ANA reporting there is no transition time and no log to size.
  EXPECT_EQ(c->anatt_secs, 0);
  EXPECT_EQ(c->AnaLogBytes(), 0u);

  p.U8(76, 0x02).Le32(92, 1u << 11).Le16(520, 1u << 3).U8(525, 0x01);
  c = ParseIdentifyController(p.span());
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_TRUE(c->multi_controller);
  EXPECT_FALSE(c->ana_reporting);
  EXPECT_TRUE(c->ana_change_notices);
  EXPECT_FALSE(c->namespace_attribute_notices);
  EXPECT_TRUE(c->write_zeroes);
  EXPECT_FALSE(c->dataset_management);
  EXPECT_FALSE(c->reservations);
  EXPECT_TRUE(c->volatile_write_cache);
}

TEST(IdentifyControllerTest, AnaLogIsSizedFromNnWhenMnanIsZero) {
  Page p = ControllerPage();
  p.Le32(540, 0).Le32(516, 7).Le32(348, 4);
  const auto c = ParseIdentifyController(p.span());
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->AnaLogBytes(), 16u + 4u * 32u + 7u * 4u);
}

TEST(IdentifyControllerTest, AnaWithoutGroupsIsRefused) {
  Page p = ControllerPage();
  p.Le32(348, 0);
  ExpectError(ParseIdentifyController(p.span()), Errc::kTargetError, {"NANAGRPID"});
}

TEST(IdentifyControllerTest, MaxTransferBytes) {
  ControllerSummary c;
  EXPECT_EQ(c.MaxTransferBytes(), 0u) << "MDTS 0 is no limit";
  c.mdts = 1;
  EXPECT_EQ(c.MaxTransferBytes(), 8192u);
  c.mdts = 19;
  EXPECT_EQ(c.MaxTransferBytes(), 1u << 31);
  c.mdts = 20;  // 4 GiB would wrap a uint32_t to 0 ("unlimited"); it caps instead
  EXPECT_EQ(c.MaxTransferBytes(), 1u << 31);
  c.mdts = 255;
  EXPECT_EQ(c.MaxTransferBytes(), 1u << 31);
}

TEST(IdentifyControllerTest, TruncatedDataIsNamed) {
  const Page p = ControllerPage();
  ExpectError(ParseIdentifyController(p.first(4095)), Errc::kTargetError, {"Identify Controller", "4095", "4096"});
  ExpectError(ParseIdentifyController(p.first(0)), Errc::kTargetError, {"Identify Controller", "0 bytes"});
  // More than a page is fine: only the page is read.
  Page longer(8192);
  std::memcpy(longer.bytes().data(), p.span().data(), 4096);
  longer.U8(5000, 0xFF);
  const auto c = ParseIdentifyController(longer.span());
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->subnqn, kNqn);
}

TEST(IdentifyControllerTest, SubnqnMustBePresentAndPrintable) {
  Page p = ControllerPage();
  p.Text(768, 256, "", '\0');
  ExpectError(ParseIdentifyController(p.span()), Errc::kTargetError, {"empty SUBNQN"});
  p.Text(768, 256, "", ' ');
  ExpectError(ParseIdentifyController(p.span()), Errc::kTargetError, {"empty SUBNQN"});
  p.Text(768, 256, "nqn.bad\x01name", '\0');
  ExpectError(ParseIdentifyController(p.span()), Errc::kTargetError, {"SUBNQN", "0x01", "offset 7"});
  // A full 256-byte NQN with no NUL is still bounded by the field.
  p.Text(768, 256, std::string(256, 'q'), '\0');
  const auto c = ParseIdentifyController(p.span());
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->subnqn, std::string(256, 'q'));
}

// ---- Identify Namespace

TEST(IdentifyNamespaceTest, ReadsEveryFieldAtItsOffset) {
  const auto ns = ParseIdentifyNamespace(9, NamespacePage().span());
  ASSERT_TRUE(ns) << ns.error().ToString();
  EXPECT_EQ(ns->nsid, 9u);
  EXPECT_EQ(ns->nsze, 0x20000u);
  EXPECT_EQ(ns->block_size, 4096u);
  EXPECT_TRUE(ns->shared);
  EXPECT_EQ(ns->anagrpid, 7u);
  EXPECT_EQ(ns->rescap, 0x7F);
  EXPECT_EQ(ns->nguid, kNguid);
  EXPECT_EQ(ns->eui64, kEui64);
}

TEST(IdentifyNamespaceTest, FlbasHighBitsSelectFormatsAbove15) {
  // FLBAS 0x31: bits 3:0 = 1 and bits 6:5 = 1 make format 0x11 = 17; bit 4 (metadata placement) is not an index bit.
  Page p = NamespacePage();
  p.U8(25, 20).U8(26, 0x31).U8(128 + 17 * 4 + 2, 13).U8(30, 0);
  const auto ns = ParseIdentifyNamespace(1, p.span());
  ASSERT_TRUE(ns) << ns.error().ToString();
  EXPECT_EQ(ns->block_size, 8192u);
  EXPECT_FALSE(ns->shared);
}

TEST(IdentifyNamespaceTest, InactiveNsidIsNotFound) {
  ExpectError(ParseIdentifyNamespace(4, Page().span()), Errc::kNotFound, {"NSID 4", "not active"});
  // A single byte anywhere makes it an answer to judge, not an inactive NSID.
  Page p;
  p.U8(4000, 1);
  ExpectError(ParseIdentifyNamespace(4, p.span()), Errc::kTargetError, {"LBADS 0"});
}

TEST(IdentifyNamespaceTest, TruncatedDataIsNamed) {
  const Page p = NamespacePage();
  ExpectError(ParseIdentifyNamespace(3, p.first(384)), Errc::kTargetError, {"Identify Namespace", "NSID 3", "384"});
  ExpectError(ParseIdentifyNamespace(3, p.first(0)), Errc::kTargetError, {"0 bytes"});
}

TEST(IdentifyNamespaceTest, FlbasBeyondNlbafIsRefused) {
  Page p = NamespacePage();
  p.U8(26, 0x02);  // format 2, NLBAF 1
  ExpectError(ParseIdentifyNamespace(1, p.span()), Errc::kTargetError, {"FLBAS 0x02", "format 2", "0..1"});
  p.U8(26, 0x60);  // bits 6:5 = 3: format 48
  ExpectError(ParseIdentifyNamespace(1, p.span()), Errc::kTargetError, {"format 48"});
}

TEST(IdentifyNamespaceTest, LbadsOutside9To16IsRefused) {
  for (std::uint8_t lbads : {0, 8, 17, 63}) {
    Page p = NamespacePage();
    p.U8(132 + 2, lbads);
    ExpectError(ParseIdentifyNamespace(1, p.span()), Errc::kTargetError,
                {"LBA format 1", "LBADS " + std::to_string(lbads)});
  }
  for (std::uint8_t lbads : {9, 16}) {
    Page p = NamespacePage();
    p.U8(132 + 2, lbads);
    const auto ns = ParseIdentifyNamespace(1, p.span());
    ASSERT_TRUE(ns) << ns.error().ToString();
    EXPECT_EQ(ns->block_size, 1u << lbads);
  }
}

TEST(IdentifyNamespaceTest, CapacityBeyond64BitsIsRefused) {
  Page p = NamespacePage();
  p.Le64(0, 1ull << 52);  // 2^52 blocks of 2^12 bytes: 2^64
  ExpectError(ParseIdentifyNamespace(1, p.span()), Errc::kTargetError, {"NSZE"});
  p.Le64(0, (1ull << 52) - 1);
  EXPECT_TRUE(ParseIdentifyNamespace(1, p.span()));
}

// ---- Identity

TEST(NamespaceIdentityTest, KindNames) {
  EXPECT_EQ(Name(NamespaceIdKind::kNguid), "NGUID");
  EXPECT_EQ(Name(NamespaceIdKind::kEui64), "EUI-64");
  EXPECT_EQ(Name(NamespaceIdKind::kUuid), "UUID");
  EXPECT_EQ(Name(NamespaceIdKind::kNone), "none");
}

TEST(NamespaceIdentityTest, NguidIsPreferredOverEui64AndUuid) {
  spec::NamespaceIdentifiers listed;
  listed.nguid = kNguid;
  listed.eui64 = kEui64;
  listed.uuid = kUuid;
  listed.csi = 0;
  const auto id = ChooseNamespaceIdentity(Controller(), Namespace(3, kNguid, kEui64), listed);
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_EQ(id->kind, NamespaceIdKind::kNguid);
  EXPECT_EQ(id->designator, kNguidText);
  EXPECT_EQ(id->subnqn, kNqn);
  EXPECT_EQ(id->nsid, 3u);
  EXPECT_TRUE(id->reason.empty());
  EXPECT_EQ(id->ToDeviceIdentity().str(), std::string(kNguidText) + "@" + std::string(kNqn) + "/ns3");
}

TEST(NamespaceIdentityTest, EachSourceAloneSuffices) {
  // NGUID only in the descriptor list (Identify Namespace left it zero).
  spec::NamespaceIdentifiers listed;
  listed.nguid = kNguid;
  auto id = ChooseNamespaceIdentity(Controller(), Namespace(1, {}, kEui64), listed);
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_EQ(id->designator, kNguidText);

  // NGUID only in Identify Namespace, with no descriptor list at all.
  id = ChooseNamespaceIdentity(Controller(), Namespace(1, kNguid), std::nullopt);
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_EQ(id->designator, kNguidText);

  // EUI-64 when there is no NGUID, from either source.
  id = ChooseNamespaceIdentity(Controller(), Namespace(1, {}, kEui64), std::nullopt);
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_EQ(id->kind, NamespaceIdKind::kEui64);
  EXPECT_EQ(id->designator, kEuiText);
  spec::NamespaceIdentifiers eui_listed;
  eui_listed.eui64 = kEui64;
  eui_listed.uuid = kUuid;
  id = ChooseNamespaceIdentity(Controller(), Namespace(1), eui_listed);
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_EQ(id->designator, kEuiText);

  // UUID last, only the descriptor list carries one.
  spec::NamespaceIdentifiers uuid_listed;
  uuid_listed.uuid = kUuid;
  id = ChooseNamespaceIdentity(Controller(), Namespace(1), uuid_listed);
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_EQ(id->kind, NamespaceIdKind::kUuid);
  EXPECT_EQ(id->designator, kUuidText);
}

TEST(NamespaceIdentityTest, ZeroValuesInTheListAreNotReported) {
  spec::NamespaceIdentifiers listed;
  listed.nguid = std::array<std::uint8_t, 16>{};
  listed.uuid = kUuid;
  const auto id = ChooseNamespaceIdentity(Controller(), Namespace(1, {}, kEui64), listed);
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_EQ(id->designator, kEuiText);
}

TEST(NamespaceIdentityTest, SourcesThatDisagreeAreRefused) {
  auto other_nguid = kNguid;
  other_nguid[15] ^= 0x01;
  spec::NamespaceIdentifiers listed;
  listed.nguid = other_nguid;
  ExpectError(ChooseNamespaceIdentity(Controller(), Namespace(1, kNguid), listed), Errc::kTargetError,
              {"NGUID", "0025388b91c24e7fa3105d6609e1bc43", "0025388b91c24e7fa3105d6609e1bc42"});

  // The EUI-64s disagree while the NGUIDs agree: the controller is not trusted with either.
  auto other_eui = kEui64;
  other_eui[0] = 0xAA;
  listed.nguid = kNguid;
  listed.eui64 = other_eui;
  ExpectError(ChooseNamespaceIdentity(Controller(), Namespace(1, kNguid, kEui64), listed), Errc::kTargetError,
              {"EUI-64", "aa0e1e0900a1b2c3", "000e1e0900a1b2c3"});

  // Agreement is fine.
  listed.eui64 = kEui64;
  EXPECT_TRUE(ChooseNamespaceIdentity(Controller(), Namespace(1, kNguid, kEui64), listed));
}

TEST(NamespaceIdentityTest, NoIdentifierIsKindNoneWithAReason) {
  spec::NamespaceIdentifiers listed;
  listed.csi = 0;
  auto id = ChooseNamespaceIdentity(Controller(), Namespace(6), listed);
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_EQ(id->kind, NamespaceIdKind::kNone);
  EXPECT_TRUE(id->designator.empty());
  EXPECT_NE(id->reason.find("NSID 6 reports no NGUID, EUI-64 or UUID"), std::string::npos) << id->reason;
  EXPECT_TRUE(id->ToDeviceIdentity().empty());

  id = ChooseNamespaceIdentity(Controller(), Namespace(6), std::nullopt);
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_EQ(id->kind, NamespaceIdKind::kNone);
  EXPECT_NE(id->reason.find("refused"), std::string::npos) << id->reason;
}

TEST(NamespaceIdentityTest, ScopedBySubsystemAndNsid) {
  const auto a = ChooseNamespaceIdentity(Controller("nqn.2026-01.io.example:array-a"), Namespace(1, kNguid), {});
  const auto b = ChooseNamespaceIdentity(Controller("nqn.2026-01.io.example:array-b"), Namespace(1, kNguid), {});
  const auto a2 = ChooseNamespaceIdentity(Controller("nqn.2026-01.io.example:array-a"), Namespace(2, kNguid), {});
  ControllerSummary second = Controller("nqn.2026-01.io.example:array-a");
  second.cntlid = 9;
  const auto a_again = ChooseNamespaceIdentity(second, Namespace(1, kNguid), {});
  ASSERT_TRUE(a && b && a2 && a_again);
  // A cloned volume in another subsystem, and the same designator at another NSID, never merge...
  EXPECT_NE(a->ToDeviceIdentity(), b->ToDeviceIdentity());
  EXPECT_NE(a->ToDeviceIdentity(), a2->ToDeviceIdentity());
  // ...while another controller of the same subsystem sees the same namespace.
  EXPECT_EQ(a->ToDeviceIdentity(), a_again->ToDeviceIdentity());
  EXPECT_EQ(a->ToDeviceIdentity().str(), std::string(kNguidText) + "@nqn.2026-01.io.example:array-a/ns1");
  EXPECT_EQ(a2->ToDeviceIdentity().str(), std::string(kNguidText) + "@nqn.2026-01.io.example:array-a/ns2");
}

TEST(NamespaceIdentityTest, NeedsASubsystemToScopeBy) {
  ExpectError(ChooseNamespaceIdentity(Controller(""), Namespace(1, kNguid), {}), Errc::kInvalidArgument,
              {"SUBNQN"});
}

// ---- Opt-in facts

OptInPolicy Policy(MultipathMode mode) {
  OptInPolicy policy;
  policy.mode = mode;
  return policy;
}

TEST(DeviceInfoTest, GeometryAndIdentity) {
  const auto c = ParseIdentifyController(ControllerPage().span());
  const auto ns = ParseIdentifyNamespace(5, NamespacePage().span());
  ASSERT_TRUE(c && ns);
  const auto id = ChooseNamespaceIdentity(*c, *ns, std::nullopt);
  ASSERT_TRUE(id) << id.error().ToString();
  const DeviceInfo info = ToDeviceInfo(*c, *ns, *id);
  EXPECT_EQ(info.capacity_bytes, 0x20000ull * 4096);
  EXPECT_EQ(info.block_size, 4096u);
  EXPECT_EQ(info.identity.str(), std::string(kNguidText) + "@" + std::string(kNqn) + "/ns5");
  EXPECT_TRUE(info.reports_access_states);
  EXPECT_TRUE(info.name.empty()) << "left for the caller";
}

// multipath = on takes a namespace only when the subsystem may have several controllers (CMIC bit 1) and the namespace
// is shared (NMIC bit 0); always takes any namespace with an identity; off takes none.
TEST(DeviceInfoTest, OptInFollowsCmicAndNmic) {
  struct Case {
    std::uint8_t cmic;
    std::uint8_t nmic;
    bool identity;
    bool on, always;
  };
  const Case cases[] = {
      {0x0B, 0x01, true, true, true},     // MCTRS + shared
      {0x02, 0x01, true, true, true},     // MCTRS alone is what counts, not ANARS
      {0x0B, 0x00, true, false, true},    // private namespace
      {0x09, 0x01, true, false, true},    // multi-port, ANA, but one controller
      {0x00, 0x00, true, false, true},    // a plain single-controller drive
      {0x0B, 0x01, false, false, false},  // no identity: never taken
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(::testing::Message() << "CMIC " << int(k.cmic) << " NMIC " << int(k.nmic) << " id " << k.identity);
    Page cp = ControllerPage();
    cp.U8(76, k.cmic);
    Page np = NamespacePage();
    np.U8(30, k.nmic);
    if (!k.identity) {
      np.Raw(104, std::array<std::uint8_t, 16>{}).Raw(120, std::array<std::uint8_t, 8>{});
    }
    const auto c = ParseIdentifyController(cp.span());
    const auto ns = ParseIdentifyNamespace(1, np.span());
    ASSERT_TRUE(c && ns);
    const auto id = ChooseNamespaceIdentity(*c, *ns, spec::NamespaceIdentifiers{});
    ASSERT_TRUE(id) << id.error().ToString();
    const DeviceInfo info = ToDeviceInfo(*c, *ns, *id);
    EXPECT_FALSE(DecideOptIn(Policy(MultipathMode::kOff), info).multipath);
    EXPECT_EQ(DecideOptIn(Policy(MultipathMode::kOn), info).multipath, k.on);
    EXPECT_EQ(DecideOptIn(Policy(MultipathMode::kAlways), info).multipath, k.always);
  }
}


// ---- Transfer limits: MDTS (Base 2.0c Figure 275, in units of the 4 KiB minimum page) and the 16-bit 0's based NLB
// of Read, Write and Write Zeroes (NVM Command Set 1.0c §3.2), so 65536 blocks at most.

DeviceInfo LimitsOf(std::uint8_t mdts, std::uint32_t block_size) {
  ControllerSummary c = Controller();
  c.mdts = mdts;
  NamespaceSummary ns = Namespace(1, kNguid);
  ns.block_size = block_size;
  const auto id = ChooseNamespaceIdentity(c, ns, std::nullopt);
  EXPECT_TRUE(id) << id.error().ToString();
  return ToDeviceInfo(c, ns, *id);
}

TEST(DeviceInfoTest, TransferLimitsFromTheIdentifyPages) {
  // ControllerPage has MDTS 5 (128 KiB); NamespacePage uses 4 KiB blocks.
  const auto c = ParseIdentifyController(ControllerPage().span());
  const auto ns = ParseIdentifyNamespace(5, NamespacePage().span());
  ASSERT_TRUE(c && ns);
  const auto id = ChooseNamespaceIdentity(*c, *ns, std::nullopt);
  ASSERT_TRUE(id) << id.error().ToString();
  const DeviceInfo info = ToDeviceInfo(*c, *ns, *id);
  EXPECT_EQ(info.max_transfer_bytes, 128u * 1024);
  EXPECT_EQ(info.max_zeroing_bytes, 65536ull * 4096);
}

TEST(DeviceInfoTest, MdtsZeroLeavesTheBlockCountAsTheOnlyBound) {
  DeviceInfo info = LimitsOf(0, 512);
  EXPECT_EQ(info.max_transfer_bytes, 65536u * 512) << "32 MiB: 65536 blocks, not unlimited";
  EXPECT_EQ(info.max_zeroing_bytes, 65536ull * 512);
  info = LimitsOf(0, 4096);
  EXPECT_EQ(info.max_transfer_bytes, 65536u * 4096);
  EXPECT_EQ(info.max_zeroing_bytes, 65536ull * 4096);
}

TEST(DeviceInfoTest, MdtsBoundsReadsAndWritesButNotZeroing) {
  for (const std::uint32_t block : {512u, 4096u}) {
    SCOPED_TRACE(::testing::Message() << "block " << block);
    DeviceInfo info = LimitsOf(5, block);
    EXPECT_EQ(info.max_transfer_bytes, 128u * 1024);
    EXPECT_EQ(info.max_zeroing_bytes, 65536ull * block) << "Write Zeroes moves no data: MDTS does not apply";
    info = LimitsOf(1, block);
    EXPECT_EQ(info.max_transfer_bytes, 8192u);
  }
  // A generous MDTS (2 GiB) is capped by the block count.
  EXPECT_EQ(LimitsOf(19, 512).max_transfer_bytes, 65536u * 512);
  EXPECT_EQ(LimitsOf(255, 4096).max_transfer_bytes, 65536u * 4096);
}

// 65536 blocks of 64 KiB are 4 GiB, more than a 32-bit byte count holds: the limit stays whole blocks and non-zero
// (0 would read as "no limit").
TEST(DeviceInfoTest, LargestBlocksDoNotOverflowTheTransferLimit) {
  const DeviceInfo info = LimitsOf(0, 65536);
  EXPECT_EQ(info.max_transfer_bytes, 65535u * 65536);
  EXPECT_EQ(info.max_zeroing_bytes, 65536ull * 65536);
  EXPECT_EQ(LimitsOf(20, 65536).max_transfer_bytes, 1u << 31) << "MDTS caps at 2 GiB";
}

}  // namespace
}  // namespace mpath::nvme
