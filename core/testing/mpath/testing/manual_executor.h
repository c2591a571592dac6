// Deterministic time and execution for tests (after SPDK's ut_multithread): nothing runs until the test says so,
// and time moves only when the test advances it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <utility>

#include "mpath/core/clock.h"
#include "mpath/core/executor.h"

namespace mpath::testing {

// Threading: Post, ScheduleAfter and Cancel are safe from any thread; RunUntilIdle and Advance run the work on the
// calling thread, which acts as the executor's thread.
class ManualExecutor final : public Executor {
 public:
  explicit ManualExecutor(ManualClock& clock) : clock_(clock) {}

  void Post(Task task) override {
    std::lock_guard lock(mu_);
    ready_.push_back(std::move(task));
  }

  TimerId ScheduleAfter(Nanos delay, Task task) override {
    std::lock_guard lock(mu_);
    TimerId id = ++next_id_;
    timers_.emplace(std::make_pair(clock_.Now() + std::max(delay, Nanos(0)), id), std::move(task));
    return id;
  }

  bool Cancel(TimerId id) override {
    std::lock_guard lock(mu_);
    for (auto it = timers_.begin(); it != timers_.end(); ++it) {
      if (it->first.second == id) {
        timers_.erase(it);
        return true;
      }
    }
    return false;
  }

  [[nodiscard]] const Clock& clock() const override { return clock_; }

  // Runs posted tasks and due timers until none is left. Returns how many ran.
  std::size_t RunUntilIdle() {
    ScopedCurrentExecutor current(this);
    std::size_t ran = 0;
    while (Task task = TakeNext()) {
      task();
      ++ran;
    }
    return ran;
  }

  // Moves time forward by `d`, stopping at every timer deadline on the way to run what is due.
  void Advance(Nanos d) {
    const TimePoint target = clock_.Now() + d;
    RunUntilIdle();
    for (;;) {
      TimePoint next;
      {
        std::lock_guard lock(mu_);
        if (timers_.empty() || timers_.begin()->first.first > target) break;
        next = timers_.begin()->first.first;
      }
      if (next > clock_.Now()) clock_.Set(next);
      RunUntilIdle();
    }
    clock_.Set(target);
    RunUntilIdle();
  }

  [[nodiscard]] std::size_t pending_timers() const {
    std::lock_guard lock(mu_);
    return timers_.size();
  }

 private:
  Task TakeNext() {
    std::lock_guard lock(mu_);
    if (!ready_.empty()) {
      Task task = std::move(ready_.front());
      ready_.pop_front();
      return task;
    }
    if (!timers_.empty() && timers_.begin()->first.first <= clock_.Now()) {
      Task task = std::move(timers_.begin()->second);
      timers_.erase(timers_.begin());
      return task;
    }
    return nullptr;
  }

  ManualClock& clock_;
  mutable std::mutex mu_;
  std::deque<Task> ready_;                                 // guarded by mu_
  std::map<std::pair<TimePoint, TimerId>, Task> timers_;   // guarded by mu_
  TimerId next_id_ = 0;                                    // guarded by mu_
};

}  // namespace mpath::testing
