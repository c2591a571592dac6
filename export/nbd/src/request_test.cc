#include "mpath/nbd/request.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace mpath::nbd {
namespace {

using Action = RequestPlan::Action;
using spec::Errno;
using Bytes = std::vector<std::byte>;

constexpr std::uint64_t kSize = 1 << 20;
constexpr std::uint32_t kMaxPayload = 64 * 1024;
constexpr std::uint64_t kWrap = 0xfffffffffffffe00;  // aligned, and adding any length past 511 wraps

void PutBe(Bytes& b, std::uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) b.push_back(static_cast<std::byte>(v >> (8 * i)));
}

// A request header decoded from wire bytes laid out by hand, as a connection would receive it.
spec::RequestHeader Header(std::uint16_t type, std::uint16_t flags, std::uint64_t offset, std::uint32_t length,
                           std::uint32_t magic = 0x25609513, std::uint64_t cookie = 0x0102030405060708) {
  Bytes b;
  PutBe(b, magic, 4);
  PutBe(b, flags, 2);
  PutBe(b, type, 2);
  PutBe(b, cookie, 8);
  PutBe(b, offset, 8);
  PutBe(b, length, 4);
  auto header = wire::Load<spec::RequestHeader>(b);
  EXPECT_TRUE(header.has_value());
  return *header;
}

ExportInfo Rw() {
  ExportInfo info;
  info.name = "rw";
  info.size_bytes = kSize;
  info.block_size = 512;
  info.max_payload = kMaxPayload;
  return info;
}
ExportInfo Ro() {
  ExportInfo info = Rw();
  info.read_only = true;
  return info;
}
ExportInfo NoTrimNoZeroes() {
  ExportInfo info = Rw();
  info.trim = false;
  info.write_zeroes = false;
  return info;
}
ExportInfo Block4k() {
  ExportInfo info = Rw();
  info.block_size = 4096;
  return info;
}
ExportInfo BigPayload() {
  ExportInfo info = Rw();
  info.size_bytes = 1ull << 30;
  info.max_payload = 64u << 20;
  return info;
}
ExportInfo ByteGranular() {
  ExportInfo info = Rw();
  info.block_size = 0;  // nonsense from a catalog must not divide by zero
  return info;
}

// Command and flag numbers spelled out, independent of the enums under test.
constexpr std::uint16_t kRead = 0, kWrite = 1, kDisc = 2, kFlush = 3, kTrim = 4, kCache = 5, kWriteZeroes = 6,
                        kBlockStatus = 7, kResize = 8;
constexpr std::uint16_t kFua = 1, kNoHole = 2, kDf = 4, kReqOne = 8, kFastZero = 16, kPayloadLen = 32;

struct Case {
  const char* what;
  ExportInfo info;
  bool structured;
  spec::RequestHeader header;
  Action action;
  IoOp op = IoOp::kRead;
  bool fua = false;
  std::uint32_t payload = 0;
  Errno error = Errno::kOk;
};

Case Submit(const char* what, ExportInfo info, spec::RequestHeader h, IoOp op, bool fua = false,
            std::uint32_t payload = 0, bool structured = false) {
  return {what, std::move(info), structured, h, Action::kSubmit, op, fua, payload, Errno::kOk};
}
Case Refuse(const char* what, ExportInfo info, spec::RequestHeader h, Errno error, std::uint32_t payload = 0,
            bool structured = false) {
  return {what, std::move(info), structured, h, Action::kReplyError, IoOp::kRead, false, payload, error};
}
Case Ok(const char* what, ExportInfo info, spec::RequestHeader h, std::uint32_t payload = 0) {
  return {what, std::move(info), false, h, Action::kReplyOk, IoOp::kRead, false, payload, Errno::kOk};
}
Case Other(const char* what, ExportInfo info, spec::RequestHeader h, Action action, std::uint32_t payload = 0) {
  return {what, std::move(info), false, h, action, IoOp::kRead, false, payload, Errno::kOk};
}

TEST(PlanRequestTest, EveryCommandFlagAndBound) {
  const std::vector<Case> cases = {
      // NBD_CMD_READ
      Submit("read", Rw(), Header(kRead, 0, 4096, 8192), IoOp::kRead),
      Submit("read to the last byte", Rw(), Header(kRead, 0, kSize - 512, 512), IoOp::kRead),
      Submit("read of a whole max payload", Rw(), Header(kRead, 0, 0, kMaxPayload), IoOp::kRead),
      Submit("read with FUA", Rw(), Header(kRead, kFua, 0, 512), IoOp::kRead, true),
      Submit("read of a read-only export", Ro(), Header(kRead, 0, 0, 512), IoOp::kRead),
      Submit("read with DF, structured", Rw(), Header(kRead, kDf, 0, 512), IoOp::kRead, false, 0, true),
      Refuse("read with DF, simple", Rw(), Header(kRead, kDf, 0, 512), Errno::kInval),
      Refuse("read with NO_HOLE", Rw(), Header(kRead, kNoHole, 0, 512), Errno::kInval),
      Refuse("read with REQ_ONE", Rw(), Header(kRead, kReqOne, 0, 512), Errno::kInval),
      Refuse("read with FAST_ZERO", Rw(), Header(kRead, kFastZero, 0, 512), Errno::kInval),
      Refuse("read with PAYLOAD_LEN", Rw(), Header(kRead, kPayloadLen, 0, 512), Errno::kInval),
      Refuse("read with an unknown flag", Rw(), Header(kRead, 0x40, 0, 512), Errno::kInval),
      Refuse("read with the top flag", Rw(), Header(kRead, 0x8000, 0, 512), Errno::kInval),
      Refuse("read over max payload, simple", Rw(), Header(kRead, 0, 0, kMaxPayload + 512), Errno::kInval),
      Refuse("read over max payload, structured", Rw(), Header(kRead, 0, 0, kMaxPayload + 512), Errno::kOverflow,
             0, true),
      Refuse("read at an unaligned offset", Rw(), Header(kRead, 0, 100, 512), Errno::kInval),
      Refuse("read of an unaligned length", Rw(), Header(kRead, 0, 0, 100), Errno::kInval),
      Refuse("read aligned to 512 on a 4k export", Block4k(), Header(kRead, 0, 512, 4096), Errno::kInval),
      Refuse("read across the end", Rw(), Header(kRead, 0, kSize - 512, 1024), Errno::kInval),
      Refuse("read past the end", Rw(), Header(kRead, 0, kSize, 512), Errno::kInval),
      Refuse("read whose end wraps", Rw(), Header(kRead, 0, kWrap, 1024), Errno::kInval),
      Refuse("read at the largest offset", Rw(), Header(kRead, 0, 0xffffffffffffffff, 512), Errno::kInval),
      Ok("read of nothing", Rw(), Header(kRead, 0, 0, 0)),
      Ok("read of nothing at the end", Rw(), Header(kRead, 0, kSize, 0)),
      Refuse("read of nothing past the end", Rw(), Header(kRead, 0, kSize + 512, 0), Errno::kInval),
      Submit("read of odd bytes, no block size", ByteGranular(), Header(kRead, 0, 3, 5), IoOp::kRead),

      // NBD_CMD_WRITE: the payload follows whatever the answer.
      Submit("write", Rw(), Header(kWrite, 0, 8192, 4096), IoOp::kWrite, false, 4096),
      Submit("write with FUA", Rw(), Header(kWrite, kFua, 0, 512), IoOp::kWrite, true, 512),
      Submit("write to the last byte", Rw(), Header(kWrite, 0, kSize - 512, 512), IoOp::kWrite, false, 512),
      Refuse("write to a read-only export", Ro(), Header(kWrite, 0, 0, 512), Errno::kPerm, 512),
      Refuse("write across the end", Rw(), Header(kWrite, 0, kSize - 512, 1024), Errno::kNoSpc, 1024),
      Refuse("write whose end wraps", Rw(), Header(kWrite, 0, kWrap, 1024), Errno::kNoSpc, 1024),
      Refuse("write at an unaligned offset", Rw(), Header(kWrite, 0, 1, 512), Errno::kInval, 512),
      Refuse("write of an unaligned length", Rw(), Header(kWrite, 0, 0, 513), Errno::kInval, 513),
      Refuse("write with DF", Rw(), Header(kWrite, kDf, 0, 512), Errno::kInval, 512, true),
      Refuse("write with NO_HOLE", Rw(), Header(kWrite, kNoHole, 0, 512), Errno::kInval, 512),
      Refuse("write with an unknown flag", Rw(), Header(kWrite, 0x100, 0, 512), Errno::kInval, 512),
      Refuse("write over max payload, under the DoS bound", Rw(), Header(kWrite, 0, 0, 128 * 1024), Errno::kInval,
             128 * 1024),
      Refuse("write at the DoS bound", Rw(), Header(kWrite, 0, 0, 1u << 25), Errno::kInval, 1u << 25),
      Other("write over the DoS bound", Rw(), Header(kWrite, 0, 0, (1u << 25) + 512), Action::kHardClose,
            (1u << 25) + 512),
      Other("write of 4 GiB", Rw(), Header(kWrite, 0, 0, 0xffffffff), Action::kHardClose, 0xffffffff),
      Submit("write over the DoS bound within a larger max payload", BigPayload(), Header(kWrite, 0, 0, 48u << 20),
             IoOp::kWrite, false, 48u << 20),
      Other("write over a larger max payload", BigPayload(), Header(kWrite, 0, 0, (64u << 20) + 512),
            Action::kHardClose, (64u << 20) + 512),
      Ok("write of nothing", Rw(), Header(kWrite, 0, 0, 0)),

      // NBD_CMD_FLUSH
      Submit("flush", Rw(), Header(kFlush, 0, 0, 0), IoOp::kFlush),
      Submit("flush with FUA", Rw(), Header(kFlush, kFua, 0, 0), IoOp::kFlush, true),
      Submit("flush of a read-only export", Ro(), Header(kFlush, 0, 0, 0), IoOp::kFlush),
      Refuse("flush with an offset", Rw(), Header(kFlush, 0, 512, 0), Errno::kInval),
      Refuse("flush with a length", Rw(), Header(kFlush, 0, 0, 512), Errno::kInval),
      Refuse("flush with NO_HOLE", Rw(), Header(kFlush, kNoHole, 0, 0), Errno::kInval),

      // NBD_CMD_TRIM: no payload, so no payload bound.
      Submit("trim", Rw(), Header(kTrim, 0, 0, 4096), IoOp::kDiscard),
      Submit("trim with FUA", Rw(), Header(kTrim, kFua, 0, 4096), IoOp::kDiscard, true),
      Submit("trim of the whole export", Rw(), Header(kTrim, 0, 0, kSize), IoOp::kDiscard),
      Refuse("trim of a read-only export", Ro(), Header(kTrim, 0, 0, 4096), Errno::kPerm),
      Refuse("trim where trim is off", NoTrimNoZeroes(), Header(kTrim, 0, 0, 4096), Errno::kInval),
      Refuse("trim at an unaligned offset", Rw(), Header(kTrim, 0, 10, 512), Errno::kInval),
      Refuse("trim across the end", Rw(), Header(kTrim, 0, kSize - 512, 1024), Errno::kInval),
      Refuse("trim whose end wraps", Rw(), Header(kTrim, 0, kWrap, 1024), Errno::kInval),
      Refuse("trim with NO_HOLE", Rw(), Header(kTrim, kNoHole, 0, 512), Errno::kInval),
      Ok("trim of nothing", Rw(), Header(kTrim, 0, 0, 0)),

      // NBD_CMD_WRITE_ZEROES
      Submit("write zeroes", Rw(), Header(kWriteZeroes, 0, 0, 4096), IoOp::kWriteZeroes),
      Submit("write zeroes with FUA", Rw(), Header(kWriteZeroes, kFua, 0, 4096), IoOp::kWriteZeroes, true),
      Submit("write zeroes with NO_HOLE", Rw(), Header(kWriteZeroes, kNoHole | kFua, 0, 4096), IoOp::kWriteZeroes,
             true),
      Submit("write zeroes of the whole export", Rw(), Header(kWriteZeroes, 0, 0, kSize), IoOp::kWriteZeroes),
      Refuse("write zeroes, fast (not advertised)", Rw(), Header(kWriteZeroes, kFastZero, 0, 4096), Errno::kInval),
      Refuse("write zeroes to a read-only export", Ro(), Header(kWriteZeroes, 0, 0, 4096), Errno::kPerm),
      Refuse("write zeroes where it is off", NoTrimNoZeroes(), Header(kWriteZeroes, 0, 0, 4096), Errno::kInval),
      Refuse("write zeroes across the end", Rw(), Header(kWriteZeroes, 0, kSize, 512), Errno::kNoSpc),
      Refuse("write zeroes whose end wraps", Rw(), Header(kWriteZeroes, 0, kWrap, 1024), Errno::kNoSpc),
      Refuse("write zeroes unaligned", Rw(), Header(kWriteZeroes, 0, 0, 1000), Errno::kInval),
      Refuse("write zeroes with DF", Rw(), Header(kWriteZeroes, kDf, 0, 512), Errno::kInval, 0, true),
      Ok("write zeroes of nothing", Rw(), Header(kWriteZeroes, 0, 0, 0)),

      // NBD_CMD_CACHE: never advertised, answered as a hint.
      Ok("cache", Rw(), Header(kCache, 0, 0, 4096)),
      Ok("cache with FUA", Rw(), Header(kCache, kFua, 0, 4096)),
      Refuse("cache past the end", Rw(), Header(kCache, 0, kSize, 512), Errno::kInval),
      Refuse("cache whose end wraps", Rw(), Header(kCache, 0, kWrap, 1024), Errno::kInval),
      Refuse("cache with DF", Rw(), Header(kCache, kDf, 0, 512), Errno::kInval, 0, true),

      // The rest.
      Refuse("block status", Rw(), Header(kBlockStatus, 0, 0, 512), Errno::kInval, 0, true),
      Refuse("block status with REQ_ONE", Rw(), Header(kBlockStatus, kReqOne, 0, 512), Errno::kInval, 0, true),
      Refuse("resize", Rw(), Header(kResize, 0, 0, 0), Errno::kInval),
      Refuse("command 9", Rw(), Header(9, 0, 0, 512), Errno::kInval),
      Refuse("command 0xffff", Rw(), Header(0xffff, 0xffff, 0, 0xffffffff), Errno::kInval),
      Other("disconnect", Rw(), Header(kDisc, 0, 0, 0), Action::kDisconnect),
      Other("disconnect with junk", Ro(), Header(kDisc, 0xffff, 7, 9), Action::kDisconnect),
      Other("bad magic", Rw(), Header(kRead, 0, 0, 512, 0x67446698), Action::kHardClose),
      Other("bad magic on a write", Rw(), Header(kWrite, 0, 0, 512, 0x25609512), Action::kHardClose),
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    RequestPlan plan = PlanRequest(c.header, c.info, c.structured);
    EXPECT_EQ(plan.action, c.action);
    if (c.action == Action::kSubmit) {
      EXPECT_EQ(plan.op, c.op);
      EXPECT_EQ(plan.fua, c.fua);
    }
    if (c.action != Action::kHardClose) {
      EXPECT_EQ(plan.payload_bytes, c.payload);
    }
    EXPECT_EQ(plan.error, c.error);
    ASSERT_NE(plan.reason, nullptr);
    bool refused = c.action == Action::kReplyError || c.action == Action::kHardClose;
    EXPECT_EQ(std::string(plan.reason).empty(), !refused) << plan.reason;
  }
}

TEST(PlanRequestTest, FastZeroIsNotSupportedWhenAdvertised) {
  // Nothing advertises NBD_FLAG_SEND_FAST_ZERO today; if an export ever does, a fast-zero request must fail at once
  // with ENOTSUP (NBD protocol "NBD_CMD_WRITE_ZEROES"), and that is what the plan says, whatever the flags.
  ExportInfo info = Rw();
  if ((info.TransmissionFlags() & spec::kTxSendFastZero) == 0) {
    EXPECT_EQ(PlanRequest(Header(kWriteZeroes, kFastZero, 0, 512), info, true).error, Errno::kInval);
  } else {
    EXPECT_EQ(PlanRequest(Header(kWriteZeroes, kFastZero, 0, 512), info, true).error, Errno::kNotSup);
  }
}

TEST(PlanRequestTest, ReasonsNameTheProblem) {
  EXPECT_STREQ(PlanRequest(Header(kRead, 0, kSize, 512), Rw(), false).reason, "read beyond the end of the export");
  EXPECT_STREQ(PlanRequest(Header(kWrite, 0, 0, 512), Ro(), false).reason, "write to a read-only export");
  EXPECT_STREQ(PlanRequest(Header(kRead, 0x40, 0, 512), Rw(), false).reason, "unknown command flag");
}

TEST(ToNbdErrnoTest, EveryErrorClass) {
  struct Row {
    Errc code;
    Errno expected;
  };
  const std::vector<Row> rows = {
      {Errc::kOk, Errno::kOk},
      {Errc::kInvalidArgument, Errno::kInval},
      {Errc::kNotFound, Errno::kIo},
      {Errc::kAlreadyExists, Errno::kIo},
      {Errc::kOutOfRange, Errno::kInval},
      {Errc::kMismatch, Errno::kIo},
      {Errc::kUnsupported, Errno::kInval},
      {Errc::kPathError, Errno::kIo},
      {Errc::kTargetError, Errno::kIo},
      {Errc::kMediumError, Errno::kIo},
      {Errc::kReservationConflict, Errno::kPerm},
      {Errc::kNoSpace, Errno::kNoSpc},
      {Errc::kProtection, Errno::kIo},
      {Errc::kNoPath, Errno::kIo},
      {Errc::kTimedOut, Errno::kIo},
      {Errc::kAborted, Errno::kShutdown},
      {Errc::kRemoved, Errno::kIo},
      {Errc::kBusy, Errno::kIo},
      {Errc::kInternal, Errno::kIo},
      {static_cast<Errc>(200), Errno::kIo},
  };
  for (const Row& row : rows) {
    EXPECT_EQ(ToNbdErrno(IoStatus::Of(row.code, "test")), row.expected) << ErrcName(row.code);
  }
}

template <typename T>
Bytes BytesOf(const T& value) {
  auto span = wire::BytesOf(value);
  return Bytes(span.begin(), span.end());
}

TEST(EncodeTest, SimpleReply) {
  spec::SimpleReply reply;
  EncodeSimpleReply(0x1122334455667788, Errno::kNoSpc, reply);
  Bytes expected;
  PutBe(expected, 0x67446698, 4);
  PutBe(expected, 28, 4);
  PutBe(expected, 0x1122334455667788, 8);
  EXPECT_EQ(BytesOf(reply), expected);
}

TEST(EncodeTest, ReadChunk) {
  OffsetDataHead head;
  EncodeReadChunk(0xa1a2a3a4a5a6a7a8, 0x0000100000000200, 65536, head);
  Bytes expected;
  PutBe(expected, 0x668e33ef, 4);
  PutBe(expected, 1, 2);  // DONE
  PutBe(expected, 1, 2);  // OFFSET_DATA
  PutBe(expected, 0xa1a2a3a4a5a6a7a8, 8);
  PutBe(expected, 8 + 65536, 4);
  PutBe(expected, 0x0000100000000200, 8);
  EXPECT_EQ(BytesOf(head), expected);
}

TEST(EncodeTest, DoneChunk) {
  spec::StructuredReplyHeader header;
  EncodeDoneChunk(42, header);
  Bytes expected;
  PutBe(expected, 0x668e33ef, 4);
  PutBe(expected, 1, 2);
  PutBe(expected, 0, 2);
  PutBe(expected, 42, 8);
  PutBe(expected, 0, 4);
  EXPECT_EQ(BytesOf(header), expected);
}

Bytes ErrorChunk(std::uint64_t cookie, std::uint32_t error, std::string_view message) {
  Bytes b;
  PutBe(b, 0x668e33ef, 4);
  PutBe(b, 1, 2);
  PutBe(b, 0x8001, 2);
  PutBe(b, cookie, 8);
  PutBe(b, 6 + message.size(), 4);
  PutBe(b, error, 4);
  PutBe(b, message.size(), 2);
  for (char c : message) b.push_back(static_cast<std::byte>(c));
  return b;
}

TEST(EncodeTest, ErrorChunk) {
  std::array<std::byte, kMaxErrorChunk + 10> buffer{};
  std::size_t n = EncodeErrorChunk(7, Errno::kInval, "read beyond the end of the export", buffer);
  EXPECT_EQ(Bytes(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n)),
            ErrorChunk(7, 22, "read beyond the end of the export"));

  n = EncodeErrorChunk(8, Errno::kIo, "", buffer);
  EXPECT_EQ(Bytes(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n)), ErrorChunk(8, 5, ""));

  // Cut to kMaxErrorMessage.
  std::string long_message(500, 'x');
  n = EncodeErrorChunk(9, Errno::kIo, long_message, buffer);
  EXPECT_EQ(n, kMaxErrorChunk);
  EXPECT_EQ(Bytes(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n)),
            ErrorChunk(9, 5, std::string(kMaxErrorMessage, 'x')));

  // Cut to the buffer.
  std::array<std::byte, 30> small{};
  n = EncodeErrorChunk(10, Errno::kPerm, "write to a read-only export", small);
  EXPECT_EQ(n, 30u);
  EXPECT_EQ(Bytes(small.begin(), small.end()), ErrorChunk(10, 1, "writ"));

  // Never cut inside a UTF-8 sequence: "é" is two bytes; 3 bytes of room hold "a" and not half of it.
  std::array<std::byte, 26 + 2> utf8{};
  n = EncodeErrorChunk(11, Errno::kIo, "a\xc3\xa9z", utf8);
  EXPECT_EQ(Bytes(utf8.begin(), utf8.begin() + static_cast<std::ptrdiff_t>(n)), ErrorChunk(11, 5, "a"));

  // No room for even the fixed part: nothing is written.
  std::array<std::byte, 25> tiny{};
  EXPECT_EQ(EncodeErrorChunk(12, Errno::kIo, "x", tiny), 0u);
  EXPECT_EQ(tiny, (std::array<std::byte, 25>{}));
}

// A poor man's fuzzer: random headers against random exports always give a plan the connection can act on safely.
TEST(PlanRequestTest, RandomHeadersGiveSafePlans) {
  std::mt19937_64 rng(7);
  const std::vector<ExportInfo> infos = {Rw(), Ro(), NoTrimNoZeroes(), Block4k(), BigPayload(), ByteGranular()};
  const std::array<Errno, 8> allowed = {Errno::kPerm,     Errno::kIo,      Errno::kNoMem,  Errno::kInval,
                                        Errno::kNoSpc,    Errno::kOverflow, Errno::kNotSup, Errno::kShutdown};
  auto pick_offset = [&]() -> std::uint64_t {
    switch (rng() % 4) {
      case 0: return rng();
      case 1: return (rng() % 4096) * 512;
      case 2: return kSize - 512 * (rng() % 4);
      default: return rng() % 2 ? kWrap : 0;
    }
  };
  auto pick_length = [&]() -> std::uint32_t {
    switch (rng() % 4) {
      case 0: return static_cast<std::uint32_t>(rng());
      case 1: return static_cast<std::uint32_t>((rng() % 256) * 512);
      case 2: return static_cast<std::uint32_t>(rng() % 1024);
      default: return 0;
    }
  };
  for (int i = 0; i < 5000; ++i) {
    const ExportInfo& info = infos[rng() % infos.size()];
    const bool structured = rng() % 2;
    const auto type = static_cast<std::uint16_t>(rng() % 4 ? rng() % 10 : rng());
    const auto flags = static_cast<std::uint16_t>(rng() % 2 ? rng() % 64 : rng());
    const std::uint64_t offset = pick_offset();
    const std::uint32_t length = pick_length();
    const std::uint32_t magic = rng() % 20 ? 0x25609513 : static_cast<std::uint32_t>(rng());
    RequestPlan plan = PlanRequest(Header(type, flags, offset, length, magic), info, structured);
    SCOPED_TRACE(testing::Message() << "type " << type << " flags " << flags << " offset " << offset << " length "
                                    << length << " magic " << magic << " info " << info.name);
    ASSERT_NE(plan.reason, nullptr);
    if (magic != 0x25609513) {
      ASSERT_EQ(plan.action, Action::kHardClose);
      continue;
    }
    if (plan.action != Action::kHardClose) {
      ASSERT_EQ(plan.payload_bytes, type == kWrite ? length : 0u);
    }
    switch (plan.action) {
      case Action::kSubmit: {
        const std::uint64_t block = std::max<std::uint32_t>(info.block_size, 1);
        ASSERT_LE(length, info.size_bytes);
        ASSERT_LE(offset, info.size_bytes - length);
        ASSERT_EQ(offset % block, 0u);
        ASSERT_EQ(length % block, 0u);
        if (plan.op == IoOp::kRead || plan.op == IoOp::kWrite) {
          ASSERT_LE(length, info.max_payload);
        }
        if (plan.op != IoOp::kRead && plan.op != IoOp::kFlush) {
          ASSERT_FALSE(info.read_only);
        }
        ASSERT_EQ(plan.fua, (flags & kFua) != 0);
        break;
      }
      case Action::kReplyError:
        ASSERT_NE(std::find(allowed.begin(), allowed.end(), plan.error), allowed.end());
        ASSERT_STRNE(plan.reason, "");
        break;
      case Action::kReplyOk:
        break;
      case Action::kDisconnect:
        ASSERT_EQ(type, kDisc);
        break;
      case Action::kHardClose:
        // Only a write too large to read past ends the connection.
        ASSERT_EQ(type, kWrite);
        ASSERT_GT(length, spec::kDefaultMaxPayload);
        ASSERT_GT(length, info.max_payload);
        break;
    }
  }
}

}  // namespace
}  // namespace mpath::nbd
