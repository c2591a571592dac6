#include "mpath/core/counters.h"

#include <cmath>

namespace mpath {

std::uint64_t LatencyHistogram::count() const {
  std::uint64_t n = 0;
  for (auto b : buckets) n += b;
  return n;
}

Nanos LatencyHistogram::Quantile(double p) const {
  std::uint64_t total = count();
  if (total == 0) return Nanos(0);
  // The epsilon keeps a decimal quantile such as 0.07 from landing one rank high through binary rounding.
  auto rank = static_cast<std::uint64_t>(std::ceil(p * static_cast<double>(total) - 1e-9));
  if (rank == 0) rank = 1;
  std::uint64_t seen = 0;
  for (std::size_t b = 0; b < kBuckets; ++b) {
    seen += buckets[b];
    if (seen >= rank) return Nanos(b == 0 ? 0 : (std::int64_t{1} << b) - 1);
  }
  return Nanos(std::int64_t{1} << (kBuckets - 1));
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (std::size_t b = 0; b < kBuckets; ++b) buckets[b] += other.buckets[b];
}

void IoCounters::Merge(const IoCounters& other) {
  ios += other.ios;
  bytes += other.bytes;
  errors += other.errors;
  failovers += other.failovers;
  requeues += other.requeues;
  no_path_failures += other.no_path_failures;
  retries += other.retries;
  latency.Merge(other.latency);
}

IoCounters IoCounterCell::Read() const {
  IoCounters c;
  c.ios = ios_.load(std::memory_order_relaxed);
  c.bytes = bytes_.load(std::memory_order_relaxed);
  c.errors = errors_.load(std::memory_order_relaxed);
  c.failovers = failovers_.load(std::memory_order_relaxed);
  c.requeues = requeues_.load(std::memory_order_relaxed);
  c.no_path_failures = no_path_failures_.load(std::memory_order_relaxed);
  c.retries = retries_.load(std::memory_order_relaxed);
  for (std::size_t b = 0; b < LatencyHistogram::kBuckets; ++b) {
    c.latency.buckets[b] = latency_[b].load(std::memory_order_relaxed);
  }
  return c;
}

}  // namespace mpath
