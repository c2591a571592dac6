#include "mpath/runtime/reactor_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <string>
#include <system_error>
#include <utility>

namespace mpath {
namespace {

// The CPUs this process may run on. Pinning loop i to CPU i would fail in any cpuset or container that excludes
// CPU i, so loops are spread over the allowed ones instead.
std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

}  // namespace

Result<std::unique_ptr<ReactorPool>> ReactorPool::Create(const ReactorPoolOptions& options) {
  std::size_t count = options.loops;
  if (count == 0) count = std::max(1u, std::thread::hardware_concurrency());
  const Clock& clock = options.clock != nullptr ? *options.clock : SteadyClock::Instance();
  std::vector<std::unique_ptr<EventLoop>> loops;
  loops.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    auto loop = EventLoop::Create(clock);
    if (!loop) {
      return MakeError(loop.error().code(), "creating loop " + std::to_string(i) + ": " + loop.error().message());
    }
    loops.push_back(*std::move(loop));
  }
  return std::unique_ptr<ReactorPool>(new ReactorPool(std::move(loops), options.pinning));
}

ReactorPool::ReactorPool(std::vector<std::unique_ptr<EventLoop>> loops, CpuPinning pinning)
    : loops_(std::move(loops)), pinning_(pinning) {}

ReactorPool::~ReactorPool() { Stop(); }

Result<std::size_t> ReactorPool::Start() {
  if (running()) return pinned_;
  threads_.reserve(loops_.size());
  for (std::size_t i = 0; i < loops_.size(); ++i) {
    try {
      threads_.emplace_back([loop = loops_[i].get()] { loop->Run(); });
    } catch (const std::system_error& e) {
      Stop();
      return MakeError(Errc::kInternal, "starting the thread of loop " + std::to_string(i) + " failed: " + e.what());
    }
    // Names show up in top, perf and gdb; at most 15 characters, and failure changes nothing but the display.
    pthread_setname_np(threads_.back().native_handle(), ("mpath-loop-" + std::to_string(i)).substr(0, 15).c_str());
  }
  pinned_ = pinning_ == CpuPinning::kOnePerLoop ? PinThreads() : 0;
  return pinned_;
}

void ReactorPool::Stop() {
  // Stopping loops that are not running would leave them a request that ends their next Run() at once.
  if (!running()) return;
  for (std::size_t i = 0; i < threads_.size(); ++i) loops_[i]->Stop();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

// Pinned from the controlling thread, after the threads started: a loop may run a moment on another CPU first, which
// costs nothing, whereas pinning from inside the thread would need a handshake to report the outcome.
std::size_t ReactorPool::PinThreads() {
  const std::vector<int> cpus = AllowedCpus();
  std::size_t pinned = 0;
  for (std::size_t i = 0; i < threads_.size(); ++i) {
    const int cpu = cpus.empty() ? static_cast<int>(i) : cpus[i % cpus.size()];
    if (cpu >= CPU_SETSIZE) continue;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(threads_[i].native_handle(), sizeof(set), &set) == 0) ++pinned;
  }
  return pinned;
}

}  // namespace mpath
