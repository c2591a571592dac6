#include <cstdint>

#include "link_delivery.h"
#include "mpath/sim/faulty_transport.h"

namespace mpath::sim {
namespace {

// NVM Command Set 1.0c §3 (Figure 18): Flush, Write, Read, Compare, Write Zeroes, Dataset Management.
constexpr bool IsMediaOpcode(std::uint8_t opcode) {
  switch (opcode) {
    case 0x00: case 0x01: case 0x02: case 0x05: case 0x08: case 0x09:
      return true;
    default:
      return false;
  }
}

// NVM Express Base 2.0c §5.2 "Asynchronous Event Request command".
constexpr std::uint8_t kAsynchronousEventRequest = 0x0C;

}  // namespace

bool IsNvmeMediaCommand(const nvme::NvmeCommand& command) {
  return command.queue == nvme::QueueKind::kIo && IsMediaOpcode(command.sqe.opc);
}

FaultyNvmeTransport::FaultyNvmeTransport(std::unique_ptr<nvme::NvmeTransport> inner, std::unique_ptr<LinkFaults> faults,
                                         Nanos io_timeout, Nanos admin_timeout)
    : inner_(std::move(inner)), faults_(std::move(faults)), io_timeout_(io_timeout), admin_timeout_(admin_timeout) {}

FaultyNvmeTransport::~FaultyNvmeTransport() = default;

void FaultyNvmeTransport::Submit(nvme::NvmeCommand& command) {
  const bool is_aer = command.queue == nvme::QueueKind::kAdmin && command.sqe.opc == kAsynchronousEventRequest;
  if (is_aer) {
    if (faults_->IsDown()) {
      internal::FinishUndelivered(command, proto::Delivery::kLinkDown, Nanos(0));
    } else {
      inner_->Submit(command);
    }
    return;
  }
  const Nanos default_timeout = command.queue == nvme::QueueKind::kAdmin ? admin_timeout_ : io_timeout_;
  const Nanos timeout = command.timeout > Nanos(0) ? command.timeout : default_timeout;
  internal::Route(*faults_, command, faults_->Decide(IsNvmeMediaCommand(command), command.sqe.nsid.value()), timeout,
                  [this, &command] { inner_->Submit(command); });
}

}  // namespace mpath::sim
