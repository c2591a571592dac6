// File descriptors and listening unix sockets: what every server in the tree (the control socket, the NBD export)
// needs before its event loop can watch anything.
#pragma once

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

#include <string>
#include <utility>

#include "mpath/core/error.h"

namespace mpath {

// Owns a file descriptor and closes it.
// Threading: a value type.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~UniqueFd() { Reset(); }

  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void Reset();

 private:
  int fd_ = -1;
};

// The address of a unix socket at `path`; fails naming the path when it is empty or longer than sun_path holds.
[[nodiscard]] Result<sockaddr_un> UnixSocketAddress(const std::string& path);

// A listening unix socket, with the identity of the file it made so that only that file is ever removed.
// Threading: a value type; RemoveFile from any one thread.
class UnixListener {
 public:
  // Listens at `path` (non-blocking, close-on-exec). Refuses a path that exists and is not a socket, and a socket
  // another server still accepts on; replaces a stale one. The socket is bound under a temporary name beside `path`,
  // given `mode` and put to listen before it is renamed over `path`, so no client ever reaches it with looser
  // permissions and a stale file is replaced in one step.
  [[nodiscard]] static Result<UnixListener> Listen(const std::string& path, mode_t mode = 0600);

  UnixListener(UnixListener&&) = default;
  UnixListener& operator=(UnixListener&&) = default;

  [[nodiscard]] int fd() const { return fd_.get(); }
  [[nodiscard]] const std::string& path() const { return path_; }
  // Closes the socket (watchers must have let go of it).
  void Close() { fd_.Reset(); }
  // Hands the socket to whoever accepts on it; RemoveFile still knows the file.
  [[nodiscard]] UniqueFd TakeFd() { return std::move(fd_); }
  // Removes the socket file if it is still the one Listen made, not a successor's.
  void RemoveFile() const;

 private:
  UnixListener(UniqueFd fd, std::string path, dev_t device, ino_t inode)
      : fd_(std::move(fd)), path_(std::move(path)), device_(device), inode_(inode) {}

  UniqueFd fd_;
  std::string path_;
  dev_t device_ = 0;
  ino_t inode_ = 0;
};

}  // namespace mpath
