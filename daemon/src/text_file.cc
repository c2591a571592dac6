#include "text_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace mpath::daemon {

namespace {
constexpr std::size_t kMaxTextFileBytes = 16u << 20;
}  // namespace

Result<std::string> ReadTextFile(const std::string& path, std::string_view what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    return MakeError(error == ENOENT ? Errc::kNotFound : Errc::kInvalidArgument,
                     fmt::format("cannot open {} {}: {}", what, path, std::strerror(error)));
  }
  std::string text;
  int error = 0;
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    error = errno;
  } else if (S_ISDIR(st.st_mode)) {
    error = EISDIR;
  } else {
    char buffer[65536];
    for (;;) {
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        error = errno;
        break;
      }
      if (n == 0) break;
      text.append(buffer, static_cast<std::size_t>(n));
      if (text.size() > kMaxTextFileBytes) {
        ::close(fd);
        return MakeError(Errc::kInvalidArgument,
                         fmt::format("{} {} is larger than {} MiB", what, path, kMaxTextFileBytes >> 20));
      }
    }
  }
  ::close(fd);
  if (error != 0) {
    return MakeError(Errc::kInvalidArgument, fmt::format("cannot read {} {}: {}", what, path, std::strerror(error)));
  }
  return text;
}

}  // namespace mpath::daemon
