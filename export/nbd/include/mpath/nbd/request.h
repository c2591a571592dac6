// The transmission phase's decisions and encodings, kept pure so that the connection is only socket plumbing: what a
// request header asks for and whether it may be served (NBD protocol "Request types", "Error values"), how a head's
// completion status becomes an NBD error, and the reply headers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "mpath/core/error.h"
#include "mpath/core/io_request.h"
#include "mpath/nbd/export.h"
#include "mpath/nbd/spec.h"

namespace mpath::nbd {

// What to do with one request.
struct RequestPlan {
  enum class Action : std::uint8_t {
    kSubmit,      // send `op` to the head
    kReplyError,  // answer `error` without touching the head (still consume `payload_bytes` first)
    kReplyOk,     // answer success without touching the head (e.g. NBD_CMD_CACHE, a zero-length trim)
    kDisconnect,  // NBD_CMD_DISC: stop reading, finish what is in flight, then close
    kHardClose,   // the stream can no longer be trusted (bad magic, a write payload too large to skip): close now
  };
  Action action = Action::kHardClose;
  IoOp op = IoOp::kRead;
  bool fua = false;
  // Bytes of write data that follow the header on the wire; consumed whatever the action (except kHardClose).
  std::uint32_t payload_bytes = 0;
  spec::Errno error = spec::Errno::kOk;
  const char* reason = "";  // static text naming what was wrong, for error chunks and logs
};

// Decides a request from its header alone: checks magic, command, flags, alignment to the export's block size,
// bounds against its size, payload limits and read-only. `structured_replies` matters for flags that need them (DF).
[[nodiscard]] RequestPlan PlanRequest(const spec::RequestHeader& header, const ExportInfo& info,
                                      bool structured_replies);

// The NBD error for a head's completion status (NBD protocol "Error values" permits only a few).
[[nodiscard]] spec::Errno ToNbdErrno(const IoStatus& status);

// Reply headers, written into caller-owned storage so that replying never allocates.
// A simple reply (spec::SimpleReply); a successful read's data follows it.
void EncodeSimpleReply(std::uint64_t cookie, spec::Errno error, spec::SimpleReply& out);
// A structured read reply: one NBD_REPLY_TYPE_OFFSET_DATA chunk flagged DONE whose payload is the 8-byte offset and
// then `length` bytes of data (sent from the data buffer itself).
struct OffsetDataHead {
  spec::StructuredReplyHeader header;
  spec::OffsetDataPrefix prefix;
};
static_assert(sizeof(OffsetDataHead) == 28);
void EncodeReadChunk(std::uint64_t cookie, std::uint64_t offset, std::uint32_t length, OffsetDataHead& out);
// A structured NBD_REPLY_TYPE_NONE chunk flagged DONE: success for anything but a read.
void EncodeDoneChunk(std::uint64_t cookie, spec::StructuredReplyHeader& out);
// A structured NBD_REPLY_TYPE_ERROR chunk flagged DONE with `message` (cut to fit `out`). Returns the bytes used.
std::size_t EncodeErrorChunk(std::uint64_t cookie, spec::Errno error, std::string_view message,
                             std::span<std::byte> out);
// The longest error chunk EncodeErrorChunk writes: header, prefix and a message of at most kMaxErrorMessage bytes.
inline constexpr std::size_t kMaxErrorMessage = 200;
inline constexpr std::size_t kMaxErrorChunk =
    sizeof(spec::StructuredReplyHeader) + sizeof(spec::ErrorChunkPrefix) + kMaxErrorMessage;

}  // namespace mpath::nbd
