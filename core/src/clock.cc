#include "mpath/core/clock.h"

namespace mpath {

SteadyClock& SteadyClock::Instance() {
  static SteadyClock clock;
  return clock;
}

}  // namespace mpath
