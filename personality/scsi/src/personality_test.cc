// The SCSI personality end to end over the simulated SAN: probe, opt-in, heads whose paths follow ALUA, I/O that
// survives an access-state swap with no error surfaced, and persistent reservations through the head.
#include "mpath/scsi/personality.h"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstring>
#include <vector>

#include "mpath/core/head_channel.h"
#include "mpath/core/io_request.h"
#include "mpath/sim/san.h"
#include "mpath/testing/manual_executor.h"

namespace mpath::scsi {
namespace {

using fake::AluaState;
using namespace std::chrono_literals;

constexpr std::uint32_t kBlock = 512;
constexpr std::uint64_t kBlocks = 4096;

class PersonalityTest : public ::testing::Test {
 protected:
  void Build(MultipathMode mode, std::uint8_t tpgs = 0x3, ScsiPersonalityOptions personality_options = {},
             std::uint32_t block_size = kBlock) {
    san_ = std::move(sim::SimSan::Create({.clock = &clock_, .seed = 9})).value();
    fake::ArrayConfig config;
    config.tpgs = tpgs;
    array_ = san_->AddScsiArray("array0", config).value();
    ASSERT_TRUE(array_->AddPortGroup({.id = 1, .state = AluaState::kActiveOptimized, .preferred = true,
                                      .relative_ports = {1, 2}}));
    ASSERT_TRUE(array_->AddPortGroup({.id = 2, .state = AluaState::kActiveNonOptimized, .preferred = false,
                                      .relative_ports = {3, 4}}));
    fake::LogicalUnitConfig lu;
    lu.lun = 0;
    lu.blocks = kBlocks * kBlock / block_size;
    lu.block_size = block_size;
    lu.naa = {0x60, 0x01, 0x40, 0x50, 0xab, 0xcd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
    lu.serial = "lu0";
    ASSERT_TRUE(array_->AddLogicalUnit(lu));
    RegistryOptions options;
    options.opt_in.mode = mode;
    options.head.policy = IoPolicyKind::kRoundRobin;
    registry_ = std::move(Registry::Create(options, executor_)).value();
    personality_ = std::move(ScsiPersonality::Create(*registry_, executor_, std::move(personality_options))).value();
  }

  Result<Attachment> AttachPort(std::uint16_t port) {
    const std::string name = "p" + std::to_string(port);
    ScsiTransport* nexus = san_->ConnectScsi({.name = name, .array = "array0", .initiator_port = "iqn.2026-11.host:a",
                                              .relative_port = port}).value();
    std::optional<Result<Attachment>> out;
    personality_->AttachPath({.name = name, .transport = "sim", .nexus = nexus, .lun = 0,
                              .initiator_port = "iqn.2026-11.host:a"},
                             [&out](Result<Attachment> a) { out = std::move(a); });
    executor_.RunUntilIdle();
    EXPECT_TRUE(out.has_value()) << "the attach callback ran";
    return out ? std::move(*out) : MakeError(Errc::kInternal, "no callback");
  }

  void AttachAll() {
    for (std::uint16_t port = 1; port <= 4; ++port) {
      auto attached = AttachPort(port);
      ASSERT_TRUE(attached.has_value()) << attached.error().ToString();
      ASSERT_TRUE(attached->multipathed()) << attached->reason;
      head_ = attached->head;
    }
    channel_ = head_->OpenChannel(executor_);
  }

  std::optional<PathInfo> InfoOf(const std::string& name) {
    for (const PathInfo& p : head_->Paths()) {
      if (p.name == name) return p;
    }
    return std::nullopt;
  }

  AccessState AccessOf(const std::string& name) {
    for (const PathInfo& p : head_->Paths()) {
      if (p.name == name) return p.access;
    }
    ADD_FAILURE() << "no path " << name;
    return AccessState::kPersistentLoss;
  }

  std::uint64_t Delivered(const std::string& path) {
    for (const sim::SimPathInfo& p : san_->Paths()) {
      if (p.name == path) return p.counts.delivered;
    }
    return 0;
  }

  // Runs one I/O through the head to completion.
  IoStatus Io(IoOp op, std::uint64_t lba, std::span<std::byte> data) {
    IoRequest* io = pool_.Acquire();
    io->op = op;
    io->offset = lba * kBlock;
    io->length = static_cast<std::uint32_t>(data.size());
    io->data = data.data();
    bool done = false;
    io->user = &done;
    io->OnComplete([](IoRequest& r, void*) { *static_cast<bool*>(r.user) = true; }, nullptr);
    channel_->Submit(*io);
    executor_.RunUntilIdle();
    EXPECT_TRUE(done) << "the I/O completed";
    IoStatus status = io->status;
    pool_.Release(io);
    return status;
  }

  ManualClock clock_;
  testing::ManualExecutor executor_{clock_};
  std::unique_ptr<sim::SimSan> san_;
  fake::Array* array_ = nullptr;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<ScsiPersonality> personality_;
  std::shared_ptr<Head> head_;
  std::shared_ptr<HeadChannel> channel_;
  IoRequestPool pool_{16, 256};
};

TEST_F(PersonalityTest, FourPathsMakeOneHeadWhosePathsFollowAlua) {
  Build(MultipathMode::kOn);
  AttachAll();
  EXPECT_EQ(registry_->Heads().size(), 1u);
  EXPECT_EQ(head_->identity().str(), "naa.60014050abcd00000000000000000001");
  EXPECT_EQ(head_->capacity_bytes(), kBlocks * kBlock);
  EXPECT_EQ(AccessOf("p1"), AccessState::kOptimized);
  EXPECT_EQ(AccessOf("p2"), AccessState::kOptimized);
  EXPECT_EQ(AccessOf("p3"), AccessState::kNonOptimized);
  EXPECT_EQ(AccessOf("p4"), AccessState::kNonOptimized);
}

// A standby port refuses READ CAPACITY, so its path learns the block size from the head; its Block Limits (counted in
// blocks) must be converted with that block size, not the 512 bytes assumed before it is known.
TEST_F(PersonalityTest, AStandbyPathOfA4KUnitKeepsTheHeadsTransferLimits) {
  Build(MultipathMode::kOn, 0x3, {}, 4096);
  ASSERT_TRUE(array_->SetAccessState(2, AluaState::kStandby));
  auto active = AttachPort(1);
  ASSERT_TRUE(active.has_value()) << active.error().ToString();
  head_ = active->head;
  const IoLimits from_active = head_->limits();
  ASSERT_NE(from_active.max_transfer_bytes, 0u) << "the fake array reports Block Limits";
  ASSERT_EQ(from_active.max_transfer_bytes % 4096, 0u);

  auto standby = AttachPort(3);
  ASSERT_TRUE(standby.has_value()) << standby.error().ToString();
  ASSERT_EQ(standby->head, head_);
  EXPECT_EQ(AccessOf("p3"), AccessState::kStandby);
  EXPECT_EQ(head_->limits(), from_active);
}

TEST_F(PersonalityTest, IoSurvivesAnAccessStateSwapWithNoErrorAndMovesToTheNewOptimizedGroup) {
  Build(MultipathMode::kOn);
  AttachAll();
  std::vector<std::byte> out(kBlock), in(kBlock);
  for (std::uint64_t lba = 0; lba < 16; ++lba) {
    std::memset(out.data(), static_cast<int>(lba + 1), out.size());
    ASSERT_TRUE(Io(IoOp::kWrite, lba, out).ok());
  }
  const std::uint64_t before3 = Delivered("p3") + Delivered("p4");
  ASSERT_TRUE(array_->SetAccessState(1, AluaState::kStandby));
  ASSERT_TRUE(array_->SetAccessState(2, AluaState::kActiveOptimized));
  for (std::uint64_t lba = 0; lba < 16; ++lba) {
    IoStatus status = Io(IoOp::kRead, lba, in);
    ASSERT_TRUE(status.ok()) << "read " << lba << ": " << status.context;
    EXPECT_EQ(in[0], static_cast<std::byte>(lba + 1));
  }
  EXPECT_EQ(AccessOf("p1"), AccessState::kStandby);
  EXPECT_EQ(AccessOf("p3"), AccessState::kOptimized);
  const std::uint64_t before12 = Delivered("p1") + Delivered("p2");
  const std::uint64_t mid34 = Delivered("p3") + Delivered("p4");
  EXPECT_GT(mid34, before3);
  for (std::uint64_t lba = 0; lba < 8; ++lba) ASSERT_TRUE(Io(IoOp::kRead, lba, in).ok());
  EXPECT_EQ(Delivered("p1") + Delivered("p2"), before12) << "nothing more goes to the standby group";
  EXPECT_EQ(Delivered("p3") + Delivered("p4"), mid34 + 8);
}

TEST_F(PersonalityTest, OptInOnLeavesADeviceWithoutAluaDirectAndAlwaysTakesIt) {
  Build(MultipathMode::kOn, /*tpgs=*/0);
  auto on = AttachPort(1);
  ASSERT_TRUE(on.has_value()) << on.error().ToString();
  EXPECT_FALSE(on->multipathed());
  EXPECT_NE(on->direct, nullptr);
  EXPECT_TRUE(registry_->Heads().empty());

  Build(MultipathMode::kAlways, /*tpgs=*/0);
  auto always = AttachPort(1);
  ASSERT_TRUE(always.has_value());
  EXPECT_TRUE(always->multipathed());
}

TEST_F(PersonalityTest, ReservationsThroughTheHeadAndAForeignPreemptIsNotRetriedElsewhere) {
  Build(MultipathMode::kOn);
  AttachAll();
  PrCoordinator* pr = personality_->Reservations(head_->name());
  ASSERT_NE(pr, nullptr);
  std::optional<PrResult<>> registered, reserved;
  pr->Register(0xABCD, {}, [&](PrResult<> r) { registered = std::move(r); });
  executor_.RunUntilIdle();
  ASSERT_TRUE(registered && *registered) << (registered ? registered->error().ToString() : "no answer");
  pr->Reserve(spec::PrType::kExclusiveAccessRegistrantsOnly, [&](PrResult<> r) { reserved = std::move(r); });
  executor_.RunUntilIdle();
  ASSERT_TRUE(reserved && *reserved) << (reserved ? reserved->error().ToString() : "no answer");

  std::vector<std::byte> in(kBlock);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(Io(IoOp::kRead, static_cast<std::uint64_t>(i), in).ok()) << i;
  for (const char* path : {"p1", "p2", "p3", "p4"}) EXPECT_GT(Delivered(path), 0u) << path << " carried reads";

  ASSERT_TRUE(array_->ForeignPreempt(0, "iqn.2026-11.other:host", 0x5555,
                                     static_cast<std::uint8_t>(spec::PrType::kExclusiveAccess)));
  const std::uint64_t reads_before = array_->CommandCount(0x28) + array_->CommandCount(0x88);
  int conflicts = 0;
  for (int i = 0; i < 10; ++i) {
    IoStatus status = Io(IoOp::kRead, static_cast<std::uint64_t>(i), in);
    if (status.code == Errc::kReservationConflict) ++conflicts;
  }
  EXPECT_GE(conflicts, 9) << "after the preempt, reads fail with reservation conflict";
  const std::uint64_t reads_after = array_->CommandCount(0x28) + array_->CommandCount(0x88);
  EXPECT_LE(reads_after - reads_before, 10u + 4u) << "a conflict is never retried on another path "
                                                     "(at most one unit attention retry per path)";
  EXPECT_EQ(pr->state(), PrState::kPreempted);
}

TEST_F(PersonalityTest, AReturningPathIsRegisteredBeforeItCarriesIo) {
  Build(MultipathMode::kOn);
  AttachAll();
  PrCoordinator* pr = personality_->Reservations(head_->identity().str());
  ASSERT_NE(pr, nullptr) << "found by identity as well as by name";
  std::optional<PrResult<>> registered, reserved;
  pr->Register(0x77, {}, [&](PrResult<> r) { registered = std::move(r); });
  executor_.RunUntilIdle();
  pr->Reserve(spec::PrType::kExclusiveAccessRegistrantsOnly, [&](PrResult<> r) { reserved = std::move(r); });
  executor_.RunUntilIdle();
  ASSERT_TRUE(registered && *registered && reserved && *reserved);

  ASSERT_TRUE(personality_->DetachPath("p2"));
  EXPECT_FALSE(InfoOf("p2").has_value());
  ASSERT_TRUE(san_->Disconnect("p2"));
  auto back = AttachPort(2);  // a new nexus in the optimized group: the array knows no registration for it
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  ASSERT_TRUE(InfoOf("p2").has_value());
  EXPECT_EQ(InfoOf("p2")->state, PathState::kLive) << "registered, then let in";
  const std::uint64_t before = Delivered("p2");
  std::vector<std::byte> in(kBlock);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(Io(IoOp::kRead, static_cast<std::uint64_t>(i), in).ok()) << i;
  EXPECT_GT(Delivered("p2"), before) << "the returning path carries reads under the registrants-only reservation";
  EXPECT_EQ(pr->state(), PrState::kRegistered);
}

TEST_F(PersonalityTest, ARemappedLuLeavesItsHeadAndIsNeverMerged) {
  std::vector<std::string> remapped;
  ScsiPersonalityOptions options;
  options.on_path_remapped = [&remapped](const std::string& path, const ProbedUnit& now) {
    remapped.push_back(path + "=" + now.identity.identity.str());
  };
  Build(MultipathMode::kOn, 0x3, std::move(options));
  AttachAll();
  std::array<std::uint8_t, 16> other{};
  other[0] = 0x60;
  other[15] = 0x99;
  ASSERT_TRUE(array_->ChangeIdentity(0, other));
  std::vector<std::byte> in(kBlock);
  // The next I/O on each path meets 3F/03; its retry may still succeed, but the path must leave the head.
  for (int i = 0; i < 4; ++i) (void)Io(IoOp::kRead, 0, in);
  executor_.RunUntilIdle();
  EXPECT_FALSE(remapped.empty());
  for (const std::string& r : remapped) EXPECT_NE(r.find("=naa.60000000000000000000000000000099"), std::string::npos) << r;
  for (const std::string& r : remapped) {
    const std::string path = r.substr(0, r.find('='));
    EXPECT_FALSE(InfoOf(path).has_value()) << path << " left the old head";
  }
}

TEST_F(PersonalityTest, AttachErrorsNameThePath) {
  Build(MultipathMode::kOn);
  std::optional<Result<Attachment>> out;
  ScsiPathSpec nameless;
  personality_->AttachPath(std::move(nameless), [&](Result<Attachment> a) { out = std::move(a); });
  ASSERT_TRUE(out.has_value());
  EXPECT_FALSE(out->has_value());
  ScsiTransport* nexus = san_->ConnectScsi({.name = "dead", .array = "array0", .initiator_port = "i", .relative_port = 1})
                             .value();
  (*san_->Faults("dead"))->SetLinkDown(true);
  out.reset();
  ScsiPathSpec dead;
  dead.name = "dead";
  dead.nexus = nexus;
  personality_->AttachPath(std::move(dead), [&](Result<Attachment> a) { out = std::move(a); });
  executor_.RunUntilIdle();
  ASSERT_TRUE(out.has_value());
  ASSERT_FALSE(out->has_value());
  EXPECT_NE(out->error().message().find("SCSI path 'dead'"), std::string::npos) << out->error().message();
  EXPECT_EQ(out->error().code(), Errc::kPathError);
}

}  // namespace
}  // namespace mpath::scsi
