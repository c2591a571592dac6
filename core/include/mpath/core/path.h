// One way to reach a device: an initiator/target nexus or a controller, with the state its transport and the
// device report.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mpath/core/counters.h"
#include "mpath/core/path_driver.h"
#include "mpath/core/types.h"

namespace mpath {

// Facts about a device as one path sees it, gathered by a personality before the device is attached.
struct DeviceInfo {
  std::string name;                    // unique path name, e.g. "sim0:tp1:lun2" or "nvme1c2n1"
  std::string transport;               // "sim", "iscsi", "nvme-tcp", "ufs", ...: for per-transport opt-out
  DeviceIdentity identity;             // empty when the device has none
  bool reports_access_states = false;  // SCSI TPGS != 0, or NVMe ANA reporting on a shared namespace
  std::uint64_t capacity_bytes = 0;
  std::uint32_t block_size = 512;
  int locality = kUnknownLocality;     // NUMA node of the HBA or controller
  PathState initial_state = PathState::kLive;
  AccessState initial_access = AccessState::kOptimized;
  bool preferred = false;              // ALUA preferred bit (PREF), as a tie-breaker hint for personalities
  // The most one command may carry on this path, 0 where the device sets no limit: bytes a read or write moves
  // (NVMe MDTS and the 16-bit block count; SCSI Block Limits VPD), and bytes a write-zeroes or discard covers.
  std::uint32_t max_transfer_bytes = 0;
  std::uint64_t max_zeroing_bytes = 0;
};

// What one request to a head may ask for: the tightest limits of every path the head has had, so a request sized by
// them fits whichever path it ends up on. 0: no limit.
struct IoLimits {
  std::uint32_t max_transfer_bytes = 0;
  std::uint64_t max_zeroing_bytes = 0;

  friend bool operator==(const IoLimits&, const IoLimits&) = default;
};

// Why a path was marked marginal.
enum class MarginalReason : std::uint8_t { kNone, kErrors, kLatency };
std::string_view Name(MarginalReason reason);

class Head;

// Threading: every getter is safe from any thread; state is changed only through the owning Head (control plane).
// A Path is shared by its head and by the I/O channels that still hold requests on it, so it (and its driver)
// outlives its removal until the last such request has completed.
class Path {
 public:
  Path(PathId id, std::uint32_t slot, const DeviceInfo& info, std::unique_ptr<PathDriver> driver);
  Path(const Path&) = delete;
  Path& operator=(const Path&) = delete;

  [[nodiscard]] PathId id() const { return id_; }
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const std::string& transport() const { return transport_; }
  [[nodiscard]] int locality() const { return locality_; }
  [[nodiscard]] PathDriver& driver() const { return *driver_; }

  [[nodiscard]] PathState state() const { return state_.load(std::memory_order_acquire); }
  [[nodiscard]] AccessState access_state() const { return access_.load(std::memory_order_acquire); }
  [[nodiscard]] bool preferred() const { return preferred_.load(std::memory_order_acquire); }
  [[nodiscard]] bool marginal() const { return marginal_reason() != MarginalReason::kNone; }
  [[nodiscard]] MarginalReason marginal_reason() const { return marginal_.load(std::memory_order_acquire); }

  [[nodiscard]] bool IsLive() const { return state() == PathState::kLive; }
  [[nodiscard]] bool IsAccessible() const {
    AccessState a = access_state();
    return a == AccessState::kOptimized || a == AccessState::kNonOptimized;
  }

  // Sum of every I/O thread's counters for this path.
  [[nodiscard]] IoCounters Counters() const;

 private:
  friend class Head;
  friend class HeadChannel;

  std::shared_ptr<IoCounterCell> NewCounterCell();

  // Constant after construction.
  const PathId id_;
  const std::uint32_t slot_;  // bit position in a request's exclusion mask; unique among the head's paths
  const std::string name_;
  const std::string transport_;
  const int locality_;
  const std::unique_ptr<PathDriver> driver_;

  // Written by the owning Head under its lock.
  std::atomic<PathState> state_;
  std::atomic<AccessState> access_;
  std::atomic<bool> preferred_;
  std::atomic<MarginalReason> marginal_{MarginalReason::kNone};

  mutable std::mutex cells_mu_;
  std::vector<std::shared_ptr<IoCounterCell>> cells_;  // guarded by cells_mu_; one per channel that used the path
};

}  // namespace mpath
