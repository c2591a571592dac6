#include "demo.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "mpath/core/head_channel.h"
#include "mpath/core/registry.h"
#include "mpath/runtime/reactor_pool.h"
#include "ram_path.h"

namespace mpath::cli {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::uint32_t kBlock = 4096;
constexpr std::uint64_t kCapacity = 64ull << 20;
constexpr std::size_t kSlots = 32;  // I/Os in flight per head
constexpr Nanos kPathLatency = 200us;

// Every block the workload writes carries its LBA, a generation and its head, so a read proves where it came from.
struct Stamp {
  std::uint64_t lba;
  std::uint32_t generation;
  std::uint32_t head;
};

void FillBlock(std::byte* block, std::uint64_t lba, std::uint32_t generation, std::uint32_t head) {
  Stamp stamp{lba, generation, head};
  std::memcpy(block, &stamp, sizeof stamp);
  auto fill = static_cast<std::byte>((lba * 31 + generation) & 0xff);
  std::memset(block + sizeof stamp, static_cast<int>(fill), kBlock - sizeof stamp);
}

bool BlockIs(const std::byte* block, std::uint64_t lba, std::uint32_t generation, std::uint32_t head) {
  std::byte expected[kBlock];
  FillBlock(expected, lba, generation, head);
  return std::memcmp(block, expected, kBlock) == 0;
}

// A verified workload on one head: each slot owns its own blocks, writes a new generation, reads it back, checks it.
// Threading: everything runs on the head's I/O loop, except the atomic figures the screen reads.
class Workload {
 public:
  Workload(std::shared_ptr<Head> head, EventLoop& loop, std::uint32_t index)
      : head_(std::move(head)), loop_(loop), index_(index), expected_(kCapacity / kBlock) {}

  void Start() {
    loop_.Post([this] {
      channel_ = head_->OpenChannel(loop_);
      for (std::size_t s = 0; s < kSlots; ++s) {
        slots_[s].owner = this;
        slots_[s].next_block = s * (kCapacity / kBlock / kSlots);
        Next(slots_[s]);
      }
    });
  }

  // Stops issuing new I/O; the future is ready once every in-flight I/O has completed.
  std::future<void> Stop() {
    loop_.Post([this] {
      stopping_ = true;
      if (idle_ == kSlots) Drained();
    });
    return drained_.get_future();
  }

  [[nodiscard]] const std::shared_ptr<Head>& head() const { return head_; }
  std::atomic<std::uint64_t> ios{0};
  std::atomic<std::uint64_t> verified_bytes{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> data_errors{0};
  std::atomic<std::int64_t> max_pause_ns{0};
  std::mutex last_error_mu;
  std::string last_error;  // guarded by last_error_mu

 private:
  struct Slot {
    Workload* owner = nullptr;
    IoRequest io;
    std::byte buffer[kBlock];
    std::uint64_t next_block = 0;
    std::uint64_t block = 0;
    std::uint32_t generation = 0;
    bool writing = false;
    Clock::time_point started;
  };
  // What a block may hold: the last acknowledged generation, or (after a failed write) either of two.
  struct Expected {
    std::uint32_t generation = 0;
    std::uint32_t maybe = 0;
  };

  void Next(Slot& slot) {
    if (stopping_) {
      if (++idle_ == kSlots) Drained();
      return;
    }
    IoRequest& io = slot.io;
    io.OnComplete(&Workload::OnDone, &slot);
    io.offset = slot.block * kBlock;
    io.length = kBlock;
    io.data = slot.buffer;
    if (!slot.writing) {
      // Start a new round on this slot's next block: write a new generation.
      std::uint64_t per_slot = kCapacity / kBlock / kSlots;
      std::uint64_t first = (&slot - slots_) * per_slot;
      slot.block = slot.next_block;
      slot.next_block = first + ((slot.next_block - first + 1) % per_slot);
      slot.generation = expected_[slot.block].generation + 1;
      io.op = IoOp::kWrite;
      io.offset = slot.block * kBlock;
      FillBlock(slot.buffer, slot.block, slot.generation, index_);
      slot.writing = true;
    } else {
      io.op = IoOp::kRead;
      std::memset(slot.buffer, 0xEE, kBlock);
      slot.writing = false;
    }
    slot.started = Clock::now();
    channel_->Submit(io);
  }

  static void OnDone(IoRequest& io, void* arg) {
    auto& slot = *static_cast<Slot*>(arg);
    slot.owner->Completed(slot, io);
  }

  void Completed(Slot& slot, IoRequest& io) {
    std::int64_t pause = (Clock::now() - slot.started).count();
    if (pause > max_pause_ns.load(std::memory_order_relaxed)) max_pause_ns.store(pause, std::memory_order_relaxed);
    Expected& expected = expected_[slot.block];
    if (!io.status.ok()) {
      errors.fetch_add(1, std::memory_order_relaxed);
      {
        std::lock_guard lock(last_error_mu);
        last_error = fmt::format("{} at byte {}: {}", io.op == IoOp::kWrite ? "write" : "read", io.offset,
                                 Error(io.status).ToString());
      }
      // A failed write may or may not have landed; either generation is acceptable from now on.
      if (io.op == IoOp::kWrite) expected.maybe = slot.generation;
      slot.writing = false;
      loop_.Post([this, &slot] { Next(slot); });  // never recurse: a failing head may fail the next I/O at once
      return;
    }
    ios.fetch_add(1, std::memory_order_relaxed);
    if (io.op == IoOp::kWrite) {
      expected.generation = slot.generation;
      expected.maybe = 0;
    } else {
      bool good = BlockIs(slot.buffer, slot.block, expected.generation, index_) ||
                  (expected.maybe != 0 && BlockIs(slot.buffer, slot.block, expected.maybe, index_));
      if (good) {
        verified_bytes.fetch_add(kBlock, std::memory_order_relaxed);
      } else {
        data_errors.fetch_add(1, std::memory_order_relaxed);
      }
    }
    Next(slot);
  }

  void Drained() {
    channel_->Close();
    channel_.reset();
    drained_.set_value();
  }

  const std::shared_ptr<Head> head_;
  EventLoop& loop_;
  const std::uint32_t index_;
  std::shared_ptr<HeadChannel> channel_;
  Slot slots_[kSlots];
  std::vector<Expected> expected_;
  bool stopping_ = false;
  std::size_t idle_ = 0;
  std::promise<void> drained_;
};

// One simulated device: its bytes and the paths to it.
struct Device {
  std::string label;
  DeviceIdentity identity;
  std::shared_ptr<RamDisk> disk = std::make_shared<RamDisk>(kCapacity);
  EventLoop* loop = nullptr;
  std::vector<std::pair<std::string, RamPath*>> paths;  // drivers are owned by their Path objects
};

struct Event {
  double at;  // fraction of the run
  std::string what;
  std::function<void()> action;
};

std::string Bar(double fraction, int width) {
  int filled = static_cast<int>(fraction * width);
  return std::string(static_cast<std::size_t>(filled), '#') + std::string(static_cast<std::size_t>(width - filled), '.');
}

}  // namespace

int RunDemo(const DemoOptions& options) {
  if (!(options.seconds >= 1 && options.seconds <= 3600)) {
    fmt::print(stderr, "mpath demo: --seconds must be between 1 and 3600 (got {})\n", options.seconds);
    return 2;
  }
  const bool live_screen = !options.json && isatty(STDOUT_FILENO);
  auto pool_or = ReactorPool::Create({.loops = 3});
  if (!pool_or) {
    fmt::print(stderr, "mpath demo: {}\n", pool_or.error().ToString());
    return 1;
  }
  auto pool = std::move(*pool_or);
  EventLoop& control = pool->loop(0);

  RegistryOptions registry_options;
  registry_options.opt_in.mode = MultipathMode::kOn;
  registry_options.head.delayed_removal = 3s;
  registry_options.head.policy = IoPolicyKind::kNuma;
  auto registry = std::move(Registry::Create(registry_options, control).value());

  std::vector<Device> devices(3);
  const char* labels[] = {"lu0 (4 paths, 2 port groups)", "lu1 (2 paths)", "lu2 (2 paths)"};
  for (std::size_t d = 0; d < devices.size(); ++d) {
    devices[d].label = labels[d];
    devices[d].identity = DeviceIdentity(fmt::format("naa.60014050000000000000000000{:06x}", d + 1));
    devices[d].loop = &pool->loop(1 + d % 2);
  }
  std::mutex log_mu;
  std::vector<std::string> event_log;
  const auto start = Clock::now();
  auto log = [&](const std::string& line) {
    double t = std::chrono::duration<double>(Clock::now() - start).count();
    std::string stamped = fmt::format("[{:6.2f}s] {}", t, line);
    std::lock_guard lock(log_mu);
    event_log.push_back(stamped);
    if (!live_screen && !options.json) fmt::print("{}\n", stamped);
  };

  auto attach = [&](Device& device, const std::string& name, AccessState access) -> bool {
    DeviceInfo info;
    info.name = name;
    info.transport = "demo";
    info.identity = device.identity;
    info.reports_access_states = true;
    info.capacity_bytes = kCapacity;
    info.block_size = kBlock;
    info.initial_access = access;
    auto driver = std::make_unique<RamPath>(device.disk, *device.loop, kPathLatency);
    RamPath* raw = driver.get();
    auto attached = registry->Attach(info, NeutralTemplate::Instance(), std::move(driver));
    if (!attached) {
      log(fmt::format("attach {} failed: {}", name, attached.error().ToString()));
      return false;
    }
    std::erase_if(device.paths, [&](const auto& p) { return p.first == name; });
    device.paths.emplace_back(name, raw);
    return true;
  };
  attach(devices[0], "lu0:tpgA:p0", AccessState::kOptimized);
  attach(devices[0], "lu0:tpgA:p1", AccessState::kOptimized);
  attach(devices[0], "lu0:tpgB:p2", AccessState::kNonOptimized);
  attach(devices[0], "lu0:tpgB:p3", AccessState::kNonOptimized);
  attach(devices[1], "lu1:p0", AccessState::kOptimized);
  attach(devices[1], "lu1:p1", AccessState::kOptimized);
  attach(devices[2], "lu2:p0", AccessState::kOptimized);
  attach(devices[2], "lu2:p1", AccessState::kOptimized);
  std::vector<std::shared_ptr<Head>> heads;
  for (auto& device : devices) heads.push_back(registry->FindHead(device.identity.str()));
  heads[1]->SetIoPolicy(IoPolicyKind::kRoundRobin);

  auto path_id = [&](std::size_t d, const std::string& name) {
    auto path = heads[d]->FindPath(name);
    return path ? path->id() : PathId{0};
  };
  auto set_access = [&](std::size_t d, const std::string& name, AccessState access) {
    (void)heads[d]->SetAccessState(path_id(d, name), access);
  };
  auto driver_of = [&](std::size_t d, const std::string& name) -> RamPath* {
    for (auto& [n, driver] : devices[d].paths) {
      if (n == name) return driver;
    }
    return nullptr;
  };

  std::vector<Event> timeline = {
      {0.08, "lu0: ALUA transition begins: port group A -> transitioning",
       [&] { for (auto p : {"lu0:tpgA:p0", "lu0:tpgA:p1"}) set_access(0, p, AccessState::kTransitioning); }},
      {0.12, "lu0: transition done: group A non-optimized, group B optimized",
       [&] {
         for (auto p : {"lu0:tpgB:p2", "lu0:tpgB:p3"}) set_access(0, p, AccessState::kOptimized);
         for (auto p : {"lu0:tpgA:p0", "lu0:tpgA:p1"}) set_access(0, p, AccessState::kNonOptimized);
       }},
      {0.20, "lu0: link down on lu0:tpgB:p2 (in-flight I/O fails over)",
       [&] {
         driver_of(0, "lu0:tpgB:p2")->FailEverything(true);
         (void)heads[0]->SetPathState(path_id(0, "lu0:tpgB:p2"), PathState::kFailed);
       }},
      {0.32, "lu0: link back on lu0:tpgB:p2",
       [&] {
         driver_of(0, "lu0:tpgB:p2")->FailEverything(false);
         (void)heads[0]->SetPathState(path_id(0, "lu0:tpgB:p2"), PathState::kLive);
       }},
      {0.36, "lu1: lu1:p1 reports ready but fails every I/O (should be caught as marginal)",
       [&] { driver_of(1, "lu1:p1")->FailEverything(true); }},
      {0.50, "lu1: lu1:p1 healthy again (reinstated after 5 clean probes)",
       [&] { driver_of(1, "lu1:p1")->FailEverything(false); }},
      {0.55, "lu2: every path gone (delayed_removal_secs = 3: I/O queues)",
       [&] {
         (void)registry->Detach("lu2:p0");
         (void)registry->Detach("lu2:p1");
       }},
      {0.62, "lu2: paths back (queued I/O resumes in order)",
       [&] {
         attach(devices[2], "lu2:p0", AccessState::kOptimized);
         attach(devices[2], "lu2:p1", AccessState::kOptimized);
       }},
      {0.70, "lu0: iopolicy numa -> service-time", [&] { heads[0]->SetIoPolicy(IoPolicyKind::kServiceTime); }},
      {0.80, "lu1: iopolicy round-robin -> queue-depth", [&] { heads[1]->SetIoPolicy(IoPolicyKind::kQueueDepth); }},
      {0.88, "lu0: iopolicy service-time -> round-robin", [&] { heads[0]->SetIoPolicy(IoPolicyKind::kRoundRobin); }},
  };

  if (auto started = pool->Start(); !started) {
    fmt::print(stderr, "mpath demo: {}\n", started.error().ToString());
    return 1;
  }
  std::vector<std::unique_ptr<Workload>> workloads;
  for (std::size_t d = 0; d < devices.size(); ++d) {
    workloads.push_back(std::make_unique<Workload>(heads[d], *devices[d].loop, static_cast<std::uint32_t>(d)));
    workloads.back()->Start();
  }
  const Nanos run_time = std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(options.seconds));
  for (auto& event : timeline) {
    control.ScheduleAfter(std::chrono::duration_cast<Nanos>(run_time * event.at), [&event, &log] {
      log(event.what);
      event.action();
    });
  }

  auto render = [&] {
    double fraction = std::min(1.0, std::chrono::duration<double>(Clock::now() - start) / run_time);
    std::string screen = "\x1b[H\x1b[2J";
    screen += fmt::format("mpath demo — core over RAM-backed paths   [{}] {:3.0f}%\n\n", Bar(fraction, 40),
                          fraction * 100);
    for (std::size_t d = 0; d < heads.size(); ++d) {
      const auto& head = heads[d];
      screen += fmt::format("{} {} {}  state={} policy={}  I/Os={} verified={} MiB errors={}\n", head->name(),
                            head->identity().str(), devices[d].label, Name(head->state()), Name(head->policy()),
                            workloads[d]->ios.load(), workloads[d]->verified_bytes.load() >> 20,
                            workloads[d]->errors.load());
      for (const auto& p : head->Paths()) {
        screen += fmt::format("  |- {:<14} {:<10} {:<16} {:<8} {:>10} I/Os\n", p.name, Name(p.state), Name(p.access),
                              p.marginal != MarginalReason::kNone ? "MARGINAL" : (p.usable ? "active" : "-"),
                              p.counters.ios);
      }
    }
    screen += "\nevents:\n";
    std::lock_guard lock(log_mu);
    std::size_t first = event_log.size() > 8 ? event_log.size() - 8 : 0;
    for (std::size_t i = first; i < event_log.size(); ++i) screen += "  " + event_log[i] + "\n";
    fmt::print("{}", screen);
    std::fflush(stdout);
  };
  while (Clock::now() - start < run_time) {
    std::this_thread::sleep_for(live_screen ? 200ms : 50ms);
    if (live_screen) render();
  }

  bool drained = true;
  for (auto& workload : workloads) {
    if (workload->Stop().wait_for(10s) != std::future_status::ready) drained = false;
  }
  if (live_screen) render();

  // Summary.
  std::uint64_t data_errors = 0;
  std::uint64_t unexpected = 0;
  nlohmann::json heads_json = nlohmann::json::array();
  std::string table = fmt::format("\n{:<8} {:<40} {:>10} {:>14} {:>10} {:>14} {:>8} {:>8}\n", "head", "id", "I/Os",
                                  "verified MiB", "failovers", "max pause us", "errors", "data err");
  for (std::size_t d = 0; d < heads.size(); ++d) {
    const auto& w = *workloads[d];
    IoCounters counters = heads[d]->Counters();
    data_errors += w.data_errors.load();
    unexpected += w.errors.load();  // every fault in this timeline is survivable: any surfaced error is unexpected
    auto max_pause_us = w.max_pause_ns.load() / 1000;
    table += fmt::format("{:<8} {:<40} {:>10} {:>14.1f} {:>10} {:>14} {:>8} {:>8}\n", heads[d]->name(),
                         heads[d]->identity().str(), w.ios.load(), static_cast<double>(w.verified_bytes.load()) / (1 << 20),
                         counters.failovers, max_pause_us, w.errors.load(), w.data_errors.load());
    heads_json.push_back({{"name", heads[d]->name()},
                          {"id", heads[d]->identity().str()},
                          {"protocol", heads[d]->personality().protocol()},
                          {"ios", w.ios.load()},
                          {"verified_bytes", w.verified_bytes.load()},
                          {"failovers", counters.failovers},
                          {"requeues", counters.requeues},
                          {"max_pause_us", max_pause_us},
                          {"errors_surfaced", w.errors.load()},
                          {"data_errors", w.data_errors.load()}});
  }
  if (!drained) ++unexpected;
  pool->Stop();

  const bool ok = data_errors == 0 && unexpected == 0;
  if (options.json) {
    nlohmann::json out = {{"data_errors", data_errors},
                          {"unexpected_errors", unexpected},
                          {"seconds", options.seconds},
                          {"heads", heads_json},
                          {"result", ok ? "pass" : "fail"}};
    fmt::print("{}\n", out.dump(2));
  } else {
    fmt::print("{}", table);
    for (auto& w : workloads) {
      std::lock_guard lock(w->last_error_mu);
      if (!w->last_error.empty()) fmt::print("{}: last error: {}\n", w->head()->name(), w->last_error);
    }
    fmt::print("\n{}: {} data errors, {} unexpected I/O errors\n", ok ? "PASS" : "FAIL", data_errors, unexpected);
  }
  return ok ? 0 : 1;
}

}  // namespace mpath::cli
