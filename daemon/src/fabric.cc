// How the Fabric is put together, and why:
//  - Names. A configured [[sim.path]] is one link (an I_T nexus or an NVMe controller connection). Every LU behind a
//    SCSI link gets the path "<link>:lun<N>"; the NVMe personality names a controller's namespace paths
//    "<link>n<nsid>". Heads group these by identity, so LU N of an array ends up with one path per link.
//  - Build order. Every SCSI path is probed once first: ports that answer READ CAPACITY attach first (with the NVMe
//    controllers), the others (standby, unavailable) after them, when their heads already know the geometry. Build
//    then waits, bounded, until every head path shows what its device reports (and the PREF bit only an RTPG tells).
//  - The path checker. Like multipathd's tur checker, a TEST UNIT READY goes down every active SCSI path each second
//    (every path of a head that has no active one), so that what a target queued for the host (an ALUA change, a
//    remap, a preempt) reaches the personality with no I/O running. NVMe needs none: its notices come by AER.
//  - In flight. A thin decorator over each link's transport counts the commands it holds per LUN / NSID (admin
//    commands excluded), which is what listings show as a path's in-flight count.
//  - Shutdown. Paths are detached and the personalities destroyed on the running control loop; commands still on a
//    delayed link are given time to arrive; then every link is disconnected (an NVMe controller going aborts its
//    Asynchronous Event Request, whose completion must still run) and only then do the loops stop.
#include "mpath/daemon/fabric.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <thread>
#include <utility>

#include "mpath/core/io_request.h"
#include "mpath/core/registry.h"
#include "mpath/nvme/fake/subsystem.h"
#include "mpath/nvme/personality.h"
#include "mpath/nvme/spec/opcodes.h"
#include "mpath/nvme/spec/reservations.h"
#include "mpath/runtime/reactor_pool.h"
#include "mpath/scsi/fake/array.h"
#include "mpath/scsi/identity_probe.h"
#include "mpath/scsi/path_driver.h"
#include "mpath/scsi/personality.h"
#include "mpath/scsi/spec/pr.h"
#include "mpath/scsi/spec/spc_cdb.h"
#include "mpath/sim/san.h"

namespace mpath::daemon {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kMiB = 1024 * 1024;
// The path checker sends TEST UNIT READY down the paths of every SCSI head this often, as multipathd's tur checker
// does, so that what a target queued for the host (an ALUA change, a remap, a preempt) reaches the personality even
// when no I/O runs. Shorter than multipathd's 5 s: the simulated SAN is cheap to ask.
constexpr Nanos kCheckerInterval = 1s;
constexpr std::size_t kCheckerRequests = 256;
// Build waits this long at most for the first RTPG / ANA log of every target to be reflected in the heads.
constexpr Nanos kSettleBound = 5s;
constexpr Nanos kSettlePoll = 10ms;
// A remapped SCSI path reprobed through a standby port cannot attach before an active path of its new LU has.
constexpr Nanos kReattachDelay = 200ms;
constexpr int kReattachTries = 25;
// Bound on a reservation command's round trip (the PR coordinator and NVMe reservations time out at 30 s).
constexpr auto kReplyBound = std::chrono::seconds(120);
constexpr double kMaxFaultMillis = 60000.0;

constexpr char kForeignInitiator[] = "iqn.2026-11.io.mpath.sim:foreign-host";
constexpr std::array<std::uint8_t, 16> kForeignHostId = {0x66, 0x6f, 0x72, 0x65, 0x69, 0x67, 0x6e, 0x00,
                                                         0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01};

Nanos Millis(double ms) { return Nanos(static_cast<std::int64_t>(std::llround(ms * 1e6))); }

std::string WithSource(const std::string& source, std::string message) {
  return source.empty() ? message : fmt::format("{}: {}", source, message);
}

template <typename Container>
std::string JoinNames(const Container& names) {
  std::string out;
  for (const auto& name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out.empty() ? "none" : out;
}

// --- Access-state vocabularies.

Result<scsi::fake::AluaState> ParseAluaState(std::string_view text) {
  using scsi::fake::AluaState;
  if (text == "active/optimized") return AluaState::kActiveOptimized;
  if (text == "active/non-optimized") return AluaState::kActiveNonOptimized;
  if (text == "standby") return AluaState::kStandby;
  if (text == "unavailable") return AluaState::kUnavailable;
  if (text == "offline") return AluaState::kOffline;
  return MakeError(Errc::kInvalidArgument,
                   fmt::format("unknown ALUA state '{}'; known: active/optimized, active/non-optimized, standby, "
                               "unavailable, offline",
                               text));
}

Result<nvme::fake::AnaState> ParseAnaState(std::string_view text) {
  using nvme::fake::AnaState;
  if (text == "optimized") return AnaState::kOptimized;
  if (text == "non-optimized") return AnaState::kNonOptimized;
  if (text == "inaccessible") return AnaState::kInaccessible;
  if (text == "persistent-loss") return AnaState::kPersistentLoss;
  if (text == "change") return AnaState::kChange;
  return MakeError(Errc::kInvalidArgument,
                   fmt::format("unknown ANA state '{}'; known: optimized, non-optimized, inaccessible, "
                               "persistent-loss, change",
                               text));
}

// What the host should end up reporting for a port in `state`, as the personalities map it; nullopt while the state
// is changing.
std::optional<AccessState> HostView(scsi::fake::AluaState state) {
  using scsi::fake::AluaState;
  switch (state) {
    case AluaState::kActiveOptimized: return AccessState::kOptimized;
    case AluaState::kActiveNonOptimized:
    case AluaState::kLogicalBlockDependent: return AccessState::kNonOptimized;
    case AluaState::kStandby: return AccessState::kStandby;
    case AluaState::kTransitioning: return std::nullopt;
    case AluaState::kUnavailable:
    case AluaState::kOffline:
    default: return AccessState::kUnavailable;
  }
}

std::optional<AccessState> HostView(nvme::fake::AnaState state) {
  using nvme::fake::AnaState;
  switch (state) {
    case AnaState::kOptimized: return AccessState::kOptimized;
    case AnaState::kNonOptimized: return AccessState::kNonOptimized;
    case AnaState::kPersistentLoss: return AccessState::kPersistentLoss;
    case AnaState::kChange: return std::nullopt;
    case AnaState::kInaccessible:
    default: return AccessState::kUnavailable;
  }
}

// --- Reservation types, by the names mpathpersist and blkpr use.

struct ReservationTypeName {
  std::string_view name;
  scsi::spec::PrType scsi;
  nvme::spec::ReservationType nvme;
};

constexpr std::array<ReservationTypeName, 6> kReservationTypes = {{
    {"write-exclusive", scsi::spec::PrType::kWriteExclusive, nvme::spec::ReservationType::kWriteExclusive},
    {"exclusive-access", scsi::spec::PrType::kExclusiveAccess, nvme::spec::ReservationType::kExclusiveAccess},
    {"write-exclusive-registrants-only", scsi::spec::PrType::kWriteExclusiveRegistrantsOnly,
     nvme::spec::ReservationType::kWriteExclusiveRegistrantsOnly},
    {"exclusive-access-registrants-only", scsi::spec::PrType::kExclusiveAccessRegistrantsOnly,
     nvme::spec::ReservationType::kExclusiveAccessRegistrantsOnly},
    {"write-exclusive-all-registrants", scsi::spec::PrType::kWriteExclusiveAllRegistrants,
     nvme::spec::ReservationType::kWriteExclusiveAllRegistrants},
    {"exclusive-access-all-registrants", scsi::spec::PrType::kExclusiveAccessAllRegistrants,
     nvme::spec::ReservationType::kExclusiveAccessAllRegistrants},
}};

Result<const ReservationTypeName*> ParseReservationType(std::string_view text) {
  for (const ReservationTypeName& type : kReservationTypes) {
    if (type.name == text) return &type;
  }
  std::vector<std::string_view> names;
  for (const ReservationTypeName& type : kReservationTypes) names.push_back(type.name);
  return MakeError(Errc::kInvalidArgument,
                   fmt::format("unknown reservation type '{}'; known: {}", text, JoinNames(names)));
}

std::string ScsiTypeName(std::uint8_t code) {
  for (const ReservationTypeName& type : kReservationTypes) {
    if (static_cast<std::uint8_t>(type.scsi) == code) return std::string(type.name);
  }
  return fmt::format("type {:#x}", code);
}

std::string NvmeTypeName(std::uint8_t code) {
  for (const ReservationTypeName& type : kReservationTypes) {
    if (static_cast<std::uint8_t>(type.nvme) == code) return std::string(type.name);
  }
  return fmt::format("type {:#x}", code);
}

// --- Values of `key=value` fault arguments.

Result<std::uint64_t> ParseUnsigned(std::string_view text) {
  int base = 10;
  std::string_view digits = text;
  if (digits.starts_with("0x") || digits.starts_with("0X")) {
    base = 16;
    digits.remove_prefix(2);
  }
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    return MakeError(Errc::kInvalidArgument, "not a number");
  }
  return value;
}

Result<double> ParseDouble(std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
    return MakeError(Errc::kInvalidArgument, "not a number");
  }
  return value;
}

Result<std::array<std::uint8_t, 16>> ParseHex16(std::string_view text) {
  std::array<std::uint8_t, 16> out{};
  if (text.size() != 32) return MakeError(Errc::kInvalidArgument, "not 32 hex digits");
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto [end, ec] = std::from_chars(text.data() + 2 * i, text.data() + 2 * i + 2, out[i], 16);
    if (ec != std::errc() || end != text.data() + 2 * i + 2) {
      return MakeError(Errc::kInvalidArgument, "not 32 hex digits");
    }
  }
  return out;
}

// The arguments of one fault, checked against what the fault takes; every accessor names the fault and the key in
// its error. Threading: used on one thread, within the request it refers to.
class FaultArgs {
 public:
  static Result<FaultArgs> Check(const FaultRequest& request, std::vector<std::string_view> allowed) {
    for (const auto& [key, value] : request.args) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        return MakeError(Errc::kInvalidArgument,
                         allowed.empty()
                             ? fmt::format("fault '{}' takes no arguments (got '{}')", request.fault, key)
                             : fmt::format("fault '{}' does not take '{}'; it takes: {}", request.fault, key,
                                           JoinNames(allowed)));
      }
    }
    return FaultArgs(request);
  }

  [[nodiscard]] bool Has(std::string_view key) const { return request_.args.contains(std::string(key)); }

  Result<std::string> Text(std::string_view key, std::string_view hint) const {
    auto it = request_.args.find(std::string(key));
    if (it == request_.args.end()) return Missing(key, hint);
    return it->second;
  }

  Result<std::uint64_t> Unsigned(std::string_view key, std::uint64_t max = UINT64_MAX) const {
    std::string text = MPATH_TRY(Text(key, "N"));
    auto value = ParseUnsigned(text);
    if (!value) return Bad(key, text, "is not a number");
    if (*value > max) return Bad(key, text, fmt::format("is out of range (at most {})", max));
    return *value;
  }

  Result<double> Double(std::string_view key, double min, double max) const {
    std::string text = MPATH_TRY(Text(key, "N"));
    auto value = ParseDouble(text);
    if (!value) return Bad(key, text, "is not a number");
    if (*value < min || *value > max) return Bad(key, text, fmt::format("is out of range ({} to {})", min, max));
    return *value;
  }

  Result<bool> Bool(std::string_view key) const {
    std::string text = MPATH_TRY(Text(key, "true|false"));
    if (text == "true") return true;
    if (text == "false") return false;
    return Bad(key, text, "is not true or false");
  }

  Result<std::array<std::uint8_t, 16>> Hex16(std::string_view key) const {
    std::string text = MPATH_TRY(Text(key, "<32 hex digits>"));
    auto value = ParseHex16(text);
    if (!value) return Bad(key, text, "is not 32 hex digits");
    return *value;
  }

  std::unexpected<Error> Bad(std::string_view key, std::string_view text, std::string_view why) const {
    return MakeError(Errc::kInvalidArgument, fmt::format("fault '{}': {}='{}' {}", request_.fault, key, text, why));
  }

 private:
  explicit FaultArgs(const FaultRequest& request) : request_(request) {}

  std::unexpected<Error> Missing(std::string_view key, std::string_view hint) const {
    return MakeError(Errc::kInvalidArgument, fmt::format("fault '{}' needs {}={}", request_.fault, key, hint));
  }

  const FaultRequest& request_;
};

constexpr std::array<std::string_view, 10> kLinkFaults = {"link-down", "link-up", "hang", "unhang", "latency",
                                                          "fail-io",   "heal",    "flap", "drop",   "clear"};
constexpr std::array<std::string_view, 8> kDeviceFaults = {"alua",  "preferred", "ana", "unit-attention",
                                                           "remap", "resize",    "foreign-preempt", "power-cycle"};

bool IsOneOf(std::string_view name, std::span<const std::string_view> names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// --- In-flight accounting at the transport seam.

// Counts, per LUN or NSID, the commands a transport holds: it lends each command a hook of its own until the
// transport finishes it. Records are pooled, so after warm-up tracking allocates nothing.
// Threading: Track from any thread; a command is counted out on whatever thread finishes it.
template <typename Command>
class InFlightTracker {
 public:
  explicit InFlightTracker(const std::vector<std::uint64_t>& units) {
    for (std::uint64_t unit : units) counts_.try_emplace(unit);
  }
  InFlightTracker(const InFlightTracker&) = delete;
  InFlightTracker& operator=(const InFlightTracker&) = delete;

  void Track(Command& command, std::uint64_t unit) {
    Record* record = Acquire();
    auto it = counts_.find(unit);
    record->count = it == counts_.end() ? &other_ : &it->second;
    record->count->fetch_add(1, std::memory_order_relaxed);
    record->submitter = command.ExchangeHook({&InFlightTracker::OnFinished, record});
  }

  [[nodiscard]] std::uint64_t InFlight(std::uint64_t unit) const {
    auto it = counts_.find(unit);
    return it == counts_.end() ? 0 : it->second.load(std::memory_order_relaxed);
  }

 private:
  struct Record {
    InFlightTracker* owner = nullptr;
    std::atomic<std::uint64_t>* count = nullptr;
    typename Command::Hook submitter;
    Record* next = nullptr;
  };
  static constexpr std::size_t kChunk = 64;

  static void OnFinished(Command& command, void* arg) {
    auto* record = static_cast<Record*>(arg);
    command.ExchangeHook(record->submitter);
    record->count->fetch_sub(1, std::memory_order_relaxed);
    record->owner->Release(record);
    command.Finish();
  }

  Record* Acquire() {
    std::lock_guard lock(mu_);
    if (free_ == nullptr) {
      auto chunk = std::make_unique<Record[]>(kChunk);
      for (std::size_t i = 0; i < kChunk; ++i) {
        chunk[i].owner = this;
        chunk[i].next = free_;
        free_ = &chunk[i];
      }
      chunks_.push_back(std::move(chunk));
    }
    Record* record = free_;
    free_ = record->next;
    return record;
  }

  void Release(Record* record) {
    std::lock_guard lock(mu_);
    record->next = free_;
    free_ = record;
  }

  std::map<std::uint64_t, std::atomic<std::uint64_t>> counts_;  // keys constant after construction
  std::atomic<std::uint64_t> other_{0};
  std::mutex mu_;
  std::vector<std::unique_ptr<Record[]>> chunks_;  // guarded by mu_
  Record* free_ = nullptr;                         // guarded by mu_
};

// Threading: as the wrapped transport.
class CountingScsiTransport final : public scsi::ScsiTransport {
 public:
  CountingScsiTransport(scsi::ScsiTransport& inner, const std::vector<std::uint64_t>& luns)
      : inner_(inner), tracker_(luns) {}
  void Submit(std::uint64_t lun, scsi::ScsiCommand& command) override {
    tracker_.Track(command, lun);
    inner_.Submit(lun, command);
  }
  [[nodiscard]] std::uint64_t InFlight(std::uint64_t lun) const { return tracker_.InFlight(lun); }

 private:
  scsi::ScsiTransport& inner_;
  InFlightTracker<scsi::ScsiCommand> tracker_;
};

// Threading: as the wrapped transport.
class CountingNvmeTransport final : public nvme::NvmeTransport {
 public:
  CountingNvmeTransport(nvme::NvmeTransport& inner, const std::vector<std::uint64_t>& nsids)
      : inner_(inner), tracker_(nsids) {}
  void Submit(nvme::NvmeCommand& command) override {
    // Admin commands belong to no namespace path (and an Asynchronous Event Request is held as long as the
    // controller lives).
    if (command.queue == nvme::QueueKind::kIo) tracker_.Track(command, command.sqe.nsid.value());
    inner_.Submit(command);
  }
  [[nodiscard]] std::uint64_t InFlight(std::uint32_t nsid) const { return tracker_.InFlight(nsid); }

 private:
  nvme::NvmeTransport& inner_;
  InFlightTracker<nvme::NvmeCommand> tracker_;
};

// Runs `then` once every operation added has finished, and the starter has said it added them all (the first Done).
// Threading: control loop only.
class Join {
 public:
  explicit Join(std::move_only_function<void()> then) : then_(std::move(then)) {}
  void Add() { ++pending_; }
  void Done() {
    if (--pending_ == 0) {
      auto then = std::move(then_);
      then();
    }
  }

 private:
  std::size_t pending_ = 1;
  std::move_only_function<void()> then_;
};

}  // namespace

bool BuildReport::ok() const {
  return std::all_of(paths.begin(), paths.end(), [](const PathOutcome& p) { return p.attached; });
}

// Threading: OnControl, OnControlAsync and the accessors of the loops and the config run on any thread but the loops;
// everything else runs on the control loop.
class Fabric::Impl {
 public:
  static Result<std::unique_ptr<Impl>> Create(Config config, FabricOptions options);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Runs `work` on the control loop and returns its result.
  template <typename F>
  std::invoke_result_t<F&> OnControl(F work);
  // Runs `start(reply)` on the control loop and waits until it, or what it started, calls reply(result).
  template <typename R, typename F>
  R OnControlAsync(F start);

  void StartBuild(std::move_only_function<void(Result<BuildReport>)> done);
  std::vector<HeadView> Heads();
  Result<HeadView> FindHeadView(std::string_view name);
  std::shared_ptr<Head> FindHead(std::string_view name) const;
  std::vector<std::shared_ptr<Head>> AllHeads() const;
  Result<void> SetPolicy(std::string_view head, IoPolicyKind policy);
  Result<void> SetPathState(std::string_view path, PathState state);
  // Moves the head paths over configured link `link` that are in state `from` to `to`.
  void MarkLinkPaths(const std::string& link, PathState from, PathState to);
  Result<std::string> Inject(const FaultRequest& request);
  void Reservation(const PrRequest& request, std::move_only_function<void(Result<PrReport>)> reply);
  Result<std::uint64_t> RtpgCount(std::string_view array) const;
  Result<std::uint64_t> AnaLogReads(std::string_view subsystem) const;

  [[nodiscard]] std::size_t io_threads() const { return pool_->size(); }
  [[nodiscard]] EventLoop& io_loop(std::size_t index) { return pool_->loop(index); }
  [[nodiscard]] EventLoop& control_loop() { return *control_; }
  [[nodiscard]] const Config& config() const { return config_; }

 private:
  struct ArrayRecord {
    const SimScsiArray* config = nullptr;
    scsi::fake::Array* array = nullptr;
    std::atomic<std::uint64_t> rtpgs{0};
  };
  struct SubsystemRecord {
    const SimNvmeSubsystem* config = nullptr;
    nvme::fake::Subsystem* subsystem = nullptr;
    std::atomic<std::uint64_t> ana_log_reads{0};
  };
  // One configured [[sim.path]]: an I_T nexus or an NVMe controller connection.
  struct Link {
    const SimPath* config = nullptr;
    bool scsi = false;
    sim::LinkFaults* faults = nullptr;
    std::unique_ptr<CountingScsiTransport> scsi_transport;
    std::unique_ptr<CountingNvmeTransport> nvme_transport;
    std::uint16_t port_group = 0;  // SCSI: the port's target port group
    std::uint16_t cntlid = 0;      // NVMe: once attached
  };
  // One LU or namespace reached through a link: a path of a head, or a direct device.
  struct DevicePath {
    std::string link;
    std::uint64_t unit = 0;  // LUN or NSID
  };
  struct HeadMeta {
    std::string alias;
    std::string vendor;
    std::string product;
  };
  struct BuildState {
    BuildReport report;
    std::move_only_function<void(Result<BuildReport>)> done;
    std::vector<std::string> active;   // SCSI paths whose port answered READ CAPACITY
    std::vector<std::string> passive;  // the others: attached once the active ones have given their heads geometry
  };
  struct ProbeRecord {
    Impl* impl = nullptr;
    std::string name;
    std::shared_ptr<Path> path;  // keeps the driver alive while its TEST UNIT READY is out
  };
  using Outcome = BuildReport::PathOutcome;

  Impl(Config config, FabricOptions options) : config_(std::move(config)), options_(options) {}

  Result<void> MakeControlPlane(RegistryOptions registry_options, scsi::AluaMode alua_mode);
  Result<void> MakeDevices();
  Result<void> ConnectLinks();
  void ProbeScsiPaths(std::shared_ptr<BuildState> build);
  void AttachActive(std::shared_ptr<BuildState> build);
  void AttachPassive(std::shared_ptr<BuildState> build);
  void Settle(std::shared_ptr<BuildState> build, TimePoint deadline);
  [[nodiscard]] bool AccessStatesSettled() const;

  void AttachScsiPath(const std::string& name, std::move_only_function<void(Result<Attachment>&)> done);
  void AttachNvmeLink(const std::string& name, std::move_only_function<void(std::vector<Outcome>)> done);
  // Takes what an attach produced (a head's path, or a direct device to keep) and describes it.
  Outcome Take(const std::string& path, Result<Attachment>& attached);
  void NoteHead(const std::shared_ptr<Head>& head);
  void Reattach(const std::string& name, int tries_left);

  void StartChecker();
  void CheckerRound();
  void ProbePath(const std::shared_ptr<Head>& head, const PathInfo& info);
  static void OnProbeDone(IoRequest& io, void* arg);

  HeadView ViewOf(const Head& head) const;
  [[nodiscard]] std::string AddressOf(const std::string& path) const;
  [[nodiscard]] std::uint64_t InFlightOf(const std::string& path) const;
  std::shared_ptr<Head> Resolve(std::string_view name) const;
  Result<std::shared_ptr<Head>> ResolveOrError(std::string_view name) const;

  Result<std::string> InjectLinkFault(const FaultRequest& request);
  Result<std::string> InjectArrayFault(const FaultRequest& request, ArrayRecord& array);
  Result<std::string> InjectSubsystemFault(const FaultRequest& request, SubsystemRecord& subsystem);
  const SimLogicalUnit* FindLu(const ArrayRecord& array, std::uint64_t lun) const;
  const SimNamespace* FindNamespace(const SubsystemRecord& subsystem, std::uint64_t nsid) const;
  void NoteDelay(Nanos delay) { max_delay_ = std::max(max_delay_, delay); }

  void ScsiReservation(const PrRequest& request, const std::shared_ptr<Head>& head,
                       std::move_only_function<void(Result<PrReport>)> reply);
  void NvmeReservation(const PrRequest& request, const std::shared_ptr<Head>& head,
                       std::move_only_function<void(Result<PrReport>)> reply);

  void ShutDownOnControl(std::shared_ptr<std::promise<void>> finished);

  // Constant after Create.
  const Config config_;
  const FabricOptions options_;

  // Created by Create, destroyed by the destructor in reverse: the loops outlive everything that posts to them.
  std::unique_ptr<EventLoop> control_;
  std::thread control_thread_;
  std::unique_ptr<ReactorPool> pool_;
  std::unique_ptr<sim::SimSan> san_;

  // Control loop only.
  std::map<std::string, std::unique_ptr<ArrayRecord>, std::less<>> arrays_;
  std::map<std::string, std::unique_ptr<SubsystemRecord>, std::less<>> subsystems_;
  std::map<std::string, Link, std::less<>> links_;                // by configured path name
  std::map<std::string, DevicePath, std::less<>> device_paths_;  // by head path name
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<scsi::ScsiPersonality> scsi_;
  std::unique_ptr<nvme::NvmePersonality> nvme_;
  std::map<std::string, std::unique_ptr<DirectDevice>, std::less<>> direct_;  // devices not multipathed
  std::map<std::string, HeadMeta, std::less<>> head_meta_;  // by head name
  std::map<std::string, std::pair<std::string, std::string>> inquiry_;  // identity -> vendor/model, product/serial
  std::unique_ptr<IoRequestPool> probe_pool_;
  std::map<std::string, std::unique_ptr<ProbeRecord>, std::less<>> probes_;  // TEST UNIT READYs out, by path
  TimerId checker_timer_ = 0;
  Nanos max_delay_{0};  // the longest link delay configured or injected: what shutdown waits out
  bool build_started_ = false;
  bool shutting_down_ = false;
};

// --- Creation and destruction.

Result<std::unique_ptr<Fabric::Impl>> Fabric::Impl::Create(Config config, FabricOptions options) {
  if (options.io_threads > 1024) {
    return MakeError(Errc::kInvalidArgument,
                     fmt::format("io_threads must be at most 1024, not {}", options.io_threads));
  }
  RegistryOptions registry_options = MPATH_TRY(config.ToRegistryOptions());
  const scsi::AluaMode alua_mode = MPATH_TRY(scsi::ParseAluaMode(config.alua));
  std::unique_ptr<Impl> impl(new Impl(std::move(config), options));
  impl->control_ = MPATH_TRY(EventLoop::Create());
  impl->pool_ = MPATH_TRY(ReactorPool::Create({.loops = options.io_threads}));
  impl->san_ = MPATH_TRY(sim::SimSan::Create({.clock = &SteadyClock::Instance(), .seed = impl->config_.sim.seed}));
  if (auto started = impl->pool_->Start(); !started) return std::unexpected(started.error());
  impl->control_thread_ = std::thread([loop = impl->control_.get()] { loop->Run(); });
  Impl* raw = impl.get();
  Result<void> made = impl->OnControl([raw, &registry_options, alua_mode] {
    return raw->MakeControlPlane(std::move(registry_options), alua_mode);
  });
  if (!made) return std::unexpected(made.error());
  return impl;
}

Result<void> Fabric::Impl::MakeControlPlane(RegistryOptions registry_options, scsi::AluaMode alua_mode) {
  registry_ = MPATH_TRY(Registry::Create(std::move(registry_options), *control_));

  scsi::ScsiPersonalityOptions scsi_options;
  scsi_options.alua.mode = alua_mode;
  scsi_options.on_path_remapped = [this](const std::string& path, const scsi::ProbedUnit& now) {
    if (!now.identity.identity.empty() && now.inquiry.vendor && now.inquiry.product) {
      inquiry_.insert_or_assign(now.identity.identity.str(), std::pair(*now.inquiry.vendor, *now.inquiry.product));
    }
    // Another volume answers here now: the path left its head and joins (or makes) the head of its new identity.
    control_->Post([this, path] { Reattach(path, kReattachTries); });
  };
  scsi_ = MPATH_TRY(scsi::ScsiPersonality::Create(*registry_, *control_, std::move(scsi_options)));

  nvme::NvmePersonalityOptions nvme_options;
  nvme_options.on_namespace_attached = [this](const std::string& controller, nvme::NamespaceAttachment& ns) {
    device_paths_.try_emplace(ns.path, DevicePath{controller, ns.nsid});
    if (ns.attachment && ns.attachment->multipathed()) {
      if (const nvme::ControllerSummary* summary = nvme_->Controller(controller)) {
        inquiry_.insert_or_assign(ns.attachment->head->identity().str(), std::pair(summary->model, summary->serial));
      }
    }
    (void)Take(ns.path, ns.attachment);
  };
  nvme_options.on_namespace_detached = [this](const std::string& path, const DeviceIdentity&) {
    direct_.erase(path);
  };
  nvme_ = MPATH_TRY(nvme::NvmePersonality::Create(*registry_, *control_, std::move(nvme_options)));

  probe_pool_ = std::make_unique<IoRequestPool>(kCheckerRequests, scsi::ScsiPathDriver::RequiredContextSize());
  return {};
}

Fabric::Impl::~Impl() {
  if (control_thread_.joinable()) {
    auto finished = std::make_shared<std::promise<void>>();
    std::future<void> done = finished->get_future();
    control_->Post([this, finished] { ShutDownOnControl(finished); });
    done.wait();
    if (pool_ != nullptr) pool_->Stop();
    control_->Stop();
    control_thread_.join();
  } else if (pool_ != nullptr) {
    pool_->Stop();
  }
  // Nothing runs now. The devices go first (what they still post lands on loops that never run it again), then the
  // loops, whose leftover tasks are dropped unrun, then the transports those tasks named.
  san_.reset();
  pool_.reset();
  control_.reset();
  links_.clear();
}

// Detaches every path while the loops still run, so that nothing is left half attached; gives commands still on a
// delayed link time to arrive; then disconnects every link (an NVMe controller going aborts its Asynchronous Event
// Requests, whose completions must run here).
void Fabric::Impl::ShutDownOnControl(std::shared_ptr<std::promise<void>> finished) {
  shutting_down_ = true;
  if (checker_timer_ != 0) control_->Cancel(checker_timer_);
  checker_timer_ = 0;
  if (scsi_ != nullptr) {
    for (const auto& [name, path] : device_paths_) {
      auto link = links_.find(path.link);
      if (link != links_.end() && link->second.scsi) (void)scsi_->DetachPath(name);
    }
  }
  if (nvme_ != nullptr) {
    for (const auto& [name, link] : links_) {
      if (!link.scsi) (void)nvme_->DetachController(name);
    }
  }
  direct_.clear();
  scsi_.reset();
  nvme_.reset();
  registry_.reset();
  for (auto& [name, link] : links_) {
    if (link.faults != nullptr) link.faults->Clear();
  }
  control_->ScheduleAfter(max_delay_ + 20ms, [this, finished] {
    for (const auto& [name, link] : links_) (void)san_->Disconnect(name);
    // Runs after the completions the disconnections posted.
    control_->Post([finished] { finished->set_value(); });
  });
}

template <typename F>
std::invoke_result_t<F&> Fabric::Impl::OnControl(F work) {
  using R = std::invoke_result_t<F&>;
  if (control_->IsLoopThread()) return work();
  std::packaged_task<R()> task(std::move(work));
  std::future<R> result = task.get_future();
  control_->Post([&task] { task(); });
  return result.get();
}

template <typename R, typename F>
R Fabric::Impl::OnControlAsync(F start) {
  if (control_->IsLoopThread()) {
    return MakeError(Errc::kInternal, "the fabric cannot wait for its own control loop");
  }
  auto promise = std::make_shared<std::promise<R>>();
  std::future<R> result = promise->get_future();
  control_->Post([start = std::move(start), promise]() mutable {
    start([promise](R value) { promise->set_value(std::move(value)); });
  });
  if (result.wait_for(kReplyBound) != std::future_status::ready) {
    return MakeError(Errc::kTimedOut, "no answer from the fabric's control loop in time");
  }
  return result.get();
}

// --- Build.

void Fabric::Impl::StartBuild(std::move_only_function<void(Result<BuildReport>)> done) {
  if (build_started_) {
    done(MakeError(Errc::kAlreadyExists, "the fabric is already built"));
    return;
  }
  build_started_ = true;
  if (auto made = MakeDevices(); !made) {
    done(std::unexpected(made.error()));
    return;
  }
  if (auto connected = ConnectLinks(); !connected) {
    done(std::unexpected(connected.error()));
    return;
  }
  auto build = std::make_shared<BuildState>();
  build->done = std::move(done);
  ProbeScsiPaths(std::move(build));
}

Result<void> Fabric::Impl::MakeDevices() {
  for (const SimScsiArray& config : config_.sim.scsi_arrays) {
    scsi::fake::ArrayConfig array_config;
    array_config.vendor = config.vendor;
    array_config.product = config.product;
    // The ALUA engine shares port group state per target name: each array needs its own.
    array_config.target_name = "iqn.2026-11.io.mpath.sim:" + config.name;
    array_config.tpgs = config.tpgs;
    array_config.transition_time_secs = config.transition_secs;
    auto record = std::make_unique<ArrayRecord>();
    record->config = &config;
    auto added = san_->AddScsiArray(config.name, std::move(array_config));
    if (!added) {
      return MakeError(added.error().code(), fmt::format("array '{}': {}", config.name, added.error().message()));
    }
    record->array = *added;
    for (const SimPortGroup& group : config.port_groups) {
      auto state = ParseAluaState(group.state);
      if (!state) {
        return MakeError(Errc::kInvalidArgument,
                         fmt::format("array '{}' port group {}: {}", config.name, group.id, state.error().message()));
      }
      if (auto ok = record->array->AddPortGroup(
              {.id = group.id, .state = *state, .preferred = group.preferred, .relative_ports = group.ports});
          !ok) {
        return MakeError(ok.error().code(), fmt::format("array '{}' port group {}: {}", config.name, group.id,
                                                        ok.error().message()));
      }
    }
    for (const SimLogicalUnit& lu : config.lus) {
      if (lu.block_size == 0 || lu.size_mib * kMiB % lu.block_size != 0 || lu.size_mib == 0) {
        return MakeError(Errc::kInvalidArgument,
                         fmt::format("array '{}' LU {}: {} MiB is not a whole number of {}-byte blocks", config.name,
                                     lu.lun, lu.size_mib, lu.block_size));
      }
      scsi::fake::LogicalUnitConfig lu_config;
      lu_config.lun = lu.lun;
      lu_config.blocks = lu.size_mib * kMiB / lu.block_size;
      lu_config.block_size = lu.block_size;
      lu_config.naa = lu.naa;
      lu_config.serial = lu.serial.empty() ? fmt::format("{}-lun{}", config.name, lu.lun) : lu.serial;
      if (auto ok = record->array->AddLogicalUnit(std::move(lu_config)); !ok) {
        return MakeError(ok.error().code(),
                         fmt::format("array '{}' LU {}: {}", config.name, lu.lun, ok.error().message()));
      }
    }
    // Counts REPORT TARGET PORT GROUPS exactly (MAINTENANCE IN carries other service actions too), then answers as
    // the array always does.
    ArrayRecord* counted = record.get();
    record->array->SetHandler(scsi::spec::op::kMaintenanceIn, [counted](scsi::fake::CommandContext& context) {
      if ((context.command.cdb[1] & 0x1F) == scsi::spec::service_action::kReportTargetPortGroups) {
        counted->rtpgs.fetch_add(1, std::memory_order_relaxed);
      }
      context.array.DefaultHandler(context);
    });
    arrays_.emplace(config.name, std::move(record));
  }

  for (const SimNvmeSubsystem& config : config_.sim.nvme_subsystems) {
    nvme::fake::SubsystemConfig subsystem_config;
    subsystem_config.nqn = config.nqn.empty() ? "nqn.2026-11.io.mpath.sim:" + config.name : config.nqn;
    subsystem_config.serial = ("SIM-" + config.name).substr(0, 20);
    subsystem_config.anatt_secs = config.anatt_secs;
    auto record = std::make_unique<SubsystemRecord>();
    record->config = &config;
    auto added = san_->AddNvmeSubsystem(config.name, std::move(subsystem_config));
    if (!added) {
      return MakeError(added.error().code(), fmt::format("subsystem '{}': {}", config.name, added.error().message()));
    }
    record->subsystem = *added;
    for (std::uint16_t port : config.ports) {
      if (auto ok = record->subsystem->AddPort(port); !ok) {
        return MakeError(ok.error().code(),
                         fmt::format("subsystem '{}' port {}: {}", config.name, port, ok.error().message()));
      }
    }
    for (const SimNamespace& ns : config.namespaces) {
      if (ns.block_size == 0 || ns.size_mib * kMiB % ns.block_size != 0 || ns.size_mib == 0) {
        return MakeError(Errc::kInvalidArgument,
                         fmt::format("subsystem '{}' namespace {}: {} MiB is not a whole number of {}-byte blocks",
                                     config.name, ns.nsid, ns.size_mib, ns.block_size));
      }
      if (auto ok = record->subsystem->AddNamespace({.nsid = ns.nsid,
                                                      .blocks = ns.size_mib * kMiB / ns.block_size,
                                                      .block_size = ns.block_size,
                                                      .nguid = ns.nguid,
                                                      .ana_group = ns.ana_group});
          !ok) {
        return MakeError(ok.error().code(),
                         fmt::format("subsystem '{}' namespace {}: {}", config.name, ns.nsid, ok.error().message()));
      }
    }
    for (const SimAnaState& ana : config.ana) {
      auto state = ParseAnaState(ana.state);
      if (!state) {
        return MakeError(Errc::kInvalidArgument,
                         fmt::format("subsystem '{}' ANA group {} on port {}: {}", config.name, ana.group, ana.port,
                                     state.error().message()));
      }
      if (auto ok = record->subsystem->SetAnaState(ana.port, ana.group, *state); !ok) {
        return MakeError(ok.error().code(), fmt::format("subsystem '{}' ANA group {} on port {}: {}", config.name,
                                                        ana.group, ana.port, ok.error().message()));
      }
    }
    // Counts Get Log Page for the ANA log alone, then answers as the subsystem always does.
    SubsystemRecord* counted = record.get();
    record->subsystem->SetHandler(
        nvme::QueueKind::kAdmin, nvme::spec::Raw(nvme::spec::AdminOpcode::kGetLogPage),
        [counted](nvme::fake::CommandContext& context) {
          if ((context.command.sqe.cdw10.value() & 0xFF) ==
              static_cast<std::uint32_t>(nvme::spec::LogPageId::kAsymmetricNamespaceAccess)) {
            counted->ana_log_reads.fetch_add(1, std::memory_order_relaxed);
          }
          context.subsystem.DefaultHandler(context);
        });
    subsystems_.emplace(config.name, std::move(record));
  }
  return {};
}

Result<void> Fabric::Impl::ConnectLinks() {
  for (const SimPath& config : config_.sim.paths) {
    if (links_.contains(config.name)) {
      return MakeError(Errc::kAlreadyExists,
                       WithSource(config.source, fmt::format("path '{}' is configured twice", config.name)));
    }
    Link link;
    link.config = &config;
    if (auto array = arrays_.find(config.target); array != arrays_.end()) {
      const SimScsiArray& target = *array->second->config;
      std::vector<std::string> ports;
      bool has_port = false;
      for (const SimPortGroup& group : target.port_groups) {
        for (std::uint16_t port : group.ports) {
          ports.push_back(std::to_string(port));
          if (port == config.port) {
            link.port_group = group.id;
            has_port = true;
          }
        }
      }
      if (!has_port) {
        return MakeError(Errc::kNotFound,
                         WithSource(config.source, fmt::format("path '{}': array '{}' has no port {} (its ports: {})",
                                                               config.name, config.target, config.port,
                                                               JoinNames(ports))));
      }
      auto nexus = san_->ConnectScsi({.name = config.name, .array = config.target,
                                      .initiator_port = config_.host.iscsi_initiator, .relative_port = config.port});
      if (!nexus) {
        return MakeError(nexus.error().code(),
                         WithSource(config.source, fmt::format("path '{}': {}", config.name, nexus.error().message())));
      }
      std::vector<std::uint64_t> luns;
      for (const SimLogicalUnit& lu : target.lus) {
        luns.push_back(lu.lun);
        device_paths_.insert_or_assign(fmt::format("{}:lun{}", config.name, lu.lun), DevicePath{config.name, lu.lun});
      }
      link.scsi = true;
      link.scsi_transport = std::make_unique<CountingScsiTransport>(**nexus, luns);
    } else if (auto subsystem = subsystems_.find(config.target); subsystem != subsystems_.end()) {
      const SimNvmeSubsystem& target = *subsystem->second->config;
      if (std::find(target.ports.begin(), target.ports.end(), config.port) == target.ports.end()) {
        std::vector<std::string> ports;
        for (std::uint16_t port : target.ports) ports.push_back(std::to_string(port));
        return MakeError(Errc::kNotFound,
                         WithSource(config.source,
                                    fmt::format("path '{}': subsystem '{}' has no port {} (its ports: {})",
                                                config.name, config.target, config.port, JoinNames(ports))));
      }
      auto controller = san_->ConnectNvme({.name = config.name, .subsystem = config.target,
                                           .host_nqn = config_.host.nvme_host_nqn,
                                           .host_id = config_.host.nvme_host_id, .port = config.port});
      if (!controller) {
        return MakeError(controller.error().code(),
                         WithSource(config.source,
                                    fmt::format("path '{}': {}", config.name, controller.error().message())));
      }
      std::vector<std::uint64_t> nsids;
      for (const SimNamespace& ns : target.namespaces) {
        nsids.push_back(ns.nsid);
        device_paths_.insert_or_assign(fmt::format("{}n{}", config.name, ns.nsid), DevicePath{config.name, ns.nsid});
      }
      link.nvme_transport = std::make_unique<CountingNvmeTransport>(**controller, nsids);
    } else {
      std::vector<std::string> targets;
      for (const auto& [name, record] : arrays_) targets.push_back(name);
      for (const auto& [name, record] : subsystems_) targets.push_back(name);
      return MakeError(Errc::kNotFound,
                       WithSource(config.source, fmt::format("path '{}': no array or subsystem named '{}' (known: {})",
                                                             config.name, config.target, JoinNames(targets))));
    }
    link.faults = MPATH_TRY(san_->Faults(config.name));
    if (config.latency_ms < 0 || !std::isfinite(config.latency_ms) || config.latency_ms > kMaxFaultMillis) {
      return MakeError(Errc::kInvalidArgument,
                       WithSource(config.source, fmt::format("path '{}': latency_ms {} is out of range (0 to {})",
                                                             config.name, config.latency_ms, kMaxFaultMillis)));
    }
    link.faults->SetLatency(Millis(config.latency_ms));
    NoteDelay(Millis(config.latency_ms));
    links_.emplace(config.name, std::move(link));
  }
  return {};
}

// Probes every SCSI path once before attaching any: the answers say which ports serve READ CAPACITY (those attach
// first, so that their heads know the geometry when standby ports join) and what the LU's vendor and product are.
void Fabric::Impl::ProbeScsiPaths(std::shared_ptr<BuildState> build) {
  auto join = std::make_shared<Join>([this, build] { AttachActive(build); });
  for (const auto& [name, path] : device_paths_) {
    const Link& link = links_.at(path.link);
    if (!link.scsi) continue;
    join->Add();
    scsi::ProbeLogicalUnit(*link.scsi_transport, path.unit, *control_, {},
                           [this, build, join, name](Result<scsi::ProbedUnit> unit) {
                             if (unit && !unit->identity.identity.empty() && unit->inquiry.vendor &&
                                 unit->inquiry.product) {
                               inquiry_.insert_or_assign(unit->identity.identity.str(),
                                                         std::pair(*unit->inquiry.vendor, *unit->inquiry.product));
                             }
                             // A failed probe goes last; its attach will say what is wrong.
                             (unit && unit->capacity ? build->active : build->passive).push_back(name);
                             join->Done();
                           });
  }
  join->Done();
}

void Fabric::Impl::AttachActive(std::shared_ptr<BuildState> build) {
  std::sort(build->active.begin(), build->active.end());
  auto join = std::make_shared<Join>([this, build] { AttachPassive(build); });
  for (const std::string& name : build->active) {
    join->Add();
    AttachScsiPath(name, [this, build, join, name](Result<Attachment>& attached) {
      build->report.paths.push_back(Take(name, attached));
      join->Done();
    });
  }
  for (const auto& [name, link] : links_) {
    if (link.scsi) continue;
    join->Add();
    AttachNvmeLink(name, [build, join](std::vector<Outcome> outcomes) {
      for (Outcome& outcome : outcomes) build->report.paths.push_back(std::move(outcome));
      join->Done();
    });
  }
  join->Done();
}

void Fabric::Impl::AttachPassive(std::shared_ptr<BuildState> build) {
  std::sort(build->passive.begin(), build->passive.end());
  auto join = std::make_shared<Join>([this, build] { Settle(build, control_->clock().Now() + kSettleBound); });
  for (const std::string& name : build->passive) {
    join->Add();
    AttachScsiPath(name, [this, build, join, name](Result<Attachment>& attached) {
      build->report.paths.push_back(Take(name, attached));
      join->Done();
    });
  }
  join->Done();
}

void Fabric::Impl::Settle(std::shared_ptr<BuildState> build, TimePoint deadline) {
  if (!AccessStatesSettled() && control_->clock().Now() < deadline) {
    control_->ScheduleAfter(kSettlePoll, [this, build, deadline] { Settle(build, deadline); });
    return;
  }
  std::sort(build->report.paths.begin(), build->report.paths.end(),
            [](const Outcome& a, const Outcome& b) { return a.path < b.path; });
  StartChecker();
  build->done(std::move(build->report));
}

// Settled when every head path shows what its device reports now (and, for SCSI, the configured PREF bit, which only
// an RTPG tells): then the first RTPG or ANA log read of every target is in.
bool Fabric::Impl::AccessStatesSettled() const {
  for (const std::shared_ptr<Head>& head : registry_->Heads()) {
    for (const PathInfo& info : head->Paths()) {
      auto device_path = device_paths_.find(info.name);
      if (device_path == device_paths_.end()) continue;
      const Link& link = links_.at(device_path->second.link);
      std::optional<AccessState> expected;
      bool preferred = false;
      if (link.scsi) {
        const ArrayRecord& array = *arrays_.at(link.config->target);
        if (array.config->tpgs == 0) {
          expected = AccessState::kOptimized;
        } else {
          auto state = array.array->AccessState(link.port_group);
          if (!state) continue;
          expected = HostView(*state);
          for (const SimPortGroup& group : array.config->port_groups) {
            if (group.id == link.port_group) preferred = group.preferred;
          }
        }
      } else {
        const SubsystemRecord& subsystem = *subsystems_.at(link.config->target);
        const SimNamespace* ns = FindNamespace(subsystem, device_path->second.unit);
        if (ns == nullptr) continue;
        auto state = subsystem.subsystem->GetAnaState(link.config->port, ns->ana_group);
        if (!state) continue;
        expected = HostView(*state);
      }
      if (!expected || info.access != *expected || info.preferred != preferred) return false;
    }
  }
  return true;
}

void Fabric::Impl::AttachScsiPath(const std::string& name, std::move_only_function<void(Result<Attachment>&)> done) {
  const DevicePath& path = device_paths_.at(name);
  Link& link = links_.at(path.link);
  scsi_->AttachPath({.name = name, .transport = "sim", .nexus = link.scsi_transport.get(), .lun = path.unit,
                     .initiator_port = config_.host.iscsi_initiator},
                    [done = std::move(done)](Result<Attachment> attached) mutable { done(attached); });
}

void Fabric::Impl::AttachNvmeLink(const std::string& name, std::move_only_function<void(std::vector<Outcome>)> done) {
  Link& link = links_.at(name);
  nvme_->AttachController(
      {.name = name, .transport = "sim", .controller = link.nvme_transport.get(),
       .host_nqn = config_.host.nvme_host_nqn, .host_id = config_.host.nvme_host_id},
      [this, name, done = std::move(done)](Result<nvme::ControllerAttachment> attached) mutable {
        std::vector<Outcome> outcomes;
        if (!attached) {
          Outcome failed;
          failed.path = name;
          failed.message = attached.error().ToString();
          outcomes.push_back(std::move(failed));
          done(std::move(outcomes));
          return;
        }
        links_.at(name).cntlid = attached->controller.cntlid;
        for (nvme::NamespaceAttachment& ns : attached->namespaces) {
          device_paths_.try_emplace(ns.path, DevicePath{name, ns.nsid});
          if (ns.attachment && ns.attachment->multipathed()) {
            inquiry_.insert_or_assign(ns.attachment->head->identity().str(),
                                      std::pair(attached->controller.model, attached->controller.serial));
          }
          outcomes.push_back(Take(ns.path, ns.attachment));
        }
        done(std::move(outcomes));
      });
}

BuildReport::PathOutcome Fabric::Impl::Take(const std::string& path, Result<Attachment>& attached) {
  Outcome outcome;
  outcome.path = path;
  if (!attached) {
    outcome.message = attached.error().ToString();
    return outcome;
  }
  outcome.attached = true;
  outcome.multipathed = attached->multipathed();
  outcome.message = attached->reason;
  if (attached->multipathed()) {
    outcome.head = attached->head->name();
    NoteHead(attached->head);
  } else if (attached->direct != nullptr) {
    direct_.insert_or_assign(path, std::move(attached->direct));
  }
  return outcome;
}

// A head seen for the first time gets its [[device]] overrides and its alias. Only the settings a live head can change
// are applied (iopolicy, delayed removal / queue_if_no_path); the rest come from [defaults] at creation.
void Fabric::Impl::NoteHead(const std::shared_ptr<Head>& head) {
  auto [it, fresh] = head_meta_.try_emplace(head->name());
  if (!fresh) return;
  HeadMeta& meta = it->second;
  if (auto inquiry = inquiry_.find(head->identity().str()); inquiry != inquiry_.end()) {
    meta.vendor = inquiry->second.first;
    meta.product = inquiry->second.second;
  }
  const DeviceSettings* device = config_.DeviceFor(head->identity().str());
  if (device == nullptr) return;
  meta.alias = device->alias;
  // Validated with the config; a head whose options the device would make invalid keeps the defaults.
  if (auto options = device->head.ApplyTo(head->options())) {
    head->SetIoPolicy(options->policy);
    (void)head->SetDelayedRemoval(options->delayed_removal);
  }
}

void Fabric::Impl::Reattach(const std::string& name, int tries_left) {
  if (shutting_down_ || !device_paths_.contains(name)) return;
  AttachScsiPath(name, [this, name, tries_left](Result<Attachment>& attached) {
    if (!attached && attached.error().code() == Errc::kBusy && tries_left > 1 && !shutting_down_) {
      control_->ScheduleAfter(kReattachDelay, [this, name, tries_left] { Reattach(name, tries_left - 1); });
      return;
    }
    (void)Take(name, attached);
  });
}

// --- The path checker.

void Fabric::Impl::StartChecker() {
  if (checker_timer_ == 0 && !shutting_down_) {
    checker_timer_ = control_->ScheduleAfter(kCheckerInterval, [this] { CheckerRound(); });
  }
}

// Every live SCSI path in an active state gets a TEST UNIT READY; a head with no active path has all its paths asked
// (one of them may have come back). Standby ports answer NOT READY, which the ALUA engine turns into an RTPG, so they
// are asked only then.
void Fabric::Impl::CheckerRound() {
  checker_timer_ = 0;
  if (shutting_down_) return;
  for (const std::shared_ptr<Head>& head : registry_->Heads()) {
    if (head->personality().protocol() != "scsi") continue;
    const std::vector<PathInfo> paths = head->Paths();
    auto active = [](const PathInfo& p) {
      return p.access == AccessState::kOptimized || p.access == AccessState::kNonOptimized;
    };
    const bool any_active = std::any_of(paths.begin(), paths.end(), [&](const PathInfo& p) {
      return p.state == PathState::kLive && active(p);
    });
    for (const PathInfo& info : paths) {
      if (info.state == PathState::kRemoving || (any_active && !active(info))) continue;
      ProbePath(head, info);
    }
  }
  StartChecker();
}

void Fabric::Impl::ProbePath(const std::shared_ptr<Head>& head, const PathInfo& info) {
  if (probes_.contains(info.name)) return;  // the last one is still out (a hung link)
  std::shared_ptr<Path> path = head->FindPath(info.id);
  if (path == nullptr) return;
  IoRequest* io = probe_pool_->Acquire();
  if (io == nullptr) return;
  auto record = std::make_unique<ProbeRecord>(ProbeRecord{this, info.name, path});
  io->op = IoOp::kProbe;
  io->fua = false;
  io->offset = 0;
  io->length = 0;
  io->data = nullptr;
  io->passthrough = nullptr;
  io->user = record.get();
  io->OnComplete(&Impl::OnProbeDone, nullptr);
  io->RouteToSubmitter();
  probes_.insert_or_assign(info.name, std::move(record));
  // The answer itself does not matter here: sense on it reaches the personality through the driver's observer.
  path->driver().Submit(*io);
}

void Fabric::Impl::OnProbeDone(IoRequest& io, void* /*arg*/) {
  auto* record = static_cast<ProbeRecord*>(io.user);
  Impl* impl = record->impl;
  // The driver is still on the stack: the request and the path are let go of after it returns.
  impl->control_->Post([impl, io = &io, name = record->name] {
    impl->probe_pool_->Release(io);
    impl->probes_.erase(name);
  });
}

// --- Views.

std::vector<HeadView> Fabric::Impl::Heads() {
  std::vector<HeadView> views;
  for (const std::shared_ptr<Head>& head : registry_->Heads()) views.push_back(ViewOf(*head));
  return views;
}

Result<HeadView> Fabric::Impl::FindHeadView(std::string_view name) {
  std::shared_ptr<Head> head = MPATH_TRY(ResolveOrError(name));
  return ViewOf(*head);
}

HeadView Fabric::Impl::ViewOf(const Head& head) const {
  HeadView view;
  view.name = head.name();
  if (auto meta = head_meta_.find(head.name()); meta != head_meta_.end()) {
    view.alias = meta->second.alias;
    view.vendor = meta->second.vendor;
    view.product = meta->second.product;
  }
  view.identity = head.identity().str();
  view.protocol = std::string(head.personality().protocol());
  view.capacity_bytes = head.capacity_bytes();
  view.block_size = head.block_size();
  view.policy = head.policy();
  view.state = head.state();
  view.counters = head.Counters();
  for (const PathInfo& info : head.Paths()) {
    PathView path;
    path.name = info.name;
    path.protocol = view.protocol;
    path.transport = info.transport;
    path.address = AddressOf(info.name);
    path.state = info.state;
    path.access = info.access;
    path.preferred = info.preferred;
    path.marginal = info.marginal;
    path.usable = info.usable;
    path.in_flight = InFlightOf(info.name);
    path.counters = info.counters;
    const LatencyHistogram& latency = info.counters.latency;
    if (latency.count() > 0) {
      auto micros = [](Nanos ns) { return static_cast<double>(ns.count()) / 1000.0; };
      path.latency_p50_us = micros(latency.Quantile(0.5));
      path.latency_p99_us = micros(latency.Quantile(0.99));
      path.latency_max_us = micros(latency.Quantile(1.0));
    }
    view.paths.push_back(std::move(path));
  }
  // The AccessState enumeration is ordered optimized, non-optimized, then the rest.
  std::sort(view.paths.begin(), view.paths.end(), [](const PathView& a, const PathView& b) {
    return std::pair(static_cast<int>(a.access), a.name) < std::pair(static_cast<int>(b.access), b.name);
  });
  return view;
}

std::string Fabric::Impl::AddressOf(const std::string& path) const {
  auto device_path = device_paths_.find(path);
  if (device_path == device_paths_.end()) return "";
  const Link& link = links_.at(device_path->second.link);
  if (link.scsi) {
    return fmt::format("sim {} tpg{}/port{} lun{}", link.config->target, link.port_group, link.config->port,
                       device_path->second.unit);
  }
  return fmt::format("sim {} port{} nsid{} (cntlid {})", link.config->target, link.config->port,
                     device_path->second.unit, link.cntlid);
}

std::uint64_t Fabric::Impl::InFlightOf(const std::string& path) const {
  auto device_path = device_paths_.find(path);
  if (device_path == device_paths_.end()) return 0;
  const Link& link = links_.at(device_path->second.link);
  if (link.scsi) return link.scsi_transport->InFlight(device_path->second.unit);
  return link.nvme_transport->InFlight(static_cast<std::uint32_t>(device_path->second.unit));
}

std::shared_ptr<Head> Fabric::Impl::Resolve(std::string_view name) const {
  if (registry_ == nullptr || name.empty()) return nullptr;
  if (std::shared_ptr<Head> head = registry_->FindHead(name)) return head;
  for (const auto& [head_name, meta] : head_meta_) {
    if (meta.alias == name) return registry_->FindHead(head_name);
  }
  return nullptr;
}

Result<std::shared_ptr<Head>> Fabric::Impl::ResolveOrError(std::string_view name) const {
  if (std::shared_ptr<Head> head = Resolve(name)) return head;
  std::vector<std::string> names;
  if (registry_ != nullptr) {
    for (const std::shared_ptr<Head>& head : registry_->Heads()) names.push_back(head->name());
  }
  return MakeError(Errc::kNotFound, fmt::format("no head '{}' (by name, alias or identity; heads: {})", name,
                                                JoinNames(names)));
}

std::shared_ptr<Head> Fabric::Impl::FindHead(std::string_view name) const { return Resolve(name); }

std::vector<std::shared_ptr<Head>> Fabric::Impl::AllHeads() const {
  return registry_ != nullptr ? registry_->Heads() : std::vector<std::shared_ptr<Head>>{};
}

// --- Control.

Result<void> Fabric::Impl::SetPolicy(std::string_view name, IoPolicyKind policy) {
  std::shared_ptr<Head> head = MPATH_TRY(ResolveOrError(name));
  head->SetIoPolicy(policy);
  return {};
}

// `path` is a head path ("a0-tp1:lun0", "s0-p1n1") or a configured link, which stands for every path through it.
Result<void> Fabric::Impl::SetPathState(std::string_view path, PathState state) {
  std::size_t matched = 0;
  for (const std::shared_ptr<Head>& head : AllHeads()) {
    for (const PathInfo& info : head->Paths()) {
      auto device_path = device_paths_.find(info.name);
      const bool through_link = device_path != device_paths_.end() && device_path->second.link == path;
      if (info.name != path && !through_link) continue;
      ++matched;
      if (auto set = head->SetPathState(info.id, state); !set) {
        return MakeError(set.error().code(), fmt::format("path '{}': {}", info.name, set.error().message()));
      }
    }
  }
  if (matched == 0) {
    const std::string example_path = device_paths_.empty() ? "a0:lun0" : device_paths_.begin()->first;
    const std::string example_link = links_.empty() ? "a0" : links_.begin()->first;
    return MakeError(Errc::kNotFound, fmt::format("no path '{}' (a head's path such as '{}', or a configured path "
                                                  "such as '{}')",
                                                  path, example_path, example_link));
  }
  return {};
}

void Fabric::Impl::MarkLinkPaths(const std::string& link, PathState from, PathState to) {
  for (const std::shared_ptr<Head>& head : AllHeads()) {
    for (const PathInfo& info : head->Paths()) {
      auto device_path = device_paths_.find(info.name);
      if (device_path == device_paths_.end() || device_path->second.link != link || info.state != from) continue;
      (void)head->SetPathState(info.id, to);  // an operator's failed path stays failed
    }
  }
}

Result<std::string> Fabric::Impl::Inject(const FaultRequest& request) {
  if (IsOneOf(request.fault, kLinkFaults)) return InjectLinkFault(request);
  if (!IsOneOf(request.fault, kDeviceFaults)) {
    std::vector<std::string_view> known(kLinkFaults.begin(), kLinkFaults.end());
    known.insert(known.end(), kDeviceFaults.begin(), kDeviceFaults.end());
    return MakeError(Errc::kInvalidArgument, fmt::format("unknown fault '{}'; known: {}", request.fault,
                                                         JoinNames(known)));
  }
  if (auto array = arrays_.find(request.target); array != arrays_.end()) {
    return InjectArrayFault(request, *array->second);
  }
  if (auto subsystem = subsystems_.find(request.target); subsystem != subsystems_.end()) {
    return InjectSubsystemFault(request, *subsystem->second);
  }
  std::vector<std::string> targets;
  for (const auto& [name, record] : arrays_) targets.push_back(name);
  for (const auto& [name, record] : subsystems_) targets.push_back(name);
  return MakeError(Errc::kNotFound, fmt::format("fault '{}' applies to an array or a subsystem, and '{}' is neither "
                                                "(known: {})",
                                                request.fault, request.target, JoinNames(targets)));
}

Result<std::string> Fabric::Impl::InjectLinkFault(const FaultRequest& request) {
  // A head path stands for its link; for fail-io it also names the one unit that fails.
  Link* link = nullptr;
  std::optional<std::uint64_t> unit;
  std::string link_name;
  if (auto found = links_.find(request.target); found != links_.end()) {
    link = &found->second;
    link_name = found->first;
  } else if (auto device_path = device_paths_.find(request.target); device_path != device_paths_.end()) {
    link = &links_.at(device_path->second.link);
    link_name = device_path->second.link;
    unit = device_path->second.unit;
  } else {
    std::vector<std::string> names;
    for (const auto& [name, l] : links_) names.push_back(name);
    const bool device = arrays_.contains(request.target) || subsystems_.contains(request.target);
    return MakeError(Errc::kNotFound,
                     fmt::format("fault '{}' applies to a path, and '{}' {} (paths: {})", request.fault, request.target,
                                 device ? "is an array or subsystem" : "is not a configured path", JoinNames(names)));
  }
  sim::LinkFaults& faults = *link->faults;
  const std::string& fault = request.fault;
  if (fault == "link-down" || fault == "link-up" || fault == "hang" || fault == "unhang" || fault == "heal" ||
      fault == "clear") {
    MPATH_TRY(FaultArgs::Check(request, {}));
    if (fault == "link-down") {
      faults.SetLinkDown(true);
      // What a real transport's connection monitor reports: the connection is lost and being re-established, so its
      // paths may come back and a head left with none of them queues I/O (bounded by delayed removal).
      MarkLinkPaths(link_name, PathState::kLive, PathState::kConnecting);
      return fmt::format("path {}: link down", link_name);
    }
    if (fault == "link-up") {
      faults.SetLinkDown(false);
      MarkLinkPaths(link_name, PathState::kConnecting, PathState::kLive);
      return fmt::format("path {}: link up", link_name);
    }
    if (fault == "hang") {
      faults.SetHang(true);
      return fmt::format("path {}: every command hangs until its timeout", link_name);
    }
    if (fault == "unhang") {
      faults.SetHang(false);
      return fmt::format("path {}: commands answered again", link_name);
    }
    if (fault == "heal") {
      faults.SetFailIo(false);
      return fmt::format("path {}: I/O no longer fails", link_name);
    }
    faults.Clear();
    faults.SetLatency(Millis(link->config->latency_ms));
    return fmt::format("path {}: every fault cleared (configured latency {} ms kept)", link_name,
                       link->config->latency_ms);
  }
  if (fault == "latency") {
    FaultArgs args = MPATH_TRY(FaultArgs::Check(request, {"ms", "jitter_ms"}));
    const double ms = MPATH_TRY(args.Double("ms", 0, kMaxFaultMillis));
    const double jitter = args.Has("jitter_ms") ? MPATH_TRY(args.Double("jitter_ms", 0, kMaxFaultMillis)) : 0.0;
    faults.SetLatency(Millis(ms), Millis(jitter));
    NoteDelay(Millis(ms + jitter));
    return fmt::format("path {}: latency {} ms (jitter {} ms)", link_name, ms, jitter);
  }
  if (fault == "fail-io") {
    const std::string_view unit_key = link->scsi ? "lun" : "nsid";
    FaultArgs args = MPATH_TRY(FaultArgs::Check(request, {unit_key}));
    if (args.Has(unit_key)) unit = MPATH_TRY(args.Unsigned(unit_key));
    faults.SetFailIo(true, unit);
    return unit ? fmt::format("path {}: reports ready, fails every I/O to {} {}", link_name, unit_key, *unit)
                : fmt::format("path {}: reports ready, fails every I/O", link_name);
  }
  if (fault == "flap") {
    FaultArgs args = MPATH_TRY(FaultArgs::Check(request, {"down_ms", "up_ms"}));
    const double down = MPATH_TRY(args.Double("down_ms", 0, kMaxFaultMillis));
    const double up = MPATH_TRY(args.Double("up_ms", 0, kMaxFaultMillis));
    if (down <= 0 || up <= 0) return args.Bad(down <= 0 ? "down_ms" : "up_ms", "0", "must be above 0");
    faults.SetFlapping(Millis(down), Millis(up));
    return fmt::format("path {}: flapping, down {} ms, up {} ms", link_name, down, up);
  }
  // drop
  FaultArgs args = MPATH_TRY(FaultArgs::Check(request, {"p"}));
  const double p = MPATH_TRY(args.Double("p", 0, 1));
  faults.SetDropCompletions(p);
  return fmt::format("path {}: loses each answer with probability {}", link_name, p);
}

const SimLogicalUnit* Fabric::Impl::FindLu(const ArrayRecord& array, std::uint64_t lun) const {
  for (const SimLogicalUnit& lu : array.config->lus) {
    if (lu.lun == lun) return &lu;
  }
  return nullptr;
}

const SimNamespace* Fabric::Impl::FindNamespace(const SubsystemRecord& subsystem, std::uint64_t nsid) const {
  for (const SimNamespace& ns : subsystem.config->namespaces) {
    if (ns.nsid == nsid) return &ns;
  }
  return nullptr;
}

namespace {

// Prefixes a device's refusal with what was asked of it.
template <typename T>
Result<T> Named(Result<T> result, std::string_view what) {
  if (!result) return MakeError(result.error().code(), fmt::format("{}: {}", what, result.error().message()));
  return result;
}

}  // namespace

namespace {

// The arguments a device fault's two protocols share.
Result<std::uint64_t> SizeMibArg(const FaultArgs& args) {
  const std::uint64_t mib = MPATH_TRY(args.Unsigned("size_mib", 1ull << 30));
  if (mib == 0) return args.Bad("size_mib", "0", "must be above 0");
  return mib;
}

Result<std::pair<std::uint64_t, const ReservationTypeName*>> ForeignPreemptArgs(const FaultArgs& args,
                                                                                const FaultRequest& request) {
  const std::uint64_t key = MPATH_TRY(args.Unsigned("key"));
  if (key == 0) return args.Bad("key", "0", "must not be 0");
  const ReservationTypeName* type = &kReservationTypes[0];
  if (args.Has("type")) {
    type = MPATH_TRY(Named(ParseReservationType(request.args.at("type")), "fault 'foreign-preempt'"));
  }
  return std::pair{key, type};
}

}  // namespace

Result<std::string> Fabric::Impl::InjectArrayFault(const FaultRequest& request, ArrayRecord& record) {
  const std::string& fault = request.fault;
  const std::string& name = record.config->name;
  scsi::fake::Array& array = *record.array;
  auto lu_of = [&](const FaultArgs& args) -> Result<const SimLogicalUnit*> {
    const std::uint64_t lun = MPATH_TRY(args.Unsigned("lun"));
    const SimLogicalUnit* lu = FindLu(record, lun);
    if (lu == nullptr) return MakeError(Errc::kNotFound, fmt::format("array '{}' has no LU {}", name, lun));
    return lu;
  };
  if (fault == "alua") {
    FaultArgs args = MPATH_TRY(FaultArgs::Check(request, {"group", "state", "transition_ms"}));
    const auto group = static_cast<std::uint16_t>(MPATH_TRY(args.Unsigned("group", UINT16_MAX)));
    const std::string text =
        MPATH_TRY(args.Text("state", "active/optimized|active/non-optimized|standby|unavailable|offline"));
    const scsi::fake::AluaState state = MPATH_TRY(Named(ParseAluaState(text), fmt::format("fault 'alua'")));
    const double ms = args.Has("transition_ms") ? MPATH_TRY(args.Double("transition_ms", 0, kMaxFaultMillis)) : 0.0;
    MPATH_TRY(Named(array.SetAccessState(group, state, Millis(ms)), fmt::format("array '{}'", name)));
    return ms > 0 ? fmt::format("array {}: port group {} -> {} through transitioning ({} ms)", name, group, text, ms)
                  : fmt::format("array {}: port group {} -> {}", name, group, text);
  }
  if (fault == "preferred") {
    FaultArgs args = MPATH_TRY(FaultArgs::Check(request, {"group", "on"}));
    const auto group = static_cast<std::uint16_t>(MPATH_TRY(args.Unsigned("group", UINT16_MAX)));
    const bool on = MPATH_TRY(args.Bool("on"));
    MPATH_TRY(Named(array.SetPreferred(group, on), fmt::format("array '{}'", name)));
    // The array queues no unit attention for a PREF change (nor does LIO): the host re-reads the states itself.
    scsi_->alua().RefreshAll();
    return fmt::format("array {}: port group {} {} preferred", name, group, on ? "is" : "is no longer");
  }
  if (fault == "unit-attention") {
    FaultArgs args = MPATH_TRY(FaultArgs::Check(request, {"lun", "asc", "ascq"}));
    if (args.Has("lun")) (void)MPATH_TRY(lu_of(args));
    const auto asc = static_cast<std::uint8_t>(MPATH_TRY(args.Unsigned("asc", 0xFF)));
    const auto ascq = static_cast<std::uint8_t>(MPATH_TRY(args.Unsigned("ascq", 0xFF)));
    // The simulated array queues unit attentions on every nexus for every LU.
    array.RaiseUnitAttentionEverywhere({scsi::spec::SenseKey::kUnitAttention, asc, ascq});
    return fmt::format("array {}: unit attention {:02X}/{:02X} queued on every nexus and LU", name, asc, ascq);
  }
  if (fault == "remap") {
    FaultArgs args = MPATH_TRY(FaultArgs::Check(request, {"lun", "naa"}));
    const SimLogicalUnit* lu = MPATH_TRY(lu_of(args));
    const std::array<std::uint8_t, 16> naa = MPATH_TRY(args.Hex16("naa"));
    MPATH_TRY(Named(array.ChangeIdentity(lu->lun, naa), fmt::format("array '{}' LU {}", name, lu->lun)));
    return fmt::format("array {}: LU {} now answers as naa.{}", name, lu->lun, request.args.at("naa"));
  }
  if (fault == "resize") {
    FaultArgs args = MPATH_TRY(FaultArgs::Check(request, {"lun", "size_mib"}));
    const SimLogicalUnit* lu = MPATH_TRY(lu_of(args));
    const std::uint64_t mib = MPATH_TRY(SizeMibArg(args));
    MPATH_TRY(Named(array.ChangeCapacity(lu->lun, mib * kMiB / lu->block_size),
                    fmt::format("array '{}' LU {}", name, lu->lun)));
    return fmt::format("array {}: LU {} is now {} MiB", name, lu->lun, mib);
  }
  if (fault == "foreign-preempt") {
    FaultArgs args = MPATH_TRY(FaultArgs::Check(request, {"lun", "key", "type"}));
    const SimLogicalUnit* lu = MPATH_TRY(lu_of(args));
    const auto [key, type] = MPATH_TRY(ForeignPreemptArgs(args, request));
    MPATH_TRY(Named(array.ForeignPreempt(lu->lun, kForeignInitiator, key, static_cast<std::uint8_t>(type->scsi)),
                    fmt::format("array '{}' LU {}", name, lu->lun)));
    return fmt::format("array {}: another host (key {:#x}) preempted every registration of LU {} and holds {}", name,
                       key, lu->lun, type->name);
  }
  if (fault == "power-cycle") {
    MPATH_TRY(FaultArgs::Check(request, {}));
    array.PowerCycle();
    return fmt::format("array {}: power cycled", name);
  }
  return MakeError(Errc::kInvalidArgument,
                   fmt::format("fault '{}' applies to an NVMe subsystem, and '{}' is a SCSI array", fault, name));
}

Result<std::string> Fabric::Impl::InjectSubsystemFault(const FaultRequest& request, SubsystemRecord& record) {
  const std::string& fault = request.fault;
  const std::string& name = record.config->name;
  nvme::fake::Subsystem& subsystem = *record.subsystem;
  auto ns_of = [&](const FaultArgs& args) -> Result<const SimNamespace*> {
    const std::uint64_t nsid = MPATH_TRY(args.Unsigned("nsid"));
    const SimNamespace* ns = FindNamespace(record, nsid);
    if (ns == nullptr) return MakeError(Errc::kNotFound, fmt::format("subsystem '{}' has no namespace {}", name, nsid));
    return ns;
  };
  if (fault == "ana") {
    FaultArgs args = MPATH_TRY(FaultArgs::Check(request, {"port", "group", "state", "transition_ms"}));
    const auto port = static_cast<std::uint16_t>(MPATH_TRY(args.Unsigned("port", UINT16_MAX)));
    const auto group = static_cast<std::uint32_t>(MPATH_TRY(args.Unsigned("group", UINT32_MAX)));
    const std::string text =
        MPATH_TRY(args.Text("state", "optimized|non-optimized|inaccessible|persistent-loss|change"));
    const nvme::fake::AnaState state = MPATH_TRY(Named(ParseAnaState(text), "fault 'ana'"));
    const double ms = args.Has("transition_ms") ? MPATH_TRY(args.Double("transition_ms", 0, kMaxFaultMillis)) : 0.0;
    MPATH_TRY(Named(subsystem.SetAnaState(port, group, state, Millis(ms)), fmt::format("subsystem '{}'", name)));
    return ms > 0 ? fmt::format("subsystem {}: ANA group {} on port {} -> {} through change ({} ms)", name, group,
                                port, text, ms)
                  : fmt::format("subsystem {}: ANA group {} on port {} -> {}", name, group, port, text);
  }
  if (fault == "remap") {
    FaultArgs args = MPATH_TRY(FaultArgs::Check(request, {"nsid", "nguid"}));
    const SimNamespace* ns = MPATH_TRY(ns_of(args));
    const std::array<std::uint8_t, 16> nguid = MPATH_TRY(args.Hex16("nguid"));
    MPATH_TRY(Named(subsystem.ChangeIdentity(ns->nsid, nguid, {}, {}),
                    fmt::format("subsystem '{}' namespace {}", name, ns->nsid)));
    return fmt::format("subsystem {}: namespace {} now answers as nguid {}", name, ns->nsid, request.args.at("nguid"));
  }
  if (fault == "resize") {
    FaultArgs args = MPATH_TRY(FaultArgs::Check(request, {"nsid", "size_mib"}));
    const SimNamespace* ns = MPATH_TRY(ns_of(args));
    const std::uint64_t mib = MPATH_TRY(SizeMibArg(args));
    MPATH_TRY(Named(subsystem.ChangeCapacity(ns->nsid, mib * kMiB / ns->block_size),
                    fmt::format("subsystem '{}' namespace {}", name, ns->nsid)));
    return fmt::format("subsystem {}: namespace {} is now {} MiB", name, ns->nsid, mib);
  }
  if (fault == "foreign-preempt") {
    FaultArgs args = MPATH_TRY(FaultArgs::Check(request, {"nsid", "key", "type"}));
    const SimNamespace* ns = MPATH_TRY(ns_of(args));
    const auto [key, type] = MPATH_TRY(ForeignPreemptArgs(args, request));
    MPATH_TRY(Named(subsystem.ForeignPreempt(ns->nsid, kForeignHostId, key, static_cast<std::uint8_t>(type->nvme)),
                    fmt::format("subsystem '{}' namespace {}", name, ns->nsid)));
    return fmt::format("subsystem {}: another host (key {:#x}) preempted every registrant of namespace {} and holds {}",
                       name, key, ns->nsid, type->name);
  }
  return MakeError(Errc::kInvalidArgument,
                   fmt::format("fault '{}' applies to a SCSI array, and '{}' is an NVMe subsystem", fault, name));
}

// --- Reservations.

void Fabric::Impl::Reservation(const PrRequest& request, std::move_only_function<void(Result<PrReport>)> reply) {
  static constexpr std::array<std::string_view, 9> kActions = {
      "register", "unregister", "reserve", "release", "preempt", "preempt-abort", "clear", "read-keys",
      "read-reservation"};
  if (!IsOneOf(request.action, kActions)) {
    reply(MakeError(Errc::kInvalidArgument,
                    fmt::format("unknown reservation action '{}'; known: {}", request.action, JoinNames(kActions))));
    return;
  }
  auto head = ResolveOrError(request.head);
  if (!head) {
    reply(std::unexpected(head.error()));
    return;
  }
  if ((*head)->personality().protocol() == "scsi") {
    ScsiReservation(request, *head, std::move(reply));
  } else {
    NvmeReservation(request, *head, std::move(reply));
  }
}

void Fabric::Impl::ScsiReservation(const PrRequest& request, const std::shared_ptr<Head>& head,
                                   std::move_only_function<void(Result<PrReport>)> reply) {
  scsi::PrCoordinator* pr = scsi_->Reservations(head->name());
  if (pr == nullptr) {
    reply(MakeError(Errc::kNotFound, fmt::format("head '{}' has no reservation coordinator", head->name())));
    return;
  }
  const std::string& action = request.action;
  const std::string head_name = head->name();
  // Turns a coordinator's answer into the report, or the error it carries.
  auto finish = [](std::move_only_function<void(Result<PrReport>)> reply, std::string message) {
    return [reply = std::move(reply), message = std::move(message)](scsi::PrResult<> done) mutable {
      if (!done) {
        reply(std::unexpected(done.error().ToError()));
        return;
      }
      PrReport report;
      report.message = message;
      reply(std::move(report));
    };
  };
  if (action == "read-keys") {
    pr->ReadKeys([reply = std::move(reply), head_name](scsi::PrResult<scsi::spec::PrKeyList>&& keys) mutable {
      if (!keys) {
        reply(std::unexpected(keys.error().ToError()));
        return;
      }
      PrReport report;
      report.generation = keys->generation;
      report.keys = std::move(keys->keys);
      report.message = fmt::format("{}: generation {}, {} registered key(s)", head_name, report.generation,
                                   report.keys.size());
      reply(std::move(report));
    });
    return;
  }
  if (action == "read-reservation") {
    pr->ReadReservation(
        [reply = std::move(reply), head_name](scsi::PrResult<scsi::spec::PrReservationReport>&& held) mutable {
          if (!held) {
            reply(std::unexpected(held.error().ToError()));
            return;
          }
          PrReport report;
          report.generation = held->generation;
          if (held->reservation) {
            report.holder_key = held->reservation->key;
            report.type = ScsiTypeName(held->reservation->type);
            report.message = fmt::format("{}: generation {}, held by key {:#x} as {}", head_name, held->generation,
                                         held->reservation->key, report.type);
          } else {
            report.message = fmt::format("{}: generation {}, no reservation", head_name, held->generation);
          }
          reply(std::move(report));
        });
    return;
  }
  if (action == "register") {
    const std::uint64_t key = request.service_key != 0 ? request.service_key : request.key;
    if (key == 0) {
      reply(MakeError(Errc::kInvalidArgument, "pr register needs the key to register (--sa-key, or --key)"));
      return;
    }
    pr->Register(key, {.aptpl = request.persist},
                 finish(std::move(reply), fmt::format("{}: key {:#x} registered on every path", head_name, key)));
    return;
  }
  if (action == "unregister") {
    pr->Unregister(finish(std::move(reply), fmt::format("{}: our key removed from every path", head_name)));
    return;
  }
  if (action == "clear") {
    pr->Clear(finish(std::move(reply), fmt::format("{}: every registration and reservation cleared", head_name)));
    return;
  }
  auto type = ParseReservationType(request.type);
  if (!type) {
    reply(std::unexpected(type.error()));
    return;
  }
  const scsi::spec::PrType scsi_type = (*type)->scsi;
  if (action == "reserve") {
    pr->Reserve(scsi_type, finish(std::move(reply), fmt::format("{}: reserved as {}", head_name, (*type)->name)));
  } else if (action == "release") {
    pr->Release(scsi_type, finish(std::move(reply), fmt::format("{}: {} released", head_name, (*type)->name)));
  } else {
    if (request.service_key == 0) {
      reply(MakeError(Errc::kInvalidArgument, fmt::format("pr {} needs the key to preempt (--sa-key)", action)));
      return;
    }
    const auto mode = action == "preempt" ? scsi::PrPreemptMode::kPreempt : scsi::PrPreemptMode::kPreemptAndAbort;
    pr->Preempt(request.service_key, scsi_type, mode,
                finish(std::move(reply), fmt::format("{}: key {:#x} preempted, reserved as {}", head_name,
                                                     request.service_key, (*type)->name)));
  }
}

void Fabric::Impl::NvmeReservation(const PrRequest& request, const std::shared_ptr<Head>& head,
                                   std::move_only_function<void(Result<PrReport>)> reply) {
  nvme::NvmeReservations* reservations = nvme_->Reservations(head->name());
  if (reservations == nullptr) {
    reply(MakeError(Errc::kNotFound, fmt::format("head '{}' has no reservations", head->name())));
    return;
  }
  const std::string& action = request.action;
  const std::string head_name = head->name();
  auto finish = [](std::move_only_function<void(Result<PrReport>)> reply, std::string message) {
    return [reply = std::move(reply), message = std::move(message)](Result<void> done) mutable {
      if (!done) {
        reply(std::unexpected(done.error()));
        return;
      }
      PrReport report;
      report.message = message;
      reply(std::move(report));
    };
  };
  if (action == "read-keys" || action == "read-reservation") {
    const bool keys_only = action == "read-keys";
    reservations->Report(
        [reply = std::move(reply), head_name, keys_only](Result<nvme::spec::ReservationStatus>&& status) mutable {
          if (!status) {
            reply(std::unexpected(status.error()));
            return;
          }
          PrReport report;
          report.generation = status->generation;
          if (keys_only) {
            for (const nvme::spec::Registrant& registrant : status->registrants) report.keys.push_back(registrant.rkey);
            report.message = fmt::format("{}: generation {}, {} registered key(s)", head_name, status->generation,
                                         report.keys.size());
          } else if (nvme::spec::IsValidReservationType(status->rtype)) {
            report.type = NvmeTypeName(status->rtype);
            for (const nvme::spec::Registrant& registrant : status->registrants) {
              if (registrant.holds_reservation) {
                report.holder_key = registrant.rkey;
                break;
              }
            }
            // The all-registrants types have every registrant hold the reservation.
            if (!report.holder_key) report.holder_key = 0;
            report.message = fmt::format("{}: generation {}, held by key {:#x} as {}", head_name, status->generation,
                                         *report.holder_key, report.type);
          } else {
            report.message = fmt::format("{}: generation {}, no reservation", head_name, status->generation);
          }
          reply(std::move(report));
        });
    return;
  }
  if (action == "register") {
    const std::uint64_t key = request.service_key != 0 ? request.service_key : request.key;
    if (key == 0) {
      reply(MakeError(Errc::kInvalidArgument, "pr register needs the key to register (--sa-key, or --key)"));
      return;
    }
    reservations->Register(key, request.ignore_existing, request.persist,
                           finish(std::move(reply), fmt::format("{}: key {:#x} registered for this host", head_name,
                                                                key)));
    return;
  }
  if (request.key == 0) {
    reply(MakeError(Errc::kInvalidArgument,
                    fmt::format("pr {} on an NVMe head needs our registered key (--key)", action)));
    return;
  }
  if (action == "unregister") {
    reservations->Unregister(request.key, finish(std::move(reply), fmt::format("{}: key {:#x} unregistered",
                                                                               head_name, request.key)));
    return;
  }
  if (action == "clear") {
    reservations->Clear(request.key,
                        finish(std::move(reply), fmt::format("{}: every registration and reservation cleared",
                                                             head_name)));
    return;
  }
  auto type = ParseReservationType(request.type);
  if (!type) {
    reply(std::unexpected(type.error()));
    return;
  }
  const nvme::spec::ReservationType nvme_type = (*type)->nvme;
  if (action == "reserve") {
    reservations->Acquire(request.key, nvme_type,
                          finish(std::move(reply), fmt::format("{}: reserved as {}", head_name, (*type)->name)));
  } else if (action == "release") {
    reservations->Release(request.key, nvme_type,
                          finish(std::move(reply), fmt::format("{}: {} released", head_name, (*type)->name)));
  } else {
    if (request.service_key == 0) {
      reply(MakeError(Errc::kInvalidArgument, fmt::format("pr {} needs the key to preempt (--sa-key)", action)));
      return;
    }
    reservations->Preempt(request.key, request.service_key, nvme_type, action == "preempt-abort",
                          finish(std::move(reply), fmt::format("{}: key {:#x} preempted, reserved as {}", head_name,
                                                               request.service_key, (*type)->name)));
  }
}

Result<std::uint64_t> Fabric::Impl::RtpgCount(std::string_view array) const {
  if (auto it = arrays_.find(array); it != arrays_.end()) return it->second->rtpgs.load(std::memory_order_relaxed);
  if (subsystems_.contains(array)) {
    return MakeError(Errc::kInvalidArgument, fmt::format("'{}' is an NVMe subsystem; RTPG counts are kept for SCSI "
                                                         "arrays",
                                                         array));
  }
  return MakeError(Errc::kNotFound, fmt::format("no array named '{}'", array));
}

Result<std::uint64_t> Fabric::Impl::AnaLogReads(std::string_view subsystem) const {
  if (auto it = subsystems_.find(subsystem); it != subsystems_.end()) {
    return it->second->ana_log_reads.load(std::memory_order_relaxed);
  }
  if (arrays_.contains(subsystem)) {
    return MakeError(Errc::kInvalidArgument, fmt::format("'{}' is a SCSI array; ANA log reads are kept for NVMe "
                                                         "subsystems",
                                                         subsystem));
  }
  return MakeError(Errc::kNotFound, fmt::format("no subsystem named '{}'", subsystem));
}

// --- Fabric.

Fabric::Fabric(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Fabric::~Fabric() = default;

Result<std::unique_ptr<Fabric>> Fabric::Create(Config config, FabricOptions options) {
  std::unique_ptr<Impl> impl = MPATH_TRY(Impl::Create(std::move(config), options));
  return std::unique_ptr<Fabric>(new Fabric(std::move(impl)));
}

Result<BuildReport> Fabric::Build() {
  Impl* impl = impl_.get();
  if (impl->control_loop().IsLoopThread()) {
    return MakeError(Errc::kInternal, "Build cannot run on the fabric's own control loop");
  }
  auto promise = std::make_shared<std::promise<Result<BuildReport>>>();
  std::future<Result<BuildReport>> result = promise->get_future();
  impl->control_loop().Post([impl, promise] {
    impl->StartBuild([promise](Result<BuildReport> report) { promise->set_value(std::move(report)); });
  });
  // Every step ends: attaches and probes are bounded by command timeouts, and settling by kSettleBound.
  return result.get();
}

std::vector<HeadView> Fabric::Heads() const {
  return impl_->OnControl([impl = impl_.get()] { return impl->Heads(); });
}

Result<HeadView> Fabric::FindHeadView(std::string_view name_alias_or_identity) const {
  return impl_->OnControl(
      [impl = impl_.get(), name_alias_or_identity] { return impl->FindHeadView(name_alias_or_identity); });
}

std::shared_ptr<Head> Fabric::FindHead(std::string_view name_alias_or_identity) const {
  return impl_->OnControl(
      [impl = impl_.get(), name_alias_or_identity] { return impl->FindHead(name_alias_or_identity); });
}

std::vector<std::shared_ptr<Head>> Fabric::AllHeads() const {
  // The registry is safe from any thread and lives from Create to destruction, so this answers on the caller's thread
  // without a trip to the control loop: the NBD export asks from its I/O loops at every handshake.
  return impl_->AllHeads();
}

Result<void> Fabric::SetPolicy(std::string_view head, IoPolicyKind policy) {
  return impl_->OnControl([impl = impl_.get(), head, policy] { return impl->SetPolicy(head, policy); });
}

Result<void> Fabric::FailPath(std::string_view path) {
  return impl_->OnControl([impl = impl_.get(), path] { return impl->SetPathState(path, PathState::kFailed); });
}

Result<void> Fabric::ReinstatePath(std::string_view path) {
  return impl_->OnControl([impl = impl_.get(), path] { return impl->SetPathState(path, PathState::kLive); });
}

Result<std::string> Fabric::Inject(const FaultRequest& request) {
  return impl_->OnControl([impl = impl_.get(), &request] { return impl->Inject(request); });
}

Result<PrReport> Fabric::Reservation(const PrRequest& request) {
  return impl_->OnControlAsync<Result<PrReport>>(
      [impl = impl_.get(), request](std::move_only_function<void(Result<PrReport>)> reply) mutable {
        impl->Reservation(request, std::move(reply));
      });
}

Result<std::uint64_t> Fabric::RtpgCount(std::string_view array) const {
  return impl_->OnControl([impl = impl_.get(), array] { return impl->RtpgCount(array); });
}

Result<std::uint64_t> Fabric::AnaLogReads(std::string_view subsystem) const {
  return impl_->OnControl([impl = impl_.get(), subsystem] { return impl->AnaLogReads(subsystem); });
}

std::size_t Fabric::io_threads() const { return impl_->io_threads(); }
EventLoop& Fabric::io_loop(std::size_t index) { return impl_->io_loop(index); }
EventLoop& Fabric::control_loop() { return impl_->control_loop(); }
const Config& Fabric::config() const { return impl_->config(); }

}  // namespace mpath::daemon
