#include "mpath/runtime/event_loop.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mpath {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Bounds every wait so that a broken loop fails the test instead of hanging it; never an expected duration.
constexpr auto kGenerousTimeout = 10s;

std::unique_ptr<EventLoop> MakeLoop(const Clock& clock = SteadyClock::Instance()) {
  auto loop = EventLoop::Create(clock);
  EXPECT_TRUE(loop.has_value()) << loop.error().message();
  return std::move(loop).value();
}

// Runs |loop| on the calling thread until |done| holds or kGenerousTimeout passes; returns |done|.
template <typename Predicate>
bool RunUntil(EventLoop& loop, Predicate done) {
  const auto give_up = std::chrono::steady_clock::now() + kGenerousTimeout;
  while (!done() && std::chrono::steady_clock::now() < give_up) loop.RunOnce(5ms);
  return done();
}

// Runs |loop| on the calling thread for at least |duration|.
void RunFor(EventLoop& loop, Nanos duration) {
  const auto until = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < until) loop.RunOnce(1ms);
}

// Runs a loop in Run() on a thread of its own; stops and joins it on destruction.
class LoopThread {
 public:
  explicit LoopThread(EventLoop& loop) : loop_(loop), thread_([this] {
    loop_.Run();
    returned_.set_value();
  }) {}
  ~LoopThread() {
    loop_.Stop();
    // Wakes the loop even if Stop() failed to, so that a broken loop fails its test rather than hanging it.
    loop_.Post([] {});
    thread_.join();
  }

  // Whether Run() returned within kGenerousTimeout.
  bool WaitForReturn() { return returned_future_.wait_for(kGenerousTimeout) == std::future_status::ready; }
  std::thread::id id() const { return thread_.get_id(); }

 private:
  EventLoop& loop_;
  std::promise<void> returned_;
  std::future<void> returned_future_ = returned_.get_future();
  std::thread thread_;
};

// For tests that call Run() on the test thread: ends it, as a failure, should nothing else.
void ArmWatchdog(EventLoop& loop) {
  loop.ScheduleAfter(kGenerousTimeout, [&loop] {
    ADD_FAILURE() << "Run() did not return";
    loop.Stop();
  });
}

struct Pipe {
  Pipe() {
    int fds[2];
    EXPECT_EQ(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    read_fd = fds[0];
    write_fd = fds[1];
  }
  ~Pipe() {
    close(read_fd);
    close(write_fd);
  }
  void WriteByte() const { EXPECT_EQ(write(write_fd, "x", 1), 1); }
  int read_fd;
  int write_fd;
};

TEST(EventLoopTest, CreateUsesTheGivenClock) {
  ManualClock clock;
  auto loop = MakeLoop(clock);
  EXPECT_EQ(&loop->clock(), &clock);
  EXPECT_EQ(&MakeLoop()->clock(), &SteadyClock::Instance());
}

TEST(EventLoopTest, RunOnceWithNothingToDoReturnsFalse) {
  auto loop = MakeLoop();
  EXPECT_FALSE(loop->RunOnce(0ms));
  EXPECT_FALSE(loop->RunOnce(2ms));
}

TEST(EventLoopTest, TasksRunInPostingOrder) {
  auto loop = MakeLoop();
  std::vector<int> order;
  for (int i = 0; i < 100; ++i) loop->Post([&order, i] { order.push_back(i); });
  EXPECT_TRUE(loop->RunOnce(0ms));
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST(EventLoopTest, TaskPostedByATaskRunsInTheNextIteration) {
  auto loop = MakeLoop();
  std::vector<int> order;
  loop->Post([&] {
    order.push_back(1);
    loop->Post([&] { order.push_back(3); });
  });
  loop->Post([&] { order.push_back(2); });
  EXPECT_TRUE(loop->RunOnce(0ms));
  EXPECT_THAT(order, ElementsAre(1, 2));
  EXPECT_TRUE(loop->RunOnce(0ms));
  EXPECT_THAT(order, ElementsAre(1, 2, 3));
}

TEST(EventLoopTest, TasksRunOnTheLoopThread) {
  auto loop = MakeLoop();
  EXPECT_FALSE(loop->IsLoopThread());
  std::promise<std::pair<std::thread::id, bool>> seen;
  LoopThread runner(*loop);
  loop->Post([&] { seen.set_value({std::this_thread::get_id(), loop->IsLoopThread()}); });
  auto future = seen.get_future();
  ASSERT_EQ(future.wait_for(kGenerousTimeout), std::future_status::ready);
  const auto [id, is_loop_thread] = future.get();
  EXPECT_EQ(id, runner.id());
  EXPECT_TRUE(is_loop_thread);
  EXPECT_FALSE(loop->IsLoopThread());
}

TEST(EventLoopTest, CrossThreadPostWakesABlockedLoop) {
  auto loop = MakeLoop();
  LoopThread runner(*loop);
  // Nothing is scheduled, so the loop sleeps in epoll_wait with no timeout; only the wakeup can get it out.
  std::this_thread::sleep_for(20ms);
  std::promise<void> ran;
  std::thread([&] { loop->Post([&] { ran.set_value(); }); }).join();
  EXPECT_EQ(ran.get_future().wait_for(kGenerousTimeout), std::future_status::ready);
}

TEST(EventLoopTest, PostsFromManyThreadsKeepEachThreadsOrder) {
  auto loop = MakeLoop();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2000;
  std::vector<std::vector<int>> seen(kThreads);  // touched only on the loop thread
  std::atomic<int> done{0};
  {
    LoopThread runner(*loop);
    std::vector<std::thread> posters;
    for (int t = 0; t < kThreads; ++t) {
      posters.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          loop->Post([&, t, i] {
            seen[t].push_back(i);
            done.fetch_add(1, std::memory_order_release);
          });
        }
      });
    }
    for (std::thread& poster : posters) poster.join();
    const auto give_up = std::chrono::steady_clock::now() + kGenerousTimeout;
    while (done.load(std::memory_order_acquire) < kThreads * kPerThread && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(1ms);
    }
  }  // joins the loop thread, which publishes |seen|
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(seen[t].size(), static_cast<std::size_t>(kPerThread));
    for (int i = 0; i < kPerThread; ++i) ASSERT_EQ(seen[t][i], i);
  }
}

TEST(EventLoopTest, TimersFireInDeadlineOrderThenSchedulingOrder) {
  ManualClock clock;
  auto loop = MakeLoop(clock);
  std::vector<char> order;
  loop->ScheduleAfter(5ms, [&] { order.push_back('a'); });
  loop->ScheduleAfter(5ms, [&] { order.push_back('b'); });
  loop->ScheduleAfter(1ms, [&] { order.push_back('c'); });
  loop->ScheduleAfter(3ms, [&] { order.push_back('d'); });
  clock.Advance(10ms);
  EXPECT_TRUE(loop->RunOnce(0ms));
  EXPECT_THAT(order, ElementsAre('c', 'd', 'a', 'b'));
}

TEST(EventLoopTest, RealTimersFireInDeadlineOrder) {
  auto loop = MakeLoop();
  std::vector<int> order;
  for (int ms : {20, 5, 15, 1, 10}) {
    loop->ScheduleAfter(std::chrono::milliseconds(ms), [&, ms] { order.push_back(ms); });
  }
  EXPECT_TRUE(RunUntil(*loop, [&] { return order.size() == 5; }));
  EXPECT_THAT(order, ElementsAre(1, 5, 10, 15, 20));
}

TEST(EventLoopTest, ManualTimerFiresOnlyOnceItsDeadlineIsReached) {
  ManualClock clock;
  auto loop = MakeLoop(clock);
  bool fired = false;
  loop->ScheduleAfter(5ms, [&] { fired = true; });
  clock.Advance(4ms);
  EXPECT_FALSE(loop->RunOnce(0ms));
  EXPECT_FALSE(fired);
  clock.Advance(1ms);
  EXPECT_TRUE(loop->RunOnce(0ms));
  EXPECT_TRUE(fired);
}

TEST(EventLoopTest, RealTimerDoesNotFireBeforeItsDeadline) {
  auto loop = MakeLoop();
  for (auto delay : {1ms, 7ms, 15ms}) {
    const auto scheduled = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point fired_at;
    bool fired = false;
    loop->ScheduleAfter(delay, [&] {
      fired_at = std::chrono::steady_clock::now();
      fired = true;
    });
    ASSERT_TRUE(RunUntil(*loop, [&] { return fired; }));
    EXPECT_GE(fired_at - scheduled, delay);
  }
}

TEST(EventLoopTest, RunBlocksUntilTheTimerIsDue) {
  auto loop = MakeLoop();
  const auto scheduled = std::chrono::steady_clock::now();
  std::promise<std::chrono::steady_clock::time_point> fired;
  LoopThread runner(*loop);
  loop->ScheduleAfter(10ms, [&] { fired.set_value(std::chrono::steady_clock::now()); });
  auto future = fired.get_future();
  ASSERT_EQ(future.wait_for(kGenerousTimeout), std::future_status::ready);
  EXPECT_GE(future.get() - scheduled, 10ms);
}

TEST(EventLoopTest, CrossThreadEarlierTimerWakesALoopWaitingForALaterOne) {
  auto loop = MakeLoop();
  LoopThread runner(*loop);
  loop->ScheduleAfter(1h, [] {});
  std::this_thread::sleep_for(10ms);  // let the loop settle into its one-hour wait
  std::promise<void> fired;
  loop->ScheduleAfter(2ms, [&] { fired.set_value(); });
  EXPECT_EQ(fired.get_future().wait_for(kGenerousTimeout), std::future_status::ready);
}

TEST(EventLoopTest, CancelBeforeFirePreventsItAndReturnsTrue) {
  auto loop = MakeLoop();
  bool fired = false;
  const TimerId id = loop->ScheduleAfter(5ms, [&] { fired = true; });
  EXPECT_NE(id, 0u);
  EXPECT_TRUE(loop->Cancel(id));
  RunFor(*loop, 30ms);
  EXPECT_FALSE(fired);
  EXPECT_FALSE(loop->Cancel(id));
}

TEST(EventLoopTest, CancelAfterFireReturnsFalse) {
  auto loop = MakeLoop();
  bool fired = false;
  const TimerId id = loop->ScheduleAfter(1ms, [&] { fired = true; });
  ASSERT_TRUE(RunUntil(*loop, [&] { return fired; }));
  EXPECT_FALSE(loop->Cancel(id));
}

TEST(EventLoopTest, CancelOfUnknownIdsReturnsFalse) {
  auto loop = MakeLoop();
  EXPECT_FALSE(loop->Cancel(0));
  EXPECT_FALSE(loop->Cancel(12345));
  EXPECT_EQ(loop->ScheduleAfter(1ms, nullptr), 0u);
}

TEST(EventLoopTest, CancelDestroysTheTaskAtOnce) {
  auto loop = MakeLoop();
  auto captured = std::make_shared<int>(0);
  const TimerId id = loop->ScheduleAfter(1h, [captured] {});
  EXPECT_EQ(captured.use_count(), 2);
  EXPECT_TRUE(loop->Cancel(id));
  EXPECT_EQ(captured.use_count(), 1);
}

TEST(EventLoopTest, TimerCancelledByAnEarlierTimerOfTheSameRoundNeverRuns) {
  ManualClock clock;
  auto loop = MakeLoop(clock);
  bool second_fired = false;
  bool cancelled = false;
  TimerId second = 0;
  loop->ScheduleAfter(1ms, [&] { cancelled = loop->Cancel(second); });
  second = loop->ScheduleAfter(2ms, [&] { second_fired = true; });
  clock.Advance(5ms);
  loop->RunOnce(0ms);
  EXPECT_TRUE(cancelled);
  EXPECT_FALSE(second_fired);
}

TEST(EventLoopTest, ZeroDelayTimerRearmedByItselfWaitsForTheNextRound) {
  ManualClock clock;
  auto loop = MakeLoop(clock);
  int runs = 0;
  // Bounded, so that a loop that keeps running it in one round fails instead of spinning forever.
  std::move_only_function<void()> rearm = [&] {
    if (++runs < 100) loop->ScheduleAfter(0ms, [&] { rearm(); });
  };
  loop->ScheduleAfter(0ms, [&] { rearm(); });
  loop->RunOnce(0ms);
  EXPECT_EQ(runs, 1);
  loop->RunOnce(0ms);
  EXPECT_EQ(runs, 2);
}

TEST(EventLoopTest, ManyCancelledTimersDoNotDisturbTheLiveOnes) {
  ManualClock clock;
  auto loop = MakeLoop(clock);
  std::vector<int> fired;
  for (int i = 0; i < 1000; ++i) {
    const TimerId id = loop->ScheduleAfter(std::chrono::milliseconds(1000 - i), [&, i] { fired.push_back(i); });
    if (i % 100 != 0) {
      EXPECT_TRUE(loop->Cancel(id));
    }
  }
  clock.Advance(2s);
  loop->RunOnce(0ms);
  EXPECT_THAT(fired, ElementsAre(900, 800, 700, 600, 500, 400, 300, 200, 100, 0));
}

// Every timer either is cancelled (Cancel true) and never runs, or runs exactly once (Cancel false).
TEST(EventLoopTest, CrossThreadCancelRacingTheLoopIsExactlyOnce) {
  auto loop = MakeLoop();
  constexpr int kTimers = 2000;
  std::vector<std::atomic<int>> runs(kTimers);
  int cancelled = 0;
  {
    LoopThread runner(*loop);
    std::vector<TimerId> ids;
    for (int i = 0; i < kTimers; ++i) {
      ids.push_back(loop->ScheduleAfter(Nanos(i % 3 == 0 ? 0ms : 1ms), [&runs, i] { runs[i].fetch_add(1); }));
    }
    for (int i = 0; i < kTimers; ++i) cancelled += loop->Cancel(ids[i]) ? 1 : 0;
    std::atomic<bool> flushed{false};
    loop->ScheduleAfter(3ms, [&] { flushed = true; });
    const auto give_up = std::chrono::steady_clock::now() + kGenerousTimeout;
    while (!flushed && std::chrono::steady_clock::now() < give_up) std::this_thread::sleep_for(1ms);
    ASSERT_TRUE(flushed);
  }
  int ran = 0;
  for (auto& count : runs) {
    EXPECT_LE(count.load(), 1);
    ran += count.load();
  }
  EXPECT_EQ(ran + cancelled, kTimers);
}

TEST(EventLoopTest, StopFromAnotherThreadEndsRun) {
  auto loop = MakeLoop();
  LoopThread runner(*loop);
  std::this_thread::sleep_for(10ms);
  loop->Stop();
  EXPECT_TRUE(runner.WaitForReturn());
}

TEST(EventLoopTest, StopFromWithinATaskEndsRunAfterItsBatch) {
  auto loop = MakeLoop();
  std::vector<int> order;
  loop->Post([&] {
    order.push_back(1);
    loop->Stop();
    loop->Post([&] { order.push_back(3); });
  });
  loop->Post([&] { order.push_back(2); });
  ArmWatchdog(*loop);
  loop->Run();
  EXPECT_THAT(order, ElementsAre(1, 2));
  // What was posted after Stop() is still queued, not lost.
  EXPECT_TRUE(loop->RunOnce(0ms));
  EXPECT_THAT(order, ElementsAre(1, 2, 3));
}

TEST(EventLoopTest, StopBeforeRunMakesItReturnAtOnceAndIsConsumed) {
  auto loop = MakeLoop();
  ArmWatchdog(*loop);
  loop->Stop();
  loop->Run();
  bool ran = false;
  loop->Post([&] {
    ran = true;
    loop->Stop();
  });
  loop->Run();  // would return at once, without running the task, had the first Stop() not been consumed
  EXPECT_TRUE(ran);
}

TEST(EventLoopTest, PendingTasksAndTimersAreDestroyedWithoutRunning) {
  auto loop = MakeLoop();
  auto captured = std::make_shared<int>(0);
  bool ran = false;
  loop->Post([captured, &ran] { ran = true; });
  loop->ScheduleAfter(1h, [captured, &ran] { ran = true; });
  loop->ScheduleAfter(0ms, [captured, &ran] { ran = true; });
  EXPECT_EQ(captured.use_count(), 4);
  loop.reset();
  EXPECT_FALSE(ran);
  EXPECT_EQ(captured.use_count(), 1);
}

TEST(EventLoopTest, WatchDeliversReadableEvents) {
  auto loop = MakeLoop();
  Pipe pipe;
  std::uint32_t seen = 0;
  auto id = loop->Watch(pipe.read_fd, EPOLLIN, [&](std::uint32_t revents) {
    seen = revents;
    char byte;
    EXPECT_EQ(read(pipe.read_fd, &byte, 1), 1);
  });
  ASSERT_TRUE(id.has_value()) << id.error().message();
  EXPECT_NE(*id, 0u);
  EXPECT_FALSE(loop->RunOnce(5ms));
  pipe.WriteByte();
  ASSERT_TRUE(RunUntil(*loop, [&] { return seen != 0; }));
  EXPECT_TRUE(seen & EPOLLIN);
  loop->Unwatch(*id);
}

TEST(EventLoopTest, WatchReportsHangUp) {
  auto loop = MakeLoop();
  Pipe pipe;
  std::uint32_t seen = 0;
  auto id = loop->Watch(pipe.read_fd, EPOLLIN, [&](std::uint32_t revents) { seen = revents; });
  ASSERT_TRUE(id.has_value());
  close(pipe.write_fd);
  pipe.write_fd = -1;
  ASSERT_TRUE(RunUntil(*loop, [&] { return seen != 0; }));
  EXPECT_TRUE(seen & EPOLLHUP);
  loop->Unwatch(*id);
}

TEST(EventLoopTest, ModifyToEpollOutDeliversWritable) {
  auto loop = MakeLoop();
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  std::vector<std::uint32_t> seen;
  auto id = loop->Watch(fds[0], EPOLLIN, [&](std::uint32_t revents) { seen.push_back(revents); });
  ASSERT_TRUE(id.has_value());
  // Writable all along, but not asked for: nothing to report.
  RunFor(*loop, 10ms);
  EXPECT_TRUE(seen.empty());
  ASSERT_TRUE(loop->Modify(*id, EPOLLOUT).has_value());
  ASSERT_TRUE(RunUntil(*loop, [&] { return !seen.empty(); }));
  EXPECT_TRUE(seen[0] & EPOLLOUT);
  EXPECT_FALSE(seen[0] & EPOLLIN);
  loop->Unwatch(*id);
  close(fds[0]);
  close(fds[1]);
}

TEST(EventLoopTest, UnwatchInsideItsOwnCallback) {
  auto loop = MakeLoop();
  Pipe pipe;
  WatchId id = 0;
  int calls = 0;
  // Owned by the callback: ASan reports a use after free if Unwatch destroyed the callback while it still runs.
  auto state = std::make_unique<int>(0);
  auto watch = loop->Watch(pipe.read_fd, EPOLLIN, [&, state = std::move(state)](std::uint32_t) {
    loop->Unwatch(id);
    *state += 1;
    calls = *state;
  });
  ASSERT_TRUE(watch.has_value());
  id = *watch;
  pipe.WriteByte();  // level-triggered and never read: would fire on every iteration if still watched
  ASSERT_TRUE(RunUntil(*loop, [&] { return calls == 1; }));
  RunFor(*loop, 20ms);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(loop->Modify(id, EPOLLIN).has_value());
}

TEST(EventLoopTest, UnwatchOfAnotherWatchWhoseEventIsAlreadyFetched) {
  auto loop = MakeLoop();
  Pipe first;
  Pipe second;
  WatchId ids[2] = {0, 0};
  int calls[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    auto watch = loop->Watch(i == 0 ? first.read_fd : second.read_fd, EPOLLIN, [&, i](std::uint32_t) {
      ++calls[i];
      loop->Unwatch(ids[1 - i]);
      loop->Unwatch(ids[i]);
    });
    ASSERT_TRUE(watch.has_value());
    ids[i] = *watch;
  }
  // Both ready before the loop waits, so one epoll_wait returns both; the first callback unwatches the second.
  first.WriteByte();
  second.WriteByte();
  EXPECT_TRUE(loop->RunOnce(0ms));
  EXPECT_EQ(calls[0] + calls[1], 1);
  RunFor(*loop, 10ms);
  EXPECT_EQ(calls[0] + calls[1], 1);
}

TEST(EventLoopTest, WatchFromATaskOnARunningLoop) {
  auto loop = MakeLoop();
  Pipe pipe;
  std::promise<std::uint32_t> seen;
  WatchId id = 0;  // touched only on the loop thread
  LoopThread runner(*loop);
  loop->Post([&] {
    auto watch = loop->Watch(pipe.read_fd, EPOLLIN, [&](std::uint32_t revents) {
      loop->Unwatch(id);
      seen.set_value(revents);
    });
    ASSERT_TRUE(watch.has_value()) << watch.error().message();
    id = *watch;
  });
  pipe.WriteByte();
  auto future = seen.get_future();
  ASSERT_EQ(future.wait_for(kGenerousTimeout), std::future_status::ready);
  EXPECT_TRUE(future.get() & EPOLLIN);
}

TEST(EventLoopTest, WatchOfAnInvalidFdFails) {
  auto loop = MakeLoop();
  auto watch = loop->Watch(-1, EPOLLIN, [](std::uint32_t) {});
  ASSERT_FALSE(watch.has_value());
  EXPECT_EQ(watch.error().code(), Errc::kInvalidArgument);
  EXPECT_THAT(watch.error().message(), HasSubstr("epoll_ctl(ADD, fd -1) failed: "));
  EXPECT_THAT(watch.error().message(), HasSubstr("Bad file descriptor"));
}

TEST(EventLoopTest, WatchOfARegularFileFails) {
  auto loop = MakeLoop();
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  auto watch = loop->Watch(fileno(file), EPOLLIN, [](std::uint32_t) {});
  std::fclose(file);
  ASSERT_FALSE(watch.has_value());
  EXPECT_EQ(watch.error().code(), Errc::kInvalidArgument);
}

TEST(EventLoopTest, WatchingAnFdTwiceFails) {
  auto loop = MakeLoop();
  Pipe pipe;
  auto first = loop->Watch(pipe.read_fd, EPOLLIN, [](std::uint32_t) {});
  ASSERT_TRUE(first.has_value());
  auto second = loop->Watch(pipe.read_fd, EPOLLIN, [](std::uint32_t) {});
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().code(), Errc::kAlreadyExists);
  EXPECT_FALSE(loop->Watch(pipe.write_fd, EPOLLOUT, nullptr).has_value());
  loop->Unwatch(*first);
}

TEST(EventLoopTest, ModifyAndUnwatchOfUnknownIds) {
  auto loop = MakeLoop();
  auto modified = loop->Modify(42, EPOLLIN);
  ASSERT_FALSE(modified.has_value());
  EXPECT_EQ(modified.error().code(), Errc::kNotFound);
  loop->Unwatch(0);
  loop->Unwatch(42);
}

TEST(EventLoopTest, CurrentExecutorNamesTheLoopOnlyWhileItRuns) {
  auto loop = MakeLoop();
  EXPECT_EQ(CurrentExecutor(), nullptr);
  Executor* seen = nullptr;
  loop->Post([&seen] { seen = CurrentExecutor(); });
  EXPECT_TRUE(loop->RunOnce(0ms));
  EXPECT_EQ(seen, loop.get());
  EXPECT_EQ(CurrentExecutor(), nullptr) << "restored once the loop returns";
}

}  // namespace
}  // namespace mpath
