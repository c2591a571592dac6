// Unit attentions (SAM-5 §5.14): kept per I_T nexus and per LU, reported oldest first by the next command other
// than INQUIRY and REPORT LUNS, returned as data by REQUEST SENSE, and raised by the device-side events.
#include <gtest/gtest.h>

#include "array_test_util.h"
#include "mpath/scsi/spec/inquiry.h"
#include "mpath/scsi/spec/report_luns.h"
#include "mpath/scsi/spec/sbc_cdb.h"

namespace mpath::scsi::fake::testing {
namespace {

namespace asc = spec::asc;
using spec::SenseCode;
using spec::TestUnitReadyCdb;
using Codes = std::vector<SenseCode>;

using ArrayUnitAttention = ArrayTest;

TEST_F(ArrayUnitAttention, NewNexusGetsPowerOnResetOnItsFirstCommand) {
  Host c(array(), "iqn.2026-01.io.mpath:host-c", 1);
  // INQUIRY and REPORT LUNS neither report nor clear it.
  EXPECT_TRUE(c.In(0, spec::InquiryCdb::Standard(96), 96).good());
  EXPECT_TRUE(c.In(0, spec::ReportLunsCdb::Make(64), 64).good());
  Answer first = c.In(0, spec::Read10Cdb::Make(0, 1), kBlockSize);
  EXPECT_TRUE(first.check_condition());
  EXPECT_EQ(first.code(), asc::kPowerOnResetOrBusDeviceReset);
  EXPECT_EQ(first.residual, kBlockSize) << "not executed";
  EXPECT_TRUE(c.In(0, spec::Read10Cdb::Make(0, 1), kBlockSize).good()) << "cleared once reported";
}

TEST_F(ArrayUnitAttention, CommandWithAPendingUnitAttentionIsNotExecuted) {
  array().RaiseUnitAttentionEverywhere(asc::kParametersChanged);
  Answer w = a().Out(0, spec::Write10Cdb::Make(0, 1), Pattern(kBlockSize, 1));
  EXPECT_EQ(w.code(), asc::kParametersChanged);
  Answer r = a().In(0, spec::Read10Cdb::Make(0, 1), kBlockSize);
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.buffer, std::vector<std::byte>(kBlockSize)) << "the write never happened";
}

TEST_F(ArrayUnitAttention, RequestSenseReturnsAndClearsIt) {
  array().RaiseUnitAttentionEverywhere(asc::kParametersChanged);
  Answer sense = a().In(0, spec::RequestSenseCdb::Make(252), 252);
  ASSERT_TRUE(sense.good()) << "REQUEST SENSE itself succeeds";
  ASSERT_EQ(sense.received().size(), 18u);
  auto parsed = spec::ParseSense(sense.received());
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->format, spec::SenseFormat::kFixed);
  EXPECT_EQ(parsed->code, asc::kParametersChanged);
  EXPECT_TRUE(a().None(0, TestUnitReadyCdb::Make()).good());
  // With nothing pending: NO SENSE. DESC selects the descriptor format.
  Answer none = a().In(0, spec::RequestSenseCdb::Make(252, SenseFormat::kDescriptor), 252);
  ASSERT_TRUE(none.good());
  EXPECT_EQ(none.received_u8(), (std::vector<std::uint8_t>{0x72, 0, 0, 0, 0, 0, 0, 0}));
  // The allocation length cuts it.
  array().RaiseUnitAttentionEverywhere(asc::kParametersChanged);
  Answer cut = a().In(0, spec::RequestSenseCdb::Make(8), 252);
  EXPECT_EQ(cut.received().size(), 8u);
  EXPECT_EQ(cut.at(2), 0x06);
  EXPECT_TRUE(a().None(0, TestUnitReadyCdb::Make()).good()) << "reported, even if cut";
}

TEST_F(ArrayUnitAttention, OneNexusDoesNotDisturbAnother) {
  array().RaiseUnitAttentionEverywhere(asc::kParametersChanged);
  EXPECT_EQ(a().DrainUnitAttentions(), Codes{asc::kParametersChanged});
  EXPECT_EQ(b().DrainUnitAttentions(), Codes{asc::kParametersChanged}) << "b's copy is its own";
  // Same initiator, other port: another nexus, with its own power-on reset.
  Host a2(array(), kHostA, 2);
  EXPECT_EQ(a2.DrainUnitAttentions(), Codes{asc::kPowerOnResetOrBusDeviceReset});
  EXPECT_TRUE(a().None(0, TestUnitReadyCdb::Make()).good());
}

TEST_F(ArrayUnitAttention, QueuedInOrderWithoutDuplicates) {
  array().RaiseUnitAttentionEverywhere(asc::kParametersChanged);
  array().RaiseUnitAttentionEverywhere(asc::kCapacityDataHasChanged);
  array().RaiseUnitAttentionEverywhere(asc::kParametersChanged);
  EXPECT_EQ(a().DrainUnitAttentions(), (Codes{asc::kParametersChanged, asc::kCapacityDataHasChanged}));
}

TEST_F(ArrayUnitAttention, PerLogicalUnit) {
  ASSERT_TRUE(array().AddLogicalUnit(DefaultLu(1)));
  EXPECT_EQ(a().DrainUnitAttentions(0), Codes{asc::kReportedLunsDataHasChanged});
  EXPECT_EQ(a().DrainUnitAttentions(1), Codes{asc::kReportedLunsDataHasChanged});
  ASSERT_TRUE(array().ChangeCapacity(1, 100));
  EXPECT_TRUE(a().DrainUnitAttentions(0).empty()) << "LU 0 did not change";
  EXPECT_EQ(a().DrainUnitAttentions(1), Codes{asc::kCapacityDataHasChanged});
}

TEST_F(ArrayUnitAttention, ReconnectingAnExistingNexusReportsNexusLoss) {
  a().Disconnect();
  Host again(array(), kHostA, 1);
  EXPECT_EQ(again.DrainUnitAttentions(), Codes{asc::kITNexusLossOccurred});
  // A reconnect before the power-on reset was taken adds nothing: the reset already says it all.
  Host c(array(), "iqn.2026-01.io.mpath:host-c", 2);
  Host c_again(array(), "iqn.2026-01.io.mpath:host-c", 2);
  EXPECT_EQ(c_again.DrainUnitAttentions(), Codes{asc::kPowerOnResetOrBusDeviceReset});
  EXPECT_TRUE(c.DrainUnitAttentions().empty()) << "one nexus, whichever transport asks";
}

TEST_F(ArrayUnitAttention, PendingUnitAttentionsSurviveAReconnect) {
  array().RaiseUnitAttentionEverywhere(asc::kParametersChanged);
  a().Disconnect();
  Host again(array(), kHostA, 1);
  EXPECT_EQ(again.DrainUnitAttentions(), (Codes{asc::kParametersChanged, asc::kITNexusLossOccurred}));
}

TEST_F(ArrayUnitAttention, LogicalUnitsAddedAndRemoved) {
  ASSERT_TRUE(array().AddLogicalUnit(DefaultLu(3)));
  EXPECT_EQ(b().DrainUnitAttentions(0), Codes{asc::kReportedLunsDataHasChanged});
  ASSERT_TRUE(array().RemoveLogicalUnit(3));
  EXPECT_EQ(b().DrainUnitAttentions(0), Codes{asc::kReportedLunsDataHasChanged});
  EXPECT_EQ(b().DrainUnitAttentions(3), Codes{}) << "gone: 25/00, not a unit attention";
}

TEST_F(ArrayUnitAttention, ChangeIdentityIsADifferentVolume) {
  ASSERT_TRUE(a().Out(0, spec::Write10Cdb::Make(0, 1), Pattern(kBlockSize, 2)).good());
  auto naa = kNaa;
  naa[15] = 0x77;
  ASSERT_TRUE(array().ChangeIdentity(0, naa));
  EXPECT_EQ(a().DrainUnitAttentions(), Codes{asc::kInquiryDataHasChanged});
  EXPECT_EQ(b().DrainUnitAttentions(), Codes{asc::kInquiryDataHasChanged});
  Answer page = a().In(0, spec::InquiryCdb::Vpd(spec::vpd::kDeviceIdentification, 256), 256);
  auto d = spec::DesignatorReader(page.received()).Find(spec::DesignatorType::kNaa, spec::Association::kLogicalUnit);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->designator[15], std::byte{0x77});
  Answer r = a().In(0, spec::Read10Cdb::Make(0, 1), kBlockSize);
  EXPECT_EQ(r.buffer, std::vector<std::byte>(kBlockSize)) << "fresh contents";
}

TEST_F(ArrayUnitAttention, PowerCycleLeavesOnlyThePowerOn) {
  array().RaiseUnitAttentionEverywhere(asc::kParametersChanged);
  array().PowerCycle();
  EXPECT_EQ(a().DrainUnitAttentions(), Codes{asc::kPowerOnOccurred});
  EXPECT_EQ(b().DrainUnitAttentions(), Codes{asc::kPowerOnOccurred});
}

TEST_F(ArrayUnitAttention, DescriptorSenseWhenConfigured) {
  Build(ArrayConfig{.sense_format = SenseFormat::kDescriptor});
  array().RaiseUnitAttentionEverywhere(asc::kParametersChanged);
  Answer r = a().None(0, TestUnitReadyCdb::Make());
  ASSERT_EQ(r.sense.size(), 8u);
  EXPECT_EQ(r.sense, (std::vector<std::uint8_t>{0x72, 0x06, 0x2A, 0x00, 0, 0, 0, 0}));
  Answer fixed = a().In(0, spec::Read10Cdb::Make(kBlocks, 1), kBlockSize);
  EXPECT_EQ(fixed.sense[0], 0x72);
  EXPECT_EQ(fixed.code(), asc::kLbaOutOfRange);
}

}  // namespace
}  // namespace mpath::scsi::fake::testing
