// The simulated SAN end to end: devices built by name, paths connected through fault decorators, bytes written on
// one path read back on another, and faults injected per path by name.
#include "mpath/sim/san.h"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstring>
#include <vector>

#include "mpath/testing/manual_executor.h"

namespace mpath::sim {
namespace {

using namespace std::chrono_literals;
using proto::Delivery;

// Runs one SCSI command to completion (the SAN's devices answer inline unless a fault delays them).
struct ScsiCall {
  scsi::ScsiCommand command;
  bool finished = false;

  static void Done(scsi::ScsiCommand&, void* arg) { static_cast<ScsiCall*>(arg)->finished = true; }
  void Run(scsi::ScsiTransport& path, std::uint64_t lun, testing::ManualExecutor& executor) {
    command.executor = &executor;
    command.OnFinish(&Done, this);
    path.Submit(lun, command);
    executor.RunUntilIdle();
  }
};

// READ(10)/WRITE(10) of `blocks` 512-byte blocks at `lba` (SBC-4 §5.16, §5.40), built byte by byte on purpose: the
// SAN test must not depend on the headers it helps to test.
void Rw10(scsi::ScsiCommand& command, bool write, std::uint32_t lba, std::uint16_t blocks, std::span<std::byte> data) {
  command = {};
  command.cdb = {};
  command.cdb[0] = write ? 0x2A : 0x28;
  command.cdb[2] = static_cast<std::uint8_t>(lba >> 24);
  command.cdb[3] = static_cast<std::uint8_t>(lba >> 16);
  command.cdb[4] = static_cast<std::uint8_t>(lba >> 8);
  command.cdb[5] = static_cast<std::uint8_t>(lba);
  command.cdb[7] = static_cast<std::uint8_t>(blocks >> 8);
  command.cdb[8] = static_cast<std::uint8_t>(blocks);
  command.cdb_length = 10;
  command.direction = write ? scsi::DataDirection::kToDevice : scsi::DataDirection::kFromDevice;
  command.data = data;
}

class SanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto san = SimSan::Create({.clock = &clock_, .seed = 11});
    ASSERT_TRUE(san.has_value());
    san_ = std::move(*san);
    auto array = san_->AddScsiArray("array0", {});
    ASSERT_TRUE(array.has_value()) << array.error().ToString();
    array_ = *array;
    ASSERT_TRUE(array_->AddPortGroup({.id = 1, .state = scsi::fake::AluaState::kActiveOptimized, .preferred = true,
                                      .relative_ports = {1, 2}}).has_value());
    ASSERT_TRUE(array_->AddPortGroup({.id = 2, .state = scsi::fake::AluaState::kActiveNonOptimized, .preferred = false,
                                      .relative_ports = {3, 4}}).has_value());
    scsi::fake::LogicalUnitConfig lu{.lun = 0, .blocks = 2048, .block_size = 512, .naa = {}, .serial = "lu0", .thin = true};
    lu.naa[0] = 0x60;
    lu.naa[15] = 0x01;
    ASSERT_TRUE(array_->AddLogicalUnit(lu).has_value());
  }

  scsi::ScsiTransport& ConnectScsi(const std::string& name, std::uint16_t port) {
    auto path = san_->ConnectScsi({.name = name, .array = "array0", .initiator_port = "iqn.host:a", .relative_port = port});
    EXPECT_TRUE(path.has_value()) << path.error().ToString();
    return **path;
  }

  // The first command on a new nexus reports 29/00; clear it like an initiator does after login.
  void ClearPowerOnAttention(scsi::ScsiTransport& path) {
    ScsiCall tur;
    tur.command.cdb_length = 6;  // TEST UNIT READY: all zero
    tur.Run(path, 0, executor_);
    ASSERT_TRUE(tur.finished);
    ASSERT_EQ(tur.command.status, 0x02) << "CHECK CONDITION with the power-on unit attention";
    tur.command.ResetAnswer();
    tur.Run(path, 0, executor_);
    ASSERT_EQ(tur.command.status, 0x00);
  }

  ManualClock clock_;
  testing::ManualExecutor executor_{clock_};
  std::unique_ptr<SimSan> san_;
  scsi::fake::Array* array_ = nullptr;
};

TEST_F(SanTest, BytesWrittenOnOnePathReadBackOnAnother) {
  scsi::ScsiTransport& a = ConnectScsi("a1", 1);
  scsi::ScsiTransport& b = ConnectScsi("b3", 3);
  ClearPowerOnAttention(a);
  ClearPowerOnAttention(b);

  std::vector<std::byte> out(1024);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::byte>(i * 7 + 3);
  ScsiCall write;
  Rw10(write.command, true, 100, 2, out);
  write.Run(a, 0, executor_);
  ASSERT_TRUE(write.finished);
  ASSERT_EQ(write.command.delivery, Delivery::kDelivered);
  ASSERT_EQ(write.command.status, 0x00);

  std::vector<std::byte> in(1024);
  ScsiCall read;
  Rw10(read.command, false, 100, 2, in);
  read.Run(b, 0, executor_);
  ASSERT_EQ(read.command.status, 0x00);
  EXPECT_EQ(in, out);
}

TEST_F(SanTest, LinkFaultsAreInjectedPerPathByName) {
  scsi::ScsiTransport& a = ConnectScsi("a1", 1);
  scsi::ScsiTransport& b = ConnectScsi("a2", 2);
  ClearPowerOnAttention(a);
  ClearPowerOnAttention(b);
  auto faults = san_->Faults("a1");
  ASSERT_TRUE(faults.has_value());
  (*faults)->SetLinkDown(true);

  std::vector<std::byte> buffer(512);
  ScsiCall on_a;
  Rw10(on_a.command, false, 0, 1, buffer);
  on_a.Run(a, 0, executor_);
  EXPECT_EQ(on_a.command.delivery, Delivery::kLinkDown);
  ScsiCall on_b;
  Rw10(on_b.command, false, 0, 1, buffer);
  on_b.Run(b, 0, executor_);
  EXPECT_EQ(on_b.command.delivery, Delivery::kDelivered);
  EXPECT_EQ(on_b.command.status, 0x00);

  std::vector<SimPathInfo> paths = san_->Paths();
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(paths[0].name, "a1");
  EXPECT_TRUE(paths[0].faults.link_down);
  EXPECT_EQ(paths[0].counts.link_down, 1u);
  EXPECT_FALSE(paths[1].faults.link_down);
  EXPECT_EQ(paths[1].target, "array0");
  EXPECT_EQ(paths[1].port, 2);
}

TEST_F(SanTest, NamesAreCheckedAndErrorsSayWhatWasWrong) {
  auto unknown = san_->ConnectScsi({.name = "x", .array = "nope", .initiator_port = "iqn.h", .relative_port = 1});
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code(), Errc::kNotFound);
  EXPECT_NE(unknown.error().message().find("nope"), std::string::npos);

  ConnectScsi("a1", 1);
  auto duplicate = san_->ConnectScsi({.name = "a1", .array = "array0", .initiator_port = "iqn.h", .relative_port = 2});
  ASSERT_FALSE(duplicate.has_value());
  EXPECT_EQ(duplicate.error().code(), Errc::kAlreadyExists);

  auto again = san_->AddNvmeSubsystem("array0", {});
  ASSERT_FALSE(again.has_value()) << "arrays and subsystems share one namespace of target names";
  EXPECT_EQ(again.error().code(), Errc::kAlreadyExists);

  EXPECT_FALSE(san_->Faults("missing").has_value());
  EXPECT_FALSE(san_->Disconnect("missing").has_value());
  EXPECT_TRUE(san_->Disconnect("a1").has_value());
  EXPECT_TRUE(san_->Paths().empty());

  EXPECT_FALSE(SimSan::Create({.clock = &clock_, .seed = 1, .scsi_timeout = Nanos(0)}).has_value());
}

TEST_F(SanTest, AluaChangesReachThePathsThroughTheArray) {
  scsi::ScsiTransport& a = ConnectScsi("a1", 1);
  ClearPowerOnAttention(a);
  ASSERT_TRUE(array_->SetAccessState(1, scsi::fake::AluaState::kStandby).has_value());
  std::vector<std::byte> buffer(512);
  ScsiCall read;
  Rw10(read.command, false, 0, 1, buffer);
  read.Run(a, 0, executor_);
  ASSERT_EQ(read.command.status, 0x02) << "first the access-state-changed unit attention";
  EXPECT_EQ(read.command.sense[12], 0x2A);
  EXPECT_EQ(read.command.sense[13], 0x06);
  read.command.ResetAnswer();
  read.Run(a, 0, executor_);
  ASSERT_EQ(read.command.status, 0x02);
  EXPECT_EQ(read.command.sense[2] & 0x0F, 0x02) << "NOT READY";
  EXPECT_EQ(read.command.sense[12], 0x04);
  EXPECT_EQ(read.command.sense[13], 0x0B) << "target port in standby state";
}

// One NVMe command run to completion.
struct NvmeCall {
  nvme::NvmeCommand command;
  bool finished = false;
  static void Done(nvme::NvmeCommand&, void* arg) { static_cast<NvmeCall*>(arg)->finished = true; }
  void Run(nvme::NvmeTransport& path, testing::ManualExecutor& executor) {
    command.executor = &executor;
    command.OnFinish(&Done, this);
    path.Submit(command);
    executor.RunUntilIdle();
  }
};

// NVM Command Set 1.0c §3.2.4 Read / §3.2.6 Write: SLBA in CDW10-11, 0-based NLB in CDW12.
void NvmeRw(nvme::NvmeCommand& command, bool write, std::uint64_t slba, std::uint16_t blocks, std::span<std::byte> data) {
  command = {};
  command.queue = nvme::QueueKind::kIo;
  command.sqe.opc = write ? 0x01 : 0x02;
  command.sqe.nsid = 1;
  command.sqe.cdw10 = static_cast<std::uint32_t>(slba);
  command.sqe.cdw11 = static_cast<std::uint32_t>(slba >> 32);
  command.sqe.cdw12 = static_cast<std::uint32_t>(blocks - 1);
  command.direction = write ? nvme::DataDirection::kToController : nvme::DataDirection::kFromController;
  command.data = data;
}

TEST(SanNvmeTest, ControllersOnTwoPortsShareANamespaceAndFailIndependently) {
  ManualClock clock;
  testing::ManualExecutor executor(clock);
  auto san = SimSan::Create({.clock = &clock, .seed = 3});
  ASSERT_TRUE(san.has_value());
  auto subsystem = (*san)->AddNvmeSubsystem("nvme0", {});
  ASSERT_TRUE(subsystem.has_value()) << subsystem.error().ToString();
  ASSERT_TRUE((*subsystem)->AddPort(1).has_value());
  ASSERT_TRUE((*subsystem)->AddPort(2).has_value());
  nvme::fake::NamespaceConfig ns{.nsid = 1, .blocks = 4096, .block_size = 512};
  ns.nguid[0] = 0xAB;
  ASSERT_TRUE((*subsystem)->AddNamespace(ns).has_value());
  std::array<std::uint8_t, 16> host_id{};
  host_id[0] = 1;
  auto p1 = (*san)->ConnectNvme({.name = "c1", .subsystem = "nvme0", .host_nqn = "nqn.host", .host_id = host_id, .port = 1});
  auto p2 = (*san)->ConnectNvme({.name = "c2", .subsystem = "nvme0", .host_nqn = "nqn.host", .host_id = host_id, .port = 2});
  ASSERT_TRUE(p1.has_value() && p2.has_value());

  std::vector<std::byte> out(512 * 4, std::byte{0x5A});
  NvmeCall write;
  NvmeRw(write.command, true, 8, 4, out);
  write.Run(**p1, executor);
  ASSERT_TRUE(write.finished);
  ASSERT_TRUE(write.command.cqe.status().ok()) << write.command.cqe.status().code();

  (*(*san)->Faults("c1"))->SetLinkDown(true);
  std::vector<std::byte> in(512 * 4);
  NvmeCall read_down;
  NvmeRw(read_down.command, false, 8, 4, in);
  read_down.Run(**p1, executor);
  EXPECT_EQ(read_down.command.delivery, Delivery::kLinkDown);

  NvmeCall read;
  NvmeRw(read.command, false, 8, 4, in);
  read.Run(**p2, executor);
  ASSERT_EQ(read.command.delivery, Delivery::kDelivered);
  ASSERT_TRUE(read.command.cqe.status().ok());
  EXPECT_EQ(in, out);
}

TEST(SanSeedTest, TheSameSeedReplaysTheSameFaultDraws) {
  ManualClock clock;
  auto draws = [&clock](std::uint64_t seed) {
    auto san = SimSan::Create({.clock = &clock, .seed = seed});
    auto array = (*san)->AddScsiArray("a", {});
    EXPECT_TRUE(array.has_value());
    (void)(*array)->AddPortGroup({.id = 1, .state = scsi::fake::AluaState::kActiveOptimized, .preferred = false,
                                  .relative_ports = {1}});
    EXPECT_TRUE((*san)->ConnectScsi({.name = "p", .array = "a", .initiator_port = "i", .relative_port = 1}).has_value());
    LinkFaults* faults = *(*san)->Faults("p");
    faults->SetDropCompletions(0.5);
    std::vector<bool> out;
    for (int i = 0; i < 64; ++i) out.push_back(faults->Decide(true, 0).action == LinkAction::kDropCompletion);
    return out;
  };
  EXPECT_EQ(draws(5), draws(5));
  EXPECT_NE(draws(5), draws(6));
}

}  // namespace
}  // namespace mpath::sim
