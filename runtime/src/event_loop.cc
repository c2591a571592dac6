#include "mpath/runtime/event_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace mpath {
namespace {

// Tag of the eventfd in epoll's user data; watch ids start at 1.
constexpr std::uint64_t kWakeTag = 0;

// Ready fds beyond this are reported by the next epoll_wait; epoll hands them out round-robin, so none starves.
constexpr int kMaxEventsPerWait = 64;

// Cancelled timers stay in the heap until they reach its top. Rebuilding it once they outnumber the live ones keeps
// memory bounded when most timers are cancelled long before their deadline (I/O timeouts), at amortised O(1).
constexpr std::size_t kMinCancelledBeforeCompaction = 64;

// Min-heap order for std::*_heap, which keep the greatest element first.
constexpr auto kLater = [](const auto& a, const auto& b) {
  if (a.deadline != b.deadline) return a.deadline > b.deadline;
  return a.id > b.id;
};

std::string ErrnoText(int err) { return std::system_category().message(err); }

Errc ErrcFromErrno(int err) {
  switch (err) {
    case EBADF:
    case EINVAL:
    case EPERM:  // epoll refuses regular files and directories
      return Errc::kInvalidArgument;
    case EEXIST:
      return Errc::kAlreadyExists;
    case ENOENT:
      return Errc::kNotFound;
    default:
      return Errc::kInternal;
  }
}

std::unexpected<Error> ErrnoError(std::string what, int err) {
  return MakeError(ErrcFromErrno(err), std::move(what) + " failed: " + ErrnoText(err));
}

// Saturates instead of overflowing, so that ScheduleAfter(Nanos::max()) means "never" rather than "long ago".
TimePoint DeadlineAfter(TimePoint now, Nanos delay) {
  if (delay <= Nanos(0)) return now;
  if (delay > TimePoint::max() - now) return TimePoint::max();
  return now + delay;
}

// Rounds up: waking early would only spin until the deadline, one millisecond late is harmless for our timers.
int ToTimeoutMillis(Nanos wait) {
  if (wait <= Nanos(0)) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

}  // namespace

Result<std::unique_ptr<EventLoop>> EventLoop::Create(const Clock& clock) {
  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) return ErrnoError("epoll_create1", errno);
  const int wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) {
    const int err = errno;
    close(epoll_fd);
    return ErrnoError("eventfd", err);
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = kWakeTag;
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &event) != 0) {
    const int err = errno;
    close(wake_fd);
    close(epoll_fd);
    return ErrnoError("epoll_ctl(ADD, eventfd)", err);
  }
  return std::unique_ptr<EventLoop>(new EventLoop(clock, epoll_fd, wake_fd));
}

EventLoop::EventLoop(const Clock& clock, int epoll_fd, int wake_fd)
    : clock_(clock), epoll_fd_(epoll_fd), wake_fd_(wake_fd) {}

EventLoop::~EventLoop() {
  // Destroy what is left outside mu_ and after taking it out of the members: a capture's destructor may well post,
  // cancel or unwatch on this very loop. Repeat until that stops producing more.
  for (;;) {
    std::vector<Task> tasks;
    TimerMap timers;
    {
      std::lock_guard lock(mu_);
      tasks.swap(tasks_);
      timers.swap(timers_);
      timer_heap_.clear();
    }
    if (tasks.empty() && timers.empty()) break;
  }
  WatcherMap watchers = std::move(watchers_);
  watchers_.clear();
  watchers.clear();
  retired_watchers_.clear();
  close(wake_fd_);
  close(epoll_fd_);
}

void EventLoop::Run() {
  ScopedCurrentExecutor current(this);
  loop_thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  // Exchanging consumes the request, so each Stop() ends exactly one Run(), even one that has not started yet.
  while (!stop_requested_.exchange(false, std::memory_order_acq_rel)) RunIteration(std::nullopt);
  loop_thread_.store(std::thread::id(), std::memory_order_relaxed);
}

bool EventLoop::RunOnce(Nanos max_wait) {
  ScopedCurrentExecutor current(this);
  loop_thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  const bool ran = RunIteration(std::max(max_wait, Nanos(0)));
  loop_thread_.store(std::thread::id(), std::memory_order_relaxed);
  return ran;
}

void EventLoop::Stop() {
  stop_requested_.store(true, std::memory_order_release);
  // The loop thread checks the flag after its current iteration anyway.
  if (!IsLoopThread()) Wake();
}

bool EventLoop::IsLoopThread() const {
  // Relaxed is enough: only the loop thread itself ever stores its own id here.
  return loop_thread_.load(std::memory_order_relaxed) == std::this_thread::get_id();
}

void EventLoop::Post(Task task) {
  if (!task) return;
  bool was_empty;
  {
    std::lock_guard lock(mu_);
    was_empty = tasks_.empty();
    tasks_.push_back(std::move(task));
  }
  // A non-empty queue already has a wakeup on its way: whoever made it non-empty either woke the loop or is the loop,
  // which looks at the queue before it sleeps. The loop drains the eventfd before it takes the queue, never after.
  if (was_empty && !IsLoopThread()) Wake();
}

TimerId EventLoop::ScheduleAfter(Nanos delay, Task task) {
  if (!task) return 0;
  const TimePoint deadline = DeadlineAfter(clock_.Now(), delay);
  TimerId id;
  bool is_earliest;
  {
    std::lock_guard lock(mu_);
    id = next_timer_id_++;
    timers_.emplace(id, std::move(task));
    timer_heap_.push_back({deadline, id});
    std::push_heap(timer_heap_.begin(), timer_heap_.end(), kLater);
    is_earliest = timer_heap_.front().id == id;
  }
  // Only a new earliest deadline shortens the wait the loop may already be sleeping in.
  if (is_earliest && !IsLoopThread()) Wake();
  return id;
}

bool EventLoop::Cancel(TimerId id) {
  // The node (and the task in it) is destroyed after mu_ is released: the task's captures may call back into the loop.
  TimerMap::node_type node;
  {
    std::lock_guard lock(mu_);
    node = timers_.extract(id);
    if (node.empty()) return false;
    MaybeCompactTimersLocked();
  }
  return true;
}

Result<WatchId> EventLoop::Watch(int fd, std::uint32_t events, WatchCallback on_ready) {
  if (!on_ready) return MakeError(Errc::kInvalidArgument, "Watch(fd " + std::to_string(fd) + ") without a callback");
  const WatchId id = next_watch_id_;
  epoll_event event{};
  event.events = events;
  event.data.u64 = id;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
    return ErrnoError("epoll_ctl(ADD, fd " + std::to_string(fd) + ")", errno);
  }
  ++next_watch_id_;
  watchers_.emplace(id, Watcher{fd, std::move(on_ready)});
  return id;
}

Result<void> EventLoop::Modify(WatchId id, std::uint32_t events) {
  const auto it = watchers_.find(id);
  if (it == watchers_.end()) return MakeError(Errc::kNotFound, "Modify of unknown watch " + std::to_string(id));
  epoll_event event{};
  event.events = events;
  event.data.u64 = id;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, it->second.fd, &event) != 0) {
    return ErrnoError("epoll_ctl(MOD, fd " + std::to_string(it->second.fd) + ")", errno);
  }
  return {};
}

void EventLoop::Unwatch(WatchId id) {
  auto node = watchers_.extract(id);
  if (node.empty()) return;
  // Fails only when the caller already closed the fd, which removed it from the epoll set just the same.
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, node.mapped().fd, nullptr);
  // The callback may be the one running right now; the node keeps it alive until the batch is done.
  if (dispatching_) retired_watchers_.push_back(std::move(node));
}

bool EventLoop::RunIteration(std::optional<Nanos> max_wait) {
  bool ran = DispatchEvents(TimeoutMillis(max_wait));
  ran |= RunDueTimers();
  ran |= RunPostedTasks();
  return ran;
}

// Timers are driven through epoll_wait's timeout rather than a timerfd: deadlines are in the injected Clock's time,
// which for a ManualClock is not CLOCK_MONOTONIC, so only a wait recomputed from clock_.Now() on every iteration is
// right for any Clock. It also costs no timerfd_settime call whenever the earliest deadline changes, and a new
// earlier deadline from another thread reuses the eventfd wakeup. The price is millisecond granularity (rounded up),
// ample for I/O timeouts, reconnect back-off and ANA transition timers.
int EventLoop::TimeoutMillis(std::optional<Nanos> max_wait) {
  std::lock_guard lock(mu_);
  if (!tasks_.empty()) return 0;
  DropCancelledTimersLocked();
  if (timer_heap_.empty()) return max_wait ? ToTimeoutMillis(*max_wait) : -1;
  const Nanos until_deadline = timer_heap_.front().deadline - clock_.Now();
  return ToTimeoutMillis(max_wait ? std::min(*max_wait, until_deadline) : until_deadline);
}

bool EventLoop::DispatchEvents(int timeout_ms) {
  std::array<epoll_event, kMaxEventsPerWait> events;
  const int count = epoll_wait(epoll_fd_, events.data(), kMaxEventsPerWait, timeout_ms);
  if (count < 0) {
    // The other errors mean epoll_fd_ itself is broken, after which the loop can never make progress again.
    if (errno == EINTR) return false;
    std::abort();
  }
  bool ran = false;
  dispatching_ = true;
  for (int i = 0; i < count; ++i) {
    const std::uint64_t tag = events[i].data.u64;
    if (tag == kWakeTag) {
      DrainWakeups();
      continue;
    }
    // Looked up afresh for every event: an earlier callback of this batch may have unwatched this one.
    const auto it = watchers_.find(tag);
    if (it == watchers_.end()) continue;
    // A Watch() inside the callback may rehash watchers_, but map nodes (and so this callback) never move.
    it->second.on_ready(events[i].events);
    ran = true;
  }
  dispatching_ = false;
  retired_watchers_.clear();
  return ran;
}

bool EventLoop::RunDueTimers() {
  const TimePoint now = clock_.Now();
  std::optional<TimerId> first_new_id;
  bool ran = false;
  // One timer per lock, so that a timer cancelled by an earlier one of the same round never runs.
  for (;;) {
    TimerMap::node_type node;
    {
      std::lock_guard lock(mu_);
      // Timers scheduled by this round's callbacks wait for the next round, so a zero-delay timer that re-arms itself
      // cannot keep the loop here forever.
      if (!first_new_id) first_new_id = next_timer_id_;
      DropCancelledTimersLocked();
      if (timer_heap_.empty()) break;
      const TimerEntry next = timer_heap_.front();
      if (next.deadline > now || next.id >= *first_new_id) break;
      std::pop_heap(timer_heap_.begin(), timer_heap_.end(), kLater);
      timer_heap_.pop_back();
      node = timers_.extract(next.id);
    }
    node.mapped()();
    ran = true;
  }
  return ran;
}

bool EventLoop::RunPostedTasks() {
  {
    std::lock_guard lock(mu_);
    running_tasks_.swap(tasks_);
  }
  if (running_tasks_.empty()) return false;
  // Tasks posted from here on go to the next iteration, so I/O is not starved by tasks that keep posting tasks.
  for (Task& task : running_tasks_) {
    task();
    task = nullptr;  // release its captures now, not at the end of the batch
  }
  running_tasks_.clear();
  return true;
}

void EventLoop::Wake() {
  const std::uint64_t one = 1;
  // Can only fail if the counter would overflow, which leaves the eventfd readable, i.e. the loop woken anyway.
  const ssize_t written = write(wake_fd_, &one, sizeof(one));
  static_cast<void>(written);
}

void EventLoop::DrainWakeups() {
  std::uint64_t count;
  const ssize_t got = read(wake_fd_, &count, sizeof(count));
  static_cast<void>(got);
}

void EventLoop::DropCancelledTimersLocked() {
  while (!timer_heap_.empty() && !timers_.contains(timer_heap_.front().id)) {
    std::pop_heap(timer_heap_.begin(), timer_heap_.end(), kLater);
    timer_heap_.pop_back();
  }
}

void EventLoop::MaybeCompactTimersLocked() {
  const std::size_t cancelled = timer_heap_.size() - timers_.size();
  if (cancelled < kMinCancelledBeforeCompaction || cancelled <= timers_.size()) return;
  std::erase_if(timer_heap_, [this](const TimerEntry& entry) { return !timers_.contains(entry.id); });
  std::make_heap(timer_heap_.begin(), timer_heap_.end(), kLater);
}

}  // namespace mpath
