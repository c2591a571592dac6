#include "mpath/nbd/request.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "mpath/proto/wire.h"

namespace mpath::nbd {
namespace {

using spec::Command;
using spec::Errno;
using Action = RequestPlan::Action;

constexpr std::uint16_t kKnownFlags = spec::kCmdFlagFua | spec::kCmdFlagNoHole | spec::kCmdFlagDf |
                                      spec::kCmdFlagReqOne | spec::kCmdFlagFastZero | spec::kCmdFlagPayloadLen;

RequestPlan Refuse(RequestPlan plan, Errno error, const char* reason) {
  plan.action = Action::kReplyError;
  plan.error = error;
  plan.reason = reason;
  return plan;
}

RequestPlan Submit(RequestPlan plan, IoOp op) {
  plan.action = Action::kSubmit;
  plan.op = op;
  return plan;
}

RequestPlan ReplyOk(RequestPlan plan) {
  plan.action = Action::kReplyOk;
  return plan;
}

bool IsAligned(std::uint64_t offset, std::uint32_t length, const ExportInfo& info) {
  const std::uint64_t block = std::max<std::uint32_t>(info.block_size, 1);
  return offset % block == 0 && length % block == 0;
}

// Written so that offset + length cannot wrap: a client may send any 64-bit offset.
bool IsInBounds(std::uint64_t offset, std::uint32_t length, const ExportInfo& info) {
  return length <= info.size_bytes && offset <= info.size_bytes - length;
}

// NBD protocol "Command flags": the flags each command may carry. FUA is valid on every command once
// NBD_FLAG_SEND_FUA was sent (always, here); PAYLOAD_LEN belongs to extended headers, which are never negotiated.
std::uint16_t AllowedFlags(Command command, bool structured_replies, const ExportInfo& info) {
  switch (command) {
    case Command::kRead:
      // NBD protocol "Transmission flags": DF is meaningful only with structured replies.
      return spec::kCmdFlagFua | (structured_replies ? spec::kCmdFlagDf : 0);
    case Command::kWriteZeroes: {
      std::uint16_t allowed = spec::kCmdFlagFua | spec::kCmdFlagNoHole;
      // A fast-zero request is EINVAL unless NBD_FLAG_SEND_FAST_ZERO was advertised (NBD protocol
      // "NBD_CMD_WRITE_ZEROES"); advertised, it is answered ENOTSUP below.
      if ((info.TransmissionFlags() & spec::kTxSendFastZero) != 0) allowed |= spec::kCmdFlagFastZero;
      return allowed;
    }
    default:
      return spec::kCmdFlagFua;
  }
}

}  // namespace

RequestPlan PlanRequest(const spec::RequestHeader& header, const ExportInfo& info, bool structured_replies) {
  RequestPlan plan;
  if (header.magic.value() != spec::kRequestMagic) {
    plan.reason = "request magic is not NBD_REQUEST_MAGIC";
    return plan;  // kHardClose: nothing after a bad header can be framed
  }
  const std::uint16_t flags = header.flags.value();
  const std::uint64_t offset = header.offset.value();
  const std::uint32_t length = header.length.value();
  const auto command = static_cast<Command>(header.type.value());
  plan.fua = (flags & spec::kCmdFlagFua) != 0;

  if (command == Command::kWrite) {
    // The data follows the header whatever the answer, and must be read past to find the next request; only a
    // payload too large to be anything but an attack (NBD protocol "Size constraints") ends the connection.
    plan.payload_bytes = length;
    if (length > info.max_payload && length > spec::kDefaultMaxPayload) {
      plan.action = Action::kHardClose;
      plan.reason = "write payload larger than any this server accepts";
      return plan;
    }
  }
  if (command == Command::kDisconnect) {
    plan.action = Action::kDisconnect;
    return plan;
  }

  switch (command) {
    case Command::kRead:
    case Command::kWrite:
    case Command::kFlush:
    case Command::kTrim:
    case Command::kCache:
    case Command::kWriteZeroes:
      break;
    case Command::kBlockStatus:
      // NBD protocol "Metadata querying": no context can have been selected, since none is served.
      return Refuse(plan, Errno::kInval, "block status without a metadata context");
    default:
      // NBD_CMD_RESIZE (never advertised) and unknown commands.
      return Refuse(plan, Errno::kInval, "unsupported command");
  }
  if ((flags & ~kKnownFlags) != 0) return Refuse(plan, Errno::kInval, "unknown command flag");
  if ((flags & ~AllowedFlags(command, structured_replies, info)) != 0) {
    return Refuse(plan, Errno::kInval, "command flag not valid for this command");
  }

  switch (command) {
    case Command::kRead:
      // NBD protocol "NBD_CMD_READ": with simple replies an over-long read simply fails; with structured replies
      // the server may refuse it up front with EOVERFLOW, and must not overflow the chunk's 32-bit length.
      if (length > info.max_payload ||
          (structured_replies && length > std::numeric_limits<std::uint32_t>::max() - sizeof(spec::OffsetDataPrefix))) {
        return Refuse(plan, structured_replies ? Errno::kOverflow : Errno::kInval,
                     "read larger than the maximum payload");
      }
      if (!IsAligned(offset, length, info)) return Refuse(plan, Errno::kInval, "read not aligned to the block size");
      if (!IsInBounds(offset, length, info)) return Refuse(plan, Errno::kInval, "read beyond the end of the export");
      if (length == 0) return ReplyOk(plan);
      return Submit(plan, IoOp::kRead);

    case Command::kWrite:
      if (length > info.max_payload) return Refuse(plan, Errno::kInval, "write larger than the maximum payload");
      if (info.read_only) return Refuse(plan, Errno::kPerm, "write to a read-only export");
      if (!IsAligned(offset, length, info)) return Refuse(plan, Errno::kInval, "write not aligned to the block size");
      // NBD protocol "Error values": writes past the end are ENOSPC, unlike reads.
      if (!IsInBounds(offset, length, info)) return Refuse(plan, Errno::kNoSpc, "write beyond the end of the export");
      if (length == 0) return ReplyOk(plan);
      return Submit(plan, IoOp::kWrite);

    case Command::kFlush:
      // NBD protocol "NBD_CMD_FLUSH": offset and length are reserved and must be zero; a client breaking that
      // gets an error rather than a disconnect.
      if (offset != 0 || length != 0) return Refuse(plan, Errno::kInval, "flush with a nonzero offset or length");
      return Submit(plan, IoOp::kFlush);

    case Command::kTrim:
      // Trim and write zeroes carry no payload, so their length is not bounded by the maximum payload.
      if (info.read_only) return Refuse(plan, Errno::kPerm, "trim on a read-only export");
      if (!info.trim) return Refuse(plan, Errno::kInval, "trim is not supported by this export");
      if (!IsAligned(offset, length, info)) return Refuse(plan, Errno::kInval, "trim not aligned to the block size");
      if (!IsInBounds(offset, length, info)) return Refuse(plan, Errno::kInval, "trim beyond the end of the export");
      if (length == 0) return ReplyOk(plan);
      return Submit(plan, IoOp::kDiscard);

    case Command::kWriteZeroes:
      if (info.read_only) return Refuse(plan, Errno::kPerm, "write zeroes on a read-only export");
      if (!info.write_zeroes) return Refuse(plan, Errno::kInval, "write zeroes is not supported by this export");
      if (!IsAligned(offset, length, info)) {
        return Refuse(plan, Errno::kInval, "write zeroes not aligned to the block size");
      }
      if (!IsInBounds(offset, length, info)) {
        return Refuse(plan, Errno::kNoSpc, "write zeroes beyond the end of the export");
      }
      // The head cannot tell in advance whether zeroing is faster than writing, which is what a fast-zero request
      // asks to be told at once.
      if ((flags & spec::kCmdFlagFastZero) != 0) return Refuse(plan, Errno::kNotSup, "fast zero is not possible");
      if (length == 0) return ReplyOk(plan);
      return Submit(plan, IoOp::kWriteZeroes);

    case Command::kCache:
      // NBD_FLAG_SEND_CACHE is not advertised, but some clients send it anyway; it is only a hint, so it succeeds
      // without doing anything as long as it names part of the export.
      if (!IsInBounds(offset, length, info)) return Refuse(plan, Errno::kInval, "cache beyond the end of the export");
      return ReplyOk(plan);

    default:
      return Refuse(plan, Errno::kInval, "unsupported command");
  }
}

spec::Errno ToNbdErrno(const IoStatus& status) {
  switch (status.code) {
    case Errc::kOk:
      return Errno::kOk;
    case Errc::kInvalidArgument:
    case Errc::kOutOfRange:
      return Errno::kInval;
    // NBD protocol "Error values": ENOTSUP is reserved for fast zero, and a client reads an unknown error as EINVAL
    // anyway, so a command the device does not support is EINVAL.
    case Errc::kUnsupported:
      return Errno::kInval;
    case Errc::kNoSpace:
      return Errno::kNoSpc;
    // Another initiator holds the volume: the client is not permitted, and retrying will not help.
    case Errc::kReservationConflict:
      return Errno::kPerm;
    // kProtection covers both a write-protected volume and a failed protection-information check; the latter is
    // data corruption, which must never look like a permission problem, so both are EIO.
    case Errc::kProtection:
      return Errno::kIo;
    // The I/O channel closed under it: the server is stopping, which ESHUTDOWN tells the client.
    case Errc::kAborted:
      return Errno::kShutdown;
    // A removed head is a device that went away, which clients (like the kernel for a dead disk) know as EIO;
    // ESHUTDOWN would suggest that reconnecting might help.
    case Errc::kRemoved:
      return Errno::kIo;
    default:
      // Path errors, no path, timeouts, medium and target errors: the data could not be moved.
      return Errno::kIo;
  }
}

void EncodeSimpleReply(std::uint64_t cookie, spec::Errno error, spec::SimpleReply& out) {
  out.magic = spec::kSimpleReplyMagic;
  out.error = static_cast<std::uint32_t>(error);
  out.cookie = cookie;
}

void EncodeReadChunk(std::uint64_t cookie, std::uint64_t offset, std::uint32_t length, OffsetDataHead& out) {
  out.header.magic = spec::kStructuredReplyMagic;
  out.header.flags = spec::kReplyFlagDone;
  out.header.type = static_cast<std::uint16_t>(spec::ReplyType::kOffsetData);
  out.header.cookie = cookie;
  out.header.length = static_cast<std::uint32_t>(sizeof(spec::OffsetDataPrefix) + length);
  out.prefix.offset = offset;
}

void EncodeDoneChunk(std::uint64_t cookie, spec::StructuredReplyHeader& out) {
  out.magic = spec::kStructuredReplyMagic;
  out.flags = spec::kReplyFlagDone;
  out.type = static_cast<std::uint16_t>(spec::ReplyType::kNone);
  out.cookie = cookie;
  out.length = 0;
}

std::size_t EncodeErrorChunk(std::uint64_t cookie, spec::Errno error, std::string_view message,
                             std::span<std::byte> out) {
  constexpr std::size_t kFixed = sizeof(spec::StructuredReplyHeader) + sizeof(spec::ErrorChunkPrefix);
  if (out.size() < kFixed) return 0;
  std::size_t n = std::min({message.size(), kMaxErrorMessage, out.size() - kFixed});
  // The message must stay valid UTF-8: never cut between a lead byte and its continuation bytes.
  if (n < message.size()) {
    while (n > 0 && (static_cast<unsigned char>(message[n]) & 0xc0) == 0x80) --n;
  }
  spec::StructuredReplyHeader header;
  header.magic = spec::kStructuredReplyMagic;
  header.flags = spec::kReplyFlagDone;
  header.type = static_cast<std::uint16_t>(spec::ReplyType::kError);
  header.cookie = cookie;
  header.length = static_cast<std::uint32_t>(sizeof(spec::ErrorChunkPrefix) + n);
  spec::ErrorChunkPrefix prefix;
  prefix.error = static_cast<std::uint32_t>(error);
  prefix.message_length = static_cast<std::uint16_t>(n);
  wire::Store(out, header);
  wire::Store(out, prefix, sizeof(header));
  if (n > 0) std::memcpy(out.data() + kFixed, message.data(), n);
  return kFixed + n;
}

}  // namespace mpath::nbd
