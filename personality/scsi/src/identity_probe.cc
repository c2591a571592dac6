// The discovery sequence for one LU, as a small state machine over one reusable ScsiCommand. Discovery is control
// plane: one allocation per probe and per page is fine here.
#include "mpath/scsi/identity_probe.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "mpath/scsi/raw_status.h"
#include "mpath/scsi/spec/inquiry.h"
#include "mpath/scsi/spec/sbc_cdb.h"
#include "mpath/scsi/spec/sense.h"
#include "mpath/scsi/spec/spc_cdb.h"

namespace mpath::scsi {
namespace {

using spec::SenseKey;

enum class Step : std::uint8_t {
  kStandardInquiry,
  kSupportedPages,
  kDeviceIdentification,
  kBlockLimits,
  kReadCapacity16,
  kReadCapacity10,
};

std::string_view StepName(Step step) {
  switch (step) {
    case Step::kStandardInquiry: return "INQUIRY";
    case Step::kSupportedPages: return "INQUIRY VPD 00h";
    case Step::kDeviceIdentification: return "INQUIRY VPD 83h";
    case Step::kBlockLimits: return "INQUIRY VPD B0h";
    case Step::kReadCapacity16: return "READ CAPACITY (16)";
    case Step::kReadCapacity10: return "READ CAPACITY (10)";
    default: return "command";
  }
}

std::uint8_t PageOf(Step step) {
  switch (step) {
    case Step::kSupportedPages: return spec::vpd::kSupportedPages;
    case Step::kDeviceIdentification: return spec::vpd::kDeviceIdentification;
    case Step::kBlockLimits: return spec::vpd::kBlockLimits;
    default: return 0;
  }
}

// SPC-5 r19 §6.6.2: 96 bytes hold every standard field up to the version descriptors; what is used ends at 36.
constexpr std::uint16_t kStandardInquiryAllocation = sizeof(spec::StandardInquiryData);
constexpr std::uint32_t kReadCapacity16Allocation = sizeof(spec::ReadCapacity16Data);
constexpr std::uint16_t kMaxVpdAllocation = 0xFFFF;
// A page that keeps announcing more than it sends is read with what arrived after this many regrowths.
constexpr int kMaxVpdRegrowths = 2;

std::string SenseText(const spec::SenseData& sense) {
  return fmt::format("sense {:x}/{:02x}/{:02x}", static_cast<unsigned>(sense.code.key), sense.code.asc,
                     sense.code.ascq);
}

// The NOT READY codes with which a port's asymmetric access state refuses media commands (SPC-5 §5.16.2.4):
// information about the port, not a failure of the LU.
bool IsAccessStateRefusal(const spec::SenseCode& code) {
  return code == spec::asc::kLunNotReadyAsymmetricTransition || code == spec::asc::kLunNotReadyTargetPortStandby ||
         code == spec::asc::kLunNotReadyTargetPortUnavailable || code == spec::asc::kLunNotAccessibleOffline;
}

// Threading: confined to the executor's thread. It deletes itself after handing the result to `done`.
class LunProber {
 public:
  LunProber(ScsiTransport& transport, std::uint64_t lun, Executor& executor, ProbeOptions options,
            ProbeCallback done)
      : transport_(transport), lun_(lun), executor_(executor), options_(options), done_(std::move(done)) {
    command_.OnFinish(&LunProber::OnFinish, this);
  }

  void Start() {
    Begin(Step::kStandardInquiry, kStandardInquiryAllocation);
    Send();
  }

 private:
  // Sends command_ and handles the answers that come back inside Submit in a loop rather than by recursion, so that a
  // transport answering inline never nests one command inside another.
  void Send() {
    for (;;) {
      submitting_ = true;
      answered_inline_ = false;
      transport_.Submit(lun_, command_);
      submitting_ = false;
      if (!answered_inline_) return;
      if (!HandleAnswer()) return;
    }
  }

  static void OnFinish(ScsiCommand& /*command*/, void* arg) {
    auto* self = static_cast<LunProber*>(arg);
    if (self->submitting_) {
      self->answered_inline_ = true;
      return;
    }
    if (self->HandleAnswer()) self->Send();
  }

  // Prepares the first try of `step`.
  void Begin(Step step, std::uint32_t allocation) {
    step_ = step;
    regrowths_ = 0;
    Prepare(allocation);
  }

  // Prepares a try of the current step with a fresh buffer of `allocation` bytes.
  void Prepare(std::uint32_t allocation) {
    unit_attention_tries_ = 0;
    buffer_.assign(allocation, std::byte{0});
    command_.data = std::span<std::byte>(buffer_);
    command_.direction = DataDirection::kFromDevice;
    command_.timeout = options_.command_timeout;
    command_.executor = &executor_;
    command_.ResetAnswer();
    switch (step_) {
      case Step::kStandardInquiry:
        command_.SetCdb(spec::InquiryCdb::Standard(static_cast<std::uint16_t>(allocation)));
        break;
      case Step::kSupportedPages:
      case Step::kDeviceIdentification:
      case Step::kBlockLimits:
        command_.SetCdb(spec::InquiryCdb::Vpd(PageOf(step_), static_cast<std::uint16_t>(allocation)));
        break;
      case Step::kReadCapacity16: command_.SetCdb(spec::ReadCapacity16Cdb::Make(allocation)); break;
      case Step::kReadCapacity10: command_.SetCdb(spec::ReadCapacity10Cdb::Make()); break;
      default: break;
    }
  }

  // Returns true when command_ is ready to be sent again; false when the probe has ended (and `this` is gone).
  bool HandleAnswer() {
    ++unit_attention_tries_;
    if (command_.delivery != Delivery::kDelivered) {
      const Errc code = command_.delivery == Delivery::kTimedOut ? Errc::kTimedOut
                        : command_.delivery == Delivery::kAborted ? Errc::kAborted
                                                                  : Errc::kPathError;
      return Fail(code, fmt::format("not delivered: {}", proto::DeliveryName(command_.delivery)));
    }
    const auto status = static_cast<spec::Status>(command_.status);
    if (status == spec::Status::kGood) return OnGood(command_.received());
    if (status != spec::Status::kCheckCondition) {
      return Fail(Errc::kTargetError, fmt::format("status {:#04x}", command_.status));
    }
    const auto sense = spec::ParseSense(command_.sense_bytes());
    if (!sense) {
      return Fail(Errc::kTargetError, fmt::format("CHECK CONDITION with unreadable sense data ({})",
                                                  spec::SenseParseErrorName(sense.error())));
    }
    if (sense->code.key == SenseKey::kUnitAttention) {
      if (unit_attention_tries_ < std::max(options_.unit_attention_tries, 1)) {
        command_.ResetAnswer();
        return true;
      }
      return Fail(Errc::kBusy, fmt::format("UNIT ATTENTION on each of {} tries (last {})", unit_attention_tries_,
                                           SenseText(*sense)));
    }
    return OnCheckCondition(*sense);
  }

  bool OnCheckCondition(const spec::SenseData& sense) {
    const bool illegal = sense.code.key == SenseKey::kIllegalRequest;
    switch (step_) {
      case Step::kSupportedPages:
        // Page 83h is mandatory since SPC-3, so ask for it even when the list is refused; B0h is not asked for.
        if (illegal) return Next(Step::kDeviceIdentification);
        break;
      case Step::kDeviceIdentification:
        if (illegal) {
          unit_.identity.reason = fmt::format("the device refused VPD page 83h ({})", SenseText(sense));
          return AfterDeviceIdentification();
        }
        break;
      case Step::kBlockLimits:
        if (illegal) return Next(Step::kReadCapacity16);
        break;
      case Step::kReadCapacity16:
        if (illegal) return Next(Step::kReadCapacity10);
        [[fallthrough]];
      case Step::kReadCapacity10:
        if (IsAccessStateRefusal(sense.code)) {
          unit_.capacity_refused = sense.code;
          return Succeed();
        }
        break;
      default: break;
    }
    return Fail(Errc::kTargetError, fmt::format("CHECK CONDITION, {}", SenseText(sense)));
  }

  bool OnGood(std::span<const std::byte> data) {
    switch (step_) {
      case Step::kStandardInquiry: {
        auto inquiry = ParseStandardInquiry(data);
        if (!inquiry) return Fail(std::move(inquiry).error());
        if (auto ok = CheckBlockDevice(*inquiry); !ok) return Fail(std::move(ok).error());
        unit_.inquiry = std::move(*inquiry);
        return Next(Step::kSupportedPages);
      }
      case Step::kSupportedPages: {
        if (Regrow(data)) return true;
        auto pages = ParseSupportedVpdPages(data);
        if (!pages) return Fail(std::move(pages).error());
        unit_.supported_vpd_pages = std::move(*pages);
        if (Supports(spec::vpd::kDeviceIdentification)) return Next(Step::kDeviceIdentification);
        unit_.identity.reason = "the device does not list VPD page 83h among its supported pages";
        return AfterDeviceIdentification();
      }
      case Step::kDeviceIdentification: {
        if (Regrow(data)) return true;
        auto port = ParseTargetPortInfo(data);
        if (!port) return Fail(std::move(port).error());
        unit_.port = std::move(*port);
        if (auto identity = ParseLuIdentity(data)) {
          unit_.identity = std::move(*identity);
        } else if (identity.error().code() == Errc::kNotFound) {
          unit_.identity.reason = identity.error().message();
        } else {
          return Fail(std::move(identity).error());
        }
        unit_.vpd83.resize(data.size());
        std::copy(data.begin(), data.end(), unit_.vpd83.begin());
        return AfterDeviceIdentification();
      }
      case Step::kBlockLimits: {
        if (Regrow(data)) return true;
        auto limits = ParseBlockLimits(data);
        if (!limits) return Fail(std::move(limits).error());
        unit_.block_limits = *limits;
        return Next(Step::kReadCapacity16);
      }
      case Step::kReadCapacity16:
      case Step::kReadCapacity10: {
        auto capacity = step_ == Step::kReadCapacity16 ? ParseReadCapacity16(data) : ParseReadCapacity10(data);
        if (!capacity) return Fail(std::move(capacity).error());
        unit_.capacity = *capacity;
        return Succeed();
      }
      default: return Fail(Errc::kInternal, "unknown probe step");
    }
  }

  // A VPD page whose PAGE LENGTH says it is longer than the allocation asked for is read again, whole.
  bool Regrow(std::span<const std::byte> data) {
    const auto header = wire::Load<spec::VpdPageHeader>(data);
    if (!header || header->page_code != PageOf(step_)) return false;  // the parser names the problem
    const std::size_t whole = sizeof(spec::VpdPageHeader) + header->page_length.value();
    const std::size_t asked = buffer_.size();
    if (whole <= asked || asked >= kMaxVpdAllocation || regrowths_ >= kMaxVpdRegrowths) return false;
    ++regrowths_;
    Prepare(static_cast<std::uint32_t>(std::min<std::size_t>(whole, kMaxVpdAllocation)));
    return true;
  }

  [[nodiscard]] bool Supports(std::uint8_t page) const {
    return std::find(unit_.supported_vpd_pages.begin(), unit_.supported_vpd_pages.end(), page) !=
           unit_.supported_vpd_pages.end();
  }

  bool AfterDeviceIdentification() {
    return Next(Supports(spec::vpd::kBlockLimits) ? Step::kBlockLimits : Step::kReadCapacity16);
  }

  bool Next(Step step) {
    std::uint32_t allocation = options_.vpd_allocation_length;
    if (step == Step::kReadCapacity16) allocation = kReadCapacity16Allocation;
    if (step == Step::kReadCapacity10) allocation = sizeof(spec::ReadCapacity10Data);
    Begin(step, std::max<std::uint32_t>(allocation, sizeof(spec::VpdPageHeader)));
    return true;
  }

  // Failures decided from an answer keep that answer's raw status, so callers and logs see what the device said.
  bool Fail(Errc code, std::string what) {
    return Finish(std::unexpected(Error(code, fmt::format("probe of LUN {}: {}: {}", lun_, StepName(step_), what),
                                        EncodeRawStatus(command_))));
  }
  bool Fail(Error error) {
    return Finish(std::unexpected(Error(
        error.code(), fmt::format("probe of LUN {}: {}: {}", lun_, StepName(step_), error.message()), error.raw())));
  }
  bool Succeed() { return Finish(std::move(unit_)); }

  bool Finish(Result<ProbedUnit> result) {
    ProbeCallback done = std::move(done_);
    delete this;
    done(std::move(result));
    return false;
  }

  // Constant after construction.
  ScsiTransport& transport_;
  const std::uint64_t lun_;
  Executor& executor_;
  const ProbeOptions options_;

  ProbeCallback done_;
  ScsiCommand command_;
  std::vector<std::byte> buffer_;  // command_.data
  Step step_ = Step::kStandardInquiry;
  int unit_attention_tries_ = 0;   // tries of the current command so far
  int regrowths_ = 0;
  bool submitting_ = false;        // inside transport_.Submit
  bool answered_inline_ = false;   // the answer came back inside Submit
  ProbedUnit unit_;
};

}  // namespace

void ApplyBlockLimits(const std::optional<BlockLimits>& limits, DeviceInfo& info) {
  info.max_transfer_bytes = 0;
  info.max_zeroing_bytes = 0;
  if (!limits || info.block_size == 0) return;
  // Block Limits VPD (SBC-4 §6.6.4) counts blocks; 0 means the device reports no limit. Discards go down as UNMAP
  // or WRITE SAME and zeroing as WRITE SAME, so the tighter of their limits bounds both.
  const std::uint64_t bs = info.block_size;
  const std::uint64_t transfer = std::uint64_t{limits->max_transfer_blocks} * bs;
  info.max_transfer_bytes =
      static_cast<std::uint32_t>(std::min<std::uint64_t>(transfer, std::numeric_limits<std::uint32_t>::max() / bs * bs));
  const std::uint64_t unmap = std::uint64_t{limits->max_unmap_blocks} * bs;
  const std::uint64_t write_same =
      std::min(limits->max_write_same_blocks, std::numeric_limits<std::uint64_t>::max() / bs) * bs;
  info.max_zeroing_bytes = unmap == 0 ? write_same : write_same == 0 ? unmap : std::min(unmap, write_same);
}

DeviceInfo ProbedUnit::ToDeviceInfo() const {
  DeviceInfo info;
  info.identity = identity.identity;
  info.reports_access_states = inquiry.reports_access_states();
  if (capacity) {
    info.capacity_bytes = capacity->bytes();
    info.block_size = capacity->block_size;
  }
  // Without the capacity the block size is not known yet: Attach applies the limits once the head supplies it.
  if (capacity) ApplyBlockLimits(block_limits, info);
  if (capacity_refused) {
    if (*capacity_refused == spec::asc::kLunNotReadyTargetPortStandby) {
      info.initial_access = AccessState::kStandby;
    } else if (*capacity_refused == spec::asc::kLunNotReadyAsymmetricTransition) {
      info.initial_access = AccessState::kTransitioning;
    } else {
      info.initial_access = AccessState::kUnavailable;
    }
  }
  return info;
}

void ProbeLogicalUnit(ScsiTransport& transport, std::uint64_t lun, Executor& executor, ProbeOptions options,
                      ProbeCallback done) {
  auto prober = std::make_unique<LunProber>(transport, lun, executor, options, std::move(done));
  // Started as a task so that every Submit and every answer happens on the executor's thread, whoever calls this.
  executor.Post([prober = std::move(prober)]() mutable { prober.release()->Start(); });
}

}  // namespace mpath::scsi
