#include "mpath/scsi/alua_engine.h"

#include <algorithm>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "mpath/proto/wire.h"
#include "mpath/scsi/spec/alua.h"
#include "mpath/scsi/spec/sense.h"
#include "mpath/scsi/spec/spc_cdb.h"

namespace mpath::scsi {
namespace {

using spec::AsymmetricAccessState;
using spec::RtpgFormat;
using spec::SenseCode;
using spec::SenseKey;

// RETURN DATA LENGTH is 32 bits; no real target needs more than 255 groups of 255 ports (about 262 KiB), so a
// larger figure is garbage and the reply is parsed as received instead of fetched again.
constexpr std::size_t kMaxRtpgLength = std::size_t{1} << 20;
// A target whose announced length grows between two reads is re-read once more, not forever.
constexpr int kMaxReissues = 2;

constexpr std::uint8_t kAscNotReady = 0x04;
constexpr std::uint8_t kAscqTransitioning = 0x0A;
constexpr std::uint8_t kAscqStandby = 0x0B;
constexpr std::uint8_t kAscqUnavailable = 0x0C;
constexpr std::uint8_t kAscqOffline = 0x12;
constexpr std::uint8_t kAscReset = 0x29;
constexpr std::uint8_t kAscParametersChanged = 0x2A;
constexpr std::uint8_t kAscqAccessStateChanged = 0x06;
constexpr std::uint8_t kAscqImplicitTransitionFailed = 0x07;
constexpr std::uint8_t kAscTargetChanged = 0x3F;
constexpr std::uint8_t kAscqInquiryDataChanged = 0x03;
constexpr std::uint8_t kAscqReportedLunsChanged = 0x0E;
constexpr std::uint8_t kAscInvalidOpcode = 0x20;
constexpr std::uint8_t kAscInvalidFieldInCdb = 0x24;
constexpr std::uint8_t kAscLunNotSupported = 0x25;

bool IsAluaUnitAttention(SenseCode code) {
  return code.key == SenseKey::kUnitAttention &&
         ((code.asc == kAscParametersChanged &&
           (code.ascq == kAscqAccessStateChanged || code.ascq == kAscqImplicitTransitionFailed)) ||
          code.asc == kAscReset);
}

// The NOT READY codes that name the access state of the target port they came through; nullopt for the rest.
std::optional<AsymmetricAccessState> StateFromNotReady(SenseCode code) {
  if (code.key != SenseKey::kNotReady || code.asc != kAscNotReady) return std::nullopt;
  switch (code.ascq) {
    case kAscqTransitioning: return AsymmetricAccessState::kTransitioning;
    case kAscqStandby: return AsymmetricAccessState::kStandby;
    case kAscqUnavailable: return AsymmetricAccessState::kUnavailable;
    case kAscqOffline: return AsymmetricAccessState::kOffline;
    default: return std::nullopt;
  }
}

bool Matters(SenseCode code) {
  if (IsAluaUnitAttention(code) || StateFromNotReady(code)) return true;
  return code.key == SenseKey::kUnitAttention && code.asc == kAscTargetChanged &&
         (code.ascq == kAscqInquiryDataChanged || code.ascq == kAscqReportedLunsChanged);
}

}  // namespace

std::string_view Name(AluaMode mode) {
  switch (mode) {
    case AluaMode::kImplicit: return "implicit";
    case AluaMode::kExplicit: return "explicit";
    default: return "?";
  }
}

Result<AluaMode> ParseAluaMode(std::string_view text) {
  if (text == "implicit") return AluaMode::kImplicit;
  if (text == "explicit") return AluaMode::kExplicit;
  return MakeError(Errc::kInvalidArgument, "alua must be implicit or explicit, not '" + std::string(text) + "'");
}

// Threading: executor thread only, except Enqueue (any thread, under inbox_mu_).
class AluaEngine::Impl : public std::enable_shared_from_this<AluaEngine::Impl> {
 public:
  struct Event {
    enum class Kind : std::uint8_t { kSense, kRefresh, kRefreshAll };
    Kind kind = Kind::kSense;
    PathKey key = 0;
    SenseCode code;
  };

  Impl(Executor& executor, AluaOptions options, AluaCallbacks callbacks)
      : executor_(executor), options_(std::move(options)), callbacks_(std::move(callbacks)) {}
  ~Impl();

  Result<void> AddPath(AluaPath path);
  Result<void> RemovePath(PathKey key);
  void Enqueue(const Event& event);
  [[nodiscard]] std::optional<AluaPathStatus> PathStatus(PathKey key) const;
  [[nodiscard]] std::optional<AluaTargetStatus> TargetStatus(std::string_view name) const;
  void Shutdown();

 private:
  struct Path;
  struct Op;

  // One target port group of one target: the state object every LU and path behind it shares.
  struct Group {
    std::uint16_t id = 0;
    bool known = false;           // a state arrived (RTPG or sense)
    AsymmetricAccessState state = AsymmetricAccessState::kActiveOptimized;  // meaningful when known
    bool preferred = false;
    std::uint8_t supported = 0;   // tpg_support bits; 0 when never reported
    std::optional<TimePoint> deadline;  // while transitioning: when the engine stops waiting
    std::map<PathKey, Path*> paths;
  };

  enum class Verification : std::uint8_t { kNeeded, kInFlight, kDone };

  struct Lu {
    std::uint64_t lun = 0;
    std::map<PathKey, Path*> paths;
    Verification verification = Verification::kNeeded;
    // From the LU's own latest RTPG: relative target port -> target port group.
    bool have_membership = false;
    bool membership_complete = false;
    std::map<std::uint16_t, std::uint16_t> membership;
  };

  struct Nexus {
    ScsiTransport* transport = nullptr;
    std::map<std::uint64_t, int> luns;  // LUN -> paths through this nexus
    bool busy = false;                  // one engine command in flight per nexus, never more
    bool suspect = false;               // its last command failed; skipped until a retry round clears it
    int failures = 0;                   // consecutive failed commands
    std::uint64_t failed_at = 0;        // failure_seq_ of the latest; the oldest failure is tried first
    std::deque<std::uint64_t> verify_queue;
  };

  struct Target {
    std::string name;
    std::vector<std::unique_ptr<Nexus>> nexuses;  // in the order they appeared, so choices are reproducible
    std::map<std::uint16_t, Group> groups;
    std::map<std::uint64_t, Lu> lus;
    std::size_t path_count = 0;
    // What the target taught us.
    bool alua = true;
    bool extended = true;
    bool cuts_extended = false;
    bool stpg_unsupported = false;
    Nanos transition_timeout{0};
    std::uint32_t rtpg_length = 0;
    // Refresh coalescing: at most one refreshing RTPG in flight; requests meanwhile become one follow-up.
    bool refresh_needed = false;
    bool follow_up = false;
    Op* refresh_op = nullptr;
    std::optional<PathKey> hint;  // the path that asked first: its own unit attention is already consumed
    std::optional<std::pair<ScsiTransport*, std::uint64_t>> last_good;
    // Explicit ALUA: one STPG per external trigger, so a target that will not activate is not hammered.
    bool stpg_armed = true;
    bool stpg_in_flight = false;
    TimerId poll_timer = 0;
    Nanos poll_delay{0};
    TimerId retry_timer = 0;
    Nanos retry_delay{0};
    bool kick_queued = false;
  };

  struct Path {
    PathKey key = 0;
    Target* target = nullptr;
    Nexus* nexus = nullptr;
    Lu* lu = nullptr;
    Group* group = nullptr;
    std::uint16_t relative_port = 0;
    std::uint64_t order = 0;
    bool verified = false;
    bool from_sense = false;  // its own sense named its state, so it may be reported before verification
    bool dirty = false;
    bool published = false;
    AccessState published_state = AccessState::kUnavailable;
    bool published_preferred = false;
  };

  enum class OpKind : std::uint8_t { kRtpg, kStpg };

  // One command of the engine's, reused across its retries. Owned by ops_ until it has finished and been handled;
  // owns itself when the engine goes away first.
  struct Op {
    Impl* impl = nullptr;
    OpKind kind = OpKind::kRtpg;
    Target* target = nullptr;  // null once the target is gone
    ScsiTransport* transport = nullptr;
    std::uint64_t lun = 0;
    std::optional<PathKey> via;  // a path at (transport, lun), for hints and forwarded unit attentions
    bool verify = false;
    bool covers_refresh = false;
    RtpgFormat format = RtpgFormat::kExtended;
    bool length_only_retry = false;
    std::uint32_t allocation = 0;
    int unit_attentions = 0;
    int reissues = 0;
    std::uint16_t stpg_group = 0;
    bool finished = false;
    bool orphaned = false;
    std::vector<std::byte> buffer;
    ScsiCommand command;
  };

  struct Note {
    enum class Kind : std::uint8_t { kState, kRescan, kIdentity, kUnitAttention };
    Kind kind = Kind::kState;
    PathKey key = 0;
    AccessState state = AccessState::kUnavailable;
    bool preferred = false;
    SenseCode code;
  };

  // Tasks.
  void Post(std::move_only_function<void()> fn);
  TimerId Schedule(Nanos delay, std::move_only_function<void()> fn);
  void Drain();
  void Kick();
  void HandleCompletion(Op* op);
  void OnPollTimer(const std::string& name);
  void OnRetryTimer(const std::string& name);

  // Events.
  void ApplySense(Path& path, SenseCode code, std::unordered_set<const Nexus*>& rescanned,
                  std::unordered_set<PathKey>& identified);
  void RequestRefresh(Target& target, const Path* hint);
  void ScheduleKick(Target& target);

  // Scheduling.
  void Dispatch(Target& target);
  Lu* PopVerification(Target& target, Nexus& nexus);
  std::optional<std::pair<Nexus*, std::uint64_t>> PickRefresh(Target& target);
  void MaybeActivate(Target& target);
  void ScheduleRetry(Target& target);
  void UpdateTransitionPoll(Target& target);
  [[nodiscard]] bool HasPendingWork(const Target& target) const;

  // Commands.
  Op& NewOp(Target& target, Nexus& nexus, std::uint64_t lun, OpKind kind);
  void StartRtpg(Target& target, Nexus& nexus, std::uint64_t lun, bool covers_refresh);
  void StartStpg(Target& target, Path& via, std::uint16_t group);
  void Submit(Op& op);
  static void OnCommandFinished(ScsiCommand& command, void* arg);
  bool HandleRtpg(Target& target, Op& op);
  bool HandleStpg(Target& target, Op& op);
  void RtpgFailed(Target& target, Op& op);
  void RtpgSucceeded(Target& target, Op& op);
  bool ApplyRtpg(Target& target, Op& op, std::span<const std::byte> received);
  void ApplyNoAlua(Target& target);
  void ForwardUnitAttention(const Op& op, SenseCode code);

  // State.
  Group& GroupOf(Target& target, std::uint16_t id);
  Nexus* FindNexus(Target& target, ScsiTransport* transport);
  void UpdateGroup(Target& target, Group& group, AsymmetricAccessState state, bool preferred, std::uint8_t supported);
  bool VerifyPath(Target& target, Lu& lu, Path& path);
  void MovePath(Path& path, Group& to);
  void QueueVerification(Lu& lu);
  void MarkDirty(Path& path);
  void MarkGroupDirty(Group& group);
  [[nodiscard]] std::pair<AccessState, bool> Derive(const Path& path) const;
  void Flush();
  void EraseTarget(Target& target);
  Target* FindTarget(std::string_view name) const;
  Path* FindPath(PathKey key) const;
  [[nodiscard]] TimePoint Now() const { return executor_.clock().Now(); }

  // Constant after construction.
  Executor& executor_;
  const AluaOptions options_;
  const AluaCallbacks callbacks_;

  // Guarded by inbox_mu_.
  std::mutex inbox_mu_;
  std::vector<Event> inbox_;
  bool drain_posted_ = false;

  // Executor thread only.
  bool shutdown_ = false;
  bool flushing_ = false;
  bool kick_posted_ = false;
  std::uint64_t next_order_ = 0;
  std::uint64_t failure_seq_ = 0;
  std::map<std::string, std::unique_ptr<Target>, std::less<>> targets_;
  std::unordered_map<PathKey, std::unique_ptr<Path>> paths_;
  std::unordered_map<Op*, std::unique_ptr<Op>> ops_;
  std::vector<std::string> kick_list_;
  std::vector<PathKey> dirty_;
  std::vector<Note> notes_;
};

// --- Lifecycle and tasks.

AluaEngine::Impl::~Impl() { Shutdown(); }

void AluaEngine::Impl::Shutdown() {
  if (shutdown_) return;
  shutdown_ = true;
  for (auto& [name, target] : targets_) {
    if (target->poll_timer != 0) executor_.Cancel(target->poll_timer);
    if (target->retry_timer != 0) executor_.Cancel(target->retry_timer);
  }
  // A command still in the transport will finish later: it then frees itself instead of reaching the engine.
  for (auto& [raw, op] : ops_) {
    if (!op->finished) {
      op->orphaned = true;
      static_cast<void>(op.release());
    }
  }
  ops_.clear();
}

void AluaEngine::Impl::Post(std::move_only_function<void()> fn) {
  executor_.Post([weak = weak_from_this(), fn = std::move(fn)]() mutable {
    const auto self = weak.lock();
    if (self && !self->shutdown_) fn();
  });
}

TimerId AluaEngine::Impl::Schedule(Nanos delay, std::move_only_function<void()> fn) {
  return executor_.ScheduleAfter(delay, [weak = weak_from_this(), fn = std::move(fn)]() mutable {
    const auto self = weak.lock();
    if (self && !self->shutdown_) fn();
  });
}

void AluaEngine::Impl::Enqueue(const Event& event) {
  {
    std::lock_guard lock(inbox_mu_);
    inbox_.push_back(event);
    if (drain_posted_) return;
    drain_posted_ = true;
  }
  Post([this] { Drain(); });
}

void AluaEngine::Impl::Drain() {
  std::vector<Event> batch;
  {
    std::lock_guard lock(inbox_mu_);
    batch.swap(inbox_);
    drain_posted_ = false;
  }
  // A storm brings the same news on every LU: one rescan per nexus and one identity check per path is enough.
  std::unordered_set<const Nexus*> rescanned;
  std::unordered_set<PathKey> identified;
  for (const Event& event : batch) {
    switch (event.kind) {
      case Event::Kind::kSense:
        if (Path* path = FindPath(event.key)) ApplySense(*path, event.code, rescanned, identified);
        break;
      case Event::Kind::kRefresh:
        if (Path* path = FindPath(event.key)) {
          path->target->stpg_armed = true;
          RequestRefresh(*path->target, path);
        }
        break;
      case Event::Kind::kRefreshAll:
        for (auto& [name, target] : targets_) {
          target->stpg_armed = true;
          RequestRefresh(*target, nullptr);
        }
        break;
      default: break;
    }
  }
  // States named by sense reach on_state now, before the RTPG they asked for is even sent (the kick runs later).
  Flush();
}

void AluaEngine::Impl::ScheduleKick(Target& target) {
  if (!target.kick_queued) {
    target.kick_queued = true;
    kick_list_.push_back(target.name);
  }
  if (kick_posted_) return;
  kick_posted_ = true;
  Post([this] { Kick(); });
}

void AluaEngine::Impl::Kick() {
  kick_posted_ = false;
  const std::vector<std::string> names = std::exchange(kick_list_, {});
  for (const std::string& name : names) {
    if (Target* target = FindTarget(name)) {
      target->kick_queued = false;
      Dispatch(*target);
    }
  }
  Flush();
}

void AluaEngine::Impl::OnPollTimer(const std::string& name) {
  Target* target = FindTarget(name);
  if (target == nullptr) return;
  target->poll_timer = 0;
  // A group whose transition outlived the timeout is reported standby from now on.
  const TimePoint now = Now();
  for (auto& [id, group] : target->groups) {
    if (group.known && group.state == AsymmetricAccessState::kTransitioning && group.deadline &&
        now >= *group.deadline) {
      MarkGroupDirty(group);
    }
  }
  RequestRefresh(*target, nullptr);
  Flush();
}

void AluaEngine::Impl::OnRetryTimer(const std::string& name) {
  Target* target = FindTarget(name);
  if (target == nullptr) return;
  target->retry_timer = 0;
  for (auto& nexus : target->nexuses) nexus->suspect = false;
  ScheduleKick(*target);
}

// --- Public operations.

Result<void> AluaEngine::Impl::AddPath(AluaPath info) {
  if (info.nexus == nullptr) return MakeError(Errc::kInvalidArgument, "ALUA path without a nexus");
  if (info.target_name.empty()) return MakeError(Errc::kInvalidArgument, "ALUA path without a target name");
  if (paths_.contains(info.key)) {
    return MakeError(Errc::kAlreadyExists, "ALUA path key " + std::to_string(info.key) + " is in use");
  }
  auto [it, created] = targets_.try_emplace(info.target_name);
  if (created) {
    it->second = std::make_unique<Target>();
    Target& t = *it->second;
    t.name = info.target_name;
    t.transition_timeout = options_.default_transition_timeout;
    t.rtpg_length = std::max<std::uint32_t>(options_.initial_rtpg_length, sizeof(spec::RtpgExtendedHeader));
    t.poll_delay = options_.transition_poll_initial;
    t.retry_delay = options_.retry_initial;
  }
  Target& target = *it->second;
  Nexus* nexus = FindNexus(target, info.nexus);
  if (nexus == nullptr) {
    target.nexuses.push_back(std::make_unique<Nexus>());
    nexus = target.nexuses.back().get();
    nexus->transport = info.nexus;
  }
  ++nexus->luns[info.lun];
  Lu& lu = target.lus[info.lun];
  lu.lun = info.lun;
  Group& group = GroupOf(target, info.target_port_group);

  auto owned = std::make_unique<Path>();
  Path& path = *owned;
  path.key = info.key;
  path.target = &target;
  path.nexus = nexus;
  path.lu = &lu;
  path.group = &group;
  path.relative_port = info.relative_target_port;
  path.order = next_order_++;
  paths_.emplace(info.key, std::move(owned));
  lu.paths.emplace(info.key, &path);
  group.paths.emplace(info.key, &path);
  ++target.path_count;

  if (!target.alua) {
    path.verified = true;
    MarkDirty(path);
  } else if (lu.verification == Verification::kDone) {
    // The LU's last RTPG may already place this port; if not, the LU is read again.
    if (!VerifyPath(target, lu, path)) {
      lu.verification = Verification::kNeeded;
      QueueVerification(lu);
    }
  } else if (lu.verification == Verification::kNeeded) {
    nexus->verify_queue.push_back(info.lun);
  }
  // kInFlight: the answer on its way checks every path the LU has by then, this one included.
  ScheduleKick(target);
  return {};
}

Result<void> AluaEngine::Impl::RemovePath(PathKey key) {
  Path* path = FindPath(key);
  if (path == nullptr) return MakeError(Errc::kNotFound, "no ALUA path " + std::to_string(key));
  Target& target = *path->target;
  Nexus& nexus = *path->nexus;
  const std::uint64_t lun = path->lu->lun;
  path->group->paths.erase(key);
  path->lu->paths.erase(key);
  if (path->lu->paths.empty()) target.lus.erase(lun);
  if (--nexus.luns[lun] == 0) nexus.luns.erase(lun);
  // A busy nexus stays until its command is handled, so that a path added back meanwhile waits its turn.
  if (nexus.luns.empty() && !nexus.busy) {
    std::erase_if(target.nexuses, [&](const std::unique_ptr<Nexus>& n) { return n.get() == &nexus; });
  }
  paths_.erase(key);
  if (--target.path_count == 0) EraseTarget(target);
  return {};
}

std::optional<AluaPathStatus> AluaEngine::Impl::PathStatus(PathKey key) const {
  const Path* path = FindPath(key);
  if (path == nullptr) return std::nullopt;
  AluaPathStatus status;
  status.reported = path->published;
  status.state = path->published_state;
  status.preferred = path->published_preferred;
  status.target_port_group = path->group->id;
  status.verified = path->verified;
  return status;
}

std::optional<AluaTargetStatus> AluaEngine::Impl::TargetStatus(std::string_view name) const {
  const Target* target = FindTarget(name);
  if (target == nullptr) return std::nullopt;
  AluaTargetStatus status;
  status.alua = target->alua;
  status.extended_header = target->extended;
  status.cuts_extended_reply = target->cuts_extended;
  status.transition_timeout = target->transition_timeout;
  status.rtpg_length = target->rtpg_length;
  return status;
}

// --- Events.

void AluaEngine::Impl::ApplySense(Path& path, SenseCode code, std::unordered_set<const Nexus*>& rescanned,
                                  std::unordered_set<PathKey>& identified) {
  Target& target = *path.target;
  if (IsAluaUnitAttention(code)) {
    target.stpg_armed = true;
    RequestRefresh(target, &path);
    return;
  }
  if (code.key == SenseKey::kUnitAttention && code.asc == kAscTargetChanged) {
    if (code.ascq == kAscqReportedLunsChanged && rescanned.insert(path.nexus).second) {
      notes_.push_back(Note{Note::Kind::kRescan, path.key, {}, false, code});
    } else if (code.ascq == kAscqInquiryDataChanged && identified.insert(path.key).second) {
      notes_.push_back(Note{Note::Kind::kIdentity, path.key, {}, false, code});
    }
    return;
  }
  const std::optional<AsymmetricAccessState> state = StateFromNotReady(code);
  if (!state || !target.alua) return;
  // The target just said what this port's group is; the shared object learns it at once for every LU behind the
  // group, and an RTPG follows to learn the rest (another group has probably taken over).
  UpdateGroup(target, *path.group, *state, path.group->preferred, path.group->supported);
  path.from_sense = true;
  MarkDirty(path);
  // Armed now, so that the timeout is reported even if no RTPG gets through.
  UpdateTransitionPoll(target);
  target.stpg_armed = true;
  RequestRefresh(target, &path);
}

void AluaEngine::Impl::RequestRefresh(Target& target, const Path* hint) {
  if (!target.alua) return;
  if (target.refresh_op != nullptr) {
    // The answer in flight may predate what prompted this request: ask once more when it is in.
    target.follow_up = true;
    return;
  }
  if (!target.refresh_needed) {
    target.refresh_needed = true;
    if (hint != nullptr) target.hint = hint->key;
  }
  ScheduleKick(target);
}

// --- Scheduling.

void AluaEngine::Impl::Dispatch(Target& target) {
  if (!target.alua) return;
  for (auto& nexus : target.nexuses) {
    if (nexus->busy || nexus->suspect) continue;
    if (Lu* lu = PopVerification(target, *nexus)) {
      // Any RTPG reports every group, so a verification also answers a pending refresh.
      StartRtpg(target, *nexus, lu->lun, target.refresh_needed && target.refresh_op == nullptr);
    }
  }
  if (target.refresh_needed && target.refresh_op == nullptr) {
    if (auto pick = PickRefresh(target)) StartRtpg(target, *pick->first, pick->second, true);
  }
  MaybeActivate(target);
  const bool any_busy =
      std::any_of(target.nexuses.begin(), target.nexuses.end(), [](const auto& n) { return n->busy; });
  if (!any_busy && HasPendingWork(target)) ScheduleRetry(target);
}

AluaEngine::Impl::Lu* AluaEngine::Impl::PopVerification(Target& target, Nexus& nexus) {
  while (!nexus.verify_queue.empty()) {
    const std::uint64_t lun = nexus.verify_queue.front();
    nexus.verify_queue.pop_front();
    auto it = target.lus.find(lun);
    if (it != target.lus.end() && it->second.verification == Verification::kNeeded && nexus.luns.contains(lun)) {
      return &it->second;
    }
  }
  return nullptr;
}

std::optional<std::pair<AluaEngine::Impl::Nexus*, std::uint64_t>> AluaEngine::Impl::PickRefresh(Target& target) {
  auto usable = [](const Nexus& n) { return !n.busy && !n.suspect && !n.luns.empty(); };
  // Healthiest first: fewest failures in a row, then the failure longest ago, so that a retry round after every
  // nexus failed starts with the one that has had the longest to recover.
  auto rank = [](const Nexus& n) { return std::pair{n.failures, n.failures > 0 ? n.failed_at : 0}; };
  Nexus* best = nullptr;
  for (auto& nexus : target.nexuses) {
    if (usable(*nexus) && (best == nullptr || rank(*nexus) < rank(*best))) best = nexus.get();
  }
  if (best == nullptr) return std::nullopt;
  auto as_good = [&](const Nexus& n) { return usable(n) && rank(n) == rank(*best); };
  // The path that reported the event has had its unit attention consumed by its own I/O; any other (LU, nexus)
  // probably still holds one, which would cost an extra RTPG.
  if (target.hint) {
    const Path* path = FindPath(*target.hint);
    if (path != nullptr && path->target == &target && as_good(*path->nexus)) {
      return std::pair{path->nexus, path->lu->lun};
    }
  }
  if (target.last_good) {
    Nexus* nexus = FindNexus(target, target.last_good->first);
    if (nexus != nullptr && as_good(*nexus) && nexus->luns.contains(target.last_good->second)) {
      return std::pair{nexus, target.last_good->second};
    }
  }
  for (const auto& [lun, count] : best->luns) {
    auto it = target.lus.find(lun);
    if (it != target.lus.end() && it->second.verification == Verification::kDone) return std::pair{best, lun};
  }
  return std::pair{best, best->luns.begin()->first};
}

void AluaEngine::Impl::MaybeActivate(Target& target) {
  if (options_.mode != AluaMode::kExplicit || !target.alua || target.stpg_unsupported || !target.stpg_armed ||
      target.stpg_in_flight || target.refresh_needed || target.refresh_op != nullptr) {
    return;
  }
  auto live = [](const Path& p) { return p.verified && !p.nexus->suspect; };
  const Group* preferred = nullptr;
  const Path* first_live = nullptr;
  for (auto& [id, group] : target.groups) {
    if (group.paths.empty() || !group.known) continue;
    if (group.state == AsymmetricAccessState::kActiveOptimized ||
        group.state == AsymmetricAccessState::kTransitioning) {
      return;  // nothing to do, or the target is already moving
    }
    if (group.supported != 0 && (group.supported & spec::tpg_support::kActiveOptimized) == 0) continue;
    for (const auto& [key, path] : group.paths) {
      if (!live(*path)) continue;
      if (group.preferred && preferred == nullptr) preferred = &group;
      if (first_live == nullptr || path->order < first_live->order) first_live = path;
    }
  }
  const Group* chosen = preferred != nullptr ? preferred : (first_live != nullptr ? first_live->group : nullptr);
  if (chosen == nullptr) return;
  Path* via = nullptr;
  for (const auto& [key, path] : chosen->paths) {
    if (live(*path) && !path->nexus->busy && (via == nullptr || path->order < via->order)) via = path;
  }
  if (via == nullptr) return;  // its nexuses are busy; the next kick tries again
  target.stpg_armed = false;
  StartStpg(target, *via, chosen->id);
}

void AluaEngine::Impl::ScheduleRetry(Target& target) {
  if (target.retry_timer != 0) return;
  const Nanos delay = target.retry_delay;
  target.retry_delay = std::min(delay * 2, options_.retry_max);
  target.retry_timer = Schedule(delay, [this, name = target.name] { OnRetryTimer(name); });
}

void AluaEngine::Impl::UpdateTransitionPoll(Target& target) {
  const TimePoint now = Now();
  bool transitioning = false;
  std::optional<TimePoint> next_deadline;
  for (const auto& [id, group] : target.groups) {
    if (group.paths.empty()) continue;  // nobody waits on it
    // A group the target has never described leaves its paths unknown: keep asking, as for a transition.
    const bool unknown = !group.known && std::any_of(group.paths.begin(), group.paths.end(),
                                                     [](const auto& p) { return p.second->verified; });
    if (!unknown && (!group.known || group.state != AsymmetricAccessState::kTransitioning)) continue;
    transitioning = true;
    if (group.deadline && *group.deadline > now && (!next_deadline || *group.deadline < *next_deadline)) {
      next_deadline = group.deadline;
    }
  }
  if (!transitioning) {
    if (target.poll_timer != 0) executor_.Cancel(target.poll_timer);
    target.poll_timer = 0;
    target.poll_delay = options_.transition_poll_initial;
    return;
  }
  if (target.poll_timer != 0) return;
  Nanos delay = target.poll_delay;
  target.poll_delay = std::min(delay * 2, options_.transition_poll_max);
  // Wake at the deadline if it comes first, so that the timeout is reported when it happens.
  if (next_deadline) delay = std::min(delay, std::chrono::duration_cast<Nanos>(*next_deadline - now));
  target.poll_timer = Schedule(delay, [this, name = target.name] { OnPollTimer(name); });
}

bool AluaEngine::Impl::HasPendingWork(const Target& target) const {
  if (target.refresh_needed) return true;
  return std::any_of(target.lus.begin(), target.lus.end(),
                     [](const auto& lu) { return lu.second.verification == Verification::kNeeded; });
}

// --- Commands.

AluaEngine::Impl::Op& AluaEngine::Impl::NewOp(Target& target, Nexus& nexus, std::uint64_t lun, OpKind kind) {
  auto owned = std::make_unique<Op>();
  Op& op = *owned;
  op.impl = this;
  op.kind = kind;
  op.target = &target;
  op.transport = nexus.transport;
  op.lun = lun;
  auto lu = target.lus.find(lun);
  if (lu != target.lus.end()) {
    for (const auto& [key, path] : lu->second.paths) {
      if (path->nexus == &nexus) {
        op.via = key;
        break;
      }
    }
  }
  ops_.emplace(&op, std::move(owned));
  nexus.busy = true;
  return op;
}

void AluaEngine::Impl::StartRtpg(Target& target, Nexus& nexus, std::uint64_t lun, bool covers_refresh) {
  Op& op = NewOp(target, nexus, lun, OpKind::kRtpg);
  Lu& lu = target.lus.at(lun);
  if (lu.verification == Verification::kNeeded) {
    lu.verification = Verification::kInFlight;
    op.verify = true;
  }
  if (covers_refresh) {
    op.covers_refresh = true;
    target.refresh_op = &op;
    target.refresh_needed = false;
    target.hint.reset();
  }
  // A target known to cut its extended reply is asked length-only when the port lists matter (verification).
  const bool length_only = !target.extended || (op.verify && target.cuts_extended);
  op.format = length_only ? RtpgFormat::kLengthOnly : RtpgFormat::kExtended;
  op.allocation = target.rtpg_length;
  Submit(op);
}

void AluaEngine::Impl::StartStpg(Target& target, Path& via, std::uint16_t group) {
  Op& op = NewOp(target, *via.nexus, via.lu->lun, OpKind::kStpg);
  op.via = via.key;
  op.stpg_group = group;
  target.stpg_in_flight = true;
  Submit(op);
}

void AluaEngine::Impl::Submit(Op& op) {
  ScsiCommand& c = op.command;
  c.ResetAnswer();
  c.executor = &executor_;
  c.timeout = options_.command_timeout;
  c.OnFinish(&Impl::OnCommandFinished, &op);
  op.finished = false;
  if (op.kind == OpKind::kRtpg) {
    op.buffer.assign(op.allocation, std::byte{0});
    c.SetCdb(spec::ReportTargetPortGroupsCdb::Make(op.allocation, static_cast<std::uint8_t>(op.format)));
    c.direction = DataDirection::kFromDevice;
  } else {
    op.buffer.assign(sizeof(spec::StpgParameterListHeader) + sizeof(spec::SetTargetPortGroupDescriptor),
                     std::byte{0});
    wire::Store(std::span<std::byte>(op.buffer),
                spec::SetTargetPortGroupDescriptor::Make(op.stpg_group, AsymmetricAccessState::kActiveOptimized),
                sizeof(spec::StpgParameterListHeader));
    c.SetCdb(spec::SetTargetPortGroupsCdb::Make(static_cast<std::uint32_t>(op.buffer.size())));
    c.direction = DataDirection::kToDevice;
  }
  c.data = std::span<std::byte>(op.buffer);
  // The transport may finish the command inside this call; OnCommandFinished only posts, so nothing re-enters.
  op.transport->Submit(op.lun, c);
}

void AluaEngine::Impl::OnCommandFinished(ScsiCommand& /*command*/, void* arg) {
  Op* op = static_cast<Op*>(arg);
  op->finished = true;
  if (op->orphaned) {
    delete op;
    return;
  }
  Impl* impl = op->impl;
  impl->Post([impl, op] { impl->HandleCompletion(op); });
}

void AluaEngine::Impl::HandleCompletion(Op* raw) {
  auto it = ops_.find(raw);
  if (it == ops_.end()) return;
  Op& op = *it->second;
  Target* target = op.target;
  if (target == nullptr) {
    ops_.erase(it);
    return;
  }
  const bool resubmitted = op.kind == OpKind::kRtpg ? HandleRtpg(*target, op) : HandleStpg(*target, op);
  if (!resubmitted) {
    if (Nexus* nexus = FindNexus(*target, op.transport)) {
      nexus->busy = false;
      if (nexus->luns.empty()) {
        std::erase_if(target->nexuses, [&](const std::unique_ptr<Nexus>& n) { return n.get() == nexus; });
      }
    }
    if (target->refresh_op == &op) target->refresh_op = nullptr;
    ops_.erase(raw);
    ScheduleKick(*target);
  }
  Flush();
}

bool AluaEngine::Impl::HandleRtpg(Target& target, Op& op) {
  const ScsiCommand& c = op.command;
  if (c.delivery != Delivery::kDelivered) {
    // The nexus failed, not the target: the next attempt goes through another nexus of the same target.
    RtpgFailed(target, op);
    return false;
  }
  const auto status = static_cast<spec::Status>(c.status);
  if (status == spec::Status::kGood) {
    const std::span<const std::byte> received = c.received();
    const spec::RtpgReader reader(received);
    if (!reader.valid()) {
      RtpgFailed(target, op);
      return false;
    }
    const std::size_t announced = reader.announced_length();
    if (announced <= kMaxRtpgLength) {
      target.rtpg_length = std::max(target.rtpg_length, static_cast<std::uint32_t>(announced));
    }
    // Our buffer was full and the target has more: read it again at the length it announced.
    if (announced > op.allocation && received.size() >= op.allocation && announced <= kMaxRtpgLength &&
        op.reissues < kMaxReissues) {
      ++op.reissues;
      op.allocation = static_cast<std::uint32_t>(announced);
      Submit(op);
      return true;
    }
    const bool inconclusive = ApplyRtpg(target, op, received);
    if (inconclusive && op.format == RtpgFormat::kExtended && !op.length_only_retry) {
      // LIO cuts the last port descriptor of its extended reply; the length-only reply is whole.
      op.length_only_retry = true;
      op.format = RtpgFormat::kLengthOnly;
      Submit(op);
      return true;
    }
    RtpgSucceeded(target, op);
    return false;
  }
  if (status != spec::Status::kCheckCondition) {
    RtpgFailed(target, op);  // BUSY, TASK SET FULL, RESERVATION CONFLICT...: try again later
    return false;
  }
  const auto sense = spec::ParseSense(c.sense_bytes());
  if (!sense) {
    RtpgFailed(target, op);
    return false;
  }
  const SenseCode code = sense->code;
  switch (code.key) {
    case SenseKey::kUnitAttention:
      // 29/00 on a fresh nexus, 2A/06 after a change: the retry's answer is the news.
      ForwardUnitAttention(op, code);
      if (++op.unit_attentions <= options_.max_unit_attention_retries) {
        Submit(op);
        return true;
      }
      RtpgFailed(target, op);
      return false;
    case SenseKey::kIllegalRequest:
      if (code.asc == kAscLunNotSupported) {
        // The LU is gone from behind this nexus: its paths are the caller's to drop after a rescan.
        if (op.via && FindPath(*op.via) != nullptr) {
          notes_.push_back(Note{Note::Kind::kRescan, *op.via, {}, false, code});
        }
        RtpgFailed(target, op);
        return false;
      }
      if (op.format == RtpgFormat::kExtended) {
        target.extended = false;
        op.format = RtpgFormat::kLengthOnly;
        Submit(op);
        return true;
      }
      ApplyNoAlua(target);
      return false;
    case SenseKey::kNotReady:
      // Some targets cannot answer RTPG through a port that is transitioning (or standby...): the sense still
      // names that port's state, and another nexus may answer for the rest.
      if (const std::optional<AsymmetricAccessState> state = StateFromNotReady(code)) {
        if (const Path* path = op.via ? FindPath(*op.via) : nullptr; path != nullptr && path->target == &target) {
          UpdateGroup(target, *path->group, *state, path->group->preferred, path->group->supported);
        }
        UpdateTransitionPoll(target);
      }
      RtpgFailed(target, op);
      return false;
    default:
      RtpgFailed(target, op);
      return false;
  }
}

void AluaEngine::Impl::RtpgFailed(Target& target, Op& op) {
  // Whatever failed (the link, the port, the answer), the next attempt goes through another nexus of the target;
  // Dispatch backs off once every nexus has failed.
  if (Nexus* nexus = FindNexus(target, op.transport)) {
    nexus->suspect = true;
    ++nexus->failures;
    nexus->failed_at = ++failure_seq_;
  }
  if (op.verify) {
    auto it = target.lus.find(op.lun);
    if (it != target.lus.end() && it->second.verification == Verification::kInFlight) {
      it->second.verification = Verification::kNeeded;
      QueueVerification(it->second);
    }
  }
  if (op.covers_refresh) {
    target.refresh_op = nullptr;
    target.refresh_needed = true;  // the follow-up, if any, is merged into this retry
    target.follow_up = false;
  }
  UpdateTransitionPoll(target);
}

void AluaEngine::Impl::RtpgSucceeded(Target& target, Op& op) {
  target.retry_delay = options_.retry_initial;
  if (Nexus* nexus = FindNexus(target, op.transport)) {
    nexus->suspect = false;
    nexus->failures = 0;
  }
  target.last_good = std::pair{op.transport, op.lun};
  if (op.covers_refresh) {
    target.refresh_op = nullptr;
    if (target.follow_up) {
      target.follow_up = false;
      target.refresh_needed = true;
    }
  }
  UpdateTransitionPoll(target);
}

bool AluaEngine::Impl::ApplyRtpg(Target& target, Op& op, std::span<const std::byte> received) {
  spec::RtpgReader reader(received);
  if (reader.format() == RtpgFormat::kExtended) {
    const std::uint8_t seconds = reader.implicit_transition_time();
    target.transition_timeout =
        seconds != 0 ? Nanos(std::chrono::seconds(seconds)) : options_.default_transition_timeout;
  }
  std::map<std::uint16_t, std::uint16_t> membership;
  bool complete = true;
  while (const std::optional<spec::RtpgGroup> g = reader.Next()) {
    const std::uint16_t id = g->descriptor.target_port_group.value();
    UpdateGroup(target, GroupOf(target, id), g->descriptor.access_state(), g->descriptor.pref(),
                g->descriptor.supported);
    for (std::size_t i = 0; i < g->port_count(); ++i) membership.emplace(g->relative_port(i), id);
    if (g->truncated) complete = false;
  }
  if (reader.truncated()) complete = false;
  // Short of what we asked for, yet incomplete: the target cut its own reply (LIO 6.1 with the extended header).
  if (!complete && reader.format() == RtpgFormat::kExtended && received.size() < op.allocation) {
    target.cuts_extended = true;
  }
  auto it = target.lus.find(op.lun);
  if (it == target.lus.end()) return false;
  Lu& lu = it->second;
  // Verified paths only follow a port the LU now reports in another group; a reply missing their port (cut short)
  // proves nothing new, so it never sends a verified LU back for another read.
  for (const auto& [key, path] : lu.paths) {
    if (!path->verified) continue;
    auto port = membership.find(path->relative_port);
    if (port != membership.end() && port->second != path->group->id) {
      MovePath(*path, GroupOf(target, port->second));
      MarkDirty(*path);
    }
  }
  if (complete || !lu.membership_complete) {
    lu.membership = std::move(membership);
    lu.membership_complete = complete;
    lu.have_membership = true;
  }
  bool inconclusive = false;
  for (const auto& [key, path] : lu.paths) {
    if (!path->verified && !VerifyPath(target, lu, *path)) inconclusive = true;
  }
  if (inconclusive && (op.format == RtpgFormat::kLengthOnly || op.length_only_retry)) {
    // Nothing more can be learned: trust VPD 0x83 for the ports the reply did not reach.
    for (const auto& [key, path] : lu.paths) {
      if (!path->verified) {
        path->verified = true;
        MarkDirty(*path);
      }
    }
    inconclusive = false;
  }
  if (!inconclusive) lu.verification = Verification::kDone;
  return inconclusive;
}

void AluaEngine::Impl::ApplyNoAlua(Target& target) {
  // tgt and other TPGS=0 targets: every port is equally good, so every path is optimized.
  target.alua = false;
  target.refresh_needed = false;
  target.follow_up = false;
  target.hint.reset();
  if (target.poll_timer != 0) executor_.Cancel(target.poll_timer);
  target.poll_timer = 0;
  for (auto& [lun, lu] : target.lus) {
    lu.verification = Verification::kDone;
    for (const auto& [key, path] : lu.paths) {
      path->verified = true;
      MarkDirty(*path);
    }
  }
}

bool AluaEngine::Impl::HandleStpg(Target& target, Op& op) {
  const ScsiCommand& c = op.command;
  if (c.delivery != Delivery::kDelivered) {
    if (Nexus* nexus = FindNexus(target, op.transport)) {
      nexus->suspect = true;
      ++nexus->failures;
      nexus->failed_at = ++failure_seq_;
    }
    target.stpg_in_flight = false;
    target.stpg_armed = true;  // through another path of the group, if it has one
    ScheduleKick(target);
    return false;
  }
  if (c.status == static_cast<std::uint8_t>(spec::Status::kCheckCondition)) {
    const auto sense = spec::ParseSense(c.sense_bytes());
    if (sense && sense->code.key == SenseKey::kUnitAttention) {
      ForwardUnitAttention(op, sense->code);
      if (++op.unit_attentions <= options_.max_unit_attention_retries) {
        Submit(op);
        return true;
      }
    } else if (sense && sense->code.key == SenseKey::kIllegalRequest &&
               (sense->code.asc == kAscInvalidOpcode || sense->code.asc == kAscInvalidFieldInCdb)) {
      target.stpg_unsupported = true;  // implicit-only target: do not ask again
    }
  }
  target.stpg_in_flight = false;
  // Whatever the answer, only a fresh RTPG says where the target stands now.
  RequestRefresh(target, op.via ? FindPath(*op.via) : nullptr);
  return false;
}

void AluaEngine::Impl::ForwardUnitAttention(const Op& op, SenseCode code) {
  // 2A/06 and 2A/07 are the engine's own news; the command's retry reads the state they announce.
  if (code.asc == kAscParametersChanged &&
      (code.ascq == kAscqAccessStateChanged || code.ascq == kAscqImplicitTransitionFailed)) {
    return;
  }
  if (!op.via || FindPath(*op.via) == nullptr) return;
  Note::Kind kind = Note::Kind::kUnitAttention;
  if (code.asc == kAscTargetChanged && code.ascq == kAscqInquiryDataChanged) kind = Note::Kind::kIdentity;
  if (code.asc == kAscTargetChanged && code.ascq == kAscqReportedLunsChanged) kind = Note::Kind::kRescan;
  notes_.push_back(Note{kind, *op.via, {}, false, code});
}

// --- State.

AluaEngine::Impl::Group& AluaEngine::Impl::GroupOf(Target& target, std::uint16_t id) {
  Group& group = target.groups[id];
  group.id = id;
  return group;
}

AluaEngine::Impl::Nexus* AluaEngine::Impl::FindNexus(Target& target, ScsiTransport* transport) {
  for (auto& nexus : target.nexuses) {
    if (nexus->transport == transport) return nexus.get();
  }
  return nullptr;
}

void AluaEngine::Impl::UpdateGroup(Target& target, Group& group, AsymmetricAccessState state, bool preferred,
                                   std::uint8_t supported) {
  constexpr AsymmetricAccessState kTransitioning = AsymmetricAccessState::kTransitioning;
  if (state == kTransitioning) {
    // The clock starts when the transition is first seen; seeing it again does not restart it.
    if (!group.known || group.state != kTransitioning || !group.deadline) {
      group.deadline = Now() + target.transition_timeout;
    }
  } else {
    group.deadline.reset();
  }
  const bool changed = !group.known || group.state != state || group.preferred != preferred;
  group.known = true;
  group.state = state;
  group.preferred = preferred;
  group.supported = supported;
  if (changed) MarkGroupDirty(group);
}

bool AluaEngine::Impl::VerifyPath(Target& target, Lu& lu, Path& path) {
  if (!lu.have_membership) return false;
  auto it = lu.membership.find(path.relative_port);
  if (it != lu.membership.end()) {
    // The LU's own RTPG is the authority on where its port sits, over what VPD 0x83 claimed.
    if (it->second != path.group->id) MovePath(path, GroupOf(target, it->second));
  } else if (!lu.membership_complete) {
    return false;
  }
  // A whole reply that does not list the port leaves VPD 0x83's group standing.
  path.verified = true;
  MarkDirty(path);
  return true;
}

void AluaEngine::Impl::MovePath(Path& path, Group& to) {
  path.group->paths.erase(path.key);
  to.paths.emplace(path.key, &path);
  path.group = &to;
}

void AluaEngine::Impl::QueueVerification(Lu& lu) {
  for (const auto& [key, path] : lu.paths) {
    auto& queue = path->nexus->verify_queue;
    if (queue.empty() || queue.back() != lu.lun) queue.push_back(lu.lun);
  }
}

void AluaEngine::Impl::MarkDirty(Path& path) {
  if (path.dirty) return;
  path.dirty = true;
  dirty_.push_back(path.key);
}

void AluaEngine::Impl::MarkGroupDirty(Group& group) {
  for (const auto& [key, path] : group.paths) MarkDirty(*path);
}

std::pair<AccessState, bool> AluaEngine::Impl::Derive(const Path& path) const {
  if (!path.target->alua) return {AccessState::kOptimized, false};
  const Group& group = *path.group;
  if (!group.known) return {AccessState::kUnavailable, false};
  AccessState state = AccessState::kUnavailable;
  switch (group.state) {
    case AsymmetricAccessState::kActiveOptimized: state = AccessState::kOptimized; break;
    // Logical block dependent: some LBAs are optimized through this port and some are not, and the core routes
    // per path, not per LBA, so it counts as non-optimized (usable, behind any truly optimized path).
    case AsymmetricAccessState::kActiveNonOptimized:
    case AsymmetricAccessState::kLogicalBlockDependent: state = AccessState::kNonOptimized; break;
    case AsymmetricAccessState::kStandby: state = AccessState::kStandby; break;
    // Offline needs an administrator, unavailable the target; to the core both mean "not now".
    case AsymmetricAccessState::kUnavailable:
    case AsymmetricAccessState::kOffline: state = AccessState::kUnavailable; break;
    case AsymmetricAccessState::kTransitioning:
      // Past the transition timeout the path is standby, so the core stops holding I/O for it.
      state = group.deadline && Now() >= *group.deadline ? AccessState::kStandby : AccessState::kTransitioning;
      break;
    default: state = AccessState::kUnavailable; break;  // reserved values
  }
  return {state, group.preferred};
}

void AluaEngine::Impl::Flush() {
  if (flushing_) return;
  flushing_ = true;
  while (!shutdown_ && (!dirty_.empty() || !notes_.empty())) {
    std::vector<Note> batch = std::exchange(notes_, {});
    for (PathKey key : std::exchange(dirty_, {})) {
      Path* path = FindPath(key);
      if (path == nullptr || !path->dirty) continue;
      path->dirty = false;
      if (!path->verified && !path->from_sense) continue;
      const auto [state, preferred] = Derive(*path);
      if (path->published && path->published_state == state && path->published_preferred == preferred) continue;
      path->published = true;
      path->published_state = state;
      path->published_preferred = preferred;
      batch.push_back(Note{Note::Kind::kState, key, state, preferred, {}});
    }
    // Callbacks may add or remove paths (or destroy the engine): every note is checked against the present.
    for (const Note& note : batch) {
      if (shutdown_) break;
      if (FindPath(note.key) == nullptr) continue;
      switch (note.kind) {
        case Note::Kind::kState: callbacks_.on_state(note.key, note.state, note.preferred); break;
        case Note::Kind::kRescan:
          if (callbacks_.on_rescan) callbacks_.on_rescan(note.key);
          break;
        case Note::Kind::kIdentity:
          if (callbacks_.on_identity) callbacks_.on_identity(note.key);
          break;
        case Note::Kind::kUnitAttention:
          if (callbacks_.on_unit_attention) callbacks_.on_unit_attention(note.key, note.code);
          break;
        default: break;
      }
    }
  }
  flushing_ = false;
}

void AluaEngine::Impl::EraseTarget(Target& target) {
  if (target.poll_timer != 0) executor_.Cancel(target.poll_timer);
  if (target.retry_timer != 0) executor_.Cancel(target.retry_timer);
  for (auto& [raw, op] : ops_) {
    if (op->target == &target) op->target = nullptr;
  }
  const std::string name = target.name;
  std::erase(kick_list_, name);
  targets_.erase(name);
}

AluaEngine::Impl::Target* AluaEngine::Impl::FindTarget(std::string_view name) const {
  auto it = targets_.find(name);
  return it == targets_.end() ? nullptr : it->second.get();
}

AluaEngine::Impl::Path* AluaEngine::Impl::FindPath(PathKey key) const {
  auto it = paths_.find(key);
  return it == paths_.end() ? nullptr : it->second.get();
}

// --- AluaEngine.

Result<std::unique_ptr<AluaEngine>> AluaEngine::Create(Executor& executor, AluaOptions options,
                                                       AluaCallbacks callbacks) {
  if (!callbacks.on_state) return MakeError(Errc::kInvalidArgument, "AluaEngine needs an on_state callback");
  if (options.initial_rtpg_length < sizeof(spec::RtpgExtendedHeader)) {
    return MakeError(Errc::kInvalidArgument, "initial_rtpg_length must cover the 8-byte extended header");
  }
  if (options.transition_poll_initial <= Nanos(0) || options.retry_initial <= Nanos(0) ||
      options.transition_poll_max < options.transition_poll_initial || options.retry_max < options.retry_initial) {
    return MakeError(Errc::kInvalidArgument, "ALUA poll and retry intervals must be positive and capped above");
  }
  if (options.default_transition_timeout <= Nanos(0) || options.max_unit_attention_retries < 0) {
    return MakeError(Errc::kInvalidArgument, "ALUA transition timeout must be positive");
  }
  auto impl = std::make_shared<Impl>(executor, std::move(options), std::move(callbacks));
  return std::unique_ptr<AluaEngine>(new AluaEngine(std::move(impl)));
}

AluaEngine::AluaEngine(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

// A task of the engine's that is running (a callback destroying the engine) keeps Impl alive until it returns.
AluaEngine::~AluaEngine() { impl_->Shutdown(); }

Result<void> AluaEngine::AddPath(AluaPath path) { return impl_->AddPath(std::move(path)); }
Result<void> AluaEngine::RemovePath(PathKey key) { return impl_->RemovePath(key); }

void AluaEngine::OnSense(PathKey key, spec::SenseCode code) {
  if (!Matters(code)) return;
  impl_->Enqueue(Impl::Event{Impl::Event::Kind::kSense, key, code});
}

void AluaEngine::Refresh(PathKey key) { impl_->Enqueue(Impl::Event{Impl::Event::Kind::kRefresh, key, {}}); }
void AluaEngine::RefreshAll() { impl_->Enqueue(Impl::Event{Impl::Event::Kind::kRefreshAll, 0, {}}); }

std::optional<AluaPathStatus> AluaEngine::PathStatus(PathKey key) const { return impl_->PathStatus(key); }
std::optional<AluaTargetStatus> AluaEngine::TargetStatus(std::string_view target_name) const {
  return impl_->TargetStatus(target_name);
}

}  // namespace mpath::scsi
