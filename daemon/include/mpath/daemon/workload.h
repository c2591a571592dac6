// A verified workload over heads: every block written carries its head, LBA and generation; every read is checked
// against the last acknowledged write of that block. It runs on the Fabric's I/O loops, measures what a storage
// engineer asks after a fault (I/Os, bytes verified, failovers, the longest pause, errors surfaced) and keeps a
// per-second timeline for reports.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/core/head.h"
#include "mpath/daemon/fabric.h"

namespace mpath::daemon {

struct WorkloadOptions {
  std::size_t slots_per_head = 16;     // I/Os in flight per head; each slot owns its own blocks
  std::uint32_t io_bytes = 4096;       // a multiple of every head's block size
  std::uint64_t blocks_per_slot = 64;  // the working set: slots_per_head * blocks_per_slot blocks of io_bytes
  // The mix, per slot round on one of its blocks: a read that checks what the block held since the last round on it,
  // a write of a new generation, then a read that verifies it; every `flush_every`-th round also flushes and every
  // `trim_every`-th trims the block (after which it must read back zeroes). 0: never.
  std::uint32_t flush_every = 16;
  std::uint32_t trim_every = 0;
};

// One error that reached the workload: an I/O that failed (counted in errors_surfaced), a read that returned
// something else than the block's last acknowledged write (code kMismatch, counted in data_errors), or a head that
// cannot trim (code kUnsupported, counted nowhere: the workload stops trimming that head).
struct SurfacedError {
  Nanos at{0};            // since Start
  std::string head;
  Errc code = Errc::kOk;
  std::string context;
};

struct HeadStats {
  std::string name;
  std::string alias;                 // from a matching [[device]] of the fabric's config, else empty
  std::string identity;
  std::string protocol;
  std::uint64_t ios = 0;             // completed, any outcome
  std::uint64_t verified_bytes = 0;  // read back and found exactly as last written
  std::uint64_t failovers = 0;       // from the head's counters, since Start
  Nanos max_pause{0};                // longest time with I/O outstanding and none completing
  std::uint64_t errors_surfaced = 0;
  std::uint64_t data_errors = 0;     // reads that returned anything but the last acknowledged write (or zeroes)
  std::vector<std::uint64_t> ios_per_second;  // completions in each whole second since Start
};

// Threading: Start, Stop and the destructor from any thread but the I/O loops; Stats and Errors from any thread.
class Workload {
 public:
  // `fabric` must outlive the workload. Heads are spread over the fabric's I/O loops.
  static Result<std::unique_ptr<Workload>> Create(Fabric& fabric, std::vector<std::shared_ptr<Head>> heads,
                                                  WorkloadOptions options = {});
  ~Workload();
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  void Start();
  // Stops issuing and waits until every I/O in flight has completed (or `timeout` passed: then kTimedOut naming the
  // heads still holding I/O).
  Result<void> Stop(Nanos timeout = std::chrono::seconds(60));

  [[nodiscard]] std::vector<HeadStats> Stats() const;
  [[nodiscard]] std::vector<SurfacedError> Errors() const;

 private:
  class Impl;
  explicit Workload(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mpath::daemon
