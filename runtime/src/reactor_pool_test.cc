#include "mpath/runtime/reactor_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include <gtest/gtest.h>

namespace mpath {
namespace {

using namespace std::chrono_literals;

// Bounds every wait so that a broken pool fails the test instead of hanging it; never an expected duration.
constexpr auto kGenerousTimeout = 10s;

std::unique_ptr<ReactorPool> MakePool(const ReactorPoolOptions& options) {
  auto pool = ReactorPool::Create(options);
  EXPECT_TRUE(pool.has_value()) << pool.error().message();
  return std::move(pool).value();
}

// Runs |fn| on |loop| and waits for its result; nullopt if it never came.
template <typename Fn>
auto RunOn(EventLoop& loop, Fn fn) -> std::optional<decltype(fn())> {
  // Shared, so that a task that runs only after the wait gave up still has somewhere to put its result.
  auto result = std::make_shared<std::promise<decltype(fn())>>();
  auto future = result->get_future();
  loop.Post([result, fn = std::move(fn)]() mutable { result->set_value(fn()); });
  if (future.wait_for(kGenerousTimeout) != std::future_status::ready) return std::nullopt;
  return future.get();
}

TEST(ReactorPoolTest, DefaultSizeIsTheHardwareConcurrencyAndAtLeastOne) {
  auto pool = MakePool({});
  EXPECT_EQ(pool->size(), std::max(1u, std::thread::hardware_concurrency()));
  EXPECT_FALSE(pool->running());
}

TEST(ReactorPoolTest, LoopsFollowTheGivenClock) {
  ManualClock clock;
  auto pool = MakePool({.loops = 2, .clock = &clock});
  ASSERT_EQ(pool->size(), 2u);
  EXPECT_EQ(&pool->loop(0).clock(), &clock);
  EXPECT_EQ(&pool->loop(1).clock(), &clock);
}

TEST(ReactorPoolTest, RunsEachLoopOnADistinctThread) {
  constexpr std::size_t kLoops = 4;
  auto pool = MakePool({.loops = kLoops});
  auto pinned = pool->Start();
  ASSERT_TRUE(pinned.has_value()) << pinned.error().message();
  EXPECT_EQ(*pinned, 0u);
  EXPECT_TRUE(pool->running());
  std::set<std::thread::id> threads;
  for (std::size_t i = 0; i < kLoops; ++i) {
    EventLoop& loop = pool->loop(i);
    auto seen = RunOn(loop, [&loop] { return std::pair(std::this_thread::get_id(), loop.IsLoopThread()); });
    ASSERT_TRUE(seen.has_value());
    EXPECT_TRUE(seen->second);
    EXPECT_NE(seen->first, std::this_thread::get_id());
    threads.insert(seen->first);
    EXPECT_FALSE(loop.IsLoopThread());
  }
  EXPECT_EQ(threads.size(), kLoops);
}

TEST(ReactorPoolTest, LoopsRunTimers) {
  auto pool = MakePool({.loops = 2});
  ASSERT_TRUE(pool->Start().has_value());
  std::promise<void> fired;
  pool->loop(1).ScheduleAfter(2ms, [&] { fired.set_value(); });
  EXPECT_EQ(fired.get_future().wait_for(kGenerousTimeout), std::future_status::ready);
}

TEST(ReactorPoolTest, StopJoinsTheThreadsAfterTheirRunningTasks) {
  auto pool = MakePool({.loops = 2});
  ASSERT_TRUE(pool->Start().has_value());
  std::promise<void> started;
  std::atomic<bool> finished{false};
  pool->loop(0).Post([&] {
    started.set_value();
    std::this_thread::sleep_for(20ms);
    finished = true;
  });
  ASSERT_EQ(started.get_future().wait_for(kGenerousTimeout), std::future_status::ready);
  pool->Stop();
  // Stop() returned, so the thread was joined, so the task it was running had finished.
  EXPECT_TRUE(finished);
  EXPECT_FALSE(pool->running());
}

TEST(ReactorPoolTest, StopIsIdempotentAndNeedsNoStart) {
  auto pool = MakePool({.loops = 2});
  pool->Stop();
  ASSERT_TRUE(pool->Start().has_value());
  pool->Stop();
  pool->Stop();
  EXPECT_FALSE(pool->running());
}

TEST(ReactorPoolTest, StopRightAfterStartDoesNotHang) {
  auto pool = MakePool({.loops = 3});
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(pool->Start().has_value());
    pool->Stop();
  }
}

TEST(ReactorPoolTest, TasksQueuedWhileStoppedRunAfterARestart) {
  auto pool = MakePool({.loops = 1});
  ASSERT_TRUE(pool->Start().has_value());
  pool->Stop();
  std::promise<void> ran;
  pool->loop(0).Post([&] { ran.set_value(); });
  ASSERT_TRUE(pool->Start().has_value());
  EXPECT_EQ(ran.get_future().wait_for(kGenerousTimeout), std::future_status::ready);
}

TEST(ReactorPoolTest, DestructionStopsARunningPool) {
  auto pool = MakePool({.loops = 2});
  ASSERT_TRUE(pool->Start().has_value());
  std::promise<void> started;
  std::atomic<bool> finished{false};
  pool->loop(1).Post([&] {
    started.set_value();
    std::this_thread::sleep_for(10ms);
    finished = true;
  });
  ASSERT_EQ(started.get_future().wait_for(kGenerousTimeout), std::future_status::ready);
  pool.reset();
  EXPECT_TRUE(finished);
}

TEST(ReactorPoolTest, PinningPutsEachLoopOnOneAllowedCpu) {
  cpu_set_t allowed;
  ASSERT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  constexpr std::size_t kLoops = 2;
  auto pool = MakePool({.loops = kLoops, .pinning = CpuPinning::kOnePerLoop});
  auto pinned = pool->Start();
  ASSERT_TRUE(pinned.has_value()) << pinned.error().message();
  // The pool spreads loops over the CPUs this process may use, so pinning can only fail in unusual sandboxes.
  EXPECT_EQ(*pinned, kLoops);
  for (std::size_t i = 0; i < kLoops; ++i) {
    auto affinity = RunOn(pool->loop(i), [] {
      cpu_set_t set;
      CPU_ZERO(&set);
      pthread_getaffinity_np(pthread_self(), sizeof(set), &set);
      return set;
    });
    ASSERT_TRUE(affinity.has_value());
    EXPECT_EQ(CPU_COUNT(&*affinity), 1);
    cpu_set_t allowed_and_pinned;
    CPU_AND(&allowed_and_pinned, &*affinity, &allowed);
    EXPECT_EQ(CPU_COUNT(&allowed_and_pinned), 1) << "loop " << i << " pinned to a CPU the process may not use";
  }
}

}  // namespace
}  // namespace mpath
