// What a personality (SCSI, NVMe) tells the core about its paths: the userspace counterpart of the kernel's
// mpath_head_template. The core decides routing from these answers alone and never reads protocol status itself.
#pragma once

#include <string_view>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/core/io_request.h"

namespace mpath {

class Path;

// What the core does with a completed I/O.
enum class Disposition : std::uint8_t {
  kSuccess,             // complete it as successful (e.g. recovered error)
  kRetrySamePath,       // transient: resubmit on the same path after Decision::delay
  kRetryOtherPath,      // the path failed: fail over
  kWaitForStateChange,  // the path is changing state (ALUA transitioning, ANA change): go elsewhere or wait
  kFailUp,              // a target error, or not retryable: complete it with this status
};

std::string_view Name(Disposition disposition);

struct Decision {
  Disposition disposition = Disposition::kFailUp;
  Nanos delay{0};  // kRetrySamePath only
};

// Threading: the predicates run on the control plane with the head's lock held and must not call back into the
// head; Classify runs concurrently on every I/O thread and must be thread-safe (normally it is a pure function).
class HeadTemplate {
 public:
  virtual ~HeadTemplate() = default;

  // Short protocol name for listings: "scsi", "nvme", "null".
  [[nodiscard]] virtual std::string_view protocol() const = 0;

  // May I/O be sent down this path now? Default: live and optimized or non-optimized.
  [[nodiscard]] virtual bool IsUsable(const Path& path) const;
  // Is this path in the preferred tier? Default: access state optimized.
  [[nodiscard]] virtual bool IsOptimized(const Path& path) const;
  // Could this (unusable) path become usable without operator action, so that I/O should wait for it?
  // Default: connecting, or live and transitioning. Personalities bound this with their own timers.
  [[nodiscard]] virtual bool MayBecomeAvailable(const Path& path) const;

  // Decides what a failed completion means. Called only for completions whose status is not ok.
  [[nodiscard]] virtual Decision Classify(const IoRequest& io, const IoStatus& status, const Path& path) const = 0;
};

// Classifies on the canonical error class alone; for the null path and for devices with no richer status.
// Threading: stateless; safe from any thread.
class NeutralTemplate final : public HeadTemplate {
 public:
  [[nodiscard]] std::string_view protocol() const override { return "null"; }
  [[nodiscard]] Decision Classify(const IoRequest& io, const IoStatus& status, const Path& path) const override;
  static const NeutralTemplate& Instance();
};

}  // namespace mpath
