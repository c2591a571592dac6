// Latency histogram arithmetic, counter merging, and the per-head and per-path counters as I/O moves through a head.
#include "mpath/core/counters.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mpath/core/head.h"
#include "mpath/core/head_channel.h"
#include "mpath/core/path_driver.h"
#include "mpath/core/personality.h"
#include "mpath/testing/head_fixture.h"

namespace mpath {
namespace {

using mpath::testing::ManualExecutor;
using std::chrono::microseconds;
using std::chrono::milliseconds;

// ---------------------------------------------------------------------------------------------------------------
// LatencyHistogram

TEST(LatencyHistogram, BucketBoundariesArePowersOfTwo) {
  EXPECT_EQ(LatencyHistogram::BucketOf(Nanos(0)), 0u);
  EXPECT_EQ(LatencyHistogram::BucketOf(Nanos(1)), 1u);
  EXPECT_EQ(LatencyHistogram::BucketOf(Nanos(2)), 2u);
  EXPECT_EQ(LatencyHistogram::BucketOf(Nanos(3)), 2u);
  EXPECT_EQ(LatencyHistogram::BucketOf(Nanos(4)), 3u);
  EXPECT_EQ(LatencyHistogram::BucketOf(Nanos(1023)), 10u);
  EXPECT_EQ(LatencyHistogram::BucketOf(Nanos(1024)), 11u);
  // Bucket b holds [2^(b-1), 2^b) for every b below the last.
  for (std::size_t b = 1; b + 1 < LatencyHistogram::kBuckets; ++b) {
    const std::int64_t low = std::int64_t{1} << (b - 1);
    const std::int64_t high = (std::int64_t{1} << b) - 1;
    EXPECT_EQ(LatencyHistogram::BucketOf(Nanos(low)), b) << low;
    EXPECT_EQ(LatencyHistogram::BucketOf(Nanos(high)), b) << high;
  }
}

TEST(LatencyHistogram, NegativeAndHugeLatenciesAreClamped) {
  EXPECT_EQ(LatencyHistogram::BucketOf(Nanos(-1)), 0u);
  EXPECT_EQ(LatencyHistogram::BucketOf(Nanos(std::numeric_limits<Nanos::rep>::min())), 0u);
  EXPECT_EQ(LatencyHistogram::BucketOf(Nanos(std::int64_t{1} << 46)), LatencyHistogram::kBuckets - 1);
  EXPECT_EQ(LatencyHistogram::BucketOf(std::chrono::hours(24 * 365)), LatencyHistogram::kBuckets - 1);
  EXPECT_EQ(LatencyHistogram::BucketOf(Nanos::max()), LatencyHistogram::kBuckets - 1);
}

TEST(LatencyHistogram, EmptyHasNoCountAndZeroQuantiles) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Quantile(0.5), Nanos(0));
  EXPECT_EQ(h.Quantile(1.0), Nanos(0));
}

TEST(LatencyHistogram, QuantileIsTheUpperBoundOfTheBucketHoldingTheRank) {
  LatencyHistogram h;
  h.buckets[LatencyHistogram::BucketOf(microseconds(1))] += 100;  // 1000 ns: bucket 10, [512, 1024)
  h.buckets[LatencyHistogram::BucketOf(milliseconds(1))] += 1;    // 10^6 ns: bucket 20, [524288, 1048576)
  ASSERT_EQ(LatencyHistogram::BucketOf(microseconds(1)), 10u);
  ASSERT_EQ(LatencyHistogram::BucketOf(milliseconds(1)), 20u);

  EXPECT_EQ(h.count(), 101u);
  EXPECT_EQ(h.Quantile(0.0001), Nanos(1023));
  EXPECT_EQ(h.Quantile(0.5), Nanos(1023));
  EXPECT_EQ(h.Quantile(0.99), Nanos(1023));      // rank 100 of 101
  EXPECT_EQ(h.Quantile(0.999), Nanos(1048575));  // rank 101
  EXPECT_EQ(h.Quantile(1.0), Nanos(1048575));
}

TEST(LatencyHistogram, QuantileOfZeroLatencyIsZero) {
  LatencyHistogram h;
  h.buckets[0] = 3;
  EXPECT_EQ(h.Quantile(0.5), Nanos(0));
  EXPECT_EQ(h.Quantile(1.0), Nanos(0));
}

TEST(LatencyHistogram, QuantileBoundsTheSampleAtItsRank) {
  // 32 samples spread over 15 buckets: 1, 4, 13, 40, ... (x3+1). For p = k/32 (exact in binary floating point), the
  // quantile is the upper bound of the k-th sample's bucket: never below the sample, and below twice the sample.
  LatencyHistogram h;
  std::vector<std::int64_t> samples;
  for (std::int64_t ns = 1; samples.size() < 32; ns = ns * 3 + 1) samples.push_back(ns % (std::int64_t{1} << 40));
  std::sort(samples.begin(), samples.end());
  for (std::int64_t ns : samples) ++h.buckets[LatencyHistogram::BucketOf(Nanos(ns))];
  ASSERT_EQ(h.count(), 32u);
  for (std::size_t k = 1; k <= samples.size(); ++k) {
    const double p = static_cast<double>(k) / 32.0;
    const std::int64_t sample = samples[k - 1];
    const std::int64_t upper = (std::int64_t{1} << LatencyHistogram::BucketOf(Nanos(sample))) - 1;
    EXPECT_EQ(h.Quantile(p).count(), upper) << "rank " << k << ", sample " << sample;
    EXPECT_GE(h.Quantile(p).count(), sample) << "rank " << k;
    EXPECT_LT(h.Quantile(p).count(), 2 * sample) << "rank " << k;
  }
}

TEST(LatencyHistogram, QuantileUsesTheNearestRank) {
  // 100 samples: 10 in bucket 5, then 90 in bucket 15. p = 0.1 is the 10th smallest, which is still in bucket 5.
  LatencyHistogram h;
  h.buckets[5] = 10;
  h.buckets[15] = 90;
  EXPECT_EQ(h.Quantile(0.09), Nanos(31));
  EXPECT_EQ(h.Quantile(0.1), Nanos(31));
  EXPECT_EQ(h.Quantile(0.11), Nanos(32767));
  EXPECT_EQ(h.Quantile(0.0), Nanos(31));  // below the first rank: the smallest sample's bucket
}

TEST(LatencyHistogram, MergeAddsBucketByBucket) {
  LatencyHistogram a;
  LatencyHistogram b;
  a.buckets[0] = 1;
  a.buckets[10] = 2;
  b.buckets[10] = 3;
  b.buckets[LatencyHistogram::kBuckets - 1] = 4;

  a.Merge(b);

  EXPECT_EQ(a.buckets[0], 1u);
  EXPECT_EQ(a.buckets[10], 5u);
  EXPECT_EQ(a.buckets[LatencyHistogram::kBuckets - 1], 4u);
  EXPECT_EQ(a.count(), 10u);
  EXPECT_EQ(b.count(), 7u);  // the source is untouched
}

// ---------------------------------------------------------------------------------------------------------------
// IoCounters and IoCounterCell

TEST(IoCounters, MergeSumsEveryField) {
  IoCounters a{1, 2, 3, 4, 5, 6, 7, {}};
  a.latency.buckets[3] = 8;
  IoCounters b{10, 20, 30, 40, 50, 60, 70, {}};
  b.latency.buckets[3] = 80;
  b.latency.buckets[4] = 90;

  a.Merge(b);

  EXPECT_EQ(a.ios, 11u);
  EXPECT_EQ(a.bytes, 22u);
  EXPECT_EQ(a.errors, 33u);
  EXPECT_EQ(a.failovers, 44u);
  EXPECT_EQ(a.requeues, 55u);
  EXPECT_EQ(a.no_path_failures, 66u);
  EXPECT_EQ(a.retries, 77u);
  EXPECT_EQ(a.latency.buckets[3], 88u);
  EXPECT_EQ(a.latency.buckets[4], 90u);
  EXPECT_EQ(a.latency.count(), 178u);
}

TEST(IoCounterCell, ReadReflectsEveryUpdate) {
  IoCounterCell cell;
  EXPECT_EQ(cell.Read().ios, 0u);
  EXPECT_EQ(cell.Read().latency.count(), 0u);

  cell.AddIo(4096, microseconds(100));  // 100000 ns: bucket 17
  cell.AddIo(512, microseconds(100));
  cell.AddIo(0, Nanos(0));
  cell.AddError();
  cell.AddError();
  cell.AddFailover();
  cell.AddRequeue();
  cell.AddRequeue();
  cell.AddRequeue();
  cell.AddNoPathFailure();
  cell.AddRetry();
  cell.AddRetry();

  IoCounters c = cell.Read();
  EXPECT_EQ(c.ios, 3u);
  EXPECT_EQ(c.bytes, 4608u);
  EXPECT_EQ(c.errors, 2u);
  EXPECT_EQ(c.failovers, 1u);
  EXPECT_EQ(c.requeues, 3u);
  EXPECT_EQ(c.no_path_failures, 1u);
  EXPECT_EQ(c.retries, 2u);
  EXPECT_EQ(c.latency.count(), 3u);
  EXPECT_EQ(c.latency.buckets[17], 2u);
  EXPECT_EQ(c.latency.buckets[0], 1u);
}

TEST(IoCounterCell, ReadWhileAnotherThreadWrites) {
  IoCounterCell cell;
  constexpr std::uint64_t kIos = 20000;
  std::thread writer([&] {
    for (std::uint64_t i = 0; i < kIos; ++i) cell.AddIo(512, Nanos(100));
  });
  std::uint64_t last = 0;
  while (last < kIos) {
    IoCounters c = cell.Read();
    ASSERT_GE(c.ios, last);  // a single writer's counts never go backwards
    last = c.ios;
    if (c.ios == kIos) break;
    std::this_thread::yield();
  }
  writer.join();
  IoCounters c = cell.Read();
  EXPECT_EQ(c.ios, kIos);
  EXPECT_EQ(c.bytes, 512 * kIos);
  EXPECT_EQ(c.latency.buckets[LatencyHistogram::BucketOf(Nanos(100))], kIos);
}

// ---------------------------------------------------------------------------------------------------------------
// Counters of a head and its paths

constexpr std::uint64_t kCapacity = 1 << 20;
constexpr std::uint32_t kBlock = 512;
constexpr const char* kIdentity = "naa.600140500000000000000000000000c3";

class HeadCountersTest : public ::testing::Test {
 protected:
  HeadCountersTest() : executor_(clock_) {
    HeadOptions options;
    options.policy = IoPolicyKind::kRoundRobin;
    head_ = Head::Create({"mpath0", DeviceIdentity(kIdentity), kCapacity, kBlock, options},
                         NeutralTemplate::Instance(), executor_)
                .value();
  }

  ~HeadCountersTest() override {
    executor_.Advance(std::chrono::seconds(10));  // delayed completions and retries
    for (auto& channel : channels_) channel->Close();
    channels_.clear();
  }

  std::pair<PathId, NullPath*> AddPath(std::string name, NullPath::Mode mode = NullPath::Mode::kInline,
                                       Nanos latency = Nanos(0)) {
    DeviceInfo info = testing::NullPathInfo(std::move(name), DeviceIdentity(kIdentity), kCapacity, kBlock);
    auto driver = std::make_unique<NullPath>(mode, &executor_, latency);
    NullPath* raw = driver.get();
    PathId id = head_->AddPath(info, std::move(driver)).value();
    return {id, raw};
  }

  HeadChannel& Channel(std::size_t i = 0) {
    while (channels_.size() <= i) channels_.push_back(head_->OpenChannel(executor_));
    return *channels_[i];
  }

  // Submits one request; its completion is counted in done_ / failed_.
  void Submit(IoOp op, std::uint32_t length, std::size_t channel = 0) {
    requests_.push_back(std::make_unique<IoRequest>());
    IoRequest& io = *requests_.back();
    io.op = op;
    io.offset = 0;
    io.length = length;
    io.data = (op == IoOp::kRead || op == IoOp::kWrite) ? buffer_.data() : nullptr;
    io.OnComplete(
        [](IoRequest& r, void* arg) {
          auto* self = static_cast<HeadCountersTest*>(arg);
          ++(r.status.ok() ? self->done_ : self->failed_);
        },
        this);
    Channel(channel).Submit(io);
  }

  ManualClock clock_;
  ManualExecutor executor_;
  std::shared_ptr<Head> head_;
  std::array<std::byte, 16384> buffer_{};
  std::vector<std::unique_ptr<IoRequest>> requests_;
  int done_ = 0;
  int failed_ = 0;
  std::vector<std::shared_ptr<HeadChannel>> channels_;  // last: closing may complete requests into members above
};

IoCounters PathCounters(const Head& head, PathId id) { return head.FindPath(id)->Counters(); }

TEST_F(HeadCountersTest, StartAtZero) {
  auto [a, da] = AddPath("a");
  Channel();
  IoCounters h = head_->Counters();
  EXPECT_EQ(h.ios, 0u);
  EXPECT_EQ(h.latency.count(), 0u);
  EXPECT_EQ(PathCounters(*head_, a).ios, 0u);
}

TEST_F(HeadCountersTest, CountSuccessfulIosAndDataBytes) {
  auto [a, da] = AddPath("a");
  auto [b, db] = AddPath("b");

  // Round-robin: a, b, a, b, a, b.
  Submit(IoOp::kRead, 4096);   // a
  Submit(IoOp::kWrite, 8192);  // b
  Submit(IoOp::kRead, 512);    // a
  Submit(IoOp::kFlush, 0);     // b: an I/O, but no data bytes
  Submit(IoOp::kWriteZeroes, 4096);  // a: no data moved by the host
  Submit(IoOp::kDiscard, 1024);      // b

  EXPECT_EQ(done_, 6);
  IoCounters h = head_->Counters();
  EXPECT_EQ(h.ios, 6u);
  EXPECT_EQ(h.bytes, 4096u + 8192u + 512u);
  EXPECT_EQ(h.errors, 0u);
  EXPECT_EQ(h.latency.count(), 6u);
  EXPECT_EQ(h.latency.buckets[0], 6u);  // inline paths on a manual clock: zero latency

  IoCounters pa = PathCounters(*head_, a);
  IoCounters pb = PathCounters(*head_, b);
  EXPECT_EQ(pa.ios, 3u);
  EXPECT_EQ(pa.bytes, 4096u + 512u);
  EXPECT_EQ(pb.ios, 3u);
  EXPECT_EQ(pb.bytes, 8192u);

  // Paths() shows the same per-path figures.
  for (const PathInfo& info : head_->Paths()) {
    EXPECT_EQ(info.counters.ios, 3u) << info.name;
  }
}

TEST_F(HeadCountersTest, LatencyIsMeasuredOnTheChannelsClock) {
  auto [a, da] = AddPath("a", NullPath::Mode::kDelayed, milliseconds(1));

  Submit(IoOp::kRead, 512);
  Submit(IoOp::kRead, 512);
  EXPECT_EQ(head_->Counters().ios, 0u);  // nothing completes before time moves
  executor_.Advance(milliseconds(1));

  EXPECT_EQ(done_, 2);
  const std::size_t bucket = LatencyHistogram::BucketOf(milliseconds(1));
  IoCounters h = head_->Counters();
  EXPECT_EQ(h.ios, 2u);
  EXPECT_EQ(h.latency.buckets[bucket], 2u);
  EXPECT_EQ(h.latency.Quantile(0.5), Nanos((std::int64_t{1} << bucket) - 1));
  EXPECT_EQ(PathCounters(*head_, a).latency.buckets[bucket], 2u);
}

TEST_F(HeadCountersTest, SumAcrossChannels) {
  auto [a, da] = AddPath("a");

  Submit(IoOp::kRead, 4096, /*channel=*/0);
  Submit(IoOp::kRead, 4096, /*channel=*/1);
  Submit(IoOp::kWrite, 512, /*channel=*/1);

  IoCounters h = head_->Counters();
  EXPECT_EQ(h.ios, 3u);
  EXPECT_EQ(h.bytes, 4096u + 4096u + 512u);
  IoCounters p = PathCounters(*head_, a);
  EXPECT_EQ(p.ios, 3u);
  EXPECT_EQ(p.bytes, 4096u + 4096u + 512u);
}

TEST_F(HeadCountersTest, TargetErrorCountsOnPathAndHead) {
  auto [a, da] = AddPath("a");
  da->SetOutcome(IoStatus::Of(Errc::kTargetError, "medium says no"));

  Submit(IoOp::kRead, 512);

  EXPECT_EQ(failed_, 1);
  IoCounters h = head_->Counters();
  EXPECT_EQ(h.ios, 0u);
  EXPECT_EQ(h.bytes, 0u);
  EXPECT_EQ(h.errors, 1u);
  EXPECT_EQ(h.failovers, 0u);
  IoCounters p = PathCounters(*head_, a);
  EXPECT_EQ(p.ios, 0u);
  EXPECT_EQ(p.errors, 1u);
}

TEST_F(HeadCountersTest, FailoverCountsTheErrorOnTheFailedPathAndTheIoOnTheOther) {
  auto [a, da] = AddPath("a");
  auto [b, db] = AddPath("b");
  da->SetOutcome(IoStatus::Of(Errc::kPathError, "link down"));

  Submit(IoOp::kRead, 4096);  // round-robin starts on a, fails over to b

  EXPECT_EQ(done_, 1);
  EXPECT_EQ(da->submitted(), 1u);
  EXPECT_EQ(db->submitted(), 1u);
  IoCounters h = head_->Counters();
  EXPECT_EQ(h.ios, 1u);
  EXPECT_EQ(h.bytes, 4096u);
  EXPECT_EQ(h.errors, 0u);  // the submitter saw success
  EXPECT_EQ(h.failovers, 1u);
  IoCounters pa = PathCounters(*head_, a);
  EXPECT_EQ(pa.errors, 1u);
  EXPECT_EQ(pa.failovers, 1u);
  EXPECT_EQ(pa.ios, 0u);
  IoCounters pb = PathCounters(*head_, b);
  EXPECT_EQ(pb.ios, 1u);
  EXPECT_EQ(pb.bytes, 4096u);
  EXPECT_EQ(pb.errors, 0u);
}

TEST_F(HeadCountersTest, SamePathRetryIsCounted) {
  auto [a, da] = AddPath("a");
  da->SetOutcome(IoStatus::Of(Errc::kBusy, "queue full"));

  Submit(IoOp::kWrite, 512);
  EXPECT_EQ(done_ + failed_, 0);  // waiting for its retry
  da->SetOutcome(IoStatus::Ok());
  executor_.Advance(milliseconds(1));

  EXPECT_EQ(done_, 1);
  EXPECT_EQ(da->submitted(), 2u);
  IoCounters h = head_->Counters();
  EXPECT_EQ(h.retries, 1u);
  EXPECT_EQ(h.ios, 1u);
  EXPECT_EQ(h.errors, 0u);
  // The head measures from submission, the path from the retry's issue.
  EXPECT_EQ(h.latency.buckets[LatencyHistogram::BucketOf(milliseconds(1))], 1u);
  IoCounters p = PathCounters(*head_, a);
  EXPECT_EQ(p.retries, 1u);
  EXPECT_EQ(p.errors, 1u);
  EXPECT_EQ(p.ios, 1u);
  EXPECT_EQ(p.latency.buckets[0], 1u);
}

TEST_F(HeadCountersTest, NoPathFailuresAndRequeuesAreCounted) {
  auto [a, da] = AddPath("a", NullPath::Mode::kInline);
  ASSERT_TRUE(head_->SetAccessState(a, AccessState::kStandby).has_value());

  Submit(IoOp::kRead, 512);  // failing: standby will not come back by itself
  IoCounters h = head_->Counters();
  EXPECT_EQ(h.no_path_failures, 1u);
  EXPECT_EQ(h.errors, 1u);
  EXPECT_EQ(h.requeues, 0u);

  ASSERT_TRUE(head_->SetAccessState(a, AccessState::kTransitioning).has_value());
  Submit(IoOp::kRead, 512);  // queueing: transitioning may come back
  EXPECT_EQ(head_->Counters().requeues, 1u);
  ASSERT_TRUE(head_->SetAccessState(a, AccessState::kOptimized).has_value());
  executor_.RunUntilIdle();

  EXPECT_EQ(done_, 1);
  EXPECT_EQ(failed_, 1);
  h = head_->Counters();
  EXPECT_EQ(h.ios, 1u);
  EXPECT_EQ(h.requeues, 1u);
  EXPECT_EQ(h.no_path_failures, 1u);
  EXPECT_EQ(PathCounters(*head_, a).ios, 1u);
  EXPECT_EQ(PathCounters(*head_, a).errors, 0u);
}

TEST_F(HeadCountersTest, RejectedIoIsAnErrorOnTheHeadOnly) {
  auto [a, da] = AddPath("a");

  Submit(IoOp::kRead, 0);             // zero length
  Submit(IoOp::kRead, 100);           // not block-aligned
  Submit(IoOp::kRead, kCapacity * 2);  // beyond the end

  EXPECT_EQ(failed_, 3);
  EXPECT_EQ(da->submitted(), 0u);
  EXPECT_EQ(head_->Counters().errors, 3u);
  EXPECT_EQ(PathCounters(*head_, a).errors, 0u);
}

TEST_F(HeadCountersTest, RemovedPathKeepsItsCounters) {
  auto [a, da] = AddPath("a");
  AddPath("b");
  Submit(IoOp::kRead, 512);  // a
  std::shared_ptr<Path> pa = head_->FindPath(a);

  ASSERT_TRUE(head_->RemovePath(a).has_value());
  Submit(IoOp::kRead, 512);  // b

  EXPECT_EQ(pa->Counters().ios, 1u);
  EXPECT_EQ(head_->Counters().ios, 2u);
}

// Channels on two threads count concurrently while the control plane reads the sums.
TEST(HeadCountersThreads, ConcurrentChannelsAndReaders) {
  ManualClock control_clock;
  ManualExecutor control(control_clock);
  HeadOptions options;
  options.policy = IoPolicyKind::kRoundRobin;
  auto head = Head::Create({"mpath0", DeviceIdentity(kIdentity), kCapacity, kBlock, options},
                           NeutralTemplate::Instance(), control)
                  .value();
  std::vector<PathId> ids;
  for (const char* name : {"a", "b"}) {
    DeviceInfo info;
    info.name = name;
    info.identity = DeviceIdentity(kIdentity);
    info.capacity_bytes = kCapacity;
    info.block_size = kBlock;
    ids.push_back(head->AddPath(info, std::make_unique<NullPath>()).value());
  }

  constexpr int kIosPerThread = 5000;
  std::atomic<int> finished{0};
  auto io_thread = [&] {
    ManualClock clock;
    ManualExecutor executor(clock);
    auto channel = head->OpenChannel(executor);
    std::array<std::byte, kBlock> buffer{};
    int done = 0;
    for (int i = 0; i < kIosPerThread; ++i) {
      IoRequest io;
      io.op = IoOp::kRead;
      io.length = kBlock;
      io.data = buffer.data();
      io.OnComplete([](IoRequest& r, void* arg) { *static_cast<int*>(arg) += r.status.ok(); }, &done);
      channel->Submit(io);
    }
    EXPECT_EQ(done, kIosPerThread);
    channel->Close();
    channel.reset();
    finished.fetch_add(1);
  };
  std::thread t1(io_thread);
  std::thread t2(io_thread);
  std::uint64_t last = 0;
  while (finished.load() < 2) {
    std::uint64_t now = head->Counters().ios;
    EXPECT_GE(now, last);
    last = now;
    std::uint64_t per_path = 0;
    for (PathId id : ids) per_path += head->FindPath(id)->Counters().ios;
    EXPECT_LE(per_path, 2u * kIosPerThread);
    std::this_thread::yield();
  }
  t1.join();
  t2.join();

  IoCounters h = head->Counters();
  EXPECT_EQ(h.ios, 2u * kIosPerThread);
  EXPECT_EQ(h.bytes, 2u * kIosPerThread * kBlock);
  // Each channel alternates a, b, a, b...: the paths get exactly half each.
  for (PathId id : ids) EXPECT_EQ(head->FindPath(id)->Counters().ios, static_cast<std::uint64_t>(kIosPerThread));
}

}  // namespace
}  // namespace mpath
