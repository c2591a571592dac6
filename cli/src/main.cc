// The `mpath` command: subcommands in the manner of multipathd and nvme-cli. Exit codes: 0 success, 1 the command
// failed, 2 bad arguments or a bad config file (nothing was attempted).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "commands.h"
#include "demo.h"

// MPATH_VERSION comes from project() in the top-level CMakeLists.txt (cli/CMakeLists.txt passes it in).

namespace {

using namespace mpath::cli;

// --control PATH and -o text|json, for a client subcommand.
void AddControl(CLI::App* command, ClientOptions& options) {
  command->add_option("--control", options.control, "the daemon's control socket ($MPATH_CONTROL)")
      ->capture_default_str();
}
void AddOutput(CLI::App* command, std::string& output) {
  command->add_option("-o,--output", output, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
}

int Main(int argc, char** argv) {
  CLI::App app{"mpath: native multipath for SCSI and NVMe, in userspace", "mpath"};
  app.require_subcommand(1);

  DemoOptions demo_options;
  double demo_seconds = 0;
  auto* demo = app.add_subcommand("demo", "run the demo: a verified workload on a simulated SAN while faults play");
  auto* demo_seconds_option = demo->add_option("--seconds", demo_seconds, "how long to run (default 30)");
  demo->add_flag("--json", demo_options.json, "print the summary as one JSON object");

  ScenarioCommandOptions scenario_options;
  double scenario_seconds = 0;
  auto* scenario = app.add_subcommand("scenario", "scenario files");
  scenario->require_subcommand(1);
  auto* scenario_run = scenario->add_subcommand("run", "run a scenario file on the simulated SAN");
  scenario_run->add_option("file", scenario_options.file, "the scenario (TOML)")->required();
  auto* scenario_seconds_option =
      scenario_run->add_option("--seconds", scenario_seconds, "override the scenario's duration");
  scenario_run->add_flag("--json", scenario_options.json, "print the summary as one JSON object");

  DaemonOptions daemon_options;
  daemon_options.control = DefaultControlPath();
  auto* daemon = app.add_subcommand(
      "daemon", "build the configured fabric; serve the control socket and every head as an NBD export");
  daemon->add_option("--config", daemon_options.config, "the configuration file (TOML)")->required();
  daemon->add_option("--control", daemon_options.control, "where to serve the control socket ($MPATH_CONTROL)")
      ->capture_default_str();
  daemon->add_option("--io-threads", daemon_options.io_threads, "I/O event loops (0: one per CPU)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  auto* nbd_option =
      daemon
          ->add_option("--nbd", daemon_options.nbd,
                       "serve the NBD export on this unix socket, whatever [export] says (docs/config.md)")
          ->check(CLI::Validator(
              [](std::string& path) -> std::string {
                if (path.empty()) return "needs a socket path (--no-nbd serves no export)";
                // sockaddr_un::sun_path, less its terminating NUL.
                if (path.size() > 107) return "'" + path.substr(0, 40) + "...' is longer than 107 bytes";
                return "";
              },
              "PATH"));
  daemon->add_flag("--no-nbd", daemon_options.no_nbd, "serve no NBD export, whatever [export] says")
      ->excludes(nbd_option);

  ClientOptions client;
  client.control = DefaultControlPath();
  std::string output = "text";

  auto* list = app.add_subcommand("list", "every head with its paths");
  AddControl(list, client);
  AddOutput(list, output);

  std::string head;
  auto* show = app.add_subcommand("show", "one head in depth, with per-path latency and counters");
  show->add_option("head", head, "name, alias or identity")->required();
  AddControl(show, client);
  AddOutput(show, output);

  std::string policy;
  auto* set_policy = app.add_subcommand("set-policy", "change a head's iopolicy");
  set_policy->add_option("head", head, "name, alias or identity")->required();
  set_policy->add_option("policy", policy, "numa | round-robin | queue-depth | service-time")->required();
  AddControl(set_policy, client);

  std::string path;
  auto* path_command = app.add_subcommand("path", "take a path out of service or put it back");
  path_command->require_subcommand(1);
  auto* path_fail = path_command->add_subcommand("fail", "fail a path: it carries no I/O until reinstated");
  auto* path_reinstate = path_command->add_subcommand("reinstate", "put a failed path back in service");
  for (auto* command : {path_fail, path_reinstate}) {
    command->add_option("path", path, "the path's name")->required();
    AddControl(command, client);
  }

  PrOptions pr_options;
  auto* pr = app.add_subcommand("pr", "persistent reservations on a head (mpathpersist's vocabulary)");
  pr->add_option("action", pr_options.action, "the operation")
      ->required()
      ->check(CLI::IsMember({"register", "unregister", "reserve", "release", "preempt", "preempt-abort", "clear",
                             "read-keys", "read-reservation"}));
  pr->add_option("head", pr_options.head, "name, alias or identity")->required();
  pr->add_option("--key", pr_options.key, "our reservation key (decimal or 0x-hex)");
  pr->add_option("--sa-key", pr_options.sa_key, "register: the new key; preempt: the key to preempt");
  pr->add_option("--type", pr_options.type, "the reservation type")
      ->check(CLI::IsMember({"write-exclusive", "exclusive-access", "write-exclusive-registrants-only",
                             "exclusive-access-registrants-only", "write-exclusive-all-registrants",
                             "exclusive-access-all-registrants"}));
  pr->add_flag("--ignore-existing", pr_options.ignore_existing, "register: ignore the key already registered");
  pr->add_flag("--aptpl", pr_options.aptpl, "register: persist through power loss");
  AddControl(pr, client);
  AddOutput(pr, output);

  std::string target, fault;
  std::vector<std::string> fault_args;
  auto* inject = app.add_subcommand("inject", "inject a fault into the simulated SAN");
  inject->add_option("target", target, "a path name (link faults) or an array/subsystem name (device faults)")
      ->required();
  inject->add_option("fault", fault, "link-down, link-up, hang, latency, fail-io, alua, ana, ... (docs/control.md)")
      ->required();
  inject->add_option("args", fault_args, "key=value arguments of the fault");
  AddControl(inject, client);

  auto* version = app.add_subcommand("version", "print the version");

  // CLI11 reports a misspelt subcommand as "A subcommand is required"; name it instead.
  if (argc > 1 && argv[1][0] != '-') {
    std::string name = argv[1];
    auto known = app.get_subcommands([&name](CLI::App* command) { return command->get_name() == name; });
    if (known.empty()) {
      fmt::print(stderr, "mpath: unknown subcommand '{}'\nRun with --help for more information.\n", name);
      return kExitUsage;
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }

  client.json = output == "json";
  if (*demo) {
    if (demo_seconds_option->count() > 0) demo_options.seconds = demo_seconds;
    return RunDemo(demo_options);
  }
  if (*scenario_run) {
    if (scenario_seconds_option->count() > 0) scenario_options.seconds = scenario_seconds;
    return RunScenarioCommand(scenario_options);
  }
  if (*daemon) return RunDaemon(daemon_options);
  if (*list) return RunList(client);
  if (*show) return RunShow(client, head);
  if (*set_policy) return RunSetPolicy(client, head, policy);
  if (*path_fail) return RunPath(client, "fail", path);
  if (*path_reinstate) return RunPath(client, "reinstate", path);
  if (*pr) return RunPr(client, pr_options);
  if (*inject) return RunInject(client, target, fault, fault_args);
  if (*version) {
    fmt::print("mpath {}\n", MPATH_VERSION);
    return kExitOk;
  }
  return kExitUsage;  // require_subcommand makes this unreachable
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
