// The NBD server: listeners (a unix socket, and TCP when configured) and the connections they accept. Each connection
// lives on one I/O loop for its whole life: it negotiates there, opens its own channel of the chosen head there, and
// submits every request from there, so serving a request takes no lock and, once the connection's buffers have grown
// to the client's request sizes, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/nbd/export.h"
#include "mpath/nbd/negotiation.h"
#include "mpath/runtime/event_loop.h"

namespace mpath::nbd {

struct NbdServerOptions {
  // A unix socket to listen on (mode 0600, replacing a stale socket file); empty: none.
  std::string unix_path;
  // TCP: off unless set. The address defaults to loopback; port 0 picks a free one (see tcp_port()).
  struct Tcp {
    std::string address = "127.0.0.1";
    std::uint16_t port = 10809;
  };
  std::optional<Tcp> tcp;
  std::size_t max_connections = 64;           // connections beyond are accepted and closed at once
  std::size_t requests_per_connection = 128;  // in flight per connection; at the limit it stops reading (backpressure)
  std::size_t max_bytes_in_flight = 64u << 20;  // payload bytes held per connection; at the limit it stops reading
  Nanos handshake_timeout = std::chrono::seconds(10);  // a client that has not reached transmission by then is dropped
  NegotiationLimits negotiation;
};

struct NbdServerStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_refused = 0;    // over max_connections
  std::uint64_t connections_open = 0;
  std::uint64_t handshakes_failed = 0;      // closed before transmission (abort, violation, timeout)
  std::uint64_t requests = 0;
  std::uint64_t request_errors = 0;         // replies that carried an error
  std::uint64_t protocol_violations = 0;    // hard closes in transmission
};

// Threading: Start, Stop, Stats and the accessors from any thread but the server's loops; everything else runs on them.
class NbdServer {
 public:
  // Listens (at least one of unix_path and tcp must be set) and accepts on `accept_loop`; connections are spread
  // round-robin over `io_loops`. The catalog and every loop must outlive the server and keep running until Stop
  // returns.
  static Result<std::unique_ptr<NbdServer>> Start(const ExportCatalog& catalog, EventLoop& accept_loop,
                                                  std::vector<EventLoop*> io_loops, NbdServerOptions options);
  ~NbdServer();  // Stop()
  NbdServer(const NbdServer&) = delete;
  NbdServer& operator=(const NbdServer&) = delete;

  // Closes the listeners and every connection: requests still queued fail with NBD_ESHUTDOWN, requests in flight in
  // a head complete first (their buffers belong to the connection). Returns when every connection is gone; removes
  // the unix socket file. Idempotent.
  void Stop();

  [[nodiscard]] NbdServerStats Stats() const;
  [[nodiscard]] const std::string& unix_path() const;
  [[nodiscard]] std::uint16_t tcp_port() const;  // the bound port (0 when TCP is off)

 private:
  class Impl;
  explicit NbdServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mpath::nbd
