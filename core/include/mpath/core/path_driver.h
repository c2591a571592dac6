// The seam below the core: one driver per path, provided by a personality over its transport (or the null path).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>

#include "mpath/core/executor.h"
#include "mpath/core/io_request.h"

namespace mpath {

// Threading: Submit may be called from any I/O thread; the driver completes each request on the thread that
// submitted it. Destruction may happen on any thread once nothing is in flight.
class PathDriver {
 public:
  virtual ~PathDriver() = default;
  // Bytes of per-request state this driver keeps in IoRequest::driver_context().
  [[nodiscard]] virtual std::size_t ContextSize() const { return 0; }
  // Starts `io`; finishes it with exactly one io.Complete(status), possibly before returning.
  virtual void Submit(IoRequest& io) = 0;
};

// A path with no device behind it: completes every request at once, after a set latency, or when told to. Its
// outcome can be switched at run time, which makes it the fault injector of the core's tests and the baseline of the
// benchmarks. Data is never touched.
// Threading: outcome and latency may be changed from any thread; held requests are released on the thread that
// calls CompleteHeld (tests drive it from the executor's thread).
class NullPath final : public PathDriver {
 public:
  enum class Mode : std::uint8_t {
    kInline,   // complete inside Submit
    kDelayed,  // complete `latency` later through the executor
    kHold,     // keep every request until CompleteHeld (a hung path)
  };

  // `executor` is required for kDelayed and must outlive the path.
  explicit NullPath(Mode mode = Mode::kInline, Executor* executor = nullptr, Nanos latency = Nanos(0));

  void Submit(IoRequest& io) override;

  void SetMode(Mode mode) { mode_.store(mode, std::memory_order_release); }
  void SetLatency(Nanos latency) { latency_ns_.store(latency.count(), std::memory_order_release); }
  // Every later request completes with `outcome` (IoStatus::Ok() restores success).
  void SetOutcome(IoStatus outcome);
  // Completes every held request with `outcome`, oldest first. Returns how many were released.
  std::size_t CompleteHeld(IoStatus outcome);

  [[nodiscard]] std::uint64_t submitted() const { return submitted_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::size_t held() const;

 private:
  [[nodiscard]] IoStatus Outcome() const;

  std::atomic<Mode> mode_;
  Executor* executor_;
  std::atomic<Nanos::rep> latency_ns_;
  std::atomic<std::uint64_t> submitted_{0};
  std::atomic<bool> failing_{false};
  mutable std::mutex mu_;
  IoStatus outcome_;                  // guarded by mu_
  std::deque<IoRequest*> held_;       // guarded by mu_
};

}  // namespace mpath
