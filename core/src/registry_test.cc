// The opt-in rule, grouping of paths into heads by identity, direct devices, and the registry's refusals.
#include "mpath/core/registry.h"

#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "mpath/core/path_driver.h"
#include "mpath/core/personality.h"
#include "mpath/testing/manual_executor.h"

namespace mpath {
namespace {

using ::testing::HasSubstr;
using mpath::testing::ManualExecutor;

constexpr std::uint64_t kCapacity = 1 << 20;

DeviceInfo Device(std::string name, std::string identity, bool reports_access_states = true) {
  DeviceInfo info;
  info.name = std::move(name);
  info.transport = "sim";
  info.identity = DeviceIdentity(std::move(identity));
  info.reports_access_states = reports_access_states;
  info.capacity_bytes = kCapacity;
  info.block_size = 512;
  return info;
}

// A second personality, so that a head can be offered a path of the wrong protocol.
class OtherTemplate final : public HeadTemplate {
 public:
  [[nodiscard]] std::string_view protocol() const override { return "other"; }
  [[nodiscard]] Decision Classify(const IoRequest&, const IoStatus&, const Path&) const override {
    return {Disposition::kFailUp};
  }
};

// ---------------------------------------------------------------------------------------------------------------
// DecideOptIn

std::string DescribeCase(MultipathMode mode, bool identity, bool reports, bool opted_out) {
  return std::string("mode=") + std::string(Name(mode)) + " identity=" + (identity ? "yes" : "no") +
         " reports_access_states=" + (reports ? "yes" : "no") + " opted_out=" + (opted_out ? "yes" : "no");
}

TEST(DecideOptIn, TruthTable) {
  for (MultipathMode mode : {MultipathMode::kOff, MultipathMode::kOn, MultipathMode::kAlways}) {
    for (bool has_identity : {false, true}) {
      for (bool reports : {false, true}) {
        for (bool opted_out : {false, true}) {
          SCOPED_TRACE(DescribeCase(mode, has_identity, reports, opted_out));
          OptInPolicy policy;
          policy.mode = mode;
          if (opted_out) policy.opted_out_transports = {"usb", "sim"};
          DeviceInfo info = Device("sda", has_identity ? "naa.5000c500a1b2c3d4" : "", reports);

          OptInDecision decision = DecideOptIn(policy, info);

          const bool expected = !opted_out && has_identity &&
                                (mode == MultipathMode::kAlways || (mode == MultipathMode::kOn && reports));
          EXPECT_EQ(decision.multipath, expected);
          ASSERT_FALSE(decision.reason.empty());
          // The reason names the deciding cause, in this order of precedence.
          if (opted_out) {
            EXPECT_THAT(decision.reason, HasSubstr("'sim'"));
            EXPECT_THAT(decision.reason, HasSubstr("opted out"));
          } else if (mode == MultipathMode::kOff) {
            EXPECT_THAT(decision.reason, HasSubstr("off"));
          } else if (!has_identity) {
            EXPECT_THAT(decision.reason, HasSubstr("identity"));
          } else if (mode == MultipathMode::kOn && !reports) {
            EXPECT_THAT(decision.reason, HasSubstr("asymmetric access states"));
          } else {
            EXPECT_THAT(decision.reason, HasSubstr("naa.5000c500a1b2c3d4"));
          }
        }
      }
    }
  }
}

TEST(DecideOptIn, OnlyTheListedTransportsAreOptedOut) {
  OptInPolicy policy{MultipathMode::kAlways, {"usb"}};
  DeviceInfo info = Device("sda", "naa.1");
  info.transport = "usb-storage";  // a prefix match would be wrong
  EXPECT_TRUE(DecideOptIn(policy, info).multipath);
  info.transport = "usb";
  EXPECT_FALSE(DecideOptIn(policy, info).multipath);
}

// ---------------------------------------------------------------------------------------------------------------
// Registry

class RegistryTest : public ::testing::Test {
 protected:
  RegistryTest() : executor_(clock_) {}

  std::unique_ptr<Registry> Make(RegistryOptions options = {}) { return Registry::Create(options, executor_).value(); }

  ManualClock clock_;
  ManualExecutor executor_;
};

TEST_F(RegistryTest, CreateRejectsBadOptions) {
  RegistryOptions no_prefix;
  no_prefix.head_name_prefix = "";
  auto r1 = Registry::Create(no_prefix, executor_);
  ASSERT_FALSE(r1.has_value());
  EXPECT_EQ(r1.error().code(), Errc::kInvalidArgument);
  EXPECT_THAT(r1.error().message(), HasSubstr("prefix"));

  RegistryOptions bad_head;
  bad_head.head.max_failover_rounds = 0;
  auto r2 = Registry::Create(bad_head, executor_);
  ASSERT_FALSE(r2.has_value());
  EXPECT_THAT(r2.error().message(), HasSubstr("failover rounds"));
}

TEST_F(RegistryTest, SameIdentityJoinsOneHead) {
  auto registry = Make();

  auto a = registry->Attach(Device("sda", "naa.1"), NeutralTemplate::Instance(), std::make_unique<NullPath>());
  auto b = registry->Attach(Device("sdb", "naa.1"), NeutralTemplate::Instance(), std::make_unique<NullPath>());

  ASSERT_TRUE(a.has_value()) << a.error().ToString();
  ASSERT_TRUE(b.has_value()) << b.error().ToString();
  ASSERT_TRUE(a->multipathed());
  ASSERT_TRUE(b->multipathed());
  EXPECT_EQ(a->head, b->head);
  EXPECT_NE(a->path, b->path);
  EXPECT_EQ(a->direct, nullptr);
  EXPECT_FALSE(a->reason.empty());
  EXPECT_EQ(a->head->path_count(), 2u);
  EXPECT_EQ(a->head->identity().str(), "naa.1");
  EXPECT_NE(a->head->FindPath("sda"), nullptr);
  EXPECT_NE(a->head->FindPath("sdb"), nullptr);
  EXPECT_EQ(registry->Heads().size(), 1u);
}

TEST_F(RegistryTest, DifferentIdentitiesMakeDifferentHeads) {
  auto registry = Make();

  auto a = registry->Attach(Device("sda", "naa.1"), NeutralTemplate::Instance(), std::make_unique<NullPath>());
  auto b = registry->Attach(Device("sdb", "naa.2"), NeutralTemplate::Instance(), std::make_unique<NullPath>());
  auto c = registry->Attach(Device("sdc", "naa.1"), NeutralTemplate::Instance(), std::make_unique<NullPath>());

  ASSERT_TRUE(a.has_value() && b.has_value() && c.has_value());
  EXPECT_NE(a->head, b->head);
  EXPECT_EQ(a->head, c->head);
  EXPECT_NE(a->head->name(), b->head->name());
  EXPECT_EQ(a->head->path_count(), 2u);
  EXPECT_EQ(b->head->path_count(), 1u);
  EXPECT_EQ(registry->Heads().size(), 2u);
}

TEST_F(RegistryTest, NewHeadsTakeTheRegistrysHeadOptionsAndPrefix) {
  RegistryOptions options;
  options.head.policy = IoPolicyKind::kRoundRobin;
  options.head_name_prefix = "dm-";
  auto registry = Make(options);

  auto a = registry->Attach(Device("sda", "naa.1"), NeutralTemplate::Instance(), std::make_unique<NullPath>());

  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->head->policy(), IoPolicyKind::kRoundRobin);
  EXPECT_EQ(a->head->name().rfind("dm-", 0), 0u) << a->head->name();
  EXPECT_EQ(a->head->capacity_bytes(), kCapacity);
  EXPECT_EQ(a->head->block_size(), 512u);
}

TEST_F(RegistryTest, NonMultipathedDeviceGoesStraightToItsDriver) {
  RegistryOptions options;
  options.opt_in.mode = MultipathMode::kOff;
  auto registry = Make(options);
  auto driver = std::make_unique<NullPath>();
  NullPath* raw = driver.get();

  auto a = registry->Attach(Device("sda", "naa.1"), NeutralTemplate::Instance(), std::move(driver));

  ASSERT_TRUE(a.has_value());
  ASSERT_FALSE(a->multipathed());
  ASSERT_NE(a->direct, nullptr);
  EXPECT_EQ(a->head, nullptr);
  EXPECT_THAT(a->reason, HasSubstr("off"));
  EXPECT_EQ(a->direct->name(), "sda");
  EXPECT_EQ(a->direct->capacity_bytes(), kCapacity);
  EXPECT_EQ(a->direct->block_size(), 512u);
  EXPECT_EQ(&a->direct->driver(), raw);
  EXPECT_TRUE(registry->Heads().empty());
  EXPECT_EQ(registry->FindHead("naa.1"), nullptr);

  struct Seen {
    int calls = 0;
    IoStatus status;
  } seen;
  IoRequest io;
  io.op = IoOp::kFlush;
  io.OnComplete(
      [](IoRequest& r, void* arg) {
        auto* s = static_cast<Seen*>(arg);
        ++s->calls;
        s->status = r.status;
      },
      &seen);
  a->direct->Submit(io);
  EXPECT_EQ(seen.calls, 1);
  EXPECT_TRUE(seen.status.ok());
  EXPECT_EQ(raw->submitted(), 1u);

  // No retries, no failover: the driver's error is what the submitter sees, after a single attempt.
  raw->SetOutcome(IoStatus::Of(Errc::kPathError, "link down"));
  a->direct->Submit(io);
  EXPECT_EQ(seen.calls, 2);
  EXPECT_EQ(seen.status.code, Errc::kPathError);
  EXPECT_EQ(raw->submitted(), 2u);
  // Not remembered as a path either: the same name may become a multipath path later.
  EXPECT_FALSE(registry->Detach("sda").has_value());
}

TEST_F(RegistryTest, OptedOutTransportIsDirectEvenWhenAlways) {
  RegistryOptions options;
  options.opt_in = {MultipathMode::kAlways, {"ufs"}};
  auto registry = Make(options);
  DeviceInfo info = Device("sda", "naa.1");
  info.transport = "ufs";

  auto a = registry->Attach(info, NeutralTemplate::Instance(), std::make_unique<NullPath>());

  ASSERT_TRUE(a.has_value());
  EXPECT_FALSE(a->multipathed());
  EXPECT_THAT(a->reason, HasSubstr("ufs"));
  EXPECT_TRUE(registry->Heads().empty());
}

TEST_F(RegistryTest, DeviceWithoutAccessStatesIsDirectUnderOn) {
  auto registry = Make();  // mode on

  auto a = registry->Attach(Device("sda", "naa.1", /*reports_access_states=*/false), NeutralTemplate::Instance(),
                            std::make_unique<NullPath>());

  ASSERT_TRUE(a.has_value());
  EXPECT_FALSE(a->multipathed());
  EXPECT_TRUE(registry->Heads().empty());
}

TEST_F(RegistryTest, AttachingTheSameNameTwiceIsRefused) {
  auto registry = Make();
  auto first = registry->Attach(Device("sda", "naa.1"), NeutralTemplate::Instance(), std::make_unique<NullPath>());
  ASSERT_TRUE(first.has_value());

  // Even under another identity: a path name is unique across the registry.
  for (const char* identity : {"naa.1", "naa.2"}) {
    auto again = registry->Attach(Device("sda", identity), NeutralTemplate::Instance(), std::make_unique<NullPath>());
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error().code(), Errc::kAlreadyExists);
    EXPECT_THAT(again.error().message(), HasSubstr("'sda'"));
  }
  EXPECT_EQ(first->head->path_count(), 1u);
  EXPECT_EQ(registry->Heads().size(), 1u);
}

TEST_F(RegistryTest, AttachRefusesNullDriverAndEmptyName) {
  auto registry = Make();

  auto no_driver = registry->Attach(Device("sda", "naa.1"), NeutralTemplate::Instance(), nullptr);
  ASSERT_FALSE(no_driver.has_value());
  EXPECT_EQ(no_driver.error().code(), Errc::kInvalidArgument);
  EXPECT_THAT(no_driver.error().message(), HasSubstr("sda"));

  auto no_name = registry->Attach(Device("", "naa.1"), NeutralTemplate::Instance(), std::make_unique<NullPath>());
  ASSERT_FALSE(no_name.has_value());
  EXPECT_EQ(no_name.error().code(), Errc::kInvalidArgument);
  EXPECT_TRUE(registry->Heads().empty());
}

TEST_F(RegistryTest, DetachUnknownNameIsNotFound) {
  auto registry = Make();

  auto r = registry->Detach("nosuch");

  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Errc::kNotFound);
  EXPECT_THAT(r.error().message(), HasSubstr("nosuch"));
}

TEST_F(RegistryTest, DetachRemovesThePathAndFreesItsName) {
  auto registry = Make();
  auto a = registry->Attach(Device("sda", "naa.1"), NeutralTemplate::Instance(), std::make_unique<NullPath>());
  auto b = registry->Attach(Device("sdb", "naa.1"), NeutralTemplate::Instance(), std::make_unique<NullPath>());
  ASSERT_TRUE(a.has_value() && b.has_value());

  ASSERT_TRUE(registry->Detach("sda").has_value());
  EXPECT_EQ(a->head->path_count(), 1u);
  EXPECT_EQ(a->head->FindPath("sda"), nullptr);
  auto twice = registry->Detach("sda");
  ASSERT_FALSE(twice.has_value());
  EXPECT_EQ(twice.error().code(), Errc::kNotFound);

  auto back = registry->Attach(Device("sda", "naa.1"), NeutralTemplate::Instance(), std::make_unique<NullPath>());
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  EXPECT_EQ(back->head, a->head);
  EXPECT_EQ(a->head->path_count(), 2u);
}

TEST_F(RegistryTest, HeadWhoseLastPathIsDetachedGoesAwayAndIsNotReused) {
  auto registry = Make();  // delayed_removal 0: a head with no path left is removed at once
  auto a = registry->Attach(Device("sda", "naa.1"), NeutralTemplate::Instance(), std::make_unique<NullPath>());
  ASSERT_TRUE(a.has_value());
  std::shared_ptr<Head> old = a->head;

  ASSERT_TRUE(registry->Detach("sda").has_value());
  EXPECT_EQ(old->state(), HeadState::kRemoved);
  executor_.RunUntilIdle();  // the removal announcement
  EXPECT_TRUE(registry->Heads().empty());
  EXPECT_EQ(registry->FindHead("naa.1"), nullptr);

  auto again = registry->Attach(Device("sda", "naa.1"), NeutralTemplate::Instance(), std::make_unique<NullPath>());
  ASSERT_TRUE(again.has_value()) << again.error().ToString();
  EXPECT_NE(again->head, old);
  EXPECT_NE(again->head->name(), old->name());
  EXPECT_EQ(registry->Heads().size(), 1u);
}

TEST_F(RegistryTest, CapacityMismatchIsRefusedAndLeavesTheHeadAlone) {
  auto registry = Make();
  auto a = registry->Attach(Device("sda", "naa.1"), NeutralTemplate::Instance(), std::make_unique<NullPath>());
  ASSERT_TRUE(a.has_value());
  DeviceInfo bigger = Device("sdb", "naa.1");
  bigger.capacity_bytes = 2 * kCapacity;

  auto b = registry->Attach(bigger, NeutralTemplate::Instance(), std::make_unique<NullPath>());

  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().code(), Errc::kMismatch);
  EXPECT_THAT(b.error().message(), HasSubstr("1048576"));
  EXPECT_THAT(b.error().message(), HasSubstr("2097152"));
  EXPECT_THAT(b.error().message(), HasSubstr("sdb"));
  EXPECT_EQ(a->head->path_count(), 1u);
  EXPECT_EQ(a->head->FindPath("sdb"), nullptr);
  EXPECT_EQ(registry->Heads().size(), 1u);
  // The refused name was not recorded: it is unknown to Detach and free to attach with the right geometry.
  EXPECT_EQ(registry->Detach("sdb").error().code(), Errc::kNotFound);
  EXPECT_TRUE(
      registry->Attach(Device("sdb", "naa.1"), NeutralTemplate::Instance(), std::make_unique<NullPath>()).has_value());
  EXPECT_EQ(a->head->path_count(), 2u);
}

TEST_F(RegistryTest, BlockSizeMismatchIsRefusedAndLeavesTheHeadAlone) {
  auto registry = Make();
  auto a = registry->Attach(Device("sda", "naa.1"), NeutralTemplate::Instance(), std::make_unique<NullPath>());
  ASSERT_TRUE(a.has_value());
  DeviceInfo four_k = Device("sdb", "naa.1");
  four_k.block_size = 4096;

  auto b = registry->Attach(four_k, NeutralTemplate::Instance(), std::make_unique<NullPath>());

  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().code(), Errc::kMismatch);
  EXPECT_THAT(b.error().message(), HasSubstr("4096"));
  EXPECT_THAT(b.error().message(), HasSubstr("512"));
  EXPECT_EQ(a->head->path_count(), 1u);
  EXPECT_EQ(a->head->block_size(), 512u);
}

TEST_F(RegistryTest, MixingPersonalitiesForOneIdentityIsRefused) {
  auto registry = Make();
  OtherTemplate other;
  auto a = registry->Attach(Device("sda", "naa.1"), NeutralTemplate::Instance(), std::make_unique<NullPath>());
  ASSERT_TRUE(a.has_value());

  auto b = registry->Attach(Device("sdb", "naa.1"), other, std::make_unique<NullPath>());

  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().code(), Errc::kMismatch);
  EXPECT_THAT(b.error().message(), HasSubstr("other"));
  EXPECT_THAT(b.error().message(), HasSubstr("null"));
  EXPECT_EQ(a->head->path_count(), 1u);

  // Another identity may well use the other personality.
  auto c = registry->Attach(Device("sdc", "naa.2"), other, std::make_unique<NullPath>());
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(&c->head->personality(), &other);
  EXPECT_EQ(registry->Heads().size(), 2u);
}

TEST_F(RegistryTest, FindHeadByNameOrIdentity) {
  auto registry = Make();
  auto a = registry->Attach(Device("sda", "naa.1"), NeutralTemplate::Instance(), std::make_unique<NullPath>());
  auto b = registry->Attach(Device("sdb", "eui.2"), NeutralTemplate::Instance(), std::make_unique<NullPath>());
  ASSERT_TRUE(a.has_value() && b.has_value());

  EXPECT_EQ(registry->FindHead(a->head->name()), a->head);
  EXPECT_EQ(registry->FindHead(b->head->name()), b->head);
  EXPECT_EQ(registry->FindHead("naa.1"), a->head);
  EXPECT_EQ(registry->FindHead("eui.2"), b->head);
  EXPECT_EQ(registry->FindHead("naa.3"), nullptr);
  EXPECT_EQ(registry->FindHead("sda"), nullptr);  // a path name is not a head name
  EXPECT_EQ(registry->FindHead(""), nullptr);
}

}  // namespace
}  // namespace mpath
