#include "mpath/nbd/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <latch>
#include <string>
#include <utility>

#include "connection.h"
#include "mpath/runtime/unix_socket.h"

namespace mpath::nbd {
namespace {

using internal::Connection;
using internal::LoopShard;
using internal::ServerContext;

// Connections taken per readiness event, so that a connection storm does not starve the loop's other work.
constexpr int kMaxAcceptsPerEvent = 64;
// Out of file descriptors or memory: stop accepting for a moment instead of spinning on a ready listener.
constexpr Nanos kAcceptBackoff = std::chrono::milliseconds(100);

std::unexpected<Error> SystemError(Errc code, const std::string& what, int err) {
  return MakeError(code, what + ": " + std::strerror(err));
}

Result<std::pair<UniqueFd, std::uint16_t>> ListenTcp(const NbdServerOptions::Tcp& tcp) {
  std::string host = tcp.address;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  sockaddr_storage storage{};
  socklen_t length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(tcp.port);
    length = sizeof(*v4);
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(tcp.port);
    length = sizeof(*v6);
  } else {
    return MakeError(Errc::kInvalidArgument, "TCP address '" + tcp.address + "' is not an IPv4 or IPv6 literal");
  }
  UniqueFd fd(::socket(storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return SystemError(Errc::kInternal, "socket(TCP)", errno);
  const int one = 1;
  // A restarted server must not wait out TIME_WAIT of its previous connections to listen again.
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const std::string where = tcp.address + " port " + std::to_string(tcp.port);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&storage), length) != 0) {
    return SystemError(errno == EADDRINUSE ? Errc::kAlreadyExists : Errc::kInternal, "bind TCP " + where, errno);
  }
  if (::listen(fd.get(), SOMAXCONN) != 0) return SystemError(Errc::kInternal, "listen TCP " + where, errno);
  sockaddr_storage bound{};
  socklen_t bound_length = sizeof(bound);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_length) != 0) {
    return SystemError(Errc::kInternal, "getsockname TCP " + where, errno);
  }
  const std::uint16_t port = bound.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)
                                                        : ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  return std::pair<UniqueFd, std::uint16_t>(std::move(fd), port);
}

}  // namespace

// Threading: constructed and stopped from a controlling thread; listeners are touched only on the accept loop once
// accepting started; connections live on the I/O loops (connection.h).
class NbdServer::Impl {
 public:
  Impl(const ExportCatalog& catalog, EventLoop& accept_loop, std::vector<EventLoop*> io_loops,
       NbdServerOptions options)
      : context_(catalog, std::move(options)), accept_loop_(accept_loop) {
    for (EventLoop* loop : io_loops) shards_.push_back(std::make_unique<LoopShard>(*loop));
  }

  ~Impl() {
    // Stop() ran unless listening failed half way; then nothing was posted and only the socket file is left.
    if (!stopped_) RemoveUnixSocket();
  }

  Result<void> Listen() {
    const NbdServerOptions& options = context_.options;
    if (!options.unix_path.empty()) {
      UnixListener listener = MPATH_TRY(UnixListener::Listen(options.unix_path, 0600));
      unix_.fd = listener.TakeFd();
      unix_file_ = std::move(listener);
    }
    if (options.tcp.has_value()) {
      auto [fd, port] = MPATH_TRY(ListenTcp(*options.tcp));
      tcp_.fd = std::move(fd);
      tcp_.tcp = true;
      tcp_port_ = port;
    }
    return {};
  }

  // Watching happens on the accept loop (which may not run yet): the sockets already listen, so clients queue in
  // the backlog until then.
  void StartAccepting() {
    accepting_ = true;
    accept_loop_.Post([this] {
      for (Listener* listener : {&unix_, &tcp_}) {
        if (listener->fd.get() < 0) continue;
        auto watch = accept_loop_.Watch(listener->fd.get(), EPOLLIN,
                                        [this, listener](std::uint32_t) { OnAcceptable(*listener); });
        // Fails only for an fd epoll cannot take, which a fresh listening socket is not.
        if (watch) listener->watch = *watch;
      }
    });
  }

  void Stop() {
    std::lock_guard stop_lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    assert(!accept_loop_.IsLoopThread() && "NbdServer::Stop waits for the loops; call it from another thread");
    context_.stopping.store(true, std::memory_order_release);
    if (accepting_) {
      // After this no connection is accepted, and every Adopt task is already queued on its loop ahead of the
      // shutdown posted below.
      std::latch closed(1);
      accept_loop_.Post([this, &closed] {
        CloseListeners();
        closed.count_down();
      });
      closed.wait();
    }
    // Waited for even when no connection is left: the tasks reach into the shards, which die with this server.
    std::latch shut(static_cast<std::ptrdiff_t>(shards_.size()));
    for (auto& shard : shards_) {
      LoopShard* s = shard.get();
      s->loop.Post([s, &shut] {
        Connection::ShutdownAll(*s);
        shut.count_down();
      });
    }
    shut.wait();
    {
      std::unique_lock lock(context_.mu);
      context_.all_closed.wait(lock, [this] { return context_.open.load(std::memory_order_relaxed) == 0; });
    }
    CloseListeners();  // accepting never started (or already closed): plain close
    RemoveUnixSocket();
  }

  [[nodiscard]] NbdServerStats Stats() const {
    NbdServerStats stats;
    stats.connections_accepted = context_.accepted.load(std::memory_order_relaxed);
    stats.connections_refused = context_.refused.load(std::memory_order_relaxed);
    stats.connections_open = context_.open.load(std::memory_order_relaxed);
    stats.handshakes_failed = context_.handshakes_failed.load(std::memory_order_relaxed);
    stats.requests = context_.requests.load(std::memory_order_relaxed);
    stats.request_errors = context_.request_errors.load(std::memory_order_relaxed);
    stats.protocol_violations = context_.violations.load(std::memory_order_relaxed);
    return stats;
  }

  [[nodiscard]] const std::string& unix_path() const { return context_.options.unix_path; }
  [[nodiscard]] std::uint16_t tcp_port() const { return tcp_port_; }

 private:
  struct Listener {
    UniqueFd fd;
    bool tcp = false;
    WatchId watch = 0;
    TimerId backoff = 0;
  };

  // On the accept loop.
  void OnAcceptable(Listener& listener) {
    for (int i = 0; i < kMaxAcceptsPerEvent; ++i) {
      const int fd = ::accept4(listener.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        const int err = errno;
        if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;  // that client gave up; others wait
        if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) PauseAccepting(listener);
        return;  // EAGAIN: all taken
      }
      if (context_.stopping.load(std::memory_order_acquire)) {
        ::close(fd);
        continue;
      }
      if (context_.open.load(std::memory_order_relaxed) >= context_.options.max_connections) {
        ::close(fd);
        context_.refused.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (listener.tcp) {
        // Replies are whole messages already; Nagle would only hold back the last one of a burst.
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      }
      context_.accepted.fetch_add(1, std::memory_order_relaxed);
      context_.open.fetch_add(1, std::memory_order_relaxed);
      LoopShard& shard = *shards_[next_shard_++ % shards_.size()];
      auto connection = std::make_unique<Connection>(context_, shard, fd);
      shard.loop.Post([c = std::move(connection)]() mutable { Connection::Adopt(std::move(c)); });
    }
  }

  void PauseAccepting(Listener& listener) {
    if (listener.watch == 0 || listener.backoff != 0) return;
    (void)accept_loop_.Modify(listener.watch, 0);
    listener.backoff = accept_loop_.ScheduleAfter(kAcceptBackoff, [this, &listener] {
      listener.backoff = 0;
      if (listener.watch != 0) (void)accept_loop_.Modify(listener.watch, EPOLLIN);
    });
  }

  // On the accept loop once accepting started; otherwise on the controlling thread.
  void CloseListeners() {
    for (Listener* listener : {&unix_, &tcp_}) {
      if (listener->backoff != 0) accept_loop_.Cancel(listener->backoff);
      listener->backoff = 0;
      if (listener->watch != 0) accept_loop_.Unwatch(listener->watch);
      listener->watch = 0;
      listener->fd.Reset();
    }
  }

  // Removes the socket file only if it is still ours: another server may have replaced it since.
  void RemoveUnixSocket() {
    if (unix_file_) unix_file_->RemoveFile();
    unix_file_.reset();
  }

  ServerContext context_;
  EventLoop& accept_loop_;
  std::vector<std::unique_ptr<LoopShard>> shards_;
  std::uint16_t tcp_port_ = 0;
  std::optional<UnixListener> unix_file_;  // the socket file, for removal
  bool accepting_ = false;

  // Accept loop only, once accepting started.
  Listener unix_;
  Listener tcp_;
  std::size_t next_shard_ = 0;

  std::mutex stop_mu_;
  bool stopped_ = false;  // guarded by stop_mu_ (read unguarded in the destructor, when no Stop can run)
};

Result<std::unique_ptr<NbdServer>> NbdServer::Start(const ExportCatalog& catalog, EventLoop& accept_loop,
                                                    std::vector<EventLoop*> io_loops, NbdServerOptions options) {
  if (options.unix_path.empty() && !options.tcp.has_value()) {
    return MakeError(Errc::kInvalidArgument, "the NBD server needs a unix socket path or a TCP address");
  }
  if (io_loops.empty()) return MakeError(Errc::kInvalidArgument, "the NBD server needs at least one I/O loop");
  for (EventLoop* loop : io_loops) {
    if (loop == nullptr) return MakeError(Errc::kInvalidArgument, "an I/O loop of the NBD server is null");
  }
  if (options.max_connections == 0) return MakeError(Errc::kInvalidArgument, "max_connections must be at least 1");
  if (options.requests_per_connection == 0 || options.requests_per_connection > 65536) {
    return MakeError(Errc::kInvalidArgument, "requests_per_connection must be 1 to 65536, not " +
                                                 std::to_string(options.requests_per_connection));
  }
  if (options.max_bytes_in_flight == 0) {
    return MakeError(Errc::kInvalidArgument, "max_bytes_in_flight must be at least 1");
  }
  if (options.handshake_timeout <= Nanos(0)) {
    return MakeError(Errc::kInvalidArgument, "handshake_timeout must be positive");
  }
  auto impl = std::make_unique<Impl>(catalog, accept_loop, std::move(io_loops), std::move(options));
  if (auto listening = impl->Listen(); !listening) return std::unexpected(std::move(listening).error());
  impl->StartAccepting();
  return std::unique_ptr<NbdServer>(new NbdServer(std::move(impl)));
}

NbdServer::NbdServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NbdServer::~NbdServer() { impl_->Stop(); }

void NbdServer::Stop() { impl_->Stop(); }

NbdServerStats NbdServer::Stats() const { return impl_->Stats(); }

const std::string& NbdServer::unix_path() const { return impl_->unix_path(); }

std::uint16_t NbdServer::tcp_port() const { return impl_->tcp_port(); }

}  // namespace mpath::nbd
