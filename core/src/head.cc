#include "mpath/core/head.h"

#include <algorithm>
#include <bit>

#include <fmt/format.h>

#include "mpath/core/head_channel.h"

namespace mpath {

std::string_view Name(HeadState state) {
  switch (state) {
    case HeadState::kLive: return "live";
    case HeadState::kQueueing: return "queueing";
    case HeadState::kFailing: return "failing";
    case HeadState::kRemoved: return "removed";
    default: return "?";
  }
}

// A marginal path's health probe. Owned by the head; kept alive by itself while a probe is in flight, because the
// driver may complete it after the head is gone.
struct Head::ProbeState {
  std::shared_ptr<Path> path;
  std::weak_ptr<Head> head;
  IoRequest io;
  std::unique_ptr<std::byte[]> context;
  std::shared_ptr<ProbeState> self_while_in_flight;
  std::uint32_t clean = 0;
  TimePoint started{};

  static void OnDone(IoRequest& io, void* arg) {
    auto* probe = static_cast<ProbeState*>(arg);
    std::shared_ptr<ProbeState> keep = std::move(probe->self_while_in_flight);
    if (auto head = probe->head.lock()) {
      head->OnProbeDone(probe->path, io.status, head->control_.clock().Now() - probe->started);
    }
  }
};

Result<std::shared_ptr<Head>> Head::Create(Config config, const HeadTemplate& personality, Executor& control,
                                           RemovedCallback on_removed) {
  if (config.name.empty()) return MakeError(Errc::kInvalidArgument, "a head needs a name");
  if (config.identity.empty()) {
    return MakeError(Errc::kInvalidArgument, fmt::format("head '{}' needs a device identity", config.name));
  }
  if (config.block_size < 512 || config.block_size > 65536 || !std::has_single_bit(config.block_size)) {
    return MakeError(Errc::kInvalidArgument,
                     fmt::format("head '{}': block size {} is not a power of two between 512 and 65536", config.name,
                                 config.block_size));
  }
  if (config.capacity_bytes == 0 || config.capacity_bytes % config.block_size != 0) {
    return MakeError(Errc::kInvalidArgument,
                     fmt::format("head '{}': capacity {} bytes is not a positive multiple of the block size {}",
                                 config.name, config.capacity_bytes, config.block_size));
  }
  if (auto valid = config.options.Validate(); !valid) {
    return MakeError(Errc::kInvalidArgument, fmt::format("head '{}': {}", config.name, valid.error().message()));
  }
  return std::shared_ptr<Head>(new Head(std::move(config), personality, control, std::move(on_removed)));
}

Head::Head(Config config, const HeadTemplate& personality, Executor& control, RemovedCallback on_removed)
    : config_(std::move(config)),
      personality_(personality),
      control_(control),
      on_removed_(std::move(on_removed)),
      options_(config_.options) {
  // Until its first path arrives a head fails I/O; it can only remove itself once it has had a path to lose.
  state_ = HeadState::kFailing;
  snapshot_.options = options_;
  snapshot_.no_path_status = IoStatus::Of(Errc::kNoPath, "no usable path");
}

Head::~Head() {
  if (window_timer_ != 0) control_.Cancel(window_timer_);
  if (probe_timer_ != 0) control_.Cancel(probe_timer_);
}

HeadState Head::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

IoPolicyKind Head::policy() const {
  std::lock_guard lock(mu_);
  return options_.policy;
}

HeadOptions Head::options() const {
  std::lock_guard lock(mu_);
  return options_;
}

IoLimits Head::limits() const {
  std::lock_guard lock(mu_);
  return limits_;
}

namespace {

// The tighter of two limits where 0 means none.
template <typename T>
T Tighter(T a, T b) {
  if (a == 0) return b;
  if (b == 0) return a;
  return std::min(a, b);
}

}  // namespace

Result<PathId> Head::AddPath(const DeviceInfo& info, std::unique_ptr<PathDriver> driver) {
  if (driver == nullptr) return MakeError(Errc::kInvalidArgument, fmt::format("path '{}' has no driver", info.name));
  if (info.name.empty()) return MakeError(Errc::kInvalidArgument, "a path needs a name");
  std::unique_lock lock(mu_);
  if (removed_) return MakeError(Errc::kRemoved, fmt::format("head '{}' has been removed", config_.name));
  for (const auto& p : paths_) {
    if (p->name() == info.name) {
      return MakeError(Errc::kAlreadyExists,
                       fmt::format("path '{}' is already a path of head '{}'", info.name, config_.name));
    }
  }
  if (info.identity != config_.identity) {
    return MakeError(Errc::kMismatch, fmt::format("path '{}' reports identity '{}' but head '{}' is '{}'", info.name,
                                                  info.identity.str(), config_.name, config_.identity.str()));
  }
  if (info.capacity_bytes != config_.capacity_bytes) {
    return MakeError(Errc::kMismatch,
                     fmt::format("path '{}' reports a capacity of {} bytes but head '{}' has {} bytes", info.name,
                                 info.capacity_bytes, config_.name, config_.capacity_bytes));
  }
  if (info.block_size != config_.block_size) {
    return MakeError(Errc::kMismatch, fmt::format("path '{}' reports {}-byte blocks but head '{}' has {}-byte blocks",
                                                  info.name, info.block_size, config_.name, config_.block_size));
  }
  if (driver->ContextSize() > options_.request_context_size) {
    return MakeError(Errc::kInvalidArgument,
                     fmt::format("path '{}' needs {} bytes of request context but head '{}' provides {}", info.name,
                                 driver->ContextSize(), config_.name, options_.request_context_size));
  }
  if ((info.max_transfer_bytes != 0 && info.max_transfer_bytes < config_.block_size) ||
      (info.max_zeroing_bytes != 0 && info.max_zeroing_bytes < config_.block_size)) {
    return MakeError(Errc::kInvalidArgument,
                     fmt::format("path '{}' cannot carry one {}-byte block per command (limits {} / {} bytes)", info.name,
                                 config_.block_size, info.max_transfer_bytes, info.max_zeroing_bytes));
  }
  if (info.initial_state == PathState::kRemoving) {
    return MakeError(Errc::kInvalidArgument, fmt::format("path '{}' cannot start in state removing", info.name));
  }
  if (paths_.size() >= kMaxPaths) {
    return MakeError(Errc::kOutOfRange,
                     fmt::format("head '{}' already has the maximum of {} paths", config_.name, kMaxPaths));
  }
  std::uint64_t used_slots = 0;
  for (const auto& p : paths_) used_slots |= std::uint64_t{1} << p->slot_;
  auto slot = static_cast<std::uint32_t>(std::countr_one(used_slots));

  PathId id = next_path_id_++;
  paths_.push_back(std::make_shared<Path>(id, slot, info, std::move(driver)));
  had_path_ = true;
  // Rounded down to whole blocks, so that a request cut at the limit stays aligned.
  const auto whole_blocks = [&](auto bytes) { return bytes - bytes % config_.block_size; };
  limits_.max_transfer_bytes = Tighter(limits_.max_transfer_bytes, whole_blocks(info.max_transfer_bytes));
  limits_.max_zeroing_bytes = Tighter(limits_.max_zeroing_bytes, whole_blocks(info.max_zeroing_bytes));
  bool removed = PublishLocked();
  lock.unlock();
  if (removed) AnnounceRemoval();
  return id;
}

Result<void> Head::RemovePath(PathId id) {
  std::unique_lock lock(mu_);
  auto it = std::find_if(paths_.begin(), paths_.end(), [id](const auto& p) { return p->id() == id; });
  if (it == paths_.end()) {
    return MakeError(Errc::kNotFound, fmt::format("head '{}' has no path with id {}", config_.name, id));
  }
  (*it)->state_.store(PathState::kRemoving, std::memory_order_release);
  std::erase_if(probes_, [&](const auto& probe) { return probe->path == *it; });
  paths_.erase(it);
  bool removed = PublishLocked();
  lock.unlock();
  if (removed) AnnounceRemoval();
  return {};
}

Result<void> Head::SetPathState(PathId id, PathState state) {
  if (state == PathState::kRemoving) {
    return MakeError(Errc::kInvalidArgument, "a path is put into state removing by removing it, not by setting it");
  }
  std::unique_lock lock(mu_);
  auto path = FindPathLocked(id);
  if (!path) return MakeError(Errc::kNotFound, fmt::format("head '{}' has no path with id {}", config_.name, id));
  if (path->state() == state) return {};
  path->state_.store(state, std::memory_order_release);
  bool removed = PublishLocked();
  lock.unlock();
  if (removed) AnnounceRemoval();
  return {};
}

Result<void> Head::SetAccessState(PathId id, AccessState access, bool preferred) {
  std::unique_lock lock(mu_);
  auto path = FindPathLocked(id);
  if (!path) return MakeError(Errc::kNotFound, fmt::format("head '{}' has no path with id {}", config_.name, id));
  if (path->access_state() == access && path->preferred() == preferred) return {};
  path->access_.store(access, std::memory_order_release);
  path->preferred_.store(preferred, std::memory_order_release);
  bool removed = PublishLocked();
  lock.unlock();
  if (removed) AnnounceRemoval();
  return {};
}

void Head::SetIoPolicy(IoPolicyKind policy) {
  std::unique_lock lock(mu_);
  if (options_.policy == policy) return;
  options_.policy = policy;
  bool removed = PublishLocked();
  lock.unlock();
  if (removed) AnnounceRemoval();
}

Result<void> Head::SetDelayedRemoval(Nanos window) {
  if (window < Nanos(0)) {
    return MakeError(Errc::kInvalidArgument,
                     fmt::format("delayed_removal_secs must not be negative (got {} ns)", window.count()));
  }
  std::lock_guard lock(mu_);
  // Takes effect from the next episode without a usable path; a running window keeps the length it started with.
  options_.delayed_removal = window;
  return {};
}

void Head::Reevaluate() {
  std::unique_lock lock(mu_);
  bool removed = PublishLocked();
  lock.unlock();
  if (removed) AnnounceRemoval();
}

Result<void> Head::ClearMarginal(PathId id) {
  std::unique_lock lock(mu_);
  auto path = FindPathLocked(id);
  if (!path) return MakeError(Errc::kNotFound, fmt::format("head '{}' has no path with id {}", config_.name, id));
  path->marginal_.store(MarginalReason::kNone, std::memory_order_release);
  std::erase_if(probes_, [&](const auto& probe) { return probe->path == path; });
  bool removed = PublishLocked();
  lock.unlock();
  if (removed) AnnounceRemoval();
  return {};
}

std::shared_ptr<HeadChannel> Head::OpenChannel(Executor& executor, int locality) {
  auto channel = std::make_shared<HeadChannel>(shared_from_this(), executor, locality);
  std::lock_guard lock(mu_);
  channels_.push_back({channel.get(), channel, &executor});
  return channel;
}

void Head::ForgetChannel(const HeadChannel* channel) {
  std::lock_guard lock(mu_);
  std::erase_if(channels_, [channel](const ChannelRef& ref) { return ref.channel == channel; });
}

std::shared_ptr<IoCounterCell> Head::NewCounterCell() {
  auto cell = std::make_shared<IoCounterCell>();
  std::lock_guard lock(mu_);
  head_cells_.push_back(cell);
  return cell;
}

HeadSnapshot Head::CopySnapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

std::shared_ptr<Path> Head::FindPathLocked(PathId id) const {
  for (const auto& p : paths_) {
    if (p->id() == id) return p;
  }
  return nullptr;
}

std::shared_ptr<Path> Head::FindPath(PathId id) const {
  std::lock_guard lock(mu_);
  return FindPathLocked(id);
}

std::shared_ptr<Path> Head::FindPath(std::string_view name) const {
  std::lock_guard lock(mu_);
  for (const auto& p : paths_) {
    if (p->name() == name) return p;
  }
  return nullptr;
}

std::size_t Head::path_count() const {
  std::lock_guard lock(mu_);
  return paths_.size();
}

std::vector<PathInfo> Head::Paths() const {
  std::vector<std::pair<std::shared_ptr<Path>, bool>> paths;
  {
    std::lock_guard lock(mu_);
    for (const auto& entry : snapshot_.paths) paths.emplace_back(entry.path, entry.usable);
  }
  std::vector<PathInfo> out;
  out.reserve(paths.size());
  for (const auto& [p, usable] : paths) {
    out.push_back(PathInfo{p->id(), p->name(), p->transport(), p->state(), p->access_state(), p->preferred(),
                           p->marginal_reason(), usable, p->locality(), p->Counters()});
  }
  return out;
}

IoCounters Head::Counters() const {
  IoCounters total;
  std::lock_guard lock(mu_);
  for (const auto& cell : head_cells_) total.Merge(cell->Read());
  return total;
}

bool Head::PublishLocked() {
  HeadSnapshot next;
  next.options = options_;
  next.limits = limits_;
  bool any_usable = false;
  bool any_may_return = false;
  for (const auto& p : paths_) {
    HeadSnapshot::Entry entry;
    entry.path = p;
    entry.usable = !removed_ && personality_.IsUsable(*p);
    entry.tier = static_cast<std::uint8_t>((p->marginal() ? 2 : 0) + (personality_.IsOptimized(*p) ? 0 : 1));
    any_usable = any_usable || entry.usable;
    any_may_return = any_may_return || (!entry.usable && personality_.MayBecomeAvailable(*p));
    next.paths.push_back(std::move(entry));
  }

  bool removed_now = false;
  if (removed_) {
    state_ = HeadState::kRemoved;
  } else if (any_usable) {
    state_ = HeadState::kLive;
    if (window_timer_ != 0) control_.Cancel(window_timer_);
    window_timer_ = 0;
    window_open_ = false;
    window_expired_ = false;
  } else {
    if (!window_open_ && !window_expired_) {
      // A new episode without a usable path: open the delayed-removal window.
      if (options_.delayed_removal > Nanos(0)) {
        window_open_ = true;
        std::uint64_t serial = ++window_serial_;
        window_timer_ = control_.ScheduleAfter(options_.delayed_removal, [weak = weak_from_this(), serial] {
          if (auto head = weak.lock()) head->OnNoPathWindowExpired(serial);
        });
      } else {
        window_expired_ = true;
      }
    }
    if (paths_.empty() && had_path_ && !window_open_) {
      removed_ = true;
      removed_now = true;
      state_ = HeadState::kRemoved;
    } else {
      state_ = (any_may_return || window_open_) ? HeadState::kQueueing : HeadState::kFailing;
    }
  }
  next.queue_when_no_path = state_ == HeadState::kQueueing;
  next.no_path_status = removed_ ? IoStatus::Of(Errc::kNoPath, "the head was removed: no path came back in time")
                                 : IoStatus::Of(Errc::kNoPath, "no usable path");
  next.generation = generation_.load(std::memory_order_relaxed) + 1;
  snapshot_ = std::move(next);
  generation_.store(snapshot_.generation, std::memory_order_release);

  // Channels learn of the change on their next I/O; the kick is for those holding queued I/O and nothing new.
  for (const ChannelRef& ref : channels_) {
    ref.executor->Post([weak = ref.weak] {
      if (auto channel = weak.lock()) channel->Kick();
    });
  }
  ScheduleProbesLocked();
  return removed_now;
}

void Head::AnnounceRemoval() {
  if (!on_removed_) return;
  control_.Post([weak = weak_from_this()] {
    if (auto head = weak.lock()) head->on_removed_(*head);
  });
}

void Head::OnNoPathWindowExpired(std::uint64_t window_serial) {
  std::unique_lock lock(mu_);
  if (window_serial != window_serial_ || !window_open_) return;  // a usable path came back meanwhile
  window_timer_ = 0;
  window_open_ = false;
  window_expired_ = true;
  bool removed = PublishLocked();
  lock.unlock();
  if (removed) AnnounceRemoval();
}

void Head::ScheduleProbesLocked() {
  if (probe_timer_ != 0 || removed_) return;
  bool any_marginal = std::any_of(paths_.begin(), paths_.end(), [](const auto& p) { return p->marginal(); });
  if (!any_marginal) return;
  probe_timer_ = control_.ScheduleAfter(options_.marginal.probe_interval, [weak = weak_from_this()] {
    if (auto head = weak.lock()) head->RunProbes();
  });
}

void Head::RunProbes() {
  std::vector<std::shared_ptr<ProbeState>> to_send;
  {
    std::lock_guard lock(mu_);
    probe_timer_ = 0;
    for (const auto& p : paths_) {
      if (!p->marginal()) continue;
      auto it = std::find_if(probes_.begin(), probes_.end(), [&](const auto& probe) { return probe->path == p; });
      if (it == probes_.end()) {
        auto probe = std::make_shared<ProbeState>();
        probe->path = p;
        probe->head = weak_from_this();
        probe->context = std::make_unique<std::byte[]>(options_.request_context_size);
        probe->io.AttachDriverContext(probe->context.get(), options_.request_context_size);
        it = probes_.insert(probes_.end(), std::move(probe));
      }
      ProbeState& probe = **it;
      if (probe.self_while_in_flight) continue;  // the previous probe has not come back yet
      if (!p->IsLive()) {
        probe.clean = 0;  // a path that is down proves nothing
        continue;
      }
      probe.self_while_in_flight = *it;
      to_send.push_back(*it);
    }
  }
  for (const auto& probe : to_send) {
    probe->io.op = IoOp::kProbe;
    probe->io.offset = 0;
    probe->io.length = 0;
    probe->io.data = nullptr;
    probe->io.OnComplete(&ProbeState::OnDone, probe.get());
    probe->io.RouteToSubmitter();
    probe->started = control_.clock().Now();
    probe->path->driver().Submit(probe->io);
  }
  std::lock_guard lock(mu_);
  ScheduleProbesLocked();
}

void Head::OnProbeDone(const std::shared_ptr<Path>& path, IoStatus status, Nanos latency) {
  std::unique_lock lock(mu_);
  auto it = std::find_if(probes_.begin(), probes_.end(), [&](const auto& probe) { return probe->path == path; });
  if (it == probes_.end() || !path->marginal()) return;  // removed or reinstated meanwhile
  ProbeState& probe = **it;
  // A path marked slow must also answer fast before it is trusted again.
  bool clean = status.ok() && (path->marginal_reason() != MarginalReason::kLatency ||
                               latency <= options_.marginal.latency_floor);
  probe.clean = clean ? probe.clean + 1 : 0;
  if (probe.clean < options_.marginal.probes_to_reinstate) return;
  path->marginal_.store(MarginalReason::kNone, std::memory_order_release);
  probes_.erase(it);
  bool removed = PublishLocked();
  lock.unlock();
  if (removed) AnnounceRemoval();
}

void Head::ReportMarginal(const std::shared_ptr<Path>& path, MarginalReason reason) {
  std::unique_lock lock(mu_);
  if (std::find(paths_.begin(), paths_.end(), path) == paths_.end() || path->marginal()) return;
  path->marginal_.store(reason, std::memory_order_release);
  bool removed = PublishLocked();
  lock.unlock();
  if (removed) AnnounceRemoval();
}

}  // namespace mpath
