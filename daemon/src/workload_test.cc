// The verified workload on a small simulated fabric: it verifies real bytes on SCSI and NVMe heads, catches another
// volume answering after a remap, measures a stall as a pause, counts failovers and surfaced errors, trims, and
// refuses options that cannot work.
#include "mpath/daemon/workload.h"

#include <gtest/gtest.h>

#include <numeric>
#include <thread>

#include <fmt/format.h>

#include "mpath/daemon/config.h"
#include "mpath/daemon/fabric.h"

namespace mpath::daemon {
namespace {

using namespace std::chrono_literals;

// One LU behind two array ports and one namespace behind two subsystem ports; `defaults` and `extra` are spliced in.
std::string FabricText(std::string_view defaults = "", std::string_view extra = "") {
  return fmt::format(R"(
[defaults]
iopolicy = "round-robin"
delayed_removal_secs = 5
{}

[[device]]
match = "naa.600140500000000000000000000000a1"
alias = "lu1"

[[device]]
match = "nguid.6d7061740000000000000000000000b1*"
alias = "ns1"
{}

[sim]
seed = 3

[[sim.scsi_array]]
name = "array0"
  [[sim.scsi_array.port_group]]
  id = 1
  ports = [1, 2]
  [[sim.scsi_array.lu]]
  lun = 0
  size_mib = 8
  naa = "600140500000000000000000000000a1"

[[sim.nvme_subsystem]]
name = "subsys0"
ports = [1, 2]
  [[sim.nvme_subsystem.namespace]]
  nsid = 1
  size_mib = 8
  nguid = "6d7061740000000000000000000000b1"
  [[sim.nvme_subsystem.namespace]]
  nsid = 2
  size_mib = 8
  block_size = 4096
  nguid = "6d7061740000000000000000000000b2"

[[sim.path]]
name = "a0p1"
target = "array0"
port = 1
latency_ms = 0.05

[[sim.path]]
name = "a0p2"
target = "array0"
port = 2
latency_ms = 0.05

[[sim.path]]
name = "s0c1"
target = "subsys0"
port = 1
latency_ms = 0.05

[[sim.path]]
name = "s0c2"
target = "subsys0"
port = 2
latency_ms = 0.05
)",
                     defaults, extra);
}

class WorkloadTest : public ::testing::Test {
 protected:
  void Build(std::string_view defaults = "", std::string_view extra = "") {
    auto config = ParseConfig(FabricText(defaults, extra), "workload_test.toml");
    ASSERT_TRUE(config) << config.error().ToString();
    auto fabric = Fabric::Create(std::move(*config), {.io_threads = 2});
    ASSERT_TRUE(fabric) << fabric.error().ToString();
    fabric_ = std::move(*fabric);
    auto report = fabric_->Build();
    ASSERT_TRUE(report) << report.error().ToString();
    ASSERT_TRUE(report->ok());
    lu1_ = fabric_->FindHead("lu1");
    ns1_ = fabric_->FindHead("ns1");
    ASSERT_NE(lu1_, nullptr);
    ASSERT_NE(ns1_, nullptr);
  }

  std::unique_ptr<Workload> Make(WorkloadOptions options = {.slots_per_head = 4, .blocks_per_slot = 16}) {
    auto workload = Workload::Create(*fabric_, {lu1_, ns1_}, options);
    EXPECT_TRUE(workload) << workload.error().ToString();
    return workload ? std::move(*workload) : nullptr;
  }

  void Inject(std::string target, std::string fault, std::map<std::string, std::string> args = {}) {
    auto done = fabric_->Inject({std::move(target), std::move(fault), std::move(args)});
    ASSERT_TRUE(done) << done.error().ToString();
  }

  static const HeadStats& Of(const std::vector<HeadStats>& stats, std::string_view alias) {
    for (const HeadStats& s : stats) {
      if (s.alias == alias) return s;
    }
    ADD_FAILURE() << "no stats for " << alias;
    return stats.front();
  }

  std::unique_ptr<Fabric> fabric_;
  std::shared_ptr<Head> lu1_, ns1_;
};

TEST_F(WorkloadTest, VerifiesWhatItReadsOnScsiAndNvmeHeads) {
  Build();
  auto workload = Make();
  ASSERT_NE(workload, nullptr);
  workload->Start();
  std::this_thread::sleep_for(1200ms);
  ASSERT_TRUE(workload->Stop());
  const auto stats = workload->Stats();
  ASSERT_EQ(stats.size(), 2u);
  for (const HeadStats& s : stats) {
    SCOPED_TRACE(s.name);
    EXPECT_GT(s.ios, 100u);
    EXPECT_GT(s.verified_bytes, 0u);
    EXPECT_EQ(s.verified_bytes % 4096, 0u);
    // A round is a checking read (once the block was written), a write and a verifying read; one round in 16 adds
    // a flush.
    EXPECT_LE(s.verified_bytes / 4096 * 3, s.ios * 2 + 8);
    EXPECT_GE(s.verified_bytes / 4096 * 3, s.ios);
    EXPECT_EQ(s.errors_surfaced, 0u);
    EXPECT_EQ(s.data_errors, 0u);
    EXPECT_EQ(s.failovers, 0u);
    ASSERT_GE(s.ios_per_second.size(), 1u);
    EXPECT_LE(std::accumulate(s.ios_per_second.begin(), s.ios_per_second.end(), std::uint64_t{0}), s.ios);
    EXPECT_GT(s.ios_per_second[0], 0u);
    EXPECT_GT(s.max_pause, Nanos(0));
    EXPECT_LT(s.max_pause, 500ms);
  }
  EXPECT_EQ(Of(stats, "lu1").protocol, "scsi");
  EXPECT_EQ(Of(stats, "lu1").identity, "naa.600140500000000000000000000000a1");
  EXPECT_EQ(Of(stats, "lu1").name, lu1_->name());
  EXPECT_EQ(Of(stats, "ns1").protocol, "nvme");
  EXPECT_TRUE(workload->Errors().empty());

  // Stopped means stopped: nothing moves any more.
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(workload->Stats()[0].ios, stats[0].ios);
  EXPECT_EQ(workload->Stats()[1].ios, stats[1].ios);
}

TEST_F(WorkloadTest, CatchesAnotherVolumeAnsweringAfterARemap) {
  // The path leaves its head after the remap; the head's I/O fails soon after rather than waiting 5 s.
  Build("", "delayed_removal_secs = 0.3");
  auto workload = Make();
  ASSERT_NE(workload, nullptr);
  // The host learns of a remap through admin commands; with 5 ms links, reads meet the new volume before it does.
  Inject("s0c1", "latency", {{"ms", "5"}});
  Inject("s0c2", "latency", {{"ms", "5"}});
  workload->Start();
  std::this_thread::sleep_for(300ms);
  // Another volume, all zeroes, answers at NSID 1 now: blocks written before read back wrong until the path leaves.
  Inject("subsys0", "remap", {{"nsid", "1"}, {"nguid", "6d7061740000000000000000000000c1"}});
  std::this_thread::sleep_for(300ms);
  (void)workload->Stop(10s);
  const auto stats = workload->Stats();
  EXPECT_GT(Of(stats, "ns1").data_errors, 0u);
  EXPECT_EQ(Of(stats, "lu1").data_errors, 0u);
  bool described = false;
  for (const SurfacedError& e : workload->Errors()) {
    if (e.code != Errc::kMismatch) continue;
    EXPECT_EQ(e.head, ns1_->name());
    EXPECT_GE(e.at, 300ms);
    EXPECT_NE(e.context.find("returned zeroes, expected generation"), std::string::npos) << e.context;
    described = true;
  }
  EXPECT_TRUE(described);
}

TEST_F(WorkloadTest, MeasuresAStallAsThePauseOfItsHeadOnly) {
  Build();
  auto workload = Make();
  ASSERT_NE(workload, nullptr);
  workload->Start();
  std::this_thread::sleep_for(300ms);
  const Nanos before = Of(workload->Stats(), "lu1").max_pause;
  // Every command to the LU now takes 400 ms: its I/O completes in bursts with 400 ms of nothing in between.
  Inject("a0p1", "latency", {{"ms", "400"}});
  Inject("a0p2", "latency", {{"ms", "400"}});
  std::this_thread::sleep_for(1000ms);
  Inject("a0p1", "clear");
  Inject("a0p2", "clear");
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(workload->Stop());
  const auto stats = workload->Stats();
  EXPECT_LT(before, 300ms);
  EXPECT_GE(Of(stats, "lu1").max_pause, 350ms);
  EXPECT_LT(Of(stats, "lu1").max_pause, 1500ms);
  EXPECT_LT(Of(stats, "ns1").max_pause, 300ms);
  EXPECT_EQ(Of(stats, "lu1").errors_surfaced, 0u);
  EXPECT_EQ(Of(stats, "lu1").data_errors, 0u);
}

TEST_F(WorkloadTest, AStallStillGoingOnShowsInTheLiveFigures) {
  Build();
  auto workload = Make();
  ASSERT_NE(workload, nullptr);
  workload->Start();
  std::this_thread::sleep_for(200ms);
  Inject("s0c1", "latency", {{"ms", "800"}});
  Inject("s0c2", "latency", {{"ms", "800"}});
  std::this_thread::sleep_for(600ms);
  // No completion yet since the stall began, but the figure already says how long it has lasted.
  EXPECT_GE(Of(workload->Stats(), "ns1").max_pause, 300ms);
  Inject("s0c1", "clear");
  Inject("s0c2", "clear");
  ASSERT_TRUE(workload->Stop());
}

TEST_F(WorkloadTest, CountsFailoversWithoutSurfacingErrors) {
  Build();
  auto workload = Make();
  ASSERT_NE(workload, nullptr);
  workload->Start();
  std::this_thread::sleep_for(200ms);
  Inject("a0p1", "link-down");
  std::this_thread::sleep_for(400ms);
  Inject("a0p1", "link-up");
  std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(workload->Stop());
  const auto stats = workload->Stats();
  EXPECT_GT(Of(stats, "lu1").failovers, 0u);
  EXPECT_EQ(Of(stats, "lu1").errors_surfaced, 0u);
  EXPECT_EQ(Of(stats, "lu1").data_errors, 0u);
  EXPECT_EQ(Of(stats, "ns1").failovers, 0u);
}

TEST_F(WorkloadTest, SurfacedErrorsCarryTheirHeadTimeAndWhatFailed) {
  // This head fails I/O at once when it has no usable path.
  Build("", "queue_if_no_path = false");
  auto workload = Make();
  ASSERT_NE(workload, nullptr);
  workload->Start();
  std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(fabric_->FailPath("s0c1n1"));
  ASSERT_TRUE(fabric_->FailPath("s0c2n1"));
  std::this_thread::sleep_for(200ms);
  const std::uint64_t during = Of(workload->Stats(), "ns1").ios;
  ASSERT_TRUE(fabric_->ReinstatePath("s0c1n1"));
  ASSERT_TRUE(fabric_->ReinstatePath("s0c2n1"));
  std::this_thread::sleep_for(300ms);
  ASSERT_TRUE(workload->Stop());
  const auto stats = workload->Stats();
  EXPECT_GT(Of(stats, "ns1").errors_surfaced, 0u);
  EXPECT_GT(Of(stats, "ns1").ios, during) << "the workload goes on once a path is back";
  EXPECT_EQ(Of(stats, "ns1").data_errors, 0u) << "a failed write may have landed or not: both are accepted";
  EXPECT_EQ(Of(stats, "lu1").errors_surfaced, 0u);
  const auto errors = workload->Errors();
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors.front().head, ns1_->name());
  EXPECT_EQ(errors.front().code, Errc::kNoPath);
  EXPECT_GE(errors.front().at, 200ms);  // not before the paths failed
  EXPECT_LT(errors.front().at, 2s);
  EXPECT_TRUE(errors.front().context.starts_with("write of 4096 bytes at byte ") ||
              errors.front().context.starts_with("read of 4096 bytes at byte ") ||
              errors.front().context.starts_with("flush: "))
      << errors.front().context;
}

TEST_F(WorkloadTest, TrimmedBlocksReadBackAsZeroes) {
  Build();
  auto workload = Make({.slots_per_head = 4, .blocks_per_slot = 16, .flush_every = 3, .trim_every = 2});
  ASSERT_NE(workload, nullptr);
  workload->Start();
  std::this_thread::sleep_for(600ms);
  ASSERT_TRUE(workload->Stop());
  for (const HeadStats& s : workload->Stats()) {
    SCOPED_TRACE(s.name);
    EXPECT_GT(s.verified_bytes, 0u);
    EXPECT_EQ(s.errors_surfaced, 0u);
    EXPECT_EQ(s.data_errors, 0u);
  }
  // A head that cannot discard is said so once and not trimmed any more; the namespace can.
  std::size_t notes = 0;
  for (const SurfacedError& e : workload->Errors()) {
    EXPECT_EQ(e.code, Errc::kUnsupported) << e.context;
    EXPECT_NE(e.head, ns1_->name()) << e.context;
    EXPECT_NE(e.context.find("trimming stops on this head"), std::string::npos) << e.context;
    ++notes;
  }
  EXPECT_LE(notes, 1u);
}

TEST_F(WorkloadTest, RefusesOptionsThatCannotWork) {
  Build();
  auto ns2 = fabric_->FindHead("nguid.6d7061740000000000000000000000b2@nqn.2026-11.io.mpath.sim:subsys0/ns2");
  ASSERT_NE(ns2, nullptr) << "identity format changed?";
  auto small = Workload::Create(*fabric_, {lu1_, ns2}, {.io_bytes = 512});
  ASSERT_FALSE(small);
  EXPECT_EQ(small.error().message(),
            fmt::format("workload: io_bytes 512 is not a multiple of the block size 4096 of {}", ns2->name()));

  auto big = Workload::Create(*fabric_, {lu1_}, {.slots_per_head = 16, .io_bytes = 4096, .blocks_per_slot = 1024});
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code(), Errc::kOutOfRange);
  EXPECT_NE(big.error().message().find("does not fit in " + lu1_->name()), std::string::npos);

  EXPECT_FALSE(Workload::Create(*fabric_, {}, {}));
  EXPECT_FALSE(Workload::Create(*fabric_, {lu1_}, {.slots_per_head = 0}));
  EXPECT_FALSE(Workload::Create(*fabric_, {lu1_}, {.io_bytes = 1000}));
  EXPECT_FALSE(Workload::Create(*fabric_, {lu1_}, {.blocks_per_slot = 0}));
  EXPECT_FALSE(Workload::Create(*fabric_, {nullptr}, {}));
}

TEST_F(WorkloadTest, StopWithoutStartAndDestroyWhileRunningAreSafe) {
  Build();
  {
    auto idle = Make();
    ASSERT_NE(idle, nullptr);
    EXPECT_TRUE(idle->Stop());
  }
  auto running = Make();
  ASSERT_NE(running, nullptr);
  running->Start();
  std::this_thread::sleep_for(100ms);
  running.reset();  // drains before it frees anything I/O points into
  EXPECT_EQ(lu1_->state(), HeadState::kLive);
}

}  // namespace
}  // namespace mpath::daemon
