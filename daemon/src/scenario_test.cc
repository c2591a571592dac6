// Scenario files: the strict parser (every mistake named with file, line and column), every shipped scenario, and
// runs on the simulated SAN in which every assertion kind is seen to hold and to fail.
#include "mpath/daemon/scenario.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

namespace mpath::daemon {
namespace {

using namespace std::chrono_literals;

// A small fabric: one LU behind two port groups of one port each, one namespace behind two ports.
constexpr std::string_view kFabric = R"(
[defaults]
iopolicy = "round-robin"
delayed_removal_secs = 5

[[device]]
match = "naa.600140500000000000000000000000a1"
alias = "lu1"

[[device]]
match = "nguid.6d7061740000000000000000000000b1*"
alias = "ns1"

[sim]
seed = 7

[[sim.scsi_array]]
name = "array0"
transition_secs = 2
  [[sim.scsi_array.port_group]]
  id = 1
  state = "active/optimized"
  ports = [1]
  [[sim.scsi_array.port_group]]
  id = 2
  state = "active/non-optimized"
  ports = [2]
  [[sim.scsi_array.lu]]
  lun = 0
  size_mib = 16
  naa = "600140500000000000000000000000a1"

[[sim.nvme_subsystem]]
name = "subsys0"
ports = [1, 2]
  [[sim.nvme_subsystem.namespace]]
  nsid = 1
  size_mib = 16
  nguid = "6d7061740000000000000000000000b1"

[[sim.path]]
name = "a0p1"
target = "array0"
port = 1

[[sim.path]]
name = "a0p2"
target = "array0"
port = 2

[[sim.path]]
name = "s0c1"
target = "subsys0"
port = 1

[[sim.path]]
name = "s0c2"
target = "subsys0"
port = 2
)";

std::string WithFabric(std::string_view scenario) { return std::string(kFabric) + std::string(scenario); }

// The error of parsing `scenario` (after the fabric) as "test.toml"; empty when it parsed.
std::string ParseError(std::string_view scenario) {
  auto parsed = ParseScenario(WithFabric(scenario), "test.toml");
  return parsed ? std::string() : parsed.error().message();
}

// The line of `needle` in the text ParseError parses, so that expected positions do not depend on the fabric's length.
int LineOf(std::string_view scenario, std::string_view needle) {
  const std::string text = WithFabric(scenario);
  const auto at = text.find(needle);
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
}

TEST(ScenarioParse, ReadsTheHeaderWorkloadStepsAndAssertions) {
  const std::string body = R"(
[scenario]
name = "swap"
description = "an ALUA swap"
duration_secs = 8
[scenario.workload]
slots_per_head = 4
io_bytes = 8192
blocks_per_slot = 16
flush_every = 3
trim_every = 5

[[step]]
at_secs = 6
action = "set-policy"
head = "lu1"
policy = "qd"

[[step]]
at_secs = 2.5
action = "inject"
target = "array0"
fault = "alua"
args = { group = 1, state = "standby", transition_ms = 500 }
note = "group 1 goes away"

[[assert]]
kind = "path-share-below"
path = "a0p1"
percent = 5
from_secs = 4
to_secs = 7.5

[[assert]]
kind = "no-errors-surfaced"
)";
  auto scenario = ParseScenario(WithFabric(body), "swap.toml");
  ASSERT_TRUE(scenario) << scenario.error().ToString();
  EXPECT_EQ(scenario->name, "swap");
  EXPECT_EQ(scenario->description, "an ALUA swap");
  EXPECT_EQ(scenario->duration_secs, 8);
  EXPECT_EQ(scenario->workload.slots_per_head, 4u);
  EXPECT_EQ(scenario->workload.io_bytes, 8192u);
  EXPECT_EQ(scenario->workload.blocks_per_slot, 16u);
  EXPECT_EQ(scenario->workload.flush_every, 3u);
  EXPECT_EQ(scenario->workload.trim_every, 5u);
  EXPECT_EQ(scenario->fabric.sim.paths.size(), 4u);

  ASSERT_EQ(scenario->steps.size(), 2u);
  // Played in time order, whatever the file's order.
  const ScenarioStep& inject = scenario->steps[0];
  EXPECT_EQ(inject.at_secs, 2.5);
  EXPECT_EQ(inject.action, "inject");
  EXPECT_EQ(inject.note, "group 1 goes away");
  const std::map<std::string, std::string> want = {
      {"target", "array0"}, {"fault", "alua"}, {"group", "1"}, {"state", "standby"}, {"transition_ms", "500"}};
  EXPECT_EQ(inject.args, want);
  EXPECT_EQ(inject.source, fmt::format("swap.toml:{}", LineOf(body, "[[step]]\nat_secs = 2.5")));
  EXPECT_EQ(scenario->steps[1].action, "set-policy");
  EXPECT_EQ(scenario->steps[1].args.at("policy"), "qd");

  ASSERT_EQ(scenario->assertions.size(), 2u);
  EXPECT_EQ(scenario->assertions[0].kind, "path-share-below");
  EXPECT_EQ(scenario->assertions[0].args.at("percent"), "5");
  EXPECT_EQ(scenario->assertions[0].args.at("to_secs"), "7.5");
  EXPECT_EQ(scenario->assertions[1].kind, "no-errors-surfaced");
  EXPECT_TRUE(scenario->assertions[1].args.empty());
}

TEST(ScenarioParse, NameDefaultsToTheFileName) {
  auto scenario = ParseScenario(WithFabric(""), "dir/my-run.toml");
  ASSERT_TRUE(scenario) << scenario.error().ToString();
  EXPECT_EQ(scenario->name, "my-run");
  EXPECT_EQ(scenario->duration_secs, 10);
}

TEST(ScenarioParse, SyntaxErrorsNameFileLineAndColumn) {
  const std::string error = ParseError("\n[scenario]\nname = \"x\n");
  EXPECT_TRUE(error.starts_with(fmt::format("test.toml:{}:", LineOf("\n[scenario]\nname = \"x\n", "name = \"x"))))
      << error;
}

TEST(ScenarioParse, UnknownKeysAreRefusedWhereTheyAre) {
  const std::string text = "\n[scenario]\nname = \"x\"\nduraton_secs = 3\n";
  EXPECT_EQ(ParseError(text),
            fmt::format("test.toml:{}:1: unknown key 'duraton_secs' in [scenario]; allowed keys: name, description, "
                        "duration_secs, workload",
                        LineOf(text, "duraton_secs")));

  const std::string workload = "\n[scenario.workload]\nslots = 3\n";
  EXPECT_EQ(ParseError(workload).substr(0, ParseError(workload).find(';')),
            fmt::format("test.toml:{}:1: unknown key 'slots' in [scenario.workload]", LineOf(workload, "slots =")));

  // A key of another action is unknown to this one.
  const std::string step = "\n[[step]]\nat_secs = 1\naction = \"set-policy\"\nhead = \"lu1\"\npolicy = \"numa\"\n"
                           "path = \"a0p1\"\n";
  EXPECT_EQ(ParseError(step).substr(0, ParseError(step).find(';')),
            fmt::format("test.toml:{}:1: unknown key 'path' in action 'set-policy'", LineOf(step, "path =")));

  const std::string assertion = "\n[[assert]]\nkind = \"min-ios\"\nmin = 1\nmax = 2\n";
  EXPECT_EQ(ParseError(assertion).substr(0, ParseError(assertion).find(';')),
            fmt::format("test.toml:{}:1: unknown key 'max' in assertion 'min-ios'", LineOf(assertion, "max =")));

  // Unknown top-level tables are the config reader's to refuse.
  const std::string top = "\n[scenarios]\nname = \"x\"\n";
  EXPECT_NE(ParseError(top).find(fmt::format("test.toml:{}:", LineOf(top, "[scenarios]"))), std::string::npos)
      << ParseError(top);
  EXPECT_NE(ParseError(top).find("unknown key 'scenarios'"), std::string::npos) << ParseError(top);
}

TEST(ScenarioParse, UnknownActionsAndAssertionKindsAreRefused) {
  const std::string step = "\n[[step]]\nat_secs = 1\naction = \"explode\"\n";
  EXPECT_EQ(ParseError(step), fmt::format("test.toml:{}:10: step[0].action: unknown action 'explode'; expected one "
                                          "of: inject, set-policy, fail-path, reinstate-path, pr",
                                          LineOf(step, "action =")));
  const std::string assertion = "\n[[assert]]\nkind = \"fast\"\n";
  EXPECT_TRUE(ParseError(assertion).starts_with(
      fmt::format("test.toml:{}:8: assert[0].kind: unknown assertion kind 'fast'", LineOf(assertion, "kind ="))))
      << ParseError(assertion);
}

TEST(ScenarioParse, MissingKeysWrongTypesAndImpossibleValuesAreRefused) {
  struct Case {
    std::string text;
    std::string needle;  // where the error points
    std::string message;
  };
  const std::vector<Case> cases = {
      {"\n[[step]]\naction = \"fail-path\"\npath = \"a0p1\"\n", "[[step]]", "step[0]: missing key 'at_secs'"},
      {"\n[[step]]\nat_secs = 1\npath = \"a0p1\"\n", "[[step]]", "step[0]: missing key 'action'"},
      {"\n[[step]]\nat_secs = 1\naction = \"inject\"\ntarget = \"a0p1\"\n", "[[step]]",
       "step[0]: action 'inject' needs key 'fault'"},
      {"\n[[step]]\nat_secs = \"soon\"\naction = \"fail-path\"\npath = \"a0p1\"\n", "at_secs",
       "step[0].at_secs: expected a number, got a string"},
      {"\n[scenario]\nduration_secs = 4\n[[step]]\nat_secs = 5\naction = \"fail-path\"\npath = \"a0p1\"\n",
       "at_secs", "step[0].at_secs: must be within the scenario's duration, 0 to 4 s (got 5)"},
      {"\n[scenario]\nduration_secs = 0\n", "duration_secs", "scenario.duration_secs: must be more than 0"},
      {"\n[scenario.workload]\nio_bytes = 1000\n", "io_bytes", "scenario.workload.io_bytes: must be a multiple of 512"},
      {"\n[scenario.workload]\nslots_per_head = 0\n", "slots_per_head",
       "scenario.workload.slots_per_head: must be between 1 and 4096 (got 0)"},
      {"\n[[step]]\nat_secs = 1\naction = \"inject\"\ntarget = \"array9\"\nfault = \"alua\"\n", "target = \"array9\"",
       "step[0].target: no path, array or subsystem of the fabric is named 'array9'"},
      {"\n[[step]]\nat_secs = 1\naction = \"inject\"\ntarget = \"subsys0\"\nfault = \"alua\"\n", "fault =",
       "step[0].fault: unknown fault 'alua' for subsystem 'subsys0'"},
      {"\n[[step]]\nat_secs = 1\naction = \"inject\"\ntarget = \"a0p1\"\nfault = \"hang\"\nargs = 3\n", "args =",
       "step[0].args: expected a table"},
      {"\n[[step]]\nat_secs = 1\naction = \"inject\"\ntarget = \"a0p1\"\nfault = \"latency\"\n"
       "args = { target = \"x\" }\n",
       "args =", "step[0].args.target: 'target' is a key of the step itself"},
      {"\n[[step]]\nat_secs = 1\naction = \"set-policy\"\nhead = \"lu1\"\npolicy = \"fastest\"\n", "policy = \"fastest\"",
       "step[0].policy: "},
      {"\n[[step]]\nat_secs = 1\naction = \"pr\"\nhead = \"lu1\"\npr_action = \"steal\"\n", "pr_action =",
       "step[0].pr_action: unknown 'steal'"},
      {"\n[[step]]\nat_secs = 1\naction = \"pr\"\nhead = \"lu1\"\npr_action = \"register\"\nkey = \"0xZZ\"\n",
       "key =", "step[0].key: '0xZZ' is not a 64-bit key"},
      {"\n[[assert]]\nkind = \"max-pause-ms\"\n", "[[assert]]", "assert[0]: assertion 'max-pause-ms' needs key 'max'"},
      {"\n[[assert]]\nkind = \"max-pause-ms\"\nmax = 0\n", "max =", "assert[0].max: must be more than 0 ms"},
      {"\n[[assert]]\nkind = \"min-ios\"\nmin = -1\n", "min =", "assert[0].min: must not be negative"},
      {"\n[[assert]]\nkind = \"path-share-below\"\npath = \"a0p1\"\npercent = 150\nfrom_secs = 1\nto_secs = 2\n",
       "percent =", "assert[0].percent: must be more than 0 and at most 100"},
      {"\n[[assert]]\nkind = \"path-marginal\"\npath = \"a0p1\"\nfrom_secs = 3\nto_secs = 2\n", "to_secs =",
       "assert[0].to_secs: must be after from_secs"},
      {"\n[[assert]]\nkind = \"rtpg-count-max\"\ntarget = \"subsys0\"\nmax = 3\n", "target = \"subsys0\"\nmax",
       "assert[0].target: the fabric has no SCSI array named 'subsys0'"},
      {"\n[[assert]]\nkind = \"ana-log-reads-max\"\ntarget = \"array0\"\nmax = 3\n", "target = \"array0\"\nmax",
       "assert[0].target: the fabric has no NVMe subsystem named 'array0'"},
      {"\n[[assert]]\nkind = \"no-errors-surfaced\"\nhead = 3\n", "head =",
       "assert[0].head: expected a string, got an integer"},
      {"\n[step]\nat_secs = 1\n", "[step]", "step: expected an array of tables ([[step]]), got a table"},
  };
  for (const Case& c : cases) {
    const std::string error = ParseError(c.text);
    const std::string where = fmt::format("test.toml:{}:", LineOf(c.text, c.needle));
    EXPECT_TRUE(error.starts_with(where)) << c.text << "\n-> " << error << "\nexpected at " << where;
    EXPECT_NE(error.find(c.message), std::string::npos) << c.text << "\n-> " << error << "\nexpected " << c.message;
  }
}

TEST(ScenarioParse, LoadNamesTheFileItCannotRead) {
  auto missing = LoadScenario("/nonexistent/run.toml");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), Errc::kNotFound);
  EXPECT_NE(missing.error().message().find("/nonexistent/run.toml"), std::string::npos);
  auto directory = LoadScenario("/");
  ASSERT_FALSE(directory);
  EXPECT_NE(directory.error().message().find("Is a directory"), std::string::npos) << directory.error().message();
}

std::filesystem::path ShippedScenarios() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "examples" / "scenarios";
}

TEST(ScenarioParse, EveryShippedScenarioParsesAndFitsItsTimeBudget) {
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(ShippedScenarios())) {
    if (entry.path().extension() != ".toml") continue;
    ++files;
    auto scenario = LoadScenario(entry.path().string());
    ASSERT_TRUE(scenario) << scenario.error().ToString();
    EXPECT_FALSE(scenario->assertions.empty()) << entry.path();
    EXPECT_FALSE(scenario->description.empty()) << entry.path();
    if (entry.path().filename() != "demo.toml") {
      EXPECT_LE(scenario->duration_secs, 10) << entry.path();
    }
  }
  EXPECT_GE(files, 4u);
}

TEST(ScenarioParse, TheDemoIsBuiltInAndPlaysTheWholeTimeline) {
  auto demo = DemoScenario();
  ASSERT_TRUE(demo) << demo.error().ToString();
  EXPECT_EQ(demo->duration_secs, 30);
  EXPECT_EQ(demo->fabric.sim.scsi_arrays.size(), 1u);
  ASSERT_EQ(demo->fabric.sim.nvme_subsystems.size(), 1u);
  EXPECT_EQ(demo->fabric.sim.scsi_arrays[0].lus.size(), 4u);
  EXPECT_EQ(demo->fabric.sim.scsi_arrays[0].port_groups.size(), 2u);
  EXPECT_EQ(demo->fabric.sim.nvme_subsystems[0].namespaces.size(), 2u);
  // The same text as the shipped file.
  std::ifstream file(ShippedScenarios() / "demo.toml");
  std::stringstream text;
  text << file.rdbuf();
  auto shipped = ParseScenario(text.str(), "examples/scenarios/demo.toml");
  ASSERT_TRUE(shipped) << shipped.error().ToString();
  EXPECT_EQ(shipped->steps.size(), demo->steps.size());

  std::set<std::string> faults, actions, kinds;
  for (const ScenarioStep& step : demo->steps) {
    actions.insert(step.action);
    if (step.action == "inject") faults.insert(step.args.at("fault"));
  }
  for (const ScenarioAssertion& a : demo->assertions) kinds.insert(a.kind);
  for (const char* fault : {"alua", "link-down", "link-up", "fail-io", "heal", "ana"}) {
    EXPECT_TRUE(faults.contains(fault)) << fault;
  }
  EXPECT_TRUE(actions.contains("set-policy"));
  for (const char* kind : {"no-errors-surfaced", "no-data-errors", "max-pause-ms", "path-marginal"}) {
    EXPECT_TRUE(kinds.contains(kind)) << kind;
  }
}

// --- Runs.

// Two more namespaces for the runs: ns2 fails I/O at once when it has no path; ns3 is about to be remapped.
constexpr std::string_view kRunExtras = R"(
[[device]]
match = "nguid.6d7061740000000000000000000000b2*"
alias = "ns2"
queue_if_no_path = false

[[device]]
match = "nguid.6d7061740000000000000000000000b3*"
alias = "ns3"
delayed_removal_secs = 0.2

[[sim.nvme_subsystem.namespace]]
nsid = 2
size_mib = 16
nguid = "6d7061740000000000000000000000b2"

[[sim.nvme_subsystem.namespace]]
nsid = 3
size_mib = 16
nguid = "6d7061740000000000000000000000b3"
)";

// The fabric text ends inside [[sim.path]]; tables added after it need the subsystem's namespaces to come first, so
// the run fabric is assembled with them in place.
std::string RunFabric() {
  std::string text(kFabric);
  const std::string devices = std::string(kRunExtras.substr(0, kRunExtras.find("[[sim.nvme_subsystem.namespace]]")));
  const std::string namespaces = std::string(kRunExtras.substr(kRunExtras.find("[[sim.nvme_subsystem.namespace]]")));
  text.insert(text.find("[sim]"), devices);
  text.insert(text.find("[[sim.path]]"), namespaces);
  return text;
}

TEST(ScenarioRun, PlaysTheTimelineScaledToTheRequestedDurationAndPasses) {
  auto scenario = ParseScenario(RunFabric() + R"(
[scenario]
name = "short"
duration_secs = 4
[scenario.workload]
slots_per_head = 4
blocks_per_slot = 16

[[step]]
at_secs = 1
action = "inject"
target = "a0p1"
fault = "link-down"
[[step]]
at_secs = 2
action = "inject"
target = "a0p1"
fault = "link-up"
[[step]]
at_secs = 3
action = "set-policy"
head = "ns1"
policy = "queue-depth"
note = "a policy change"

[[assert]]
kind = "no-errors-surfaced"
[[assert]]
kind = "no-data-errors"
[[assert]]
kind = "min-ios"
head = "lu1"
min = 1000
)",
                                "short.toml");
  ASSERT_TRUE(scenario) << scenario.error().ToString();
  std::vector<ScenarioEvent> live_events;
  std::size_t ticks = 0;
  Nanos last_tick{0};
  RunOptions options;
  options.duration_secs = 2;  // half the file's duration: steps at 0.5, 1 and 1.5 s
  options.on_tick = [&](Nanos elapsed, Nanos total, Fabric& fabric, const std::vector<HeadStats>& stats) {
    ++ticks;
    EXPECT_EQ(total, 2s);
    EXPECT_GE(elapsed, last_tick);
    last_tick = elapsed;
    EXPECT_EQ(stats.size(), 4u);
    EXPECT_EQ(fabric.Heads().size(), 4u);
  };
  options.on_event = [&](const ScenarioEvent& event) { live_events.push_back(event); };
  auto result = RunScenario(*scenario, options);
  ASSERT_TRUE(result) << result.error().ToString();

  EXPECT_EQ(result->name, "short");
  EXPECT_TRUE(result->passed());
  EXPECT_EQ(result->data_errors, 0u);
  EXPECT_EQ(result->unexpected_errors, 0u);
  EXPECT_GE(result->elapsed, 2s);
  EXPECT_LT(result->elapsed, 4s);
  EXPECT_GE(ticks, 6u);  // about every 250 ms over 2 s, and once at the end
  ASSERT_EQ(result->events.size(), 3u);
  ASSERT_EQ(live_events.size(), 3u);
  const double expected_at[] = {0.5, 1.0, 1.5};
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(result->events[i].ok) << result->events[i].what;
    EXPECT_EQ(live_events[i].what, result->events[i].what);
    EXPECT_GE(result->events[i].at, std::chrono::duration<double>(expected_at[i]));
    EXPECT_LT(result->events[i].at, std::chrono::duration<double>(expected_at[i] + 0.5));
  }
  EXPECT_EQ(result->events[0].what, "inject a0p1 link-down");
  EXPECT_EQ(result->events[2].what, "set-policy ns1 queue-depth (a policy change)");
  ASSERT_EQ(result->heads.size(), 4u);
  for (const HeadStats& head : result->heads) {
    EXPECT_GT(head.verified_bytes, 0u) << head.name;
    EXPECT_FALSE(head.alias.empty()) << head.name;
  }
  ASSERT_EQ(result->assertions.size(), 3u);
  for (const AssertionResult& a : result->assertions) EXPECT_TRUE(a.passed) << a.description;
  // min-ios scales with the run: 1000 for 4 s is 500 for 2 s.
  EXPECT_TRUE(result->assertions[2].description.starts_with("at least 500 I/Os on lu1")) << result->assertions[2].description;
}

TEST(ScenarioRun, EveryAssertionKindIsSeenToHoldAndToFail) {
  auto scenario = ParseScenario(RunFabric() + R"(
[scenario]
name = "both-ways"
duration_secs = 3
[scenario.workload]
slots_per_head = 4
blocks_per_slot = 16

# The remap below is noticed by the host only through admin commands: with 5 ms links, reads run on the new
# volume for a while before the path leaves its head.
[[step]]
at_secs = 0.2
action = "inject"
target = "s0c1"
fault = "latency"
args = { ms = 5 }
[[step]]
at_secs = 0.2
action = "inject"
target = "s0c2"
fault = "latency"
args = { ms = 5 }
[[step]]
at_secs = 0.5
action = "inject"
target = "array0"
fault = "alua"
args = { group = 2, state = "active/optimized" }
[[step]]
at_secs = 0.5
action = "inject"
target = "s0c1"
fault = "fail-io"
[[step]]
at_secs = 1.0
action = "inject"
target = "subsys0"
fault = "ana"
args = { port = 2, group = 1, state = "non-optimized" }
[[step]]
at_secs = 1.2
action = "fail-path"
path = "s0c1n2"
[[step]]
at_secs = 1.2
action = "fail-path"
path = "s0c2n2"
[[step]]
at_secs = 1.2
action = "inject"
target = "subsys0"
fault = "remap"
args = { nsid = 3, nguid = "6d7061740000000000000000000000c3" }
[[step]]
at_secs = 1.6
action = "reinstate-path"
path = "s0c1n2"
[[step]]
at_secs = 1.6
action = "reinstate-path"
path = "s0c2n2"
[[step]]
at_secs = 2.0
action = "inject"
target = "a0p1"
fault = "latency"
args = { ms = 300 }
[[step]]
at_secs = 2.0
action = "inject"
target = "a0p2"
fault = "latency"
args = { ms = 300 }
[[step]]
at_secs = 2.0
action = "inject"
target = "s0c1"
fault = "heal"
[[step]]
at_secs = 2.5
action = "inject"
target = "a0p1"
fault = "clear"
[[step]]
at_secs = 2.5
action = "inject"
target = "a0p2"
fault = "clear"

[[assert]]
kind = "no-errors-surfaced"
head = "lu1"
[[assert]]
kind = "no-errors-surfaced"
head = "ns2"
[[assert]]
kind = "no-errors-surfaced"
[[assert]]
kind = "no-errors-surfaced"
head = "nosuch"
[[assert]]
kind = "no-data-errors"
head = "lu1"
[[assert]]
kind = "no-data-errors"
head = "ns3"
[[assert]]
kind = "max-pause-ms"
head = "ns1"
max = 1000
[[assert]]
kind = "max-pause-ms"
head = "lu1"
max = 200
[[assert]]
kind = "path-share-below"
path = "a0p2:lun0"
percent = 5
from_secs = 0.1
to_secs = 0.45
[[assert]]
kind = "path-share-below"
path = "a0p1:lun0"
percent = 5
from_secs = 0.1
to_secs = 0.45
[[assert]]
kind = "rtpg-count-max"
target = "array0"
max = 50
[[assert]]
kind = "rtpg-count-max"
target = "array0"
max = 0
[[assert]]
kind = "ana-log-reads-max"
target = "subsys0"
max = 50
[[assert]]
kind = "ana-log-reads-max"
target = "subsys0"
max = 0
[[assert]]
kind = "min-ios"
head = "lu1"
min = 100
[[assert]]
kind = "min-ios"
min = 1000000000000
[[assert]]
kind = "path-marginal"
path = "s0c1n1"
from_secs = 0.5
to_secs = 2.0
# Before the latency at 2 s, which could make it marginal for latency.
[[assert]]
kind = "path-marginal"
path = "a0p1:lun0"
from_secs = 0.1
to_secs = 1.9
)",
                                "both-ways.toml");
  ASSERT_TRUE(scenario) << scenario.error().ToString();
  auto result = RunScenario(*scenario);
  ASSERT_TRUE(result) << result.error().ToString();
  for (const ScenarioEvent& event : result->events) EXPECT_TRUE(event.ok) << event.what;

  const std::vector<bool> want = {true,  false, false, false,  // no-errors-surfaced: lu1, ns2, all, unknown head
                                  true,  false,                // no-data-errors: lu1, ns3
                                  true,  false,                // max-pause-ms: ns1 <= 1 s, lu1 <= 200 ms
                                  true,  false,                // path-share-below: non-optimized, optimized path
                                  true,  false,                // rtpg-count-max: 50, 0
                                  true,  false,                // ana-log-reads-max: 50, 0
                                  true,  false,                // min-ios: 100 on lu1, 10^12 on every head
                                  true,  false};               // path-marginal: failing path, healthy path
  ASSERT_EQ(result->assertions.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(result->assertions[i].passed, want[i]) << i << ": " << result->assertions[i].description;
  }
  EXPECT_NE(result->assertions[3].description.find("no head is named 'nosuch'"), std::string::npos);
  EXPECT_FALSE(result->passed());
  EXPECT_GT(result->data_errors, 0u);
  std::uint64_t surfaced = 0;
  for (const HeadStats& head : result->heads) surfaced += head.errors_surfaced;
  EXPECT_GT(surfaced, 0u);
  EXPECT_EQ(result->unexpected_errors, surfaced);
}

TEST(ScenarioRun, AStepThatFailsIsAnUnexpectedError) {
  auto scenario = ParseScenario(WithFabric(R"(
[scenario]
duration_secs = 1
[scenario.workload]
slots_per_head = 2
blocks_per_slot = 4

[[step]]
at_secs = 0.2
action = "set-policy"
head = "no-such-head"
policy = "numa"
[[step]]
at_secs = 0.3
action = "inject"
target = "a0p1"
fault = "latency"
args = { ms = "soon" }
)"),
                                "bad-steps.toml");
  ASSERT_TRUE(scenario) << scenario.error().ToString();
  auto result = RunScenario(*scenario);
  ASSERT_TRUE(result) << result.error().ToString();
  ASSERT_EQ(result->events.size(), 2u);
  EXPECT_FALSE(result->events[0].ok);
  EXPECT_NE(result->events[0].what.find("no-such-head"), std::string::npos) << result->events[0].what;
  EXPECT_NE(result->events[0].what.find("[bad-steps.toml:"), std::string::npos) << result->events[0].what;
  EXPECT_FALSE(result->events[1].ok);
  EXPECT_EQ(result->unexpected_errors, 2u);
  EXPECT_FALSE(result->passed());
}

TEST(ScenarioRun, RefusesToRunWithoutHeadsOrWithAnImpossibleDuration) {
  auto empty = ParseScenario("[scenario]\nduration_secs = 1\n", "empty.toml");
  ASSERT_TRUE(empty) << empty.error().ToString();
  auto run = RunScenario(*empty);
  ASSERT_FALSE(run);
  EXPECT_NE(run.error().message().find("no multipath head came up"), std::string::npos) << run.error().message();

  auto scenario = ParseScenario(WithFabric(""), "x.toml");
  ASSERT_TRUE(scenario);
  for (double seconds : {0.0, -1.0, std::nan(""), 1e9}) {
    RunOptions options;
    options.duration_secs = seconds;
    auto refused = RunScenario(*scenario, options);
    ASSERT_FALSE(refused) << seconds;
    EXPECT_EQ(refused.error().code(), Errc::kInvalidArgument);
  }
}

}  // namespace
}  // namespace mpath::daemon
