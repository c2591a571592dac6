// The `mpath` subcommands other than demo and scenario (demo.h): the daemon, and the clients of its control socket.
// Each returns the process exit code.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace mpath::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // the command ran and failed: the daemon refused, or could not be reached
inline constexpr int kExitUsage = 2;   // bad arguments or a bad config file: nothing was attempted

// Where clients and the daemon meet unless told otherwise: $MPATH_CONTROL, else /run/mpath/control.sock.
[[nodiscard]] std::string DefaultControlPath();

struct DaemonOptions {
  std::string config;           // --config FILE
  std::string control;          // --control PATH
  std::size_t io_threads = 2;   // --io-threads N (0: one per CPU)
  std::optional<std::string> nbd;  // --nbd PATH: the NBD export's unix socket, over [export] unix_socket and enabled
  bool no_nbd = false;          // --no-nbd: no NBD export, whatever [export] says
};
// Builds the fabric, serves the control socket and the NBD export until SIGTERM or SIGINT (or a "shutdown" request),
// then stops cleanly: 0 after a clean stop, 1 when the fabric or a socket could not be set up, 2 for a bad config
// file.
int RunDaemon(const DaemonOptions& options);

struct ClientOptions {
  std::string control;
  bool json = false;            // -o json
};

int RunList(const ClientOptions& options);
int RunShow(const ClientOptions& options, const std::string& head);
int RunSetPolicy(const ClientOptions& options, const std::string& head, const std::string& policy);
// action: "fail" | "reinstate"
int RunPath(const ClientOptions& options, const std::string& action, const std::string& path);

struct PrOptions {
  std::string action;           // register | unregister | reserve | release | preempt | preempt-abort | clear |
                                // read-keys | read-reservation
  std::string head;
  std::optional<std::string> key;     // --key K: decimal or 0x-hex
  std::optional<std::string> sa_key;  // --sa-key K
  std::optional<std::string> type;    // --type T
  bool ignore_existing = false;
  bool aptpl = false;
};
int RunPr(const ClientOptions& options, const PrOptions& pr);

// args: "key=value" each.
int RunInject(const ClientOptions& options, const std::string& target, const std::string& fault,
              const std::vector<std::string>& args);

}  // namespace mpath::cli
