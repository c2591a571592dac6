// Persistent reservations through the array: PERSISTENT RESERVE IN/OUT reach the LU's engine, its answers become
// status and sense, its unit attentions reach the named nexuses, and media commands meet RESERVATION CONFLICT.
// The PR matrix itself is persistent_reservations_test.cc's; these check the wiring, with NOTES.md's two-host
// scenario (host a reserves Write Exclusive, host b may read but not write).
#include <gtest/gtest.h>

#include "array_test_util.h"
#include "mpath/scsi/spec/pr.h"
#include "mpath/scsi/spec/sbc_cdb.h"

namespace mpath::scsi::fake::testing {
namespace {

namespace asc = spec::asc;
using spec::PersistentReserveInCdb;
using spec::PersistentReserveOutCdb;
using spec::PrInServiceAction;
using spec::PrOutParameterList;
using spec::PrOutServiceAction;
using spec::PrType;

std::vector<std::byte> List(std::uint64_t key, std::uint64_t service_action_key, bool all_tg_pt = false) {
  auto list = PrOutParameterList::Make(key, service_action_key);
  list.set_all_tg_pt(all_tg_pt);
  std::vector<std::byte> out;
  Append(out, list);
  return out;
}

class ArrayReservations : public ArrayTest {
 protected:
  Answer Out(Host& host, PrOutServiceAction action, std::vector<std::byte> list,
             PrType type = PrType::kWriteExclusive) {
    const auto length = static_cast<std::uint32_t>(list.size());
    return host.Out(0, PersistentReserveOutCdb::Make(action, length, type), std::move(list));
  }
  void RegisterAndReserve(Host& host, std::uint64_t key, PrType type, bool all_tg_pt = false) {
    ASSERT_TRUE(Out(host, PrOutServiceAction::kRegister, List(0, key, all_tg_pt)).good());
    ASSERT_TRUE(Out(host, PrOutServiceAction::kReserve, List(key, 0), type).good());
  }
  Answer Write(Host& host, std::uint64_t lba = 0) {
    return host.Out(0, spec::Write10Cdb::Make(static_cast<std::uint32_t>(lba), 1), Pattern(kBlockSize, 3));
  }
  Answer Read(Host& host) { return host.In(0, spec::Read10Cdb::Make(0, 1), kBlockSize); }
};

TEST_F(ArrayReservations, WriteExclusiveHolderWritesOthersOnlyRead) {
  RegisterAndReserve(a(), 0xA, PrType::kWriteExclusive);
  Answer w = Write(b());
  EXPECT_TRUE(w.conflict());
  EXPECT_TRUE(w.sense.empty()) << "RESERVATION CONFLICT carries no sense";
  EXPECT_EQ(w.residual, kBlockSize);
  EXPECT_EQ(Read(b()).buffer, std::vector<std::byte>(kBlockSize)) << "b reads, and the write did not happen";
  EXPECT_TRUE(Write(a()).good());
  // Every command that changes the medium conflicts, checked after its CDB.
  EXPECT_TRUE(b().None(0, spec::SynchronizeCache10Cdb::Make()).conflict());
  EXPECT_TRUE(b().Out(0, spec::WriteSame16Cdb::Make(0, 1), Pattern(kBlockSize, 0)).conflict());
  std::vector<std::byte> unmap;
  Append(unmap, spec::UnmapParameterListHeader::ForDescriptors(1));
  Append(unmap, spec::UnmapBlockDescriptor{0, 1, {}});
  EXPECT_TRUE(b().Out(0, spec::UnmapCdb::Make(24), unmap).conflict());
  EXPECT_EQ(b().In(0, spec::Read10Cdb::Make(kBlocks, 1), kBlockSize).code(), asc::kLbaOutOfRange)
      << "a bad CDB is refused as such before the reservation is asked";
  // Commands that do not touch the medium go through.
  EXPECT_TRUE(b().None(0, spec::TestUnitReadyCdb::Make()).good());
  EXPECT_TRUE(b().In(0, spec::ReadCapacity16Cdb::Make(32), 32).good());
  EXPECT_TRUE(b().In(0, spec::ReportTargetPortGroupsCdb::Make(64), 64).good());
}

TEST_F(ArrayReservations, ExclusiveAccessStopsReadsToo) {
  RegisterAndReserve(a(), 0xA, PrType::kExclusiveAccess);
  EXPECT_TRUE(Read(b()).conflict());
  EXPECT_TRUE(Read(a()).good());
}

TEST_F(ArrayReservations, ReadKeysThroughTheArrayHonoursTheAllocationLength) {
  ASSERT_TRUE(Out(a(), PrOutServiceAction::kRegister, List(0, 0xA)).good());
  ASSERT_TRUE(Out(b(), PrOutServiceAction::kRegister, List(0, 0xB)).good());
  Answer keys = a().In(0, PersistentReserveInCdb::Make(PrInServiceAction::kReadKeys, 64), 64);
  ASSERT_TRUE(keys.good());
  ASSERT_EQ(keys.received().size(), 24u);
  EXPECT_EQ(keys.residual, 40u);
  const auto header = wire::LoadPadded<spec::PrInHeader>(keys.received());
  EXPECT_EQ(header.additional_length.value(), 16u);
  EXPECT_EQ(keys.at(15), 0xA);
  EXPECT_EQ(keys.at(23), 0xB);
  Answer cut = a().In(0, PersistentReserveInCdb::Make(PrInServiceAction::kReadKeys, 8), 64);
  ASSERT_TRUE(cut.good());
  EXPECT_EQ(cut.received().size(), 8u);
  EXPECT_EQ(cut.residual, 56u);
}

TEST_F(ArrayReservations, EngineRefusalsBecomeStatusAndSense) {
  Build(ArrayConfig{.sense_format = SenseFormat::kDescriptor});
  // RESERVE from an unregistered nexus: RESERVATION CONFLICT.
  EXPECT_TRUE(Out(a(), PrOutServiceAction::kReserve, List(0xA, 0)).conflict());
  // A basic parameter list that is not 24 bytes: CHECK CONDITION, in the configured format.
  std::vector<std::byte> short_list(20);
  Answer r = Out(a(), PrOutServiceAction::kRegister, short_list);
  EXPECT_TRUE(r.check_condition());
  ASSERT_FALSE(r.sense.empty());
  EXPECT_EQ(r.sense[0], 0x72);
  EXPECT_EQ(r.code().key, spec::SenseKey::kIllegalRequest);
  // More parameter data announced than sent: the array refuses before the engine sees it.
  Answer over = a().Out(0, PersistentReserveOutCdb::Make(PrOutServiceAction::kRegister, 24), std::vector<std::byte>(8));
  EXPECT_EQ(over.code(), asc::kInvalidFieldInCdb);
}

TEST_F(ArrayReservations, PreemptionUnitAttentionsReachThePreemptedNexus) {
  RegisterAndReserve(a(), 0xA, PrType::kWriteExclusive);
  ASSERT_TRUE(Out(b(), PrOutServiceAction::kRegister, List(0, 0xB)).good());
  ASSERT_TRUE(Out(b(), PrOutServiceAction::kPreempt, List(0xB, 0xA), PrType::kWriteExclusive).good());
  const auto codes = a().DrainUnitAttentions();
  ASSERT_FALSE(codes.empty());
  for (const auto& code : codes) EXPECT_EQ(code.asc, 0x2A) << "reservations or registrations preempted";
  EXPECT_TRUE(b().DrainUnitAttentions().empty()) << "the preempting nexus is told nothing";
  EXPECT_TRUE(Write(a()).conflict());
  EXPECT_TRUE(Write(b()).good());
}

TEST_F(ArrayReservations, AllTargetPortsUnitAttentionsReachEveryNexusOfTheInitiator) {
  Host a2(array(), kHostA, 2);
  a2.DrainUnitAttentions();
  RegisterAndReserve(a(), 0xA, PrType::kWriteExclusive, /*all_tg_pt=*/true);
  ASSERT_TRUE(Out(b(), PrOutServiceAction::kRegister, List(0, 0xB)).good());
  ASSERT_TRUE(Out(b(), PrOutServiceAction::kPreempt, List(0xB, 0xA), PrType::kWriteExclusive).good());
  EXPECT_FALSE(a().DrainUnitAttentions().empty());
  EXPECT_FALSE(a2.DrainUnitAttentions().empty());
}

TEST_F(ArrayReservations, ForeignPreemptTakesTheLuAway) {
  RegisterAndReserve(a(), 0xA, PrType::kWriteExclusive);
  ASSERT_TRUE(array().ForeignPreempt(0, "iqn.2026-01.io.other:host", 0xF00, 0x1));
  const auto codes = a().DrainUnitAttentions();
  ASSERT_FALSE(codes.empty());
  EXPECT_EQ(codes.front().asc, 0x2A);
  EXPECT_TRUE(Write(a()).conflict());
  EXPECT_TRUE(Read(a()).good());
  EXPECT_FALSE(array().ForeignPreempt(0, "iqn.2026-01.io.other:host", 0xF00, 0x2)) << "type 2 is obsolete";
}

TEST_F(ArrayReservations, PowerCycleDropsRegistrationsWithoutAptpl) {
  RegisterAndReserve(a(), 0xA, PrType::kExclusiveAccess);
  array().PowerCycle();
  EXPECT_EQ(b().DrainUnitAttentions(), (std::vector<spec::SenseCode>{asc::kPowerOnOccurred}));
  EXPECT_TRUE(Write(b()).good());
}

TEST_F(ArrayReservations, ChangeIdentityClearsReservations) {
  RegisterAndReserve(a(), 0xA, PrType::kExclusiveAccess);
  ASSERT_TRUE(array().ChangeIdentity(0, kNaa));
  b().DrainUnitAttentions();
  EXPECT_TRUE(Write(b()).good());
  Answer keys = b().In(0, PersistentReserveInCdb::Make(PrInServiceAction::kReadKeys, 64), 64);
  EXPECT_EQ(wire::LoadPadded<spec::PrInHeader>(keys.received()).additional_length.value(), 0u);
}

// Without the engine: a handler can stand in for a reservation held elsewhere.
TEST_F(ArrayReservations, HandlerCanInjectAConflict) {
  array().SetHandler(spec::op::kWrite10, [](CommandContext& ctx) {
    ctx.command.status = static_cast<std::uint8_t>(spec::Status::kReservationConflict);
  });
  EXPECT_TRUE(Write(a()).conflict());
}

}  // namespace
}  // namespace mpath::scsi::fake::testing
