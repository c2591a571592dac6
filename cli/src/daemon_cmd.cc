// `mpath daemon`: config -> fabric -> control socket -> NBD export -> wait for a signal -> clean stop.
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "commands.h"
#include "mpath/daemon/config.h"
#include "mpath/daemon/control.h"
#include "mpath/daemon/exports.h"
#include "mpath/daemon/fabric.h"
#include "mpath/nbd/server.h"

namespace mpath::cli {
namespace {

// The signals that stop the daemon, taken through a signalfd. They are blocked before any thread exists, so every
// thread the fabric and the server start inherits the mask and none of them is interrupted by one.
class StopSignals {
 public:
  StopSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set_, &previous_);
    fd_ = ::signalfd(-1, &set_, SFD_CLOEXEC);
  }
  ~StopSignals() {
    if (fd_ >= 0) ::close(fd_);
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  [[nodiscard]] int fd() const { return fd_; }

 private:
  sigset_t set_{};
  sigset_t previous_{};
  int fd_ = -1;
};

std::string Describe(const daemon::BuildReport::PathOutcome& outcome) {
  if (!outcome.attached) return fmt::format("path {}: FAILED: {}", outcome.path, outcome.message);
  if (outcome.multipathed) return fmt::format("path {}: attached to {}", outcome.path, outcome.head);
  return fmt::format("path {}: attached, not multipathed{}", outcome.path,
                     outcome.message.empty() ? "" : ": " + outcome.message);
}

// What the export serves on, from [export] and the command line.
daemon::ExportSettings ExportSettingsOf(const daemon::Config& config, const DaemonOptions& options) {
  daemon::ExportSettings settings = config.nbd_export;
  if (options.nbd) {
    // Naming a socket on the command line asks for the export, whatever the file says.
    settings.enabled = true;
    settings.unix_socket = *options.nbd;
  }
  if (options.no_nbd) settings.enabled = false;
  return settings;
}

// "127.0.0.1:10809", "[::1]:10809".
std::string HostPort(const std::string& address, std::uint16_t port) {
  return address.find(':') == std::string::npos ? fmt::format("{}:{}", address, port)
                                                : fmt::format("[{}]:{}", address, port);
}

}  // namespace

int RunDaemon(const DaemonOptions& options) {
  // Log lines reach a redirected stdout (a service manager's journal) as they happen.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  StopSignals signals;
  if (signals.fd() < 0) {
    fmt::print(stderr, "mpath daemon: signalfd: {}\n", std::strerror(errno));
    return kExitFailed;
  }

  auto config = daemon::LoadConfig(options.config);
  if (!config) {
    // The parser's message already reads "<file>:<line>:<column>: <what is wrong>".
    fmt::print(stderr, "{}\n", config.error().message());
    return kExitUsage;
  }

  daemon::FabricOptions fabric_options;
  fabric_options.io_threads = options.io_threads;
  auto fabric = daemon::Fabric::Create(std::move(*config), fabric_options);
  if (!fabric) {
    fmt::print(stderr, "mpath daemon: cannot create the fabric: {}\n", fabric.error().message());
    return kExitFailed;
  }
  auto report = (*fabric)->Build();
  if (!report) {
    fmt::print(stderr, "mpath daemon: cannot build the fabric: {}\n", report.error().message());
    return kExitFailed;
  }
  for (const auto& outcome : report->paths) {
    fmt::print(outcome.attached ? stdout : stderr, "{}\n", Describe(outcome));
  }
  auto heads = (*fabric)->Heads();
  if (heads.empty()) {
    fmt::print(stderr, "mpath daemon: no head came up; nothing to serve\n");
    return kExitFailed;
  }
  for (const auto& head : heads) {
    fmt::print("head {}{}: {} {}, {} path{}\n", head.name, head.alias.empty() ? "" : " (" + head.alias + ")",
               head.protocol, head.identity, head.paths.size(), head.paths.size() == 1 ? "" : "s");
  }

  // A "shutdown" request stops the daemon the way a signal does.
  int shutdown_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (shutdown_fd < 0) {
    fmt::print(stderr, "mpath daemon: eventfd: {}\n", std::strerror(errno));
    return kExitFailed;
  }
  daemon::ControlServerOptions server_options;
  server_options.on_shutdown = [shutdown_fd] {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(shutdown_fd, &one, sizeof(one));
  };
  // The default place, /run/mpath, may not exist yet on a fresh machine.
  std::error_code ignored;
  std::filesystem::path parent = std::filesystem::path(options.control).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
  auto server = daemon::ControlServer::Create(**fabric, options.control, std::move(server_options));
  if (!server) {
    fmt::print(stderr, "mpath daemon: cannot serve {}: {}\n", options.control, server.error().message());
    ::close(shutdown_fd);
    return kExitFailed;
  }
  fmt::print("serving {} (mpath list --control {})\n", options.control, options.control);

  const daemon::ExportSettings export_settings = ExportSettingsOf((*fabric)->config(), options);
  std::unique_ptr<daemon::FabricExports> catalog;
  std::unique_ptr<nbd::NbdServer> nbd_server;
  if (export_settings.enabled) {
    catalog = std::make_unique<daemon::FabricExports>(**fabric, export_settings);
    auto started = daemon::StartExportServer(**fabric, *catalog, export_settings);
    if (!started) {
      const std::string where = !export_settings.unix_socket.empty()
                                    ? export_settings.unix_socket
                                    : HostPort(export_settings.tcp_address, export_settings.tcp_port.value_or(0));
      fmt::print(stderr, "mpath daemon: cannot serve the NBD export on {}: {}\n", where, started.error().message());
      server->reset();
      fabric->reset();
      ::close(shutdown_fd);
      return kExitFailed;
    }
    nbd_server = std::move(*started);
    const std::size_t exports = catalog->List().size();
    const std::string count = fmt::format("{} export{}", exports, exports == 1 ? "" : "s");
    if (!nbd_server->unix_path().empty()) {
      fmt::print("nbd: serving {} on {} (nbdinfo --list 'nbd+unix:///?socket={}')\n", count, nbd_server->unix_path(),
                 nbd_server->unix_path());
    }
    if (export_settings.tcp_port) {
      const std::string at = HostPort(export_settings.tcp_address, nbd_server->tcp_port());
      fmt::print("nbd: serving {} on {} (nbdinfo --list nbd://{})\n", count, at, at);
    }
  } else {
    fmt::print("nbd: no export ({})\n", options.no_nbd ? "--no-nbd" : "[export] enabled = false");
  }

  std::string why;
  while (why.empty()) {
    pollfd fds[2] = {{signals.fd(), POLLIN, 0}, {shutdown_fd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      why = fmt::format("poll failed ({})", std::strerror(errno));
      break;
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info{};
      if (::read(signals.fd(), &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
        why = info.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";
      }
    }
    if (why.empty() && (fds[1].revents & POLLIN)) why = "a shutdown request";
  }

  fmt::print("{}: shutting down\n", why);
  // The NBD server first: its requests in flight complete through heads that still run, and no client reaches a
  // fabric being torn down. Then the control server, for the same reason; then the fabric, whose I/O drains.
  nbd_server.reset();
  catalog.reset();
  server->reset();
  fabric->reset();
  ::close(shutdown_fd);
  fmt::print("stopped\n");
  return kExitOk;
}

}  // namespace mpath::cli
