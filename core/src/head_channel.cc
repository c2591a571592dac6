#include "mpath/core/head_channel.h"

#include <algorithm>
#include <cassert>
#include <cstdlib>

namespace mpath {

void IoList::PushBack(IoRequest& io) {
  io.next_ = nullptr;
  if (tail_ == nullptr) {
    head_ = &io;
  } else {
    tail_->next_ = &io;
  }
  tail_ = &io;
  ++size_;
}

IoRequest* IoList::PopFront() {
  IoRequest* io = head_;
  if (io == nullptr) return nullptr;
  head_ = io->next_;
  if (head_ == nullptr) tail_ = nullptr;
  io->next_ = nullptr;
  --size_;
  return io;
}

void IoList::Swap(IoList& other) {
  std::swap(head_, other.head_);
  std::swap(tail_, other.tail_);
  std::swap(size_, other.size_);
}

namespace {

// Relative distance between a thread and a path, in the spirit of ACPI SLIT: local 10, remote 20 (+ how far apart
// the node numbers are, which orders remote nodes on machines that number neighbours adjacently). A path or thread of
// unknown locality counts as local, as in the kernel.
int LocalityDistance(int thread, int path) {
  if (thread == kUnknownLocality || path == kUnknownLocality || thread == path) return 10;
  return 20 + std::abs(thread - path);
}

bool ModifiesData(IoOp op) { return op == IoOp::kWrite || op == IoOp::kWriteZeroes || op == IoOp::kDiscard; }

// A channel ages the latency estimate of paths it has not heard from in this many I/Os, so that a path once slow is
// tried again instead of being shunned forever on a stale figure.
constexpr std::uint32_t kAgingInterval = 4096;
// Latency-based marginal detection looks at a path every this many latency samples, once it has this many.
constexpr std::uint32_t kLatencyCheckInterval = 8;
constexpr std::uint32_t kLatencyMinSamples = 16;

}  // namespace

// One path as this channel sees it.
struct HeadChannel::Lane {
  std::shared_ptr<Path> path;
  PathDriver* driver = nullptr;
  std::shared_ptr<IoCounterCell> counters;
  std::uint64_t slot_bit = 0;
  std::uint32_t in_flight = 0;
  std::uint8_t tier = 0;
  bool usable = false;
  bool retired = false;           // gone from the head; kept only until this channel's I/O on it completes
  bool reported_marginal = false;
  int distance = 10;
  std::int64_t ewma_ns = 0;       // service-time estimate: moving average of completion latency
  std::uint32_t samples = 0;
  std::uint32_t completions_since_aging = 0;
  std::uint32_t completions_since_check = 0;
  // The last `window` outcomes, one bit each (1 = path error), recorded only once a path error has been seen:
  // successes before the first error cannot change the count of errors in the window.
  std::uint64_t outcome_bits = 0;
  std::uint32_t outcome_count = 0;
  std::uint32_t outcome_pos = 0;
  std::uint32_t failures = 0;

  void ResetOutcomes() {
    outcome_bits = 0;
    outcome_count = outcome_pos = failures = 0;
  }
  void RecordOutcome(bool failed, std::uint32_t window) {
    std::uint64_t bit = std::uint64_t{1} << outcome_pos;
    if (outcome_count == window) {
      if (outcome_bits & bit) --failures;
    } else {
      ++outcome_count;
    }
    if (failed) {
      outcome_bits |= bit;
      ++failures;
    } else {
      outcome_bits &= ~bit;
    }
    if (++outcome_pos == window) outcome_pos = 0;
  }
};

HeadChannel::HeadChannel(std::shared_ptr<Head> head, Executor& executor, int locality)
    : head_(std::move(head)),
      executor_(executor),
      clock_(executor.clock()),
      locality_(locality),
      personality_(head_->personality()),
      counters_(head_->NewCounterCell()),
      capacity_bytes_(head_->capacity_bytes()),
      block_mask_(head_->block_size() - 1) {}

HeadChannel::~HeadChannel() {
  assert(in_flight_ == 0 && "a channel must outlive the I/O it has in flight");
  Close();
  head_->ForgetChannel(this);
}

void HeadChannel::Close() {
  if (delay_timer_ != 0) executor_.Cancel(delay_timer_);
  delay_timer_ = 0;
  std::vector<IoRequest*> delayed;
  delayed.swap(delayed_);
  IoList queued;
  queued.Swap(requeue_);
  const IoStatus aborted = IoStatus::Of(Errc::kAborted, "the I/O channel was closed");
  for (IoRequest* io : delayed) {
    if (io->pinned_) {
      auto& lane = *static_cast<Lane*>(io->lane_);
      --lane.in_flight;
      --in_flight_;
      io->pinned_ = false;
      ReleaseLaneIfIdle(lane);
    }
    Finish(*io, aborted);
  }
  while (IoRequest* io = queued.PopFront()) Finish(*io, aborted);
}

void HeadChannel::Refresh() {
  HeadSnapshot snapshot = head_->CopySnapshot();
  seen_generation_ = snapshot.generation;
  options_ = snapshot.options;
  policy_ = options_.policy;
  sample_mask_ = options_.latency_sample_interval - 1;
  queue_when_no_path_ = snapshot.queue_when_no_path;
  no_path_status_ = snapshot.no_path_status;
  limits_ = snapshot.limits;

  std::vector<std::unique_ptr<Lane>> next;
  next.reserve(snapshot.paths.size());
  for (auto& entry : snapshot.paths) {
    auto it = std::find_if(lanes_.begin(), lanes_.end(),
                           [&](const auto& lane) { return lane && lane->path == entry.path; });
    std::unique_ptr<Lane> lane;
    if (it != lanes_.end()) {
      lane = std::move(*it);
    } else {
      lane = std::make_unique<Lane>();
      lane->path = entry.path;
      lane->driver = &entry.path->driver();
      lane->counters = entry.path->NewCounterCell();
      lane->slot_bit = std::uint64_t{1} << entry.path->slot_;
      lane->distance = LocalityDistance(locality_, entry.path->locality());
    }
    lane->usable = entry.usable;
    lane->tier = entry.tier;
    if (lane->reported_marginal && !entry.path->marginal()) {
      lane->reported_marginal = false;  // reinstated: judge it afresh
      lane->ResetOutcomes();
      lane->samples = 0;
      lane->ewma_ns = 0;
    }
    next.push_back(std::move(lane));
  }
  bool any_idle = false;
  for (auto& lane : lanes_) {
    if (!lane) continue;
    lane->usable = false;
    lane->retired = true;
    any_idle = any_idle || lane->in_flight == 0;
    retired_.push_back(std::move(lane));  // freed by the purge, never here: a caller up the stack may hold it
  }
  lanes_ = std::move(next);
  if (any_idle) SchedulePurge();

  usable_.clear();
  for (auto& lane : lanes_) {
    if (lane->usable) usable_.push_back(lane.get());
  }
  std::stable_sort(usable_.begin(), usable_.end(), [](const Lane* a, const Lane* b) { return a->tier < b->tier; });
  best_.clear();
  for (Lane* lane : usable_) {
    if (lane->tier != usable_.front()->tier) break;
    best_.push_back(lane);
  }
  cached_ = nullptr;
  rr_cursor_ = 0;
}

IoStatus HeadChannel::Validate(const IoRequest& io) const {
  switch (io.op) {
    case IoOp::kRead:
    case IoOp::kWrite:
      if (io.data == nullptr && io.length != 0) return IoStatus::Of(Errc::kInvalidArgument, "I/O without a buffer");
      [[fallthrough]];
    case IoOp::kWriteZeroes:
    case IoOp::kDiscard: {
      if (io.length == 0) return IoStatus::Of(Errc::kInvalidArgument, "zero-length I/O");
      if (((io.offset | io.length) & block_mask_) != 0) {
        return IoStatus::Of(Errc::kInvalidArgument, "I/O not aligned to the block size");
      }
      if (io.offset > capacity_bytes_ || io.length > capacity_bytes_ - io.offset) {
        return IoStatus::Of(Errc::kOutOfRange, "I/O beyond the end of the device");
      }
      // Refused here rather than by a path, where it would fail as a target error after a round trip.
      if (io.op == IoOp::kRead || io.op == IoOp::kWrite) {
        if (limits_.max_transfer_bytes != 0 && io.length > limits_.max_transfer_bytes) {
          return IoStatus::Of(Errc::kInvalidArgument, "I/O larger than the head's maximum transfer (Head::limits)");
        }
      } else if (limits_.max_zeroing_bytes != 0 && io.length > limits_.max_zeroing_bytes) {
        return IoStatus::Of(Errc::kInvalidArgument, "zeroing larger than the head's maximum (Head::limits)");
      }
      return IoStatus::Ok();
    }
    case IoOp::kFlush:
    case IoOp::kPassthrough:
      return IoStatus::Ok();
    case IoOp::kProbe:
    default:
      return IoStatus::Of(Errc::kInvalidArgument, "operation not accepted on a head");
  }
}

void HeadChannel::Submit(IoRequest& io) {
  if (head_->generation() != seen_generation_) [[unlikely]] {
    Refresh();
    DrainRequeue();
  }
  io.lane_ = nullptr;
  io.excluded_ = 0;
  io.rounds_ = 0;
  io.same_path_retries_ = 0;
  io.pinned_ = false;
  io.submitted_at_ = TimePoint{};
  if (IoStatus invalid = Validate(io); !invalid.ok()) [[unlikely]] {
    Finish(io, invalid);
    return;
  }
  if (policy_ == IoPolicyKind::kServiceTime && ++ios_since_aging_ >= kAgingInterval) AgeLatencies();
  Route(io);
}

void HeadChannel::Route(IoRequest& io) {
  if (cached_ != nullptr && io.excluded_ == 0 && policy_ == IoPolicyKind::kNuma) [[likely]] {
    Issue(io, *cached_);
    return;
  }
  if (Lane* lane = Select(io)) [[likely]] {
    Issue(io, *lane);
    return;
  }
  if (io.excluded_ != 0 && !usable_.empty()) {
    // Every usable path failed this I/O once: let the paths settle, then try them all again, a bounded number of times.
    if (++io.rounds_ >= options_.max_failover_rounds) {
      Finish(io, io.status);
      return;
    }
    io.excluded_ = 0;
    Delay(io, options_.failover_round_backoff);
    return;
  }
  if (queue_when_no_path_) {
    counters_->AddRequeue();
    io.excluded_ = 0;  // whatever path comes back starts a fresh round, even one this I/O failed on before
    requeue_.PushBack(io);
    return;
  }
  counters_->AddNoPathFailure();
  Finish(io, no_path_status_);
}

HeadChannel::Lane* HeadChannel::Select(IoRequest& io) {
  if (io.excluded_ != 0) [[unlikely]] return SelectExcluding(io.excluded_);
  const std::size_t n = best_.size();
  if (n == 0) [[unlikely]] return nullptr;
  switch (policy_) {
    case IoPolicyKind::kNuma: {
      if (cached_ != nullptr) [[likely]] return cached_;
      Lane* nearest = best_[0];
      for (std::size_t i = 1; i < n; ++i) {
        if (best_[i]->distance < nearest->distance) nearest = best_[i];
      }
      cached_ = nearest;
      return nearest;
    }
    case IoPolicyKind::kRoundRobin: {
      std::uint32_t i = rr_cursor_;
      rr_cursor_ = (i + 1 < n) ? i + 1 : 0;
      return best_[i];
    }
    case IoPolicyKind::kQueueDepth: {
      Lane* least = best_[0];
      for (std::size_t i = 1; i < n && least->in_flight != 0; ++i) {
        if (best_[i]->in_flight < least->in_flight) least = best_[i];
      }
      return least;
    }
    case IoPolicyKind::kServiceTime: {
      // Expected time to complete one more I/O on the path: its latency estimate times the queue it would join.
      Lane* best = best_[0];
      std::int64_t best_cost = best->ewma_ns * (best->in_flight + 1);
      for (std::size_t i = 1; i < n && best_cost != 0; ++i) {
        std::int64_t cost = best_[i]->ewma_ns * (best_[i]->in_flight + 1);
        if (cost < best_cost) {
          best = best_[i];
          best_cost = cost;
        }
      }
      return best;
    }
    default:
      return best_[0];
  }
}

HeadChannel::Lane* HeadChannel::SelectExcluding(std::uint64_t excluded) const {
  // A failed-over I/O takes the least busy path of the best tier it has not failed on yet.
  Lane* chosen = nullptr;
  for (Lane* lane : usable_) {
    if (lane->slot_bit & excluded) continue;
    if (chosen != nullptr && lane->tier != chosen->tier) break;
    if (chosen == nullptr || lane->in_flight < chosen->in_flight) chosen = lane;
  }
  return chosen;
}

void HeadChannel::Issue(IoRequest& io, Lane& lane) {
  ++lane.in_flight;
  ++in_flight_;
  io.lane_ = &lane;
  // Measure while the path is new (so its estimate forms quickly), then one I/O in latency_sample_interval.
  if (lane.samples < kLatencyMinSamples || (++issue_count_ & sample_mask_) == 0) {
    io.issued_at_ = clock_.Now();
    if (io.submitted_at_ == TimePoint{}) io.submitted_at_ = io.issued_at_;
  } else {
    io.issued_at_ = TimePoint{};
  }
  io.RouteCompletion(&HeadChannel::OnPathDone, this);
  lane.driver->Submit(io);
}

void HeadChannel::OnPathDone(IoRequest& io, void* channel) { static_cast<HeadChannel*>(channel)->HandlePathDone(io); }

void HeadChannel::HandlePathDone(IoRequest& io) {
  Lane& lane = *static_cast<Lane*>(io.lane_);
  --lane.in_flight;
  --in_flight_;
  if (!io.status.ok()) [[unlikely]] {
    HandleFailure(io, lane);
    return;
  }
  const std::uint64_t bytes = (io.op == IoOp::kRead || io.op == IoOp::kWrite) ? io.length : 0;
  if (lane.failures != 0) [[unlikely]] lane.RecordOutcome(false, options_.marginal.window);
  if (io.issued_at_ == TimePoint{}) {
    lane.counters->AddIo(bytes);
    counters_->AddIo(bytes);
  } else {
    const TimePoint now = clock_.Now();
    const Nanos latency = now - io.issued_at_;
    lane.counters->AddIo(bytes, latency);
    counters_->AddIo(bytes, io.submitted_at_ == TimePoint{} ? latency : now - io.submitted_at_);
    const std::int64_t sample = latency.count();
    lane.ewma_ns = lane.samples == 0 ? sample : lane.ewma_ns + ((sample - lane.ewma_ns) >> 3);
    if (lane.samples < kLatencyMinSamples) ++lane.samples;
    ++lane.completions_since_aging;
    if (++lane.completions_since_check >= kLatencyCheckInterval) [[unlikely]] CheckLatency(lane);
  }
  ReleaseLaneIfIdle(lane);
  io.CompleteToSubmitter(IoStatus::Ok());
}

void HeadChannel::HandleFailure(IoRequest& io, Lane& lane) {
  // Decide on the head's current view: the failure may be the first news of a change already published.
  if (head_->generation() != seen_generation_) Refresh();
  lane.counters->AddError();
  const Decision decision = personality_.Classify(io, io.status, *lane.path);
  const bool passthrough = io.op == IoOp::kPassthrough;
  switch (decision.disposition) {
    case Disposition::kSuccess:
      ReleaseLaneIfIdle(lane);
      io.CompleteToSubmitter(IoStatus::Ok());
      return;
    case Disposition::kRetrySamePath:
      // A passthrough command may not be idempotent: it is never sent twice.
      if (!passthrough && (!lane.usable || lane.retired)) {
        // The path stopped being usable while the command was out (a unit attention reporting an ALUA change often
        // arrives together with the change itself): the retry goes wherever the head routes now, as a delayed retry
        // whose path went away does, and it does not count against the path.
        FailOver(io, lane, /*count_against_path=*/false);
        return;
      }
      if (!passthrough && io.same_path_retries_ < options_.max_same_path_retries) {
        ++io.same_path_retries_;
        lane.counters->AddRetry();
        counters_->AddRetry();
        ++lane.in_flight;  // the retry holds its place on the path (and keeps the lane alive) while it waits
        ++in_flight_;
        io.pinned_ = true;
        Delay(io, decision.delay);
        return;
      }
      ReleaseLaneIfIdle(lane);
      Finish(io, io.status);
      return;
    case Disposition::kRetryOtherPath:
      FailOver(io, lane, /*count_against_path=*/true);
      return;
    case Disposition::kWaitForStateChange:
      FailOver(io, lane, /*count_against_path=*/false);
      return;
    case Disposition::kFailUp:
    default:
      ReleaseLaneIfIdle(lane);
      Finish(io, io.status);
      return;
  }
}

void HeadChannel::FailOver(IoRequest& io, Lane& lane, bool count_against_path) {
  if (count_against_path) NoteOutcome(lane, /*path_failed=*/true);
  if (io.op == IoOp::kPassthrough) {
    ReleaseLaneIfIdle(lane);
    Finish(io, io.status);
    return;
  }
  lane.counters->AddFailover();
  counters_->AddFailover();
  if (cached_ == &lane) cached_ = nullptr;
  io.excluded_ |= lane.slot_bit;
  ReleaseLaneIfIdle(lane);
  if (ModifiesData(io.op) && options_.write_quiesce_delay > Nanos(0)) {
    Delay(io, options_.write_quiesce_delay);
    return;
  }
  Route(io);
}

void HeadChannel::NoteOutcome(Lane& lane, bool path_failed) {
  lane.RecordOutcome(path_failed, options_.marginal.window);
  if (lane.failures >= options_.marginal.error_threshold && !lane.reported_marginal) {
    lane.reported_marginal = true;
    head_->ReportMarginal(lane.path, MarginalReason::kErrors);
  }
}

void HeadChannel::CheckLatency(Lane& lane) {
  lane.completions_since_check = 0;
  const MarginalOptions& m = options_.marginal;
  if (m.latency_factor == 0.0 || lane.reported_marginal || lane.samples < kLatencyMinSamples) return;
  if (lane.ewma_ns <= m.latency_floor.count()) return;
  std::int64_t best_peer = -1;
  for (const auto& peer : lanes_) {
    if (peer.get() == &lane || !peer->usable || peer->samples < kLatencyMinSamples) continue;
    if (best_peer < 0 || peer->ewma_ns < best_peer) best_peer = peer->ewma_ns;
  }
  if (best_peer < 0 || static_cast<double>(lane.ewma_ns) <= m.latency_factor * static_cast<double>(best_peer)) return;
  lane.reported_marginal = true;
  head_->ReportMarginal(lane.path, MarginalReason::kLatency);
}

void HeadChannel::AgeLatencies() {
  ios_since_aging_ = 0;
  for (auto& lane : lanes_) {
    if (lane->completions_since_aging == 0) lane->ewma_ns >>= 1;
    lane->completions_since_aging = 0;
  }
}

void HeadChannel::ReleaseLaneIfIdle(Lane& lane) {
  if (lane.retired && lane.in_flight == 0) SchedulePurge();
}

void HeadChannel::SchedulePurge() {
  if (purge_posted_) return;
  // Lanes are freed from a task of their own, never inside a completion: a lane may own the last reference to a
  // driver that is still inside the call completing a request.
  purge_posted_ = true;
  executor_.Post([weak = weak_from_this()] {
    if (auto channel = weak.lock()) {
      channel->purge_posted_ = false;
      std::erase_if(channel->retired_, [](const auto& lane) { return lane->in_flight == 0; });
    }
  });
}

void HeadChannel::Finish(IoRequest& io, IoStatus status) {
  if (!status.ok()) counters_->AddError();
  io.CompleteToSubmitter(status);
}

void HeadChannel::Delay(IoRequest& io, Nanos delay) {
  io.resume_at_ = clock_.Now() + delay;
  delayed_.push_back(&io);
  ArmDelayTimer();
}

void HeadChannel::ArmDelayTimer() {
  if (delayed_.empty()) return;
  TimePoint earliest = delayed_.front()->resume_at_;
  for (IoRequest* io : delayed_) earliest = std::min(earliest, io->resume_at_);
  if (delay_timer_ != 0 && delay_timer_at_ <= earliest) return;
  if (delay_timer_ != 0) executor_.Cancel(delay_timer_);
  delay_timer_at_ = earliest;
  delay_timer_ = executor_.ScheduleAfter(std::max(Nanos(0), earliest - clock_.Now()), [weak = weak_from_this()] {
    if (auto channel = weak.lock()) channel->OnDelayTimer();
  });
}

void HeadChannel::OnDelayTimer() {
  delay_timer_ = 0;
  if (head_->generation() != seen_generation_) Refresh();
  const TimePoint now = clock_.Now();
  std::vector<IoRequest*> due;
  std::erase_if(delayed_, [&](IoRequest* io) {
    if (io->resume_at_ > now) return false;
    due.push_back(io);
    return true;
  });
  ArmDelayTimer();
  for (IoRequest* io : due) {
    if (!io->pinned_) {
      Route(*io);
      continue;
    }
    io->pinned_ = false;
    Lane& lane = *static_cast<Lane*>(io->lane_);
    --lane.in_flight;
    --in_flight_;
    if (lane.usable && !lane.retired) {
      Issue(*io, lane);
      continue;
    }
    // The path this retry was meant for has gone away meanwhile.
    ReleaseLaneIfIdle(lane);
    if (io->op == IoOp::kPassthrough) {
      Finish(*io, io->status);
    } else {
      Route(*io);
    }
  }
}

void HeadChannel::DrainRequeue() {
  if (draining_ || requeue_.empty()) return;
  draining_ = true;
  IoList batch;
  batch.Swap(requeue_);
  while (IoRequest* io = batch.PopFront()) Route(*io);
  draining_ = false;
}

void HeadChannel::Kick() {
  if (head_->generation() != seen_generation_) Refresh();
  DrainRequeue();
}

}  // namespace mpath
