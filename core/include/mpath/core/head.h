// The multipath device: one identity, one geometry, several paths, an iopolicy, and the rules for what happens to
// I/O when no path is usable. This file is its control plane; the per-thread data plane is HeadChannel.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mpath/core/counters.h"
#include "mpath/core/executor.h"
#include "mpath/core/head_options.h"
#include "mpath/core/path.h"
#include "mpath/core/personality.h"
#include "mpath/core/types.h"

namespace mpath {

class HeadChannel;

enum class HeadState : std::uint8_t {
  kLive,      // some path is usable
  kQueueing,  // no usable path; I/O waits for one (a path may come back, or the delayed-removal window is open)
  kFailing,   // no usable path and none expected: I/O fails at once
  kRemoved,   // gone; every I/O fails
};
std::string_view Name(HeadState state);

// A path as listings show it.
struct PathInfo {
  PathId id = 0;
  std::string name;
  std::string transport;
  PathState state = PathState::kLive;
  AccessState access = AccessState::kOptimized;
  bool preferred = false;
  MarginalReason marginal = MarginalReason::kNone;
  bool usable = false;
  int locality = kUnknownLocality;
  IoCounters counters;
};

// What a head's channels act on: rebuilt under the head's lock whenever anything that routing depends on changes.
struct HeadSnapshot {
  struct Entry {
    std::shared_ptr<Path> path;
    bool usable = false;
    std::uint8_t tier = 0;  // 0 optimized, 1 non-optimized, +2 when marginal; lower wins
  };
  std::uint64_t generation = 0;
  HeadOptions options;  // carries the iopolicy and the retry bounds the channels apply
  std::vector<Entry> paths;
  bool queue_when_no_path = false;  // otherwise fail with `no_path_status`
  IoStatus no_path_status;
  IoLimits limits;
};

// Threading: every public method is safe from any thread (serialised by an internal mutex). Timers run on the control
// executor given at creation. Heads are shared: the registry and every open channel hold one.
class Head : public std::enable_shared_from_this<Head> {
 public:
  struct Config {
    std::string name;
    DeviceIdentity identity;
    std::uint64_t capacity_bytes = 0;
    std::uint32_t block_size = 512;
    HeadOptions options;
  };
  // Called on the control executor once the head has removed itself (delayed removal expired with no path left).
  using RemovedCallback = std::function<void(Head&)>;

  // `personality` and `control` must outlive the head.
  static Result<std::shared_ptr<Head>> Create(Config config, const HeadTemplate& personality, Executor& control,
                                              RemovedCallback on_removed = {});
  ~Head();
  Head(const Head&) = delete;
  Head& operator=(const Head&) = delete;

  [[nodiscard]] const std::string& name() const { return config_.name; }
  [[nodiscard]] const DeviceIdentity& identity() const { return config_.identity; }
  [[nodiscard]] std::uint64_t capacity_bytes() const { return config_.capacity_bytes; }
  [[nodiscard]] std::uint32_t block_size() const { return config_.block_size; }
  [[nodiscard]] const HeadTemplate& personality() const { return personality_; }
  [[nodiscard]] HeadState state() const;
  [[nodiscard]] IoPolicyKind policy() const;
  [[nodiscard]] HeadOptions options() const;
  // The largest read or write, and the largest write-zeroes or discard, one request may ask for. Submitters that take
  // larger requests (the NBD export) split them. Limits only tighten as paths are added, never loosen.
  [[nodiscard]] IoLimits limits() const;

  // Adds a path. Refused, with the reason, when the name is taken, the geometry or identity disagrees with the head,
  // the driver's context does not fit, the head is removed, or it already has kMaxPaths paths.
  Result<PathId> AddPath(const DeviceInfo& info, std::unique_ptr<PathDriver> driver);
  // Takes a path out of service. Its in-flight I/O still completes through it (and fails over if it fails).
  Result<void> RemovePath(PathId id);
  Result<void> SetPathState(PathId id, PathState state);
  Result<void> SetAccessState(PathId id, AccessState access, bool preferred = false);
  // Switches the iopolicy of a live head; I/O in flight is unaffected, the next I/O on every thread uses the new one.
  void SetIoPolicy(IoPolicyKind policy);
  Result<void> SetDelayedRemoval(Nanos window);
  // Asks the personality's predicates again (after the personality's own view of a path changed).
  void Reevaluate();
  // Ends a path's marginal state at once (operator override).
  Result<void> ClearMarginal(PathId id);

  // Opens the data plane for the thread that runs `executor`. `locality` is that thread's NUMA node.
  std::shared_ptr<HeadChannel> OpenChannel(Executor& executor, int locality = kUnknownLocality);

  [[nodiscard]] std::vector<PathInfo> Paths() const;
  [[nodiscard]] std::shared_ptr<Path> FindPath(PathId id) const;
  [[nodiscard]] std::shared_ptr<Path> FindPath(std::string_view name) const;
  [[nodiscard]] std::size_t path_count() const;
  // Sum of every channel's head-level counters.
  [[nodiscard]] IoCounters Counters() const;

  static constexpr std::size_t kMaxPaths = 64;  // one bit per path in a request's exclusion mask

 private:
  friend class HeadChannel;

  Head(Config config, const HeadTemplate& personality, Executor& control, RemovedCallback on_removed);

  // Channel-facing: the current generation (one acquire load per I/O) and a copy of the snapshot.
  [[nodiscard]] std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  [[nodiscard]] HeadSnapshot CopySnapshot() const;
  // A channel saw too many path errors, or too high a latency, on `path`.
  void ReportMarginal(const std::shared_ptr<Path>& path, MarginalReason reason);
  std::shared_ptr<IoCounterCell> NewCounterCell();

  // Rebuilds the snapshot and no-path state from the paths, arms or cancels the timers, and kicks every channel.
  // Returns true when the head has just removed itself; the caller then calls AnnounceRemoval() without mu_.
  // REQUIRES: mu_ held.
  [[nodiscard]] bool PublishLocked();
  void AnnounceRemoval();
  void ForgetChannel(const HeadChannel* channel);
  std::shared_ptr<Path> FindPathLocked(PathId id) const;
  void OnNoPathWindowExpired(std::uint64_t window_serial);
  void ScheduleProbesLocked();
  void RunProbes();
  void OnProbeDone(const std::shared_ptr<Path>& path, IoStatus status, Nanos latency);

  // Constant after construction.
  const Config config_;
  const HeadTemplate& personality_;
  Executor& control_;
  const RemovedCallback on_removed_;

  std::atomic<std::uint64_t> generation_{1};

  mutable std::mutex mu_;
  // Guarded by mu_.
  HeadOptions options_;
  IoLimits limits_;
  std::vector<std::shared_ptr<Path>> paths_;
  PathId next_path_id_ = 1;
  HeadSnapshot snapshot_;
  HeadState state_ = HeadState::kQueueing;
  bool removed_ = false;
  bool had_path_ = false;
  bool window_open_ = false;           // the delayed-removal window of the current no-path episode is running
  bool window_expired_ = false;        // ...and has run out
  std::uint64_t window_serial_ = 0;    // identifies the episode a window timer belongs to
  TimerId window_timer_ = 0;
  TimerId probe_timer_ = 0;
  struct ChannelRef {
    const HeadChannel* channel;
    std::weak_ptr<HeadChannel> weak;
    Executor* executor;  // valid while the channel is registered: a channel's executor outlives it
  };
  std::vector<ChannelRef> channels_;
  std::vector<std::shared_ptr<IoCounterCell>> head_cells_;
  struct ProbeState;
  std::vector<std::shared_ptr<ProbeState>> probes_;
};

}  // namespace mpath
