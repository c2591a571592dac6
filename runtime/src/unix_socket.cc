#include "mpath/runtime/unix_socket.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace mpath {
namespace {

std::unexpected<Error> OsError(std::string what, int err) {
  return MakeError(Errc::kInternal, fmt::format("{}: {}", what, std::strerror(err)));
}

// Tells a stale socket file (its server is gone) from a live one.
bool SomeoneListens(const sockaddr_un& address) {
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe.valid()) return false;
  return ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
}

}  // namespace

void UniqueFd::Reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<sockaddr_un> UnixSocketAddress(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty()) return MakeError(Errc::kInvalidArgument, "the unix socket path is empty");
  if (path.size() >= sizeof(address.sun_path)) {
    return MakeError(Errc::kInvalidArgument, fmt::format("unix socket path '{}' is longer than {} bytes", path,
                                                         sizeof(address.sun_path) - 1));
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  return address;
}

Result<UnixListener> UnixListener::Listen(const std::string& path, mode_t mode) {
  const sockaddr_un address = MPATH_TRY(UnixSocketAddress(path));
  struct stat existing{};
  if (::lstat(path.c_str(), &existing) == 0) {
    if (!S_ISSOCK(existing.st_mode)) {
      return MakeError(Errc::kAlreadyExists, fmt::format("{} exists and is not a socket; not replacing it", path));
    }
    if (SomeoneListens(address)) {
      return MakeError(Errc::kAlreadyExists, fmt::format("a server already answers on {}", path));
    }
  } else if (errno != ENOENT) {
    return OsError(fmt::format("cannot stat {}", path), errno);
  }

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return OsError("socket(AF_UNIX)", errno);

  // Several listeners of one process may be set up at once (tests), so the temporary name carries a serial too.
  static std::atomic<unsigned> serial{0};
  const std::string directory = path.substr(0, path.find_last_of('/') + 1);
  const std::string temporary = fmt::format("{}.mpath-sock.{}.{}", directory, ::getpid(), serial++);
  const bool renaming = temporary.size() < sizeof(address.sun_path);
  const std::string bound = renaming ? temporary : path;
  const sockaddr_un bind_address = MPATH_TRY(UnixSocketAddress(bound));
  if (!renaming) ::unlink(path.c_str());  // no room for a temporary name: replace the stale socket checked above

  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&bind_address), sizeof(bind_address)) != 0) {
    return OsError(fmt::format("cannot bind {}", path), errno);
  }
  const auto fail = [&](std::string what, int err) {
    ::unlink(bound.c_str());
    return OsError(std::move(what), err);
  };
  if (::chmod(bound.c_str(), mode) != 0) return fail(fmt::format("cannot chmod {}", path), errno);
  if (::listen(fd.get(), SOMAXCONN) != 0) return fail(fmt::format("cannot listen on {}", path), errno);
  if (renaming && ::rename(temporary.c_str(), path.c_str()) != 0) {
    return fail(fmt::format("cannot rename {} to {}", temporary, path), errno);
  }
  struct stat made{};
  if (::lstat(path.c_str(), &made) != 0) return fail(fmt::format("cannot stat {}", path), errno);
  return UnixListener(std::move(fd), path, made.st_dev, made.st_ino);
}

void UnixListener::RemoveFile() const {
  if (path_.empty()) return;
  struct stat now{};
  if (::lstat(path_.c_str(), &now) == 0 && now.st_dev == device_ && now.st_ino == inode_) ::unlink(path_.c_str());
}

}  // namespace mpath
