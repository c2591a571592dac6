#include "mpath/core/head_options.h"

#include <bit>
#include <cmath>

#include <fmt/format.h>

namespace mpath {

namespace {

Result<void> RequireNonNegative(Nanos value, std::string_view what) {
  if (value < Nanos(0)) {
    return MakeError(Errc::kInvalidArgument, fmt::format("{} must not be negative (got {} ns)", what, value.count()));
  }
  return {};
}

}  // namespace

Result<void> MarginalOptions::Validate() const {
  if (window == 0 || window > 64) {
    return MakeError(Errc::kInvalidArgument, fmt::format("marginal window must be 1..64 I/Os (got {})", window));
  }
  if (error_threshold == 0 || error_threshold > window) {
    return MakeError(Errc::kInvalidArgument,
                     fmt::format("marginal error threshold must be 1..window ({}) (got {})", window, error_threshold));
  }
  if (!(latency_factor == 0.0 || latency_factor >= 1.0) || std::isnan(latency_factor)) {
    return MakeError(Errc::kInvalidArgument,
                     fmt::format("marginal latency factor must be 0 (off) or at least 1 (got {})", latency_factor));
  }
  MPATH_TRY(RequireNonNegative(latency_floor, "marginal latency floor"));
  if (probe_interval <= Nanos(0)) {
    return MakeError(Errc::kInvalidArgument,
                     fmt::format("marginal probe interval must be positive (got {} ns)", probe_interval.count()));
  }
  if (probes_to_reinstate == 0) {
    return MakeError(Errc::kInvalidArgument, "marginal probes to reinstate must be at least 1");
  }
  return {};
}

Result<void> HeadOptions::Validate() const {
  MPATH_TRY(RequireNonNegative(delayed_removal, "delayed_removal_secs"));
  MPATH_TRY(RequireNonNegative(write_quiesce_delay, "write quiesce delay"));
  MPATH_TRY(RequireNonNegative(failover_round_backoff, "failover round backoff"));
  if (max_failover_rounds == 0) {
    return MakeError(Errc::kInvalidArgument, "max failover rounds must be at least 1");
  }
  if (latency_sample_interval == 0 || !std::has_single_bit(latency_sample_interval)) {
    return MakeError(Errc::kInvalidArgument, fmt::format("latency sample interval must be a power of two (got {})",
                                                         latency_sample_interval));
  }
  MPATH_TRY(marginal.Validate());
  return {};
}

Result<Nanos> SecondsToDuration(double seconds, std::string_view what) {
  // A year is far beyond any sane storage timeout and far below the range of a 64-bit nanosecond count.
  constexpr double kMaxSeconds = 365.0 * 24 * 3600;
  if (std::isnan(seconds) || seconds < 0 || seconds > kMaxSeconds) {
    return MakeError(Errc::kInvalidArgument,
                     fmt::format("{} must be between 0 and {} seconds (got {})", what, kMaxSeconds, seconds));
  }
  return std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(seconds));
}

}  // namespace mpath
