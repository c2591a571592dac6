// A path to a RAM-backed device, for the core demo: every path of one device shares the same bytes, completes after
// a set latency on its I/O thread's executor, and can be told to fail (a dead link, or a port that reports ready
// but fails every I/O). A write that fails is not applied, as on a link that dropped the command.
// The simulated SAN (issue 3) replaces this with real SCSI and NVMe targets.
#pragma once

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "mpath/core/path_driver.h"

namespace mpath::cli {

// The device's bytes. Threading: reads and writes of distinct blocks may run on any threads; the demo never issues
// overlapping I/O concurrently, and the mutex keeps even that safe.
class RamDisk {
 public:
  explicit RamDisk(std::size_t bytes) : bytes_(bytes) {}
  void Read(std::uint64_t offset, std::byte* out, std::size_t length) {
    std::lock_guard lock(mu_);
    std::memcpy(out, bytes_.data() + offset, length);
  }
  void Write(std::uint64_t offset, const std::byte* in, std::size_t length) {
    std::lock_guard lock(mu_);
    std::memcpy(bytes_.data() + offset, in, length);
  }
  void Zero(std::uint64_t offset, std::size_t length) {
    std::lock_guard lock(mu_);
    std::memset(bytes_.data() + offset, 0, length);
  }
  [[nodiscard]] std::size_t size() const { return bytes_.size(); }

 private:
  std::mutex mu_;
  std::vector<std::byte> bytes_;
};

// Threading: Submit on the thread of `executor` (the head's I/O thread); faults may be set from any thread.
class RamPath final : public PathDriver {
 public:
  RamPath(std::shared_ptr<RamDisk> disk, Executor& executor, Nanos latency)
      : disk_(std::move(disk)), executor_(executor), latency_(latency) {}

  void Submit(IoRequest& io) override {
    executor_.ScheduleAfter(latency_, [this, &io] { Finish(io); });
  }
  void FailEverything(bool fail) { failing_.store(fail, std::memory_order_release); }

 private:
  void Finish(IoRequest& io) {
    if (failing_.load(std::memory_order_acquire)) {
      io.Complete(IoStatus::Of(Errc::kPathError, "demo: the link dropped the command"));
      return;
    }
    switch (io.op) {
      case IoOp::kRead: disk_->Read(io.offset, io.data, io.length); break;
      case IoOp::kWrite: disk_->Write(io.offset, io.data, io.length); break;
      case IoOp::kWriteZeroes:
      case IoOp::kDiscard: disk_->Zero(io.offset, io.length); break;
      default: break;
    }
    io.Complete(IoStatus::Ok());
  }

  const std::shared_ptr<RamDisk> disk_;
  Executor& executor_;
  const Nanos latency_;
  std::atomic<bool> failing_{false};
};

}  // namespace mpath::cli
