// `mpath demo` and `mpath scenario run`: a scenario on the simulated SAN with a verified workload, a live view when
// stdout is a terminal, and a summary (table or JSON) at the end.
#pragma once

#include <optional>
#include <string>

namespace mpath::cli {

struct DemoOptions {
  std::optional<double> seconds;  // --seconds N (default: the scenario's own, 30 s for the demo)
  bool json = false;              // --json: the summary as one JSON object on stdout, nothing else
};

struct ScenarioCommandOptions {
  std::string file;               // scenario run FILE
  std::optional<double> seconds;
  bool json = false;
};

// Each returns the process exit code: 0 only when the scenario passed (no data error, no unexpected I/O error, every
// assertion held); 1 when it ran and failed; 2 when it could not run (bad file, fabric did not build).
int RunDemo(const DemoOptions& options);
int RunScenarioCommand(const ScenarioCommandOptions& options);

}  // namespace mpath::cli
