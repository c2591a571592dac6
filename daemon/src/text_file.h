// Reading a whole operator-given text file (a config or a scenario) with messages that name it and the OS error.
#pragma once

#include <string>
#include <string_view>

#include "mpath/core/error.h"

namespace mpath::daemon {

// Reads to the end rather than trusting st_size, so that pipes and /dev/stdin work, and refuses more than 16 MiB so
// that /dev/zero cannot make it read forever. `what` names the file's role in messages ("config file").
// kNotFound when it does not exist; kInvalidArgument for any other failure.
[[nodiscard]] Result<std::string> ReadTextFile(const std::string& path, std::string_view what);

}  // namespace mpath::daemon
