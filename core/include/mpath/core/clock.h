// Time as the core sees it: injected, so that tests drive it by hand and never sleep.
#pragma once

#include <atomic>
#include <chrono>

namespace mpath {

using Nanos = std::chrono::nanoseconds;
using TimePoint = std::chrono::steady_clock::time_point;

// Threading: implementations are safe to call from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual TimePoint Now() const = 0;
};

// The monotonic system clock. Threading: safe from any thread.
class SteadyClock final : public Clock {
 public:
  [[nodiscard]] TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  static SteadyClock& Instance();
};

// A clock that moves only when told to. Threading: safe from any thread (reads race-free with Advance).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = TimePoint{} + std::chrono::hours(1)) : now_ns_(start.time_since_epoch().count()) {}
  [[nodiscard]] TimePoint Now() const override { return TimePoint(Nanos(now_ns_.load(std::memory_order_acquire))); }
  void Set(TimePoint t) { now_ns_.store(t.time_since_epoch().count(), std::memory_order_release); }
  void Advance(Nanos d) { now_ns_.fetch_add(d.count(), std::memory_order_acq_rel); }

 private:
  std::atomic<Nanos::rep> now_ns_;
};

}  // namespace mpath
