#include "mpath/proto/delivery.h"

namespace mpath::proto {

std::string_view DeliveryName(Delivery delivery) {
  switch (delivery) {
    case Delivery::kDelivered: return "delivered";
    case Delivery::kLinkDown: return "link down";
    case Delivery::kTimedOut: return "timed out";
    case Delivery::kAborted: return "aborted";
    default: return "unknown";
  }
}

}  // namespace mpath::proto
