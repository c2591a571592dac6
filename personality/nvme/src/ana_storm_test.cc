// The ANA storm: 1024 namespaces behind 4 controllers on 2 ports, two groups swapping states while every I/O of every
// namespace comes back with an ANA status. One log per controller describes every namespace, so a swap must cost each
// controller at most two log reads (the notice's and one for the statuses that arrived while it was in flight), not
// one per namespace.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "mpath/nvme/ana_engine.h"
#include "mpath/nvme/fake/subsystem.h"
#include "mpath/nvme/identity.h"
#include "mpath/nvme/spec/identify.h"
#include "mpath/nvme/spec/opcodes.h"
#include "mpath/sim/san.h"
#include "mpath/testing/manual_executor.h"

namespace mpath::nvme {
namespace {

using fake::AnaState;

constexpr std::uint32_t kNamespaces = 1024;
constexpr ControllerKey kControllers = 4;  // keys 0, 1 on port 1; 2, 3 on port 2
constexpr int kSwaps = 4;

std::uint16_t PortOf(ControllerKey key) { return key < 2 ? 1 : 2; }
std::uint32_t GroupOf(std::uint32_t nsid) { return nsid % 2 == 1 ? 1 : 2; }

class AnaStormTest : public ::testing::Test {
 protected:
  void SetUp() override {
    san_ = sim::SimSan::Create({.clock = &clock_}).value();
    subsystem_ = san_->AddNvmeSubsystem("subsys0", {}).value();
    ASSERT_TRUE(subsystem_->AddPort(1).has_value());
    ASSERT_TRUE(subsystem_->AddPort(2).has_value());
    for (std::uint32_t nsid = 1; nsid <= kNamespaces; ++nsid) {
      fake::NamespaceConfig ns;
      ns.nsid = nsid;
      ns.blocks = 64;
      ns.nguid[0] = 0x6C;
      ns.nguid[14] = static_cast<std::uint8_t>(nsid >> 8);
      ns.nguid[15] = static_cast<std::uint8_t>(nsid);
      ns.ana_group = GroupOf(nsid);
      ASSERT_TRUE(subsystem_->AddNamespace(ns).has_value());
    }
    Apply(/*port1_optimized=*/1);

    AnaCallbacks callbacks;
    callbacks.on_state = [this](ControllerKey key, std::uint32_t nsid, AccessState state) {
      latest_[{key, nsid}] = state;
      ++reports_;
    };
    engine_ = AnaEngine::Create(executor_, {}, std::move(callbacks)).value();
    for (ControllerKey key = 0; key < kControllers; ++key) {
      const std::string name = fmt::format("c{}", key);
      sim::NvmePathSpec spec{.name = name, .subsystem = "subsys0", .host_nqn = "nqn.2026-11.io.mpath:" + name,
                             .host_id = {}, .port = PortOf(key)};
      spec.host_id[0] = static_cast<std::uint8_t>(key + 1);
      NvmeTransport& transport = *san_->ConnectNvme(spec).value();
      ASSERT_TRUE(engine_->AddController({key, &transport, Identify(transport)}).has_value());
      for (std::uint32_t nsid = 1; nsid <= kNamespaces; ++nsid) {
        ASSERT_TRUE(engine_->WatchNamespace(key, nsid, GroupOf(nsid)).has_value());
      }
    }
    executor_.RunUntilIdle();
  }

  void TearDown() override {
    engine_.reset();
    san_.reset();
    executor_.RunUntilIdle();
  }

  // Port 1 has group `port1_optimized` optimized and the other non-optimized; port 2 the opposite.
  void Apply(std::uint32_t port1_optimized) {
    for (std::uint16_t port = 1; port <= 2; ++port) {
      for (std::uint32_t group = 1; group <= 2; ++group) {
        const bool optimized = (group == port1_optimized) == (port == 1);
        ASSERT_TRUE(
            subsystem_->SetAnaState(port, group, optimized ? AnaState::kOptimized : AnaState::kNonOptimized).has_value());
      }
    }
  }

  ControllerSummary Identify(NvmeTransport& transport) {
    std::vector<std::byte> data(spec::kIdentifyDataSize);
    NvmeCommand command;
    command.sqe = spec::MakeIdentify(spec::Cns::kController);
    command.queue = QueueKind::kAdmin;
    command.direction = DataDirection::kFromController;
    command.data = data;
    command.executor = &executor_;
    command.OnFinish([](NvmeCommand&, void*) {}, nullptr);
    transport.Submit(command);
    executor_.RunUntilIdle();
    return ParseIdentifyController(data).value();
  }

  // Namespaces whose state, as reported and as the engine holds it, is not what `port1_optimized` implies.
  std::size_t Wrong(std::uint32_t port1_optimized) {
    std::size_t wrong = 0;
    for (ControllerKey key = 0; key < kControllers; ++key) {
      for (std::uint32_t nsid = 1; nsid <= kNamespaces; ++nsid) {
        const bool optimized = (GroupOf(nsid) == port1_optimized) == (PortOf(key) == 1);
        const AccessState want = optimized ? AccessState::kOptimized : AccessState::kNonOptimized;
        auto it = latest_.find({key, nsid});
        if (it == latest_.end() || it->second != want || engine_->NamespaceState(key, nsid) != want) ++wrong;
      }
    }
    return wrong;
  }

  ManualClock clock_;
  mpath::testing::ManualExecutor executor_{clock_};
  std::unique_ptr<sim::SimSan> san_;
  fake::Subsystem* subsystem_ = nullptr;
  std::unique_ptr<AnaEngine> engine_;
  std::map<std::pair<ControllerKey, std::uint32_t>, AccessState> latest_;
  std::size_t reports_ = 0;
};

TEST_F(AnaStormTest, SwapsCostAtMostTwoLogReadsPerControllerAndLeaveEveryNamespaceRight) {
  EXPECT_EQ(Wrong(1), 0u);
  EXPECT_EQ(reports_, kControllers * kNamespaces);
  for (ControllerKey key = 0; key < kControllers; ++key) EXPECT_EQ(engine_->ControllerStatus(key)->log_reads, 1u);

  std::uint32_t optimized = 1;
  for (int swap = 1; swap <= kSwaps; ++swap) {
    SCOPED_TRACE(swap);
    std::vector<std::uint64_t> before;
    for (ControllerKey key = 0; key < kControllers; ++key) before.push_back(engine_->ControllerStatus(key)->log_reads);
    const std::size_t reports = reports_;
    optimized = 3 - optimized;
    Apply(optimized);
    // Every namespace's I/O through every controller meets 0x302 or 0x303, one thread per controller.
    std::vector<std::thread> io;
    for (ControllerKey key = 0; key < kControllers; ++key) {
      io.emplace_back([this, key] {
        for (std::uint32_t nsid = 1; nsid <= kNamespaces; ++nsid) engine_->OnAnaStatus(key);
      });
    }
    for (std::thread& thread : io) thread.join();
    executor_.RunUntilIdle();

    EXPECT_EQ(Wrong(optimized), 0u);
    EXPECT_EQ(reports_ - reports, kControllers * kNamespaces) << "every namespace changed once through each controller";
    for (ControllerKey key = 0; key < kControllers; ++key) {
      const AnaControllerStatus status = engine_->ControllerStatus(key).value();
      const std::uint64_t reads = status.log_reads - before[key];
      std::printf("swap %d controller %llu: %llu ANA log reads for %u namespaces and %u ANA statuses\n", swap,
                  static_cast<unsigned long long>(key), static_cast<unsigned long long>(reads), kNamespaces,
                  kNamespaces);
      EXPECT_GE(reads, 1u);
      EXPECT_LE(reads, 2u);
      EXPECT_EQ(status.log_failures, 0u);
      EXPECT_EQ(status.aers_outstanding, 1u);
    }
  }
}

}  // namespace
}  // namespace mpath::nvme
