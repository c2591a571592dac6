// Head lifecycle, geometry checks, request validation and listings.
#include "mpath/core/head.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mpath/testing/head_fixture.h"

namespace mpath {
namespace {

using testing::HeadFixture;

TEST(Head, BecomesLiveWithItsFirstUsablePath) {
  HeadFixture f;
  EXPECT_EQ(f.head().state(), HeadState::kFailing);
  f.AddPath("a", AccessState::kStandby);
  EXPECT_EQ(f.head().state(), HeadState::kFailing);
  f.AddPath("b");
  EXPECT_EQ(f.head().state(), HeadState::kLive);
}

TEST(Head, RefusesAPathWhoseGeometryDisagreesAndStaysAsItWas) {
  HeadFixture f;
  f.AddPath("a");
  DeviceInfo info = f.DescribePath("odd");
  info.capacity_bytes = HeadFixture::kCapacity * 2;
  auto bigger = f.head().AddPath(info, std::make_unique<NullPath>());
  ASSERT_FALSE(bigger);
  EXPECT_EQ(bigger.error().code(), Errc::kMismatch);
  EXPECT_NE(bigger.error().message().find("2097152"), std::string::npos) << bigger.error().message();
  EXPECT_NE(bigger.error().message().find("1048576"), std::string::npos) << bigger.error().message();

  info.capacity_bytes = HeadFixture::kCapacity;
  info.block_size = 4096;
  auto blocks = f.head().AddPath(info, std::make_unique<NullPath>());
  ASSERT_FALSE(blocks);
  EXPECT_EQ(blocks.error().code(), Errc::kMismatch);
  EXPECT_NE(blocks.error().message().find("4096"), std::string::npos);

  info.block_size = HeadFixture::kBlock;
  info.identity = DeviceIdentity("naa.6001405000000000000000000000ffff");
  auto other = f.head().AddPath(info, std::make_unique<NullPath>());
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code(), Errc::kMismatch);

  EXPECT_EQ(f.head().path_count(), 1u);
}

TEST(Head, RefusesTheSamePathNameTwice) {
  HeadFixture f;
  f.AddPath("a");
  DeviceInfo info = f.DescribePath("a");
  auto again = f.head().AddPath(info, std::make_unique<NullPath>());
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::kAlreadyExists);
  EXPECT_NE(again.error().message().find("'a'"), std::string::npos);
}

TEST(Head, RejectsMalformedIoWithoutSendingIt) {
  HeadFixture f;
  PathId a = f.AddPath("a");
  struct Case {
    std::uint64_t offset;
    std::uint32_t length;
    bool with_buffer;
    Errc expected;
  };
  std::byte buffer[1024];
  for (const Case& c : {Case{1, 512, true, Errc::kInvalidArgument}, Case{0, 100, true, Errc::kInvalidArgument},
                        Case{0, 0, true, Errc::kInvalidArgument}, Case{0, 512, false, Errc::kInvalidArgument},
                        Case{HeadFixture::kCapacity, 512, true, Errc::kOutOfRange},
                        Case{HeadFixture::kCapacity - 512, 1024, true, Errc::kOutOfRange},
                        Case{~std::uint64_t{511}, 1024, true, Errc::kOutOfRange}}) {
    IoRequest io;
    io.op = IoOp::kRead;
    io.offset = c.offset;
    io.length = c.length;
    io.data = c.with_buffer ? buffer : nullptr;
    IoStatus seen = IoStatus::Of(Errc::kInternal, "not completed");
    io.OnComplete([](IoRequest& r, void* out) { *static_cast<IoStatus*>(out) = r.status; }, &seen);
    f.channel().Submit(io);
    EXPECT_EQ(seen.code, c.expected) << "offset " << c.offset << " length " << c.length;
  }
  EXPECT_EQ(f.driver(a).submitted(), 0u);

  // The last block is fine, and so is a flush.
  f.Submit((HeadFixture::kCapacity / HeadFixture::kBlock) - 1);
  f.Submit(0, IoOp::kFlush);
  EXPECT_EQ(f.driver(a).submitted(), 2u);
}

TEST(Head, ProbesAreNotAcceptedFromSubmitters) {
  HeadFixture f;
  PathId a = f.AddPath("a");
  f.Submit(0, IoOp::kProbe);
  ASSERT_EQ(f.log().entries.size(), 1u);
  EXPECT_EQ(f.log().entries[0].status.code, Errc::kInvalidArgument);
  EXPECT_EQ(f.driver(a).submitted(), 0u);
}

TEST(Head, ListingShowsStatesAndUsability) {
  HeadFixture f;
  PathId a = f.AddPath("a", AccessState::kOptimized, NullPath::Mode::kInline, 1);
  PathId b = f.AddPath("b", AccessState::kStandby);
  f.Submit(0);
  auto paths = f.head().Paths();
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(paths[0].id, a);
  EXPECT_EQ(paths[0].name, "a");
  EXPECT_EQ(paths[0].locality, 1);
  EXPECT_TRUE(paths[0].usable);
  EXPECT_EQ(paths[0].counters.ios, 1u);
  EXPECT_EQ(paths[0].counters.bytes, HeadFixture::kBlock);
  EXPECT_EQ(paths[1].id, b);
  EXPECT_EQ(paths[1].access, AccessState::kStandby);
  EXPECT_FALSE(paths[1].usable);

  ASSERT_TRUE(f.head().SetAccessState(b, AccessState::kOptimized, /*preferred=*/true));
  paths = f.head().Paths();
  EXPECT_TRUE(paths[1].usable);
  EXPECT_TRUE(paths[1].preferred);
}

TEST(Head, ClosingAChannelAbortsWhatItQueued) {
  HeadFixture f;
  f.AddPath("a", AccessState::kOptimized, NullPath::Mode::kInline, kUnknownLocality, PathState::kConnecting);
  f.Submit(0);
  f.Submit(1);
  EXPECT_EQ(f.channel().queued(), 2u);
  f.channel().Close();
  ASSERT_EQ(f.log().entries.size(), 2u);
  for (const auto& e : f.log().entries) EXPECT_EQ(e.status.code, Errc::kAborted);
  EXPECT_EQ(f.channel().queued(), 0u);
}

TEST(Head, CountersSumEveryChannel) {
  HeadFixture f;
  f.AddPath("a");
  f.Submit(0);
  f.Submit(1);
  {
    auto second = f.head().OpenChannel(f.executor());
    IoRequest io;
    std::byte block[HeadFixture::kBlock];
    io.op = IoOp::kWrite;
    io.length = HeadFixture::kBlock;
    io.data = block;
    io.OnComplete([](IoRequest&, void*) {}, nullptr);
    second->Submit(io);
  }
  IoCounters total = f.head().Counters();
  EXPECT_EQ(total.ios, 3u);
  EXPECT_EQ(total.bytes, 3u * HeadFixture::kBlock);
  EXPECT_EQ(total.latency.count(), 3u);
}

TEST(Head, LatencyIsMeasuredOnEveryIoOfANewPathThenSampled) {
  HeadOptions options;
  options.latency_sample_interval = 16;
  HeadFixture f(options);
  f.AddPath("a");
  for (std::size_t i = 0; i < 16 + 160; ++i) f.Submit(i);
  IoCounters c = f.head().Counters();
  EXPECT_EQ(c.ios, 176u);
  EXPECT_EQ(c.latency.count(), 16u + 10u) << "16 warm-up samples, then one in 16";

  HeadOptions every;
  every.latency_sample_interval = 1;
  HeadFixture g(every);
  g.AddPath("a");
  for (std::size_t i = 0; i < 100; ++i) g.Submit(i);
  EXPECT_EQ(g.head().Counters().latency.count(), 100u);
}

TEST(Head, LatencySampleIntervalMustBeAPowerOfTwo) {
  for (std::uint32_t bad : {0u, 3u, 12u}) {
    HeadOptions options;
    options.latency_sample_interval = bad;
    auto valid = options.Validate();
    ASSERT_FALSE(valid) << bad;
    EXPECT_NE(valid.error().message().find("latency sample interval"), std::string::npos);
  }
}


// ---- Transfer limits (Head::limits, HeadChannel validation)

// Adds an inline null path with the given limits; returns the result so that refusals can be checked.
Result<PathId> AddLimitedPath(HeadFixture& f, std::string name, std::uint32_t max_transfer, std::uint64_t max_zeroing,
                              NullPath** driver = nullptr) {
  DeviceInfo info = f.DescribePath(std::move(name));
  info.max_transfer_bytes = max_transfer;
  info.max_zeroing_bytes = max_zeroing;
  auto path = std::make_unique<NullPath>();
  if (driver != nullptr) *driver = path.get();
  return f.head().AddPath(info, std::move(path));
}

TEST(HeadLimits, TightenAsPathsAreAddedAndNeverLoosen) {
  HeadFixture f;
  EXPECT_EQ(f.head().limits(), IoLimits{}) << "no path, no limit";
  f.AddPath("unlimited");
  EXPECT_EQ(f.head().limits(), IoLimits{}) << "0 is no limit";

  ASSERT_TRUE(AddLimitedPath(f, "a", 65536, 1 << 20));
  EXPECT_EQ(f.head().limits(), (IoLimits{65536, 1 << 20}));
  // A looser path, and one that sets only one limit, leave the other limit alone.
  ASSERT_TRUE(AddLimitedPath(f, "b", 131072, 0));
  EXPECT_EQ(f.head().limits(), (IoLimits{65536, 1 << 20}));
  const PathId c = AddLimitedPath(f, "c", 0, 262144).value();
  EXPECT_EQ(f.head().limits(), (IoLimits{65536, 262144}));
  // Not whole blocks: rounded down, so that a request cut at the limit stays aligned.
  ASSERT_TRUE(AddLimitedPath(f, "d", 32768 + 100, 262144 - 1));
  EXPECT_EQ(f.head().limits(), (IoLimits{32768, 262144 - HeadFixture::kBlock}));

  // Removing the tightest path does not loosen them: a request sized by the old limits may still be on its way.
  ASSERT_TRUE(f.head().RemovePath(c));
  EXPECT_EQ(f.head().limits(), (IoLimits{32768, 262144 - HeadFixture::kBlock}));
  ASSERT_TRUE(AddLimitedPath(f, "e", 0, 0));
  EXPECT_EQ(f.head().limits(), (IoLimits{32768, 262144 - HeadFixture::kBlock}));
}

TEST(HeadLimits, APathThatCannotCarryOneBlockIsRefused) {
  HeadFixture f;
  ASSERT_TRUE(AddLimitedPath(f, "a", 8192, 16384));
  for (const auto& [transfer, zeroing] : {std::pair<std::uint32_t, std::uint64_t>{511, 0}, {0, 100}, {1, 1}}) {
    auto refused = AddLimitedPath(f, "tiny", transfer, zeroing);
    ASSERT_FALSE(refused) << transfer << " / " << zeroing;
    EXPECT_EQ(refused.error().code(), Errc::kInvalidArgument);
    const std::string& message = refused.error().message();
    EXPECT_NE(message.find("'tiny'"), std::string::npos) << message;
    EXPECT_NE(message.find("512-byte block"), std::string::npos) << message;
    EXPECT_NE(message.find(std::to_string(transfer) + " / " + std::to_string(zeroing)), std::string::npos) << message;
  }
  EXPECT_EQ(f.head().path_count(), 1u);
  EXPECT_EQ(f.head().limits(), (IoLimits{8192, 16384})) << "a refused path leaves the limits as they were";
  // Exactly one block is enough.
  ASSERT_TRUE(AddLimitedPath(f, "one-block", HeadFixture::kBlock, HeadFixture::kBlock));
  EXPECT_EQ(f.head().limits(), (IoLimits{HeadFixture::kBlock, HeadFixture::kBlock}));
}

// Submits one request of `op` over [offset, offset + length) on `channel`; returns its status.
IoStatus SubmitSized(HeadChannel& channel, IoOp op, std::uint64_t offset, std::uint32_t length, std::byte* buffer) {
  IoRequest io;
  io.op = op;
  io.offset = offset;
  io.length = length;
  io.data = (op == IoOp::kRead || op == IoOp::kWrite) ? buffer : nullptr;
  IoStatus seen = IoStatus::Of(Errc::kInternal, "not completed");
  io.OnComplete([](IoRequest& r, void* out) { *static_cast<IoStatus*>(out) = r.status; }, &seen);
  channel.Submit(io);  // the null path completes inline, and so does a refusal
  return seen;
}

TEST(HeadLimits, RequestsOverTheLimitAreRefusedWithoutReachingAPath) {
  HeadFixture f;
  NullPath* driver = nullptr;
  ASSERT_TRUE(AddLimitedPath(f, "a", 4096, 16384, &driver));
  std::vector<std::byte> buffer(32768);
  HeadChannel& channel = f.channel();
  std::uint64_t sent = 0;
  struct Case {
    IoOp op;
    std::uint32_t length;
    bool passes;
  };
  for (const Case& c : {Case{IoOp::kRead, 4096, true}, Case{IoOp::kRead, 4096 + 512, false},
                        Case{IoOp::kWrite, 4096, true}, Case{IoOp::kWrite, 8192, false},
                        // Zeroing is held to its own limit, not to the transfer limit.
                        Case{IoOp::kWriteZeroes, 16384, true}, Case{IoOp::kWriteZeroes, 16384 + 512, false},
                        Case{IoOp::kDiscard, 8192, true}, Case{IoOp::kDiscard, 32768, false},
                        Case{IoOp::kRead, 16384, false}}) {
    const IoStatus status = SubmitSized(channel, c.op, 8192, c.length, buffer.data());
    sent += c.passes;
    EXPECT_EQ(status.ok(), c.passes) << static_cast<int>(c.op) << " of " << c.length << ": " << ErrcName(status.code);
    if (!c.passes) {
      EXPECT_EQ(status.code, Errc::kInvalidArgument);
      ASSERT_NE(status.context, nullptr);
      EXPECT_NE(std::string_view(status.context).find("Head::limits"), std::string_view::npos) << status.context;
    }
    EXPECT_EQ(driver->submitted(), sent) << "a refused request never reaches the path";
  }
  // A flush carries no length and is never refused for size.
  EXPECT_TRUE(SubmitSized(channel, IoOp::kFlush, 0, 0, nullptr).ok());
  EXPECT_EQ(driver->submitted(), sent + 1);
}

TEST(HeadLimits, NoLimitsAcceptAWholeDeviceRequest) {
  HeadFixture f;
  NullPath* driver = nullptr;
  ASSERT_TRUE(AddLimitedPath(f, "a", 0, 0, &driver));
  std::vector<std::byte> buffer(HeadFixture::kCapacity);
  EXPECT_TRUE(SubmitSized(f.channel(), IoOp::kRead, 0, HeadFixture::kCapacity, buffer.data()).ok());
  EXPECT_TRUE(SubmitSized(f.channel(), IoOp::kDiscard, 0, HeadFixture::kCapacity, nullptr).ok());
  EXPECT_EQ(driver->submitted(), 2u);
}

// A channel opened before a tighter path arrived picks the new limits up with the new snapshot (the generation word),
// so that it never sends a request the new path could not carry.
TEST(HeadLimits, AnOpenChannelSeesLimitsTightenedLater) {
  HeadFixture f;
  NullPath* first = nullptr;
  ASSERT_TRUE(AddLimitedPath(f, "a", 65536, 65536, &first));
  std::vector<std::byte> buffer(65536);
  HeadChannel& channel = f.channel();
  EXPECT_TRUE(SubmitSized(channel, IoOp::kWrite, 0, 65536, buffer.data()).ok());
  EXPECT_TRUE(SubmitSized(channel, IoOp::kWriteZeroes, 0, 65536, nullptr).ok());
  EXPECT_EQ(first->submitted(), 2u);

  NullPath* second = nullptr;
  ASSERT_TRUE(AddLimitedPath(f, "b", 16384, 32768, &second));
  EXPECT_EQ(SubmitSized(channel, IoOp::kWrite, 0, 65536, buffer.data()).code, Errc::kInvalidArgument);
  EXPECT_EQ(SubmitSized(channel, IoOp::kWriteZeroes, 0, 65536, nullptr).code, Errc::kInvalidArgument);
  EXPECT_EQ(first->submitted() + second->submitted(), 2u);
  EXPECT_TRUE(SubmitSized(channel, IoOp::kWrite, 0, 16384, buffer.data()).ok());
  EXPECT_TRUE(SubmitSized(channel, IoOp::kWriteZeroes, 0, 32768, nullptr).ok());
  EXPECT_EQ(first->submitted() + second->submitted(), 4u);
}

}  // namespace
}  // namespace mpath
