// Discovery over one controller as two small state machines over one reusable admin command each. Discovery is
// control plane: one allocation per probe and one 4 KiB buffer are fine here.
#include "mpath/nvme/probe.h"

#include <fmt/format.h>

#include <memory>
#include <string>
#include <utility>

#include "mpath/nvme/raw_status.h"
#include "mpath/nvme/spec/common.h"
#include "mpath/nvme/spec/identify.h"
#include "mpath/nvme/spec/status.h"

namespace mpath::nvme {
namespace {

using spec::Cns;

enum class Step : std::uint8_t {
  kIdentifyController,
  kActiveNamespaceList,
  kIdentifyNamespace,
  kDescriptors,
};

std::string_view StepName(Step step) {
  switch (step) {
    case Step::kIdentifyController: return "Identify Controller (CNS 01h)";
    case Step::kActiveNamespaceList: return "Identify Active Namespace ID list (CNS 02h)";
    case Step::kIdentifyNamespace: return "Identify Namespace (CNS 00h)";
    case Step::kDescriptors: return "Identify Namespace Identification Descriptor list (CNS 03h)";
    default: return "Identify";
  }
}

Errc ErrcOf(Delivery delivery) {
  switch (delivery) {
    case Delivery::kTimedOut: return Errc::kTimedOut;
    case Delivery::kAborted: return Errc::kAborted;
    case Delivery::kLinkDown: return Errc::kPathError;
    default: return Errc::kPathError;
  }
}

// Base 2.0c §5.17.2.2: NSIDs up to FFFFFFFEh are valid; a list page ending there has nothing after it.
constexpr std::uint32_t kLastValidNsid = spec::kBroadcastNsid - 1;

// One Identify after another over one admin command. Answers that come back inside Submit are handled in a loop
// rather than by recursion, so a transport answering inline never nests one command inside another.
// Threading: confined to the executor's thread; the concrete prober deletes itself once its callback has the result.
class IdentifySequence {
 public:
  IdentifySequence(const IdentifySequence&) = delete;
  IdentifySequence& operator=(const IdentifySequence&) = delete;
  virtual ~IdentifySequence() = default;

 protected:
  IdentifySequence(NvmeTransport& transport, Executor& executor, ProbeOptions options, RetryDelayTimes delays)
      : transport_(transport), executor_(executor), options_(options), delays_(delays) {
    command_.OnFinish(&IdentifySequence::OnFinish, this);
  }

  // Prepares command_ as the Identify of `step`.
  void Prepare(Step step, Cns cns, std::uint32_t nsid) {
    step_ = step;
    buffer_.fill(std::byte{0});
    command_.sqe = spec::MakeIdentify(cns, nsid);
    command_.queue = QueueKind::kAdmin;
    command_.direction = DataDirection::kFromController;
    command_.data = std::span<std::byte>(buffer_);
    command_.timeout = options_.command_timeout;
    command_.executor = &executor_;
    command_.ResetAnswer();
  }

  void Send() {
    for (;;) {
      submitting_ = true;
      answered_inline_ = false;
      transport_.Submit(command_);
      submitting_ = false;
      if (!answered_inline_) return;
      if (!HandleAnswer()) return;
    }
  }

  // What arrived: command.data as the transport left it, so that a transport which received less than a page can
  // say so by narrowing the span (NVMe itself has no residual count).
  [[nodiscard]] std::span<const std::byte> received() const { return command_.data; }
  [[nodiscard]] Step step() const { return step_; }
  [[nodiscard]] RawStatus raw_status() const { return EncodeRawStatus(OutcomeOf(command_, delays_)); }

  // Handles a successful answer to the current step. Returns true when command_ is ready to be sent again; false
  // when the probe has ended (and `this` is gone).
  virtual bool OnData(std::span<const std::byte> data) = 0;
  // A completion with an error status; returns what OnData returns. By default the probe fails with the status.
  virtual bool OnFailedStatus(spec::Status status) {
    return Fail(Errc::kTargetError,
                fmt::format("failed with {} ({:#05x}{})", spec::StatusName(status), status.code(),
                            status.dnr() ? ", DNR" : ""),
                raw_status());
  }
  // Ends the probe with an error about the current step; returns false.
  virtual bool Fail(Errc code, std::string what, RawStatus raw) = 0;
  bool Fail(const Error& error) { return Fail(error.code(), error.message(), error.raw()); }

  // Every Identify data structure is one page; a list or descriptor page cut short would hide entries silently.
  [[nodiscard]] bool IsWholePage(std::span<const std::byte> data) const {
    return data.size() >= spec::kIdentifyDataSize;
  }
  bool FailShortPage(std::span<const std::byte> data) {
    return Fail(Errc::kTargetError,
                fmt::format("{} bytes of data arrived, {} expected", data.size(), spec::kIdentifyDataSize), {});
  }

 private:
  static void OnFinish(NvmeCommand& /*command*/, void* arg) {
    auto* self = static_cast<IdentifySequence*>(arg);
    if (self->submitting_) {
      self->answered_inline_ = true;
      return;
    }
    if (self->HandleAnswer()) self->Send();
  }

  bool HandleAnswer() {
    if (command_.delivery != Delivery::kDelivered) {
      return Fail(ErrcOf(command_.delivery),
                  fmt::format("not delivered ({})", proto::DeliveryName(command_.delivery)), raw_status());
    }
    const spec::Status status = command_.cqe.status();
    if (!status.ok()) return OnFailedStatus(status);
    return OnData(received());
  }

  // Constant after construction.
  NvmeTransport& transport_;
  Executor& executor_;
  const ProbeOptions options_;
  const RetryDelayTimes delays_;

  NvmeCommand command_;
  std::array<std::byte, spec::kIdentifyDataSize> buffer_{};  // command_.data
  Step step_ = Step::kIdentifyController;
  bool submitting_ = false;       // inside transport_.Submit
  bool answered_inline_ = false;  // the answer came back inside Submit
};

// Threading: confined to the executor's thread. It deletes itself after handing the result to `done`.
class ControllerProber final : public IdentifySequence {
 public:
  ControllerProber(NvmeTransport& transport, Executor& executor, ProbeOptions options, ControllerProbeCallback done)
      : IdentifySequence(transport, executor, options, {}), done_(std::move(done)) {}

  void Start() {
    Prepare(Step::kIdentifyController, Cns::kController, 0);
    Send();
  }

 private:
  bool OnData(std::span<const std::byte> data) override {
    switch (step()) {
      case Step::kIdentifyController: {
        auto controller = ParseIdentifyController(data);
        if (!controller) return IdentifySequence::Fail(controller.error());
        probed_.controller = std::move(*controller);
        return ListFrom(0);
      }
      case Step::kActiveNamespaceList: return OnNamespaceList(data);
      default: return Fail(Errc::kInternal, "unexpected step", {});
    }
  }

  bool ListFrom(std::uint32_t nsid) {
    list_from_ = nsid;
    Prepare(Step::kActiveNamespaceList, Cns::kActiveNamespaceList, nsid);
    return true;
  }

  bool OnNamespaceList(std::span<const std::byte> data) {
    if (!IsWholePage(data)) return FailShortPage(data);
    const std::vector<std::uint32_t> page = spec::ParseNamespaceList(data);
    std::uint32_t previous = list_from_;
    for (std::uint32_t nsid : page) {
      // Base 2.0c §5.17.2.2: NSIDs "greater than the value specified in the NSID field", "in increasing order".
      if (nsid <= previous) {
        return Fail(Errc::kTargetError,
                    fmt::format("NSID {} follows NSID {} (the list must increase past NSID {})", nsid, previous,
                                list_from_),
                    {});
      }
      if (nsid > probed_.controller.nn || nsid == spec::kBroadcastNsid) {
        return Fail(Errc::kTargetError,
                    fmt::format("NSID {:#x} lies beyond NN {:#x}", nsid, probed_.controller.nn), {});
      }
      previous = nsid;
    }
    probed_.active_nsids.insert(probed_.active_nsids.end(), page.begin(), page.end());
    if (page.size() == spec::kMaxNamespaceListEntries && page.back() < kLastValidNsid) return ListFrom(page.back());
    return Finish(std::move(probed_));
  }

  bool Fail(Errc code, std::string what, RawStatus raw) override {
    std::string where = step() == Step::kActiveNamespaceList ? fmt::format(" from NSID {}", list_from_) : "";
    return Finish(std::unexpected(
        Error(code, fmt::format("probe of controller: {}{}: {}", StepName(step()), where, what), raw)));
  }

  bool Finish(Result<ProbedController> result) {
    ControllerProbeCallback done = std::move(done_);
    delete this;
    done(std::move(result));
    return false;
  }

  ControllerProbeCallback done_;
  ProbedController probed_;
  std::uint32_t list_from_ = 0;  // the NSID the current list page starts after
};

// Threading: confined to the executor's thread. It deletes itself after handing the result to `done`.
class NamespaceProber final : public IdentifySequence {
 public:
  NamespaceProber(NvmeTransport& transport, const ControllerSummary& controller, std::uint32_t nsid,
                  Executor& executor, ProbeOptions options, NamespaceProbeCallback done)
      : IdentifySequence(transport, executor, options, controller.retry_delays),
        controller_(controller),
        nsid_(nsid),
        done_(std::move(done)) {}

  void Start() {
    Prepare(Step::kIdentifyNamespace, Cns::kNamespace, nsid_);
    Send();
  }

 private:
  bool OnData(std::span<const std::byte> data) override {
    switch (step()) {
      case Step::kIdentifyNamespace: {
        auto ns = ParseIdentifyNamespace(nsid_, data);
        if (!ns) return IdentifySequence::Fail(ns.error());
        probed_.ns = *ns;
        Prepare(Step::kDescriptors, Cns::kNamespaceIdentificationDescriptors, nsid_);
        return true;
      }
      case Step::kDescriptors: {
        if (!IsWholePage(data)) return FailShortPage(data);
        auto descriptors = spec::ParseNamespaceIdDescriptors(data);
        if (!descriptors) return IdentifySequence::Fail(descriptors.error());
        probed_.descriptors = *descriptors;
        return Identify();
      }
      default: return Fail(Errc::kInternal, "unexpected step", {});
    }
  }

  bool OnFailedStatus(spec::Status status) override {
    // CNS 03h is mandatory only from revision 1.3; older controllers refuse it as a field or opcode they lack, and
    // the identity then comes from Identify Namespace alone.
    if (step() == Step::kDescriptors && (spec::Is(status, spec::GenericStatus::kInvalidFieldInCommand) ||
                                         spec::Is(status, spec::GenericStatus::kInvalidCommandOpcode))) {
      probed_.descriptors.reset();
      return Identify();
    }
    return IdentifySequence::OnFailedStatus(status);
  }

  bool Identify() {
    auto identity = ChooseNamespaceIdentity(controller_, probed_.ns, probed_.descriptors);
    if (!identity) return IdentifySequence::Fail(identity.error());
    probed_.identity = std::move(*identity);
    return Finish(std::move(probed_));
  }

  bool Fail(Errc code, std::string what, RawStatus raw) override {
    return Finish(std::unexpected(Error(code,
                                        fmt::format("probe of NSID {} through controller {} of {}: {}: {}", nsid_,
                                                    controller_.cntlid, controller_.subnqn, StepName(step()), what),
                                        raw)));
  }

  bool Finish(Result<ProbedNamespace> result) {
    NamespaceProbeCallback done = std::move(done_);
    delete this;
    done(std::move(result));
    return false;
  }

  // Constant after construction: a copy, so the caller's summary need not outlive the probe.
  const ControllerSummary controller_;
  const std::uint32_t nsid_;

  NamespaceProbeCallback done_;
  ProbedNamespace probed_;
};

}  // namespace

void ProbeController(NvmeTransport& transport, Executor& executor, ProbeOptions options, ControllerProbeCallback done) {
  auto prober = std::make_unique<ControllerProber>(transport, executor, options, std::move(done));
  // Started as a task so that every Submit and every answer happens on the executor's thread, whoever calls this.
  executor.Post([prober = std::move(prober)]() mutable { prober.release()->Start(); });
}

void ProbeNamespace(NvmeTransport& transport, const ControllerSummary& controller, std::uint32_t nsid,
                    Executor& executor, ProbeOptions options, NamespaceProbeCallback done) {
  auto prober = std::make_unique<NamespaceProber>(transport, controller, nsid, executor, options, std::move(done));
  executor.Post([prober = std::move(prober)]() mutable { prober.release()->Start(); });
}

}  // namespace mpath::nvme
