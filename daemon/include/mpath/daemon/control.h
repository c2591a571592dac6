// The control socket: how `mpath list`, `show`, `set-policy`, `path`, `pr` and `inject` reach a running daemon. A unix
// stream socket carrying newline-delimited JSON, one request and one response per line, in order; the protocol and
// its commands are documented in docs/control.md.
//
//   request:  {"cmd":"show","head":"mpath0"}\n
//   response: {"ok":true,"head":{...}}\n   or   {"ok":false,"code":"not found","error":"no head 'mpath9'"}\n
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/daemon/fabric.h"

namespace mpath::daemon {

// Carries out one request (a JSON object with a string "cmd") and returns its response, {"ok":true,...} or
// {"ok":false,"code":..,"error":..}. Blocking; called on the server's worker thread, one request at a time.
using ControlHandler = std::function<nlohmann::json(const nlohmann::json& request)>;

// The commands of docs/control.md against `fabric`: list, show, set-policy, path-fail, path-reinstate, inject, pr.
// Unknown commands, missing fields, fields of the wrong type and unknown fields get an error response naming them.
// Blocks on the fabric, so never call it from one of the fabric's loops.
[[nodiscard]] nlohmann::json HandleControlRequest(Fabric& fabric, const nlohmann::json& request);

// An error response: {"ok":false,"code":ErrcName(code),"error":message}.
[[nodiscard]] nlohmann::json ErrorResponse(const Error& error);

struct ControlServerOptions {
  mode_t mode = 0600;                        // of the socket file; connecting needs write permission on it
  std::size_t max_request_bytes = 64 * 1024;  // a longer line is answered with an error and skipped
  std::size_t max_clients = 64;              // connections beyond this are told so and closed
  // The "shutdown" command: answered, then this is called on the worker thread, so it must not destroy the server
  // (signal another thread to do it). Without it, "shutdown" is refused.
  std::function<void()> on_shutdown;
};

// Listens on a unix socket. One thread runs the socket loop (accept, read, write: every client is a watched fd, none
// has a thread of its own) and one worker thread runs the handler, so a slow fabric call never stalls the socket
// loop; each connection has at most one request with the worker at a time, and gets its responses in order.
// Threading: Create and the destructor from any thread except the server's own; path() from any thread.
class ControlServer {
 public:
  // Binds `path`, replacing a stale socket file (one nobody listens on) but refusing when a server answers there or
  // the file is not a socket. The socket file gets `options.mode` before any client can reach it.
  [[nodiscard]] static Result<std::unique_ptr<ControlServer>> Create(ControlHandler handler, std::string path,
                                                                     ControlServerOptions options = {});
  // The fabric's commands (HandleControlRequest). `fabric` must outlive the server.
  [[nodiscard]] static Result<std::unique_ptr<ControlServer>> Create(Fabric& fabric, std::string path,
                                                                     ControlServerOptions options = {});

  // Stops accepting, waits for the request the worker is running (its answer is dropped), closes every connection
  // and removes the socket file if it is still the one this server bound.
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  [[nodiscard]] const std::string& path() const;

 private:
  class Impl;
  explicit ControlServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One connection to a daemon's control socket.
// Threading: thread-compatible (one thread at a time).
class ControlClient {
 public:
  // Fails with "cannot connect to PATH: <OS error>; is `mpath daemon` running?" when nothing listens there.
  [[nodiscard]] static Result<std::unique_ptr<ControlClient>> Connect(
      const std::string& path, Nanos timeout = std::chrono::seconds(30));
  ~ControlClient();
  ControlClient(const ControlClient&) = delete;
  ControlClient& operator=(const ControlClient&) = delete;

  // Sends one request and returns the daemon's response as it came ("ok" true or false). Fails when the daemon
  // cannot be reached, closes the connection, answers with something that is not JSON, or does not answer within the
  // timeout given to Connect.
  [[nodiscard]] Result<nlohmann::json> Call(const nlohmann::json& request);
  // Call, with an {"ok":false} response turned into its Error.
  [[nodiscard]] Result<nlohmann::json> Request(const nlohmann::json& request);

 private:
  ControlClient(int fd, std::string path, Nanos timeout);

  // Constant after construction.
  const int fd_;
  const std::string path_;
  const Nanos timeout_;
  std::string buffer_;  // bytes received past the last response
};

}  // namespace mpath::daemon
