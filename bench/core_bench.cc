// Micro-benchmarks of the core's data plane: what a head costs per I/O over what the bare driver costs, per iopolicy
// and path count, and what a non-multipathed device costs over its driver. Every figure is taken through the public
// API on one thread; see bench/README.md for how to read them.
#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mpath/core/clock.h"
#include "mpath/core/executor.h"
#include "mpath/core/head.h"
#include "mpath/core/head_channel.h"
#include "mpath/core/io_request.h"
#include "mpath/core/path.h"
#include "mpath/core/path_driver.h"
#include "mpath/core/personality.h"
#include "mpath/core/registry.h"
#include "mpath/testing/head_fixture.h"
#include "mpath/core/types.h"

namespace mpath::bench {
namespace {

constexpr std::uint64_t kCapacity = std::uint64_t{1} << 30;  // 1 GiB device
constexpr std::uint32_t kBlock = 4096;
constexpr std::uint32_t kIoSize = 4096;
constexpr std::uint64_t kOffsetMask = kCapacity / kIoSize - 1;  // offsets cycle over the whole device
constexpr std::size_t kRequests = 64;                           // power of two: the loop indexes with a mask
constexpr std::size_t kQueueDepth = 32;                         // the deferred-completion benchmarks' batch
constexpr std::size_t kContextSize = 256;                       // HeadOptions::request_context_size default
const char* const kIdentity = "naa.60014050000000000000000000be0001";

// An executor for one benchmark thread: its clock is the one the benchmark wants (the steady clock by default, so
// the head's two timestamps per I/O cost what they cost in production); posted tasks and timers are only stored,
// because nothing on the measured path needs them. RunPosted() runs what the control plane posted during setup.
// Threading: Post, ScheduleAfter and Cancel are safe from any thread; RunPosted runs on the benchmark thread.
class BenchExecutor final : public Executor {
 public:
  explicit BenchExecutor(const Clock& clock) : clock_(clock) {}

  void Post(Task task) override {
    std::lock_guard lock(mu_);
    posted_.push_back(std::move(task));
  }
  TimerId ScheduleAfter(Nanos /*delay*/, Task task) override {
    std::lock_guard lock(mu_);
    timers_.emplace(++next_id_, std::move(task));
    return next_id_;
  }
  bool Cancel(TimerId id) override {
    std::lock_guard lock(mu_);
    return timers_.erase(id) != 0;
  }
  [[nodiscard]] const Clock& clock() const override { return clock_; }

  void RunPosted() {
    for (;;) {
      Task task;
      {
        std::lock_guard lock(mu_);
        if (posted_.empty()) return;
        task = std::move(posted_.front());
        posted_.erase(posted_.begin());
      }
      task();
    }
  }
  [[nodiscard]] std::size_t pending_timers() const {
    std::lock_guard lock(mu_);
    return timers_.size();
  }

 private:
  const Clock& clock_;
  mutable std::mutex mu_;
  std::vector<Task> posted_;                // guarded by mu_
  std::map<TimerId, Task> timers_;          // guarded by mu_
  TimerId next_id_ = 0;                     // guarded by mu_
};

// The submitter's completion hook: counts, and counts failures (so that a benchmark that silently failed every I/O,
// e.g. for want of a usable path, reports an error instead of a flattering figure).
struct Sink {
  std::uint64_t done = 0;
  std::uint64_t failed = 0;

  static void Hook(IoRequest& io, void* arg) {
    auto* sink = static_cast<Sink*>(arg);
    ++sink->done;
    sink->failed += io.status.ok() ? 0 : 1;
  }
};

// Preallocated 4 KiB reads against one shared 4 KiB buffer (never touched: null paths move no data).
class Requests {
 public:
  explicit Requests(Sink& sink) : pool_(kRequests, kContextSize) {
    for (auto& io : ios_) {
      io = pool_.Acquire();
      io->op = IoOp::kRead;
      io->length = kIoSize;
      io->data = buffer_.data();
      io->OnComplete(&Sink::Hook, &sink);
    }
  }
  // The next request, aimed at the next 4 KiB block of the device.
  IoRequest& Next() {
    IoRequest& io = *ios_[seq_ & (kRequests - 1)];
    io.offset = (seq_ & kOffsetMask) * kIoSize;
    ++seq_;
    return io;
  }

 private:
  IoRequestPool pool_;
  std::array<IoRequest*, kRequests> ios_{};
  alignas(4096) std::array<std::byte, kIoSize> buffer_{};
  std::uint64_t seq_ = 0;
};

// A driver that holds what it is given until told to complete it: a queue of requests in flight, so that the
// queue-depth and service-time policies see non-zero in-flight counts. No lock, no allocation after construction.
// Threading: thread-confined (the benchmark thread).
class DeferredPath final : public PathDriver {
 public:
  DeferredPath() { held_.reserve(kQueueDepth); }
  void Submit(IoRequest& io) override { held_.push_back(&io); }
  void CompleteAll() {
    for (IoRequest* io : held_) io->Complete(IoStatus::Ok());
    held_.clear();
  }

 private:
  std::vector<IoRequest*> held_;
};

DeviceInfo PathInfo(int index, int locality) {
  return testing::NullPathInfo("null" + std::to_string(index), DeviceIdentity(kIdentity), kCapacity, kBlock, locality);
}

// A head of `paths` paths under `policy`, with a channel opened for this thread on NUMA node 0. Paths alternate
// between nodes 0 and 1, so the numa policy has a real choice to make (once; then it caches it).
struct HeadRig {
  BenchExecutor executor;
  std::shared_ptr<Head> head;
  std::shared_ptr<HeadChannel> channel;
  std::vector<DeferredPath*> deferred;  // owned by the head's paths

  enum class Driver : std::uint8_t { kNullInline, kDeferred };

  HeadRig(const Clock& clock, IoPolicyKind policy, int paths, Driver driver) : executor(clock) {
    HeadOptions options;
    options.policy = policy;
    head = Head::Create({"bench0", DeviceIdentity(kIdentity), kCapacity, kBlock, options}, NeutralTemplate::Instance(),
                        executor)
               .value();
    for (int i = 0; i < paths; ++i) {
      std::unique_ptr<PathDriver> d;
      if (driver == Driver::kDeferred) {
        auto owned = std::make_unique<DeferredPath>();
        deferred.push_back(owned.get());
        d = std::move(owned);
      } else {
        d = std::make_unique<NullPath>(NullPath::Mode::kInline);
      }
      (void)head->AddPath(PathInfo(i, i % 2), std::move(d)).value();
    }
    channel = head->OpenChannel(executor, /*locality=*/0);
    executor.RunPosted();
  }
  ~HeadRig() {
    channel->Close();
    channel.reset();
    executor.RunPosted();
  }
};

// Every benchmark reports one item per I/O, so items_per_second is IOPS and 1e9 / items_per_second is ns per I/O.
// `warm_up` I/Os ran before the timed loop; `ios` in it.
void Report(benchmark::State& state, const Sink& sink, std::uint64_t warm_up, std::uint64_t ios) {
  if (sink.failed != 0 || sink.done != warm_up + ios) {
    state.SkipWithError("some I/O failed or never completed");
    return;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(ios));
  state.SetBytesProcessed(static_cast<std::int64_t>(ios) * kIoSize);
}

// Warm-up outside the timed loop: the channel's first Submit copies the head's snapshot.
template <typename SubmitFn>
std::uint64_t WarmUp(Requests& requests, SubmitFn submit) {
  constexpr std::uint64_t kWarmUp = 1024;
  for (std::uint64_t i = 0; i < kWarmUp; ++i) submit(requests.Next());
  return kWarmUp;
}

// --- Inline completion (queue depth 1): one Submit per iteration, completed before Submit returns.

// Baseline: the request goes straight to one null path, as a non-multipath submitter would send it (virtual call
// through PathDriver, completion routed straight to the submitter's hook).
void BM_DirectIo(benchmark::State& state) {
  Sink sink;
  Requests requests(sink);
  auto owned = std::make_unique<NullPath>(NullPath::Mode::kInline);
  PathDriver* driver = owned.get();
  benchmark::DoNotOptimize(driver);  // keep the call virtual, as it is below a head or a DirectDevice
  auto submit = [driver](IoRequest& io) {
    io.RouteToSubmitter();
    driver->Submit(io);
  };
  std::uint64_t warm = WarmUp(requests, submit);
  for (auto _ : state) submit(requests.Next());
  benchmark::DoNotOptimize(sink.done);
  Report(state, sink, warm, state.iterations());
}

// The same I/O through a head's channel over `paths` null paths under `policy`.
void HeadIo(benchmark::State& state, IoPolicyKind policy, const Clock& clock) {
  const int paths = static_cast<int>(state.range(0));
  HeadRig rig(clock, policy, paths, HeadRig::Driver::kNullInline);
  Sink sink;
  Requests requests(sink);
  HeadChannel& channel = *rig.channel;
  auto submit = [&channel](IoRequest& io) { channel.Submit(io); };
  std::uint64_t warm = WarmUp(requests, submit);
  for (auto _ : state) submit(requests.Next());
  benchmark::DoNotOptimize(sink.done);
  Report(state, sink, warm, state.iterations());
}

void BM_HeadIo(benchmark::State& state, IoPolicyKind policy) { HeadIo(state, policy, SteadyClock::Instance()); }

// The same with a clock that reads one atomic word instead of the TSC: the difference is what the head's two
// timestamps per I/O cost.
void BM_HeadIoManualClock(benchmark::State& state, IoPolicyKind policy) {
  ManualClock clock;
  HeadIo(state, policy, clock);
}

// A device the registry did not take into multipath (mode off): Registry::Attach hands back a DirectDevice.
void BM_BypassIo(benchmark::State& state) {
  BenchExecutor control(SteadyClock::Instance());
  RegistryOptions options;
  options.opt_in.mode = MultipathMode::kOff;
  auto registry = Registry::Create(options, control).value();
  Attachment attachment =
      registry->Attach(PathInfo(0, 0), NeutralTemplate::Instance(), std::make_unique<NullPath>(NullPath::Mode::kInline))
          .value();
  if (attachment.multipathed() || !attachment.direct) {
    state.SkipWithError("the registry multipathed a device with multipath off");
    return;
  }
  DirectDevice* device = attachment.direct.get();
  benchmark::DoNotOptimize(device);
  Sink sink;
  Requests requests(sink);
  auto submit = [device](IoRequest& io) { device->Submit(io); };
  std::uint64_t warm = WarmUp(requests, submit);
  for (auto _ : state) submit(requests.Next());
  benchmark::DoNotOptimize(sink.done);
  Report(state, sink, warm, state.iterations());
}

// What one timestamp costs: the head takes two per I/O (issue and completion).
void BM_SteadyClockNow(benchmark::State& state) {
  const Clock* clock = &SteadyClock::Instance();
  benchmark::DoNotOptimize(clock);
  for (auto _ : state) benchmark::DoNotOptimize(clock->Now());
  state.SetItemsProcessed(state.iterations());
}

// --- Deferred completion (queue depth 32): each iteration submits 32 I/Os, then the paths complete them all, so the
// queue-depth and service-time policies compare real in-flight counts on every choice.

void BM_DirectIoQd(benchmark::State& state) {
  Sink sink;
  Requests requests(sink);
  auto owned = std::make_unique<DeferredPath>();
  DeferredPath* path = owned.get();
  PathDriver* driver = owned.get();
  benchmark::DoNotOptimize(driver);
  for (auto _ : state) {
    for (std::size_t i = 0; i < kQueueDepth; ++i) {
      IoRequest& io = requests.Next();
      io.RouteToSubmitter();
      driver->Submit(io);
    }
    path->CompleteAll();
  }
  benchmark::DoNotOptimize(sink.done);
  Report(state, sink, 0, state.iterations() * kQueueDepth);
}

void BM_HeadIoQd(benchmark::State& state, IoPolicyKind policy) {
  const int paths = static_cast<int>(state.range(0));
  HeadRig rig(SteadyClock::Instance(), policy, paths, HeadRig::Driver::kDeferred);
  Sink sink;
  Requests requests(sink);
  HeadChannel& channel = *rig.channel;
  for (auto _ : state) {
    for (std::size_t i = 0; i < kQueueDepth; ++i) channel.Submit(requests.Next());
    for (DeferredPath* path : rig.deferred) path->CompleteAll();
  }
  benchmark::DoNotOptimize(sink.done);
  Report(state, sink, 0, state.iterations() * kQueueDepth);
}

struct PolicyName {
  IoPolicyKind policy;
  const char* name;
};
constexpr std::array<PolicyName, 4> kPolicies = {{
    {IoPolicyKind::kNuma, "numa"},
    {IoPolicyKind::kRoundRobin, "round-robin"},
    {IoPolicyKind::kQueueDepth, "queue-depth"},
    {IoPolicyKind::kServiceTime, "service-time"},
}};
constexpr std::array<int, 5> kPathCounts = {1, 2, 4, 8, 16};

void RegisterAll() {
  benchmark::RegisterBenchmark("BM_DirectIo", BM_DirectIo);
  benchmark::RegisterBenchmark("BM_BypassIo", BM_BypassIo);
  benchmark::RegisterBenchmark("BM_SteadyClockNow", BM_SteadyClockNow);
  for (const auto& p : kPolicies) {
    auto* b = benchmark::RegisterBenchmark((std::string("BM_HeadIo/") + p.name).c_str(), BM_HeadIo, p.policy);
    for (int n : kPathCounts) b->Arg(n);
  }
  // Not service-time: under a clock that never moves every latency is zero and its choice degenerates.
  for (const auto& p : kPolicies) {
    if (p.policy == IoPolicyKind::kServiceTime) continue;
    benchmark::RegisterBenchmark((std::string("BM_HeadIoManualClock/") + p.name).c_str(), BM_HeadIoManualClock,
                                 p.policy)
        ->Arg(8);
  }
  benchmark::RegisterBenchmark("BM_DirectIoQd", BM_DirectIoQd);
  for (const auto& p : kPolicies) {
    auto* b = benchmark::RegisterBenchmark((std::string("BM_HeadIoQd/") + p.name).c_str(), BM_HeadIoQd, p.policy);
    for (int n : kPathCounts) b->Arg(n);
  }
}

}  // namespace
}  // namespace mpath::bench

int main(int argc, char** argv) {
  mpath::bench::RegisterAll();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
