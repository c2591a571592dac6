// How a transport delivered a command, shared by the SCSI and NVMe seams. Only kDelivered carries the device's own
// status; every other value means the path failed the command and the device's verdict is unknown.
#pragma once

#include <cstdint>
#include <string_view>

namespace mpath::proto {

enum class Delivery : std::uint8_t {
  kDelivered,   // the device answered; its status is in the command
  kLinkDown,    // the transport could not reach the device (no connection, connection refused or lost)
  kTimedOut,    // no answer within the command's timeout; the device may or may not have executed it
  kAborted,     // the transport aborted it (task management, controller reset, shutdown)
};

std::string_view DeliveryName(Delivery delivery);

}  // namespace mpath::proto
