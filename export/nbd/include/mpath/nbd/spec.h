// The NBD wire format, from the protocol document (NetworkBlockDevice/nbd doc/proto.md, revision of 2025-05-31,
// "NBD protocol" below). Every integer on the wire is big-endian. Only the fixed newstyle handshake and the compact
// (not extended) request and reply headers are spoken; oldstyle and extended headers are refused.
#pragma once

#include <cstdint>

#include "mpath/proto/wire.h"

namespace mpath::nbd::spec {

// NBD protocol "Newstyle negotiation": the server's greeting starts with both magics.
inline constexpr std::uint64_t kNbdMagic = 0x4e42444d41474943;  // "NBDMAGIC"
inline constexpr std::uint64_t kIHaveOpt = 0x49484156454F5054;  // "IHAVEOPT": greeting and every option request
// NBD protocol "Fixed newstyle negotiation": every option reply starts with it.
inline constexpr std::uint64_t kOptionReplyMagic = 0x3e889045565a9;
// NBD protocol "Request message", "Simple reply message", "Structured reply chunk message".
inline constexpr std::uint32_t kRequestMagic = 0x25609513;
inline constexpr std::uint32_t kSimpleReplyMagic = 0x67446698;
inline constexpr std::uint32_t kStructuredReplyMagic = 0x668e33ef;

// NBD protocol "Handshake flags" (16 bits, server to client).
inline constexpr std::uint16_t kFlagFixedNewstyle = 1u << 0;
inline constexpr std::uint16_t kFlagNoZeroes = 1u << 1;
// NBD protocol "Client flags" (32 bits, client to server). Any other bit set: the server closes.
inline constexpr std::uint32_t kClientFlagFixedNewstyle = 1u << 0;
inline constexpr std::uint32_t kClientFlagNoZeroes = 1u << 1;

// NBD protocol "Transmission flags" (16 bits, per export).
inline constexpr std::uint16_t kTxHasFlags = 1u << 0;
inline constexpr std::uint16_t kTxReadOnly = 1u << 1;
inline constexpr std::uint16_t kTxSendFlush = 1u << 2;
inline constexpr std::uint16_t kTxSendFua = 1u << 3;
inline constexpr std::uint16_t kTxRotational = 1u << 4;
inline constexpr std::uint16_t kTxSendTrim = 1u << 5;
inline constexpr std::uint16_t kTxSendWriteZeroes = 1u << 6;
inline constexpr std::uint16_t kTxSendDf = 1u << 7;
inline constexpr std::uint16_t kTxCanMultiConn = 1u << 8;
inline constexpr std::uint16_t kTxSendResize = 1u << 9;
inline constexpr std::uint16_t kTxSendCache = 1u << 10;
inline constexpr std::uint16_t kTxSendFastZero = 1u << 11;

// NBD protocol "Option types".
enum class Option : std::uint32_t {
  kExportName = 1,
  kAbort = 2,
  kList = 3,
  kPeekExport = 4,  // withdrawn
  kStartTls = 5,
  kInfo = 6,
  kGo = 7,
  kStructuredReply = 8,
  kListMetaContext = 9,
  kSetMetaContext = 10,
  kExtendedHeaders = 11,
};

// NBD protocol "Option reply types".
inline constexpr std::uint32_t kRepErrorBit = 1u << 31;
enum class OptionReply : std::uint32_t {
  kAck = 1,
  kServer = 2,
  kInfo = 3,
  kMetaContext = 4,
  kErrUnsupported = kRepErrorBit + 1,
  kErrPolicy = kRepErrorBit + 2,
  kErrInvalid = kRepErrorBit + 3,
  kErrPlatform = kRepErrorBit + 4,
  kErrTlsRequired = kRepErrorBit + 5,
  kErrUnknown = kRepErrorBit + 6,
  kErrShutdown = kRepErrorBit + 7,
  kErrBlockSizeRequired = kRepErrorBit + 8,
  kErrTooBig = kRepErrorBit + 9,
  kErrExtendedHeaderRequired = kRepErrorBit + 10,
};

// NBD protocol "NBD_REP_INFO" information types.
enum class InfoType : std::uint16_t {
  kExport = 0,
  kName = 1,
  kDescription = 2,
  kBlockSize = 3,
};

// NBD protocol "Command flags".
inline constexpr std::uint16_t kCmdFlagFua = 1u << 0;
inline constexpr std::uint16_t kCmdFlagNoHole = 1u << 1;
inline constexpr std::uint16_t kCmdFlagDf = 1u << 2;
inline constexpr std::uint16_t kCmdFlagReqOne = 1u << 3;
inline constexpr std::uint16_t kCmdFlagFastZero = 1u << 4;
inline constexpr std::uint16_t kCmdFlagPayloadLen = 1u << 5;

// NBD protocol "Request types".
enum class Command : std::uint16_t {
  kRead = 0,
  kWrite = 1,
  kDisconnect = 2,
  kFlush = 3,
  kTrim = 4,
  kCache = 5,
  kWriteZeroes = 6,
  kBlockStatus = 7,
  kResize = 8,
};

// NBD protocol "Structured reply flags" and "Structured reply types".
inline constexpr std::uint16_t kReplyFlagDone = 1u << 0;
enum class ReplyType : std::uint16_t {
  kNone = 0,
  kOffsetData = 1,
  kOffsetHole = 2,
  kBlockStatus = 5,
  kError = (1u << 15) + 1,
  kErrorOffset = (1u << 15) + 2,
};

// NBD protocol "Error values": the only values the error field may carry.
enum class Errno : std::uint32_t {
  kOk = 0,
  kPerm = 1,
  kIo = 5,
  kNoMem = 12,
  kInval = 22,
  kNoSpc = 28,
  kOverflow = 75,
  kNotSup = 95,
  kShutdown = 108,
};

// NBD protocol "Size constraints": what a client may assume when none were advertised, and the largest payload that
// must never be taken for a denial of service.
inline constexpr std::uint32_t kDefaultMaxPayload = 1u << 25;
// NBD protocol "Conventions": strings (export names, messages) are at most 4096 bytes.
inline constexpr std::uint32_t kMaxStringLength = 4096;

// NBD protocol "Newstyle negotiation": the server's first message.
struct Greeting {
  wire::Be64 nbd_magic;          // kNbdMagic
  wire::Be64 ihaveopt;           // kIHaveOpt
  wire::Be16 handshake_flags;    // kFlagFixedNewstyle | kFlagNoZeroes
};
static_assert(sizeof(Greeting) == 18);

// NBD protocol "Newstyle negotiation": an option request header; `length` bytes of data follow.
struct OptionHeader {
  wire::Be64 magic;   // kIHaveOpt
  wire::Be32 option;
  wire::Be32 length;
};
static_assert(sizeof(OptionHeader) == 16);

// NBD protocol "Fixed newstyle negotiation": an option reply header; `length` bytes of data follow.
struct OptionReplyHeader {
  wire::Be64 magic;   // kOptionReplyMagic
  wire::Be32 option;
  wire::Be32 reply_type;
  wire::Be32 length;
};
static_assert(sizeof(OptionReplyHeader) == 20);

// NBD protocol "NBD_OPT_EXPORT_NAME": the reply (followed by 124 zero bytes unless both sides agreed NO_ZEROES).
struct ExportNameReply {
  wire::Be64 export_size;
  wire::Be16 transmission_flags;
};
static_assert(sizeof(ExportNameReply) == 10);
inline constexpr std::size_t kExportNameReplyPadding = 124;

// NBD protocol "NBD_REP_INFO", NBD_INFO_EXPORT.
struct InfoExport {
  wire::Be16 type;  // InfoType::kExport
  wire::Be64 export_size;
  wire::Be16 transmission_flags;
};
static_assert(sizeof(InfoExport) == 12);

// NBD protocol "NBD_REP_INFO", NBD_INFO_BLOCK_SIZE.
struct InfoBlockSize {
  wire::Be16 type;  // InfoType::kBlockSize
  wire::Be32 minimum_block_size;
  wire::Be32 preferred_block_size;
  wire::Be32 maximum_payload;
};
static_assert(sizeof(InfoBlockSize) == 14);

// NBD protocol "Request message"; `length` bytes of data follow for NBD_CMD_WRITE.
struct RequestHeader {
  wire::Be32 magic;  // kRequestMagic
  wire::Be16 flags;  // kCmdFlag*
  wire::Be16 type;   // Command
  wire::Be64 cookie;
  wire::Be64 offset;
  wire::Be32 length;
};
static_assert(sizeof(RequestHeader) == 28);

// NBD protocol "Simple reply message"; for a successful NBD_CMD_READ the data follows.
struct SimpleReply {
  wire::Be32 magic;  // kSimpleReplyMagic
  wire::Be32 error;  // Errno
  wire::Be64 cookie;
};
static_assert(sizeof(SimpleReply) == 16);

// NBD protocol "Structured reply chunk message"; `length` bytes of payload follow.
struct StructuredReplyHeader {
  wire::Be32 magic;  // kStructuredReplyMagic
  wire::Be16 flags;  // kReplyFlagDone
  wire::Be16 type;   // ReplyType
  wire::Be64 cookie;
  wire::Be32 length;
};
static_assert(sizeof(StructuredReplyHeader) == 20);

// NBD protocol "NBD_REPLY_TYPE_OFFSET_DATA": the payload starts with the offset, then the data.
struct OffsetDataPrefix {
  wire::Be64 offset;
};
static_assert(sizeof(OffsetDataPrefix) == 8);

// NBD protocol "NBD_REPLY_TYPE_ERROR": the payload; `message_length` bytes of UTF-8 message follow.
struct ErrorChunkPrefix {
  wire::Be32 error;  // Errno
  wire::Be16 message_length;
};
static_assert(sizeof(ErrorChunkPrefix) == 6);

}  // namespace mpath::nbd::spec
