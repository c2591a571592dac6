// Where devices enter: the opt-in decision (multipath or direct), grouping of paths into heads by identity, and the
// set of live heads.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mpath/core/executor.h"
#include "mpath/core/head.h"
#include "mpath/core/head_options.h"
#include "mpath/core/path.h"
#include "mpath/core/personality.h"

namespace mpath {

// A device that is not multipathed: I/O goes straight to its driver, with none of the head machinery in between.
// Threading: as its driver (Submit from I/O threads; completion on the submitting thread).
class DirectDevice {
 public:
  DirectDevice(const DeviceInfo& info, std::unique_ptr<PathDriver> driver)
      : name_(info.name), capacity_bytes_(info.capacity_bytes), block_size_(info.block_size),
        driver_(std::move(driver)) {}

  void Submit(IoRequest& io) {
    io.RouteToSubmitter();
    driver_->Submit(io);
  }
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] std::uint64_t capacity_bytes() const { return capacity_bytes_; }
  [[nodiscard]] std::uint32_t block_size() const { return block_size_; }
  [[nodiscard]] PathDriver& driver() const { return *driver_; }

 private:
  const std::string name_;
  const std::uint64_t capacity_bytes_;
  const std::uint32_t block_size_;
  const std::unique_ptr<PathDriver> driver_;
};

struct OptInPolicy {
  MultipathMode mode = MultipathMode::kOn;
  std::vector<std::string> opted_out_transports;  // e.g. {"ufs", "usb"}: never multipathed, whatever the mode
};

struct OptInDecision {
  bool multipath = false;
  std::string reason;  // why, in words an operator understands
};

// The opt-in rule, decided before a device is attached: off takes nothing; on takes devices with an identity that
// report asymmetric access states; always takes any device with an identity; opted-out transports are never taken.
[[nodiscard]] OptInDecision DecideOptIn(const OptInPolicy& policy, const DeviceInfo& info);

struct RegistryOptions {
  OptInPolicy opt_in;
  HeadOptions head;                    // defaults for new heads
  std::string head_name_prefix = "mpath";

  [[nodiscard]] Result<void> Validate() const;
};

// The result of attaching a device: a path of a head, or a direct device.
struct Attachment {
  std::shared_ptr<Head> head;            // set when multipathed
  PathId path = 0;
  std::unique_ptr<DirectDevice> direct;  // set otherwise
  std::string reason;                    // the opt-in decision's reason

  [[nodiscard]] bool multipathed() const { return head != nullptr; }
};

// Threading: every public method is safe from any thread. Heads remove themselves on the control executor.
class Registry {
 public:
  // `control` must outlive the registry and every head it made.
  static Result<std::unique_ptr<Registry>> Create(RegistryOptions options, Executor& control);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Attaches one path of a device. A multipathed device joins the head of its identity, or makes a new head.
  Result<Attachment> Attach(const DeviceInfo& info, const HeadTemplate& personality,
                            std::unique_ptr<PathDriver> driver);
  // Removes a multipathed path by name. The head stays (see HeadOptions::delayed_removal).
  Result<void> Detach(std::string_view path_name);

  [[nodiscard]] std::vector<std::shared_ptr<Head>> Heads() const;
  // By head name or by identity designator.
  [[nodiscard]] std::shared_ptr<Head> FindHead(std::string_view name_or_identity) const;
  [[nodiscard]] const RegistryOptions& options() const { return options_; }

 private:
  Registry(RegistryOptions options, Executor& control);
  void OnHeadRemoved(Head& head);

  // Constant after construction.
  const RegistryOptions options_;
  Executor& control_;
  // Lets head callbacks that outlive the registry see that it is gone.
  const std::shared_ptr<Registry*> self_;

  mutable std::mutex mu_;
  // Guarded by mu_.
  std::vector<std::shared_ptr<Head>> heads_;
  std::unordered_map<std::string, std::shared_ptr<Head>> head_of_path_;  // path name -> head
  std::uint64_t next_head_number_ = 0;
};

}  // namespace mpath
