// Several I/O threads on one head while the control plane changes policies, states and paths underneath: every
// I/O completes exactly once and successfully (one path is always usable). Meant for the TSan build.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "mpath/core/head.h"
#include "mpath/core/head_channel.h"
#include "mpath/testing/head_fixture.h"

namespace mpath {
namespace {

constexpr std::uint64_t kCapacity = 1 << 24;

DeviceInfo NullInfo(const std::string& name, const DeviceIdentity& id, int locality) {
  return testing::NullPathInfo(name, id, kCapacity, 512, locality);
}

TEST(Concurrency, RuntimeChangesUnderLoadLoseNothing) {
  constexpr int kThreads = 3;
  constexpr int kMinBatches = 100;
  constexpr int kControlRounds = 300;
  constexpr int kBatch = 32;
  ManualClock clock;
  testing::ManualExecutor control(clock);
  DeviceIdentity id("naa.60014050000000000000000000000042");
  auto head = Head::Create({"mpath0", id, kCapacity, 512, {}}, NeutralTemplate::Instance(), control).value();
  PathId anchor = head->AddPath(NullInfo("anchor", id, 0), std::make_unique<NullPath>()).value();
  PathId b = head->AddPath(NullInfo("b", id, 1), std::make_unique<NullPath>()).value();
  PathId c = head->AddPath(NullInfo("c", id, 0), std::make_unique<NullPath>()).value();
  (void)anchor;

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> completed_ok{0};
  std::atomic<std::uint64_t> completed_bad{0};
  std::atomic<std::uint64_t> duplicates{0};
  std::atomic<std::uint64_t> submitted{0};

  auto io_thread = [&](int t) {
    testing::ManualExecutor mine(clock);
    auto channel = head->OpenChannel(mine, t % 2);
    std::vector<IoRequest> requests(kBatch);
    std::vector<int> done(kBatch);
    std::byte buffer[512];
    struct Ctx {
      std::vector<int>* done;
      std::atomic<std::uint64_t>* ok;
      std::atomic<std::uint64_t>* bad;
      std::atomic<std::uint64_t>* dup;
    } ctx{&done, &completed_ok, &completed_bad, &duplicates};
    for (int batch = 0; batch < kMinBatches || !stop.load(); ++batch) {
      std::fill(done.begin(), done.end(), 0);
      for (int i = 0; i < kBatch; ++i) {
        IoRequest& io = requests[i];
        io.op = (i % 3 == 0) ? IoOp::kWrite : IoOp::kRead;
        io.offset = static_cast<std::uint64_t>((batch * kBatch + i) % 4096) * 512;
        io.length = 512;
        io.data = buffer;
        io.user = reinterpret_cast<void*>(static_cast<std::intptr_t>(i));
        io.OnComplete(
            [](IoRequest& r, void* arg) {
              auto* c = static_cast<Ctx*>(arg);
              int& slot = (*c->done)[reinterpret_cast<std::intptr_t>(r.user)];
              if (slot++ != 0) c->dup->fetch_add(1);
              (r.status.ok() ? c->ok : c->bad)->fetch_add(1);
            },
            &ctx);
        submitted.fetch_add(1);
        channel->Submit(io);
      }
      mine.RunUntilIdle();
      for (int i = 0; i < kBatch; ++i) {
        if (done[i] != 1) duplicates.fetch_add(1);
      }
    }
    channel->Close();
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(io_thread, t);

  const IoPolicyKind policies[] = {IoPolicyKind::kNuma, IoPolicyKind::kRoundRobin, IoPolicyKind::kQueueDepth,
                                   IoPolicyKind::kServiceTime};
  int round = 0;
  std::vector<PathId> extra;
  std::thread control_plane([&] {
    for (; round < kControlRounds; ) {
      head->SetIoPolicy(policies[round % 4]);
      (void)head->SetPathState(b, round % 2 ? PathState::kFailed : PathState::kLive);
      (void)head->SetAccessState(c, round % 3 ? AccessState::kNonOptimized : AccessState::kOptimized);
      if (round % 5 == 0) {
        auto added = head->AddPath(NullInfo("extra" + std::to_string(round), id, 1), std::make_unique<NullPath>());
        if (added) extra.push_back(*added);
      } else if (!extra.empty()) {
        (void)head->RemovePath(extra.back());
        extra.pop_back();
      }
      (void)head->Counters();
      (void)head->Paths();
      ++round;
      std::this_thread::yield();
    }
    stop = true;
  });

  control_plane.join();
  for (auto& t : threads) t.join();

  EXPECT_EQ(round, kControlRounds);
  EXPECT_EQ(duplicates.load(), 0u);
  EXPECT_EQ(completed_bad.load(), 0u);
  EXPECT_EQ(completed_ok.load(), submitted.load());
  EXPECT_EQ(head->Counters().ios, completed_ok.load());
  EXPECT_EQ(head->Counters().errors, 0u);
}

}  // namespace
}  // namespace mpath
