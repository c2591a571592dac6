#include "mpath/core/path.h"

namespace mpath {

std::string_view Name(MarginalReason reason) {
  switch (reason) {
    case MarginalReason::kNone: return "none";
    case MarginalReason::kErrors: return "errors";
    case MarginalReason::kLatency: return "latency";
    default: return "?";
  }
}

Path::Path(PathId id, std::uint32_t slot, const DeviceInfo& info, std::unique_ptr<PathDriver> driver)
    : id_(id),
      slot_(slot),
      name_(info.name),
      transport_(info.transport),
      locality_(info.locality),
      driver_(std::move(driver)),
      state_(info.initial_state),
      access_(info.initial_access),
      preferred_(info.preferred) {}

std::shared_ptr<IoCounterCell> Path::NewCounterCell() {
  auto cell = std::make_shared<IoCounterCell>();
  std::lock_guard lock(cells_mu_);
  cells_.push_back(cell);
  return cell;
}

IoCounters Path::Counters() const {
  IoCounters total;
  std::lock_guard lock(cells_mu_);
  for (const auto& cell : cells_) total.Merge(cell->Read());
  return total;
}

}  // namespace mpath
