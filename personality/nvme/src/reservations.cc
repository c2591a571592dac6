// NVMe reservations of one namespace. Why it is shaped this way:
// - Each call is one Operation: the SQE, its data and the caller's callback in one object that the transport borrows
//   from Submit to Finish, so nothing the controller reads or writes can go away under it. Its answer is handled in
//   a task of its own on the executor, so `done` never runs inside the call that started the operation, and an
//   answer arriving after the NvmeReservations is gone finds `self_` expired and is dropped with its callback.
// - Register with IEKEY: NVM Express Base 2.0c §7.3 has IEKEY skip only the CRKEY check, which the Register action
//   does not make; a host already registered under another key still gets Reservation Conflict. mpathpersist's
//   REGISTER AND IGNORE EXISTING KEY means "this key from now on, whatever was there", so that conflict is followed
//   by a Replace with IEKEY.
// - Report: the Reservation Status has no total length, only REGCTL, so it is read at a guessed size and read again
//   whole when REGCTL says more controllers are registered than arrived. REGCTL may grow between the reads (hosts
//   register meanwhile), so the re-read is repeated, a bounded number of times.
// - A path related status (SCT 3h, e.g. ANA Inaccessible) is kPathError, not kTargetError: the controller refused
//   the command because of the path it came through, and the same command through another path may succeed.
#include "mpath/nvme/reservations.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mpath/nvme/raw_status.h"
#include "mpath/nvme/spec/common.h"
#include "mpath/nvme/spec/status.h"
#include "mpath/proto/delivery.h"

namespace mpath::nvme {
namespace {

using spec::ChangePtpl;
using spec::IgnoreExistingKey;
using spec::ReservationType;

// Reads of one Report: the first at the guessed size and at most this many more at REGCTL's size.
constexpr unsigned kMaxReportReads = 4;
// REGCTL is a 16-bit count: no report ever holds more.
constexpr std::uint32_t kMaxRegistrants = 0xFFFF;

constexpr std::uint32_t ReportBytes(std::uint32_t registrants) {
  return static_cast<std::uint32_t>(sizeof(spec::ReservationStatusExtendedHeader) +
                                    std::size_t{registrants} * sizeof(spec::RegisteredControllerExtended));
}

std::string LowerName(ReservationType type) {
  std::string name(spec::Name(type));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return name;
}

Errc ErrcOfDelivery(Delivery delivery) {
  switch (delivery) {
    case Delivery::kTimedOut: return Errc::kTimedOut;
    case Delivery::kAborted: return Errc::kAborted;
    case Delivery::kLinkDown:
    default: return Errc::kPathError;
  }
}

Errc ErrcOfStatus(spec::Status status) {
  if (spec::Is(status, spec::GenericStatus::kReservationConflict)) return Errc::kReservationConflict;
  if (spec::Is(status, spec::GenericStatus::kInvalidCommandOpcode)) return Errc::kUnsupported;
  if (status.sct() == spec::kSctPathRelated) return Errc::kPathError;
  return Errc::kTargetError;
}

bool Succeeded(const NvmeCommand& command) {
  return command.delivery == Delivery::kDelivered && command.cqe.status().ok();
}

}  // namespace

// One reservation command on its way: the SQE, its data and the caller's callback.
// Threading: borrowed by the transport from Submit to Finish, then owned by one task on the executor.
class NvmeReservations::Operation {
 public:
  // What follows a successful or failed first command.
  enum class Followup : std::uint8_t {
    kNone,
    kReplaceOnConflict,  // Register with IEKEY: a conflict means another key of ours is there; replace it
    kReport,             // parse the Reservation Status, reading it again whole when it was cut short
  };

  Operation(NvmeReservations& owner, std::string_view verb, std::optional<ReservationType> type)
      : owner_(owner.self_), executor_(&owner.executor_), nsid_(owner.nsid_), verb_(verb), type_(type) {}

  static std::unique_ptr<Operation> New(NvmeReservations& owner, std::string_view verb,
                                        std::optional<ReservationType> type, ReservationDone done) {
    auto op = std::make_unique<Operation>(owner, verb, type);
    op->done_ = std::move(done);
    return op;
  }

  // Writes the command's data-out (one of the 16- or 8-byte reservation data structures).
  template <typename Data>
  void SetDataOut(const spec::SubmissionQueueEntry& sqe, const Data& data) {
    static_assert(sizeof(Data) <= sizeof(out_));
    command_.sqe = sqe;
    std::memcpy(out_.data(), &data, sizeof(Data));
    command_.direction = DataDirection::kToController;
    command_.data = std::span<std::byte>(out_.data(), sizeof(Data));
  }

  // Asks for the extended Reservation Status with room for `registrants` registered controllers.
  void SetReportRead(std::uint32_t registrants) {
    const std::uint32_t bytes = ReportBytes(registrants);
    in_.assign(bytes, std::byte{0});
    command_.sqe = spec::MakeReservationReport(nsid_, bytes, spec::ReportFormat::kExtended);
    command_.direction = DataDirection::kFromController;
    command_.data = in_;
  }

  // Sends the command down `owner`'s route. The transport holds the operation until it finishes the command.
  static void Start(NvmeReservations& owner, std::unique_ptr<Operation> op) {
    NvmeCommand& c = op->command_;
    c.ResetAnswer();
    c.queue = QueueKind::kIo;
    c.timeout = owner.options_.command_timeout;
    c.executor = &owner.executor_;
    c.OnFinish(&Operation::Finished, op.get());
    Operation* borrowed = op.release();  // Finished takes it back
    owner.route_.Submit(borrowed->command_);
  }

  // Fails without sending anything; `done` still runs from a task of its own.
  static void Refuse(std::unique_ptr<Operation> op, Errc code, std::string_view why) {
    Error error(code, fmt::format("{}: {}", op->Describe(), why));
    Executor* executor = op->executor_;
    executor->Post([op = std::move(op), error = std::move(error)]() mutable {
      if (op->owner_.expired()) return;
      op->Fail(std::move(error));
    });
  }

  Followup followup = Followup::kNone;
  std::uint64_t replacement_key = 0;  // kReplaceOnConflict: the key to replace ours with
  ChangePtpl replacement_cptpl = ChangePtpl::kNoChange;
  ReservationReportDone report_done;

 private:
  // Runs wherever the transport finishes the command (inside Submit or on the executor): the answer is handled in a
  // task of its own, after the call that sent the command has returned.
  static void Finished(NvmeCommand& /*command*/, void* arg) {
    std::unique_ptr<Operation> op(static_cast<Operation*>(arg));
    Executor* executor = op->executor_;
    executor->Post([op = std::move(op)]() mutable {
      std::shared_ptr<NvmeReservations*> owner = op->owner_.lock();
      if (!owner) return;  // the object is gone, and with it whoever waited for `done`
      Answered(**owner, std::move(op));
    });
  }

  static void Answered(NvmeReservations& owner, std::unique_ptr<Operation> op) {
    const NvmeCommand& c = op->command_;
    if (op->followup == Followup::kReplaceOnConflict && c.delivery == Delivery::kDelivered &&
        spec::Is(c.cqe.status(), spec::GenericStatus::kReservationConflict)) {
      op->followup = Followup::kNone;
      op->verb_ = "register (replacing the existing key)";
      op->SetDataOut(spec::MakeReservationRegister(owner.nsid_, spec::RegisterAction::kReplace,
                                                   IgnoreExistingKey::kYes, op->replacement_cptpl),
                     spec::ReservationRegisterData{.crkey = 0, .nrkey = op->replacement_key});
      Start(owner, std::move(op));
      return;
    }
    if (!Succeeded(c)) {
      op->Fail(op->CommandError());
      return;
    }
    if (op->followup == Followup::kReport) {
      ReportAnswered(owner, std::move(op));
      return;
    }
    op->Complete({});
  }

  static void ReportAnswered(NvmeReservations& owner, std::unique_ptr<Operation> op) {
    ++op->reads_;
    auto parsed = spec::ParseReservationStatus(op->in_, spec::ReportFormat::kExtended);
    if (!parsed) {
      op->Fail(op->DataError(parsed.error().message()));
      return;
    }
    spec::ReservationStatus& status = *parsed;
    if (status.rtype != 0 && !spec::IsValidReservationType(status.rtype)) {
      op->Fail(op->DataError(fmt::format("reservation type 0x{:02X} is not defined", status.rtype)));
      return;
    }
    if (status.truncated()) {
      if (op->reads_ < kMaxReportReads) {
        op->SetReportRead(status.regctl);
        Start(owner, std::move(op));
        return;
      }
      op->Fail(op->DataError(
          fmt::format("REGCTL says {} registered controllers, but only {} arrived in a {}-byte read after {} reads",
                      status.regctl, status.registrants.size(), op->in_.size(), op->reads_)));
      return;
    }
    op->CompleteReport(std::move(status));
  }

  // Hands `error` to whichever callback the operation has.
  void Fail(Error error) {
    if (followup == Followup::kReport) {
      CompleteReport(std::unexpected(std::move(error)));
    } else {
      Complete(std::unexpected(std::move(error)));
    }
  }

  void Complete(Result<void> result) {
    ReservationDone done = std::move(done_);
    if (done) done(std::move(result));
  }

  void CompleteReport(Result<spec::ReservationStatus> result) {
    ReservationReportDone done = std::move(report_done);
    if (done) done(std::move(result));
  }

  // "reservation acquire (write exclusive) on nsid 1".
  [[nodiscard]] std::string Describe() const {
    if (type_) return fmt::format("reservation {} ({}) on nsid {}", verb_, LowerName(*type_), nsid_);
    return fmt::format("reservation {} on nsid {}", verb_, nsid_);
  }

  // The command was not delivered, or its CQE carries an error.
  [[nodiscard]] Error CommandError() const {
    const RawStatus raw = EncodeRawStatus(OutcomeOf(command_));
    if (command_.delivery != Delivery::kDelivered) {
      return Error(ErrcOfDelivery(command_.delivery),
                   fmt::format("{}: {}", Describe(), proto::DeliveryName(command_.delivery)), raw);
    }
    const spec::Status status = command_.cqe.status();
    return Error(ErrcOfStatus(status), fmt::format("{}: {}", Describe(), StatusName(status.sct(), status.sc())), raw);
  }

  // The command succeeded but what it returned cannot be used.
  [[nodiscard]] Error DataError(std::string_view what) const {
    return Error(Errc::kTargetError, fmt::format("{}: {}", Describe(), what), EncodeRawStatus(OutcomeOf(command_)));
  }

  // Constant after construction.
  const std::weak_ptr<NvmeReservations*> owner_;
  Executor* const executor_;
  const std::uint32_t nsid_;

  std::string_view verb_;  // a string literal
  std::optional<ReservationType> type_;
  NvmeCommand command_;
  std::array<std::byte, sizeof(spec::ReservationRegisterData)> out_{};  // the largest data-out: 16 bytes
  std::vector<std::byte> in_;                                         // Report's data-in
  unsigned reads_ = 0;
  ReservationDone done_;
};

Result<std::unique_ptr<NvmeReservations>> NvmeReservations::Create(NvmeTransport& route, std::uint32_t nsid,
                                                                   Executor& executor, ReservationOptions options) {
  if (nsid == 0 || nsid == spec::kBroadcastNsid) {
    return MakeError(Errc::kInvalidArgument,
                     fmt::format("nsid 0x{:X} names no single namespace; reservations belong to one", nsid));
  }
  if (options.command_timeout < Nanos(0)) {
    return MakeError(Errc::kInvalidArgument, "reservation command_timeout is negative");
  }
  if (options.initial_report_registrants > kMaxRegistrants) {
    return MakeError(Errc::kInvalidArgument,
                     fmt::format("initial_report_registrants {} exceeds the {} a 16-bit REGCTL can count",
                                 options.initial_report_registrants, kMaxRegistrants));
  }
  return std::unique_ptr<NvmeReservations>(new NvmeReservations(route, nsid, executor, options));
}

NvmeReservations::NvmeReservations(NvmeTransport& route, std::uint32_t nsid, Executor& executor,
                                   ReservationOptions options)
    : route_(route),
      nsid_(nsid),
      executor_(executor),
      options_(options),
      self_(std::make_shared<NvmeReservations*>(this)) {}

NvmeReservations::~NvmeReservations() = default;

void NvmeReservations::Register(std::uint64_t new_key, bool ignore_existing, bool persist, ReservationDone done) {
  auto op = Operation::New(*this, "register", std::nullopt, std::move(done));
  if (new_key == 0) {
    Operation::Refuse(std::move(op), Errc::kInvalidArgument, "key 0 cannot be registered: NVMe uses 0 for no key");
    return;
  }
  const ChangePtpl cptpl = persist ? ChangePtpl::kSet : ChangePtpl::kNoChange;
  const IgnoreExistingKey iekey = ignore_existing ? IgnoreExistingKey::kYes : IgnoreExistingKey::kNo;
  op->SetDataOut(spec::MakeReservationRegister(nsid_, spec::RegisterAction::kRegister, iekey, cptpl),
                 spec::ReservationRegisterData{.crkey = 0, .nrkey = new_key});
  if (ignore_existing) {
    op->followup = Operation::Followup::kReplaceOnConflict;
    op->replacement_key = new_key;
    op->replacement_cptpl = cptpl;
  }
  Operation::Start(*this, std::move(op));
}

void NvmeReservations::Unregister(std::uint64_t key, ReservationDone done) {
  auto op = Operation::New(*this, "unregister", std::nullopt, std::move(done));
  op->SetDataOut(spec::MakeReservationRegister(nsid_, spec::RegisterAction::kUnregister),
                 spec::ReservationRegisterData{.crkey = key, .nrkey = 0});
  Operation::Start(*this, std::move(op));
}

void NvmeReservations::Replace(std::uint64_t current_key, std::uint64_t new_key, ReservationDone done) {
  auto op = Operation::New(*this, "replace", std::nullopt, std::move(done));
  if (new_key == 0) {
    Operation::Refuse(std::move(op), Errc::kInvalidArgument,
                      "key 0 cannot replace a registration: NVMe uses 0 for no key (unregister instead)");
    return;
  }
  op->SetDataOut(spec::MakeReservationRegister(nsid_, spec::RegisterAction::kReplace),
                 spec::ReservationRegisterData{.crkey = current_key, .nrkey = new_key});
  Operation::Start(*this, std::move(op));
}

void NvmeReservations::Acquire(std::uint64_t key, ReservationType type, ReservationDone done) {
  auto op = Operation::New(*this, "acquire", type, std::move(done));
  if (!spec::IsValidReservationType(static_cast<std::uint8_t>(type))) {
    Operation::Refuse(std::move(op), Errc::kInvalidArgument,
                      fmt::format("reservation type 0x{:02X} cannot be acquired", static_cast<unsigned>(type)));
    return;
  }
  op->SetDataOut(spec::MakeReservationAcquire(nsid_, spec::AcquireAction::kAcquire, type),
                 spec::ReservationAcquireData{.crkey = key, .prkey = 0});
  Operation::Start(*this, std::move(op));
}

void NvmeReservations::Preempt(std::uint64_t key, std::uint64_t victim_key, ReservationType type, bool abort,
                               ReservationDone done) {
  auto op = Operation::New(*this, abort ? "preempt and abort" : "preempt", type, std::move(done));
  if (!spec::IsValidReservationType(static_cast<std::uint8_t>(type))) {
    Operation::Refuse(std::move(op), Errc::kInvalidArgument,
                      fmt::format("reservation type 0x{:02X} cannot be taken", static_cast<unsigned>(type)));
    return;
  }
  const auto action = abort ? spec::AcquireAction::kPreemptAndAbort : spec::AcquireAction::kPreempt;
  op->SetDataOut(spec::MakeReservationAcquire(nsid_, action, type),
                 spec::ReservationAcquireData{.crkey = key, .prkey = victim_key});
  Operation::Start(*this, std::move(op));
}

void NvmeReservations::Release(std::uint64_t key, ReservationType type, ReservationDone done) {
  auto op = Operation::New(*this, "release", type, std::move(done));
  if (!spec::IsValidReservationType(static_cast<std::uint8_t>(type))) {
    Operation::Refuse(std::move(op), Errc::kInvalidArgument,
                      fmt::format("reservation type 0x{:02X} cannot be released", static_cast<unsigned>(type)));
    return;
  }
  op->SetDataOut(spec::MakeReservationRelease(nsid_, spec::ReleaseAction::kRelease, type),
                 spec::ReservationReleaseData{.crkey = key});
  Operation::Start(*this, std::move(op));
}

void NvmeReservations::Clear(std::uint64_t key, ReservationDone done) {
  auto op = Operation::New(*this, "clear", std::nullopt, std::move(done));
  op->SetDataOut(spec::MakeReservationRelease(nsid_, spec::ReleaseAction::kClear, ReservationType::kNone),
                 spec::ReservationReleaseData{.crkey = key});
  Operation::Start(*this, std::move(op));
}

void NvmeReservations::Report(ReservationReportDone done) {
  auto op = Operation::New(*this, "report", std::nullopt, {});
  op->report_done = std::move(done);
  op->followup = Operation::Followup::kReport;
  op->SetReportRead(options_.initial_report_registrants);
  Operation::Start(*this, std::move(op));
}

}  // namespace mpath::nvme
