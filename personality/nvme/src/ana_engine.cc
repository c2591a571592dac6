#include "mpath/nvme/ana_engine.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "mpath/nvme/spec/async_event.h"
#include "mpath/nvme/spec/common.h"
#include "mpath/nvme/spec/log_ana.h"
#include "mpath/nvme/spec/log_page.h"
#include "mpath/nvme/spec/status.h"

namespace mpath::nvme {
namespace {

using spec::AnaState;
using spec::LogPageId;

// The Changed Namespace List is one 4 KiB page, and no log page read only to acknowledge an event needs more.
constexpr std::uint32_t kEventLogBytes = 4096;
// A controller with no MDTS limit still gets no ANA log buffer beyond this: an MNAN near 2^32 would ask for 16 GiB.
constexpr std::uint64_t kMaxAnaLogBytes = std::uint64_t{16} << 20;

constexpr std::uint8_t Raw(LogPageId lid) { return static_cast<std::uint8_t>(lid); }

// The log as the engine believes it: parsed within the bytes received, then checked as a whole, so that one bad
// descriptor discards the answer instead of half-applying it (Linux's nvme_parse_ana_log refuses the same things).
Result<spec::AnaLog> CheckedAnaLog(std::span<const std::byte> bytes, std::uint32_t anagrpmax) {
  spec::AnaLog log = MPATH_TRY(spec::ParseAnaLog(bytes));
  std::unordered_set<std::uint32_t> groups;
  std::unordered_set<std::uint32_t> nsids;
  for (const spec::AnaGroup& group : log.groups) {
    if (group.id == 0 || (anagrpmax != 0 && group.id > anagrpmax)) {
      return MakeError(Errc::kTargetError,
                       fmt::format("ANA log names group {}, outside 1..ANAGRPMAX ({})", group.id, anagrpmax));
    }
    if (!groups.insert(group.id).second) {
      return MakeError(Errc::kTargetError, fmt::format("ANA log lists group {} twice", group.id));
    }
    if (!spec::IsValidAnaState(group.state_raw)) {
      return MakeError(Errc::kTargetError,
                       fmt::format("ANA log gives group {} the reserved state {:#x}", group.id, group.state_raw));
    }
    for (const std::uint32_t nsid : group.nsids) {
      if (nsid == 0 || nsid == spec::kBroadcastNsid) {
        return MakeError(Errc::kTargetError, fmt::format("ANA log group {} lists NSID {:#x}", group.id, nsid));
      }
      if (!nsids.insert(nsid).second) {
        return MakeError(Errc::kTargetError, fmt::format("ANA log lists NSID {} in two groups", nsid));
      }
    }
  }
  return log;
}

bool Succeeded(const NvmeCommand& command) {
  return command.delivery == Delivery::kDelivered && command.cqe.status().ok();
}

}  // namespace

// Threading: executor thread only, except Enqueue (any thread, under inbox_mu_).
class AnaEngine::Impl : public std::enable_shared_from_this<AnaEngine::Impl> {
 public:
  enum class EventKind : std::uint8_t { kRefresh, kRefreshAll };
  struct Event {
    EventKind kind = EventKind::kRefresh;
    ControllerKey key = 0;
  };

  Impl(Executor& executor, AnaOptions options, AnaCallbacks callbacks)
      : executor_(executor), options_(std::move(options)), callbacks_(std::move(callbacks)) {}
  ~Impl();

  Result<void> AddController(AnaController controller);
  Result<void> RemoveController(ControllerKey key);
  Result<void> WatchNamespace(ControllerKey key, std::uint32_t nsid, std::uint32_t anagrpid);
  Result<void> UnwatchNamespace(ControllerKey key, std::uint32_t nsid);
  void Enqueue(Event event);
  [[nodiscard]] std::optional<AnaControllerStatus> ControllerStatus(ControllerKey key) const;
  [[nodiscard]] std::optional<AccessState> NamespaceState(ControllerKey key, std::uint32_t nsid) const;
  void Shutdown();

 private:
  struct Op;

  // One ANA group as the controller's last good log described it.
  struct Group {
    std::uint8_t state_raw = 0;  // a valid AnaState (CheckedAnaLog)
    TimerId anatt_timer = 0;     // while in change and ANATT has not yet passed
    bool expired = false;        // in change past ANATT: inaccessible until a log shows it out of change
  };

  struct Watched {
    std::uint32_t anagrpid = 0;  // Identify Namespace's, for when the log does not list the NSID
    std::optional<AccessState> published;
  };

  // A log page read because an event named it (the Changed Namespace List, or one read only to acknowledge).
  struct EventLog {
    bool in_flight = false;
    bool again = false;  // another event named it while a read was in flight: the answer may predate it
    TimerId retry_timer = 0;
    Nanos retry_delay{0};
  };

  struct Controller {
    ControllerKey key = 0;
    std::uint64_t serial = 0;  // tells a controller from a later one added under the same key
    NvmeTransport* transport = nullptr;
    ControllerSummary summary;
    bool ana = false;
    std::uint32_t log_bytes = 0;
    spec::AnaLogScope scope = spec::AnaLogScope::kGroupsAndNamespaces;
    Nanos transition_timeout{0};

    // From the last good log.
    bool have_log = false;
    std::uint64_t change_count = 0;
    std::unordered_map<std::uint32_t, Group> groups;
    std::unordered_map<std::uint32_t, std::uint32_t> listed;  // NSID -> group, as the log lists them
    bool reconnect_needed = false;
    TimerId change_poll_timer = 0;  // while some group is in change

    std::map<std::uint32_t, Watched> watched;
    bool dirty = false;

    // ANA log reads: at most one in flight; any number of requests meanwhile become exactly one more.
    bool reading = false;
    bool read_again = false;
    TimerId read_retry_timer = 0;
    Nanos read_retry_delay{0};

    // Asynchronous events: one request kept outstanding.
    bool aer_wanted = false;
    bool aer_refused = false;
    bool aer_outstanding = false;
    bool aer_resync = false;  // a request failed: after the next one goes out, read what may have been missed
    TimerId aer_retry_timer = 0;
    Nanos aer_retry_delay{0};
    std::map<std::uint8_t, EventLog> event_logs;  // by log page identifier

    std::uint64_t log_reads = 0;
    std::uint64_t log_failures = 0;
    std::uint64_t events = 0;
    std::uint64_t aer_refusals = 0;
  };

  enum class OpKind : std::uint8_t { kAnaLog, kAer, kEventLog };

  // One command of the engine's. Owned by ops_ until it has finished and been handled; owns itself when the engine
  // goes away first.
  struct Op {
    Impl* impl = nullptr;
    OpKind kind = OpKind::kAnaLog;
    Controller* controller = nullptr;  // null once the controller is gone
    std::uint8_t lid = 0;              // kEventLog
    bool finished = false;
    bool orphaned = false;
    std::vector<std::byte> buffer;
    NvmeCommand command;
  };

  struct Note {
    enum class Kind : std::uint8_t { kNamespaces, kReconnect };
    Kind kind = Kind::kNamespaces;
    ControllerKey key = 0;
    std::uint64_t serial = 0;
    std::uint32_t group = 0;
    std::vector<std::uint32_t> nsids;
    bool all = false;
  };

  // Tasks.
  void Post(std::move_only_function<void()> fn);
  TimerId Schedule(Nanos delay, std::move_only_function<void()> fn);
  void Drain();
  void PostFlush();
  void HandleCompletion(Op* raw);
  void OnReadRetry(ControllerKey key, std::uint64_t serial);
  void OnAerRetry(ControllerKey key, std::uint64_t serial);
  void OnEventLogRetry(ControllerKey key, std::uint64_t serial, std::uint8_t lid);
  void OnAnatt(ControllerKey key, std::uint64_t serial, std::uint32_t group);

  // The ANA log.
  void RequestRead(Controller& c);
  void StartRead(Controller& c);
  void HandleAnaLog(Controller& c, Op& op);
  void ApplyLog(Controller& c, const spec::AnaLog& log);

  // Asynchronous events.
  void ArmAer(Controller& c);
  void HandleAer(Controller& c, Op& op);
  void AerFailed(Controller& c);
  void RequestEventLog(Controller& c, std::uint8_t lid);
  void StartEventLog(Controller& c, std::uint8_t lid);
  void HandleEventLog(Controller& c, Op& op);

  // Commands.
  Op& NewOp(Controller& c, OpKind kind);
  void Submit(Op& op);
  static void OnCommandFinished(NvmeCommand& command, void* arg);

  // State.
  [[nodiscard]] std::optional<AccessState> Derive(const Controller& c, std::uint32_t nsid, const Watched& w) const;
  void MarkDirty(Controller& c);
  void Flush();
  void CancelTimers(Controller& c);
  [[nodiscard]] Nanos Backoff(Nanos& delay) const;
  [[nodiscard]] Controller* Find(ControllerKey key) const;
  [[nodiscard]] Controller* Find(ControllerKey key, std::uint64_t serial) const;

  // Constant after construction.
  Executor& executor_;
  const AnaOptions options_;
  const AnaCallbacks callbacks_;

  // Guarded by inbox_mu_.
  std::mutex inbox_mu_;
  std::vector<Event> inbox_;
  bool drain_posted_ = false;

  // Executor thread only.
  bool shutdown_ = false;
  bool flushing_ = false;
  bool flush_posted_ = false;
  std::uint64_t next_serial_ = 0;
  std::unordered_map<ControllerKey, std::unique_ptr<Controller>> controllers_;
  std::unordered_map<Op*, std::unique_ptr<Op>> ops_;
  std::vector<ControllerKey> dirty_;
  std::vector<Note> notes_;
};

// --- Lifecycle and tasks.

AnaEngine::Impl::~Impl() { Shutdown(); }

void AnaEngine::Impl::Shutdown() {
  if (shutdown_) return;
  shutdown_ = true;
  for (auto& [key, c] : controllers_) CancelTimers(*c);
  // A command still in the transport (an AER above all) finishes later: it then frees itself instead of reaching
  // the engine.
  for (auto& [raw, op] : ops_) {
    if (!op->finished) {
      op->orphaned = true;
      static_cast<void>(op.release());
    }
  }
  ops_.clear();
}

void AnaEngine::Impl::Post(std::move_only_function<void()> fn) {
  executor_.Post([weak = weak_from_this(), fn = std::move(fn)]() mutable {
    const auto self = weak.lock();
    if (self && !self->shutdown_) fn();
  });
}

TimerId AnaEngine::Impl::Schedule(Nanos delay, std::move_only_function<void()> fn) {
  return executor_.ScheduleAfter(delay, [weak = weak_from_this(), fn = std::move(fn)]() mutable {
    const auto self = weak.lock();
    if (self && !self->shutdown_) fn();
  });
}

void AnaEngine::Impl::Enqueue(Event event) {
  {
    std::lock_guard lock(inbox_mu_);
    inbox_.push_back(event);
    if (drain_posted_) return;
    drain_posted_ = true;
  }
  Post([this] { Drain(); });
}

void AnaEngine::Impl::Drain() {
  std::vector<Event> batch;
  {
    std::lock_guard lock(inbox_mu_);
    batch.swap(inbox_);
    drain_posted_ = false;
  }
  // A storm brings the same news for every namespace of a controller: one request each, or the requests after the
  // first would find its read in flight and ask for another.
  bool all = false;
  std::unordered_set<ControllerKey> keys;
  for (const Event& event : batch) {
    switch (event.kind) {
      case EventKind::kRefresh: keys.insert(event.key); break;
      case EventKind::kRefreshAll: all = true; break;
      default: break;
    }
  }
  for (auto& [key, c] : controllers_) {
    if (all || keys.contains(key)) RequestRead(*c);
  }
  Flush();
}

void AnaEngine::Impl::PostFlush() {
  if (flush_posted_) return;
  flush_posted_ = true;
  Post([this] {
    flush_posted_ = false;
    Flush();
  });
}

void AnaEngine::Impl::OnReadRetry(ControllerKey key, std::uint64_t serial) {
  Controller* c = Find(key, serial);
  if (c == nullptr) return;
  c->read_retry_timer = 0;
  RequestRead(*c);
  Flush();
}

void AnaEngine::Impl::OnAerRetry(ControllerKey key, std::uint64_t serial) {
  Controller* c = Find(key, serial);
  if (c == nullptr) return;
  c->aer_retry_timer = 0;
  ArmAer(*c);
  if (c->aer_resync) {
    // While no request was outstanding the controller may have had news for us and kept it: ask for it now.
    c->aer_resync = false;
    RequestRead(*c);
    if (c->summary.namespace_attribute_notices) RequestEventLog(*c, Raw(LogPageId::kChangedNamespaceList));
  }
  Flush();
}

void AnaEngine::Impl::OnEventLogRetry(ControllerKey key, std::uint64_t serial, std::uint8_t lid) {
  Controller* c = Find(key, serial);
  if (c == nullptr) return;
  c->event_logs[lid].retry_timer = 0;
  RequestEventLog(*c, lid);
  Flush();
}

void AnaEngine::Impl::OnAnatt(ControllerKey key, std::uint64_t serial, std::uint32_t group_id) {
  Controller* c = Find(key, serial);
  if (c == nullptr) return;
  auto it = c->groups.find(group_id);
  if (it == c->groups.end()) return;
  Group& group = it->second;
  group.anatt_timer = 0;
  if (group.state_raw != static_cast<std::uint8_t>(AnaState::kChange)) return;
  // The controller promised to finish within ANATT and did not: its namespaces there are not coming back by
  // themselves, and Linux resets the controller at this point.
  group.expired = true;
  c->reconnect_needed = true;
  MarkDirty(*c);
  notes_.push_back(Note{Note::Kind::kReconnect, c->key, c->serial, group_id, {}, false});
  Flush();
}

// --- Public operations.

Result<void> AnaEngine::Impl::AddController(AnaController info) {
  if (info.transport == nullptr) {
    return MakeError(Errc::kInvalidArgument, fmt::format("ANA controller {} without a transport", info.key));
  }
  if (controllers_.contains(info.key)) {
    return MakeError(Errc::kAlreadyExists, fmt::format("ANA controller key {} is in use", info.key));
  }
  auto owned = std::make_unique<Controller>();
  Controller& c = *owned;
  c.key = info.key;
  c.serial = ++next_serial_;
  c.transport = info.transport;
  c.summary = std::move(info.summary);
  c.ana = c.summary.ana_reporting;
  c.transition_timeout =
      c.summary.anatt_secs != 0 ? Nanos(std::chrono::seconds(c.summary.anatt_secs)) : options_.default_transition_timeout;
  if (c.ana) {
    // The whole log in one command when it fits; otherwise only the groups, and every namespace follows its own
    // ANAGRPID (WatchNamespace), which is what the log would have said.
    const std::uint64_t mdts = c.summary.MaxTransferBytes();
    const std::uint64_t limit = mdts != 0 ? std::min(std::uint64_t{mdts}, kMaxAnaLogBytes) : kMaxAnaLogBytes;
    std::uint64_t bytes = c.summary.AnaLogBytes();
    if (bytes > limit) {
      c.scope = spec::AnaLogScope::kGroupsOnly;
      bytes = spec::AnaLogSize(c.summary.nanagrpid, 0);
    }
    if (bytes > limit) {
      return MakeError(Errc::kUnsupported,
                       fmt::format("controller {}: an ANA log of {} groups ({} bytes) exceeds one transfer ({} bytes)",
                                   c.key, c.summary.nanagrpid, bytes, limit));
    }
    c.log_bytes = static_cast<std::uint32_t>(bytes);
  }
  c.aer_wanted = c.summary.ana_change_notices || c.summary.namespace_attribute_notices;
  c.read_retry_delay = options_.retry_initial;
  c.aer_retry_delay = options_.retry_initial;
  controllers_.emplace(c.key, std::move(owned));
  // The request goes out before the read, so that a change after the read is announced rather than missed.
  ArmAer(c);
  if (c.ana) StartRead(c);
  return {};
}

Result<void> AnaEngine::Impl::RemoveController(ControllerKey key) {
  auto it = controllers_.find(key);
  if (it == controllers_.end()) return MakeError(Errc::kNotFound, fmt::format("no ANA controller {}", key));
  Controller& c = *it->second;
  CancelTimers(c);
  for (auto& [raw, op] : ops_) {
    if (op->controller == &c) op->controller = nullptr;
  }
  controllers_.erase(it);
  return {};
}

Result<void> AnaEngine::Impl::WatchNamespace(ControllerKey key, std::uint32_t nsid, std::uint32_t anagrpid) {
  Controller* c = Find(key);
  if (c == nullptr) return MakeError(Errc::kNotFound, fmt::format("no ANA controller {}", key));
  if (nsid == 0 || nsid == spec::kBroadcastNsid) {
    return MakeError(Errc::kInvalidArgument, fmt::format("cannot watch NSID {:#x}", nsid));
  }
  if (!c->watched.try_emplace(nsid, Watched{anagrpid, std::nullopt}).second) {
    return MakeError(Errc::kAlreadyExists, fmt::format("controller {} already watches namespace {}", key, nsid));
  }
  // A namespace newer than the log, in a group the log did not describe: the log is stale (Linux re-reads too).
  if (c->ana && c->have_log && !c->listed.contains(nsid) && !c->groups.contains(anagrpid)) RequestRead(*c);
  MarkDirty(*c);
  PostFlush();
  return {};
}

Result<void> AnaEngine::Impl::UnwatchNamespace(ControllerKey key, std::uint32_t nsid) {
  Controller* c = Find(key);
  if (c == nullptr) return MakeError(Errc::kNotFound, fmt::format("no ANA controller {}", key));
  if (c->watched.erase(nsid) == 0) {
    return MakeError(Errc::kNotFound, fmt::format("controller {} does not watch namespace {}", key, nsid));
  }
  return {};
}

std::optional<AnaControllerStatus> AnaEngine::Impl::ControllerStatus(ControllerKey key) const {
  const Controller* c = Find(key);
  if (c == nullptr) return std::nullopt;
  AnaControllerStatus status;
  status.ana = c->ana;
  status.log_reads = c->log_reads;
  status.log_failures = c->log_failures;
  status.events = c->events;
  status.aers_outstanding = c->aer_outstanding ? 1 : 0;
  status.change_count = c->change_count;
  status.reconnect_needed = c->reconnect_needed;
  status.transition_timeout = c->transition_timeout;
  return status;
}

std::optional<AccessState> AnaEngine::Impl::NamespaceState(ControllerKey key, std::uint32_t nsid) const {
  const Controller* c = Find(key);
  if (c == nullptr) return std::nullopt;
  auto it = c->watched.find(nsid);
  return it == c->watched.end() ? std::nullopt : it->second.published;
}

// --- The ANA log.

void AnaEngine::Impl::RequestRead(Controller& c) {
  if (!c.ana) return;
  if (c.reading) {
    // The answer in flight may predate what prompted this request: read once more when it is in.
    c.read_again = true;
    return;
  }
  if (c.read_retry_timer != 0) return;  // the retry on its way reads the log
  StartRead(c);
}

void AnaEngine::Impl::StartRead(Controller& c) {
  Op& op = NewOp(c, OpKind::kAnaLog);
  op.buffer.assign(c.log_bytes, std::byte{0});
  op.command.sqe = spec::MakeGetAnaLog(c.log_bytes, c.scope);
  op.command.direction = DataDirection::kFromController;
  op.command.timeout = options_.command_timeout;
  c.reading = true;
  ++c.log_reads;
  Submit(op);
}

void AnaEngine::Impl::HandleAnaLog(Controller& c, Op& op) {
  c.reading = false;
  bool good = false;
  if (Succeeded(op.command)) {
    // Get Log Page transfers the whole length asked for; the parser never reads past it.
    Result<spec::AnaLog> log = CheckedAnaLog(op.buffer, c.summary.anagrpmax);
    if (log) {
      ApplyLog(c, *log);
      good = true;
    }
  }
  if (!good) {
    // Not delivered, refused, or malformed: the states stand as the last good log left them, and the retry after the
    // backoff also covers any read asked for meanwhile.
    ++c.log_failures;
    c.read_again = false;
    if (c.read_retry_timer == 0) {
      c.read_retry_timer = Schedule(Backoff(c.read_retry_delay),
                                    [this, key = c.key, serial = c.serial] { OnReadRetry(key, serial); });
    }
    return;
  }
  c.read_retry_delay = options_.retry_initial;
  if (c.read_again) {
    c.read_again = false;
    StartRead(c);
  }
}

void AnaEngine::Impl::ApplyLog(Controller& c, const spec::AnaLog& log) {
  constexpr auto kChange = static_cast<std::uint8_t>(AnaState::kChange);
  std::unordered_map<std::uint32_t, Group> groups;
  std::unordered_map<std::uint32_t, std::uint32_t> listed;
  groups.reserve(log.groups.size());
  bool any_changing = false;
  for (const spec::AnaGroup& g : log.groups) {
    Group& next = groups[g.id];
    next.state_raw = g.state_raw;
    for (const std::uint32_t nsid : g.nsids) listed.emplace(nsid, g.id);
    if (g.state_raw != kChange) continue;
    any_changing = true;
    auto old = c.groups.find(g.id);
    if (old != c.groups.end() && old->second.state_raw == kChange) {
      // Still changing: ANATT counts from the first log that showed it, so the timer (or its expiry) carries on.
      next.anatt_timer = std::exchange(old->second.anatt_timer, 0);
      next.expired = old->second.expired;
    } else {
      next.anatt_timer = Schedule(c.transition_timeout,
                                  [this, key = c.key, serial = c.serial, id = g.id] { OnAnatt(key, serial, id); });
    }
  }
  // Groups that left the change state, or the log, stop their clocks.
  for (auto& [id, group] : c.groups) {
    if (group.anatt_timer != 0) executor_.Cancel(group.anatt_timer);
  }
  c.groups = std::move(groups);
  c.listed = std::move(listed);
  c.have_log = true;
  c.change_count = log.chgcnt;
  if (!any_changing) c.reconnect_needed = false;
  if (!any_changing && c.change_poll_timer != 0) {
    executor_.Cancel(c.change_poll_timer);
    c.change_poll_timer = 0;
  } else if (any_changing && c.change_poll_timer == 0 && options_.transition_poll > Nanos(0)) {
    c.change_poll_timer = Schedule(options_.transition_poll, [this, key = c.key, serial = c.serial] {
      Controller* polled = Find(key, serial);
      if (polled == nullptr) return;
      polled->change_poll_timer = 0;
      RequestRead(*polled);
      Flush();
    });
  }
  MarkDirty(c);
}

// --- Asynchronous events.

void AnaEngine::Impl::ArmAer(Controller& c) {
  if (!c.aer_wanted || c.aer_refused || c.aer_outstanding || c.aer_retry_timer != 0) return;
  Op& op = NewOp(c, OpKind::kAer);
  op.command.sqe = spec::MakeAsyncEventRequest();
  op.command.direction = DataDirection::kNone;
  op.command.timeout = Nanos(0);  // it waits for an event, however long that takes
  c.aer_outstanding = true;
  Submit(op);
}

void AnaEngine::Impl::HandleAer(Controller& c, Op& op) {
  c.aer_outstanding = false;
  const NvmeCommand& command = op.command;
  if (command.delivery != Delivery::kDelivered) {
    AerFailed(c);  // link down, aborted with the controller, timed out
    return;
  }
  const spec::Status status = command.cqe.status();
  if (!status.ok()) {
    if (spec::Is(status, spec::GenericStatus::kInvalidCommandOpcode) ||
        spec::Is(status, spec::CommandSpecificStatus::kAsynchronousEventRequestLimitExceeded)) {
      // Asking again would be refused again; the log is still read at attach, on ANA statuses and on Refresh.
      c.aer_refused = true;
      ++c.aer_refusals;
      return;
    }
    AerFailed(c);
    return;
  }
  ++c.events;
  c.aer_retry_delay = options_.retry_initial;
  const spec::AsyncEvent event = spec::AsyncEvent::Decode(command.cqe.dw0.value());
  if (c.ana && event.IsNotice(spec::NoticeEvent::kAnaChange)) {
    RequestRead(c);  // reading it with RAE cleared also unmasks the notice
  } else if (event.IsNotice(spec::NoticeEvent::kNamespaceAttributeChanged)) {
    RequestEventLog(c, Raw(LogPageId::kChangedNamespaceList));
  } else if (event.log_page != 0) {
    // Not ours to act on, but until its log page is read the controller masks every event of its type.
    RequestEventLog(c, event.log_page);
  }
  ArmAer(c);
}

void AnaEngine::Impl::AerFailed(Controller& c) {
  c.aer_resync = true;
  if (c.aer_retry_timer != 0) return;
  c.aer_retry_timer =
      Schedule(Backoff(c.aer_retry_delay), [this, key = c.key, serial = c.serial] { OnAerRetry(key, serial); });
}

void AnaEngine::Impl::RequestEventLog(Controller& c, std::uint8_t lid) {
  EventLog& log = c.event_logs[lid];
  if (log.in_flight) {
    log.again = true;
    return;
  }
  if (log.retry_timer != 0) return;
  StartEventLog(c, lid);
}

void AnaEngine::Impl::StartEventLog(Controller& c, std::uint8_t lid) {
  EventLog& log = c.event_logs[lid];
  if (log.retry_delay == Nanos(0)) log.retry_delay = options_.retry_initial;
  Op& op = NewOp(c, OpKind::kEventLog);
  op.lid = lid;
  op.buffer.assign(kEventLogBytes, std::byte{0});
  op.command.sqe = spec::MakeGetLogPage(spec::GetLogPageArgs{
      .lid = static_cast<LogPageId>(lid),
      .nsid = spec::kBroadcastNsid,
      .length_bytes = kEventLogBytes,
      .offset = 0,
      .lsp = 0,
      .rae = spec::RetainAsyncEvent::kClear,
  });
  op.command.direction = DataDirection::kFromController;
  op.command.timeout = options_.command_timeout;
  log.in_flight = true;
  Submit(op);
}

void AnaEngine::Impl::HandleEventLog(Controller& c, Op& op) {
  const bool changed_namespaces = op.lid == Raw(LogPageId::kChangedNamespaceList);
  EventLog& log = c.event_logs[op.lid];
  log.in_flight = false;
  const NvmeCommand& command = op.command;
  if (Succeeded(command)) {
    log.retry_delay = options_.retry_initial;
    if (changed_namespaces) {
      spec::ChangedNamespaces changed = spec::ParseChangedNamespaceList(op.buffer);
      if (changed.overflow || !changed.nsids.empty()) {
        notes_.push_back(
            Note{Note::Kind::kNamespaces, c.key, c.serial, 0, std::move(changed.nsids), changed.overflow});
      }
    }
    if (std::exchange(log.again, false)) StartEventLog(c, op.lid);
    return;
  }
  log.again = false;
  if (command.delivery == Delivery::kDelivered && command.cqe.status().dnr()) {
    // The controller will never give this page. For the Changed Namespace List that leaves the change unnamed, so
    // everything is rescanned; other pages were only being acknowledged.
    if (changed_namespaces) notes_.push_back(Note{Note::Kind::kNamespaces, c.key, c.serial, 0, {}, true});
    return;
  }
  if (log.retry_timer == 0) {
    log.retry_timer = Schedule(Backoff(log.retry_delay), [this, key = c.key, serial = c.serial, lid = op.lid] {
      OnEventLogRetry(key, serial, lid);
    });
  }
}

// --- Commands.

AnaEngine::Impl::Op& AnaEngine::Impl::NewOp(Controller& c, OpKind kind) {
  auto owned = std::make_unique<Op>();
  Op& op = *owned;
  op.impl = this;
  op.kind = kind;
  op.controller = &c;
  op.command.queue = QueueKind::kAdmin;
  ops_.emplace(&op, std::move(owned));
  return op;
}

void AnaEngine::Impl::Submit(Op& op) {
  NvmeCommand& command = op.command;
  command.ResetAnswer();
  command.executor = &executor_;
  command.data = std::span<std::byte>(op.buffer);
  command.OnFinish(&Impl::OnCommandFinished, &op);
  // The transport may finish the command inside this call; OnCommandFinished only posts, so nothing re-enters.
  op.controller->transport->Submit(command);
}

void AnaEngine::Impl::OnCommandFinished(NvmeCommand& /*command*/, void* arg) {
  Op* op = static_cast<Op*>(arg);
  op->finished = true;
  if (op->orphaned) {
    delete op;
    return;
  }
  Impl* impl = op->impl;
  impl->Post([impl, op] { impl->HandleCompletion(op); });
}

void AnaEngine::Impl::HandleCompletion(Op* raw) {
  auto it = ops_.find(raw);
  if (it == ops_.end()) return;
  // Keeps the op alive while its handler may start others (which may rehash ops_).
  const std::unique_ptr<Op> op = std::move(it->second);
  ops_.erase(it);
  Controller* c = op->controller;
  if (c == nullptr) return;  // the controller was removed; its late answer means nothing now
  switch (op->kind) {
    case OpKind::kAnaLog: HandleAnaLog(*c, *op); break;
    case OpKind::kAer: HandleAer(*c, *op); break;
    case OpKind::kEventLog: HandleEventLog(*c, *op); break;
    default: break;
  }
  Flush();
}

// --- State.

std::optional<AccessState> AnaEngine::Impl::Derive(const Controller& c, std::uint32_t nsid, const Watched& w) const {
  if (!c.ana) return AccessState::kOptimized;
  if (!c.have_log) return std::nullopt;
  auto listed = c.listed.find(nsid);
  const std::uint32_t group_id = listed != c.listed.end() ? listed->second : w.anagrpid;
  auto it = c.groups.find(group_id);
  if (it == c.groups.end()) return AccessState::kUnavailable;
  const Group& group = it->second;
  switch (static_cast<AnaState>(group.state_raw)) {
    case AnaState::kOptimized: return AccessState::kOptimized;
    case AnaState::kNonOptimized: return AccessState::kNonOptimized;
    case AnaState::kInaccessible: return AccessState::kUnavailable;
    case AnaState::kPersistentLoss: return AccessState::kPersistentLoss;
    case AnaState::kChange: return group.expired ? AccessState::kUnavailable : AccessState::kTransitioning;
    default: return AccessState::kUnavailable;  // CheckedAnaLog lets no other value through
  }
}

void AnaEngine::Impl::MarkDirty(Controller& c) {
  if (c.dirty) return;
  c.dirty = true;
  dirty_.push_back(c.key);
}

void AnaEngine::Impl::Flush() {
  if (flushing_) return;
  flushing_ = true;
  struct StateNote {
    ControllerKey key;
    std::uint64_t serial;
    std::uint32_t nsid;
    AccessState state;
  };
  while (!shutdown_ && (!dirty_.empty() || !notes_.empty())) {
    std::vector<StateNote> states;
    for (const ControllerKey key : std::exchange(dirty_, {})) {
      Controller* c = Find(key);
      if (c == nullptr || !c->dirty) continue;
      c->dirty = false;
      for (auto& [nsid, w] : c->watched) {
        const std::optional<AccessState> state = Derive(*c, nsid, w);
        if (!state || w.published == state) continue;
        w.published = state;
        states.push_back(StateNote{key, c->serial, nsid, *state});
      }
    }
    // States first, so that whoever hears "reconnect" already sees the namespaces inaccessible.
    const std::vector<Note> notes = std::exchange(notes_, {});
    // Callbacks may add or remove controllers and namespaces, or destroy the engine: each is checked against the
    // present before it is made.
    for (const StateNote& s : states) {
      if (shutdown_) break;
      const Controller* c = Find(s.key, s.serial);
      if (c == nullptr || !c->watched.contains(s.nsid)) continue;
      callbacks_.on_state(s.key, s.nsid, s.state);
    }
    for (const Note& note : notes) {
      if (shutdown_) break;
      if (Find(note.key, note.serial) == nullptr) continue;
      switch (note.kind) {
        case Note::Kind::kNamespaces:
          if (callbacks_.on_namespaces_changed) callbacks_.on_namespaces_changed(note.key, note.nsids, note.all);
          break;
        case Note::Kind::kReconnect:
          if (callbacks_.on_reconnect_needed) callbacks_.on_reconnect_needed(note.key, note.group);
          break;
        default: break;
      }
    }
  }
  flushing_ = false;
}

void AnaEngine::Impl::CancelTimers(Controller& c) {
  auto cancel = [this](TimerId& id) {
    if (id != 0) executor_.Cancel(id);
    id = 0;
  };
  cancel(c.read_retry_timer);
  cancel(c.aer_retry_timer);
  cancel(c.change_poll_timer);
  for (auto& [lid, log] : c.event_logs) cancel(log.retry_timer);
  for (auto& [id, group] : c.groups) cancel(group.anatt_timer);
}

Nanos AnaEngine::Impl::Backoff(Nanos& delay) const {
  const Nanos now = delay;
  delay = std::min(delay * 2, options_.retry_max);
  return now;
}

AnaEngine::Impl::Controller* AnaEngine::Impl::Find(ControllerKey key) const {
  auto it = controllers_.find(key);
  return it == controllers_.end() ? nullptr : it->second.get();
}

AnaEngine::Impl::Controller* AnaEngine::Impl::Find(ControllerKey key, std::uint64_t serial) const {
  Controller* c = Find(key);
  return c != nullptr && c->serial == serial ? c : nullptr;
}

// --- AnaEngine.

Result<std::unique_ptr<AnaEngine>> AnaEngine::Create(Executor& executor, AnaOptions options, AnaCallbacks callbacks) {
  if (!callbacks.on_state) return MakeError(Errc::kInvalidArgument, "AnaEngine needs an on_state callback");
  if (options.retry_initial <= Nanos(0) || options.retry_max < options.retry_initial) {
    return MakeError(Errc::kInvalidArgument, "ANA retry intervals must be positive and capped above");
  }
  if (options.default_transition_timeout <= Nanos(0)) {
    return MakeError(Errc::kInvalidArgument, "ANA default transition timeout must be positive");
  }
  if (options.command_timeout < Nanos(0)) {
    return MakeError(Errc::kInvalidArgument, "ANA command timeout must not be negative");
  }
  if (options.transition_poll < Nanos(0)) {
    return MakeError(Errc::kInvalidArgument, "ANA transition poll interval must not be negative");
  }
  auto impl = std::make_shared<Impl>(executor, std::move(options), std::move(callbacks));
  return std::unique_ptr<AnaEngine>(new AnaEngine(std::move(impl)));
}

AnaEngine::AnaEngine(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

// A task of the engine's that is running (a callback destroying the engine) keeps Impl alive until it returns.
AnaEngine::~AnaEngine() { impl_->Shutdown(); }

Result<void> AnaEngine::AddController(AnaController controller) { return impl_->AddController(std::move(controller)); }
Result<void> AnaEngine::RemoveController(ControllerKey key) { return impl_->RemoveController(key); }

Result<void> AnaEngine::WatchNamespace(ControllerKey key, std::uint32_t nsid, std::uint32_t anagrpid) {
  return impl_->WatchNamespace(key, nsid, anagrpid);
}
Result<void> AnaEngine::UnwatchNamespace(ControllerKey key, std::uint32_t nsid) {
  return impl_->UnwatchNamespace(key, nsid);
}

void AnaEngine::OnAnaStatus(ControllerKey key) { impl_->Enqueue(Impl::Event{Impl::EventKind::kRefresh, key}); }
void AnaEngine::Refresh(ControllerKey key) { impl_->Enqueue(Impl::Event{Impl::EventKind::kRefresh, key}); }
void AnaEngine::RefreshAll() { impl_->Enqueue(Impl::Event{Impl::EventKind::kRefreshAll, 0}); }

std::optional<AnaControllerStatus> AnaEngine::ControllerStatus(ControllerKey key) const {
  return impl_->ControllerStatus(key);
}
std::optional<AccessState> AnaEngine::NamespaceState(ControllerKey key, std::uint32_t nsid) const {
  return impl_->NamespaceState(key, nsid);
}

}  // namespace mpath::nvme
