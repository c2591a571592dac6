// Neutral vocabulary of the multipath core: identities, path states, policies and modes. Nothing here knows SCSI or
// NVMe; personalities translate their protocol's states into these.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "mpath/core/error.h"

namespace mpath {

// What makes two paths "the same device": a personality-built, printable designator such as "naa.6001405..." or
// "eui.0025388b...". Paths are grouped into one head exactly when their identities compare equal.
// Threading: a value type; const use is safe from any thread.
class DeviceIdentity {
 public:
  DeviceIdentity() = default;
  explicit DeviceIdentity(std::string designator) : designator_(std::move(designator)) {}

  [[nodiscard]] const std::string& str() const { return designator_; }
  [[nodiscard]] bool empty() const { return designator_.empty(); }
  friend bool operator==(const DeviceIdentity&, const DeviceIdentity&) = default;

 private:
  std::string designator_;
};

// Connection state of a path, driven by its transport.
enum class PathState : std::uint8_t {
  kConnecting,  // being (re)connected; may become usable, so I/O may wait for it
  kLive,
  kFailed,      // down; will not carry I/O until the transport reports it live again
  kRemoving,    // being detached; never chosen again
};

// Asymmetric access state of a path, as reported by the device (ALUA target port group or ANA group).
enum class AccessState : std::uint8_t {
  kOptimized,
  kNonOptimized,
  kStandby,
  kUnavailable,
  kTransitioning,
  kPersistentLoss,
};

enum class IoPolicyKind : std::uint8_t {
  kNuma,          // nearest optimized path by locality, cached per channel
  kRoundRobin,
  kQueueDepth,    // fewest I/Os in flight
  kServiceTime,   // lowest expected completion time: latency EWMA weighted by I/Os in flight
};

// Whether a device is taken into multipath at all; decided before it is attached.
enum class MultipathMode : std::uint8_t {
  kOff,     // never: every device gets a direct handle
  kOn,      // devices that report asymmetric access states (ALUA TPGS, ANA) and carry an identity
  kAlways,  // any device with an identity
};

std::string_view Name(PathState state);
std::string_view Name(AccessState state);
std::string_view Name(IoPolicyKind policy);
std::string_view Name(MultipathMode mode);

// Parse the names printed above (also accepting "rr", "qd", "st" as short forms of the policies).
Result<IoPolicyKind> ParseIoPolicy(std::string_view text);
Result<MultipathMode> ParseMultipathMode(std::string_view text);

// Locality of a path or an I/O thread: a NUMA node number, or kUnknownLocality.
inline constexpr int kUnknownLocality = -1;

using PathId = std::uint32_t;

}  // namespace mpath

template <>
struct std::hash<mpath::DeviceIdentity> {
  std::size_t operator()(const mpath::DeviceIdentity& id) const noexcept { return std::hash<std::string>{}(id.str()); }
};
