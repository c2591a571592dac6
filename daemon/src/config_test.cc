// The config file: the shipped examples parse into exactly what they say, every kind of bad input is refused with
// "<file>:<line>:<column>: <key>: <what>", and the parsed settings turn into the core's options as documented.
#include "mpath/daemon/config.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mpath::daemon {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kSourceDir = MPATH_SOURCE_DIR;
constexpr std::string_view kFile = "test.toml";

Result<Config> Parse(std::string_view text, std::span<const std::string_view> foreign = {}) {
  return ParseConfig(text, kFile, foreign);
}

// Succeeds when `text` is refused with a message that starts "test.toml:<line>:<column>: " and holds every one of
// `parts`.
::testing::AssertionResult FailsAt(std::string_view text, int line, int column,
                                   std::initializer_list<std::string_view> parts,
                                   std::span<const std::string_view> foreign = {}) {
  const Result<Config> config = Parse(text, foreign);
  if (config) return ::testing::AssertionFailure() << "parsed, but should fail:\n" << text;
  const std::string& message = config.error().message();
  if (config.error().code() != Errc::kInvalidArgument) {
    return ::testing::AssertionFailure() << "wrong error class: " << config.error().ToString();
  }
  const std::string where = std::string(kFile) + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
  if (!message.starts_with(where)) {
    return ::testing::AssertionFailure() << "expected the message to start with '" << where << "': " << message;
  }
  for (std::string_view part : parts) {
    if (message.find(part) == std::string::npos) {
      return ::testing::AssertionFailure() << "expected '" << part << "' in: " << message;
    }
  }
  return ::testing::AssertionSuccess() << message;
}

// A valid fabric that the error tests below break one key at a time.
constexpr std::string_view kArray = R"(
[[sim.scsi_array]]
name = "array0"
  [[sim.scsi_array.port_group]]
  id = 1
  ports = [1, 2]
  [[sim.scsi_array.lu]]
  naa = "60014050abcd00000000000000000001"
)";

// ---------------------------------------------------------------------------------------------------------------
// The shipped examples

TEST(ConfigExamples, FullExampleParsesIntoExactlyWhatItSays) {
  const std::string path = kSourceDir + "/examples/mpath.toml";
  const Result<Config> loaded = LoadConfig(path);
  ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
  const Config& c = *loaded;

  EXPECT_EQ(c.file, path);
  EXPECT_EQ(c.multipath, MultipathMode::kOn);
  EXPECT_EQ(c.opted_out_transports, (std::vector<std::string>{"ufs", "usb"}));
  EXPECT_EQ(c.alua, "implicit");
  EXPECT_EQ(c.defaults.iopolicy, IoPolicyKind::kServiceTime);
  EXPECT_EQ(c.defaults.delayed_removal_secs, 30.0);
  EXPECT_EQ(c.defaults.queue_if_no_path, true);
  EXPECT_EQ(c.defaults.write_quiesce_secs, 0.0);
  EXPECT_EQ(c.defaults.max_same_path_retries, 5u);
  EXPECT_EQ(c.defaults.marginal_window, 32u);
  EXPECT_EQ(c.defaults.marginal_error_threshold, 8u);
  EXPECT_EQ(c.defaults.marginal_latency_factor, 20.0);
  EXPECT_EQ(c.defaults.marginal_probe_interval_secs, 1.0);
  EXPECT_EQ(c.defaults.marginal_probes_to_reinstate, 5u);

  ASSERT_EQ(c.devices.size(), 1u);
  const DeviceSettings& db0 = c.devices[0];
  EXPECT_EQ(db0.match, "naa.60014050abcd0000000000000000000a");
  EXPECT_EQ(db0.alias, "db0");
  EXPECT_EQ(db0.head.iopolicy, IoPolicyKind::kRoundRobin);
  EXPECT_EQ(db0.head.delayed_removal_secs, 120.0);
  EXPECT_EQ(db0.head.marginal_error_threshold, 4u);
  EXPECT_FALSE(db0.head.queue_if_no_path.has_value());
  EXPECT_FALSE(db0.head.marginal_window.has_value());
  EXPECT_THAT(db0.source, StartsWith(path + ":"));

  EXPECT_EQ(c.host.iscsi_initiator, "iqn.2026-11.io.mpath:host");
  EXPECT_EQ(c.host.nvme_host_nqn, "nqn.2014-08.org.nvmexpress:uuid:6d706174-6800-4000-8000-000000000001");
  EXPECT_EQ(c.host.nvme_host_id, (std::array<std::uint8_t, 16>{0x6d, 0x70, 0x61, 0x74, 0x68, 0x00, 0x40, 0x00, 0x80,
                                                               0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01}));

  EXPECT_TRUE(c.nbd_export.enabled);
  EXPECT_EQ(c.nbd_export.unix_socket, "/run/mpath/nbd.sock");
  EXPECT_FALSE(c.nbd_export.tcp_port.has_value());
  EXPECT_EQ(c.nbd_export.tcp_address, "127.0.0.1");
  EXPECT_FALSE(c.nbd_export.read_only);
  EXPECT_EQ(c.nbd_export.default_export, "db0");
  EXPECT_EQ(c.nbd_export.max_connections, 64u);
  EXPECT_EQ(c.nbd_export.queue_depth, 128u);

  EXPECT_EQ(c.sim.seed, 1u);
  ASSERT_EQ(c.sim.scsi_arrays.size(), 1u);
  const SimScsiArray& array = c.sim.scsi_arrays[0];
  EXPECT_EQ(array.name, "array0");
  EXPECT_EQ(array.vendor, "MPATHSIM");
  EXPECT_EQ(array.product, "ALUA-ARRAY");
  EXPECT_EQ(array.tpgs, 3);
  EXPECT_EQ(array.transition_secs, 10);
  ASSERT_EQ(array.port_groups.size(), 2u);
  EXPECT_EQ(array.port_groups[0].id, 1);
  EXPECT_EQ(array.port_groups[0].state, "active/optimized");
  EXPECT_TRUE(array.port_groups[0].preferred);
  EXPECT_EQ(array.port_groups[0].ports, (std::vector<std::uint16_t>{1, 2}));
  EXPECT_EQ(array.port_groups[1].id, 2);
  EXPECT_EQ(array.port_groups[1].state, "active/non-optimized");
  EXPECT_FALSE(array.port_groups[1].preferred);
  EXPECT_EQ(array.port_groups[1].ports, (std::vector<std::uint16_t>{3, 4}));
  ASSERT_EQ(array.lus.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(array.lus[i].lun, i);
    EXPECT_EQ(array.lus[i].serial, "ARRAY0-LU" + std::to_string(i));
    EXPECT_EQ(array.lus[i].naa[0], 0x60);
    EXPECT_EQ(array.lus[i].naa[15], 0x0a + i);
  }
  EXPECT_EQ(array.lus[2].size_mib, 128u);
  EXPECT_EQ(array.lus[2].block_size, 4096u);
  EXPECT_EQ(array.lus[3].size_mib, 32u);
  EXPECT_EQ(array.lus[0].naa, (std::array<std::uint8_t, 16>{0x60, 0x01, 0x40, 0x50, 0xab, 0xcd, 0, 0, 0, 0, 0, 0, 0,
                                                            0, 0, 0x0a}));

  ASSERT_EQ(c.sim.nvme_subsystems.size(), 1u);
  const SimNvmeSubsystem& subsystem = c.sim.nvme_subsystems[0];
  EXPECT_EQ(subsystem.name, "subsys0");
  EXPECT_EQ(subsystem.nqn, "nqn.2026-11.io.mpath.sim:subsys0");
  EXPECT_EQ(subsystem.ports, (std::vector<std::uint16_t>{1, 2}));
  EXPECT_EQ(subsystem.anatt_secs, 10);
  ASSERT_EQ(subsystem.namespaces.size(), 2u);
  EXPECT_EQ(subsystem.namespaces[0].nsid, 1u);
  EXPECT_EQ(subsystem.namespaces[0].ana_group, 1u);
  EXPECT_EQ(subsystem.namespaces[0].block_size, 512u);
  EXPECT_EQ(subsystem.namespaces[1].nsid, 2u);
  EXPECT_EQ(subsystem.namespaces[1].ana_group, 2u);
  EXPECT_EQ(subsystem.namespaces[1].block_size, 4096u);
  EXPECT_EQ(subsystem.namespaces[1].nguid[15], 0x02);
  ASSERT_EQ(subsystem.ana.size(), 4u);
  EXPECT_EQ(subsystem.ana[1].port, 2);
  EXPECT_EQ(subsystem.ana[1].group, 1u);
  EXPECT_EQ(subsystem.ana[1].state, "non-optimized");
  EXPECT_EQ(subsystem.ana[3].state, "optimized");

  ASSERT_EQ(c.sim.paths.size(), 6u);
  EXPECT_EQ(c.sim.paths[0].name, "a0-tp1");
  EXPECT_EQ(c.sim.paths[0].target, "array0");
  EXPECT_EQ(c.sim.paths[0].port, 1);
  EXPECT_DOUBLE_EQ(c.sim.paths[0].latency_ms, 0.1);
  EXPECT_EQ(c.sim.paths[3].port, 4);
  EXPECT_DOUBLE_EQ(c.sim.paths[3].latency_ms, 0.2);
  EXPECT_EQ(c.sim.paths[5].name, "s0-p2");
  EXPECT_EQ(c.sim.paths[5].target, "subsys0");
  EXPECT_EQ(c.sim.paths[5].port, 2);
  EXPECT_THAT(c.sim.paths[5].source, StartsWith(path + ":"));

  // The file's defaults and its one override, as a head gets them.
  const Result<RegistryOptions> registry = c.ToRegistryOptions();
  ASSERT_TRUE(registry.has_value()) << registry.error().ToString();
  EXPECT_EQ(registry->head.policy, IoPolicyKind::kServiceTime);
  EXPECT_EQ(registry->head.delayed_removal, 30s);
  const DeviceSettings* device = c.DeviceFor("naa.60014050abcd0000000000000000000a");
  ASSERT_EQ(device, &c.devices[0]);
  const Result<HeadOptions> db0_options = device->head.ApplyTo(registry->head);
  ASSERT_TRUE(db0_options.has_value()) << db0_options.error().ToString();
  EXPECT_EQ(db0_options->policy, IoPolicyKind::kRoundRobin);
  EXPECT_EQ(db0_options->delayed_removal, 120s);
  EXPECT_EQ(db0_options->marginal.error_threshold, 4u);
  EXPECT_EQ(db0_options->marginal.window, 32u);
  EXPECT_EQ(c.DeviceFor("naa.60014050abcd0000000000000000000b"), nullptr);
}

TEST(ConfigExamples, MinimalExampleTakesEveryDefault) {
  const Result<Config> loaded = LoadConfig(kSourceDir + "/examples/minimal.toml");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().ToString();
  const Config& c = *loaded;
  EXPECT_EQ(c.multipath, MultipathMode::kOn);
  EXPECT_EQ(c.alua, "implicit");
  EXPECT_TRUE(c.opted_out_transports.empty());
  EXPECT_TRUE(c.devices.empty());
  EXPECT_EQ(c.host.iscsi_initiator, HostSettings{}.iscsi_initiator);
  EXPECT_EQ(c.host.nvme_host_id, HostSettings{}.nvme_host_id);
  EXPECT_TRUE(c.nbd_export.enabled);
  EXPECT_EQ(c.nbd_export.unix_socket, ExportSettings{}.unix_socket);
  EXPECT_FALSE(c.nbd_export.tcp_port.has_value());
  EXPECT_TRUE(c.nbd_export.default_export.empty());
  EXPECT_EQ(c.sim.seed, 1u);
  ASSERT_EQ(c.sim.scsi_arrays.size(), 1u);
  const SimScsiArray& array = c.sim.scsi_arrays[0];
  EXPECT_EQ(array.vendor, "MPATHSIM");
  EXPECT_EQ(array.product, "ALUA-ARRAY");
  EXPECT_EQ(array.tpgs, 3);
  EXPECT_EQ(array.transition_secs, 10);
  ASSERT_EQ(array.port_groups.size(), 1u);
  EXPECT_EQ(array.port_groups[0].state, "active/optimized");
  EXPECT_FALSE(array.port_groups[0].preferred);
  ASSERT_EQ(array.lus.size(), 1u);
  EXPECT_EQ(array.lus[0].lun, 0u);
  EXPECT_EQ(array.lus[0].size_mib, 64u);
  EXPECT_EQ(array.lus[0].block_size, 512u);
  EXPECT_TRUE(array.lus[0].serial.empty());
  ASSERT_EQ(c.sim.paths.size(), 2u);
  EXPECT_EQ(c.sim.paths[1].port, 2);
  EXPECT_EQ(c.sim.paths[1].latency_ms, 0.0);
  const Result<RegistryOptions> registry = c.ToRegistryOptions();
  ASSERT_TRUE(registry.has_value());
  EXPECT_EQ(registry->head.policy, HeadOptions{}.policy);
  EXPECT_EQ(registry->head.delayed_removal, HeadOptions{}.delayed_removal);
}

TEST(ConfigExamples, EveryShippedExampleParses) {
  int parsed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kSourceDir + "/examples")) {
    if (entry.path().extension() != ".toml") continue;
    SCOPED_TRACE(entry.path().string());
    const Result<Config> config = LoadConfig(entry.path().string());
    EXPECT_TRUE(config.has_value()) << config.error().ToString();
    ++parsed;
  }
  EXPECT_GE(parsed, 2);
}

// Everything a Config says about heads and the fabric, as text, so that two files can be compared.
template <typename Range>
std::string Join(const Range& range) {
  return fmt::format("{}", fmt::join(range, ","));
}

std::string Describe(const Config& c) {
  std::string out;
  const auto add = [&](const auto&... parts) {
    ((out += fmt::format("{} ", parts)), ...);
    out += '\n';
  };
  const auto head = [&](const HeadSettings& h) {
    add(h.iopolicy ? Name(*h.iopolicy) : "-", h.delayed_removal_secs.value_or(-1), h.queue_if_no_path.value_or(true),
        h.write_quiesce_secs.value_or(-1), h.max_same_path_retries.value_or(99), h.marginal_window.value_or(0),
        h.marginal_error_threshold.value_or(0), h.marginal_latency_factor.value_or(-1),
        h.marginal_probe_interval_secs.value_or(-1), h.marginal_probes_to_reinstate.value_or(0));
  };
  add(Name(c.multipath), Join(c.opted_out_transports), c.alua);
  head(c.defaults);
  for (const DeviceSettings& d : c.devices) {
    add("device", d.match, d.alias);
    head(d.head);
  }
  add(c.host.iscsi_initiator, c.host.nvme_host_nqn, Join(c.host.nvme_host_id), c.sim.seed);
  const ExportSettings& e = c.nbd_export;
  add("export", e.enabled, e.unix_socket, e.tcp_port.value_or(0), e.tcp_address, e.read_only, e.default_export,
      e.max_connections, e.queue_depth);
  for (const SimScsiArray& a : c.sim.scsi_arrays) {
    add("array", a.name, a.vendor, a.product, a.tpgs, a.transition_secs);
    for (const SimPortGroup& g : a.port_groups) add("group", g.id, g.state, g.preferred, Join(g.ports));
    for (const SimLogicalUnit& l : a.lus) add("lu", l.lun, l.size_mib, l.block_size, Join(l.naa), l.serial);
  }
  for (const SimNvmeSubsystem& s : c.sim.nvme_subsystems) {
    add("subsystem", s.name, s.nqn, Join(s.ports), s.anatt_secs);
    for (const SimNamespace& n : s.namespaces) {
      add("ns", n.nsid, n.size_mib, n.block_size, Join(n.nguid), n.ana_group);
    }
    // Every group starts optimized on every port: only the other states say something.
    for (const SimAnaState& a : s.ana) {
      if (a.state != "optimized") add("ana", a.port, a.group, a.state);
    }
  }
  for (const SimPath& p : c.sim.paths) add("path", p.name, p.target, p.port, p.latency_ms);
  return out;
}

// The ```toml blocks of a Markdown file.
std::vector<std::string> TomlBlocks(const std::string& markdown_path) {
  std::ifstream in(markdown_path);
  std::vector<std::string> blocks;
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!inside && line == "```toml") {
      inside = true;
      blocks.emplace_back();
    } else if (inside && line == "```") {
      inside = false;
    } else if (inside) {
      blocks.back() += line + "\n";
    }
  }
  return blocks;
}

TEST(ConfigExamples, TheDocumentedExampleIsTheShippedOne) {
  const std::vector<std::string> blocks = TomlBlocks(kSourceDir + "/docs/config.md");
  ASSERT_EQ(blocks.size(), 1u);
  const Result<Config> documented = ParseConfig(blocks[0], "docs/config.md");
  ASSERT_TRUE(documented.has_value()) << documented.error().ToString();
  const Result<Config> shipped = LoadConfig(kSourceDir + "/examples/mpath.toml");
  ASSERT_TRUE(shipped.has_value()) << shipped.error().ToString();
  // The documented one leaves out the keys that repeat a default; the two still say the same.
  EXPECT_EQ(Describe(*documented), Describe(*shipped));
}

TEST(ConfigParse, EmptyTextIsTheDefaults) {
  const Result<Config> c = ParseConfig("");
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  EXPECT_EQ(c->file, "<string>");
  EXPECT_EQ(c->multipath, MultipathMode::kOn);
  EXPECT_FALSE(c->defaults.iopolicy.has_value());
  EXPECT_FALSE(c->defaults.delayed_removal_secs.has_value());
  EXPECT_TRUE(c->sim.paths.empty());
  EXPECT_EQ(c->host.nvme_host_nqn, HostSettings{}.nvme_host_nqn);
}

TEST(ConfigParse, SubsystemDefaultsAndIntegerSeconds) {
  const Result<Config> c = Parse(R"(
[defaults]
delayed_removal_secs = 7
marginal = { window = 16, error_threshold = 2 }
[[sim.nvme_subsystem]]
name = "s1"
  [[sim.nvme_subsystem.namespace]]
  nguid = "0123456789ABCDEFfedcba9876543210"
[[sim.path]]
name = "n1"
target = "s1"
)");
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  EXPECT_EQ(c->defaults.delayed_removal_secs, 7.0);
  EXPECT_EQ(c->defaults.marginal_window, 16u);
  EXPECT_EQ(c->defaults.marginal_error_threshold, 2u);
  const SimNvmeSubsystem& s = c->sim.nvme_subsystems.at(0);
  EXPECT_EQ(s.nqn, "nqn.2026-11.io.mpath.sim:s1");
  EXPECT_EQ(s.ports, (std::vector<std::uint16_t>{1, 2}));
  EXPECT_EQ(s.anatt_secs, 10);
  EXPECT_TRUE(s.ana.empty());
  EXPECT_EQ(s.namespaces.at(0).nsid, 1u);
  EXPECT_EQ(s.namespaces.at(0).ana_group, 1u);
  EXPECT_EQ(s.namespaces.at(0).nguid, (std::array<std::uint8_t, 16>{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                                                                    0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10}));
  EXPECT_EQ(c->sim.paths.at(0).port, 1);
}

TEST(ConfigParse, AluaNamesMapToTpgs) {
  const std::pair<const char*, int> cases[] = {{"none", 0}, {"implicit", 1}, {"explicit", 2}, {"both", 3}};
  for (const auto& [name, tpgs] : cases) {
    SCOPED_TRACE(name);
    std::string text(kArray);
    text.insert(text.find("  [[sim.scsi_array.port_group]]"), std::string("alua = \"") + name + "\"\n");
    const Result<Config> c = Parse(text);
    ASSERT_TRUE(c.has_value()) << c.error().ToString();
    EXPECT_EQ(c->sim.scsi_arrays.at(0).tpgs, tpgs);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Syntax errors

TEST(ConfigErrors, SyntaxErrorsCarryTomlsPosition) {
  EXPECT_TRUE(FailsAt("[defaults]\niopolicy = \n", 2, 12, {}));
  EXPECT_TRUE(FailsAt("[defaults]\niopolicy = \"numa\"\niopolicy = \"numa\"\n", 3, 12, {"redefine", "iopolicy"}));
  EXPECT_TRUE(FailsAt("[defaults\n", 1, 10, {}));
  EXPECT_TRUE(FailsAt("a = \"unterminated\n", 1, 18, {}));
  EXPECT_TRUE(FailsAt("[defaults]\n[defaults]\n", 2, 1, {"redefine", "defaults"}));
}

TEST(ConfigErrors, HostileTextIsRefusedNotFatal) {
  EXPECT_FALSE(Parse(std::string_view("a = \"x\0y\"\n", 10)).has_value());
  EXPECT_FALSE(Parse("a = \"\xff\xfe\"\n").has_value());
  EXPECT_FALSE(Parse(std::string(100000, '[')).has_value());
  EXPECT_FALSE(Parse("a = " + std::string(100000, '[')).has_value());
  EXPECT_FALSE(Parse("a = " + std::string(100000, '{')).has_value());
  EXPECT_FALSE(Parse("a = 99999999999999999999999\n").has_value());
  // Braces in values must not reach a format string.
  EXPECT_TRUE(FailsAt("[defaults]\niopolicy = \"{}{0}{:>99999}\"\n", 2, 12, {"'{}{0}{:>99999}'"}));
}

TEST(ConfigErrors, MessagesStayOneShortLineWhateverTheValue) {
  const Result<Config> newline = Parse("[defaults]\niopolicy = \"numa\\nx\"\n");
  ASSERT_FALSE(newline.has_value());
  EXPECT_EQ(newline.error().message().find('\n'), std::string::npos) << newline.error().message();
  EXPECT_THAT(newline.error().message(), HasSubstr("numa\\x0ax"));
  const std::string long_name(100000, 'p');
  const Result<Config> huge = Parse(std::string(kArray) + "[[sim.path]]\nname = \"" + long_name + "\"\n");
  ASSERT_FALSE(huge.has_value());
  EXPECT_LT(huge.error().message().size(), 300u) << huge.error().message();
  EXPECT_THAT(huge.error().message(), HasSubstr("sim.path[0].name: 'ppp"));
}

// ---------------------------------------------------------------------------------------------------------------
// Unknown keys, at every level

// Every table of the format, each with a marker line where a key can be added.
constexpr std::string_view kEveryTable = R"(#top
[defaults]
#defaults
[defaults.marginal]
#defaults.marginal
[[device]]
match = "naa.6*"
#device
[device.marginal]
#device.marginal
[host]
#host
[export]
#export
[sim]
#sim
[[sim.scsi_array]]
name = "a"
#array
  [[sim.scsi_array.port_group]]
  ports = [1]
  #port_group
  [[sim.scsi_array.lu]]
  naa = "60014050abcd00000000000000000001"
  #lu
[[sim.nvme_subsystem]]
name = "s"
#subsystem
  [[sim.nvme_subsystem.namespace]]
  nguid = "60014050abcd00000000000000000002"
  #namespace
  [[sim.nvme_subsystem.ana]]
  #ana
[[sim.path]]
name = "p"
target = "a"
#path
)";

TEST(ConfigErrors, EveryTableParsesAsWritten) {
  const Result<Config> c = Parse(kEveryTable);
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
}

TEST(ConfigErrors, UnknownKeysAreRefusedAtEveryLevelWithTheAllowedOnes) {
  struct Case {
    std::string_view marker;
    std::string_view header;
    std::string_view an_allowed_key;
  };
  const Case cases[] = {
      {"#top", "the top level", "defaults"},
      {"#defaults", "[defaults]", "delayed_removal_secs"},
      {"#defaults.marginal", "[defaults.marginal]", "probes_to_reinstate"},
      {"#device", "[[device]]", "alias"},
      {"#device.marginal", "[device.marginal]", "error_threshold"},
      {"#host", "[host]", "nvme_host_id"},
      {"#export", "[export]", "default_export"},
      {"#sim", "[sim]", "seed"},
      {"#array", "[[sim.scsi_array]]", "transition_secs"},
      {"#port_group", "[[sim.scsi_array.port_group]]", "preferred"},
      {"#lu", "[[sim.scsi_array.lu]]", "naa"},
      {"#subsystem", "[[sim.nvme_subsystem]]", "anatt_secs"},
      {"#namespace", "[[sim.nvme_subsystem.namespace]]", "ana_group"},
      {"#ana", "[[sim.nvme_subsystem.ana]]", "group"},
      {"#path", "[[sim.path]]", "latency_ms"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.marker);
    std::string text(kEveryTable);
    const std::size_t at = text.find(std::string(c.marker) + "\n");
    ASSERT_NE(at, std::string::npos);
    const std::size_t line_start = at == 0 ? 0 : text.rfind('\n', at - 1) + 1;
    const int line = static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n')) + 1;
    const int column = static_cast<int>(at - line_start) + 1;
    text.replace(at, c.marker.size(), "colour = 1");
    EXPECT_TRUE(FailsAt(text, line, column,
                        {"unknown key 'colour'", std::string("in ") + std::string(c.header) + ";", "allowed keys:",
                         c.an_allowed_key}));
  }
}

TEST(ConfigErrors, ACloseMisspellingIsStillUnknown) {
  EXPECT_TRUE(FailsAt("[defaults]\nio_policy = \"numa\"\n", 2, 1,
                      {"unknown key 'io_policy' in [defaults]", "iopolicy", "queue_if_no_path"}));
  EXPECT_TRUE(FailsAt("[default]\n", 1, 2, {"unknown key 'default'", "defaults, device, host, export, sim"}));
  // A table the format does not have is as unknown as a key.
  EXPECT_TRUE(FailsAt("[sim.scsi_arrays]\n", 1, 6, {"unknown key 'scsi_arrays' in [sim]"}));
}

TEST(ConfigErrors, TheFirstUnknownKeyInTheFileIsTheOneNamed) {
  // toml++ sorts keys; the message must follow the file.
  EXPECT_TRUE(FailsAt("[defaults]\nzzz = 1\naaa = 2\n", 2, 1, {"'zzz'"}));
}

// ---------------------------------------------------------------------------------------------------------------
// [export]

TEST(ConfigExport, EveryKeyAsWritten) {
  const Result<Config> c = Parse(R"(
[export]
enabled = true
unix_socket = "/tmp/mpath-nbd.sock"
tcp_port = 10809
tcp_address = "::1"
read_only = true
default_export = "nguid.6d706174000000000000000000000001@nqn.2026-11.io.mpath.sim:subsys0/ns1"
max_connections = 4096
queue_depth = 1
)");
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  const ExportSettings& e = c->nbd_export;
  EXPECT_TRUE(e.enabled);
  EXPECT_EQ(e.unix_socket, "/tmp/mpath-nbd.sock");
  EXPECT_EQ(e.tcp_port, 10809);
  EXPECT_EQ(e.tcp_address, "::1");
  EXPECT_TRUE(e.read_only);
  EXPECT_EQ(e.default_export, "nguid.6d706174000000000000000000000001@nqn.2026-11.io.mpath.sim:subsys0/ns1");
  EXPECT_EQ(e.max_connections, 4096u);
  EXPECT_EQ(e.queue_depth, 1u);
}

TEST(ConfigExport, ATableLeftOutServesTheDefaultUnixSocketOnly) {
  const Result<Config> c = Parse("");
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  const ExportSettings& e = c->nbd_export;
  EXPECT_TRUE(e.enabled);
  EXPECT_EQ(e.unix_socket, "/run/mpath/nbd.sock");
  EXPECT_FALSE(e.tcp_port.has_value());
  EXPECT_FALSE(e.read_only);
  EXPECT_TRUE(e.default_export.empty());
  EXPECT_EQ(e.max_connections, 64u);
  EXPECT_EQ(e.queue_depth, 128u);
}

TEST(ConfigExport, TcpAloneAndDisabledWithNothingToListenOnAreFine) {
  const Result<Config> tcp = Parse("[export]\nunix_socket = \"\"\ntcp_port = 10809\ntcp_address = \"0.0.0.0\"\n");
  ASSERT_TRUE(tcp.has_value()) << tcp.error().ToString();
  EXPECT_TRUE(tcp->nbd_export.unix_socket.empty());
  EXPECT_EQ(tcp->nbd_export.tcp_port, 10809);
  EXPECT_EQ(tcp->nbd_export.tcp_address, "0.0.0.0");
  const Result<Config> off = Parse("[export]\nenabled = false\nunix_socket = \"\"\n");
  ASSERT_TRUE(off.has_value()) << off.error().ToString();
  EXPECT_FALSE(off->nbd_export.enabled);
  // A port alone keeps the loopback default.
  const Result<Config> port = Parse("[export]\ntcp_port = 1\n");
  ASSERT_TRUE(port.has_value()) << port.error().ToString();
  EXPECT_EQ(port->nbd_export.tcp_address, "127.0.0.1");
}

TEST(ConfigExport, BadValuesNameTheKey) {
  EXPECT_TRUE(FailsAt("[export]\nenabled = \"yes\"\n", 2, 11, {"export.enabled: expected a boolean"}));
  EXPECT_TRUE(FailsAt("[export]\nread_only = 1\n", 2, 13, {"export.read_only: expected a boolean", "an integer"}));
  EXPECT_TRUE(FailsAt("[export]\nunix_socket = 5\n", 2, 15, {"export.unix_socket: expected a string"}));
  EXPECT_TRUE(FailsAt("[export]\ntcp_port = 0\n", 2, 12, {"export.tcp_port: must be between 1 and 65535 (got 0)"}));
  EXPECT_TRUE(FailsAt("[export]\ntcp_port = 65536\n", 2, 12, {"export.tcp_port: must be between 1 and 65535"}));
  EXPECT_TRUE(FailsAt("[export]\ntcp_port = \"10809\"\n", 2, 12, {"export.tcp_port: expected an integer"}));
  EXPECT_TRUE(FailsAt("[export]\nmax_connections = 0\n", 2, 19,
                      {"export.max_connections: must be between 1 and 4096 (got 0)"}));
  EXPECT_TRUE(FailsAt("[export]\nmax_connections = 4097\n", 2, 19, {"export.max_connections: must be between 1"}));
  EXPECT_TRUE(FailsAt("[export]\nqueue_depth = -1\n", 2, 15, {"export.queue_depth: must be between 1 and 4096"}));
  EXPECT_TRUE(FailsAt("[export]\nqueue_depth = 1.5\n", 2, 15, {"export.queue_depth: expected an integer"}));
  EXPECT_TRUE(FailsAt("[export]\ndefault_export = \"\"\n", 2, 18, {"export.default_export: must be 1 to 4096"}));
  EXPECT_TRUE(FailsAt("[export]\ndefault_export = \"a\\tb\"\n", 2, 18, {"export.default_export: must be"}));
  EXPECT_TRUE(FailsAt("[export]\nunix_socket = \"/" + std::string(107, 's') + "\"\n", 2, 15,
                      {"export.unix_socket: '/sss", "is longer than 107 bytes"}));
  EXPECT_TRUE(FailsAt("[export]\nunix_socket = \"/tmp/a\\u0000b\"\n", 2, 15,
                      {"export.unix_socket: must not contain a NUL byte"}));
  EXPECT_TRUE(FailsAt("export = 3\n", 1, 10, {"export: expected a table ([export]), got an integer"}));
}

TEST(ConfigExport, TheTcpAddressIsALiteralAndOnlyWithAPort) {
  for (const char* bad : {"localhost", "127.0.0.256", "1.2.3", "::g", "fe80::1%eth0", " 127.0.0.1", ""}) {
    SCOPED_TRACE(bad);
    EXPECT_TRUE(FailsAt(fmt::format("[export]\ntcp_port = 10809\ntcp_address = \"{}\"\n", bad), 3, 15,
                        {"export.tcp_address: '", "is not an IPv4 or IPv6 address"}));
  }
  EXPECT_TRUE(FailsAt("[export]\ntcp_port = 10809\ntcp_address = \"127.0.0.1\\u0000x\"\n", 3, 15,
                      {"is not an IPv4 or IPv6 address"}));
  EXPECT_TRUE(FailsAt("[export]\ntcp_address = \"127.0.0.1\"\n", 2, 15,
                      {"export.tcp_address: is used only with tcp_port"}));
  for (const char* good : {"127.0.0.1", "0.0.0.0", "::", "::1", "fe80::1", "2001:db8::10"}) {
    SCOPED_TRACE(good);
    const Result<Config> c = Parse(fmt::format("[export]\ntcp_port = 10809\ntcp_address = \"{}\"\n", good));
    ASSERT_TRUE(c.has_value()) << c.error().ToString();
    EXPECT_EQ(c->nbd_export.tcp_address, good);
  }
}

TEST(ConfigExport, EnabledWithNothingToListenOnIsRefused) {
  EXPECT_TRUE(FailsAt("[export]\nunix_socket = \"\"\n", 2, 15,
                      {"export: nothing to listen on: unix_socket is \"\" and tcp_port is not set"}));
  EXPECT_TRUE(FailsAt("[export]\nenabled = true\nunix_socket = \"\"\n", 3, 15, {"nothing to listen on"}));
}

// ---------------------------------------------------------------------------------------------------------------
// Foreign tables

TEST(ConfigForeignTables, AreSkippedWhenNamedAndUnknownOtherwise) {
  constexpr std::string_view kScenario = R"(
[scenario]
name = "x"
whatever = 3
[[step]]
at_secs = 1
[defaults]
iopolicy = "round-robin"
)";
  const std::string_view foreign[] = {"scenario", "step", "assert"};
  const Result<Config> c = Parse(kScenario, foreign);
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  EXPECT_EQ(c->defaults.iopolicy, IoPolicyKind::kRoundRobin);
  EXPECT_TRUE(FailsAt(kScenario, 2, 2, {"unknown key 'scenario'"}));
  // Skipping a foreign table does not skip checking the rest.
  std::string broken(kScenario);
  broken += "colour = 1\n";
  EXPECT_TRUE(FailsAt(broken, 9, 1, {"unknown key 'colour' in [defaults]"}, foreign));
}

// ---------------------------------------------------------------------------------------------------------------
// Wrong types

TEST(ConfigErrors, WrongTypesNameTheKeyAndBothTypes) {
  EXPECT_TRUE(FailsAt("[defaults]\niopolicy = 3\n", 2, 12,
                      {"defaults.iopolicy: expected a string, got an integer"}));
  EXPECT_TRUE(FailsAt("[defaults]\nqueue_if_no_path = \"yes\"\n", 2, 20,
                      {"defaults.queue_if_no_path: expected a boolean (true or false), got a string"}));
  EXPECT_TRUE(FailsAt("[defaults]\ndelayed_removal_secs = \"30\"\n", 2, 24,
                      {"defaults.delayed_removal_secs: expected a number, got a string"}));
  EXPECT_TRUE(FailsAt("[defaults]\nmax_same_path_retries = 2.5\n", 2, 25,
                      {"defaults.max_same_path_retries: expected an integer, got a floating-point number"}));
  EXPECT_TRUE(FailsAt("[defaults]\nopt_out_transports = \"ufs\"\n", 2, 22,
                      {"defaults.opt_out_transports: expected an array of strings, got a string"}));
  EXPECT_TRUE(FailsAt("[defaults]\nopt_out_transports = [\"ufs\", 2]\n", 2, 30,
                      {"defaults.opt_out_transports[1]: expected a string, got an integer"}));
  EXPECT_TRUE(FailsAt("[defaults]\nmarginal = 3\n", 2, 12, {"defaults.marginal: expected a table", "an integer"}));
  EXPECT_TRUE(FailsAt("[defaults.marginal]\nwindow = 1979-05-27\n", 2, 10,
                      {"defaults.marginal.window: expected an integer, got a date"}));
  EXPECT_TRUE(FailsAt("defaults = 3\n", 1, 12, {"defaults: expected a table ([defaults]), got an integer"}));
  EXPECT_TRUE(FailsAt("[device]\nmatch = \"x\"\n", 1, 1,
                      {"device: expected an array of tables ([[device]]), got a table"}));
  EXPECT_TRUE(FailsAt("[[device]]\nmatch = \"x\"\nmarginal = [1]\n", 3, 12,
                      {"device[0].marginal: expected a table", "got an array"}));
  EXPECT_TRUE(FailsAt("[host]\nnvme_host_id = 5\n", 2, 16, {"host.nvme_host_id: expected a string, got an integer"}));
  EXPECT_TRUE(FailsAt("sim = { path = [1] }\n", 1, 17,
                      {"sim.path[0]: expected a table ([[sim.path]]), got an integer"}));
  EXPECT_TRUE(FailsAt("[sim]\nseed = true\n", 2, 8, {"sim.seed: expected an integer, got a boolean"}));

  std::string ports(kArray);
  ports.replace(ports.find("[1, 2]"), 6, "[1, \"2\"]");
  EXPECT_TRUE(FailsAt(ports, 6, 15, {"sim.scsi_array[0].port_group[0].ports[1]: expected an integer, got a string"}));
  std::string preferred(kArray);
  preferred.replace(preferred.find("id = 1"), 6, "preferred = \"yes\"");
  EXPECT_TRUE(FailsAt(preferred, 5, 15, {"sim.scsi_array[0].port_group[0].preferred: expected a boolean"}));
  std::string naa(kArray);
  naa.replace(naa.find("\"60014050abcd00000000000000000001\""), 34, "0x60014050abcd");
  EXPECT_TRUE(FailsAt(naa, 8, 9, {"sim.scsi_array[0].lu[0].naa: expected a string, got an integer"}));
}

// ---------------------------------------------------------------------------------------------------------------
// Impossible values

TEST(ConfigErrors, HeadSettingsOutOfRange) {
  EXPECT_TRUE(FailsAt("[defaults]\ndelayed_removal_secs = -1\n", 2, 24,
                      {"defaults.delayed_removal_secs must be between 0 and", "got -1"}));
  EXPECT_TRUE(FailsAt("[[device]]\nmatch = \"x\"\nwrite_quiesce_secs = -0.5\n", 3, 22,
                      {"device[0].write_quiesce_secs must be between 0"}));
  EXPECT_TRUE(FailsAt("[defaults]\ndelayed_removal_secs = nan\n", 2, 24,
                      {"defaults.delayed_removal_secs: must be a finite number"}));
  EXPECT_TRUE(FailsAt("[defaults]\ndelayed_removal_secs = 1e12\n", 2, 24, {"defaults.delayed_removal_secs"}));
  EXPECT_TRUE(FailsAt("[defaults]\niopolicy = \"fastest\"\n", 2, 12,
                      {"defaults.iopolicy: unknown iopolicy 'fastest'", "service-time"}));
  EXPECT_TRUE(FailsAt("[defaults]\nmultipath = \"yes\"\n", 2, 13,
                      {"defaults.multipath: unknown multipath mode 'yes'", "always"}));
  EXPECT_TRUE(FailsAt("[defaults]\nalua = \"auto\"\n", 2, 8,
                      {"defaults.alua: alua must be implicit or explicit, not 'auto'"}));
  EXPECT_TRUE(FailsAt("[defaults]\nmax_same_path_retries = -1\n", 2, 25,
                      {"defaults.max_same_path_retries: must be between 0 and 4294967295 (got -1)"}));
  EXPECT_TRUE(FailsAt("[defaults]\nopt_out_transports = [\"u f s\"]\n", 2, 23,
                      {"defaults.opt_out_transports[0]", "'u f s'"}));
  EXPECT_TRUE(FailsAt("[defaults.marginal]\nwindow = 0\n", 2, 10,
                      {"defaults.marginal.window: must be between 1 and 64"}));
  EXPECT_TRUE(FailsAt("[defaults.marginal]\nwindow = 65\n", 2, 10, {"(got 65)"}));
  EXPECT_TRUE(FailsAt("[defaults.marginal]\nlatency_factor = 0.5\n", 2, 18,
                      {"defaults.marginal.latency_factor: must be 0 (off) or at least 1 (got 0.5)"}));
  EXPECT_TRUE(FailsAt("[defaults.marginal]\nprobe_interval_secs = 0\n", 2, 23,
                      {"defaults.marginal.probe_interval_secs: must be more than 0 seconds"}));
  EXPECT_TRUE(FailsAt("[defaults.marginal]\nprobes_to_reinstate = 0\n", 2, 23,
                      {"defaults.marginal.probes_to_reinstate: must be between 1 and"}));
  // Each key fine alone, wrong together: the table is named.
  EXPECT_TRUE(FailsAt("[defaults]\n[defaults.marginal]\nwindow = 4\nerror_threshold = 5\n", 1, 1,
                      {"[defaults]:", "error threshold", "(got 5)"}));
  // A [[device]] is checked over the defaults it inherits.
  EXPECT_TRUE(FailsAt("[defaults.marginal]\nwindow = 4\nerror_threshold = 2\n[[device]]\nmatch = \"x\"\n"
                      "marginal.error_threshold = 6\n",
                      4, 1, {"device[0]:", "error threshold", "(got 6)"}));
}

TEST(ConfigErrors, DevicesNeedAMatchAndUniqueAliases) {
  EXPECT_TRUE(FailsAt("[[device]]\niopolicy = \"numa\"\n", 1, 1, {"device[0]: a [[device]] needs 'match'"}));
  EXPECT_TRUE(FailsAt("[[device]]\nalias = \"db\"\n", 1, 1, {"device[0]: a [[device]] needs 'match'", "alias"}));
  EXPECT_TRUE(FailsAt("[[device]]\nmatch = \"\"\n", 2, 9, {"device[0].match: must not be empty"}));
  EXPECT_TRUE(FailsAt("[[device]]\nmatch = \"naa.*6\"\n", 2, 9, {"device[0].match", "'*' may only end a match"}));
  EXPECT_TRUE(FailsAt("[[device]]\nmatch = \"a\"\nalias = \"db\"\n[[device]]\nmatch = \"b\"\nalias = \"db\"\n", 6, 9,
                      {"device[1].alias: alias 'db' is already given by the [[device]] at test.toml:1"}));
  EXPECT_TRUE(FailsAt("[[device]]\nmatch = \"a*\"\n[[device]]\nmatch = \"a*\"\n", 4, 9,
                      {"device[1].match: 'a*' is already matched by the [[device]] at test.toml:1"}));
  EXPECT_TRUE(FailsAt("[[device]]\nmatch = \"a\"\nalias = \"my db\"\n", 3, 9,
                      {"device[0].alias: 'my db' is not a name"}));
}

TEST(ConfigErrors, HostIdentityMustBeWellFormed) {
  EXPECT_TRUE(FailsAt("[host]\nnvme_host_id = \"6d706174-6800-4000-8000-00000000000\"\n", 2, 16,
                      {"host.nvme_host_id: '6d706174-6800-4000-8000-00000000000' is not a UUID"}));
  EXPECT_TRUE(FailsAt("[host]\nnvme_host_id = \"6d7061746800400080000000000000001\"\n", 2, 16, {"is not a UUID"}));
  EXPECT_TRUE(FailsAt("[host]\nnvme_host_id = \"00000000-0000-0000-0000-000000000000\"\n", 2, 16,
                      {"host.nvme_host_id: must not be all zeros"}));
  EXPECT_TRUE(FailsAt("[host]\nnvme_host_nqn = \"host1\"\n", 2, 17, {"host.nvme_host_nqn: 'host1' is not an NQN"}));
  EXPECT_TRUE(FailsAt("[host]\niscsi_initiator = \"iqn.2026 host\"\n", 2, 19,
                      {"host.iscsi_initiator: 'iqn.2026 host' is not an iSCSI name"}));
  const Result<Config> ok = Parse("[host]\nnvme_host_id = \"00112233-4455-6677-8899-AABBCCDDEEFF\"\n");
  ASSERT_TRUE(ok.has_value()) << ok.error().ToString();
  EXPECT_EQ(ok->host.nvme_host_id, (std::array<std::uint8_t, 16>{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                                                 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}));
}

// Replaces the first `from` in kArray by `to`.
std::string ArrayWith(std::string_view from, std::string_view to) {
  std::string text(kArray);
  const std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(ConfigErrors, ArraysAreCheckedValueByValue) {
  // kArray's lines: 2 [[sim.scsi_array]], 3 name, 4 port_group, 5 id, 6 ports, 7 lu, 8 naa.
  EXPECT_TRUE(FailsAt(ArrayWith("name = \"array0\"", "name = \"array 0\""), 3, 8,
                      {"sim.scsi_array[0].name: 'array 0' is not a name"}));
  EXPECT_TRUE(FailsAt(ArrayWith("name = \"array0\"", "vendor = \"X\""), 2, 1,
                      {"sim.scsi_array[0]: missing key 'name'"}));
  EXPECT_TRUE(FailsAt(ArrayWith("name = \"array0\"", "name = \"a\"\nvendor = \"TOO-LONG-VENDOR\""), 4, 10,
                      {"sim.scsi_array[0].vendor: 'TOO-LONG-VENDOR' must be 1 to 8 printable ASCII characters"}));
  EXPECT_TRUE(FailsAt(ArrayWith("name = \"array0\"", "name = \"a\"\nalua = \"yes\""), 4, 8,
                      {"sim.scsi_array[0].alua: unknown value 'yes'; expected one of: none, implicit, explicit, "
                       "both"}));
  EXPECT_TRUE(FailsAt(ArrayWith("name = \"array0\"", "name = \"a\"\ntransition_secs = 256"), 4, 19,
                      {"sim.scsi_array[0].transition_secs: must be between 0 and 255 (got 256)"}));
  EXPECT_TRUE(FailsAt(ArrayWith("id = 1", "state = \"transitioning\""), 5, 11,
                      {"sim.scsi_array[0].port_group[0].state: unknown value 'transitioning'", "active/optimized"}));
  EXPECT_TRUE(FailsAt(ArrayWith("ports = [1, 2]", "ports = [1, 0]"), 6, 15,
                      {"sim.scsi_array[0].port_group[0].ports[1]: must be between 1 and 65535 (got 0)"}));
  EXPECT_TRUE(FailsAt(ArrayWith("ports = [1, 2]", "ports = []"), 6, 11,
                      {"sim.scsi_array[0].port_group[0].ports: a port group needs at least one port"}));
  EXPECT_TRUE(FailsAt(ArrayWith("  ports = [1, 2]\n", ""), 4, 3, {"a port group needs at least one port"}));
  // A port in two groups, and a port twice in one group.
  EXPECT_TRUE(FailsAt(ArrayWith("ports = [1, 2]", "ports = [1, 2]\n  [[sim.scsi_array.port_group]]\n  id = 2\n  "
                                                  "ports = [3, 2]"),
                      9, 15, {"sim.scsi_array[0].port_group[1].ports[1]: port 2 of array 'array0' is already in port "
                              "group 1"}));
  EXPECT_TRUE(FailsAt(ArrayWith("ports = [1, 2]", "ports = [2, 2]"), 6, 15, {"port 2 of array 'array0' is already"}));
  EXPECT_TRUE(FailsAt(ArrayWith("ports = [1, 2]", "ports = [1]\n  [[sim.scsi_array.port_group]]\n  id = 1\n  "
                                                  "ports = [2]"),
                      8, 8, {"sim.scsi_array[0].port_group[1].id: port group id 1 is used twice in array 'array0'"}));
  EXPECT_TRUE(FailsAt(ArrayWith("  [[sim.scsi_array.port_group]]\n  id = 1\n  ports = [1, 2]\n", ""), 2, 1,
                      {"sim.scsi_array[0]: array 'array0' needs at least one [[sim.scsi_array.port_group]]"}));
}

TEST(ConfigErrors, LogicalUnitsAreCheckedValueByValue) {
  EXPECT_TRUE(FailsAt(ArrayWith("naa = \"60014050abcd00000000000000000001\"", "naa = \"60014050abcd\""), 8, 9,
                      {"sim.scsi_array[0].lu[0].naa: '60014050abcd' is not 32 hex digits"}));
  EXPECT_TRUE(FailsAt(ArrayWith("naa = \"60014050abcd00000000000000000001\"",
                                "naa = \"60014050abcd000000000000000000010\""),
                      8, 9, {"is not 32 hex digits"}));
  EXPECT_TRUE(FailsAt(ArrayWith("naa = \"60014050abcd00000000000000000001\"",
                                "naa = \"60014050abcd0000000000000000000g\""),
                      8, 9, {"is not 32 hex digits"}));
  EXPECT_TRUE(FailsAt(ArrayWith("naa = \"60014050abcd00000000000000000001\"",
                                "naa = \"50014050abcd00000000000000000001\""),
                      8, 9, {"sim.scsi_array[0].lu[0].naa", "not an NAA type 6 designator"}));
  EXPECT_TRUE(FailsAt(ArrayWith("  naa = \"60014050abcd00000000000000000001\"\n", "  lun = 1\n"), 7, 3,
                      {"sim.scsi_array[0].lu[0]: missing key 'naa'"}));
  EXPECT_TRUE(FailsAt(ArrayWith("  naa =", "  size_mib = 0\n  naa ="), 8, 14,
                      {"sim.scsi_array[0].lu[0].size_mib: must be between 1 and"}));
  for (const char* bad : {"1000", "256", "8192", "0", "-512"}) {
    SCOPED_TRACE(bad);
    EXPECT_TRUE(FailsAt(ArrayWith("  naa =", std::string("  block_size = ") + bad + "\n  naa ="), 8, 16,
                        {"sim.scsi_array[0].lu[0].block_size:"}));
  }
  EXPECT_TRUE(FailsAt(ArrayWith("  naa =", "  block_size = 1000\n  naa ="), 8, 16,
                      {"must be a power of two from 512 to 4096 (got 1000)"}));
  EXPECT_TRUE(FailsAt(ArrayWith("  naa =", "  lun = 16384\n  naa ="), 8, 9,
                      {"sim.scsi_array[0].lu[0].lun: must be between 0 and 16383 (got 16384)"}));
  const std::string second_lu =
      "  [[sim.scsi_array.lu]]\n  lun = 0\n  naa = \"60014050abcd00000000000000000002\"\n";
  EXPECT_TRUE(FailsAt(std::string(kArray) + second_lu, 10, 9,
                      {"sim.scsi_array[0].lu[1].lun: LUN 0 is used twice in array 'array0'"}));
  const std::string same_naa = "  [[sim.scsi_array.lu]]\n  lun = 1\n  naa = \"60014050ABCD00000000000000000001\"\n";
  EXPECT_TRUE(FailsAt(std::string(kArray) + same_naa, 11, 9,
                      {"sim.scsi_array[0].lu[1].naa: NAA 60014050abcd00000000000000000001 is already the identity "
                       "of array 'array0' LUN 0"}));
  EXPECT_TRUE(FailsAt(ArrayWith("  [[sim.scsi_array.lu]]\n  naa = \"60014050abcd00000000000000000001\"\n", ""), 2, 1,
                      {"array 'array0' needs at least one [[sim.scsi_array.lu]]"}));
  EXPECT_TRUE(FailsAt(ArrayWith("  naa =", "  serial = \"tab\\there\"\n  naa ="), 8, 12,
                      {"sim.scsi_array[0].lu[0].serial: must be at most 64 printable ASCII characters"}));
}

constexpr std::string_view kSubsystem = R"(
[[sim.nvme_subsystem]]
name = "s0"
ports = [1, 2]
  [[sim.nvme_subsystem.namespace]]
  nsid = 1
  nguid = "6d706174000000000000000000000001"
  [[sim.nvme_subsystem.ana]]
  port = 2
  group = 1
  state = "inaccessible"
)";

std::string SubsystemWith(std::string_view from, std::string_view to) {
  std::string text(kSubsystem);
  const std::size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(ConfigErrors, SubsystemsAreCheckedValueByValue) {
  ASSERT_TRUE(Parse(kSubsystem).has_value());
  // kSubsystem's lines: 2 header, 3 name, 4 ports, 5 namespace, 6 nsid, 7 nguid, 8 ana, 9 port, 10 group, 11 state.
  EXPECT_TRUE(FailsAt(SubsystemWith("ports = [1, 2]", "ports = []"), 4, 9,
                      {"sim.nvme_subsystem[0].ports: a subsystem needs at least one port"}));
  EXPECT_TRUE(FailsAt(SubsystemWith("ports = [1, 2]", "ports = [1, 1]"), 4, 13,
                      {"sim.nvme_subsystem[0].ports[1]: port 1 is listed twice in subsystem 's0'"}));
  EXPECT_TRUE(FailsAt(SubsystemWith("ports = [1, 2]", "ports = [1, 2]\nnqn = \"s0\""), 5, 7,
                      {"sim.nvme_subsystem[0].nqn: 's0' is not an NQN"}));
  EXPECT_TRUE(FailsAt(SubsystemWith("ports = [1, 2]", "ports = [1, 2]\nanatt_secs = -1"), 5, 14,
                      {"sim.nvme_subsystem[0].anatt_secs: must be between 0 and 255 (got -1)"}));
  EXPECT_TRUE(FailsAt(SubsystemWith("nsid = 1", "nsid = 0"), 6, 10,
                      {"sim.nvme_subsystem[0].namespace[0].nsid: must be between 1 and 1024 (got 0)"}));
  EXPECT_TRUE(FailsAt(SubsystemWith("nguid = \"6d706174000000000000000000000001\"", "nguid = \"6d7061\""), 7, 11,
                      {"sim.nvme_subsystem[0].namespace[0].nguid: '6d7061' is not 32 hex digits"}));
  EXPECT_TRUE(FailsAt(SubsystemWith("nguid = \"6d706174000000000000000000000001\"",
                                    "nguid = \"00000000000000000000000000000000\""),
                      7, 11, {"sim.nvme_subsystem[0].namespace[0].nguid: must not be all zeros"}));
  EXPECT_TRUE(FailsAt(SubsystemWith("  nguid = \"6d706174000000000000000000000001\"\n", ""), 5, 3,
                      {"sim.nvme_subsystem[0].namespace[0]: missing key 'nguid'"}));
  EXPECT_TRUE(FailsAt(SubsystemWith("nsid = 1", "nsid = 1\n  size_mib = 0"), 7, 14,
                      {"sim.nvme_subsystem[0].namespace[0].size_mib: must be between 1 and"}));
  EXPECT_TRUE(FailsAt(SubsystemWith("nsid = 1", "nsid = 1\n  block_size = 8192"), 7, 16,
                      {"sim.nvme_subsystem[0].namespace[0].block_size: must be a power of two from 512 to 4096"}));
  EXPECT_TRUE(FailsAt(SubsystemWith("nsid = 1", "nsid = 1\n  ana_group = 129"), 7, 15,
                      {"sim.nvme_subsystem[0].namespace[0].ana_group: must be between 1 and 128 (got 129)"}));
  const std::string twice = SubsystemWith("  [[sim.nvme_subsystem.ana]]",
                                          "  [[sim.nvme_subsystem.namespace]]\n  nsid = 1\n  nguid = "
                                          "\"6d706174000000000000000000000002\"\n  [[sim.nvme_subsystem.ana]]");
  EXPECT_TRUE(FailsAt(twice, 9, 10,
                      {"sim.nvme_subsystem[0].namespace[1].nsid: NSID 1 is used twice in subsystem 's0'"}));
  const std::string same_nguid = SubsystemWith("  [[sim.nvme_subsystem.ana]]",
                                               "  [[sim.nvme_subsystem.namespace]]\n  nsid = 2\n  nguid = "
                                               "\"6d706174000000000000000000000001\"\n  [[sim.nvme_subsystem.ana]]");
  EXPECT_TRUE(FailsAt(same_nguid, 10, 11, {"namespace[1].nguid: NGUID 6d706174000000000000000000000001 is already "
                                           "used by NSID 1 in subsystem 's0'"}));
  EXPECT_TRUE(FailsAt(SubsystemWith("port = 2", "port = 3"), 9, 10,
                      {"sim.nvme_subsystem[0].ana[0].port: subsystem 's0' has no port 3 (its ports: 1, 2)"}));
  EXPECT_TRUE(FailsAt(SubsystemWith("state = \"inaccessible\"", "state = \"down\""), 11, 11,
                      {"sim.nvme_subsystem[0].ana[0].state: unknown value 'down'", "persistent-loss"}));
  EXPECT_TRUE(FailsAt(std::string(kSubsystem) + "  [[sim.nvme_subsystem.ana]]\n  port = 2\n  group = 1\n", 12, 3,
                      {"sim.nvme_subsystem[0].ana[1]: the state of ANA group 1 on port 2 is given twice"}));
  EXPECT_TRUE(FailsAt(SubsystemWith("  [[sim.nvme_subsystem.namespace]]\n  nsid = 1\n  nguid = "
                                    "\"6d706174000000000000000000000001\"\n",
                                    ""),
                      2, 1, {"subsystem 's0' needs at least one [[sim.nvme_subsystem.namespace]]"}));
}

TEST(ConfigErrors, NamesAreUniqueAndPathsReachRealPorts) {
  const std::string fabric = std::string(kArray) + std::string(kSubsystem);
  ASSERT_TRUE(Parse(fabric).has_value());
  const int base = static_cast<int>(std::count(fabric.begin(), fabric.end(), '\n'));  // lines before the path
  const auto with_path = [&](std::string_view body) { return fabric + "[[sim.path]]\n" + std::string(body); };

  EXPECT_TRUE(Parse(with_path("name = \"p1\"\ntarget = \"array0\"\nport = 2\n")).has_value());
  EXPECT_TRUE(Parse(with_path("name = \"p1\"\ntarget = \"s0\"\nport = 2\n")).has_value());
  EXPECT_TRUE(FailsAt(with_path("name = \"p1\"\ntarget = \"array1\"\n"), base + 3, 10,
                      {"sim.path[0].target: no array or subsystem is named 'array1' (targets: array0, s0)"}));
  EXPECT_TRUE(FailsAt(with_path("name = \"p1\"\ntarget = \"array0\"\nport = 3\n"), base + 4, 8,
                      {"sim.path[0].port: array 'array0' has no port 3 (its ports: 1, 2)"}));
  EXPECT_TRUE(FailsAt(with_path("name = \"p1\"\ntarget = \"s0\"\nport = 7\n"), base + 4, 8,
                      {"sim.path[0].port: subsystem 's0' has no port 7 (its ports: 1, 2)"}));
  EXPECT_TRUE(FailsAt(with_path("target = \"s0\"\n"), base + 1, 1, {"sim.path[0]: missing key 'name'"}));
  EXPECT_TRUE(FailsAt(with_path("name = \"p1\"\n"), base + 1, 1, {"sim.path[0]: missing key 'target'"}));
  EXPECT_TRUE(FailsAt(with_path("name = \"p1\"\ntarget = \"s0\"\nlatency_ms = -1\n"), base + 4, 14,
                      {"sim.path[0].latency_ms: must be between 0 and 60000 ms (got -1)"}));
  EXPECT_TRUE(FailsAt(with_path("name = \"p1\"\ntarget = \"s0\"\n[[sim.path]]\nname = \"p1\"\ntarget = \"array0\"\n"),
                      base + 5, 8, {"sim.path[1].name: path name 'p1' is already used at test.toml:" +
                                    std::to_string(base + 1)}));
  // Arrays and subsystems share one space of names: a path must know which one it means.
  std::string clash(kArray);
  clash += SubsystemWith("name = \"s0\"", "name = \"array0\"");
  EXPECT_TRUE(FailsAt(clash, 11, 8,
                      {"sim.nvme_subsystem[0].name: target name 'array0' is already used at test.toml:2"}));
  std::string two_arrays(kArray);
  two_arrays += ArrayWith("60014050abcd00000000000000000001", "60014050abcd00000000000000000002");
  EXPECT_TRUE(FailsAt(two_arrays, 11, 8, {"sim.scsi_array[1].name: target name 'array0' is already used"}));
  std::string same_nqn(kSubsystem);
  same_nqn += SubsystemWith("name = \"s0\"", "name = \"s1\"\nnqn = \"nqn.2026-11.io.mpath.sim:s0\"");
  EXPECT_TRUE(FailsAt(same_nqn, 15, 7,
                      {"sim.nvme_subsystem[1].nqn: NQN 'nqn.2026-11.io.mpath.sim:s0' is already used by "
                       "subsystem 's0'"}));
}

// ---------------------------------------------------------------------------------------------------------------
// DeviceFor

TEST(ConfigDeviceFor, ExactMatchesAndPrefixesInFileOrder) {
  const Result<Config> c = Parse(R"(
[[device]]
match = "naa.600140500000000000000000000000a1"
alias = "exact"
[[device]]
match = "naa.6001405*"
alias = "prefix"
[[device]]
match = "nguid.6d70*"
alias = "nvme"
[[device]]
match = "*"
alias = "everything"
)");
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  const auto alias = [&](std::string_view identity) -> std::string {
    const DeviceSettings* d = c->DeviceFor(identity);
    return d == nullptr ? "(none)" : d->alias;
  };
  EXPECT_EQ(alias("naa.600140500000000000000000000000a1"), "exact");
  EXPECT_EQ(alias("naa.600140500000000000000000000000a2"), "prefix");
  EXPECT_EQ(alias("naa.6001405"), "prefix");
  EXPECT_EQ(alias("nguid.6d706174000000000000000000000001@nqn.2026-11.io.mpath.sim:s0/ns1"), "nvme");
  EXPECT_EQ(alias("naa.600140"), "everything");  // shorter than the prefix
  EXPECT_EQ(alias("eui.0025388b01234567"), "everything");
  EXPECT_EQ(alias(""), "everything");

  const Result<Config> exact_only = Parse("[[device]]\nmatch = \"naa.6001405\"\n");
  ASSERT_TRUE(exact_only.has_value());
  EXPECT_NE(exact_only->DeviceFor("naa.6001405"), nullptr);
  // Without the '*', a match is not a prefix.
  EXPECT_EQ(exact_only->DeviceFor("naa.60014050"), nullptr);
  EXPECT_EQ(exact_only->DeviceFor("NAA.6001405"), nullptr);
  EXPECT_EQ(Config{}.DeviceFor("naa.6001405"), nullptr);
}

TEST(ConfigDeviceFor, ADeviceWithAnEmptyMatchTakesNothing) {
  Config config;
  config.devices.push_back(DeviceSettings{.match = "", .alias = "x", .head = {}, .source = ""});
  EXPECT_EQ(config.DeviceFor(""), nullptr);
  EXPECT_EQ(config.DeviceFor("naa.6"), nullptr);
}

// ---------------------------------------------------------------------------------------------------------------
// ApplyTo and ToRegistryOptions

TEST(HeadSettingsApplyTo, SetKeysOverrideAndUnsetKeysKeepTheBase) {
  HeadOptions base;
  base.policy = IoPolicyKind::kQueueDepth;
  base.delayed_removal = 9s;
  base.write_quiesce_delay = 3ms;
  base.max_same_path_retries = 2;
  base.marginal.window = 40;
  base.marginal.error_threshold = 10;
  base.max_failover_rounds = 7;  // not a config key: always the base's

  const Result<HeadOptions> unchanged = HeadSettings{}.ApplyTo(base);
  ASSERT_TRUE(unchanged.has_value());
  EXPECT_EQ(unchanged->policy, IoPolicyKind::kQueueDepth);
  EXPECT_EQ(unchanged->delayed_removal, 9s);
  EXPECT_EQ(unchanged->write_quiesce_delay, 3ms);
  EXPECT_EQ(unchanged->marginal.window, 40u);
  EXPECT_EQ(unchanged->max_failover_rounds, 7u);

  HeadSettings s;
  s.iopolicy = IoPolicyKind::kServiceTime;
  s.delayed_removal_secs = 2.5;
  s.write_quiesce_secs = 0.01;
  s.max_same_path_retries = 0;
  s.marginal_window = 16;
  s.marginal_error_threshold = 3;
  s.marginal_latency_factor = 0;
  s.marginal_probe_interval_secs = 0.25;
  s.marginal_probes_to_reinstate = 9;
  const Result<HeadOptions> applied = s.ApplyTo(base);
  ASSERT_TRUE(applied.has_value()) << applied.error().ToString();
  EXPECT_EQ(applied->policy, IoPolicyKind::kServiceTime);
  EXPECT_EQ(applied->delayed_removal, 2500ms);
  EXPECT_EQ(applied->write_quiesce_delay, 10ms);
  EXPECT_EQ(applied->max_same_path_retries, 0u);
  EXPECT_EQ(applied->marginal.window, 16u);
  EXPECT_EQ(applied->marginal.error_threshold, 3u);
  EXPECT_EQ(applied->marginal.latency_factor, 0.0);
  EXPECT_EQ(applied->marginal.probe_interval, 250ms);
  EXPECT_EQ(applied->marginal.probes_to_reinstate, 9u);
  EXPECT_EQ(applied->max_failover_rounds, 7u);
}

TEST(HeadSettingsApplyTo, QueueIfNoPathFalseMeansNoDelayedRemovalWhateverElseSays) {
  HeadOptions base;
  base.delayed_removal = 30s;
  HeadSettings off;
  off.queue_if_no_path = false;
  EXPECT_EQ(off.ApplyTo(base)->delayed_removal, 0s);
  off.delayed_removal_secs = 60;
  EXPECT_EQ(off.ApplyTo(base)->delayed_removal, 0s);
  HeadSettings on;
  on.queue_if_no_path = true;
  EXPECT_EQ(on.ApplyTo(base)->delayed_removal, 30s);
  on.delayed_removal_secs = 60;
  EXPECT_EQ(on.ApplyTo(base)->delayed_removal, 60s);
}

TEST(HeadSettingsApplyTo, RefusesWhatTheHeadWouldRefuse) {
  HeadSettings negative;
  negative.delayed_removal_secs = -1;
  const Result<HeadOptions> a = negative.ApplyTo({});
  ASSERT_FALSE(a.has_value());
  EXPECT_THAT(a.error().message(), HasSubstr("delayed_removal_secs"));
  HeadSettings threshold;
  threshold.marginal_window = 4;
  threshold.marginal_error_threshold = 5;
  const Result<HeadOptions> b = threshold.ApplyTo({});
  ASSERT_FALSE(b.has_value());
  EXPECT_THAT(b.error().message(), HasSubstr("threshold"));
  HeadSettings probe;
  probe.marginal_probe_interval_secs = 0;
  EXPECT_FALSE(probe.ApplyTo({}).has_value());
}

TEST(ConfigToRegistryOptions, OptInAndHeadDefaultsComeFromTheFile) {
  const Result<Config> c = Parse(R"(
[defaults]
multipath = "always"
opt_out_transports = ["ufs", "usb"]
iopolicy = "qd"
delayed_removal_secs = 45
queue_if_no_path = false
write_quiesce_secs = 0.002
max_same_path_retries = 3
  [defaults.marginal]
  window = 20
  error_threshold = 6
  latency_factor = 8
  probe_interval_secs = 0.5
  probes_to_reinstate = 2
)");
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  const Result<RegistryOptions> r = c->ToRegistryOptions();
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->opt_in.mode, MultipathMode::kAlways);
  EXPECT_EQ(r->opt_in.opted_out_transports, (std::vector<std::string>{"ufs", "usb"}));
  EXPECT_EQ(r->head.policy, IoPolicyKind::kQueueDepth);
  EXPECT_EQ(r->head.delayed_removal, 0s);  // queue_if_no_path = false
  EXPECT_EQ(r->head.write_quiesce_delay, 2ms);
  EXPECT_EQ(r->head.max_same_path_retries, 3u);
  EXPECT_EQ(r->head.marginal.window, 20u);
  EXPECT_EQ(r->head.marginal.error_threshold, 6u);
  EXPECT_EQ(r->head.marginal.latency_factor, 8.0);
  EXPECT_EQ(r->head.marginal.probe_interval, 500ms);
  EXPECT_EQ(r->head.marginal.probes_to_reinstate, 2u);
  // Not config keys: the core's defaults.
  EXPECT_EQ(r->head.max_failover_rounds, HeadOptions{}.max_failover_rounds);
  EXPECT_EQ(r->head.latency_sample_interval, HeadOptions{}.latency_sample_interval);
  EXPECT_EQ(r->head_name_prefix, RegistryOptions{}.head_name_prefix);

  const Result<Config> queueing = Parse("[defaults]\ndelayed_removal_secs = 45\n");
  ASSERT_TRUE(queueing.has_value());
  EXPECT_EQ(queueing->ToRegistryOptions()->head.delayed_removal, 45s);
}

TEST(ConfigToRegistryOptions, EmptyConfigIsTheCoresDefaults) {
  const Result<RegistryOptions> r = Config{}.ToRegistryOptions();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->opt_in.mode, MultipathMode::kOn);
  EXPECT_TRUE(r->opt_in.opted_out_transports.empty());
  EXPECT_EQ(r->head.policy, HeadOptions{}.policy);
  EXPECT_EQ(r->head.delayed_removal, HeadOptions{}.delayed_removal);
  EXPECT_EQ(r->head.marginal.window, HeadOptions{}.marginal.window);
}

TEST(ConfigToRegistryOptions, AConfigBuiltInCodeIsCheckedToo) {
  Config config;
  config.defaults.marginal_window = 0;
  const Result<RegistryOptions> r = config.ToRegistryOptions();
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message(), HasSubstr("window"));
}

// ---------------------------------------------------------------------------------------------------------------
// LoadConfig

class LoadConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mpath_config_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, std::string_view text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(LoadConfigTest, AMissingFileIsNamedWithTheOsError) {
  const std::string path = (dir_ / "nowhere.toml").string();
  const Result<Config> c = LoadConfig(path);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code(), Errc::kNotFound);
  EXPECT_THAT(c.error().message(), HasSubstr(path));
  EXPECT_THAT(c.error().message(), HasSubstr("No such file or directory"));
}

TEST_F(LoadConfigTest, ADirectoryIsNamedWithTheOsError) {
  const Result<Config> c = LoadConfig(dir_.string());
  ASSERT_FALSE(c.has_value());
  EXPECT_THAT(c.error().message(), HasSubstr(dir_.string()));
  EXPECT_THAT(c.error().message(), HasSubstr("Is a directory"));
}

TEST_F(LoadConfigTest, ErrorsInAFileNameTheFile) {
  const std::string path = Write("bad.toml", "[defaults]\n\niopolicy = \"slow\"\n");
  const Result<Config> c = LoadConfig(path);
  ASSERT_FALSE(c.has_value());
  EXPECT_THAT(c.error().message(), StartsWith(path + ":3:12: defaults.iopolicy: unknown iopolicy 'slow'"));
  const std::string syntax = Write("syntax.toml", "[sim\n");
  const Result<Config> s = LoadConfig(syntax);
  ASSERT_FALSE(s.has_value());
  EXPECT_THAT(s.error().message(), StartsWith(syntax + ":1:5: "));
}

TEST_F(LoadConfigTest, AGoodFileLoadsWithItsNameInTheSources) {
  const std::string path =
      Write("good.toml", std::string(kArray) + "[[sim.path]]\nname = \"p\"\ntarget = \"array0\"\n");
  const Result<Config> c = LoadConfig(path);
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  EXPECT_EQ(c->file, path);
  EXPECT_EQ(c->sim.paths.at(0).source, path + ":9");
}

TEST_F(LoadConfigTest, AnEndlessFileIsRefusedNotReadForever) {
  const Result<Config> c = LoadConfig("/dev/zero");
  ASSERT_FALSE(c.has_value());
  EXPECT_THAT(c.error().message(), HasSubstr("/dev/zero"));
  EXPECT_THAT(c.error().message(), HasSubstr("larger than"));
}

}  // namespace
}  // namespace mpath::daemon
