// `mpath daemon`: config -> fabric -> control socket -> wait for a signal -> clean stop.
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

#include <fmt/format.h>

#include "commands.h"
#include "mpath/daemon/config.h"
#include "mpath/daemon/control.h"
#include "mpath/daemon/fabric.h"

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
  // The server first, so no request reaches a fabric being torn down; then the fabric, whose I/O drains.
  server->reset();
  fabric->reset();
  ::close(shutdown_fd);
  fmt::print("stopped\n");
  return kExitOk;
}

}  // namespace mpath::cli
