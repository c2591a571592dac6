// What the SCSI and NVMe fault decorators share: finishing a command the link failed, now or at its timeout, and
// losing the answer of one the device did execute. Internal to transport/sim.
#pragma once

#include <algorithm>

#include "mpath/core/clock.h"
#include "mpath/core/executor.h"
#include "mpath/proto/delivery.h"
#include "mpath/sim/link_faults.h"

namespace mpath::sim::internal {

// Marks `command` as not delivered. SCSI commands also report that no data moved.
template <typename Command>
void MarkUndelivered(Command& command, proto::Delivery delivery) {
  command.ResetAnswer();
  command.delivery = delivery;
  if constexpr (requires { command.residual; }) {
    command.residual = static_cast<std::uint32_t>(command.data.size());
  }
}

// Finishes `command` with `delivery` after `after`, on the submitter's executor (at once when it has none).
template <typename Command>
void FinishUndelivered(Command& command, proto::Delivery delivery, Nanos after) {
  if (command.executor == nullptr || after <= Nanos(0)) {
    MarkUndelivered(command, delivery);
    command.Finish();
    return;
  }
  command.executor->ScheduleAfter(after, [&command, delivery] {
    MarkUndelivered(command, delivery);
    command.Finish();
  });
}

// Swallows the device's answer to one command and times the command out at its deadline instead, as when a
// response PDU is lost on the wire. Allocated per dropped command: a fault path, not the I/O path.
// Threading: lives on the command's path from Arm to the device's answer; deletes itself then.
template <typename Command>
class DroppedAnswer {
 public:
  // Takes over `command`'s completion hook until the device answers.
  static void Arm(Command& command, Nanos timeout) {
    const Clock* clock = command.executor != nullptr ? &command.executor->clock() : nullptr;
    auto* record = new DroppedAnswer(timeout, clock);
    record->submitter_hook_ = command.ExchangeHook({&DroppedAnswer::OnAnswer, record});
  }

 private:
  DroppedAnswer(Nanos timeout, const Clock* clock)
      : deadline_(clock != nullptr ? clock->Now() + timeout : TimePoint{}), clock_(clock) {}

  static void OnAnswer(Command& command, void* arg) {
    auto* record = static_cast<DroppedAnswer*>(arg);
    command.ExchangeHook(record->submitter_hook_);
    const Nanos remaining = record->clock_ != nullptr ? std::max(record->deadline_ - record->clock_->Now(), Nanos(0))
                                                      : Nanos(0);
    delete record;
    FinishUndelivered(command, proto::Delivery::kTimedOut, remaining);
  }

  typename Command::Hook submitter_hook_;
  TimePoint deadline_;
  const Clock* clock_;
};

// Carries out the link's verdict on one command; `send` hands it to the device.
template <typename Command, typename Send>
void Route(LinkFaults& faults, Command& command, LinkVerdict verdict, Nanos timeout, Send send) {
  switch (verdict.action) {
    case LinkAction::kLinkDown:
      FinishUndelivered(command, proto::Delivery::kLinkDown, Nanos(0));
      return;
    case LinkAction::kHang:
      FinishUndelivered(command, proto::Delivery::kTimedOut, timeout);
      return;
    case LinkAction::kFailIo:
      // Aborted by the transport before the device executes it, as on a link that corrupts data (digest errors).
      FinishUndelivered(command, proto::Delivery::kAborted, verdict.delay);
      return;
    case LinkAction::kDeliver:
    case LinkAction::kDropCompletion:
    default:
      break;
  }
  // An answer that would arrive after the timeout is, to the initiator, a lost answer.
  const LinkAction action = verdict.delay >= timeout ? LinkAction::kDropCompletion : verdict.action;
  if (action == LinkAction::kDropCompletion) DroppedAnswer<Command>::Arm(command, timeout);
  if (verdict.delay <= Nanos(0) || command.executor == nullptr) {
    // Sent at once: the link Decide has just found up has had no time on the wire to go down in.
    send();
    return;
  }
  auto forward = [&faults, &command, action, send] {
    // The link may have gone down while the command was on the wire.
    if (action == LinkAction::kDeliver && faults.IsDown()) {
      FinishUndelivered(command, proto::Delivery::kLinkDown, Nanos(0));
      return;
    }
    send();
  };
  command.executor->ScheduleAfter(verdict.delay, std::move(forward));
}

}  // namespace mpath::sim::internal
