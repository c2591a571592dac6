// A fixed set of EventLoops, each run by a thread of its own: the I/O threads that per-thread path selector channels
// are bound to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/runtime/event_loop.h"

namespace mpath {

enum class CpuPinning : std::uint8_t {
  kOff,
  kOnePerLoop,  // loop i on the i-th CPU this process may use (wrapping around), best effort
};

struct ReactorPoolOptions {
  std::size_t loops = 0;  // 0: std::thread::hardware_concurrency(), at least 1
  CpuPinning pinning = CpuPinning::kOff;
  const Clock* clock = &SteadyClock::Instance();  // must outlive the pool
};

// Threading: loop() and size() from any thread; the rest from one controlling thread that is none of the loops.
class ReactorPool {
 public:
  [[nodiscard]] static Result<std::unique_ptr<ReactorPool>> Create(const ReactorPoolOptions& options = {});

  // Stops and joins the threads. Tasks still queued on the loops are destroyed with them, without running.
  ~ReactorPool();

  ReactorPool(const ReactorPool&) = delete;
  ReactorPool& operator=(const ReactorPool&) = delete;

  // Starts one thread per loop, each in EventLoop::Run(); does nothing when already running. Returns the number of
  // loops pinned to a CPU: 0 with CpuPinning::kOff, and fewer than size() when pinning failed for some, which then
  // run unpinned. Fails only when a thread cannot be created; the threads already started are then stopped again.
  [[nodiscard]] Result<std::size_t> Start();
  // Stops every loop after its current iteration and joins its thread, so never from a loop; idempotent. Queued
  // tasks stay queued and run if the pool is started again. Do not Stop() the pool's loops directly: that would end
  // a later Start()'s run.
  void Stop();
  [[nodiscard]] bool running() const { return !threads_.empty(); }

  // REQUIRES: i < size(). The loop lives as long as the pool.
  [[nodiscard]] EventLoop& loop(std::size_t i) { return *loops_[i]; }
  [[nodiscard]] std::size_t size() const { return loops_.size(); }

 private:
  ReactorPool(std::vector<std::unique_ptr<EventLoop>> loops, CpuPinning pinning);

  std::size_t PinThreads();

  // Constant after construction.
  const std::vector<std::unique_ptr<EventLoop>> loops_;
  const CpuPinning pinning_;

  // Controlling thread only.
  std::vector<std::thread> threads_;  // empty while stopped
  std::size_t pinned_ = 0;
};

}  // namespace mpath
