// One thread's reactor: an epoll loop that runs posted tasks, timers and file-descriptor callbacks. It is the
// production mpath::Executor; sockets (NBD, NVMe/TCP) and libiscsi contexts are driven through Watch().
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/core/executor.h"

namespace mpath {

// Identifies a watched file descriptor; 0 is never a valid id, and ids are never reused.
using WatchId = std::uint64_t;

// Called on the loop thread with the ready events (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP...).
using WatchCallback = std::move_only_function<void(std::uint32_t revents)>;

// Threading: Post, ScheduleAfter, Cancel, Stop and IsLoopThread from any thread; the rest on the loop thread only.
class EventLoop final : public Executor {
 public:
  // |clock| must outlive the loop. Timers follow it: with a ManualClock, advancing the clock and calling
  // RunOnce(Nanos(0)) fires what became due (advancing does not wake a loop blocked in Run).
  [[nodiscard]] static Result<std::unique_ptr<EventLoop>> Create(const Clock& clock = SteadyClock::Instance());

  // Tasks and timers still pending are destroyed without running. REQUIRES: no thread is inside Run/RunOnce.
  ~EventLoop() override;

  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs until Stop(); the calling thread is the loop thread meanwhile. Each Stop() ends one Run(): a Stop() that
  // arrives before Run() starts makes it return at once.
  void Run();
  // Waits at most |max_wait| for work, runs what is ready, and returns whether anything (task, timer or fd
  // callback) ran. For tests and for embedding the loop in another one.
  bool RunOnce(Nanos max_wait);
  // Makes Run() return once the current iteration, including the batch of tasks it took, has finished. Tasks and
  // timers not run by then stay queued.
  void Stop();

  // True on the thread currently inside Run() or RunOnce().
  [[nodiscard]] bool IsLoopThread() const;

  // Executor. Empty tasks are dropped (ScheduleAfter then returns 0). A cancelled timer's task is destroyed
  // on the thread that cancelled it.
  void Post(Task task) override;
  TimerId ScheduleAfter(Nanos delay, Task task) override;
  bool Cancel(TimerId id) override;
  [[nodiscard]] const Clock& clock() const override { return clock_; }

  // Calls |on_ready| on the loop thread whenever |fd| is ready for one of |events| (level-triggered unless EPOLLET
  // is included). The loop does not own |fd|: Unwatch it before closing it. Fails if |fd| cannot be polled (a
  // regular file, a closed fd) or is already watched by this loop. Watch, Modify and Unwatch run on the loop thread,
  // or on any one thread before the loop first runs (e.g. while setting up, before ReactorPool::Start).
  [[nodiscard]] Result<WatchId> Watch(int fd, std::uint32_t events, WatchCallback on_ready);
  [[nodiscard]] Result<void> Modify(WatchId id, std::uint32_t events);
  // Safe from inside any watch callback, including |id|'s own: its callback is destroyed only after the current
  // batch of events has been dispatched, and events already fetched for it are dropped. Unknown ids are ignored.
  void Unwatch(WatchId id);

 private:
  // A heap entry; the task lives in timers_ so that Cancel can find it.
  struct TimerEntry {
    TimePoint deadline;
    TimerId id;  // ids only grow, so the id is also the tie-breaking sequence number
  };
  struct Watcher {
    int fd;
    WatchCallback on_ready;
  };
  using TimerMap = std::unordered_map<TimerId, Task>;
  using WatcherMap = std::unordered_map<WatchId, Watcher>;

  EventLoop(const Clock& clock, int epoll_fd, int wake_fd);

  // One wait-and-dispatch round; |max_wait| empty means no limit.
  bool RunIteration(std::optional<Nanos> max_wait);
  int TimeoutMillis(std::optional<Nanos> max_wait);
  bool DispatchEvents(int timeout_ms);
  bool RunDueTimers();
  bool RunPostedTasks();
  void Wake();
  void DrainWakeups();
  void DropCancelledTimersLocked();
  void MaybeCompactTimersLocked();

  // Constant after construction.
  const Clock& clock_;
  const int epoll_fd_;
  const int wake_fd_;  // eventfd: other threads' Post, ScheduleAfter and Stop interrupt epoll_wait through it

  std::atomic<bool> stop_requested_{false};
  std::atomic<std::thread::id> loop_thread_{};

  std::mutex mu_;
  // Guarded by mu_.
  std::vector<Task> tasks_;
  std::vector<TimerEntry> timer_heap_;  // min-heap by (deadline, id); entries absent from timers_ were cancelled
  TimerMap timers_;                     // pending timers only
  TimerId next_timer_id_ = 1;

  // Loop thread only.
  std::vector<Task> running_tasks_;  // swapped with tasks_, so both keep their capacity and Post stops allocating
  WatcherMap watchers_;
  std::vector<WatcherMap::node_type> retired_watchers_;  // unwatched during dispatch; freed when the batch is done
  WatchId next_watch_id_ = 1;
  bool dispatching_ = false;
};

}  // namespace mpath
