// Tunables of a multipath head, with the defaults a storage engineer would expect.
#pragma once

#include <chrono>
#include <cstdint>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/core/types.h"

namespace mpath {

using namespace std::chrono_literals;

// A path that is live but keeps failing, or is far slower than its peers, is "marginal": it is used only when no
// healthy path exists, and probed until it proves healthy again.
struct MarginalOptions {
  std::uint32_t window = 32;              // M: outcomes remembered per path and I/O thread (at most 64)
  std::uint32_t error_threshold = 8;      // N: path errors among the last M that mark the path marginal
  double latency_factor = 20.0;           // marginal when its latency is this many times its best peer's (0: off)
  Nanos latency_floor = 20ms;             // ...and above this, so that fast paths are never marginal for jitter
  Nanos probe_interval = 1s;              // how often a marginal path is probed
  std::uint32_t probes_to_reinstate = 5;  // consecutive clean probes that reinstate it

  [[nodiscard]] Result<void> Validate() const;
};

struct HeadOptions {
  IoPolicyKind policy = IoPolicyKind::kNuma;
  // How long a head with no usable path keeps queueing I/O (and, once its last path is gone, keeps existing) before
  // it fails the queued I/O and, if no path is left, removes itself. Zero: fail at once and remove at once.
  Nanos delayed_removal = 0s;
  // Stale-I/O protection: a write that failed over waits this long before it is resubmitted on another path, so that
  // a copy still in flight on the failed path cannot land after it. Zero (default): resubmit at once.
  Nanos write_quiesce_delay = 0s;
  std::uint32_t max_same_path_retries = 5;  // bound on kRetrySamePath per I/O
  // An I/O that met a path error on every usable path waits `failover_round_backoff` and tries them all again,
  // at most this many rounds, before its last error is surfaced.
  std::uint32_t max_failover_rounds = 4;
  Nanos failover_round_backoff = 20ms;
  // Completion latency (for service-time, latency-marginal detection and the histograms) is measured on every I/O
  // of a path until it has a few samples, then on one I/O in this many: a clock read costs about as much as the rest
  // of the head's per-I/O work put together. A power of two; 1 measures every I/O.
  std::uint32_t latency_sample_interval = 16;
  // Driver context bytes every request carries; a path whose driver needs more is refused.
  std::size_t request_context_size = 256;
  MarginalOptions marginal;

  [[nodiscard]] Result<void> Validate() const;
};

// Converts an operator-given number of seconds, refusing negative, NaN and absurd values with a message naming it.
Result<Nanos> SecondsToDuration(double seconds, std::string_view what);

}  // namespace mpath
