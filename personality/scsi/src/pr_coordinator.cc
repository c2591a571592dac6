// The persistent reservation coordinator. Why it is shaped this way:
// - SPC-5 §5.14.7: a registration belongs to one I_T nexus, so every path needs the key (dm_pr_register's loop), or
//   one ALL_TG_PT registration covers every target port of one initiator port. A path from another initiator port
//   (another HBA) is never covered by it, which is why coverage is checked in READ FULL STATUS, not assumed.
// - REGISTER AND IGNORE EXISTING KEY is used for every registration: it succeeds whatever key the nexus holds (a key
//   left from before a restart, or none), so registering again is always safe.
// - §5.14.11.2.4: a PREEMPT naming our own key keeps the issuer's registration, takes the reservation and removes
//   every other registration of that key. That is how a reservation leaves a dead holder, and why our other paths
//   are held and registered again around it (Marzinski's list, multipath-tools' mpathpersist).
// - Unit attentions 2A/03 and 2A/05 also follow our own preempts and clears, so a takeover is believed only when READ
//   KEYS no longer lists our key. After that nothing is registered again: fighting another host's preempt would
//   undo a cluster's fencing.
// - Operations run one at a time from a queue: registration, a reservation move and a takeover check each take
//   several commands, and interleaving them would let one undo another's registrations.
#include "mpath/scsi/pr_coordinator.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <mutex>
#include <utility>

#include "mpath/proto/delivery.h"
#include "mpath/scsi/raw_status.h"
#include "mpath/scsi/spec/sense.h"

namespace mpath::scsi {
namespace {

namespace asc = spec::asc;
using spec::PrInServiceAction;
using spec::PrOutServiceAction;
using spec::PrType;
using spec::SenseKey;

constexpr auto kGood = static_cast<std::uint8_t>(spec::Status::kGood);
constexpr auto kCheckCondition = static_cast<std::uint8_t>(spec::Status::kCheckCondition);
constexpr auto kConflict = static_cast<std::uint8_t>(spec::Status::kReservationConflict);
constexpr std::uint16_t kMaxAllocation = 0xFFFF;

std::string_view InActionName(PrInServiceAction action) {
  switch (action) {
    case PrInServiceAction::kReadKeys: return "READ KEYS";
    case PrInServiceAction::kReadReservation: return "READ RESERVATION";
    case PrInServiceAction::kReportCapabilities: return "REPORT CAPABILITIES";
    case PrInServiceAction::kReadFullStatus: return "READ FULL STATUS";
    default: return "?";
  }
}

std::string_view OutActionName(PrOutServiceAction action) {
  switch (action) {
    case PrOutServiceAction::kRegister: return "REGISTER";
    case PrOutServiceAction::kReserve: return "RESERVE";
    case PrOutServiceAction::kRelease: return "RELEASE";
    case PrOutServiceAction::kClear: return "CLEAR";
    case PrOutServiceAction::kPreempt: return "PREEMPT";
    case PrOutServiceAction::kPreemptAndAbort: return "PREEMPT AND ABORT";
    case PrOutServiceAction::kRegisterAndIgnoreExistingKey: return "REGISTER AND IGNORE EXISTING KEY";
    case PrOutServiceAction::kRegisterAndMove: return "REGISTER AND MOVE";
    default: return "?";
  }
}

// One PERSISTENT RESERVE command to send.
struct PrCommand {
  bool out = false;
  PrInServiceAction in_action = PrInServiceAction::kReadKeys;
  std::uint16_t allocation = 0;
  PrOutServiceAction out_action = PrOutServiceAction::kRegister;
  PrType type = PrType::kWriteExclusive;
  std::uint64_t key = 0;
  std::uint64_t service_action_key = 0;
  bool all_tg_pt = false;
  bool aptpl = false;

  static PrCommand In(PrInServiceAction action, std::uint16_t allocation) {
    PrCommand c;
    c.in_action = action;
    c.allocation = allocation;
    return c;
  }
  static PrCommand Out(PrOutServiceAction action, std::uint64_t key, std::uint64_t service_action_key,
                       PrType type = PrType::kWriteExclusive) {
    PrCommand c;
    c.out = true;
    c.out_action = action;
    c.key = key;
    c.service_action_key = service_action_key;
    c.type = type;
    return c;
  }
  [[nodiscard]] std::string Name() const {
    return out ? fmt::format("PERSISTENT RESERVE OUT {}", OutActionName(out_action))
               : fmt::format("PERSISTENT RESERVE IN {}", InActionName(in_action));
  }
};

// What came back for one command (after its unit attentions were retried away).
struct Reply {
  PrCommand command;
  PrPathKey path = 0;
  bool no_path = false;  // there was no live path to send it on
  Delivery delivery = Delivery::kDelivered;
  std::uint8_t status = kGood;
  std::uint8_t sense_length = 0;
  std::array<std::uint8_t, kMaxSenseLength> sense{};
  RawStatus raw;                // EncodeRawStatus of the answer
  std::vector<std::byte> data;  // the data-in bytes that arrived

  [[nodiscard]] bool delivered() const { return !no_path && delivery == Delivery::kDelivered; }
  [[nodiscard]] bool good() const { return delivered() && status == kGood; }
  [[nodiscard]] std::optional<spec::SenseCode> SenseCode() const {
    if (!delivered() || status != kCheckCondition) return std::nullopt;
    auto parsed = spec::ParseSense(std::span<const std::uint8_t>(sense.data(), sense_length));
    if (!parsed) return std::nullopt;
    return parsed->code;
  }
  [[nodiscard]] bool HasSenseKey(SenseKey key) const {
    std::optional<spec::SenseCode> code = SenseCode();
    return code && code->key == key;
  }
  // The target cannot have executed it, so another path may: the link was down, or the port was not ready
  // (standby, transitioning...). A timeout may have executed and is not in this set.
  [[nodiscard]] bool NotExecuted() const {
    return !no_path && (delivery == Delivery::kLinkDown || HasSenseKey(SenseKey::kNotReady));
  }
};

std::string PathText(const Reply& r) { return fmt::format("{} on path {}", r.command.Name(), r.path); }

PrError ErrorOf(const Reply& r) {
  PrError e;
  if (r.no_path) {
    e.code = Errc::kNoPath;
    e.message = fmt::format("{}: no live path to send it on", r.command.Name());
    return e;
  }
  e.path = r.path;
  e.raw = r.raw;
  e.delivery = r.delivery;
  e.status = r.status;
  e.sense_length = r.sense_length;
  e.sense_bytes = r.sense;
  if (r.delivery != Delivery::kDelivered) {
    switch (r.delivery) {
      case Delivery::kTimedOut: e.code = Errc::kTimedOut; break;
      case Delivery::kAborted: e.code = Errc::kAborted; break;
      case Delivery::kLinkDown:
      default: e.code = Errc::kPathError; break;
    }
    e.message = fmt::format("{}: not delivered ({})", PathText(r), proto::DeliveryName(r.delivery));
    return e;
  }
  switch (static_cast<spec::Status>(r.status)) {
    case spec::Status::kReservationConflict:
      e.code = Errc::kReservationConflict;
      e.message = fmt::format("{}: RESERVATION CONFLICT", PathText(r));
      return e;
    case spec::Status::kBusy:
    case spec::Status::kTaskSetFull:
      e.code = Errc::kBusy;
      e.message = fmt::format("{}: status {:#04x}", PathText(r), r.status);
      return e;
    case spec::Status::kCheckCondition: break;
    default:
      e.code = Errc::kTargetError;
      e.message = fmt::format("{}: status {:#04x}", PathText(r), r.status);
      return e;
  }
  auto parsed = spec::ParseSense(std::span<const std::uint8_t>(r.sense.data(), r.sense_length));
  if (!parsed) {
    e.code = Errc::kTargetError;
    e.message = fmt::format("{}: CHECK CONDITION with unreadable sense ({}, {} bytes)", PathText(r),
                            spec::SenseParseErrorName(parsed.error()), r.sense_length);
    return e;
  }
  e.sense = parsed->code;
  switch (parsed->code.key) {
    case SenseKey::kIllegalRequest:
      e.code = parsed->code == asc::kInvalidCommandOperationCode ? Errc::kUnsupported : Errc::kInvalidArgument;
      break;
    case SenseKey::kNotReady: e.code = Errc::kPathError; break;
    case SenseKey::kUnitAttention: e.code = Errc::kBusy; break;  // still there after every retry
    case SenseKey::kAbortedCommand: e.code = Errc::kAborted; break;
    default: e.code = Errc::kTargetError; break;
  }
  e.message = fmt::format("{}: CHECK CONDITION, {} {:02X}/{:02X}", PathText(r), SenseKeyName(parsed->code.key),
                          parsed->code.asc, parsed->code.ascq);
  return e;
}

PrError Malformed(const Reply& r, std::string_view detail) {
  PrError e = ErrorOf(r);
  e.code = Errc::kTargetError;
  e.message = fmt::format("{}: malformed parameter data: {}", PathText(r), detail);
  return e;
}

PrError LocalError(Errc code, std::string message) {
  PrError e;
  e.code = code;
  e.message = std::move(message);
  return e;
}

// --- PERSISTENT RESERVE IN answers, checked beyond what spec/pr.h's parsers check: a target whose lengths do not
// add up gets a named error rather than a partial answer taken as whole.

PrResult<spec::PrKeyList> ParseKeys(const Reply& r) {
  std::optional<spec::PrKeyList> list = spec::ParseReadKeys(r.data);
  if (!list) return std::unexpected(Malformed(r, fmt::format("{} bytes, fewer than its 8-byte header", r.data.size())));
  if (list->additional_length % 8 != 0) {
    return std::unexpected(
        Malformed(r, fmt::format("ADDITIONAL LENGTH {} is not a multiple of 8", list->additional_length)));
  }
  if (!list->complete()) {
    return std::unexpected(
        Malformed(r, fmt::format("ADDITIONAL LENGTH {} but {} bytes of keys arrived", list->additional_length,
                                 r.data.size() - sizeof(spec::PrInHeader))));
  }
  return *std::move(list);
}

PrResult<spec::PrReservationReport> ParseReservation(const Reply& r) {
  std::optional<spec::PrInHeader> header = wire::Load<spec::PrInHeader>(r.data);
  if (!header)
    return std::unexpected(Malformed(r, fmt::format("{} bytes, fewer than its 8-byte header", r.data.size())));
  const std::uint32_t length = header->additional_length.value();
  if (length != 0 && length < sizeof(spec::PrReservationDescriptor)) {
    return std::unexpected(Malformed(r, fmt::format("ADDITIONAL LENGTH {} is neither 0 nor 16", length)));
  }
  std::optional<spec::PrReservationReport> report = spec::ParseReadReservation(r.data);
  if (!report) {
    return std::unexpected(
        Malformed(r, fmt::format("a reservation is announced but only {} bytes arrived", r.data.size())));
  }
  if (report->reservation) {
    if (report->reservation->scope != static_cast<std::uint8_t>(spec::PrScope::kLogicalUnit)) {
      return std::unexpected(Malformed(r, fmt::format("SCOPE {:#x} is not LU_SCOPE", report->reservation->scope)));
    }
    if (!spec::ToPrType(report->reservation->type)) {
      return std::unexpected(
          Malformed(r, fmt::format("TYPE {:#x} is not a reservation type", report->reservation->type)));
    }
  }
  return *report;
}

PrResult<spec::PrReportCapabilitiesData> ParseCapabilities(const Reply& r) {
  std::optional<spec::PrReportCapabilitiesData> data = wire::Load<spec::PrReportCapabilitiesData>(r.data);
  if (!data) return std::unexpected(Malformed(r, fmt::format("{} bytes, fewer than 8", r.data.size())));
  if (data->length.value() < sizeof(spec::PrReportCapabilitiesData)) {
    return std::unexpected(Malformed(r, fmt::format("LENGTH {} is under 8", data->length.value())));
  }
  return *data;
}

PrResult<spec::PrFullStatus> ParseFullStatus(const Reply& r) {
  std::optional<spec::PrFullStatus> status = spec::ParseReadFullStatus(r.data);
  if (!status)
    return std::unexpected(Malformed(r, fmt::format("{} bytes, fewer than its 8-byte header", r.data.size())));
  if (!status->complete()) {
    return std::unexpected(Malformed(r, fmt::format("ADDITIONAL LENGTH {} but the descriptors end after {} bytes",
                                                    status->additional_length, status->parsed_length)));
  }
  return *std::move(status);
}

// When a PR IN answer was cut by our allocation length, the length to ask again with.
std::optional<std::uint16_t> LongerAllocation(const Reply& r) {
  if (!r.good() || r.command.out || r.command.in_action == PrInServiceAction::kReportCapabilities) return std::nullopt;
  std::optional<spec::PrInHeader> header = wire::Load<spec::PrInHeader>(r.data);
  if (!header) return std::nullopt;
  const std::size_t wanted = sizeof(spec::PrInHeader) + std::size_t{header->additional_length.value()};
  // A target that sent less than we asked for has said all it will: the parser judges it.
  if (wanted <= r.data.size() || r.data.size() < r.command.allocation || r.command.allocation >= kMaxAllocation) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(std::min<std::size_t>(wanted, kMaxAllocation));
}

bool Contains(const std::vector<std::uint64_t>& keys, std::uint64_t key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

}  // namespace

std::string_view PrStateName(PrState state) {
  switch (state) {
    case PrState::kUnregistered: return "unregistered";
    case PrState::kRegistered: return "registered";
    case PrState::kPreempted: return "preempted";
    default: return "?";
  }
}

Error PrError::ToError() const { return Error(code, message, raw); }

std::string PrError::ToString() const { return fmt::format("{}: {}", ErrcName(code), message); }

// Everything the coordinator knows and does, confined to the executor's thread except `published_`.
class PrCoordinator::Core : public std::enable_shared_from_this<Core> {
 public:
  using ReplyFn = std::move_only_function<void(Reply)>;
  using Then = std::move_only_function<void(PrResult<>)>;

  Core(Executor& executor, PrCallbacks callbacks, PrCoordinatorOptions options)
      : executor_(executor), callbacks_(std::move(callbacks)), options_(options) {}

  [[nodiscard]] Executor& executor() const { return executor_; }

  // --- Entry points (on the executor).

  void AddPath(PrPathKey key, ScsiTransport& transport, std::uint64_t lun, PrNexusInfo nexus) {
    if (Find(key) != nullptr) {
      NotifyRegisterFailed(key, LocalError(Errc::kAlreadyExists, fmt::format("path {} was already added", key)));
      return;
    }
    auto rec = std::make_unique<PathRec>();
    rec->key = key;
    rec->transport = &transport;
    rec->lun = lun;
    rec->nexus = std::move(nexus);
    paths_.push_back(std::move(rec));
    Admit(key);
  }

  void RemovePath(PrPathKey key, std::move_only_function<void()> released) {
    PathRec* rec = Find(key);
    if (rec == nullptr) {
      if (released) released();
      return;
    }
    rec->removed = true;
    rec->on_released = std::move(released);
    LosePath(*rec);
    ReleaseIfIdle(*rec);
  }

  void PathFailed(PrPathKey key) {
    if (PathRec* rec = Find(key)) LosePath(*rec);
  }

  void PathRestored(PrPathKey key) {
    PathRec* rec = Find(key);
    if (rec == nullptr || (rec->live && rec->ready)) return;
    rec->live = true;
    Admit(key);
  }

  void OnSense(PrPathKey path, spec::SenseCode code) {
    if (state_ != PrState::kRegistered) return;
    if (code == asc::kReservationsPreempted || code == asc::kRegistrationsPreempted) {
      QueueCheck(path, code);
    } else if (code == asc::kReservationsReleased) {
      QueueRefresh();
    }
  }

  void OnReservationConflict(PrPathKey path) {
    if (state_ == PrState::kRegistered) QueueCheck(path, std::nullopt);
  }

  void Register(std::uint64_t key, PrRegisterOptions options, PrCallback<> done) {
    Enqueue([this, key, options, done = std::move(done)]() mutable { StartRegister(key, options, std::move(done)); });
  }

  void Unregister(PrCallback<> done) {
    Enqueue([this, done = std::move(done)]() mutable { StartUnregister(std::move(done)); });
  }

  void Reserve(PrType type, PrCallback<> done) {
    Enqueue([this, type, done = std::move(done)]() mutable { StartReserve(type, std::move(done)); });
  }

  void Release(PrType type, PrCallback<> done) {
    Enqueue([this, type, done = std::move(done)]() mutable { StartRelease(type, std::move(done)); });
  }

  void Preempt(std::uint64_t victim, PrType type, PrPreemptMode mode, PrCallback<> done) {
    Enqueue([this, victim, type, mode, done = std::move(done)]() mutable {
      StartPreempt(victim, type, mode, std::move(done));
    });
  }

  void Clear(PrCallback<> done) {
    Enqueue([this, done = std::move(done)]() mutable { StartClear(std::move(done)); });
  }

  template <typename T, typename Parse>
  void Read(PrInServiceAction action, Parse parse, PrCallback<T> done) {
    Enqueue([this, action, parse, done = std::move(done)]() mutable {
      ReadIn(LiveKeys(std::nullopt, false), action, [this, parse, done = std::move(done)](Reply r) mutable {
        if (!r.good()) {
          FinishOp(done, PrResult<T>(std::unexpected(ErrorOf(r))));
          return;
        }
        FinishOp(done, parse(r));
      });
    });
  }

  // Copies what Snapshot() and state() report; called after every piece of work on the executor.
  void Publish() {
    PrSnapshot s;
    s.state = state_;
    s.key = key_;
    s.all_target_ports = all_target_ports_;
    s.reservation = reservation_;
    s.holder = holder_;
    s.holder_lost = holder_lost_;
    s.preemption = preemption_;
    for (const auto& rec : paths_) {
      if (!rec->removed) s.paths.push_back(PrPathStatus{rec->key, rec->live, rec->registered, rec->ready});
    }
    std::lock_guard lock(mu_);
    published_ = std::move(s);
  }

  [[nodiscard]] PrSnapshot Snapshot() const {
    std::lock_guard lock(mu_);
    return published_;
  }

 private:
  struct PathRec {
    PrPathKey key = 0;
    ScsiTransport* transport = nullptr;
    std::uint64_t lun = 0;
    PrNexusInfo nexus;
    bool live = true;
    bool registered = false;
    bool all_tg_pt = false;  // covered by the ALL_TG_PT registration of nexus.initiator_port
    bool ready = false;
    bool removed = false;    // kept only until its commands in flight finish
    int in_flight = 0;
    std::move_only_function<void()> on_released;
  };

  // One command in flight. Owned by the transport's completion from Submit to the posted completion task.
  struct Exchange {
    std::weak_ptr<Core> core;
    Executor* executor = nullptr;
    PathRec* rec = nullptr;  // stays in paths_ while this is in flight (ReleaseIfIdle waits for it)
    PrPathKey path = 0;
    ScsiTransport* transport = nullptr;
    std::uint64_t lun = 0;
    PrCommand request;
    ScsiCommand command;
    std::vector<std::byte> buffer;
    std::uint32_t unit_attentions_left = 0;
    ReplyFn done;
  };

  struct RegisterContext {
    std::uint64_t key = 0;
    PrRegisterOptions options;
    PrCallback<> done;
    std::vector<PrPathKey> live;        // the live paths when the operation started
    std::vector<PrPathKey> registered;  // by this operation, in order
    bool all_target_ports = false;
  };
  using RegisterContextPtr = std::shared_ptr<RegisterContext>;

  // --- Paths.

  [[nodiscard]] PathRec* Find(PrPathKey key) const {
    for (const auto& rec : paths_) {
      if (rec->key == key && !rec->removed) return rec.get();
    }
    return nullptr;
  }
  [[nodiscard]] bool IsLive(PrPathKey key) const {
    PathRec* rec = Find(key);
    return rec != nullptr && rec->live;
  }

  // Live paths, `first` leading, then ready ones before the rest; only registered ones when asked.
  [[nodiscard]] std::vector<PrPathKey> LiveKeys(std::optional<PrPathKey> first, bool registered_only) const {
    std::vector<PrPathKey> out;
    auto wanted = [&](const PathRec& rec) { return rec.live && !rec.removed && (!registered_only || rec.registered); };
    if (first) {
      if (PathRec* rec = Find(*first); rec != nullptr && wanted(*rec)) out.push_back(*first);
    }
    for (bool ready : {true, false}) {
      for (const auto& rec : paths_) {
        if (wanted(*rec) && rec->ready == ready && std::find(out.begin(), out.end(), rec->key) == out.end()) {
          out.push_back(rec->key);
        }
      }
    }
    return out;
  }

  // Whether one ALL_TG_PT registration covers both paths, so that a preempt from one leaves the other registered.
  static bool ShareRegistration(const PathRec& a, const PathRec& b) {
    return a.all_tg_pt && b.all_tg_pt && !a.nexus.initiator_port.empty() &&
           a.nexus.initiator_port == b.nexus.initiator_port;
  }

  // A new or returning path: ready now, or registered first.
  void Admit(PrPathKey key) {
    if (state_ == PrState::kRegistered || registering_) {
      Enqueue([this, key] { RegisterLatePath(key); });
    } else if (PathRec* rec = Find(key)) {
      MarkReady(*rec);
    }
  }

  void LosePath(PathRec& rec) {
    rec.live = false;
    rec.ready = false;
    if (state_ == PrState::kRegistered && reservation_ && !spec::IsAllRegistrants(*reservation_) && holder_ &&
        *holder_ == rec.key) {
      holder_lost_ = true;
      QueueMove();
    }
  }

  // Forgets a removed path once no command of ours is in flight on it. `rec` may be gone after this.
  void ReleaseIfIdle(PathRec& rec) {
    if (!rec.removed || rec.in_flight > 0) return;
    auto it = std::find_if(paths_.begin(), paths_.end(), [&](const auto& p) { return p.get() == &rec; });
    if (it == paths_.end()) return;
    std::move_only_function<void()> released = std::move((*it)->on_released);
    paths_.erase(it);
    if (released) released();
  }

  void MarkReady(PathRec& rec) {
    if (rec.ready || !rec.live) return;
    rec.ready = true;
    Publish();
    if (callbacks_.on_path_ready) callbacks_.on_path_ready(rec.key);
  }

  void Hold(PathRec& rec) {
    if (!rec.ready) return;
    rec.ready = false;
    Publish();
    if (callbacks_.on_path_hold) callbacks_.on_path_hold(rec.key);
  }

  void NotifyRegisterFailed(PrPathKey key, const PrError& error) {
    Publish();
    if (callbacks_.on_path_register_failed) callbacks_.on_path_register_failed(key, error);
  }

  // --- The operation queue.

  void Enqueue(Task start) {
    ops_.push_back(std::move(start));
    StartNext();
  }

  void StartNext() {
    if (op_running_ || ops_.empty()) return;
    op_running_ = true;
    Task start = std::move(ops_.front());
    ops_.pop_front();
    start();
  }

  // The next operation starts from a fresh task, so a chain of operations that finish at once does not nest.
  void EndOp() {
    op_running_ = false;
    Publish();
    executor_.Post([weak = weak_from_this()] {
      if (std::shared_ptr<Core> core = weak.lock()) {
        core->StartNext();
        core->Publish();
      }
    });
  }

  template <typename T>
  void FinishOp(PrCallback<T>& done, PrResult<T> result) {
    Publish();
    if (done) done(std::move(result));
    EndOp();
  }

  // --- Commands.

  void Issue(PathRec& rec, const PrCommand& request, ReplyFn done) {
    auto ex = std::make_unique<Exchange>();
    ex->core = weak_from_this();
    ex->executor = &executor_;
    ex->rec = &rec;
    ex->path = rec.key;
    ex->transport = rec.transport;
    ex->lun = rec.lun;
    ex->request = request;
    ex->unit_attentions_left = options_.unit_attention_retries;
    ex->done = std::move(done);
    ScsiCommand& c = ex->command;
    if (request.out) {
      auto list = spec::PrOutParameterList::Make(request.key, request.service_action_key);
      list.set_all_tg_pt(request.all_tg_pt);
      list.set_aptpl(request.aptpl);
      c.SetCdb(spec::PersistentReserveOutCdb::Make(request.out_action, sizeof(list), request.type));
      ex->buffer.resize(sizeof(list));
      std::memcpy(ex->buffer.data(), &list, sizeof(list));
      c.direction = DataDirection::kToDevice;
    } else {
      c.SetCdb(spec::PersistentReserveInCdb::Make(request.in_action, request.allocation));
      ex->buffer.assign(request.allocation, std::byte{0});
      c.direction = DataDirection::kFromDevice;
    }
    c.data = ex->buffer;
    c.timeout = options_.command_timeout;
    c.executor = &executor_;
    c.OnFinish(&Core::Finished, ex.get());
    Submit(rec, std::move(ex));
  }

  static void Submit(PathRec& rec, std::unique_ptr<Exchange> ex) {
    ++rec.in_flight;
    Exchange* raw = ex.release();  // the completion takes it back
    raw->transport->Submit(raw->lun, raw->command);
  }

  // May run on any thread, inside Submit or later: the answer is handled in a task of its own.
  static void Finished(ScsiCommand&, void* arg) {
    auto* ex = static_cast<Exchange*>(arg);
    Executor* executor = ex->executor;
    executor->Post([owned = std::unique_ptr<Exchange>(ex)]() mutable {
      if (std::shared_ptr<Core> core = owned->core.lock()) {
        core->Completed(std::move(owned));
        core->Publish();
      }
    });
  }

  void Completed(std::unique_ptr<Exchange> ex) {
    const PrPathKey key = ex->path;
    PathRec& rec = *ex->rec;
    --rec.in_flight;
    ScsiCommand& c = ex->command;
    if (c.delivery == Delivery::kDelivered && c.status == kCheckCondition) {
      auto sense = spec::ParseSense(c.sense_bytes());
      if (sense && sense->code.key == SenseKey::kUnitAttention) {
        NoteUnitAttention(key, sense->code);
        if (ex->unit_attentions_left > 0 && !rec.removed) {
          --ex->unit_attentions_left;
          c.ResetAnswer();
          Submit(rec, std::move(ex));
          return;
        }
      }
    }
    Reply reply;
    reply.command = ex->request;
    reply.path = key;
    reply.delivery = c.delivery;
    reply.status = c.status;
    reply.sense_length = std::min<std::uint8_t>(c.sense_length, static_cast<std::uint8_t>(kMaxSenseLength));
    reply.sense = c.sense;
    reply.raw = EncodeRawStatus(c);
    if (c.direction == DataDirection::kFromDevice && reply.delivered()) {
      std::span<const std::byte> received = c.received();
      reply.data.resize(received.size());
      if (!received.empty()) std::memcpy(reply.data.data(), received.data(), received.size());
    }
    ReplyFn done = std::move(ex->done);
    ex.reset();
    ReleaseIfIdle(rec);
    done(std::move(reply));
  }

  // A unit attention our own command took from a path; the command is retried there.
  void NoteUnitAttention(PrPathKey path, spec::SenseCode code) {
    if (callbacks_.on_unit_attention) callbacks_.on_unit_attention(path, code);
    // The operations that preempt or clear our own key expect these, and a takeover check reads the keys itself.
    const bool preempted = code == asc::kReservationsPreempted || code == asc::kRegistrationsPreempted;
    if (preempted && expecting_own_preemption_) return;
    OnSense(path, code);
  }

  // Sends on the first candidate that is live, moving on only while the target cannot have executed the command.
  void IssueAny(std::vector<PrPathKey> candidates, std::size_t at, const PrCommand& request, ReplyFn done) {
    PathRec* rec = nullptr;
    for (; at < candidates.size(); ++at) {
      rec = Find(candidates[at]);
      if (rec != nullptr && rec->live) break;
    }
    if (at >= candidates.size()) {
      Reply none;
      none.command = request;
      none.no_path = true;
      done(std::move(none));
      return;
    }
    Issue(*rec, request,
          [this, candidates = std::move(candidates), at, request, done = std::move(done)](Reply r) mutable {
            if (r.NotExecuted() && at + 1 < candidates.size()) {
              IssueAny(std::move(candidates), at + 1, request, std::move(done));
              return;
            }
            done(std::move(r));
          });
  }

  // PERSISTENT RESERVE IN, read again at full length when the first allocation cut it.
  void ReadIn(std::vector<PrPathKey> candidates, PrInServiceAction action, ReplyFn done) {
    IssueAny(std::move(candidates), 0, PrCommand::In(action, options_.pr_in_allocation),
             [this, action, done = std::move(done)](Reply r) mutable {
               std::optional<std::uint16_t> longer = LongerAllocation(r);
               PathRec* rec = longer ? Find(r.path) : nullptr;
               if (rec == nullptr) {
                 done(std::move(r));
                 return;
               }
               Issue(*rec, PrCommand::In(action, *longer), std::move(done));
             });
  }

  PrCommand RegisterCommand(std::uint64_t key, bool aptpl) const {
    PrCommand c = PrCommand::Out(PrOutServiceAction::kRegisterAndIgnoreExistingKey, 0, key);
    c.aptpl = aptpl;
    return c;
  }

  // Registers `key` on one path's I_T nexus.
  void RegisterOne(PrPathKey path, std::uint64_t key, bool aptpl, Then then) {
    PathRec* rec = Find(path);
    if (rec == nullptr || !rec->live) {
      then(std::unexpected(LocalError(Errc::kPathError, fmt::format("path {} is not live", path))));
      return;
    }
    Issue(*rec, RegisterCommand(key, aptpl), [this, path, then = std::move(then)](Reply r) mutable {
      if (!r.good()) {
        then(std::unexpected(ErrorOf(r)));
        return;
      }
      // A nexus already covered by our ALL_TG_PT registration stays covered by it: only the key was rewritten.
      if (PathRec* rec = Find(path)) rec->registered = true;
      then({});
    });
  }

  // --- Register.

  void StartRegister(std::uint64_t key, PrRegisterOptions options, PrCallback<> done) {
    if (key == 0) {
      FinishOp(done, PrResult<>(std::unexpected(LocalError(Errc::kInvalidArgument, "key 0 cannot be registered"))));
      return;
    }
    if (state_ == PrState::kRegistered) {
      if (key != key_) {
        FinishOp(done, PrResult<>(std::unexpected(LocalError(
                           Errc::kAlreadyExists,
                           fmt::format("already registered with key {:#x}; unregister it first", key_)))));
        return;
      }
      // Same key: the paths it misses are registered like late ones.
      for (const auto& rec : paths_) {
        if (rec->live && !rec->removed && (!rec->registered || !rec->ready)) {
          const PrPathKey path = rec->key;
          ops_.push_back([this, path] { RegisterLatePath(path); });
        }
      }
      FinishOp(done, PrResult<>());
      return;
    }
    auto ctx = std::make_shared<RegisterContext>();
    ctx->key = key;
    ctx->options = options;
    ctx->done = std::move(done);
    ctx->live = LiveKeys(std::nullopt, false);
    if (ctx->live.empty()) {
      FinishOp(ctx->done, PrResult<>(std::unexpected(LocalError(Errc::kNoPath, "REGISTER: no live path"))));
      return;
    }
    registering_ = true;
    if (!options_.use_all_target_ports) {
      RegisterEach(ctx, ctx->live, 0);
      return;
    }
    ReadIn(ctx->live, PrInServiceAction::kReportCapabilities, [this, ctx](Reply r) {
      PrResult<spec::PrReportCapabilitiesData> caps =
          r.good() ? ParseCapabilities(r) : PrResult<spec::PrReportCapabilitiesData>(std::unexpected(ErrorOf(r)));
      // Without a readable ATP_C, registering path by path is always correct.
      if (caps && caps->atp_c()) {
        RegisterAllTargetPorts(ctx);
      } else {
        RegisterEach(ctx, ctx->live, 0);
      }
    });
  }

  void RegisterAllTargetPorts(const RegisterContextPtr& ctx) {
    PrCommand c = RegisterCommand(ctx->key, ctx->options.aptpl);
    c.all_tg_pt = true;
    IssueAny(ctx->live, 0, c, [this, ctx](Reply r) {
      if (r.good()) {
        if (PathRec* rec = Find(r.path)) {
          rec->registered = true;
          rec->all_tg_pt = true;
        }
        ctx->registered.push_back(r.path);
        ctx->all_target_ports = true;
        VerifyCoverage(ctx, r.path);
        return;
      }
      // A target that advertises ATP_C and then refuses the bit still registers one path at a time.
      if (r.HasSenseKey(SenseKey::kIllegalRequest)) {
        RegisterEach(ctx, ctx->live, 0);
        return;
      }
      FailRegister(ctx, ErrorOf(r));
    });
  }

  // Which other paths the ALL_TG_PT registration made through `issuer` covers: those whose initiator port READ FULL
  // STATUS lists with our key. The rest (other initiator ports, or unknown ones) are registered one by one.
  void VerifyCoverage(const RegisterContextPtr& ctx, PrPathKey issuer) {
    ReadIn(LiveKeys(issuer, false), PrInServiceAction::kReadFullStatus, [this, ctx, issuer](Reply r) {
      PrResult<spec::PrFullStatus> status =
          r.good() ? ParseFullStatus(r) : PrResult<spec::PrFullStatus>(std::unexpected(ErrorOf(r)));
      std::vector<PrPathKey> rest;
      for (PrPathKey path : ctx->live) {
        PathRec* rec = Find(path);
        if (path == issuer || rec == nullptr || !rec->live) continue;
        std::optional<bool> covered;
        if (status) covered = Coverage(*status, ctx->key, *rec);
        if (covered) {
          rec->registered = true;
          rec->all_tg_pt = *covered;
        } else {
          rest.push_back(path);
        }
      }
      RegisterEach(ctx, std::move(rest), 0);
    });
  }

  // nullopt when READ FULL STATUS does not show `rec`'s nexus registered with `key`; else whether it is through an
  // ALL_TG_PT registration.
  static std::optional<bool> Coverage(const spec::PrFullStatus& status, std::uint64_t key, const PathRec& rec) {
    if (rec.nexus.initiator_port.empty()) return std::nullopt;
    for (const spec::PrFullStatusEntry& entry : status.entries) {
      if (entry.key != key || entry.initiator_port != rec.nexus.initiator_port) continue;
      if (entry.all_target_ports) return true;
      if (rec.nexus.relative_target_port && *rec.nexus.relative_target_port == entry.relative_target_port) {
        return false;
      }
    }
    return std::nullopt;
  }

  void RegisterEach(const RegisterContextPtr& ctx, std::vector<PrPathKey> paths, std::size_t at) {
    while (at < paths.size() && !IsLive(paths[at])) ++at;
    if (at >= paths.size()) {
      CompleteRegister(ctx);
      return;
    }
    const PrPathKey path = paths[at];
    RegisterOne(path, ctx->key, ctx->options.aptpl,
                [this, ctx, paths = std::move(paths), at, path](PrResult<> r) mutable {
                  if (!r) {
                    FailRegister(ctx, std::move(r).error());
                    return;
                  }
                  ctx->registered.push_back(path);
                  RegisterEach(ctx, std::move(paths), at + 1);
                });
  }

  void CompleteRegister(const RegisterContextPtr& ctx) {
    registering_ = false;
    state_ = PrState::kRegistered;
    key_ = ctx->key;
    register_options_ = ctx->options;
    all_target_ports_ = ctx->all_target_ports;
    reservation_.reset();
    holder_.reset();
    holder_lost_ = false;
    preemption_.reset();
    for (const auto& rec : paths_) {
      if (rec->registered && rec->live && !rec->removed) MarkReady(*rec);
    }
    FinishOp(ctx->done, PrResult<>());
  }

  // Takes back every registration this operation made, last first, and fails it with `error` (the failing path's
  // answer), saying what the rollback did.
  void FailRegister(const RegisterContextPtr& ctx, PrError error) {
    auto failures = std::make_shared<std::vector<std::string>>();
    RollBack(ctx, ctx->registered.size(), failures, std::move(error));
  }

  void RollBack(const RegisterContextPtr& ctx, std::size_t remaining,
                std::shared_ptr<std::vector<std::string>> failures, PrError error) {
    if (remaining == 0) {
      // Paths found covered by the ALL_TG_PT registration lost it with the issuer's.
      for (const auto& rec : paths_) {
        rec->registered = false;
        rec->all_tg_pt = false;
      }
      registering_ = false;
      if (failures->empty()) {
        error.message += fmt::format("; rolled back {} registration(s)", ctx->registered.size());
      } else {
        error.message += fmt::format("; rollback failed: {}", fmt::join(*failures, "; "));
      }
      FinishOp(ctx->done, PrResult<>(std::unexpected(std::move(error))));
      return;
    }
    const PrPathKey path = ctx->registered[remaining - 1];
    PathRec* rec = Find(path);
    if (rec == nullptr) {
      failures->push_back(fmt::format("path {} was removed", path));
      RollBack(ctx, remaining - 1, std::move(failures), std::move(error));
      return;
    }
    Issue(*rec, RegisterCommand(0, ctx->options.aptpl),
          [this, ctx, remaining, failures, error = std::move(error)](Reply r) mutable {
            if (!r.good()) failures->push_back(ErrorOf(r).message);
            RollBack(ctx, remaining - 1, std::move(failures), std::move(error));
          });
  }

  // --- Late and returning paths.

  // Registers one path before it may carry I/O. READ KEYS first: a path must not be registered for a host that
  // was preempted while it was away.
  void RegisterLatePath(PrPathKey path) {
    PathRec* rec = Find(path);
    if (rec == nullptr || !rec->live) {
      EndOp();
      return;
    }
    if (state_ != PrState::kRegistered) {
      MarkReady(*rec);
      EndOp();
      return;
    }
    expecting_own_preemption_ = true;
    ReadIn(LiveKeys(path, false), PrInServiceAction::kReadKeys, [this, path](Reply r) {
      PrResult<spec::PrKeyList> keys = r.good() ? ParseKeys(r) : PrResult<spec::PrKeyList>(std::unexpected(ErrorOf(r)));
      if (keys && !Contains(keys->keys, key_)) {
        DeclarePreempted(path, std::nullopt, keys->keys, [this] {
          expecting_own_preemption_ = false;
          EndOp();
        });
        return;
      }
      RegisterOne(path, key_, register_options_.aptpl, [this, path](PrResult<> result) {
        expecting_own_preemption_ = false;
        PathRec* rec = Find(path);
        if (rec != nullptr && result) {
          if (holder_ && *holder_ == path) holder_lost_ = false;
          MarkReady(*rec);
          if (holder_lost_) QueueMove();
        } else if (rec != nullptr) {
          rec->registered = false;
          NotifyRegisterFailed(path, result.error());
        }
        EndOp();
      });
    });
  }

  // --- Moving the reservation with a self-preempt.

  void QueueMove() {
    if (move_queued_) return;
    move_queued_ = true;
    Enqueue([this] {
      move_queued_ = false;
      MoveReservation(std::nullopt, PrOutServiceAction::kPreempt, [this](PrResult<>) { EndOp(); });
    });
  }

  // PREEMPT with our own key from a live registered path. Without `new_type` it moves a reservation whose holder is
  // down (and does nothing otherwise); with it, it is the caller's self-preempt, which may change the type.
  void MoveReservation(std::optional<PrType> new_type, PrOutServiceAction action, Then then) {
    if (state_ != PrState::kRegistered) {
      then(std::unexpected(LocalError(Errc::kInvalidArgument, "not registered")));
      return;
    }
    if (!new_type) {
      if (!reservation_ || spec::IsAllRegistrants(*reservation_) || (holder_ && IsLive(*holder_))) {
        holder_lost_ = false;
        then({});
        return;
      }
    }
    const PrType type = new_type.value_or(reservation_.value_or(PrType::kWriteExclusive));
    std::vector<PrPathKey> candidates = LiveKeys(new_type ? holder_ : std::nullopt, true);
    std::erase_if(candidates, [&](PrPathKey p) { return !new_type && holder_ && p == *holder_; });
    if (candidates.empty()) {
      then(std::unexpected(LocalError(Errc::kNoPath, "PREEMPT: no live registered path to move the reservation to")));
      return;
    }
    const bool held_reservation = reservation_.has_value();
    // The preempt removes every other registration of our key: keep I/O off those paths until they have it again.
    PathRec* first = Find(candidates.front());
    for (const auto& rec : paths_) {
      if (rec.get() != first && rec->live && !rec->removed && !ShareRegistration(*rec, *first)) Hold(*rec);
    }
    expecting_own_preemption_ = true;
    PrCommand c = PrCommand::Out(action, key_, key_, type);
    IssueAny(std::move(candidates), 0, c,
             [this, type, held_reservation, then = std::move(then)](Reply r) mutable {
               if (!r.good()) {
                 expecting_own_preemption_ = false;
                 // Nothing moved and no registration went: the held paths may carry I/O again.
                 for (const auto& rec : paths_) {
                   if (rec->registered && rec->live && !rec->removed) MarkReady(*rec);
                 }
                 if (r.delivered() && r.status == kConflict) QueueCheck(r.path, std::nullopt);
                 then(std::unexpected(ErrorOf(r)));
                 return;
               }
               const PrPathKey issuer = r.path;
               PathRec* issuer_rec = Find(issuer);
               // Without a reservation of ours the preempt removed every registration of our key, the issuer's too.
               for (const auto& rec : paths_) {
                 if (rec.get() == issuer_rec && held_reservation) continue;
                 if (held_reservation && issuer_rec != nullptr && ShareRegistration(*rec, *issuer_rec)) continue;
                 rec->registered = false;
               }
               if (held_reservation) {
                 reservation_ = type;
                 holder_ = spec::IsAllRegistrants(type) ? std::nullopt : std::optional<PrPathKey>(issuer);
                 if (issuer_rec != nullptr) MarkReady(*issuer_rec);
               }
               holder_lost_ = false;
               ReRegister(LiveKeys(issuer, false), 0, [this, issuer, then = std::move(then)]() mutable {
                 expecting_own_preemption_ = false;
                 // What the preempt left is read back rather than assumed (it may have taken a reservation).
                 ReadIn(LiveKeys(issuer, true), PrInServiceAction::kReadReservation,
                        [this, issuer, then = std::move(then)](Reply rr) mutable {
                          if (rr.good()) {
                            if (auto report = ParseReservation(rr)) ApplyReservation(*report, issuer);
                          }
                          then({});
                        });
               });
             });
  }

  // Registers again, one by one, the live paths among `paths` that lost their registration.
  void ReRegister(std::vector<PrPathKey> paths, std::size_t at, std::move_only_function<void()> then) {
    while (at < paths.size()) {
      PathRec* rec = Find(paths[at]);
      if (rec != nullptr && rec->live && !rec->registered) break;
      if (rec != nullptr && rec->live) MarkReady(*rec);
      ++at;
    }
    if (at >= paths.size()) {
      then();
      return;
    }
    const PrPathKey path = paths[at];
    RegisterOne(path, key_, register_options_.aptpl,
                [this, paths = std::move(paths), at, path, then = std::move(then)](PrResult<> r) mutable {
                  if (PathRec* rec = Find(path)) {
                    if (r) {
                      MarkReady(*rec);
                    } else {
                      rec->ready = false;
                      NotifyRegisterFailed(path, r.error());
                    }
                  }
                  ReRegister(std::move(paths), at + 1, std::move(then));
                });
  }

  // Brings our view of the reservation in line with READ RESERVATION; `issuer` is the path that just took it, if any.
  void ApplyReservation(const spec::PrReservationReport& report, std::optional<PrPathKey> issuer) {
    const std::optional<PrType> type =
        report.reservation ? spec::ToPrType(report.reservation->type) : std::optional<PrType>();
    if (!type) {
      reservation_.reset();
      holder_.reset();
      holder_lost_ = false;
      return;
    }
    if (spec::IsAllRegistrants(*type)) {
      // Every registrant holds it, so we do, through every registered path.
      reservation_ = type;
      holder_.reset();
      holder_lost_ = false;
      return;
    }
    if (report.reservation->key != key_) {
      reservation_.reset();
      holder_.reset();
      holder_lost_ = false;
      return;
    }
    if (!reservation_ || !holder_) holder_ = issuer;
    reservation_ = type;
  }

  // --- Takeover checks.

  void QueueCheck(PrPathKey reporter, std::optional<spec::SenseCode> code) {
    if (check_queued_) return;
    check_queued_ = true;
    Enqueue([this, reporter, code] {
      check_queued_ = false;
      RunCheck(reporter, code);
    });
  }

  void RunCheck(PrPathKey reporter, std::optional<spec::SenseCode> code) {
    if (state_ != PrState::kRegistered) {
      EndOp();
      return;
    }
    expecting_own_preemption_ = true;
    auto done = [this] {
      expecting_own_preemption_ = false;
      EndOp();
    };
    ReadIn(LiveKeys(reporter, false), PrInServiceAction::kReadKeys, [this, reporter, code, done](Reply r) mutable {
      PrResult<spec::PrKeyList> keys = r.good() ? ParseKeys(r) : PrResult<spec::PrKeyList>(std::unexpected(ErrorOf(r)));
      if (!keys) {
        // Unconfirmed: a unit attention saying so is believed; a bare conflict is not.
        if (code) {
          DeclarePreempted(reporter, code, {}, std::move(done));
        } else {
          done();
        }
        return;
      }
      if (!Contains(keys->keys, key_)) {
        DeclarePreempted(reporter, code, keys->keys, std::move(done));
        return;
      }
      // Our key is still there, so no one took over: the path may have lost its own registration (to one of our
      // preempts), which registering again puts back, and the reservation may have changed.
      if (!IsLive(reporter)) {
        RefreshReservation(std::move(done));
        return;
      }
      RegisterOne(reporter, key_, register_options_.aptpl, [this, reporter, done](PrResult<> result) mutable {
        if (!result) {
          if (PathRec* rec = Find(reporter)) {
            rec->registered = false;
            rec->ready = false;
          }
          NotifyRegisterFailed(reporter, result.error());
        }
        RefreshReservation(std::move(done));
      });
    });
  }

  void RefreshReservation(std::move_only_function<void()> done) {
    ReadIn(LiveKeys(std::nullopt, false), PrInServiceAction::kReadReservation,
           [this, done = std::move(done)](Reply r) mutable {
             if (r.good() && state_ == PrState::kRegistered) {
               if (auto report = ParseReservation(r)) ApplyReservation(*report, std::nullopt);
             }
             done();
           });
  }

  void QueueRefresh() {
    if (refresh_queued_) return;
    refresh_queued_ = true;
    Enqueue([this] {
      refresh_queued_ = false;
      if (state_ != PrState::kRegistered) {
        EndOp();
        return;
      }
      RefreshReservation([this] { EndOp(); });
    });
  }

  void DeclarePreempted(PrPathKey reporter, std::optional<spec::SenseCode> code, std::vector<std::uint64_t> keys,
                        std::move_only_function<void()> done) {
    ReadIn(LiveKeys(reporter, false), PrInServiceAction::kReadReservation,
           [this, reporter, code, keys = std::move(keys), done = std::move(done)](Reply r) mutable {
             PrPreemption info;
             info.reported_by = reporter;
             info.unit_attention = code;
             info.keys = std::move(keys);
             if (r.good()) {
               if (auto report = ParseReservation(r); report && report->reservation) {
                 info.reservation = *report->reservation;
               }
             }
             state_ = PrState::kPreempted;
             reservation_.reset();
             holder_.reset();
             holder_lost_ = false;
             preemption_ = info;
             for (const auto& rec : paths_) {
               rec->registered = false;
               rec->all_tg_pt = false;
             }
             // Our registrations are gone and will not come back: a held or unregistered path is no worse off
             // than any other, and its I/O will meet the new owner's reservation like theirs.
             for (const auto& rec : paths_) {
               if (!rec->removed) MarkReady(*rec);
             }
             Publish();
             if (callbacks_.on_preempted) callbacks_.on_preempted(info);
             done();
           });
  }

  // --- Unregister, reserve, release, preempt, clear.

  std::optional<PrError> NotRegistered(std::string_view what) const {
    switch (state_) {
      case PrState::kRegistered: return std::nullopt;
      case PrState::kPreempted:
        return LocalError(Errc::kReservationConflict,
                          fmt::format("{}: our key {:#x} was preempted by another host", what, key_));
      case PrState::kUnregistered:
      default: return LocalError(Errc::kInvalidArgument, fmt::format("{}: no key is registered", what));
    }
  }

  void ResetToUnregistered() {
    state_ = PrState::kUnregistered;
    key_ = 0;
    all_target_ports_ = false;
    reservation_.reset();
    holder_.reset();
    holder_lost_ = false;
    preemption_.reset();
    for (const auto& rec : paths_) {
      rec->registered = false;
      rec->all_tg_pt = false;
    }
    for (const auto& rec : paths_) {
      if (!rec->removed) MarkReady(*rec);
    }
  }

  void StartUnregister(PrCallback<> done) {
    if (state_ != PrState::kRegistered) {
      ResetToUnregistered();
      FinishOp(done, PrResult<>());
      return;
    }
    auto first_error = std::make_shared<std::optional<PrError>>();
    auto shared_done = std::make_shared<PrCallback<>>(std::move(done));
    auto unregister_live = [this, first_error, shared_done] {
      UnregisterEach(LiveKeys(std::nullopt, false), 0, first_error, [this, first_error, shared_done] {
        expecting_own_preemption_ = false;
        ResetToUnregistered();
        FinishOp(*shared_done, *first_error ? PrResult<>(std::unexpected(**first_error)) : PrResult<>());
      });
    };
    expecting_own_preemption_ = true;
    // A path that is down keeps its nexus's registration; a preempt of our own key from a live path removes it.
    const bool stranded = std::any_of(paths_.begin(), paths_.end(), [](const auto& rec) {
      return rec->registered && !rec->live && !rec->removed;
    });
    if (!stranded) {
      unregister_live();
      return;
    }
    PrCommand c =
        PrCommand::Out(PrOutServiceAction::kPreempt, key_, key_, reservation_.value_or(PrType::kWriteExclusive));
    IssueAny(LiveKeys(holder_, true), 0, c, [first_error, unregister_live](Reply r) mutable {
      if (!r.good()) *first_error = ErrorOf(r);
      unregister_live();
    });
  }

  void UnregisterEach(std::vector<PrPathKey> paths, std::size_t at, std::shared_ptr<std::optional<PrError>> first_error,
                      std::move_only_function<void()> then) {
    PathRec* rec = nullptr;
    while (at < paths.size() && ((rec = Find(paths[at])) == nullptr || !rec->live)) ++at;
    if (at >= paths.size()) {
      then();
      return;
    }
    // REGISTER AND IGNORE EXISTING KEY with key 0 unregisters whatever the nexus holds, and is GOOD on a nexus that
    // holds nothing (one whose ALL_TG_PT registration another path already removed).
    Issue(*rec, RegisterCommand(0, register_options_.aptpl),
          [this, paths = std::move(paths), at, first_error, then = std::move(then)](Reply r) mutable {
            if (!r.good() && !*first_error) *first_error = ErrorOf(r);
            UnregisterEach(std::move(paths), at + 1, std::move(first_error), std::move(then));
          });
  }

  void StartReserve(PrType type, PrCallback<> done) {
    if (auto error = NotRegistered("RESERVE")) {
      FinishOp(done, PrResult<>(std::unexpected(*error)));
      return;
    }
    // Asking again from the holder is GOOD; from any other nexus it would conflict.
    std::vector<PrPathKey> candidates = LiveKeys(holder_, true);
    std::erase_if(candidates, [this](PrPathKey p) { return !Find(p)->ready; });
    IssueAny(std::move(candidates), 0, PrCommand::Out(PrOutServiceAction::kReserve, key_, 0, type),
             [this, type, done = std::move(done)](Reply r) mutable {
               if (!r.good()) {
                 FinishOp(done, PrResult<>(std::unexpected(ErrorOf(r))));
                 return;
               }
               reservation_ = type;
               holder_ = spec::IsAllRegistrants(type) ? std::nullopt : std::optional<PrPathKey>(r.path);
               holder_lost_ = false;
               FinishOp(done, PrResult<>());
             });
  }

  void StartRelease(PrType type, PrCallback<> done) {
    if (auto error = NotRegistered("RELEASE")) {
      FinishOp(done, PrResult<>(std::unexpected(*error)));
      return;
    }
    if (reservation_ && !spec::IsAllRegistrants(*reservation_) && holder_ && !IsLive(*holder_)) {
      MoveReservation(std::nullopt, PrOutServiceAction::kPreempt,
                      [this, type, done = std::move(done)](PrResult<> moved) mutable {
                        if (!moved) {
                          FinishOp(done, std::move(moved));
                          return;
                        }
                        DoRelease(type, std::move(done));
                      });
      return;
    }
    DoRelease(type, std::move(done));
  }

  void DoRelease(PrType type, PrCallback<> done) {
    // A RELEASE from a registered nexus that does not hold the reservation is GOOD and does nothing, so it goes to
    // the holder and nowhere else.
    std::vector<PrPathKey> candidates;
    if (holder_ && reservation_ && !spec::IsAllRegistrants(*reservation_)) {
      candidates.push_back(*holder_);
    } else {
      candidates = LiveKeys(std::nullopt, true);
    }
    IssueAny(std::move(candidates), 0, PrCommand::Out(PrOutServiceAction::kRelease, key_, 0, type),
             [this, done = std::move(done)](Reply r) mutable {
               if (!r.good()) {
                 FinishOp(done, PrResult<>(std::unexpected(ErrorOf(r))));
                 return;
               }
               reservation_.reset();
               holder_.reset();
               holder_lost_ = false;
               FinishOp(done, PrResult<>());
             });
  }

  void StartPreempt(std::uint64_t victim, PrType type, PrPreemptMode mode, PrCallback<> done) {
    if (auto error = NotRegistered("PREEMPT")) {
      FinishOp(done, PrResult<>(std::unexpected(*error)));
      return;
    }
    const PrOutServiceAction action =
        mode == PrPreemptMode::kPreemptAndAbort ? PrOutServiceAction::kPreemptAndAbort : PrOutServiceAction::kPreempt;
    if (victim == key_) {
      MoveReservation(type, action,
                      [this, done = std::move(done)](PrResult<> r) mutable { FinishOp(done, std::move(r)); });
      return;
    }
    IssueAny(LiveKeys(holder_, true), 0, PrCommand::Out(action, key_, victim, type),
             [this, done = std::move(done)](Reply r) mutable {
               if (!r.good()) {
                 FinishOp(done, PrResult<>(std::unexpected(ErrorOf(r))));
                 return;
               }
               const PrPathKey issuer = r.path;
               // Whether the preempt took a reservation depends on who held it: read it back.
               ReadIn(LiveKeys(issuer, true), PrInServiceAction::kReadReservation,
                      [this, issuer, done = std::move(done)](Reply rr) mutable {
                        if (rr.good()) {
                          if (auto report = ParseReservation(rr)) ApplyReservation(*report, issuer);
                        }
                        FinishOp(done, PrResult<>());
                      });
             });
  }

  void StartClear(PrCallback<> done) {
    if (auto error = NotRegistered("CLEAR")) {
      FinishOp(done, PrResult<>(std::unexpected(*error)));
      return;
    }
    expecting_own_preemption_ = true;
    IssueAny(LiveKeys(holder_, true), 0, PrCommand::Out(PrOutServiceAction::kClear, key_, 0),
             [this, done = std::move(done)](Reply r) mutable {
               expecting_own_preemption_ = false;
               if (!r.good()) {
                 FinishOp(done, PrResult<>(std::unexpected(ErrorOf(r))));
                 return;
               }
               ResetToUnregistered();
               FinishOp(done, PrResult<>());
             });
  }

  // Constant after construction.
  Executor& executor_;
  PrCallbacks callbacks_;
  const PrCoordinatorOptions options_;

  // Executor-confined.
  std::vector<std::unique_ptr<PathRec>> paths_;  // in AddPath order; removed ones until their commands finish
  PrState state_ = PrState::kUnregistered;
  std::uint64_t key_ = 0;
  PrRegisterOptions register_options_;
  bool all_target_ports_ = false;
  bool registering_ = false;
  std::optional<PrType> reservation_;
  std::optional<PrPathKey> holder_;
  bool holder_lost_ = false;
  std::optional<PrPreemption> preemption_;
  std::deque<Task> ops_;
  bool op_running_ = false;
  bool check_queued_ = false;
  bool refresh_queued_ = false;
  bool move_queued_ = false;
  bool expecting_own_preemption_ = false;

  mutable std::mutex mu_;
  PrSnapshot published_;  // guarded by mu_
};

Result<std::unique_ptr<PrCoordinator>> PrCoordinator::Create(Executor& executor, PrCallbacks callbacks,
                                                             PrCoordinatorOptions options) {
  if (options.pr_in_allocation < sizeof(spec::PrReportCapabilitiesData)) {
    return MakeError(Errc::kInvalidArgument,
                     fmt::format("pr_in_allocation {} cannot hold an 8-byte header", options.pr_in_allocation));
  }
  if (options.command_timeout < Nanos(0)) return MakeError(Errc::kInvalidArgument, "command_timeout is negative");
  auto core = std::make_shared<Core>(executor, std::move(callbacks), options);
  return std::unique_ptr<PrCoordinator>(new PrCoordinator(std::move(core)));
}

PrCoordinator::PrCoordinator(std::shared_ptr<Core> core) : core_(std::move(core)) {}

PrCoordinator::~PrCoordinator() = default;

template <typename F>
void PrCoordinator::Run(F&& work) {
  core_->executor().Post([weak = std::weak_ptr<Core>(core_), work = std::forward<F>(work)]() mutable {
    if (std::shared_ptr<Core> core = weak.lock()) {
      work(*core);
      core->Publish();
    }
  });
}

void PrCoordinator::AddPath(PrPathKey path, ScsiTransport& transport, std::uint64_t lun, PrNexusInfo nexus) {
  Run([path, &transport, lun, nexus = std::move(nexus)](Core& core) mutable {
    core.AddPath(path, transport, lun, std::move(nexus));
  });
}

void PrCoordinator::RemovePath(PrPathKey path, std::move_only_function<void()> released) {
  Run([path, released = std::move(released)](Core& core) mutable { core.RemovePath(path, std::move(released)); });
}

void PrCoordinator::PathFailed(PrPathKey path) {
  Run([path](Core& core) { core.PathFailed(path); });
}

void PrCoordinator::PathRestored(PrPathKey path) {
  Run([path](Core& core) { core.PathRestored(path); });
}

void PrCoordinator::OnSense(PrPathKey path, spec::SenseCode code) {
  Run([path, code](Core& core) { core.OnSense(path, code); });
}

void PrCoordinator::OnReservationConflict(PrPathKey path) {
  Run([path](Core& core) { core.OnReservationConflict(path); });
}

void PrCoordinator::Register(std::uint64_t key, PrRegisterOptions options, PrCallback<> done) {
  Run([key, options, done = std::move(done)](Core& core) mutable { core.Register(key, options, std::move(done)); });
}

void PrCoordinator::Unregister(PrCallback<> done) {
  Run([done = std::move(done)](Core& core) mutable { core.Unregister(std::move(done)); });
}

void PrCoordinator::Reserve(spec::PrType type, PrCallback<> done) {
  Run([type, done = std::move(done)](Core& core) mutable { core.Reserve(type, std::move(done)); });
}

void PrCoordinator::Release(spec::PrType type, PrCallback<> done) {
  Run([type, done = std::move(done)](Core& core) mutable { core.Release(type, std::move(done)); });
}

void PrCoordinator::Preempt(std::uint64_t victim_key, spec::PrType type, PrPreemptMode mode, PrCallback<> done) {
  Run([victim_key, type, mode, done = std::move(done)](Core& core) mutable {
    core.Preempt(victim_key, type, mode, std::move(done));
  });
}

void PrCoordinator::Clear(PrCallback<> done) {
  Run([done = std::move(done)](Core& core) mutable { core.Clear(std::move(done)); });
}

void PrCoordinator::ReadKeys(PrCallback<spec::PrKeyList> done) {
  Run([done = std::move(done)](Core& core) mutable {
    core.Read<spec::PrKeyList>(PrInServiceAction::kReadKeys, &ParseKeys, std::move(done));
  });
}

void PrCoordinator::ReadReservation(PrCallback<spec::PrReservationReport> done) {
  Run([done = std::move(done)](Core& core) mutable {
    core.Read<spec::PrReservationReport>(PrInServiceAction::kReadReservation, &ParseReservation, std::move(done));
  });
}

void PrCoordinator::ReportCapabilities(PrCallback<spec::PrReportCapabilitiesData> done) {
  Run([done = std::move(done)](Core& core) mutable {
    core.Read<spec::PrReportCapabilitiesData>(PrInServiceAction::kReportCapabilities, &ParseCapabilities,
                                              std::move(done));
  });
}

void PrCoordinator::ReadFullStatus(PrCallback<spec::PrFullStatus> done) {
  Run([done = std::move(done)](Core& core) mutable {
    core.Read<spec::PrFullStatus>(PrInServiceAction::kReadFullStatus, &ParseFullStatus, std::move(done));
  });
}

PrSnapshot PrCoordinator::Snapshot() const { return core_->Snapshot(); }

PrState PrCoordinator::state() const { return core_->Snapshot().state; }

}  // namespace mpath::scsi
