#include "mpath/core/error.h"

#include <fmt/format.h>

namespace mpath {

std::string_view ErrcName(Errc code) {
  switch (code) {
    case Errc::kOk: return "ok";
    case Errc::kInvalidArgument: return "invalid argument";
    case Errc::kNotFound: return "not found";
    case Errc::kAlreadyExists: return "already exists";
    case Errc::kOutOfRange: return "out of range";
    case Errc::kMismatch: return "mismatch";
    case Errc::kUnsupported: return "unsupported";
    case Errc::kPathError: return "path error";
    case Errc::kTargetError: return "target error";
    case Errc::kMediumError: return "medium error";
    case Errc::kReservationConflict: return "reservation conflict";
    case Errc::kNoSpace: return "no space";
    case Errc::kProtection: return "protection error";
    case Errc::kNoPath: return "no usable path";
    case Errc::kTimedOut: return "timed out";
    case Errc::kAborted: return "aborted";
    case Errc::kRemoved: return "removed";
    case Errc::kBusy: return "busy";
    case Errc::kInternal: return "internal error";
    default: return "unknown error";
  }
}

std::string Error::ToString() const {
  if (message_.empty()) return std::string(ErrcName(code_));
  return fmt::format("{}: {}", ErrcName(code_), message_);
}

}  // namespace mpath
