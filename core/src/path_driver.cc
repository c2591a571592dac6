#include "mpath/core/path_driver.h"

#include <cassert>

namespace mpath {

NullPath::NullPath(Mode mode, Executor* executor, Nanos latency)
    : mode_(mode), executor_(executor), latency_ns_(latency.count()) {
  assert(mode != Mode::kDelayed || executor != nullptr);
}

void NullPath::SetOutcome(IoStatus outcome) {
  std::lock_guard lock(mu_);
  outcome_ = outcome;
  failing_.store(!outcome.ok(), std::memory_order_release);
}

IoStatus NullPath::Outcome() const {
  // The common case, success, needs neither the lock nor a copy.
  if (!failing_.load(std::memory_order_acquire)) return IoStatus::Ok();
  std::lock_guard lock(mu_);
  return outcome_;
}

void NullPath::Submit(IoRequest& io) {
  submitted_.fetch_add(1, std::memory_order_relaxed);
  switch (mode_.load(std::memory_order_acquire)) {
    case Mode::kInline:
      io.Complete(Outcome());
      return;
    case Mode::kDelayed: {
      IoStatus outcome = Outcome();
      executor_->ScheduleAfter(Nanos(latency_ns_.load(std::memory_order_acquire)),
                               [&io, outcome] { io.Complete(outcome); });
      return;
    }
    case Mode::kHold:
    default: {
      std::lock_guard lock(mu_);
      held_.push_back(&io);
      return;
    }
  }
}

std::size_t NullPath::CompleteHeld(IoStatus outcome) {
  std::deque<IoRequest*> released;
  {
    std::lock_guard lock(mu_);
    released.swap(held_);
  }
  for (IoRequest* io : released) io->Complete(outcome);
  return released.size();
}

std::size_t NullPath::held() const {
  std::lock_guard lock(mu_);
  return held_.size();
}

}  // namespace mpath
