// Scenario files: a fabric (the config tables of config.h, in the same file), a verified workload, a timeline of steps
// at given times, and assertions, run on the simulated SAN; the demo is one of them. Documented in docs/scenarios.md.
//
//   [scenario]            name, description, duration_secs, [scenario.workload] (WorkloadOptions' keys)
//   [[step]]              at_secs, action = inject | set-policy | fail-path | reinstate-path | pr, note, and the action's
//                         keys: inject: target, fault, args = { key = "value" }; set-policy: head, policy;
//                         fail-path / reinstate-path: path; pr: head, pr_action, key, service_key, type
//   [[assert]]            kind = no-errors-surfaced | no-data-errors | max-pause-ms (head, max) |
//                         path-share-below (path, percent, from_secs, to_secs) | rtpg-count-max (target, max) |
//                         ana-log-reads-max (target, max) | min-ios (head, min) |
//                         path-marginal (path, from_secs, to_secs)
//
// Unknown keys and actions are errors with file, line and column, as in the config file.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mpath/core/error.h"
#include "mpath/daemon/config.h"
#include "mpath/daemon/fabric.h"
#include "mpath/daemon/workload.h"

namespace mpath::daemon {

struct ScenarioStep {
  double at_secs = 0;
  std::string action;                       // inject | set-policy | fail-path | reinstate-path | pr
  std::map<std::string, std::string> args;  // the action's keys, as text (inject's `args` table merged in, prefixed
                                            // by nothing: target and fault are keys here too)
  std::string note;                         // note = "...": what the step means, for the timeline (optional)
  std::string source;                       // "<file>:<line>"
};

struct ScenarioAssertion {
  std::string kind;
  std::map<std::string, std::string> args;
  std::string source;
};

struct Scenario {
  std::string name;
  std::string description;
  double duration_secs = 10;
  WorkloadOptions workload;
  Config fabric;
  std::vector<ScenarioStep> steps;          // ascending at_secs
  std::vector<ScenarioAssertion> assertions;
};

[[nodiscard]] Result<Scenario> ParseScenario(std::string_view text, std::string_view file_name = "<string>");
[[nodiscard]] Result<Scenario> LoadScenario(const std::string& path);
// The demo's scenario (examples/scenarios/demo.toml, built into the binary).
[[nodiscard]] Result<Scenario> DemoScenario();

struct AssertionResult {
  std::string description;  // e.g. "max pause of mpath0 <= 500 ms: 212 ms"
  bool passed = false;
};

struct ScenarioEvent {          // a step as it happened, for the timeline and reports
  Nanos at{0};
  std::string what;             // e.g. "inject array0 alua group=1 state=standby: ..."
  bool ok = true;
};

struct ScenarioResult {
  std::string name;
  Nanos elapsed{0};
  std::vector<HeadStats> heads;
  std::vector<SurfacedError> errors;
  std::vector<ScenarioEvent> events;
  std::vector<AssertionResult> assertions;
  std::uint64_t data_errors = 0;
  std::uint64_t unexpected_errors = 0;  // errors surfaced, and steps that failed
  [[nodiscard]] bool passed() const;    // no data error, no unexpected error, every assertion held
};

struct RunOptions {
  // Overrides duration_secs; step times scale with it (the demo's --seconds).
  std::optional<double> duration_secs;
  FabricOptions fabric;
  // Called about every 250 ms on the runner's thread with the elapsed time and the fabric (for a live display).
  std::function<void(Nanos elapsed, Nanos total, Fabric& fabric, const std::vector<HeadStats>& stats)> on_tick;
  // Called on the runner's thread as each event happens (a step played, a path that did not attach), so that a
  // front end can print the timeline live.
  std::function<void(const ScenarioEvent& event)> on_event;
};

// Builds the fabric, runs the workload for the duration while the steps play at their times, stops and drains it,
// then evaluates the assertions. Fails (as opposed to returning a result that did not pass) only when the scenario
// cannot run at all: the fabric does not build, or no head came up.
[[nodiscard]] Result<ScenarioResult> RunScenario(const Scenario& scenario, const RunOptions& options = {});

}  // namespace mpath::daemon
