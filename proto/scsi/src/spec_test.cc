// The wire structs as bytes: CDB builders, LUN encodings, and the bounded readers of REPORT TARGET PORT GROUPS and
// the Device Identification VPD page, checked against replies real targets sent (../shared/lab/NOTES.md).
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "mpath/scsi/spec/alua.h"
#include "mpath/scsi/spec/inquiry.h"
#include "mpath/scsi/spec/report_luns.h"
#include "mpath/scsi/spec/sbc_cdb.h"
#include "mpath/scsi/spec/spc_cdb.h"

namespace mpath::scsi::spec {
namespace {

using Bytes = std::vector<std::uint8_t>;

template <wire::WireStruct T>
Bytes AsBytes(const T& value) {
  const auto b = wire::BytesOf(value);
  Bytes out(b.size());
  std::memcpy(out.data(), b.data(), b.size());
  return out;
}

std::vector<std::byte> FromHex(std::string_view hex) {
  std::vector<std::byte> out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<std::byte>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

TEST(Cdb, SpcBuildersPutFieldsWhereSpc5SaysTheyGo) {
  EXPECT_EQ(AsBytes(TestUnitReadyCdb::Make()), (Bytes{0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(AsBytes(InquiryCdb::Standard(96)), (Bytes{0x12, 0, 0, 0, 96, 0}));
  EXPECT_EQ(AsBytes(InquiryCdb::Vpd(0x83, 0x0200)), (Bytes{0x12, 0x01, 0x83, 0x02, 0x00, 0}));
  EXPECT_EQ(AsBytes(RequestSenseCdb::Make(252, SenseFormat::kDescriptor)), (Bytes{0x03, 0x01, 0, 0, 252, 0}));
  EXPECT_EQ(AsBytes(ReportLunsCdb::Make(0x1000, select_report::kAll)),
            (Bytes{0xA0, 0, 0x02, 0, 0, 0, 0, 0, 0x10, 0, 0, 0}));
  EXPECT_EQ(AsBytes(ReportTargetPortGroupsCdb::Make(0x1234, static_cast<std::uint8_t>(RtpgFormat::kExtended))),
            (Bytes{0xA3, 0x2A, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0, 0}));
  EXPECT_EQ(AsBytes(ReportTargetPortGroupsCdb::Make(64)), (Bytes{0xA3, 0x0A, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0}));
  EXPECT_EQ(AsBytes(SetTargetPortGroupsCdb::Make(8)), (Bytes{0xA4, 0x0A, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0}));
  const auto rtpg = ReportTargetPortGroupsCdb::Make(8, 1);
  EXPECT_EQ(rtpg.parameter_data_format(), 1);
  EXPECT_EQ(rtpg.service_action(), service_action::kReportTargetPortGroups);
}

TEST(Cdb, SbcBuildersPutFieldsWhereSbc4SaysTheyGo) {
  EXPECT_EQ(AsBytes(ReadCapacity10Cdb::Make()), (Bytes{0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(AsBytes(ReadCapacity16Cdb::Make(32)),
            (Bytes{0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}));
  EXPECT_EQ(AsBytes(Read10Cdb::Make(0x01020304, 0x0506, Fua::kYes)), (Bytes{0x28, 0x08, 1, 2, 3, 4, 0, 5, 6, 0}));
  EXPECT_EQ(AsBytes(Write10Cdb::Make(7, 1)), (Bytes{0x2A, 0, 0, 0, 0, 7, 0, 0, 1, 0}));
  EXPECT_EQ(AsBytes(Read16Cdb::Make(0x0102030405060708ull, 0x0A0B0C0D)),
            (Bytes{0x88, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x0A, 0x0B, 0x0C, 0x0D, 0, 0}));
  EXPECT_EQ(AsBytes(Write16Cdb::Make(1, 2, Fua::kYes)), (Bytes{0x8A, 0x08, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0}));
  EXPECT_EQ(AsBytes(SynchronizeCache10Cdb::Make(5, 6)), (Bytes{0x35, 0, 0, 0, 0, 5, 0, 0, 6, 0}));
  EXPECT_EQ(AsBytes(SynchronizeCache16Cdb::Make()), (Bytes(16, 0) = {0x91, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(AsBytes(WriteSame16Cdb::Make(9, 3, WriteSame16Cdb::Unmap::kYes)),
            (Bytes{0x93, 0x08, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 3, 0, 0}));
  const auto ndob = WriteSame16Cdb::Make(0, 1, WriteSame16Cdb::Unmap::kYes, WriteSame16Cdb::Ndob::kYes);
  EXPECT_EQ(ndob.flags, 0x09);
  EXPECT_TRUE(ndob.ndob());
  EXPECT_TRUE(ndob.unmap());
  EXPECT_EQ(AsBytes(UnmapCdb::Make(24)), (Bytes{0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0}));
  EXPECT_EQ(AsBytes(UnmapParameterListHeader::ForDescriptors(2)), (Bytes{0, 38, 0, 32, 0, 0, 0, 0}));
}

TEST(Cdb, LengthFollowsTheGroupCode) {
  EXPECT_EQ(CdbLengthForOpcode(op::kInquiry), 6u);
  EXPECT_EQ(CdbLengthForOpcode(op::kRead10), 10u);
  EXPECT_EQ(CdbLengthForOpcode(op::kPersistentReserveOut), 10u);
  EXPECT_EQ(CdbLengthForOpcode(op::kRead16), 16u);
  EXPECT_EQ(CdbLengthForOpcode(op::kReportLuns), 12u);
  EXPECT_EQ(CdbLengthForOpcode(0x7F), 1u) << "variable length: not known from the opcode";
  EXPECT_EQ(CdbLengthForOpcode(0xC0), 1u) << "vendor specific";
}

TEST(Lun, PeripheralBelow256FlatAbove) {
  EXPECT_EQ(EncodeLun(0), 0u);
  EXPECT_EQ(EncodeLun(5), 0x0005'0000'0000'0000ull);
  EXPECT_EQ(EncodeLun(255), 0x00FF'0000'0000'0000ull);
  EXPECT_EQ(EncodeLun(256), 0x4100'0000'0000'0000ull);
  EXPECT_EQ(EncodeLun(16383), 0x7FFF'0000'0000'0000ull);
  EXPECT_FALSE(EncodeLun(16384));
  for (std::uint64_t lun : {0ull, 1ull, 255ull, 256ull, 4095ull, 16383ull}) EXPECT_EQ(DecodeLun(*EncodeLun(lun)), lun);
  EXPECT_EQ(DecodeLun(0x4001'0000'0000'0000ull), 1u) << "flat space may also carry a small LUN";
  EXPECT_FALSE(DecodeLun(0x0001'0001'0000'0000ull)) << "second level";
  EXPECT_FALSE(DecodeLun(0x0101'0000'0000'0000ull)) << "peripheral with a bus identifier";
  EXPECT_FALSE(DecodeLun(0xC100'0000'0000'0000ull)) << "extended addressing";
}

TEST(StandardInquiry, AccessorsUseSpecBits) {
  StandardInquiryData d{};
  d.set_peripheral(kPeripheralQualifierNotSupported, kDeviceTypeUnknown);
  d.set_tpgs(kTpgsImplicit | kTpgsExplicit);
  d.set_hisup(true);
  d.set_response_data_format(2);
  EXPECT_EQ(d.peripheral, 0x7F);
  EXPECT_EQ(d.flags5, 0x30);
  EXPECT_EQ(d.flags3, 0x12);
  EXPECT_EQ(d.tpgs(), 3);
  EXPECT_EQ(d.peripheral_qualifier(), 3);
  const Bytes bytes = AsBytes(d);
  const auto loaded = wire::LoadPadded<StandardInquiryData>(std::as_bytes(std::span(bytes)).first(36));
  EXPECT_EQ(loaded.tpgs(), 3) << "a 36-byte reply reads with zeroes for the rest";
}

// NOTES.md: LIO 6.1's reply to RTPG with the extended header: RETURN DATA LENGTH 18h counts only the descriptors,
// and 28 bytes arrive, so the last target port descriptor is missing.
TEST(RtpgReader, ReadsLiosCutExtendedReply) {
  const auto raw = FromHex("000000181000000000cf000a000000010000000101cf001400020001");
  ASSERT_EQ(raw.size(), 28u);
  RtpgReader reader(raw);
  ASSERT_TRUE(reader.valid());
  EXPECT_EQ(reader.format(), RtpgFormat::kExtended);
  EXPECT_EQ(reader.return_data_length(), 0x18u);
  EXPECT_EQ(reader.implicit_transition_time(), 0);
  auto first = reader.Next();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->descriptor.target_port_group.value(), 10);
  EXPECT_EQ(first->descriptor.access_state(), AsymmetricAccessState::kActiveOptimized);
  EXPECT_FALSE(first->descriptor.pref());
  EXPECT_EQ(first->descriptor.supported, 0xCF);
  EXPECT_EQ(first->descriptor.status(), TpgStatusCode::kNoStatus);
  ASSERT_EQ(first->port_count(), 1u);
  EXPECT_EQ(first->relative_port(0), 1);
  EXPECT_FALSE(first->truncated);
  auto second = reader.Next();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->descriptor.target_port_group.value(), 20);
  EXPECT_EQ(second->descriptor.access_state(), AsymmetricAccessState::kActiveNonOptimized);
  EXPECT_EQ(second->descriptor.status(), TpgStatusCode::kAlteredByImplicitBehavior);
  EXPECT_EQ(second->descriptor.target_port_count, 1);
  EXPECT_EQ(second->port_count(), 0u);
  EXPECT_TRUE(second->truncated);
  EXPECT_FALSE(reader.Next());
  EXPECT_TRUE(reader.truncated());
}

TEST(RtpgReader, ReadsALengthOnlyReply) {
  // Two groups: PREF + standby with ports 3 and 4, then transitioning with none.
  const auto raw = FromHex("00000018" "8201000702000002" "00000003" "00000004" "0f0100080000000000");
  RtpgReader reader(std::span<const std::byte>(raw).first(28));
  ASSERT_TRUE(reader.valid());
  EXPECT_EQ(reader.format(), RtpgFormat::kLengthOnly);
  EXPECT_EQ(reader.announced_length(), 28u);
  auto g = reader.Next();
  ASSERT_TRUE(g);
  EXPECT_TRUE(g->descriptor.pref());
  EXPECT_EQ(g->descriptor.access_state(), AsymmetricAccessState::kStandby);
  ASSERT_EQ(g->port_count(), 2u);
  EXPECT_EQ(g->relative_port(1), 4);
  g = reader.Next();
  ASSERT_TRUE(g);
  EXPECT_EQ(g->descriptor.access_state(), AsymmetricAccessState::kTransitioning);
  EXPECT_FALSE(reader.Next());
  EXPECT_FALSE(reader.truncated());
}

TEST(RtpgReader, NeverReadsPastWhatArrived) {
  const auto raw = FromHex("0000001c1000000000cf000a000000010000000101cf0014000200010000000200000000");
  for (std::size_t n = 0; n <= raw.size(); ++n) {
    std::vector<std::byte> prefix(raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(n));
    RtpgReader reader(prefix);
    // With 4 bytes the format cannot be told, and an empty length-only reply is what they would be.
    EXPECT_EQ(reader.valid(), n == 4 || n >= 8) << n;
    std::size_t ports = 0;
    while (auto g = reader.Next()) ports += g->port_count();
    EXPECT_LE(ports, 2u);
    if (n >= 32) {
      EXPECT_EQ(ports, 2u);
    }
  }
}

// LIO's Device Identification page for path A (NOTES.md), built by hand.
std::vector<std::byte> LioStylePage() {
  std::vector<std::byte> page = FromHex("00830000" "01030010" "6001405abd0000000000000000000000");
  auto append_text = [&](std::string_view header_hex, std::string text) {
    for (auto b : FromHex(header_hex)) page.push_back(b);
    page.back() = static_cast<std::byte>(text.size());
    for (char c : text) page.push_back(static_cast<std::byte>(c));
  };
  append_text("02010000", std::string("LIO-ORG IBLOCK:lab-lio-disk0") + '\0');
  for (auto b : FromHex("51940004" "00000001" "51950004" "0000000a")) page.push_back(b);
  std::string name = "iqn.2024-01.lab.interop:lio1,t,0x0001";
  name.resize((name.size() + 1 + 3) / 4 * 4, '\0');
  append_text("53980000", name);
  page[2] = static_cast<std::byte>((page.size() - 4) >> 8);
  page[3] = static_cast<std::byte>((page.size() - 4) & 0xFF);
  return page;
}

TEST(DesignatorReader, WalksLiosDeviceIdentificationPage) {
  const auto page = LioStylePage();
  DesignatorReader reader(page);
  ASSERT_TRUE(reader.valid());
  auto naa = reader.Next();
  ASSERT_TRUE(naa);
  EXPECT_EQ(naa->header.designator_type(), DesignatorType::kNaa);
  EXPECT_EQ(naa->header.association(), Association::kLogicalUnit);
  EXPECT_EQ(naa->header.code_set(), CodeSet::kBinary);
  EXPECT_FALSE(naa->header.piv());
  EXPECT_EQ(naa->designator.size(), 16u);
  EXPECT_EQ(naa->designator[0], std::byte{0x60});
  auto t10 = reader.Next();
  ASSERT_TRUE(t10);
  EXPECT_EQ(t10->Text(), "LIO-ORG IBLOCK:lab-lio-disk0");
  auto port = reader.Next();
  ASSERT_TRUE(port);
  EXPECT_EQ(port->header.protocol_identifier(), static_cast<std::uint8_t>(ProtocolIdentifier::kIscsi));
  EXPECT_TRUE(port->header.piv());
  EXPECT_EQ(port->header.association(), Association::kTargetPort);
  EXPECT_EQ(port->PortOrGroupIdentifier(), 1);
  auto group = reader.Next();
  ASSERT_TRUE(group);
  EXPECT_EQ(group->PortOrGroupIdentifier(), 10);
  auto name = reader.Next();
  ASSERT_TRUE(name);
  EXPECT_EQ(name->header.code_set(), CodeSet::kUtf8);
  EXPECT_EQ(name->Text(), "iqn.2024-01.lab.interop:lio1,t,0x0001");
  EXPECT_EQ(name->designator.size() % 4, 0u);
  EXPECT_FALSE(reader.Next());
  EXPECT_FALSE(reader.truncated());
  EXPECT_EQ(reader.Find(DesignatorType::kTargetPortGroup, Association::kTargetPort)->PortOrGroupIdentifier(), 10);
  EXPECT_FALSE(reader.Find(DesignatorType::kEui64, Association::kLogicalUnit));
  EXPECT_FALSE(naa->PortOrGroupIdentifier());
}

TEST(DesignatorReader, BoundedByPageLengthAndReceivedBytes) {
  const auto page = LioStylePage();
  for (std::size_t n = 0; n <= page.size(); ++n) {
    std::vector<std::byte> prefix(page.begin(), page.begin() + static_cast<std::ptrdiff_t>(n));
    DesignatorReader reader(prefix);
    EXPECT_EQ(reader.valid(), n >= 4);
    int count = 0;
    while (reader.Next()) ++count;
    EXPECT_EQ(reader.truncated(), n < page.size() && n >= 4) << n;
    if (n == page.size()) {
      EXPECT_EQ(count, 5);
    }
  }
  // PAGE LENGTH shorter than the data: the walk ends where the page says it does, cutting the NAA descriptor.
  auto short_length = page;
  short_length[2] = std::byte{0};
  short_length[3] = std::byte{8};
  DesignatorReader reader(short_length);
  EXPECT_FALSE(reader.Next());
  EXPECT_TRUE(reader.truncated());
  // Another page code is not a Device Identification page.
  auto other = page;
  other[1] = std::byte{0x80};
  EXPECT_FALSE(DesignatorReader(other).valid());
}

}  // namespace
}  // namespace mpath::scsi::spec
