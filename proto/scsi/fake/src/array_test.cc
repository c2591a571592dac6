// The array's lifecycle, dispatch and the answers common to every command: configuration errors, missing LUNs,
// unknown opcodes, short CDBs, handler overrides and command counts.
#include "mpath/scsi/fake/array.h"

#include <gtest/gtest.h>

#include "array_test_util.h"
#include "mpath/scsi/spec/inquiry.h"
#include "mpath/scsi/spec/report_luns.h"
#include "mpath/scsi/spec/sbc_cdb.h"

namespace mpath::scsi::fake::testing {
namespace {

namespace asc = spec::asc;
using spec::InquiryCdb;
using spec::Read10Cdb;
using spec::Read16Cdb;
using spec::TestUnitReadyCdb;

TEST(ArrayCreate, RefusesBadConfiguration) {
  ManualClock clock;
  EXPECT_EQ(Array::Create(ArrayConfig{.tpgs = 4}, clock).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(Array::Create(ArrayConfig{.vendor = "TOO-LONG-VENDOR"}, clock).error().code(), Errc::kInvalidArgument);
  auto array = Array::Create(ArrayConfig{}, clock);
  ASSERT_TRUE(array);
  EXPECT_EQ((*array)->config().vendor, "MPATHSIM");
}

TEST(ArrayCreate, RefusesBadPortGroupsLogicalUnitsAndNexuses) {
  ManualClock clock;
  auto array = std::move(*Array::Create(ArrayConfig{}, clock));
  ASSERT_TRUE(array->AddPortGroup({.id = 1, .relative_ports = {1, 2}}));
  EXPECT_EQ(array->AddPortGroup({.id = 1, .relative_ports = {3}}).error().code(), Errc::kAlreadyExists);
  EXPECT_EQ(array->AddPortGroup({.id = 2, .relative_ports = {2}}).error().code(), Errc::kAlreadyExists);
  EXPECT_EQ(array->AddPortGroup({.id = 3, .relative_ports = {4, 4}}).error().code(), Errc::kAlreadyExists);
  EXPECT_EQ(array->AddPortGroup({.id = 4, .relative_ports = {0}}).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(array->AddPortGroup({.id = 5, .state = AluaState::kTransitioning, .relative_ports = {5}}).error().code(),
            Errc::kInvalidArgument);

  EXPECT_EQ(array->AddLogicalUnit(DefaultLu(16384)).error().code(), Errc::kInvalidArgument);
  LogicalUnitConfig empty = DefaultLu(1);
  empty.blocks = 0;
  EXPECT_EQ(array->AddLogicalUnit(empty).error().code(), Errc::kInvalidArgument);
  LogicalUnitConfig odd = DefaultLu(1);
  odd.block_size = 100;
  EXPECT_EQ(array->AddLogicalUnit(odd).error().code(), Errc::kInvalidArgument);
  ASSERT_TRUE(array->AddLogicalUnit(DefaultLu(1)));
  EXPECT_EQ(array->AddLogicalUnit(DefaultLu(1)).error().code(), Errc::kAlreadyExists);
  EXPECT_EQ(array->RemoveLogicalUnit(9).error().code(), Errc::kNotFound);

  EXPECT_EQ(array->Connect(kHostA, 7).error().code(), Errc::kNotFound);
  EXPECT_EQ(array->Connect("", 1).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(array->ChangeCapacity(9, 10).error().code(), Errc::kNotFound);
  EXPECT_EQ(array->ChangeCapacity(1, 0).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(array->ChangeIdentity(9, kNaa).error().code(), Errc::kNotFound);
  EXPECT_EQ(array->AllocatedBytes(9).error().code(), Errc::kNotFound);
  EXPECT_EQ(array->SetAccessState(9, AluaState::kStandby).error().code(), Errc::kNotFound);
  EXPECT_EQ(array->SetPreferred(9, true).error().code(), Errc::kNotFound);
  EXPECT_EQ(array->AccessState(9).error().code(), Errc::kNotFound);
  EXPECT_EQ(array->ForeignPreempt(9, "iqn.x", 1, 1).error().code(), Errc::kNotFound);
}

using ArrayDispatch = ArrayTest;

TEST_F(ArrayDispatch, UnknownOpcodeIsInvalidCommandOperationCode) {
  // REZERO UNIT (6 bytes), a variable-length CDB and a vendor specific one.
  for (std::vector<std::uint8_t> cdb : {std::vector<std::uint8_t>{0x01, 0, 0, 0, 0, 0},
                                        std::vector<std::uint8_t>(32, 0x7F), std::vector<std::uint8_t>{0xC5}}) {
    Answer r = a().Raw(0, cdb, DataDirection::kFromDevice, std::vector<std::byte>(64));
    EXPECT_TRUE(r.check_condition()) << int{cdb[0]};
    EXPECT_EQ(r.code(), asc::kInvalidCommandOperationCode);
    EXPECT_EQ(r.delivery, Delivery::kDelivered);
    EXPECT_EQ(r.residual, 64u) << "nothing transferred";
  }
}

TEST_F(ArrayDispatch, CdbShorterThanItsOpcodeIsInvalidFieldNeverACrash) {
  const auto inquiry_cdb = InquiryCdb::Standard(96);
  const auto read16_cdb = Read16Cdb::Make(0, 1);
  const auto inquiry = wire::BytesOf(inquiry_cdb);
  const auto read16 = wire::BytesOf(read16_cdb);
  for (std::size_t n = 1; n < 16; ++n) {
    std::vector<std::uint8_t> cdb(n);
    std::memcpy(cdb.data(), read16.data(), n);
    Answer r = a().Raw(0, cdb, DataDirection::kFromDevice, std::vector<std::byte>(512));
    EXPECT_EQ(r.code(), asc::kInvalidFieldInCdb) << n;
    EXPECT_EQ(r.residual, 512u);
  }
  std::vector<std::uint8_t> five(5);
  std::memcpy(five.data(), inquiry.data(), 5);
  EXPECT_EQ(a().Raw(0, five, DataDirection::kFromDevice, std::vector<std::byte>(96)).code(), asc::kInvalidFieldInCdb);
  Answer empty = a().Raw(0, {}, DataDirection::kNone, {});
  EXPECT_TRUE(empty.check_condition());
  EXPECT_EQ(empty.code(), asc::kInvalidFieldInCdb);
}

TEST_F(ArrayDispatch, MissingLunAnswersOnlyWhatSpcRequires) {
  // INQUIRY: peripheral qualifier 011b, device type 1Fh.
  Answer inquiry = a().In(7, InquiryCdb::Standard(96), 96);
  ASSERT_TRUE(inquiry.good());
  EXPECT_EQ(inquiry.at(0), 0x7F);
  EXPECT_EQ(inquiry.received().size(), 96u);
  Answer pages = a().In(7, InquiryCdb::Vpd(spec::vpd::kSupportedPages, 64), 64);
  ASSERT_TRUE(pages.good());
  EXPECT_EQ(pages.received_u8(), (std::vector<std::uint8_t>{0x7F, 0x00, 0x00, 0x01, 0x00}));
  EXPECT_EQ(a().In(7, InquiryCdb::Vpd(spec::vpd::kDeviceIdentification, 64), 64).code(), asc::kInvalidFieldInCdb);
  // REQUEST SENSE: GOOD, with LOGICAL UNIT NOT SUPPORTED as its data.
  Answer sense = a().In(7, spec::RequestSenseCdb::Make(18), 18);
  ASSERT_TRUE(sense.good());
  EXPECT_EQ(spec::ParseSense(sense.received())->code, asc::kLogicalUnitNotSupported);
  // REPORT LUNS still lists the LUs there are.
  Answer luns = a().In(7, spec::ReportLunsCdb::Make(64), 64);
  ASSERT_TRUE(luns.good());
  EXPECT_EQ(luns.received().size(), 16u);
  // Everything else: ILLEGAL REQUEST, LOGICAL UNIT NOT SUPPORTED.
  EXPECT_EQ(a().None(7, TestUnitReadyCdb::Make()).code(), asc::kLogicalUnitNotSupported);
  Answer read = a().In(7, Read10Cdb::Make(0, 1), 512);
  EXPECT_EQ(read.code(), asc::kLogicalUnitNotSupported);
  EXPECT_EQ(read.residual, 512u);
}

TEST_F(ArrayDispatch, RemovedLunStopsAnswering) {
  ASSERT_TRUE(array().RemoveLogicalUnit(0));
  EXPECT_EQ(a().None(0, TestUnitReadyCdb::Make()).code(), asc::kLogicalUnitNotSupported);
  EXPECT_EQ(a().In(0, InquiryCdb::Standard(96), 96).at(0), 0x7F);
  ASSERT_TRUE(array().AddLogicalUnit(DefaultLu(0)));
  EXPECT_EQ(a().DrainUnitAttentions(), (std::vector<spec::SenseCode>{asc::kReportedLunsDataHasChanged}));
  EXPECT_TRUE(a().None(0, TestUnitReadyCdb::Make()).good());
  Answer read = a().In(0, Read10Cdb::Make(0, 1), 512);
  ASSERT_TRUE(read.good());
  EXPECT_EQ(read.buffer, std::vector<std::byte>(512)) << "a new LU starts empty";
}

TEST_F(ArrayDispatch, CountsEveryCommandByOpcode) {
  const std::uint64_t before = array().CommandCount(spec::op::kTestUnitReady);
  a().None(0, TestUnitReadyCdb::Make());
  b().None(0, TestUnitReadyCdb::Make());
  a().None(9, TestUnitReadyCdb::Make());  // refused, still received
  EXPECT_EQ(array().CommandCount(spec::op::kTestUnitReady), before + 3);
  const std::uint64_t rtpg = array().CommandCount(spec::op::kMaintenanceIn);
  a().In(0, spec::ReportTargetPortGroupsCdb::Make(64), 64);
  EXPECT_EQ(array().CommandCount(spec::op::kMaintenanceIn), rtpg + 1);
}

TEST_F(ArrayDispatch, HandlerOverridesOneOpcodeAndMayFallThrough) {
  int calls = 0;
  array().SetHandler(spec::op::kRead10, [&](CommandContext& ctx) {
    ++calls;
    if (ctx.lun == 0 && ctx.command.cdb[5] == 1) {  // LBA 1: inject transitioning
      spec::SetCheckCondition(ctx.command, SenseFormat::kFixed, asc::kLunNotReadyAsymmetricTransition);
    } else if (ctx.command.cdb[5] == 2) {  // LBA 2: the path drops it
      ctx.command.delivery = Delivery::kLinkDown;
    } else {
      ctx.array.DefaultHandler(ctx);
    }
  });
  EXPECT_EQ(a().In(0, Read10Cdb::Make(1, 1), 512).code(), asc::kLunNotReadyAsymmetricTransition);
  EXPECT_EQ(a().In(0, Read10Cdb::Make(2, 1), 512).delivery, Delivery::kLinkDown);
  Answer normal = a().In(0, Read10Cdb::Make(3, 1), 512);
  EXPECT_TRUE(normal.good());
  EXPECT_EQ(normal.residual, 0u);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(array().CommandCount(spec::op::kRead10), 3u);
  array().SetHandler(spec::op::kRead10, nullptr);
  EXPECT_TRUE(a().In(0, Read10Cdb::Make(1, 1), 512).good());
  EXPECT_EQ(calls, 3);
}

TEST_F(ArrayDispatch, EveryAnswerSetsDeliveryStatusAndResidual) {
  // Host::Raw pre-fills status 0xFF, residual 0xDEAD and delivery kTimedOut; every answer must overwrite them.
  const std::vector<Answer> answers = {
      a().None(0, TestUnitReadyCdb::Make()),
      a().In(0, InquiryCdb::Standard(36), 36),
      a().In(0, Read10Cdb::Make(0, 1), 512),
      a().In(0, Read10Cdb::Make(kBlocks, 1), 512),
      a().In(9, Read10Cdb::Make(0, 1), 512),
      a().None(0, std::array<std::uint8_t, 6>{0x01}),
  };
  for (const Answer& r : answers) {
    EXPECT_EQ(r.delivery, Delivery::kDelivered);
    EXPECT_NE(r.status, 0xFF);
    EXPECT_LE(r.residual, r.buffer.size());
  }
}

}  // namespace
}  // namespace mpath::scsi::fake::testing
