#include "mpath/core/personality.h"

#include "mpath/core/path.h"

namespace mpath {

std::string_view Name(Disposition disposition) {
  switch (disposition) {
    case Disposition::kSuccess: return "success";
    case Disposition::kRetrySamePath: return "retry-same-path";
    case Disposition::kRetryOtherPath: return "retry-other-path";
    case Disposition::kWaitForStateChange: return "wait-for-state-change";
    case Disposition::kFailUp: return "fail-up";
    default: return "?";
  }
}

bool HeadTemplate::IsUsable(const Path& path) const { return path.IsLive() && path.IsAccessible(); }

bool HeadTemplate::IsOptimized(const Path& path) const { return path.access_state() == AccessState::kOptimized; }

bool HeadTemplate::MayBecomeAvailable(const Path& path) const {
  PathState state = path.state();
  return state == PathState::kConnecting ||
         (state == PathState::kLive && path.access_state() == AccessState::kTransitioning);
}

Decision NeutralTemplate::Classify(const IoRequest& /*io*/, const IoStatus& status, const Path& /*path*/) const {
  switch (status.code) {
    case Errc::kPathError:
    case Errc::kTimedOut:
    case Errc::kAborted:
    case Errc::kRemoved:
    case Errc::kNoPath:
      return {Disposition::kRetryOtherPath};
    case Errc::kBusy:
      return {Disposition::kRetrySamePath, std::chrono::milliseconds(1)};
    default:
      return {Disposition::kFailUp};
  }
}

const NeutralTemplate& NeutralTemplate::Instance() {
  static const NeutralTemplate instance;
  return instance;
}

}  // namespace mpath
