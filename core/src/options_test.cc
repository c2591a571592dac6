// Operator input and control-plane misuse: every bad value is refused with a message naming it, and nothing crashes.
#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "mpath/core/head.h"
#include "mpath/core/head_options.h"
#include "mpath/core/path_driver.h"
#include "mpath/core/personality.h"
#include "mpath/core/types.h"
#include "mpath/testing/manual_executor.h"

namespace mpath {
namespace {

using ::testing::HasSubstr;
using mpath::testing::ManualExecutor;

constexpr std::uint64_t kCapacity = 1 << 20;
constexpr const char* kIdentity = "naa.600140500000000000000000000000b2";

// Asserts that `result` failed with `code` and a message containing every one of `needles`.
template <typename T>
void ExpectError(const Result<T>& result, Errc code, std::initializer_list<std::string_view> needles) {
  ASSERT_FALSE(result.has_value()) << "expected " << ErrcName(code) << ", got success";
  EXPECT_EQ(result.error().code(), code) << result.error().ToString();
  for (std::string_view needle : needles) EXPECT_THAT(result.error().message(), HasSubstr(std::string(needle)));
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing names

TEST(ParseIoPolicy, AcceptsEveryNameAndShortForm) {
  struct Case {
    const char* text;
    IoPolicyKind policy;
  };
  for (const Case& c : {Case{"numa", IoPolicyKind::kNuma}, Case{"round-robin", IoPolicyKind::kRoundRobin},
                        Case{"rr", IoPolicyKind::kRoundRobin}, Case{"queue-depth", IoPolicyKind::kQueueDepth},
                        Case{"qd", IoPolicyKind::kQueueDepth}, Case{"service-time", IoPolicyKind::kServiceTime},
                        Case{"st", IoPolicyKind::kServiceTime}}) {
    auto parsed = ParseIoPolicy(c.text);
    ASSERT_TRUE(parsed.has_value()) << c.text;
    EXPECT_EQ(*parsed, c.policy) << c.text;
  }
}

TEST(ParseIoPolicy, RoundTripsThroughName) {
  for (IoPolicyKind p : {IoPolicyKind::kNuma, IoPolicyKind::kRoundRobin, IoPolicyKind::kQueueDepth,
                         IoPolicyKind::kServiceTime}) {
    auto parsed = ParseIoPolicy(Name(p));
    ASSERT_TRUE(parsed.has_value()) << Name(p);
    EXPECT_EQ(*parsed, p);
  }
}

TEST(ParseIoPolicy, UnknownNameIsNamedAndTheValidOnesListed) {
  ExpectError(ParseIoPolicy("foo"), Errc::kInvalidArgument,
              {"'foo'", "numa", "round-robin", "queue-depth", "service-time"});
}

TEST(ParseIoPolicy, RejectsNearMisses) {
  for (const char* text : {"", "NUMA", "Round-Robin", " numa", "numa ", "round_robin", "r", "queue"}) {
    SCOPED_TRACE(text);
    ExpectError(ParseIoPolicy(text), Errc::kInvalidArgument, {std::string("'") + text + "'"});
  }
}

TEST(ParseIoPolicy, SurvivesHostileInput) {
  std::string embedded_nul("numa\0x", 6);
  ExpectError(ParseIoPolicy(embedded_nul), Errc::kInvalidArgument, {});
  std::string huge(1 << 16, 'x');
  ExpectError(ParseIoPolicy(huge), Errc::kInvalidArgument, {"expected"});
  // Braces must not be taken for format fields.
  ExpectError(ParseIoPolicy("{}{0}{:>99999}"), Errc::kInvalidArgument, {"'{}{0}{:>99999}'"});
}

TEST(ParseMultipathMode, AcceptsEveryName) {
  EXPECT_EQ(ParseMultipathMode("off").value(), MultipathMode::kOff);
  EXPECT_EQ(ParseMultipathMode("on").value(), MultipathMode::kOn);
  EXPECT_EQ(ParseMultipathMode("always").value(), MultipathMode::kAlways);
  for (MultipathMode m : {MultipathMode::kOff, MultipathMode::kOn, MultipathMode::kAlways}) {
    EXPECT_EQ(ParseMultipathMode(Name(m)).value(), m);
  }
}

TEST(ParseMultipathMode, UnknownNameIsNamedAndTheValidOnesListed) {
  ExpectError(ParseMultipathMode("yes"), Errc::kInvalidArgument, {"'yes'", "off", "on", "always"});
  ExpectError(ParseMultipathMode(""), Errc::kInvalidArgument, {"''"});
  ExpectError(ParseMultipathMode("ON"), Errc::kInvalidArgument, {"'ON'"});
}

// ---------------------------------------------------------------------------------------------------------------
// HeadOptions::Validate

TEST(HeadOptionsValidate, DefaultsAreValid) {
  EXPECT_TRUE(HeadOptions{}.Validate().has_value());
  EXPECT_TRUE(MarginalOptions{}.Validate().has_value());
}

TEST(HeadOptionsValidate, RejectsNegativeDurationsNamingTheField) {
  HeadOptions delayed;
  delayed.delayed_removal = -1s;
  ExpectError(delayed.Validate(), Errc::kInvalidArgument, {"delayed_removal", "negative", "-1000000000"});

  HeadOptions quiesce;
  quiesce.write_quiesce_delay = -1ms;
  ExpectError(quiesce.Validate(), Errc::kInvalidArgument, {"quiesce", "negative"});

  HeadOptions backoff;
  backoff.failover_round_backoff = Nanos(-1);
  ExpectError(backoff.Validate(), Errc::kInvalidArgument, {"backoff", "negative"});

  HeadOptions floor;
  floor.marginal.latency_floor = -1ms;
  ExpectError(floor.Validate(), Errc::kInvalidArgument, {"latency floor"});
}

TEST(HeadOptionsValidate, AcceptsZeroDurations) {
  HeadOptions options;
  options.delayed_removal = 0s;
  options.write_quiesce_delay = 0s;
  options.failover_round_backoff = 0s;
  options.marginal.latency_floor = 0s;
  EXPECT_TRUE(options.Validate().has_value());
}

TEST(HeadOptionsValidate, RejectsZeroFailoverRounds) {
  HeadOptions options;
  options.max_failover_rounds = 0;
  ExpectError(options.Validate(), Errc::kInvalidArgument, {"failover rounds"});
  options.max_failover_rounds = 1;
  EXPECT_TRUE(options.Validate().has_value());
}

TEST(HeadOptionsValidate, MarginalWindowMustBeOneToSixtyFour) {
  for (std::uint32_t window : {0u, 65u, 1000u}) {
    HeadOptions options;
    options.marginal.window = window;
    options.marginal.error_threshold = 1;
    SCOPED_TRACE(window);
    ExpectError(options.Validate(), Errc::kInvalidArgument, {"window", std::to_string(window)});
  }
  for (std::uint32_t window : {1u, 64u}) {
    HeadOptions options;
    options.marginal.window = window;
    options.marginal.error_threshold = 1;
    EXPECT_TRUE(options.Validate().has_value()) << window;
  }
}

TEST(HeadOptionsValidate, ErrorThresholdMustFitTheWindow) {
  HeadOptions options;
  options.marginal.window = 8;
  options.marginal.error_threshold = 9;
  ExpectError(options.Validate(), Errc::kInvalidArgument, {"threshold", "8", "9"});
  options.marginal.error_threshold = 0;
  ExpectError(options.Validate(), Errc::kInvalidArgument, {"threshold"});
  options.marginal.error_threshold = 8;
  EXPECT_TRUE(options.Validate().has_value());
}

TEST(HeadOptionsValidate, LatencyFactorIsZeroOrAtLeastOne) {
  for (double factor : {0.5, -1.0, 0.999, std::nan(""), -std::numeric_limits<double>::infinity()}) {
    HeadOptions options;
    options.marginal.latency_factor = factor;
    SCOPED_TRACE(factor);
    ExpectError(options.Validate(), Errc::kInvalidArgument, {"latency factor"});
  }
  for (double factor : {0.0, 1.0, 20.0}) {
    HeadOptions options;
    options.marginal.latency_factor = factor;
    EXPECT_TRUE(options.Validate().has_value()) << factor;
  }
}

TEST(HeadOptionsValidate, ProbeIntervalMustBePositive) {
  for (Nanos interval : {Nanos(0), Nanos(-5)}) {
    HeadOptions options;
    options.marginal.probe_interval = interval;
    ExpectError(options.Validate(), Errc::kInvalidArgument, {"probe interval"});
  }
}

TEST(HeadOptionsValidate, ProbesToReinstateMustBePositive) {
  HeadOptions options;
  options.marginal.probes_to_reinstate = 0;
  ExpectError(options.Validate(), Errc::kInvalidArgument, {"probes to reinstate"});
}

// ---------------------------------------------------------------------------------------------------------------
// SecondsToDuration

TEST(SecondsToDuration, RejectsNegativeNanAndAbsurdValuesNamingTheSetting) {
  for (double bad : {-1.0, -0.000001, std::nan(""), 1e12, std::numeric_limits<double>::infinity(),
                     -std::numeric_limits<double>::infinity()}) {
    SCOPED_TRACE(bad);
    ExpectError(SecondsToDuration(bad, "fast_io_fail_tmo"), Errc::kInvalidArgument, {"fast_io_fail_tmo"});
  }
}

TEST(SecondsToDuration, AcceptsZeroFractionsAndAYear) {
  EXPECT_EQ(SecondsToDuration(0, "x").value(), Nanos(0));
  EXPECT_EQ(SecondsToDuration(2.5, "x").value(), Nanos(2'500'000'000));
  EXPECT_EQ(SecondsToDuration(0.001, "x").value(), Nanos(1'000'000));
  EXPECT_EQ(SecondsToDuration(365.0 * 24 * 3600, "x").value(), std::chrono::hours(365 * 24));
}

// ---------------------------------------------------------------------------------------------------------------
// Head control plane

// A driver that asks for more per-request context than a head provides by default.
class GreedyDriver final : public PathDriver {
 public:
  explicit GreedyDriver(std::size_t context) : context_(context) {}
  [[nodiscard]] std::size_t ContextSize() const override { return context_; }
  void Submit(IoRequest& io) override { io.Complete(IoStatus::Ok()); }

 private:
  std::size_t context_;
};

class HeadControlTest : public ::testing::Test {
 protected:
  HeadControlTest() : executor_(clock_) {}

  Result<std::shared_ptr<Head>> Create(Head::Config config) {
    return Head::Create(std::move(config), NeutralTemplate::Instance(), executor_);
  }
  static Head::Config Good() { return {"mpath0", DeviceIdentity(kIdentity), kCapacity, 512, {}}; }
  static DeviceInfo Path(std::string name) {
    DeviceInfo info;
    info.name = std::move(name);
    info.transport = "null";
    info.identity = DeviceIdentity(kIdentity);
    info.capacity_bytes = kCapacity;
    info.block_size = 512;
    return info;
  }

  ManualClock clock_;
  ManualExecutor executor_;
};

TEST_F(HeadControlTest, CreateAcceptsAGoodConfig) {
  auto head = Create(Good());
  ASSERT_TRUE(head.has_value()) << head.error().ToString();
  EXPECT_EQ((*head)->name(), "mpath0");
  EXPECT_EQ((*head)->path_count(), 0u);
}

TEST_F(HeadControlTest, CreateRejectsEmptyName) {
  auto config = Good();
  config.name = "";
  ExpectError(Create(config), Errc::kInvalidArgument, {"name"});
}

TEST_F(HeadControlTest, CreateRejectsEmptyIdentity) {
  auto config = Good();
  config.identity = DeviceIdentity();
  ExpectError(Create(config), Errc::kInvalidArgument, {"identity", "mpath0"});
}

TEST_F(HeadControlTest, CreateRejectsBadBlockSizes) {
  for (std::uint32_t block : {1000u, 0u, 256u, 513u, 131072u}) {
    auto config = Good();
    config.block_size = block;
    config.capacity_bytes = 1000ull * 131072;  // a multiple of all of them but 0
    SCOPED_TRACE(block);
    ExpectError(Create(config), Errc::kInvalidArgument, {"block size", std::to_string(block)});
  }
  for (std::uint32_t block : {512u, 4096u, 65536u}) {
    auto config = Good();
    config.block_size = block;
    EXPECT_TRUE(Create(config).has_value()) << block;
  }
}

TEST_F(HeadControlTest, CreateRejectsCapacityNotAMultipleOfTheBlockSize) {
  auto config = Good();
  config.block_size = 4096;
  config.capacity_bytes = 4096 * 10 + 512;
  ExpectError(Create(config), Errc::kInvalidArgument, {"41472", "4096"});

  config.capacity_bytes = 0;
  ExpectError(Create(config), Errc::kInvalidArgument, {"capacity"});
}

TEST_F(HeadControlTest, CreateRejectsInvalidOptionsNamingTheHead) {
  auto config = Good();
  config.options.delayed_removal = -2s;
  ExpectError(Create(config), Errc::kInvalidArgument, {"mpath0", "delayed_removal"});
}

TEST_F(HeadControlTest, SetDelayedRemovalRejectsNegative) {
  auto head = Create(Good()).value();
  ExpectError(head->SetDelayedRemoval(-1ms), Errc::kInvalidArgument, {"delayed_removal", "negative"});
  EXPECT_EQ(head->options().delayed_removal, Nanos(0));
  ASSERT_TRUE(head->SetDelayedRemoval(5s).has_value());
  EXPECT_EQ(head->options().delayed_removal, Nanos(5s));
}

TEST_F(HeadControlTest, SetPathStateRemovingIsRefused) {
  auto head = Create(Good()).value();
  PathId id = head->AddPath(Path("p0"), std::make_unique<NullPath>()).value();

  ExpectError(head->SetPathState(id, PathState::kRemoving), Errc::kInvalidArgument, {"removing"});
  EXPECT_EQ(head->FindPath(id)->state(), PathState::kLive);
}

TEST_F(HeadControlTest, UnknownPathIdIsNotFound) {
  auto head = Create(Good()).value();
  PathId id = head->AddPath(Path("p0"), std::make_unique<NullPath>()).value();
  const PathId unknown = id + 100;

  ExpectError(head->RemovePath(unknown), Errc::kNotFound, {std::to_string(unknown)});
  ExpectError(head->SetPathState(unknown, PathState::kFailed), Errc::kNotFound, {std::to_string(unknown)});
  ExpectError(head->SetAccessState(unknown, AccessState::kStandby), Errc::kNotFound, {std::to_string(unknown)});
  ExpectError(head->ClearMarginal(unknown), Errc::kNotFound, {std::to_string(unknown)});
  EXPECT_EQ(head->FindPath(unknown), nullptr);
  EXPECT_EQ(head->path_count(), 1u);

  // A removed path's id is unknown from then on.
  ASSERT_TRUE(head->RemovePath(id).has_value());
  ExpectError(head->RemovePath(id), Errc::kNotFound, {});
  ExpectError(head->SetPathState(id, PathState::kLive), Errc::kNotFound, {});
}

TEST_F(HeadControlTest, AddPathRefusesNullDriver) {
  auto head = Create(Good()).value();
  ExpectError(head->AddPath(Path("p0"), nullptr), Errc::kInvalidArgument, {"p0", "driver"});
  EXPECT_EQ(head->path_count(), 0u);
}

TEST_F(HeadControlTest, AddPathRefusesEmptyNameAndDuplicateName) {
  auto head = Create(Good()).value();
  ExpectError(head->AddPath(Path(""), std::make_unique<NullPath>()), Errc::kInvalidArgument, {"name"});
  ASSERT_TRUE(head->AddPath(Path("p0"), std::make_unique<NullPath>()).has_value());
  ExpectError(head->AddPath(Path("p0"), std::make_unique<NullPath>()), Errc::kAlreadyExists, {"'p0'"});
  EXPECT_EQ(head->path_count(), 1u);
}

TEST_F(HeadControlTest, AddPathRefusesAnotherIdentity) {
  auto head = Create(Good()).value();
  DeviceInfo info = Path("p0");
  info.identity = DeviceIdentity("naa.ffff");
  ExpectError(head->AddPath(info, std::make_unique<NullPath>()), Errc::kMismatch, {"naa.ffff", kIdentity});
}

TEST_F(HeadControlTest, AddPathRefusesStartingInRemoving) {
  auto head = Create(Good()).value();
  DeviceInfo info = Path("p0");
  info.initial_state = PathState::kRemoving;
  ExpectError(head->AddPath(info, std::make_unique<NullPath>()), Errc::kInvalidArgument, {"removing"});
}

TEST_F(HeadControlTest, AddPathRefusesADriverWhoseContextDoesNotFit) {
  auto config = Good();
  config.options.request_context_size = 128;
  auto head = Create(config).value();

  ExpectError(head->AddPath(Path("p0"), std::make_unique<GreedyDriver>(129)), Errc::kInvalidArgument,
              {"p0", "129", "128"});
  EXPECT_EQ(head->path_count(), 0u);
  EXPECT_TRUE(head->AddPath(Path("p1"), std::make_unique<GreedyDriver>(128)).has_value());
}

TEST_F(HeadControlTest, SixtyFifthPathIsRefusedUntilOneLeaves) {
  auto head = Create(Good()).value();
  std::vector<PathId> ids;
  for (std::size_t i = 0; i < Head::kMaxPaths; ++i) {
    auto id = head->AddPath(Path(fmt::format("p{}", i)), std::make_unique<NullPath>());
    ASSERT_TRUE(id.has_value()) << i << ": " << id.error().ToString();
    ids.push_back(*id);
  }

  ExpectError(head->AddPath(Path("p64"), std::make_unique<NullPath>()), Errc::kOutOfRange, {"64"});
  EXPECT_EQ(head->path_count(), Head::kMaxPaths);

  ASSERT_TRUE(head->RemovePath(ids[17]).has_value());
  auto again = head->AddPath(Path("p64"), std::make_unique<NullPath>());
  ASSERT_TRUE(again.has_value()) << again.error().ToString();
  EXPECT_EQ(head->path_count(), Head::kMaxPaths);
}

TEST_F(HeadControlTest, RemovedHeadRefusesNewPaths) {
  auto head = Create(Good()).value();  // delayed_removal 0
  PathId id = head->AddPath(Path("p0"), std::make_unique<NullPath>()).value();
  ASSERT_TRUE(head->RemovePath(id).has_value());
  ASSERT_EQ(head->state(), HeadState::kRemoved);

  ExpectError(head->AddPath(Path("p1"), std::make_unique<NullPath>()), Errc::kRemoved, {"mpath0"});
}

}  // namespace
}  // namespace mpath
