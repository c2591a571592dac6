// `mpath demo`: the core demo. Until the simulated SAN lands it runs over RAM-backed paths (ram_path.h), with a
// verified read/write workload on every head while a fault timeline plays underneath.
#pragma once

#include <chrono>

namespace mpath::cli {

struct DemoOptions {
  double seconds = 12;
  bool json = false;
};

// Runs the demo; returns the process exit code (0 only when no data error and no unexpected I/O error occurred).
int RunDemo(const DemoOptions& options);

}  // namespace mpath::cli
