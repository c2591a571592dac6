// Where deferred work runs. The core posts control-plane work and timers through this interface; the runtime's event
// loops implement it for production and ManualExecutor (core/testing) implements it for tests.
#pragma once

#include <cstdint>
#include <functional>

#include "mpath/core/clock.h"

namespace mpath {

using Task = std::move_only_function<void()>;

// Identifies a scheduled timer; 0 is never a valid id.
using TimerId = std::uint64_t;

// Threading: Post, ScheduleAfter and Cancel are safe from any thread. Tasks run one at a time on the executor's own
// thread, in posting order; timers run at or after their deadline, ordered by deadline.
class Executor {
 public:
  virtual ~Executor() = default;
  virtual void Post(Task task) = 0;
  virtual TimerId ScheduleAfter(Nanos delay, Task task) = 0;
  // Returns true when the timer was still pending and will now never run.
  virtual bool Cancel(TimerId id) = 0;
  // The clock whose time the executor's timers follow.
  [[nodiscard]] virtual const Clock& clock() const = 0;
};

// The executor whose thread is running now, or nullptr on a thread that is not an executor's. Drivers use it to
// name where a transport that answers on its own thread must deliver a completion (the submitter's thread).
[[nodiscard]] Executor* CurrentExecutor();

// Marks the calling thread as `executor`'s for its lifetime; executors hold one while they run tasks.
// Threading: create and destroy on the same thread; nests.
class ScopedCurrentExecutor {
 public:
  explicit ScopedCurrentExecutor(Executor* executor);
  ~ScopedCurrentExecutor();
  ScopedCurrentExecutor(const ScopedCurrentExecutor&) = delete;
  ScopedCurrentExecutor& operator=(const ScopedCurrentExecutor&) = delete;

 private:
  Executor* previous_;
};

}  // namespace mpath
