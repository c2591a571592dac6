// The mpath configuration file (TOML; the format is documented in docs/config.md): defaults for every head,
// per-device overrides, the host's identity on the fabric, and the fabric itself (simulated arrays and subsystems and
// the paths to them; real iSCSI and NVMe/TCP targets join it in later issues).
//
// Parsing is strict: a syntax error, an unknown key, a value of the wrong type or an impossible value fails with
// "<file>:<line>:<column>: <what is wrong>", and nothing half-parsed is returned.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mpath/core/error.h"
#include "mpath/core/head_options.h"
#include "mpath/core/registry.h"
#include "mpath/core/types.h"

namespace mpath::daemon {

// [defaults] and each [[device]]: what a head is given. In [[device]] every key is optional and overrides the default.
struct HeadSettings {
  std::optional<IoPolicyKind> iopolicy;                 // iopolicy = "numa" | "round-robin" | "queue-depth" | "service-time"
  std::optional<double> delayed_removal_secs;           // delayed_removal_secs = 30
  // queue_if_no_path = false makes a head with no usable path fail I/O at once (delayed removal 0), whatever
  // delayed_removal_secs says.
  std::optional<bool> queue_if_no_path;
  std::optional<double> write_quiesce_secs;             // write_quiesce_secs = 0.0
  std::optional<std::uint32_t> max_same_path_retries;
  // [defaults.marginal] / [device.marginal]
  std::optional<std::uint32_t> marginal_window;          // window = 32
  std::optional<std::uint32_t> marginal_error_threshold; // error_threshold = 8
  std::optional<double> marginal_latency_factor;         // latency_factor = 20.0
  std::optional<double> marginal_probe_interval_secs;    // probe_interval_secs = 1.0
  std::optional<std::uint32_t> marginal_probes_to_reinstate;  // probes_to_reinstate = 5

  // Applies the keys that are set on top of `base`; validated by HeadOptions::Validate.
  [[nodiscard]] Result<HeadOptions> ApplyTo(HeadOptions base) const;
};

// [[device]]: overrides for one head, chosen by its identity ("naa.6001405...", "nguid...@nqn.../ns1") or by the
// prefix of it given with a trailing '*'.
struct DeviceSettings {
  std::string match;   // match = "naa.60014050abcd*"
  std::string alias;   // alias = "db0": the name listings and exports use for the head (optional)
  HeadSettings head;
  std::string source;  // "<file>:<line>" of the table, for messages
};

// [host]: who this host is on the fabric. Every path presents the same identity (PR and NVMe reservations need it).
struct HostSettings {
  std::string iscsi_initiator = "iqn.2026-11.io.mpath:host";  // initiator port name (SCSI PR TransportIDs)
  std::string nvme_host_nqn = "nqn.2014-08.org.nvmexpress:uuid:6d706174-6800-4000-8000-000000000001";
  std::array<std::uint8_t, 16> nvme_host_id{0x6d, 0x70, 0x61, 0x74, 0x68, 0x00, 0x40, 0x00,
                                            0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01};  // host_id = "<uuid>"
};

// [[sim.scsi_array]]
struct SimPortGroup {                // [[sim.scsi_array.port_group]]
  std::uint16_t id = 0;              // id = 1
  std::string state = "active/optimized";  // active/optimized | active/non-optimized | standby | unavailable | offline
  bool preferred = false;
  std::vector<std::uint16_t> ports;  // ports = [1, 2]: relative target port identifiers
};
struct SimLogicalUnit {              // [[sim.scsi_array.lu]]
  std::uint64_t lun = 0;
  std::uint64_t size_mib = 64;       // size_mib = 64
  std::uint32_t block_size = 512;
  std::array<std::uint8_t, 16> naa{};  // naa = "60014050abcd0000000000000000000a" (32 hex digits, NAA 6)
  std::string serial;
};
struct SimScsiArray {
  std::string name;                  // name = "array0": paths refer to it
  std::string vendor = "MPATHSIM";
  std::string product = "ALUA-ARRAY";
  std::uint8_t tpgs = 3;             // alua = "none" | "implicit" | "explicit" | "both"  -> 0 | 1 | 2 | 3
  std::uint8_t transition_secs = 10;
  std::vector<SimPortGroup> port_groups;
  std::vector<SimLogicalUnit> lus;
};

// [[sim.nvme_subsystem]]
struct SimNamespace {                // [[sim.nvme_subsystem.namespace]]
  std::uint32_t nsid = 1;
  std::uint64_t size_mib = 64;
  std::uint32_t block_size = 512;
  std::array<std::uint8_t, 16> nguid{};  // nguid = "32 hex digits"
  std::uint32_t ana_group = 1;
};
struct SimAnaState {                 // [[sim.nvme_subsystem.ana]]: initial state of a group as seen through a port
  std::uint16_t port = 1;
  std::uint32_t group = 1;
  std::string state = "optimized";   // optimized | non-optimized | inaccessible | persistent-loss | change
};
struct SimNvmeSubsystem {
  std::string name;                  // name = "subsys0"
  std::string nqn;                   // default: "nqn.2026-11.io.mpath.sim:<name>"
  std::vector<std::uint16_t> ports = {1, 2};
  std::uint8_t anatt_secs = 10;
  std::vector<SimNamespace> namespaces;
  std::vector<SimAnaState> ana;
};

// [[sim.path]]: one connection: to port `port` of the array or subsystem named `target`.
struct SimPath {
  std::string name;                  // name = "a0-tp1": unique; the path's name in listings (NVMe: + "n<nsid>")
  std::string target;                // target = "array0" | "subsys0"
  std::uint16_t port = 1;            // relative target port (SCSI) or NVMe port id
  double latency_ms = 0.0;           // latency_ms = 0.2: added to every command (link fault "latency")
  std::string source;                // "<file>:<line>"
};

struct SimFabric {                   // [sim]
  std::uint64_t seed = 1;
  std::vector<SimScsiArray> scsi_arrays;
  std::vector<SimNvmeSubsystem> nvme_subsystems;
  std::vector<SimPath> paths;
};

// [export]: the NBD server of `mpath daemon` (one export per head, named by its alias, else its identity).
struct ExportSettings {
  bool enabled = true;                              // enabled = false: no NBD server
  std::string unix_socket = "/run/mpath/nbd.sock";  // unix_socket = "": no unix socket (then tcp_port is required)
  std::optional<std::uint16_t> tcp_port;            // tcp_port = 10809: TCP is off unless set
  std::string tcp_address = "127.0.0.1";            // tcp_address = "::1" (only with tcp_port)
  bool read_only = false;                           // read_only = true: every export refuses writes and trims
  std::string default_export;                       // default_export = "db0": for clients that name no export;
                                                    // unset: the only head, when there is exactly one
  std::uint32_t max_connections = 64;               // 1..4096
  std::uint32_t queue_depth = 128;                  // requests in flight per connection, 1..4096
};

struct Config {
  std::string file;                  // where it came from ("<string>" when parsed from text)
  // [defaults]
  MultipathMode multipath = MultipathMode::kOn;   // multipath = "off" | "on" | "always"
  std::vector<std::string> opted_out_transports;  // opt_out_transports = ["ufs"]
  std::string alua = "implicit";                  // alua = "implicit" | "explicit"
  HeadSettings defaults;
  std::vector<DeviceSettings> devices;
  HostSettings host;
  ExportSettings nbd_export;                      // [export]
  SimFabric sim;

  // The registry's options: opt-in from `multipath` and `opted_out_transports`, head defaults from `defaults` over
  // the core's defaults.
  [[nodiscard]] Result<RegistryOptions> ToRegistryOptions() const;
  // The first [[device]] whose match takes `identity`; nullptr when none does.
  [[nodiscard]] const DeviceSettings* DeviceFor(std::string_view identity) const;
};

// Parses `text` as if it were the file `file_name` (for messages). Checks every value and every cross-reference
// (paths name existing targets and ports; names, LUNs, NSIDs and port group ports are unique; identities are
// well-formed). `foreign_tables` are top-level keys another reader of the same file owns (a scenario's "scenario",
// "step", "assert"): they are skipped rather than refused as unknown.
[[nodiscard]] Result<Config> ParseConfig(std::string_view text, std::string_view file_name = "<string>",
                                         std::span<const std::string_view> foreign_tables = {});
// Reads and parses the file; a file that cannot be read fails naming it and the OS error.
[[nodiscard]] Result<Config> LoadConfig(const std::string& path);

}  // namespace mpath::daemon
