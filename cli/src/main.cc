// The `mpath` command.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "demo.h"

int main(int argc, char** argv) {
  CLI::App app{"mpath: native multipath for SCSI and NVMe, in userspace"};
  app.require_subcommand(1);

  mpath::cli::DemoOptions demo;
  auto* demo_cmd = app.add_subcommand("demo", "run a verified workload over simulated paths while faults play out");
  demo_cmd->add_option("--seconds", demo.seconds, "how long to run")->check(CLI::Range(1.0, 3600.0));
  demo_cmd->add_flag("--json", demo.json, "print the summary as one JSON object");

  app.add_subcommand("version", "print the version")->callback([] { fmt::print("mpath 0.1.0\n"); });

  CLI11_PARSE(app, argc, argv);
  if (demo_cmd->parsed()) return mpath::cli::RunDemo(demo);
  return 0;
}
