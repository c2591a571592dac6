// Errors as values. I/O completions carry a small, trivially copyable IoStatus; control-plane calls return
// Result<T>, whose Error adds a message naming exactly what was wrong. Both keep the device's raw status verbatim.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace mpath {

// Canonical error classes. Retry decisions are never taken on these alone: each personality's classifier reads the
// raw status as well.
enum class Errc : std::uint8_t {
  kOk = 0,
  kInvalidArgument,     // the caller asked for something malformed
  kNotFound,
  kAlreadyExists,
  kOutOfRange,          // an I/O beyond the device's capacity
  kMismatch,            // a path whose geometry or identity disagrees with its head
  kUnsupported,
  kPathError,           // the path (transport, port, controller) failed; another path may succeed
  kTargetError,         // the device rejected the command; no other path would do better
  kMediumError,
  kReservationConflict,
  kNoSpace,
  kProtection,
  kNoPath,              // no usable path, and none came back in time
  kTimedOut,
  kAborted,
  kRemoved,             // the head or device is gone
  kBusy,
  kInternal,
};

std::string_view ErrcName(Errc code);

// What the device itself reported, kept byte for byte so that a personality's classifier and an operator see exactly
// what the target said. The core never interprets it; each personality defines its own family value and byte layout
// in its spec headers.
struct RawStatus {
  std::uint8_t family = 0;  // 0: no device status (host-side error)
  std::array<std::uint8_t, 7> bytes{};

  friend bool operator==(const RawStatus&, const RawStatus&) = default;
};

// Outcome of one I/O. Trivially copyable and allocation-free: `context` must point at a string with static storage.
struct IoStatus {
  Errc code = Errc::kOk;
  RawStatus raw{};
  const char* context = "";

  [[nodiscard]] bool ok() const { return code == Errc::kOk; }
  static IoStatus Ok() { return {}; }
  static IoStatus Of(Errc code, const char* context, RawStatus raw = {}) { return {code, raw, context}; }
};

// Control-plane error: a class, a message naming the offending value, and the device's status when there was one.
// Threading: a value type; const use is safe from any thread.
class Error {
 public:
  Error(Errc code, std::string message, RawStatus raw = {}) : code_(code), message_(std::move(message)), raw_(raw) {}
  explicit Error(const IoStatus& status) : code_(status.code), message_(status.context), raw_(status.raw) {}

  [[nodiscard]] Errc code() const { return code_; }
  [[nodiscard]] const std::string& message() const { return message_; }
  [[nodiscard]] const RawStatus& raw() const { return raw_; }
  // "<class>: <message>", for logs and CLI output.
  [[nodiscard]] std::string ToString() const;

 private:
  Errc code_;
  std::string message_;
  RawStatus raw_;
};

template <typename T = void>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> MakeError(Errc code, std::string message) {
  return std::unexpected<Error>(Error(code, std::move(message)));
}

}  // namespace mpath

// Propagates an error from a Result-returning expression; yields the value otherwise (GNU statement expression).
#define MPATH_TRY(expr)                                                          \
  ({                                                                             \
    auto mpath_try_result_ = (expr);                                             \
    if (!mpath_try_result_) return std::unexpected(std::move(mpath_try_result_).error()); \
    std::move(mpath_try_result_).value();                                        \
  })
