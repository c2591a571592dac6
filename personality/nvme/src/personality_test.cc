// The NVMe personality end to end over the simulated SAN: controllers probed and their namespaces grouped into heads,
// paths that follow ANA, a verified workload that survives ANA swaps with no error surfaced, remaps that never merge
// identities, delayed removal, ANATT, and reservations through the head.
#include "mpath/nvme/personality.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <optional>
#include <vector>

#include "mpath/core/head_channel.h"
#include "mpath/core/io_request.h"
#include "mpath/nvme/fake/subsystem.h"
#include "mpath/nvme/spec/opcodes.h"
#include "mpath/sim/san.h"
#include "mpath/testing/manual_executor.h"

namespace mpath::nvme {
namespace {

using fake::AnaState;
using namespace std::chrono_literals;

constexpr std::uint32_t kBlock = 512;
constexpr std::uint64_t kBlocks = 2048;
constexpr std::array<std::uint8_t, 16> kHostId = {0x48, 0x4f, 0x53, 0x54, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
constexpr std::array<std::uint8_t, 16> kForeignHostId = {0xf0, 0xf1, 0xf2, 0xf3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4};
constexpr char kHostNqn[] = "nqn.2014-08.org.nvmexpress:uuid:mpath-test-host";

std::array<std::uint8_t, 16> Nguid(std::uint8_t seed) {
  std::array<std::uint8_t, 16> out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint8_t>(seed * 16 + i + 1);
  return out;
}

// Every block written carries its LBA and a generation, repeated over the block, so that a read proves which write it
// returns and that it came from this namespace at this LBA.
void FillBlock(std::span<std::byte> block, std::uint64_t lba, std::uint64_t generation) {
  for (std::size_t at = 0; at + 16 <= block.size(); at += 16) {
    std::memcpy(block.data() + at, &lba, 8);
    std::memcpy(block.data() + at + 8, &generation, 8);
  }
}

bool BlockHolds(std::span<const std::byte> block, std::uint64_t lba, std::uint64_t generation) {
  std::vector<std::byte> expected(block.size());
  if (generation == 0) return std::all_of(block.begin(), block.end(), [](std::byte b) { return b == std::byte{0}; });
  FillBlock(expected, lba, generation);
  return std::memcmp(expected.data(), block.data(), block.size()) == 0;
}

// A verified write/read workload over heads: each slot writes a block, reads it back, and moves to its next block;
// slots own disjoint LBAs, so every read must return exactly the slot's last acknowledged write of that block.
// Threading: runs on the test's ManualExecutor thread.
class Workload {
 public:
  static constexpr std::size_t kSlots = 16;  // I/Os in flight per head

  Workload(testing::ManualExecutor& executor, std::vector<std::shared_ptr<Head>> heads) : executor_(executor) {
    for (auto& head : heads) {
      auto load = std::make_unique<HeadLoad>();
      load->channel = head->OpenChannel(executor);
      for (std::size_t s = 0; s < kSlots; ++s) {
        load->slots[s].owner = this;
        load->slots[s].load = load.get();
        load->slots[s].lba = s;
      }
      loads_.push_back(std::move(load));
    }
  }

  void Start() {
    for (auto& load : loads_) {
      for (Slot& slot : load->slots) Issue(slot);
    }
  }
  void Stop() { stopping_ = true; }

  [[nodiscard]] std::uint64_t ios() const { return ios_; }
  [[nodiscard]] std::uint64_t verify_errors() const { return verify_errors_; }
  [[nodiscard]] std::uint64_t surfaced() const { return surfaced_; }
  [[nodiscard]] std::size_t in_flight() const { return in_flight_; }

 private:
  struct HeadLoad;
  struct Slot {
    Workload* owner = nullptr;
    HeadLoad* load = nullptr;
    std::uint64_t lba = 0;
    bool writing = true;
    std::uint64_t generation = 0;  // of the write in flight
    std::vector<std::byte> buffer = std::vector<std::byte>(kBlock);
  };
  struct HeadLoad {
    std::shared_ptr<HeadChannel> channel;
    std::vector<std::uint64_t> acknowledged = std::vector<std::uint64_t>(kBlocks, 0);
    std::array<Slot, kSlots> slots;
  };

  void Issue(Slot& slot) {
    IoRequest* io = pool_.Acquire();
    io->op = slot.writing ? IoOp::kWrite : IoOp::kRead;
    io->offset = slot.lba * kBlock;
    io->length = kBlock;
    io->data = slot.buffer.data();
    if (slot.writing) {
      slot.generation = next_generation_++;
      FillBlock(slot.buffer, slot.lba, slot.generation);
    }
    io->user = &slot;
    io->OnComplete(&Workload::OnComplete, nullptr);
    ++in_flight_;
    slot.load->channel->Submit(*io);
  }

  static void OnComplete(IoRequest& io, void* /*arg*/) {
    Slot& slot = *static_cast<Slot*>(io.user);
    Workload& self = *slot.owner;
    --self.in_flight_;
    ++self.ios_;
    if (!io.status.ok()) {
      ++self.surfaced_;
      ADD_FAILURE() << "surfaced: " << ErrcName(io.status.code) << " " << io.status.context;
    } else if (io.op == IoOp::kWrite) {
      slot.load->acknowledged[slot.lba] = slot.generation;
    } else if (!BlockHolds(slot.buffer, slot.lba, slot.load->acknowledged[slot.lba])) {
      ++self.verify_errors_;
    }
    if (io.op == IoOp::kRead) slot.lba = (slot.lba + kSlots) % kBlocks;
    slot.writing = io.op == IoOp::kRead;
    // The request goes back to the pool, and the next is issued, once the layers below have let go of this one.
    IoRequest* done = &io;
    self.executor_.Post([&self, &slot, done] {
      self.pool_.Release(done);
      if (!self.stopping_) self.Issue(slot);
    });
  }

  testing::ManualExecutor& executor_;
  IoRequestPool pool_{256, 256};
  std::vector<std::unique_ptr<HeadLoad>> loads_;
  std::uint64_t next_generation_ = 1;
  std::uint64_t ios_ = 0, verify_errors_ = 0, surfaced_ = 0;
  std::size_t in_flight_ = 0;
  bool stopping_ = false;
};

class NvmePersonalityTest : public ::testing::Test {
 protected:
  void Build(MultipathMode mode = MultipathMode::kOn, fake::SubsystemConfig config = {},
             Nanos delayed_removal = 0s, NvmePersonalityOptions options = {}) {
    san_ = std::move(sim::SimSan::Create({.clock = &clock_, .seed = 5})).value();
    subsystem_ = san_->AddNvmeSubsystem("subsys0", config).value();
    for (std::uint16_t port = 1; port <= 4; ++port) ASSERT_TRUE(subsystem_->AddPort(port));
    ASSERT_TRUE(subsystem_->AddNamespace({.nsid = 1, .blocks = kBlocks, .block_size = kBlock, .nguid = Nguid(1),
                                          .ana_group = 1}));
    ASSERT_TRUE(subsystem_->AddNamespace({.nsid = 2, .blocks = kBlocks, .block_size = kBlock, .nguid = Nguid(2),
                                          .ana_group = 2}));
    RegistryOptions registry_options;
    registry_options.opt_in.mode = mode;
    registry_options.head.policy = IoPolicyKind::kRoundRobin;
    registry_options.head.delayed_removal = delayed_removal;
    registry_ = std::move(Registry::Create(registry_options, executor_)).value();
    if (!options.on_reconnect_needed) {
      options.on_reconnect_needed = [this](const std::string& controller, std::uint32_t group) {
        reconnects_.push_back(controller + "/" + std::to_string(group));
      };
    }
    personality_ = std::move(NvmePersonality::Create(*registry_, executor_, std::move(options))).value();
  }

  // Ports 1 and 2 optimized and non-optimized, ports 3 and 4 inaccessible, for both groups.
  void SetStates(AnaState p1, AnaState p2, AnaState p3, AnaState p4, Nanos transition = 0ns) {
    const std::array<AnaState, 4> states = {p1, p2, p3, p4};
    for (std::uint16_t port = 1; port <= 4; ++port) {
      for (std::uint32_t group = 1; group <= 2; ++group) {
        ASSERT_TRUE(subsystem_->SetAnaState(port, group, states[port - 1], transition));
      }
    }
  }

  NvmeTransport* Connect(const std::string& name, std::uint16_t port,
                         const std::array<std::uint8_t, 16>& host_id = kHostId) {
    auto transport = san_->ConnectNvme({.name = name, .subsystem = "subsys0", .host_nqn = kHostNqn,
                                        .host_id = host_id, .port = port});
    EXPECT_TRUE(transport.has_value()) << transport.error().ToString();
    return transport.value_or(nullptr);
  }

  Result<ControllerAttachment> AttachController(const std::string& name, NvmeTransport* transport,
                                                const std::array<std::uint8_t, 16>& host_id = kHostId) {
    std::optional<Result<ControllerAttachment>> out;
    personality_->AttachController({.name = name, .transport = "sim", .controller = transport,
                                    .host_nqn = kHostNqn, .host_id = host_id},
                                   [&out](Result<ControllerAttachment> a) { out = std::move(a); });
    executor_.RunUntilIdle();
    EXPECT_TRUE(out.has_value()) << "the attach callback ran";
    return out ? std::move(*out) : MakeError(Errc::kInternal, "no callback");
  }

  void AttachAll() {
    for (std::uint16_t port = 1; port <= 4; ++port) {
      const std::string name = fmt::format("c{}", port);
      transports_[port - 1] = Connect(name, port);
      auto attached = AttachController(name, transports_[port - 1]);
      ASSERT_TRUE(attached.has_value()) << attached.error().ToString();
      ASSERT_EQ(attached->namespaces.size(), 2u);
      for (NamespaceAttachment& ns : attached->namespaces) {
        ASSERT_TRUE(ns.attachment.has_value()) << ns.attachment.error().ToString();
        ASSERT_TRUE(ns.attachment->multipathed()) << ns.attachment->reason;
        heads_[ns.nsid - 1] = ns.attachment->head;
      }
    }
    executor_.RunUntilIdle();
  }

  AccessState AccessOf(const Head& head, const std::string& path) {
    for (const PathInfo& p : head.Paths()) {
      if (p.name == path) return p.access;
    }
    ADD_FAILURE() << "no path " << path;
    return AccessState::kPersistentLoss;
  }

  std::uint64_t Delivered(const std::string& path) {
    for (const sim::SimPathInfo& p : san_->Paths()) {
      if (p.name == path) return p.counts.delivered;
    }
    return 0;
  }

  // Runs one I/O through `channel` to completion (time stands still unless the I/O waits for it).
  IoStatus Io(HeadChannel& channel, IoOp op, std::uint64_t lba, std::span<std::byte> data, Nanos wait = 0s) {
    IoRequest* io = pool_.Acquire();
    io->op = op;
    io->offset = lba * kBlock;
    io->length = static_cast<std::uint32_t>(data.size());
    io->data = data.data();
    bool done = false;
    io->user = &done;
    io->OnComplete([](IoRequest& r, void*) { *static_cast<bool*>(r.user) = true; }, nullptr);
    channel.Submit(*io);
    executor_.RunUntilIdle();
    if (!done && wait > 0s) executor_.Advance(wait);
    EXPECT_TRUE(done) << "the I/O completed";
    IoStatus status = done ? io->status : IoStatus::Of(Errc::kInternal, "never completed");
    if (done) pool_.Release(io);
    return status;
  }

  template <typename Operation>
  Result<void> Reserve(Operation operation) {
    std::optional<Result<void>> out;
    operation([&out](Result<void> r) { out = std::move(r); });
    executor_.RunUntilIdle();
    EXPECT_TRUE(out.has_value()) << "the reservation command finished";
    if (out && !out->has_value()) ADD_FAILURE() << out->error().ToString();
    return out ? std::move(*out) : MakeError(Errc::kInternal, "no callback");
  }

  spec::ReservationStatus Report(NvmeReservations& reservations) {
    std::optional<Result<spec::ReservationStatus>> out;
    reservations.Report([&out](Result<spec::ReservationStatus> r) { out = std::move(r); });
    executor_.RunUntilIdle();
    EXPECT_TRUE(out.has_value() && out->has_value()) << (out && !out->has_value() ? out->error().ToString() : "");
    return out && out->has_value() ? **out : spec::ReservationStatus{};
  }

  void TearDown() override {
    // Asynchronous Event Requests stay outstanding until their controllers go; their completions land on the
    // executor, which must run them before it is destroyed.
    personality_.reset();
    registry_.reset();
    san_.reset();
    executor_.RunUntilIdle();
  }

  ManualClock clock_;
  testing::ManualExecutor executor_{clock_};
  std::unique_ptr<sim::SimSan> san_;
  fake::Subsystem* subsystem_ = nullptr;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<NvmePersonality> personality_;
  std::array<NvmeTransport*, 4> transports_{};
  std::array<std::shared_ptr<Head>, 2> heads_;
  std::vector<std::string> reconnects_;
  IoRequestPool pool_{64, 256};
};

TEST_F(NvmePersonalityTest, FourControllersMakeOneHeadPerNamespaceWhosePathsFollowAna) {
  Build();
  SetStates(AnaState::kOptimized, AnaState::kNonOptimized, AnaState::kInaccessible, AnaState::kInaccessible);
  AttachAll();
  ASSERT_EQ(registry_->Heads().size(), 2u);
  EXPECT_EQ(heads_[0]->identity().str(),
            "nguid.1112131415161718191a1b1c1d1e1f20@nqn.2026-11.io.mpath.sim:subsys0/ns1");
  EXPECT_EQ(heads_[0]->capacity_bytes(), kBlocks * kBlock);
  EXPECT_EQ(heads_[0]->personality().protocol(), "nvme");
  for (const auto& head : heads_) {
    EXPECT_EQ(head->path_count(), 4u);
    const std::string n = head == heads_[0] ? "n1" : "n2";
    EXPECT_EQ(AccessOf(*head, "c1" + n), AccessState::kOptimized);
    EXPECT_EQ(AccessOf(*head, "c2" + n), AccessState::kNonOptimized);
    EXPECT_EQ(AccessOf(*head, "c3" + n), AccessState::kUnavailable);
    EXPECT_EQ(AccessOf(*head, "c4" + n), AccessState::kUnavailable);
  }
  // One log read per controller at attach: the log covers every namespace of the controller.
  for (ControllerKey key = 1; key <= 4; ++key) {
    auto status = personality_->ana().ControllerStatus(key);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->log_reads, 1u);
  }
}

TEST_F(NvmePersonalityTest, OptInFollowsMultiControllerAndSharedNamespace) {
  fake::SubsystemConfig single;
  single.cmic = 0x00;  // one controller, no ANA: what a local PCIe drive reports
  Build(MultipathMode::kOn, single);
  auto attached = AttachController("c1", Connect("c1", 1));
  ASSERT_TRUE(attached.has_value()) << attached.error().ToString();
  ASSERT_EQ(attached->namespaces.size(), 2u);
  ASSERT_TRUE(attached->namespaces[0].attachment.has_value());
  EXPECT_FALSE(attached->namespaces[0].attachment->multipathed());
  EXPECT_NE(attached->namespaces[0].attachment->direct, nullptr);
  EXPECT_TRUE(registry_->Heads().empty());
}

TEST_F(NvmePersonalityTest, AlwaysTakesAnyNamespaceWithAnIdentity) {
  fake::SubsystemConfig single;
  single.cmic = 0x00;
  Build(MultipathMode::kAlways, single);
  auto attached = AttachController("c1", Connect("c1", 1));
  ASSERT_TRUE(attached.has_value()) << attached.error().ToString();
  ASSERT_TRUE(attached->namespaces[0].attachment.has_value());
  EXPECT_TRUE(attached->namespaces[0].attachment->multipathed());
  // Without ANA reporting every path is optimized.
  executor_.RunUntilIdle();
  EXPECT_EQ(AccessOf(*attached->namespaces[0].attachment->head, "c1n1"), AccessState::kOptimized);
}

TEST_F(NvmePersonalityTest, AControllerPresentingAnotherHostIdentifierIsRefused) {
  Build();
  ASSERT_TRUE(AttachController("c1", Connect("c1", 1)).has_value());
  auto refused = AttachController("c2", Connect("c2", 2, kForeignHostId), kForeignHostId);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), Errc::kInvalidArgument);
  EXPECT_NE(refused.error().message().find("host identifier"), std::string::npos) << refused.error().message();
  EXPECT_EQ(personality_->Controller("c2"), nullptr);
}

// The acceptance workload: four controllers, two usable and two inaccessible; the states swap twice (the second time
// through the change state) while a verified workload runs on both heads. Nothing may surface and every read must
// return exactly the last acknowledged write of its block.
TEST_F(NvmePersonalityTest, VerifiedWorkloadSurvivesTwoAnaSwapsWithNoErrorSurfaced) {
  Build();
  SetStates(AnaState::kOptimized, AnaState::kNonOptimized, AnaState::kInaccessible, AnaState::kInaccessible);
  AttachAll();
  for (std::uint16_t port = 1; port <= 4; ++port) {
    san_->Faults(fmt::format("c{}", port)).value()->SetLatency(200us, 100us);
  }

  Workload workload(executor_, {heads_[0], heads_[1]});
  workload.Start();
  auto run = [&](Nanos duration) {
    for (Nanos t = 0ns; t < duration; t += 1ms) executor_.Advance(1ms);
  };
  run(50ms);
  const std::uint64_t before_swap_c3 = Delivered("c3") + Delivered("c4");
  // Swap 1: at once.
  SetStates(AnaState::kInaccessible, AnaState::kInaccessible, AnaState::kOptimized, AnaState::kNonOptimized);
  run(50ms);
  EXPECT_EQ(AccessOf(*heads_[0], "c1n1"), AccessState::kUnavailable);
  EXPECT_EQ(AccessOf(*heads_[0], "c3n1"), AccessState::kOptimized);
  EXPECT_GT(Delivered("c3") + Delivered("c4"), before_swap_c3 + 100) << "I/O moved to the newly optimized ports";
  // Swap 2: through the change state for 20 ms (shorter than ANATT).
  const std::uint64_t before_swap_c1 = Delivered("c1");
  SetStates(AnaState::kOptimized, AnaState::kNonOptimized, AnaState::kInaccessible, AnaState::kInaccessible, 20ms);
  run(1500ms);
  EXPECT_EQ(AccessOf(*heads_[1], "c1n2"), AccessState::kOptimized);
  EXPECT_EQ(AccessOf(*heads_[1], "c4n2"), AccessState::kUnavailable);
  EXPECT_GT(Delivered("c1"), before_swap_c1 + 100) << "I/O came back to port 1";
  workload.Stop();
  run(20ms);
  EXPECT_EQ(workload.in_flight(), 0u);

  std::printf("workload: %llu I/Os, %llu verify errors, %llu errors surfaced\n",
              static_cast<unsigned long long>(workload.ios()), static_cast<unsigned long long>(workload.verify_errors()),
              static_cast<unsigned long long>(workload.surfaced()));
  EXPECT_GT(workload.ios(), 2000u);
  EXPECT_EQ(workload.verify_errors(), 0u);
  EXPECT_EQ(workload.surfaced(), 0u);
  EXPECT_TRUE(reconnects_.empty());
}

TEST_F(NvmePersonalityTest, ARemappedNamespaceIsNeverMergedIntoItsOldHead) {
  std::vector<std::string> detached;
  NvmePersonalityOptions options;
  options.on_namespace_detached = [&detached](const std::string& path, const DeviceIdentity&) {
    detached.push_back(path);
  };
  Build(MultipathMode::kOn, {}, 0s, std::move(options));
  AttachAll();
  std::vector<std::byte> block(kBlock);
  FillBlock(block, 7, 99);
  auto channel = heads_[0]->OpenChannel(executor_);
  ASSERT_TRUE(Io(*channel, IoOp::kWrite, 7, block).ok());

  DeviceIdentity previous = heads_[0]->identity();
  for (std::uint8_t round = 10; round < 16; ++round) {
    ASSERT_TRUE(subsystem_->ChangeIdentity(1, Nguid(round), {}, {}));
    executor_.RunUntilIdle();
    auto now = registry_->FindHead(DeviceIdentity(fmt::format("nguid.{:02x}@nqn.2026-11.io.mpath.sim:subsys0/ns1",
                                                              fmt::join(Nguid(round), ""))).str());
    ASSERT_NE(now, nullptr) << "round " << int{round} << ": the remapped namespace made a new head";
    EXPECT_EQ(now->path_count(), 4u);
    for (const auto& head : registry_->Heads()) {
      if (head->identity() == previous) {
        EXPECT_EQ(head->path_count(), 0u) << "the old head kept a path";
      }
    }
    // Another volume answers now: what was written to the old one is not there.
    auto fresh = now->OpenChannel(executor_);
    std::vector<std::byte> in(kBlock, std::byte{0x55});
    ASSERT_TRUE(Io(*fresh, IoOp::kRead, 7, in).ok());
    EXPECT_TRUE(BlockHolds(in, 7, 0));
    previous = now->identity();
  }
  EXPECT_EQ(detached.size(), 6u * 4u);
  // The other namespace never moved.
  EXPECT_EQ(heads_[1]->path_count(), 4u);
}

TEST_F(NvmePersonalityTest, LastControllerGoneAndBackInsideTheWindowResumesQueuedIo) {
  Build(MultipathMode::kOn, {}, 10s);
  AttachAll();
  std::shared_ptr<Head> head = heads_[0];
  auto channel = head->OpenChannel(executor_);
  std::vector<std::byte> out(kBlock), in(kBlock);
  FillBlock(out, 3, 42);
  ASSERT_TRUE(Io(*channel, IoOp::kWrite, 3, out).ok());
  for (int c = 1; c <= 4; ++c) ASSERT_TRUE(personality_->DetachController(fmt::format("c{}", c)));
  EXPECT_EQ(head->path_count(), 0u);
  EXPECT_EQ(head->state(), HeadState::kQueueing);

  IoRequest* io = pool_.Acquire();
  io->op = IoOp::kRead;
  io->offset = 3 * kBlock;
  io->length = kBlock;
  io->data = in.data();
  bool done = false;
  io->user = &done;
  io->OnComplete([](IoRequest& r, void*) { *static_cast<bool*>(r.user) = true; }, nullptr);
  channel->Submit(*io);
  executor_.Advance(5s);
  EXPECT_FALSE(done) << "the read waits for a path";
  auto back = AttachController("c1again", transports_[0]);
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  executor_.Advance(1ms);
  ASSERT_TRUE(done);
  EXPECT_TRUE(io->status.ok()) << io->status.context;
  EXPECT_TRUE(BlockHolds(in, 3, 42));
  EXPECT_EQ(registry_->FindHead(head->identity().str()), head) << "the same head carries on";
  pool_.Release(io);
}

TEST_F(NvmePersonalityTest, LastControllerGoneOutsideTheWindowFailsQueuedIoCleanlyAndANewHeadComesLater) {
  Build(MultipathMode::kOn, {}, 10s);
  AttachAll();
  std::shared_ptr<Head> head = heads_[0];
  auto channel = head->OpenChannel(executor_);
  for (int c = 1; c <= 4; ++c) ASSERT_TRUE(personality_->DetachController(fmt::format("c{}", c)));
  std::vector<std::byte> in(kBlock);
  IoRequest* io = pool_.Acquire();
  io->op = IoOp::kRead;
  io->offset = 0;
  io->length = kBlock;
  io->data = in.data();
  bool done = false;
  io->user = &done;
  io->OnComplete([](IoRequest& r, void*) { *static_cast<bool*>(r.user) = true; }, nullptr);
  channel->Submit(*io);
  executor_.Advance(9s);
  EXPECT_FALSE(done);
  executor_.Advance(2s);
  ASSERT_TRUE(done) << "the window closed";
  EXPECT_EQ(io->status.code, Errc::kNoPath) << io->status.context;
  pool_.Release(io);
  EXPECT_EQ(head->state(), HeadState::kRemoved);
  auto back = AttachController("c1again", transports_[0]);
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  ASSERT_TRUE(back->namespaces[0].attachment.has_value());
  EXPECT_NE(back->namespaces[0].attachment->head, head) << "a new head for the returning namespace";
  EXPECT_EQ(back->namespaces[0].attachment->head->identity(), head->identity());
}

TEST_F(NvmePersonalityTest, AGroupStillChangingAfterAnattIsUnavailableAndItsControllerIsFlaggedForReconnect) {
  Build();  // ANATT 10 s
  AttachAll();
  ASSERT_TRUE(subsystem_->SetAnaState(1, 1, AnaState::kNonOptimized, 60s));
  executor_.RunUntilIdle();
  EXPECT_EQ(AccessOf(*heads_[0], "c1n1"), AccessState::kTransitioning);
  executor_.Advance(9s);
  EXPECT_EQ(AccessOf(*heads_[0], "c1n1"), AccessState::kTransitioning);
  EXPECT_TRUE(reconnects_.empty());
  executor_.Advance(2s);
  EXPECT_EQ(AccessOf(*heads_[0], "c1n1"), AccessState::kUnavailable);
  EXPECT_EQ(reconnects_, std::vector<std::string>{"c1/1"});
  // I/O keeps flowing on the other controllers meanwhile.
  auto channel = heads_[0]->OpenChannel(executor_);
  std::vector<std::byte> block(kBlock);
  EXPECT_TRUE(Io(*channel, IoOp::kRead, 0, block).ok());
}

TEST_F(NvmePersonalityTest, ReservationSequenceThroughTheHeadWithTheReportCheckedAfterEachStep) {
  Build();
  AttachAll();
  NvmeReservations* reservations = personality_->Reservations(heads_[0]->name());
  ASSERT_NE(reservations, nullptr);
  EXPECT_EQ(reservations->nsid(), 1u);
  constexpr std::uint64_t kKey = 0xabc1, kForeignKey = 0xf00d;

  // The report lists one entry per registered controller; a host's controllers share its key and its standing.
  struct Standing {
    std::size_t controllers = 0;
    std::uint64_t key = 0;
    bool holds = false;
  };
  auto standing_of = [](const spec::ReservationStatus& report, const std::array<std::uint8_t, 16>& host) {
    Standing out;
    for (const spec::Registrant& r : report.registrants) {
      if (r.hostid != host) continue;
      if (out.controllers++ == 0) {
        out.key = r.rkey;
        out.holds = r.holds_reservation;
      } else {
        EXPECT_EQ(r.rkey, out.key) << "controllers of one host disagree";
        EXPECT_EQ(r.holds_reservation, out.holds) << "controllers of one host disagree";
      }
    }
    return out;
  };

  ASSERT_TRUE(Reserve([&](ReservationDone d) { reservations->Register(kKey, false, false, std::move(d)); }));
  spec::ReservationStatus report = Report(*reservations);
  Standing ours = standing_of(report, kHostId);
  EXPECT_EQ(ours.controllers, 4u) << "one registration, held by every controller of this host";
  EXPECT_EQ(report.registrants.size(), 4u);
  EXPECT_EQ(ours.key, kKey);
  EXPECT_FALSE(ours.holds);
  EXPECT_EQ(report.rtype, 0);
  const std::uint32_t registered_generation = report.generation;

  ASSERT_TRUE(Reserve([&](ReservationDone d) {
    reservations->Acquire(kKey, spec::ReservationType::kWriteExclusive, std::move(d));
  }));
  report = Report(*reservations);
  EXPECT_EQ(report.type(), spec::ReservationType::kWriteExclusive);
  EXPECT_TRUE(standing_of(report, kHostId).holds);

  // Writes through any path are the holder's.
  auto channel = heads_[0]->OpenChannel(executor_);
  std::vector<std::byte> block(kBlock);
  FillBlock(block, 1, 1);
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(Io(*channel, IoOp::kWrite, 1, block).ok());
  EXPECT_GT(Delivered("c2"), 0u);

  // Another host registers; we preempt it.
  NvmeTransport* foreign = Connect("foreign", 1, kForeignHostId);
  auto foreign_reservations = NvmeReservations::Create(*foreign, 1, executor_).value();
  ASSERT_TRUE(Reserve([&](ReservationDone d) {
    foreign_reservations->Register(kForeignKey, false, false, std::move(d));
  }));
  report = Report(*reservations);
  EXPECT_EQ(standing_of(report, kForeignHostId).key, kForeignKey);
  EXPECT_EQ(standing_of(report, kForeignHostId).controllers, 1u);
  ASSERT_TRUE(Reserve([&](ReservationDone d) {
    reservations->Preempt(kKey, kForeignKey, spec::ReservationType::kExclusiveAccess, false, std::move(d));
  }));
  report = Report(*reservations);
  // Preempting a registrant that is not the holder only removes it; our reservation stands as it was.
  EXPECT_EQ(report.type(), spec::ReservationType::kWriteExclusive);
  EXPECT_EQ(standing_of(report, kForeignHostId).controllers, 0u) << "the foreign registration is gone";
  ours = standing_of(report, kHostId);
  EXPECT_EQ(ours.key, kKey);
  EXPECT_TRUE(ours.holds);
  EXPECT_GT(report.generation, registered_generation);

  ASSERT_TRUE(Reserve([&](ReservationDone d) {
    reservations->Release(kKey, spec::ReservationType::kWriteExclusive, std::move(d));
  }));
  report = Report(*reservations);
  EXPECT_EQ(report.rtype, 0);
  ours = standing_of(report, kHostId);
  EXPECT_EQ(ours.controllers, 4u);
  EXPECT_FALSE(ours.holds);

  const std::uint32_t before_clear = report.generation;
  ASSERT_TRUE(Reserve([&](ReservationDone d) { reservations->Clear(kKey, std::move(d)); }));
  report = Report(*reservations);
  EXPECT_EQ(report.rtype, 0);
  EXPECT_TRUE(report.registrants.empty());
  EXPECT_GT(report.generation, before_clear);
}

TEST_F(NvmePersonalityTest, AReservationConflictGoesUpAndIsNotRetriedOnAnotherPath) {
  Build();
  AttachAll();
  NvmeTransport* foreign = Connect("foreign", 1, kForeignHostId);
  auto foreign_reservations = NvmeReservations::Create(*foreign, 1, executor_).value();
  ASSERT_TRUE(Reserve([&](ReservationDone d) { foreign_reservations->Register(0x77, false, false, std::move(d)); }));
  ASSERT_TRUE(Reserve([&](ReservationDone d) {
    foreign_reservations->Acquire(0x77, spec::ReservationType::kWriteExclusive, std::move(d));
  }));
  auto channel = heads_[0]->OpenChannel(executor_);
  std::vector<std::byte> block(kBlock);
  const std::uint64_t writes_before = subsystem_->CommandCount(QueueKind::kIo, Raw(spec::IoOpcode::kWrite));
  IoStatus status = Io(*channel, IoOp::kWrite, 0, block);
  EXPECT_EQ(status.code, Errc::kReservationConflict) << status.context;
  EXPECT_EQ(subsystem_->CommandCount(QueueKind::kIo, Raw(spec::IoOpcode::kWrite)), writes_before + 1)
      << "sent once, on one path";
  // Reads are still allowed under write exclusive.
  EXPECT_TRUE(Io(*channel, IoOp::kRead, 0, block).ok());
}

TEST_F(NvmePersonalityTest, NewNamespacesAttachAndRemovedOnesDetachOnTheNotice) {
  std::vector<std::string> attached_later;
  NvmePersonalityOptions options;
  options.on_namespace_attached = [&attached_later](const std::string&, NamespaceAttachment& ns) {
    attached_later.push_back(ns.path);
  };
  Build(MultipathMode::kOn, {}, 0s, std::move(options));
  AttachAll();
  ASSERT_TRUE(subsystem_->AddNamespace({.nsid = 3, .blocks = kBlocks, .block_size = kBlock, .nguid = Nguid(3),
                                        .ana_group = 1}));
  executor_.RunUntilIdle();
  EXPECT_EQ(attached_later.size(), 4u);
  auto third = registry_->FindHead(
      fmt::format("nguid.{:02x}@nqn.2026-11.io.mpath.sim:subsys0/ns3", fmt::join(Nguid(3), "")));
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(third->path_count(), 4u);
  ASSERT_TRUE(subsystem_->RemoveNamespace(3));
  executor_.RunUntilIdle();
  EXPECT_EQ(third->path_count(), 0u);
  EXPECT_EQ(heads_[0]->path_count(), 4u);
}

}  // namespace
}  // namespace mpath::nvme
