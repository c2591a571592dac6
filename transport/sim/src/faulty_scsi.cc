#include <cstdint>

#include "link_delivery.h"
#include "mpath/sim/faulty_transport.h"

namespace mpath::sim {
namespace {

// Operation codes that move or commit data (SBC-4 §5): READ(6/10/16), WRITE(6/10/16), WRITE AND VERIFY(10/16),
// COMPARE AND WRITE, WRITE SAME(10/16), UNMAP, SYNCHRONIZE CACHE(10/16).
constexpr bool IsMediaOpcode(std::uint8_t opcode) {
  switch (opcode) {
    case 0x08: case 0x28: case 0x88:
    case 0x0A: case 0x2A: case 0x8A:
    case 0x2E: case 0x8E: case 0x89:
    case 0x41: case 0x93: case 0x42:
    case 0x35: case 0x91:
      return true;
    default:
      return false;
  }
}

}  // namespace

bool IsScsiMediaCommand(const scsi::ScsiCommand& command) {
  return command.cdb_length > 0 && IsMediaOpcode(command.cdb[0]);
}

FaultyScsiTransport::FaultyScsiTransport(std::unique_ptr<scsi::ScsiTransport> inner, std::unique_ptr<LinkFaults> faults,
                                         Nanos default_timeout)
    : inner_(std::move(inner)), faults_(std::move(faults)), default_timeout_(default_timeout) {}

FaultyScsiTransport::~FaultyScsiTransport() = default;

void FaultyScsiTransport::Submit(std::uint64_t lun, scsi::ScsiCommand& command) {
  const Nanos timeout = command.timeout > Nanos(0) ? command.timeout : default_timeout_;
  internal::Route(*faults_, command, faults_->Decide(IsScsiMediaCommand(command), lun), timeout,
                  [this, lun, &command] { inner_->Submit(lun, command); });
}

}  // namespace mpath::sim
