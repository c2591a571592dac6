// Head lifecycle, geometry checks, request validation and listings.
#include "mpath/core/head.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace mpath
