#include "mpath/core/types.h"

#include <fmt/format.h>

namespace mpath {

std::string_view Name(PathState state) {
  switch (state) {
    case PathState::kConnecting: return "connecting";
    case PathState::kLive: return "live";
    case PathState::kFailed: return "failed";
    case PathState::kRemoving: return "removing";
    default: return "?";
  }
}

std::string_view Name(AccessState state) {
  switch (state) {
    case AccessState::kOptimized: return "optimized";
    case AccessState::kNonOptimized: return "non-optimized";
    case AccessState::kStandby: return "standby";
    case AccessState::kUnavailable: return "unavailable";
    case AccessState::kTransitioning: return "transitioning";
    case AccessState::kPersistentLoss: return "persistent-loss";
    default: return "?";
  }
}

std::string_view Name(IoPolicyKind policy) {
  switch (policy) {
    case IoPolicyKind::kNuma: return "numa";
    case IoPolicyKind::kRoundRobin: return "round-robin";
    case IoPolicyKind::kQueueDepth: return "queue-depth";
    case IoPolicyKind::kServiceTime: return "service-time";
    default: return "?";
  }
}

std::string_view Name(MultipathMode mode) {
  switch (mode) {
    case MultipathMode::kOff: return "off";
    case MultipathMode::kOn: return "on";
    case MultipathMode::kAlways: return "always";
    default: return "?";
  }
}

Result<IoPolicyKind> ParseIoPolicy(std::string_view text) {
  if (text == "numa") return IoPolicyKind::kNuma;
  if (text == "round-robin" || text == "rr") return IoPolicyKind::kRoundRobin;
  if (text == "queue-depth" || text == "qd") return IoPolicyKind::kQueueDepth;
  if (text == "service-time" || text == "st") return IoPolicyKind::kServiceTime;
  return MakeError(Errc::kInvalidArgument,
                   fmt::format("unknown iopolicy '{}' (expected numa, round-robin, queue-depth or service-time)", text));
}

Result<MultipathMode> ParseMultipathMode(std::string_view text) {
  if (text == "off") return MultipathMode::kOff;
  if (text == "on") return MultipathMode::kOn;
  if (text == "always") return MultipathMode::kAlways;
  return MakeError(Errc::kInvalidArgument,
                   fmt::format("unknown multipath mode '{}' (expected off, on or always)", text));
}

}  // namespace mpath
