// INQUIRY (standard and VPD 00h, 80h, 83h, B0h, B2h), REPORT LUNS and READ CAPACITY, byte by byte against SPC-5,
// SBC-4 and what LIO sends (NOTES.md).
#include <gtest/gtest.h>

#include <string>

#include "array_test_util.h"
#include "mpath/scsi/spec/inquiry.h"
#include "mpath/scsi/spec/report_luns.h"
#include "mpath/scsi/spec/sbc_cdb.h"

namespace mpath::scsi::fake::testing {
namespace {

namespace asc = spec::asc;
namespace vpd = spec::vpd;
using spec::InquiryCdb;
using U8 = std::vector<std::uint8_t>;

U8 Text(std::string_view s) { return U8(s.begin(), s.end()); }
U8 Cat(std::initializer_list<U8> parts) {
  U8 out;
  for (const U8& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

using ArrayInquiry = ArrayTest;

TEST_F(ArrayInquiry, StandardDataLikeLio) {
  Answer r = a().In(0, InquiryCdb::Standard(255), 255);
  ASSERT_TRUE(r.good());
  ASSERT_EQ(r.received().size(), 96u);
  EXPECT_EQ(r.residual, 255u - 96u);
  const U8 d = r.received_u8();
  EXPECT_EQ(d[0], 0x00) << "connected direct access block device";
  EXPECT_EQ(d[1], 0x00);
  EXPECT_EQ(d[2], 0x06) << "VERSION: SPC-4, as LIO";
  EXPECT_EQ(d[3], 0x12) << "HISUP, RESPONSE DATA FORMAT 2";
  EXPECT_EQ(d[4], 91) << "ADDITIONAL LENGTH: 96 - 5";
  EXPECT_EQ(d[5], 0x30) << "TPGS 11b, 3PC 0";
  EXPECT_EQ(d[6], 0x00);
  EXPECT_EQ(d[7], 0x02) << "CMDQUE";
  EXPECT_EQ(U8(d.begin() + 8, d.begin() + 16), Text("MPATHSIM"));
  EXPECT_EQ(U8(d.begin() + 16, d.begin() + 32), Text("ALUA-ARRAY      "));
  EXPECT_EQ(U8(d.begin() + 32, d.begin() + 36), Text("0001"));
  EXPECT_EQ(U8(d.begin() + 58, d.begin() + 66), (U8{0x00, 0xA0, 0x09, 0x60, 0x04, 0x60, 0x04, 0xC0}));
  const auto std = wire::LoadPadded<spec::StandardInquiryData>(r.received());
  EXPECT_EQ(std.tpgs(), spec::kTpgsImplicit | spec::kTpgsExplicit);
  EXPECT_TRUE(std.hisup());
}

TEST_F(ArrayInquiry, TpgsFollowsTheConfiguration) {
  for (std::uint8_t tpgs : {0, 1, 2}) {
    Build(ArrayConfig{.vendor = "LIO-ORG", .product = "IBLOCK", .tpgs = tpgs});
    Answer r = a().In(0, InquiryCdb::Standard(36), 36);
    EXPECT_EQ(r.at(5), tpgs << 4);
    const U8 d = r.received_u8();
    EXPECT_EQ(U8(d.begin() + 8, d.begin() + 32), Text("LIO-ORG IBLOCK          "));
  }
}

TEST_F(ArrayInquiry, AllocationLengthTruncatesAndSetsResidual) {
  Answer r = a().In(0, InquiryCdb::Standard(36), 255);
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.received().size(), 36u);
  EXPECT_EQ(r.residual, 255u - 36u);
  EXPECT_EQ(r.at(4), 91) << "ADDITIONAL LENGTH still tells the full size";
  EXPECT_EQ(r.at(36), 0xCC) << "nothing past the allocation length";
  Answer tiny = a().In(0, InquiryCdb::Standard(5), 5);
  EXPECT_EQ(tiny.received().size(), 5u);
  Answer zero = a().In(0, InquiryCdb::Standard(0), 16);
  EXPECT_TRUE(zero.good());
  EXPECT_EQ(zero.residual, 16u);
  // A buffer smaller than the allocation length: the transport can carry only what fits.
  Answer small = a().In(0, InquiryCdb::Standard(96), 20);
  EXPECT_TRUE(small.good());
  EXPECT_EQ(small.residual, 0u);
}

TEST_F(ArrayInquiry, InvalidInquiryFields) {
  EXPECT_EQ(a().In(0, InquiryCdb{spec::op::kInquiry, 0, 0x80, 96, 0}, 96).code(), asc::kInvalidFieldInCdb)
      << "PAGE CODE without EVPD";
  EXPECT_EQ(a().In(0, InquiryCdb{spec::op::kInquiry, 0x02, 0, 96, 0}, 96).code(), asc::kInvalidFieldInCdb) << "CMDDT";
  for (std::uint8_t page : {0x01, 0x86, 0x89, 0xB1, 0xC0}) {
    Answer r = a().In(0, InquiryCdb::Vpd(page, 255), 255);
    EXPECT_EQ(r.code(), asc::kInvalidFieldInCdb) << int{page};
    EXPECT_EQ(r.residual, 255u);
  }
}

TEST_F(ArrayInquiry, SupportedPages) {
  Answer r = a().In(0, InquiryCdb::Vpd(vpd::kSupportedPages, 255), 255);
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.received_u8(), (U8{0x00, 0x00, 0x00, 0x05, 0x00, 0x80, 0x83, 0xB0, 0xB2}));
  LogicalUnitConfig thick = DefaultLu(1);
  thick.thin = false;
  ASSERT_TRUE(array().AddLogicalUnit(thick));
  a().DrainUnitAttentions(1);
  r = a().In(1, InquiryCdb::Vpd(vpd::kSupportedPages, 255), 255);
  EXPECT_EQ(r.received_u8(), (U8{0x00, 0x00, 0x00, 0x04, 0x00, 0x80, 0x83, 0xB0}));
  EXPECT_EQ(a().In(1, InquiryCdb::Vpd(vpd::kLogicalBlockProvisioning, 255), 255).code(), asc::kInvalidFieldInCdb);
}

TEST_F(ArrayInquiry, UnitSerialNumber) {
  Answer r = a().In(0, InquiryCdb::Vpd(vpd::kUnitSerialNumber, 255), 255);
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.received_u8(), Cat({{0x00, 0x80, 0x00, 0x09}, Text("sim-disk0")}));
}

// NOTES.md: LIO's VPD 83h per path: NAA and T10 vendor id for the LU (identical on both paths), relative target
// port, target port group and SCSI name string for the port (PIV 1, protocol 5 iSCSI).
TEST_F(ArrayInquiry, DeviceIdentificationLaidOutLikeLio) {
  const U8 naa(kNaa.begin(), kNaa.end());
  const U8 t10 = Cat({Text("MPATHSIM"), Text("ALUA-ARRAY:sim-disk0"), {0x00}});
  auto name = [](char port) {
    U8 n = Text(std::string("iqn.2026-11.io.mpath.sim:array0,t,0x000") + port);
    n.resize(44, 0x00);  // 40 characters, NUL, padded to a multiple of 4
    return n;
  };
  auto expected = [&](std::uint8_t port, std::uint8_t group) {
    U8 body = Cat({{0x01, 0x03, 0x00, 0x10}, naa,
                   {0x02, 0x01, 0x00, static_cast<std::uint8_t>(t10.size())}, t10,
                   {0x51, 0x94, 0x00, 0x04, 0x00, 0x00, 0x00, port},
                   {0x51, 0x95, 0x00, 0x04, 0x00, 0x00, 0x00, group},
                   {0x53, 0x98, 0x00, 44}, name(static_cast<char>('0' + port))});
    return Cat({{0x00, 0x83, 0x00, static_cast<std::uint8_t>(body.size())}, body});
  };
  Answer ra = a().In(0, InquiryCdb::Vpd(vpd::kDeviceIdentification, 512), 512);
  ASSERT_TRUE(ra.good());
  EXPECT_EQ(ra.received_u8(), expected(1, 10));
  Answer rb = b().In(0, InquiryCdb::Vpd(vpd::kDeviceIdentification, 512), 512);
  ASSERT_TRUE(rb.good());
  EXPECT_EQ(rb.received_u8(), expected(2, 20));

  // The personality's reader sees the same.
  spec::DesignatorReader reader(rb.received());
  ASSERT_TRUE(reader.valid());
  auto naa_d = reader.Find(spec::DesignatorType::kNaa, spec::Association::kLogicalUnit);
  ASSERT_TRUE(naa_d);
  EXPECT_EQ(naa_d->designator.size(), 16u);
  EXPECT_EQ(reader.Find(spec::DesignatorType::kRelativeTargetPort, spec::Association::kTargetPort)
                ->PortOrGroupIdentifier(),
            2);
  EXPECT_EQ(reader.Find(spec::DesignatorType::kTargetPortGroup, spec::Association::kTargetPort)
                ->PortOrGroupIdentifier(),
            20);
  EXPECT_EQ(reader.Find(spec::DesignatorType::kScsiNameString, spec::Association::kTargetPort)->Text(),
            "iqn.2026-11.io.mpath.sim:array0,t,0x0002");

  // Cut by the allocation length: PAGE LENGTH still tells the whole page.
  Answer cut = a().In(0, InquiryCdb::Vpd(vpd::kDeviceIdentification, 10), 64);
  EXPECT_EQ(cut.received().size(), 10u);
  EXPECT_EQ(cut.at(3), expected(1, 10)[3]);
  EXPECT_EQ(cut.residual, 54u);
}

TEST_F(ArrayInquiry, BlockLimits) {
  Answer r = a().In(0, InquiryCdb::Vpd(vpd::kBlockLimits, 255), 255);
  ASSERT_TRUE(r.good());
  ASSERT_EQ(r.received().size(), 64u);
  const U8 d = r.received_u8();
  EXPECT_EQ(U8(d.begin(), d.begin() + 4), (U8{0x00, 0xB0, 0x00, 0x3C}));
  const auto page = wire::LoadPadded<spec::BlockLimitsVpdPage>(r.received());
  EXPECT_TRUE(page.wsnz_bit());
  EXPECT_EQ(page.maximum_transfer_length.value(), 256u);
  EXPECT_EQ(page.maximum_unmap_lba_count.value(), 2048u);
  EXPECT_EQ(page.maximum_unmap_block_descriptor_count.value(), 4u);
  EXPECT_EQ(page.maximum_write_same_length.value(), 1024u);
  EXPECT_EQ(U8(d.begin() + 8, d.begin() + 12), (U8{0, 0, 0x01, 0x00}));
}

TEST_F(ArrayInquiry, LogicalBlockProvisioning) {
  Answer r = a().In(0, InquiryCdb::Vpd(vpd::kLogicalBlockProvisioning, 255), 255);
  ASSERT_TRUE(r.good());
  // LBPU, LBPWS, LBPRZ 001b; PROVISIONING TYPE thin.
  EXPECT_EQ(r.received_u8(), (U8{0x00, 0xB2, 0x00, 0x04, 0x00, 0xC4, 0x02, 0x00}));
}

TEST_F(ArrayInquiry, ReportLuns) {
  ASSERT_TRUE(array().AddLogicalUnit(DefaultLu(5)));
  ASSERT_TRUE(array().AddLogicalUnit(DefaultLu(300)));
  Answer r = a().In(0, spec::ReportLunsCdb::Make(256), 256);
  ASSERT_TRUE(r.good()) << "REPORT LUNS neither reports nor is stopped by the pending 3F/0E";
  EXPECT_EQ(r.received_u8(), (U8{0, 0, 0, 24, 0, 0, 0, 0,             // LUN LIST LENGTH 24
                                 0x00, 0x00, 0, 0, 0, 0, 0, 0,        // LUN 0, peripheral
                                 0x00, 0x05, 0, 0, 0, 0, 0, 0,        // LUN 5
                                 0x41, 0x2C, 0, 0, 0, 0, 0, 0}));     // LUN 300, flat space
  Answer all = a().In(0, spec::ReportLunsCdb::Make(256, spec::select_report::kAll), 256);
  EXPECT_EQ(all.received_u8(), r.received_u8());
  Answer well_known = a().In(0, spec::ReportLunsCdb::Make(256, spec::select_report::kWellKnownOnly), 256);
  EXPECT_EQ(well_known.received_u8(), (U8{0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(a().In(0, spec::ReportLunsCdb::Make(256, 0x03), 256).code(), asc::kInvalidFieldInCdb);
  Answer cut = a().In(0, spec::ReportLunsCdb::Make(16), 256);
  ASSERT_TRUE(cut.good());
  EXPECT_EQ(cut.received().size(), 16u);
  EXPECT_EQ(cut.at(3), 24) << "the list length still counts every LUN";
  EXPECT_EQ(cut.residual, 240u);
  EXPECT_EQ(a().In(0, spec::ReportLunsCdb::Make(15), 256).code(), asc::kInvalidFieldInCdb);
}

TEST_F(ArrayInquiry, ReadCapacity10) {
  Answer r = a().In(0, spec::ReadCapacity10Cdb::Make(), 8);
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.received_u8(), (U8{0x00, 0x00, 0x0F, 0xFF, 0x00, 0x00, 0x02, 0x00}));
  LogicalUnitConfig big = DefaultLu(1);
  big.blocks = 1ull << 33;
  big.block_size = 4096;
  ASSERT_TRUE(array().AddLogicalUnit(big));
  a().DrainUnitAttentions(1);
  r = a().In(1, spec::ReadCapacity10Cdb::Make(), 8);
  EXPECT_EQ(r.received_u8(), (U8{0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x10, 0x00})) << "too big: use (16)";
  r = a().In(1, spec::ReadCapacity16Cdb::Make(32), 32);
  ASSERT_TRUE(r.good());
  const U8 d = r.received_u8();
  EXPECT_EQ(U8(d.begin(), d.begin() + 12), (U8{0, 0, 0, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x10, 0x00}));
}

TEST_F(ArrayInquiry, ReadCapacity16) {
  Answer r = a().In(0, spec::ReadCapacity16Cdb::Make(32), 64);
  ASSERT_TRUE(r.good());
  ASSERT_EQ(r.received().size(), 32u);
  EXPECT_EQ(r.residual, 32u);
  U8 expected(32, 0);
  expected[6] = 0x0F;
  expected[7] = 0xFF;
  expected[10] = 0x02;
  expected[14] = 0xC0;  // LBPME, LBPRZ: thin, and deallocated blocks read as zeroes
  EXPECT_EQ(r.received_u8(), expected);
  const auto data = wire::LoadPadded<spec::ReadCapacity16Data>(r.received());
  EXPECT_TRUE(data.lbpme());
  EXPECT_TRUE(data.lbprz());

  Answer cut = a().In(0, spec::ReadCapacity16Cdb::Make(12), 32);
  EXPECT_EQ(cut.received().size(), 12u);
  LogicalUnitConfig thick = DefaultLu(1);
  thick.thin = false;
  ASSERT_TRUE(array().AddLogicalUnit(thick));
  a().DrainUnitAttentions(0);
  a().DrainUnitAttentions(1);
  EXPECT_EQ(a().In(1, spec::ReadCapacity16Cdb::Make(32), 32).at(14), 0x00);
  // Another SERVICE ACTION IN(16) action (GET LBA STATUS, 12h) is not supported.
  auto get_lba_status = spec::ReadCapacity16Cdb::Make(32);
  get_lba_status.service_action_field = 0x12;
  EXPECT_EQ(a().In(0, get_lba_status, 32).code(), asc::kInvalidFieldInCdb);
}

}  // namespace
}  // namespace mpath::scsi::fake::testing
