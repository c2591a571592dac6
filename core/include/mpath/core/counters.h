// I/O counters per head and per path. Each I/O thread writes its own copy (single writer, relaxed atomics that
// compile to plain stores) and the control plane sums the copies when asked, so counting costs no shared cache line.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>

#include "mpath/core/clock.h"

namespace mpath {

// Completion latencies in power-of-two buckets of nanoseconds: bucket b holds samples in [2^(b-1), 2^b).
struct LatencyHistogram {
  static constexpr std::size_t kBuckets = 48;  // up to about 39 hours
  std::array<std::uint64_t, kBuckets> buckets{};

  [[nodiscard]] std::uint64_t count() const;
  // Upper bound of the bucket holding the p-quantile (0 < p <= 1); zero when empty.
  [[nodiscard]] Nanos Quantile(double p) const;
  void Merge(const LatencyHistogram& other);

  static std::size_t BucketOf(Nanos latency) {
    auto ns = static_cast<std::uint64_t>(latency.count() > 0 ? latency.count() : 0);
    std::size_t b = static_cast<std::size_t>(std::bit_width(ns));
    return b < kBuckets ? b : kBuckets - 1;
  }
};

struct IoCounters {
  std::uint64_t ios = 0;               // completed successfully
  std::uint64_t bytes = 0;             // moved by successful reads and writes
  std::uint64_t errors = 0;            // completed with an error (surfaced to the submitter)
  std::uint64_t failovers = 0;         // I/Os moved away from a path after a path error
  std::uint64_t requeues = 0;          // I/Os parked while no path was usable
  std::uint64_t no_path_failures = 0;  // I/Os failed because no path was usable in time
  std::uint64_t retries = 0;           // same-path retries
  LatencyHistogram latency;  // sampled (HeadOptions::latency_sample_interval): its count may be below `ios`

  void Merge(const IoCounters& other);
};

// The single-writer form that an I/O thread updates. Threading: one writer thread; any thread may Read().
class IoCounterCell {
 public:
  void AddIo(std::uint64_t bytes, Nanos latency) {
    AddIo(bytes);
    Bump(latency_[LatencyHistogram::BucketOf(latency)], 1);
  }
  // An I/O whose latency was not sampled.
  void AddIo(std::uint64_t bytes) {
    Bump(ios_, 1);
    Bump(bytes_, bytes);
  }
  void AddError() { Bump(errors_, 1); }
  void AddFailover() { Bump(failovers_, 1); }
  void AddRequeue() { Bump(requeues_, 1); }
  void AddNoPathFailure() { Bump(no_path_failures_, 1); }
  void AddRetry() { Bump(retries_, 1); }

  [[nodiscard]] IoCounters Read() const;

 private:
  // A relaxed load-add-store: no locked instruction, because only one thread ever writes a cell.
  static void Bump(std::atomic<std::uint64_t>& c, std::uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  std::atomic<std::uint64_t> ios_{0}, bytes_{0}, errors_{0}, failovers_{0}, requeues_{0}, no_path_failures_{0},
      retries_{0};
  std::array<std::atomic<std::uint64_t>, LatencyHistogram::kBuckets> latency_{};
};

}  // namespace mpath
