// ALUA: REPORT TARGET PORT GROUPS in both formats (and LIO 6.1's cut extended reply), SET TARGET PORT GROUPS, what
// each access state lets through, and timed transitions on a ManualClock.
#include <gtest/gtest.h>

#include <chrono>

#include "array_test_util.h"
#include "mpath/scsi/spec/alua.h"
#include "mpath/scsi/spec/inquiry.h"
#include "mpath/scsi/spec/pr.h"
#include "mpath/scsi/spec/report_luns.h"
#include "mpath/scsi/spec/sbc_cdb.h"

namespace mpath::scsi::fake::testing {
namespace {

namespace asc = spec::asc;
using namespace std::chrono_literals;
using spec::ReportTargetPortGroupsCdb;
using spec::RtpgFormat;
using spec::SetTargetPortGroupDescriptor;
using spec::SetTargetPortGroupsCdb;
using spec::TestUnitReadyCdb;
using U8 = std::vector<std::uint8_t>;

constexpr auto kExtended = static_cast<std::uint8_t>(RtpgFormat::kExtended);

// Group 10 (AO, port 1) and group 20 (ANO, port 2) as RTPG describes them, with LIO's supported states (CFh).
const U8 kDescriptors = {0x00, 0xCF, 0x00, 0x0A, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,
                         0x01, 0xCF, 0x00, 0x14, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02};

U8 Cat(std::initializer_list<U8> parts) {
  U8 out;
  for (const U8& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::vector<std::byte> StpgList(std::initializer_list<SetTargetPortGroupDescriptor> descriptors) {
  std::vector<std::byte> list(4);
  for (const auto& d : descriptors) Append(list, d);
  return list;
}

class ArrayAlua : public ArrayTest {
 protected:
  Answer Rtpg(Host& host, std::uint32_t allocation, std::uint8_t format = 0, std::size_t buffer = 256) {
    return host.In(0, ReportTargetPortGroupsCdb::Make(allocation, format), buffer);
  }
  Answer Stpg(Host& host, std::vector<std::byte> list) {
    const auto length = static_cast<std::uint32_t>(list.size());
    return host.Out(0, SetTargetPortGroupsCdb::Make(length), std::move(list));
  }
  // The state RTPG reports for `group`, through host a.
  spec::AsymmetricAccessState Reported(std::uint16_t group) {
    Answer r = Rtpg(a(), 256);
    spec::RtpgReader reader(r.received());
    while (auto g = reader.Next()) {
      if (g->descriptor.target_port_group.value() == group) return g->descriptor.access_state();
    }
    ADD_FAILURE() << "group " << group << " not reported";
    return spec::AsymmetricAccessState::kOffline;
  }
};

TEST_F(ArrayAlua, RtpgLengthOnly) {
  Answer r = Rtpg(a(), 256);
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.received_u8(), Cat({{0x00, 0x00, 0x00, 0x18}, kDescriptors}));
  EXPECT_EQ(r.residual, 256u - 28u);
}

TEST_F(ArrayAlua, RtpgExtendedHeader) {
  Answer r = Rtpg(b(), 256, kExtended);
  ASSERT_TRUE(r.good());
  // RETURN DATA LENGTH = 4 + descriptors; FORMAT TYPE 001b; IMPLICIT TRANSITION TIME from the configuration.
  EXPECT_EQ(r.received_u8(), Cat({{0x00, 0x00, 0x00, 0x1C, 0x10, 10, 0x00, 0x00}, kDescriptors}));
  spec::RtpgReader reader(r.received());
  EXPECT_EQ(reader.format(), RtpgFormat::kExtended);
  EXPECT_EQ(reader.announced_length(), 32u);
  EXPECT_EQ(reader.implicit_transition_time(), 10);
}

TEST_F(ArrayAlua, ShortAllocationTruncatesButTheLengthTellsTheWhole) {
  for (std::uint32_t allocation : {0u, 2u, 4u, 12u, 27u}) {
    Answer r = Rtpg(a(), allocation);
    ASSERT_TRUE(r.good()) << allocation;
    EXPECT_EQ(r.received().size(), allocation);
    EXPECT_EQ(r.residual, 256u - allocation);
    const U8 full = Cat({{0x00, 0x00, 0x00, 0x18}, kDescriptors});
    EXPECT_EQ(r.received_u8(), U8(full.begin(), full.begin() + allocation));
  }
  Answer r = Rtpg(a(), 8, kExtended);
  EXPECT_EQ(r.received_u8(), (U8{0x00, 0x00, 0x00, 0x1C, 0x10, 10, 0x00, 0x00}));
  EXPECT_EQ(spec::RtpgReader(r.received()).announced_length(), 32u) << "enough to ask again for all of it";
}

// NOTES.md: LIO 6.1 answers the extended header with RETURN DATA LENGTH = the descriptors only, and transfers
// 4 + that, cutting the last port descriptor. With the option on, the array sends LIO's bytes exactly.
TEST_F(ArrayAlua, LioTruncatedExtendedReplyReproducesLio61) {
  Build(ArrayConfig{.transition_time_secs = 0, .lio_truncated_extended_rtpg = true});
  ASSERT_TRUE(array().SetAccessState(20, AluaState::kActiveNonOptimized));  // configfs writes count as implicit
  a().DrainUnitAttentions();
  Answer r = Rtpg(a(), 256, kExtended);
  ASSERT_TRUE(r.good());
  const U8 lio = {0x00, 0x00, 0x00, 0x18, 0x10, 0x00, 0x00, 0x00, 0x00, 0xcf, 0x00, 0x0a, 0x00, 0x00,
                  0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x01, 0xcf, 0x00, 0x14, 0x00, 0x02, 0x00, 0x01};
  EXPECT_EQ(r.received_u8(), lio);
  EXPECT_EQ(r.residual, 256u - 28u);
  // The length-only format is whole, as on LIO.
  EXPECT_EQ(Rtpg(a(), 256).received().size(), 28u);
}

TEST_F(ArrayAlua, RtpgWithoutAluaIsRefusedLikeTgt) {
  Build(ArrayConfig{.tpgs = 0});
  EXPECT_EQ(a().In(0, spec::InquiryCdb::Standard(36), 36).at(5), 0x00);
  EXPECT_EQ(Rtpg(a(), 256).code(), asc::kInvalidFieldInCdb);
  EXPECT_EQ(Rtpg(a(), 256, kExtended).code(), asc::kInvalidFieldInCdb);
}

TEST_F(ArrayAlua, RtpgInvalidFields) {
  EXPECT_EQ(Rtpg(a(), 256, 0b010).code(), asc::kInvalidFieldInCdb) << "reserved PARAMETER DATA FORMAT";
  auto other = ReportTargetPortGroupsCdb::Make(256);
  // REPORT SUPPORTED OPERATION CODES is not supported. SPC-5 wants INVALID FIELD IN CDB for an unsupported service
  // action; LIO 6.1 answers 20/00 here (NOTES.md), which an initiator reads the same way.
  other.format_and_action = 0x0C;
  EXPECT_EQ(a().In(0, other, 256).code(), asc::kInvalidFieldInCdb);
}

TEST_F(ArrayAlua, PreferredBit) {
  ASSERT_TRUE(array().SetPreferred(20, true));
  Answer r = Rtpg(a(), 256);
  EXPECT_EQ(r.at(4 + 12), 0x81) << "PREF + active/non-optimized";
  EXPECT_EQ(r.at(4), 0x00);
}

TEST_F(ArrayAlua, StpgChangesTheGroupsAndTellsEveryOtherNexus) {
  Answer s = Stpg(a(), StpgList({SetTargetPortGroupDescriptor::Make(20, AluaState::kStandby)}));
  ASSERT_TRUE(s.good());
  EXPECT_EQ(s.residual, 0u);
  EXPECT_EQ(*array().AccessState(20), AluaState::kStandby);
  Answer r = Rtpg(a(), 256);
  EXPECT_EQ(r.at(4 + 12), 0x02) << "standby";
  EXPECT_EQ(r.at(4 + 12 + 5), 0x01) << "STATUS CODE: altered by SET TARGET PORT GROUPS";
  EXPECT_EQ(r.at(4 + 5), 0x00) << "group 10 untouched";
  // The issuer gets no unit attention; host b does, then the standby refusal.
  EXPECT_TRUE(a().None(0, TestUnitReadyCdb::Make()).good());
  EXPECT_EQ(b().None(0, TestUnitReadyCdb::Make()).code(), asc::kAsymmetricAccessStateChanged);
  EXPECT_EQ(b().None(0, TestUnitReadyCdb::Make()).code(), asc::kLunNotReadyTargetPortStandby);
  // Back to active/non-optimized through the standby port itself (STPG is allowed there).
  ASSERT_TRUE(Stpg(b(), StpgList({SetTargetPortGroupDescriptor::Make(20, AluaState::kActiveNonOptimized)})).good());
  EXPECT_TRUE(b().None(0, TestUnitReadyCdb::Make()).good());
  EXPECT_EQ(a().DrainUnitAttentions(), (std::vector<spec::SenseCode>{asc::kAsymmetricAccessStateChanged}));
}

TEST_F(ArrayAlua, StpgNeedsExplicitAlua) {
  for (std::uint8_t tpgs : {0, 1}) {
    Build(ArrayConfig{.tpgs = tpgs});
    EXPECT_EQ(Stpg(a(), StpgList({SetTargetPortGroupDescriptor::Make(20, AluaState::kStandby)})).code(),
              asc::kInvalidCommandOperationCode);
    EXPECT_EQ(*array().AccessState(20), AluaState::kActiveNonOptimized);
  }
  Build(ArrayConfig{.tpgs = spec::kTpgsExplicit});
  EXPECT_TRUE(Stpg(a(), StpgList({SetTargetPortGroupDescriptor::Make(20, AluaState::kStandby)})).good());
}

TEST_F(ArrayAlua, MalformedStpgParameterListsChangeNothing) {
  using D = SetTargetPortGroupDescriptor;
  EXPECT_EQ(Stpg(a(), StpgList({D::Make(99, AluaState::kStandby)})).code(), asc::kInvalidFieldInParameterList)
      << "no such group";
  for (AluaState state : {AluaState::kLogicalBlockDependent, AluaState::kOffline, AluaState::kTransitioning,
                          static_cast<AluaState>(0x7)}) {
    EXPECT_EQ(Stpg(a(), StpgList({D::Make(20, state)})).code(), asc::kInvalidFieldInParameterList)
        << int(static_cast<std::uint8_t>(state));
  }
  EXPECT_EQ(Stpg(a(), StpgList({D::Make(10, AluaState::kStandby), D::Make(99, AluaState::kStandby)})).code(),
            asc::kInvalidFieldInParameterList)
      << "all or nothing";
  auto ragged = StpgList({D::Make(20, AluaState::kStandby)});
  ragged.resize(6);
  EXPECT_EQ(Stpg(a(), ragged).code(), asc::kInvalidFieldInParameterList) << "not whole descriptors";
  EXPECT_EQ(Stpg(a(), std::vector<std::byte>(2)).code(), asc::kInvalidFieldInParameterList) << "shorter than header";
  EXPECT_EQ(a().Out(0, SetTargetPortGroupsCdb::Make(8), std::vector<std::byte>(4)).code(), asc::kInvalidFieldInCdb)
      << "more announced than sent";
  auto bad_action = SetTargetPortGroupsCdb::Make(8);
  bad_action.service_action_field = 0x06;
  EXPECT_EQ(a().Out(0, bad_action, StpgList({D::Make(20, AluaState::kStandby)})).code(), asc::kInvalidFieldInCdb);
  EXPECT_TRUE(Stpg(a(), {}).good()) << "PARAMETER LIST LENGTH 0 is no change, not an error";
  EXPECT_EQ(*array().AccessState(10), AluaState::kActiveOptimized);
  EXPECT_EQ(*array().AccessState(20), AluaState::kActiveNonOptimized);
  EXPECT_TRUE(b().DrainUnitAttentions().empty());
}

// What each state lets through (SPC-5 §5.15.2, LIO's core_alua_state_*): probe commands sent through port 2 once
// group 20 is in `state`. nullopt: executed; otherwise the NOT READY code it gets.
struct StateCase {
  const char* name;
  AluaState state;
  std::optional<spec::SenseCode> media;     // TUR, READ, WRITE, READ CAPACITY, SYNCHRONIZE CACHE
  std::optional<spec::SenseCode> rtpg;
  std::optional<spec::SenseCode> stpg;
  std::optional<spec::SenseCode> pr;        // PERSISTENT RESERVE IN
};

class ArrayAluaStates : public ArrayAlua, public ::testing::WithParamInterface<StateCase> {};

TEST_P(ArrayAluaStates, WhatTheStateLetsThrough) {
  const StateCase& p = GetParam();
  ASSERT_TRUE(array().SetAccessState(20, p.state));
  EXPECT_EQ(b().DrainUnitAttentions(), (std::vector<spec::SenseCode>{asc::kAsymmetricAccessStateChanged}));
  EXPECT_EQ(a().DrainUnitAttentions(), (std::vector<spec::SenseCode>{asc::kAsymmetricAccessStateChanged}));
  auto expect = [&](const Answer& r, const std::optional<spec::SenseCode>& refusal, const char* what) {
    if (refusal) {
      EXPECT_TRUE(r.check_condition()) << what;
      EXPECT_EQ(r.code(), *refusal) << what;
    } else {
      EXPECT_TRUE(r.good()) << what << " got " << int(r.code().asc) << "/" << int(r.code().ascq);
    }
  };
  expect(b().None(0, TestUnitReadyCdb::Make()), p.media, "TEST UNIT READY");
  expect(b().In(0, spec::Read10Cdb::Make(0, 1), kBlockSize), p.media, "READ (10)");
  expect(b().Out(0, spec::Write16Cdb::Make(0, 1), Pattern(kBlockSize, 1)), p.media, "WRITE (16)");
  expect(b().In(0, spec::ReadCapacity10Cdb::Make(), 8), p.media, "READ CAPACITY (10)");
  expect(b().None(0, spec::SynchronizeCache10Cdb::Make()), p.media, "SYNCHRONIZE CACHE (10)");
  expect(b().In(0, ReportTargetPortGroupsCdb::Make(256), 256), p.rtpg, "REPORT TARGET PORT GROUPS");
  expect(b().Out(0, SetTargetPortGroupsCdb::Make(0), {}), p.stpg, "SET TARGET PORT GROUPS");
  expect(b().In(0, spec::PersistentReserveInCdb::Make(spec::PrInServiceAction::kReadKeys, 64), 64), p.pr,
         "PERSISTENT RESERVE IN");
  // Always answered, whatever the state.
  expect(b().In(0, spec::InquiryCdb::Standard(96), 96), std::nullopt, "INQUIRY");
  expect(b().In(0, spec::InquiryCdb::Vpd(spec::vpd::kDeviceIdentification, 256), 256), std::nullopt, "VPD 83h");
  expect(b().In(0, spec::ReportLunsCdb::Make(64), 64), std::nullopt, "REPORT LUNS");
  Answer sense = b().In(0, spec::RequestSenseCdb::Make(18), 18);
  expect(sense, std::nullopt, "REQUEST SENSE");
  // Port 1 is another group and goes on.
  expect(a().In(0, spec::Read10Cdb::Make(0, 1), kBlockSize), std::nullopt, "READ on port 1");
}

const auto kStandby = asc::kLunNotReadyTargetPortStandby;
const auto kUnavailable = asc::kLunNotReadyTargetPortUnavailable;
const auto kTransitioning = asc::kLunNotReadyAsymmetricTransition;
const auto kOffline = asc::kLunNotAccessibleOffline;

INSTANTIATE_TEST_SUITE_P(
    EveryState, ArrayAluaStates,
    ::testing::Values(
        StateCase{"ActiveOptimized", AluaState::kActiveOptimized, {}, {}, {}, {}},
        StateCase{"ActiveNonOptimized", AluaState::kActiveNonOptimized, {}, {}, {}, {}},
        StateCase{"LogicalBlockDependent", AluaState::kLogicalBlockDependent, {}, {}, {}, {}},
        StateCase{"Standby", AluaState::kStandby, kStandby, {}, {}, {}},
        StateCase{"Unavailable", AluaState::kUnavailable, kUnavailable, {}, {}, kUnavailable},
        StateCase{"Transitioning", AluaState::kTransitioning, kTransitioning, {}, kTransitioning, kTransitioning},
        StateCase{"Offline", AluaState::kOffline, kOffline, kOffline, kOffline, kOffline}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(ArrayAlua, TimedTransitionLikeLiosTransDelay) {
  ASSERT_TRUE(array().SetAccessState(10, AluaState::kActiveNonOptimized, 3s));
  EXPECT_EQ(*array().AccessState(10), AluaState::kTransitioning);
  // First: the change is announced; then media access waits with 04/0A.
  EXPECT_EQ(a().None(0, TestUnitReadyCdb::Make()).code(), asc::kAsymmetricAccessStateChanged);
  EXPECT_EQ(a().None(0, TestUnitReadyCdb::Make()).code(), asc::kLunNotReadyAsymmetricTransition);
  EXPECT_EQ(a().In(0, spec::Read10Cdb::Make(0, 1), kBlockSize).code(), asc::kLunNotReadyAsymmetricTransition);
  EXPECT_TRUE(a().In(0, spec::InquiryCdb::Standard(36), 36).good());
  EXPECT_EQ(Reported(10), spec::AsymmetricAccessState::kTransitioning);
  clock_.Advance(2999ms);
  EXPECT_EQ(a().None(0, TestUnitReadyCdb::Make()).code(), asc::kLunNotReadyAsymmetricTransition);
  clock_.Advance(1ms);
  // The end is announced with a second 2A/06, then I/O works in the new state.
  EXPECT_EQ(a().None(0, TestUnitReadyCdb::Make()).code(), asc::kAsymmetricAccessStateChanged);
  EXPECT_TRUE(a().In(0, spec::Read10Cdb::Make(0, 1), kBlockSize).good());
  EXPECT_EQ(*array().AccessState(10), AluaState::kActiveNonOptimized);
  Answer r = Rtpg(a(), 256);
  EXPECT_EQ(r.at(4), 0x01);
  EXPECT_EQ(r.at(4 + 5), 0x02) << "STATUS CODE: altered by implicit behaviour";
  // Host b, on the other group, kept working and saw both announcements.
  EXPECT_EQ(b().DrainUnitAttentions(), (std::vector<spec::SenseCode>{asc::kAsymmetricAccessStateChanged}))
      << "b never took the first, so the second merged with it";
}

TEST_F(ArrayAlua, BothAnnouncementsReachANexusThatTakesEachInTime) {
  ASSERT_TRUE(array().SetAccessState(20, AluaState::kStandby, 1s));
  EXPECT_EQ(b().DrainUnitAttentions(), (std::vector<spec::SenseCode>{asc::kAsymmetricAccessStateChanged}));
  clock_.Advance(1s);
  EXPECT_EQ(b().None(0, TestUnitReadyCdb::Make()).code(), asc::kAsymmetricAccessStateChanged);
  EXPECT_EQ(b().None(0, TestUnitReadyCdb::Make()).code(), asc::kLunNotReadyTargetPortStandby);
}

TEST_F(ArrayAlua, ANewChangeReplacesATransitionInProgress) {
  ASSERT_TRUE(array().SetAccessState(20, AluaState::kStandby, 10s));
  ASSERT_TRUE(array().SetAccessState(20, AluaState::kActiveOptimized));
  EXPECT_EQ(*array().AccessState(20), AluaState::kActiveOptimized);
  clock_.Advance(20s);
  b().DrainUnitAttentions();
  EXPECT_EQ(*array().AccessState(20), AluaState::kActiveOptimized);
  EXPECT_TRUE(b().In(0, spec::Read10Cdb::Make(0, 1), kBlockSize).good());
}

}  // namespace
}  // namespace mpath::scsi::fake::testing
