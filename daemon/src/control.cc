#include "mpath/daemon/control.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <optional>
#include <unordered_map>
#include <utility>

#include "mpath/daemon/render.h"
#include "mpath/runtime/reactor_pool.h"
#include "mpath/runtime/unix_socket.h"

namespace mpath::daemon {
namespace {

using nlohmann::json;

std::string Dump(const json& value) {
  // Replace rather than throw: a message may quote bytes a device sent, and they need not be UTF-8.
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::unexpected<Error> OsError(Errc code, std::string what, int err) {
  return MakeError(code, fmt::format("{}: {}", what, std::strerror(err)));
}

// --- Requests: every field is checked for presence, type, and for being one the command knows. ---

class RequestFields {
 public:
  RequestFields(const json& request, std::string_view cmd) : request_(request), cmd_(cmd) {}

  // Refuses any field besides "cmd" and `known`: a misspelt optional field would otherwise be silently ignored.
  Result<void> Only(std::initializer_list<std::string_view> known) const {
    for (const auto& [key, value] : request_.items()) {
      if (key == "cmd") continue;
      bool found = false;
      for (std::string_view k : known) found = found || k == key;
      if (!found) return MakeError(Errc::kInvalidArgument, fmt::format("unknown field '{}' for '{}'", key, cmd_));
    }
    return {};
  }

  Result<std::string> String(const char* key) const {
    auto it = request_.find(key);
    if (it == request_.end()) {
      return MakeError(Errc::kInvalidArgument, fmt::format("'{}' needs field '{}' (a string)", cmd_, key));
    }
    if (!it->is_string()) return WrongType(key, "a string", *it);
    return it->get<std::string>();
  }

  Result<std::optional<std::string>> OptionalString(const char* key) const {
    if (!request_.contains(key)) return std::optional<std::string>();
    return std::optional<std::string>(MPATH_TRY(String(key)));
  }

  Result<bool> Bool(const char* key, bool default_value) const {
    auto it = request_.find(key);
    if (it == request_.end()) return default_value;
    if (!it->is_boolean()) return WrongType(key, "true or false", *it);
    return it->get<bool>();
  }

  // A reservation key: a non-negative integer, or a string in decimal or 0x-hex (64-bit keys do not survive JSON
  // readers that use doubles, so scripts may send them as text).
  Result<std::uint64_t> Key(const char* key) const {
    auto it = request_.find(key);
    if (it == request_.end()) return std::uint64_t{0};
    if (it->is_number_unsigned()) return it->get<std::uint64_t>();
    if (it->is_string()) {
      auto parsed = ParseKey(it->get<std::string>());
      if (!parsed) return MakeError(Errc::kInvalidArgument, fmt::format("field '{}': {}", key, parsed.error().message()));
      return *parsed;
    }
    return WrongType(key, "a non-negative integer or a string of one", *it);
  }

  // inject's "args": an object whose values are strings (numbers and booleans are taken as their text).
  Result<std::map<std::string, std::string>> Args(const char* key) const {
    std::map<std::string, std::string> args;
    auto it = request_.find(key);
    if (it == request_.end()) return args;
    if (!it->is_object()) return WrongType(key, "an object of key/value strings", *it);
    for (const auto& [name, value] : it->items()) {
      if (value.is_string()) {
        args[name] = value.get<std::string>();
      } else if (value.is_number() || value.is_boolean()) {
        args[name] = value.dump();
      } else {
        return MakeError(Errc::kInvalidArgument,
                         fmt::format("field '{}.{}' must be a string, number or boolean, not {}", key, name,
                                     value.type_name()));
      }
    }
    return args;
  }

 private:
  std::unexpected<Error> WrongType(const char* key, std::string_view expected, const json& value) const {
    return MakeError(Errc::kInvalidArgument,
                     fmt::format("field '{}' of '{}' must be {}, not {}", key, cmd_, expected, value.type_name()));
  }

  const json& request_;
  std::string_view cmd_;
};

json Message(std::string message) { return json{{"message", std::move(message)}}; }

Result<json> Dispatch(Fabric& fabric, const json& request) {
  if (!request.is_object()) return MakeError(Errc::kInvalidArgument, "a request must be a JSON object");
  auto cmd_it = request.find("cmd");
  if (cmd_it == request.end() || !cmd_it->is_string()) {
    return MakeError(Errc::kInvalidArgument, "a request needs field 'cmd' (a string)");
  }
  const std::string cmd = cmd_it->get<std::string>();
  RequestFields fields(request, cmd);

  if (cmd == "list") {
    MPATH_TRY(fields.Only({}));
    std::vector<HeadView> heads = fabric.Heads();
    return HeadsToJson(heads);
  }
  if (cmd == "show") {
    MPATH_TRY(fields.Only({"head"}));
    std::string head = MPATH_TRY(fields.String("head"));
    HeadView view = MPATH_TRY(fabric.FindHeadView(head));
    return json{{"head", HeadToJson(view)}};
  }
  if (cmd == "set-policy") {
    MPATH_TRY(fields.Only({"head", "policy"}));
    std::string head = MPATH_TRY(fields.String("head"));
    std::string text = MPATH_TRY(fields.String("policy"));
    IoPolicyKind policy = MPATH_TRY(ParseIoPolicy(text));
    MPATH_TRY(fabric.SetPolicy(head, policy));
    return Message(fmt::format("{}: iopolicy is now {}", head, Name(policy)));
  }
  if (cmd == "path-fail" || cmd == "path-reinstate") {
    MPATH_TRY(fields.Only({"path"}));
    std::string path = MPATH_TRY(fields.String("path"));
    if (cmd == "path-fail") {
      MPATH_TRY(fabric.FailPath(path));
      return Message(fmt::format("{}: failed; it carries no I/O until reinstated", path));
    }
    MPATH_TRY(fabric.ReinstatePath(path));
    return Message(fmt::format("{}: reinstated", path));
  }
  if (cmd == "inject") {
    MPATH_TRY(fields.Only({"target", "fault", "args"}));
    FaultRequest fault;
    fault.target = MPATH_TRY(fields.String("target"));
    fault.fault = MPATH_TRY(fields.String("fault"));
    fault.args = MPATH_TRY(fields.Args("args"));
    std::string done = MPATH_TRY(fabric.Inject(fault));
    return Message(std::move(done));
  }
  if (cmd == "pr") {
    MPATH_TRY(fields.Only({"head", "action", "key", "sa_key", "type", "ignore_existing", "aptpl"}));
    PrRequest pr;
    pr.head = MPATH_TRY(fields.String("head"));
    pr.action = MPATH_TRY(fields.String("action"));
    pr.key = MPATH_TRY(fields.Key("key"));
    pr.service_key = MPATH_TRY(fields.Key("sa_key"));
    if (auto type = MPATH_TRY(fields.OptionalString("type"))) pr.type = *type;
    pr.ignore_existing = MPATH_TRY(fields.Bool("ignore_existing", false));
    pr.persist = MPATH_TRY(fields.Bool("aptpl", false));
    PrReport report = MPATH_TRY(fabric.Reservation(pr));
    return PrReportToJson(report);
  }
  return MakeError(Errc::kInvalidArgument,
                   fmt::format("unknown command '{}' (expected list, show, set-policy, path-fail, path-reinstate, "
                               "inject, pr or shutdown)",
                               cmd));
}

std::optional<Errc> ErrcFromName(std::string_view name) {
  for (int c = 0; c <= static_cast<int>(Errc::kInternal); ++c) {
    if (ErrcName(static_cast<Errc>(c)) == name) return static_cast<Errc>(c);
  }
  return std::nullopt;
}

}  // namespace

json ErrorResponse(const Error& error) {
  return json{{"ok", false}, {"code", ErrcName(error.code())}, {"error", error.message()}};
}

json HandleControlRequest(Fabric& fabric, const json& request) {
  Result<json> result = Dispatch(fabric, request);
  if (!result) return ErrorResponse(result.error());
  json response = std::move(*result);
  response["ok"] = true;
  return response;
}

// --- The server ---

class ControlServer::Impl {
 public:
  Impl(ControlHandler handler, std::string path, ControlServerOptions options, std::unique_ptr<ReactorPool> pool,
       UnixListener listener)
      : handler_(std::move(handler)),
        path_(std::move(path)),
        options_(std::move(options)),
        pool_(std::move(pool)),
        listener_(std::move(listener)) {}

  ~Impl() {
    // Joins both threads; the worker first finishes the request it is running.
    pool_->Stop();
    for (auto& [id, connection] : connections_) ::close(connection->fd);
    connections_.clear();
    // Only if it is still ours: a newer server may have replaced it.
    listener_.RemoveFile();
  }

  Result<void> Start() {
    // Watching before the pool starts is allowed, and then nothing races with the first accept.
    MPATH_TRY(socket_loop().Watch(listener_.fd(), EPOLLIN, [this](std::uint32_t) { Accept(); }));
    MPATH_TRY(pool_->Start());
    return {};
  }

  const std::string& path() const { return path_; }

 private:
  struct Connection {
    std::uint64_t id = 0;
    int fd = -1;
    WatchId watch = 0;
    std::uint32_t events = 0;  // what the watch currently asks for
    std::string in;            // received, not yet taken as requests
    std::string out;           // responses not yet sent
    bool busy = false;         // a request of this connection is with the worker
    bool discarding = false;   // skipping the rest of an oversize request, up to its newline
    bool eof = false;          // the client will send nothing more
  };

  // Responses waiting to be sent stop the reading of more requests beyond this many bytes, so a client that sends
  // without reading cannot make the server buffer without bound.
  static constexpr std::size_t kOutputHighWater = 64 * 1024;

  EventLoop& socket_loop() { return pool_->loop(0); }
  EventLoop& worker() { return pool_->loop(1); }

  void Accept() {
    for (;;) {
      int fd = ::accept4(listener_.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // EAGAIN; or out of fds (EMFILE), and then the pending client waits for the next round
      }
      if (connections_.size() >= options_.max_clients) {
        std::string line =
            Dump(ErrorResponse(Error(Errc::kBusy, fmt::format("too many clients (at most {})", options_.max_clients)))) +
            "\n";
        [[maybe_unused]] auto sent = ::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        ::close(fd);
        continue;
      }
      auto connection = std::make_unique<Connection>();
      connection->id = next_id_++;
      connection->fd = fd;
      connection->events = EPOLLIN;
      std::uint64_t id = connection->id;
      auto watch = socket_loop().Watch(fd, EPOLLIN, [this, id](std::uint32_t events) { OnEvent(id, events); });
      if (!watch) {
        ::close(fd);
        continue;
      }
      connection->watch = *watch;
      connections_.emplace(id, std::move(connection));
    }
  }

  void OnEvent(std::uint64_t id, std::uint32_t events) {
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    Connection& c = *it->second;
    if (events & EPOLLERR) return Close(c);
    if ((events & EPOLLIN) && !Read(c)) return Close(c);
    // The peer closed both ways while its request was with the worker (we were not reading): its answer has nowhere
    // to go.
    if ((events & EPOLLHUP) && !(events & EPOLLIN)) return Close(c);
    Advance(c);
  }

  // Takes what the socket has, up to a bit more than one request's worth. False on a socket error.
  bool Read(Connection& c) {
    char buffer[16 * 1024];
    while (c.in.size() <= options_.max_request_bytes) {
      ssize_t n = ::recv(c.fd, buffer, sizeof(buffer), 0);
      if (n > 0) {
        c.in.append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0) {
        c.eof = true;
        return true;
      } else if (errno == EINTR) {
        continue;
      } else {
        return errno == EAGAIN || errno == EWOULDBLOCK;
      }
    }
    return true;
  }

  // Sends what it can, takes the next requests when nothing is pending, and asks for the events that fit.
  void Advance(Connection& c) {
    if (!Flush(c)) return Close(c);
    while (!c.busy && c.out.size() < kOutputHighWater && TakeRequest(c)) {
    }
    if (!Flush(c)) return Close(c);
    if (c.eof && !c.busy && c.out.empty() && c.in.empty()) return Close(c);

    std::uint32_t events = 0;
    if (!c.busy && c.out.empty() && !c.eof) events |= EPOLLIN;
    if (!c.out.empty()) events |= EPOLLOUT;
    if (events != c.events) {
      if (!socket_loop().Modify(c.watch, events)) return Close(c);
      c.events = events;
    }
  }

  // Takes one request (or one oversize or malformed line) from the input; false when there is no whole one yet.
  bool TakeRequest(Connection& c) {
    std::size_t newline = c.in.find('\n');
    if (newline == std::string::npos) {
      if (c.discarding) {
        c.in.clear();
        return false;
      }
      if (c.in.size() > options_.max_request_bytes) {
        Respond(c, ErrorResponse(Error(Errc::kInvalidArgument,
                                       fmt::format("request longer than {} bytes", options_.max_request_bytes))));
        c.in.clear();
        c.discarding = true;
        return true;
      }
      // At the end of the input, a last request without its newline still counts.
      if (!c.eof || c.in.empty()) return false;
      newline = c.in.size();
      c.in.push_back('\n');
    }
    std::string line = c.in.substr(0, newline);
    c.in.erase(0, newline + 1);
    if (c.discarding) {
      c.discarding = false;
      return true;
    }
    if (line.size() > options_.max_request_bytes) {
      Respond(c, ErrorResponse(Error(Errc::kInvalidArgument,
                                     fmt::format("request longer than {} bytes", options_.max_request_bytes))));
      return true;
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) return true;  // blank lines are ignored

    json request = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (request.is_discarded()) {
      Respond(c, ErrorResponse(Error(Errc::kInvalidArgument, "malformed request: not valid JSON")));
      return true;
    }
    if (!request.is_object() || !request.contains("cmd") || !request["cmd"].is_string()) {
      Respond(c, ErrorResponse(Error(Errc::kInvalidArgument,
                                     "malformed request: expected a JSON object with field 'cmd' (a string)")));
      return true;
    }
    if (request["cmd"] == "shutdown") {
      Shutdown(c, request);
      return true;
    }
    c.busy = true;
    worker().Post([this, id = c.id, request = std::move(request)] {
      json response;
      try {
        response = handler_(request);
      } catch (const std::exception& e) {
        // A handler is not meant to throw; if one does, the client gets the reason and the server goes on.
        response = ErrorResponse(Error(Errc::kInternal, e.what()));
      }
      socket_loop().Post([this, id, response = std::move(response)]() mutable { OnHandled(id, std::move(response)); });
    });
    return true;
  }

  void Shutdown(Connection& c, const json& request) {
    if (request.size() != 1) {
      Respond(c, ErrorResponse(Error(Errc::kInvalidArgument, "'shutdown' takes no fields")));
    } else if (!options_.on_shutdown) {
      Respond(c, ErrorResponse(Error(Errc::kUnsupported, "this server does not take 'shutdown'")));
    } else {
      Respond(c, json{{"ok", true}, {"message", "shutting down"}});
      // On the worker, after whatever request it is running: that one is answered before the server goes.
      worker().Post([this] { options_.on_shutdown(); });
    }
  }

  void OnHandled(std::uint64_t id, json response) {
    auto it = connections_.find(id);
    if (it == connections_.end()) return;  // the client left before its answer was ready
    Connection& c = *it->second;
    c.busy = false;
    Respond(c, response);
    Advance(c);
  }

  void Respond(Connection& c, const json& response) {
    c.out += Dump(response);
    c.out += '\n';
  }

  bool Flush(Connection& c) {
    while (!c.out.empty()) {
      ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        c.out.erase(0, static_cast<std::size_t>(n));
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
      }
    }
    return true;
  }

  void Close(Connection& c) {
    socket_loop().Unwatch(c.watch);
    ::close(c.fd);
    connections_.erase(c.id);  // destroys c
  }

  // Constant after construction.
  const ControlHandler handler_;
  const std::string path_;
  const ControlServerOptions options_;
  const std::unique_ptr<ReactorPool> pool_;  // loop 0: the socket loop; loop 1: the worker
  const UnixListener listener_;

  // Socket loop only.
  std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> connections_;
  std::uint64_t next_id_ = 1;
};

ControlServer::ControlServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ControlServer::~ControlServer() = default;

const std::string& ControlServer::path() const { return impl_->path(); }

Result<std::unique_ptr<ControlServer>> ControlServer::Create(Fabric& fabric, std::string path,
                                                             ControlServerOptions options) {
  return Create([&fabric](const json& request) { return HandleControlRequest(fabric, request); }, std::move(path),
                std::move(options));
}

Result<std::unique_ptr<ControlServer>> ControlServer::Create(ControlHandler handler, std::string path,
                                                             ControlServerOptions options) {
  if (!handler) return MakeError(Errc::kInvalidArgument, "a control server needs a handler");
  if (options.max_request_bytes == 0 || options.max_clients == 0) {
    return MakeError(Errc::kInvalidArgument, "max_request_bytes and max_clients must be positive");
  }
  UnixListener listener = MPATH_TRY(UnixListener::Listen(path, options.mode));

  ReactorPoolOptions pool_options;
  pool_options.loops = 2;
  auto pool = ReactorPool::Create(pool_options);
  if (!pool) {
    listener.RemoveFile();
    return std::unexpected(pool.error());
  }
  auto impl = std::make_unique<Impl>(std::move(handler), std::move(path), std::move(options), std::move(*pool),
                                     std::move(listener));
  // On failure the Impl's destructor removes the socket file.
  MPATH_TRY(impl->Start());
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(impl)));
}

// --- The client ---

ControlClient::ControlClient(int fd, std::string path, Nanos timeout)
    : fd_(fd), path_(std::move(path)), timeout_(timeout) {}

ControlClient::~ControlClient() { ::close(fd_); }

Result<std::unique_ptr<ControlClient>> ControlClient::Connect(const std::string& path, Nanos timeout) {
  sockaddr_un address = MPATH_TRY(UnixSocketAddress(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return OsError(Errc::kInternal, "socket(AF_UNIX)", errno);
  int rc;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    std::string hint = err == ENOENT || err == ECONNREFUSED ? "; is `mpath daemon` running?" : "";
    return MakeError(Errc::kNotFound, fmt::format("cannot connect to {}: {}{}", path, std::strerror(err), hint));
  }
  if (::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK) != 0) {
    return OsError(Errc::kInternal, "fcntl(O_NONBLOCK)", errno);
  }
  return std::unique_ptr<ControlClient>(new ControlClient(fd.release(), path, timeout));
}

Result<json> ControlClient::Call(const json& request) {
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  // Waits for `events` until the deadline; false when it passed.
  auto wait = [&](short events) -> Result<bool> {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd pfd{fd_, events, 0};
      int n = ::poll(&pfd, 1, static_cast<int>(std::min<std::int64_t>(left.count() + 1, 1 << 30)));
      if (n > 0) return true;
      if (n < 0 && errno != EINTR) return OsError(Errc::kInternal, "poll", errno);
    }
  };
  auto timed_out = [&] {
    return MakeError(Errc::kTimedOut,
                     fmt::format("no answer from {} within {} s", path_,
                                 std::chrono::duration_cast<std::chrono::duration<double>>(timeout_).count()));
  };

  std::string line = Dump(request) + "\n";
  std::size_t sent = 0;
  while (sent < line.size()) {
    ssize_t n = ::send(fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!MPATH_TRY(wait(POLLOUT))) return timed_out();
    } else if (n < 0 && errno != EINTR) {
      return OsError(Errc::kPathError, fmt::format("cannot send to {}", path_), errno);
    }
  }

  // A response is one line; anything this large is not one of ours.
  constexpr std::size_t kMaxResponse = 256 * 1024 * 1024;
  std::size_t newline;
  while ((newline = buffer_.find('\n')) == std::string::npos) {
    if (buffer_.size() > kMaxResponse) {
      return MakeError(Errc::kInternal, fmt::format("the answer from {} is longer than {} bytes", path_, kMaxResponse));
    }
    char chunk[64 * 1024];
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n > 0) {
      buffer_.append(chunk, static_cast<std::size_t>(n));
    } else if (n == 0) {
      return MakeError(Errc::kPathError, fmt::format("{} closed the connection without answering", path_));
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!MPATH_TRY(wait(POLLIN))) return timed_out();
    } else if (errno != EINTR) {
      return OsError(Errc::kPathError, fmt::format("cannot read from {}", path_), errno);
    }
  }
  std::string answer = buffer_.substr(0, newline);
  buffer_.erase(0, newline + 1);
  json response = json::parse(answer, nullptr, /*allow_exceptions=*/false);
  if (response.is_discarded() || !response.is_object() || !response.contains("ok") || !response["ok"].is_boolean()) {
    return MakeError(Errc::kInternal, fmt::format("{} answered with something that is not a control response", path_));
  }
  return response;
}

Result<json> ControlClient::Request(const json& request) {
  json response = MPATH_TRY(Call(request));
  if (response["ok"].get<bool>()) return response;
  Errc code = Errc::kInternal;
  if (auto it = response.find("code"); it != response.end() && it->is_string()) {
    code = ErrcFromName(it->get<std::string>()).value_or(Errc::kInternal);
  }
  std::string message = "the daemon refused the request";
  if (auto it = response.find("error"); it != response.end() && it->is_string()) message = it->get<std::string>();
  return std::unexpected(Error(code, std::move(message)));
}

}  // namespace mpath::daemon
