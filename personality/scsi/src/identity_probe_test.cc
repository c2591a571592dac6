// The prober against the simulated array: real CDBs, real pages, unit attentions on new nexuses, refusals, a port in
// standby, transports that answer later, and link faults from the simulated SAN, all on a ManualClock.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "identity_test_util.h"
#include "mpath/core/registry.h"
#include "mpath/scsi/fake/array.h"
#include "mpath/scsi/identity_probe.h"
#include "mpath/scsi/raw_status.h"
#include "mpath/scsi/spec/sense.h"
#include "mpath/scsi/spec/spc_cdb.h"
#include "mpath/sim/san.h"
#include "mpath/testing/manual_executor.h"

namespace mpath::scsi::testing {
namespace {

namespace asc = spec::asc;
namespace op = spec::op;
using fake::AluaState;

constexpr std::array<std::uint8_t, 16> kNaa = {0x60, 0x01, 0x40, 0x5f, 0x3c, 0x9e, 0x4b, 0x21,
                                               0x8d, 0x07, 0xa1, 0x52, 0xe6, 0x0f, 0x33, 0xc4};
Bytes NaaBytes() {
  Bytes out;
  AppendRaw(out, kNaa.data(), kNaa.size());
  return out;
}
constexpr std::string_view kIdentity = "naa.6001405f3c9e4b218d07a152e60f33c4";
constexpr std::string_view kInitiator = "iqn.2026-01.io.mpath:host";
constexpr std::uint64_t kLun = 1;
constexpr std::uint64_t kBlocks = 2048;
constexpr std::uint32_t kBlockSize = 4096;

// The LIO lab's layout: group 10 active/optimized behind port 1, group 20 active/non-optimized behind port 2.
void Populate(fake::Array& array, std::uint64_t blocks = kBlocks) {
  ASSERT_TRUE(array.AddPortGroup({.id = 10, .state = AluaState::kActiveOptimized, .relative_ports = {1}}));
  ASSERT_TRUE(array.AddPortGroup({.id = 20, .state = AluaState::kActiveNonOptimized, .relative_ports = {2}}));
  ASSERT_TRUE(array.AddLogicalUnit(
      {.lun = kLun, .blocks = blocks, .block_size = kBlockSize, .naa = kNaa, .serial = "probe-disk1"}));
}

OptInPolicy Policy(MultipathMode mode) {
  OptInPolicy policy;
  policy.mode = mode;
  return policy;
}

// What the probe's callback saw: every call, so that "exactly once" is checked, not assumed.
struct Outcome {
  int calls = 0;
  std::optional<Result<ProbedUnit>> result;
};

// Records every CDB and checks that each command names the probe's executor. `defer` makes it answer later: the
// command goes to the device from a task on that executor, so no answer ever comes back inside Submit.
class Recorder final : public ScsiTransport {
 public:
  Recorder(ScsiTransport& inner, Executor& executor, bool defer) : inner_(inner), executor_(executor), defer_(defer) {}
  void Submit(std::uint64_t lun, ScsiCommand& command) override {
    cdbs.emplace_back(command.cdb_bytes().begin(), command.cdb_bytes().end());
    EXPECT_EQ(command.executor, &executor_);
    if (!defer_) {
      inner_.Submit(lun, command);
      return;
    }
    executor_.Post([this, lun, &command] { inner_.Submit(lun, command); });
  }
  // The allocation lengths of the INQUIRY commands for one VPD page, in order.
  [[nodiscard]] std::vector<unsigned> VpdAllocations(std::uint8_t page) const {
    std::vector<unsigned> out;
    for (const auto& c : cdbs) {
      if (c[0] == op::kInquiry && (c[1] & 1) != 0 && c[2] == page) out.push_back((c[3] << 8) | c[4]);
    }
    return out;
  }
  std::vector<std::vector<std::uint8_t>> cdbs;

 private:
  ScsiTransport& inner_;
  Executor& executor_;
  const bool defer_;
};

class ProbeTest : public ::testing::Test {
 protected:
  ProbeTest() : executor_(clock_) {}

  void Build(fake::ArrayConfig config = {}, std::uint64_t blocks = kBlocks) {
    auto array = fake::Array::Create(std::move(config), clock_);
    ASSERT_TRUE(array) << array.error().ToString();
    array_ = std::move(*array);
    Populate(*array_, blocks);
  }
  std::unique_ptr<ScsiTransport> Connect(std::uint16_t port) {
    auto transport = array_->Connect(std::string(kInitiator), port);
    EXPECT_TRUE(transport) << transport.error().ToString();
    return transport ? std::move(*transport) : nullptr;
  }
  // Starts a probe whose callback records into `out`.
  void Start(ScsiTransport& transport, Outcome& out, ProbeOptions options = {}, std::uint64_t lun = kLun) {
    ProbeLogicalUnit(transport, lun, executor_, options, [&out](Result<ProbedUnit> r) {
      ++out.calls;
      out.result = std::move(r);
    });
  }
  // Probes to the end and returns the unit (or the error), checking the callback ran exactly once.
  Result<ProbedUnit> Probe(ScsiTransport& transport, ProbeOptions options = {}, std::uint64_t lun = kLun) {
    Outcome out;
    Start(transport, out, options, lun);
    EXPECT_EQ(out.calls, 0) << "the probe starts on the executor, not inside the call";
    executor_.RunUntilIdle();
    EXPECT_EQ(out.calls, 1);
    if (!out.result) return MakeError(Errc::kInternal, "the probe never finished");
    return std::move(*out.result);
  }
  static void ExpectError(const Result<ProbedUnit>& r, Errc code, std::string_view phrase) {
    ASSERT_FALSE(r.has_value()) << "probe succeeded";
    EXPECT_EQ(r.error().code(), code) << r.error().ToString();
    EXPECT_NE(r.error().message().find(phrase), std::string::npos) << r.error().message();
  }

  ManualClock clock_;
  mpath::testing::ManualExecutor executor_;
  std::unique_ptr<fake::Array> array_;
};

TEST_F(ProbeTest, SameIdentityThroughPortsInTwoGroups) {
  Build();
  auto p1 = Connect(1);
  auto p2 = Connect(2);
  auto a = Probe(*p1);
  auto b = Probe(*p2);
  ASSERT_TRUE(a) << a.error().ToString();
  ASSERT_TRUE(b) << b.error().ToString();

  EXPECT_EQ(a->identity.identity.str(), kIdentity);
  EXPECT_EQ(b->identity.identity, a->identity.identity);
  EXPECT_EQ(a->identity.kind, IdentityKind::kNaaRegisteredExtended);
  EXPECT_FALSE(a->identity.conflict);
  EXPECT_EQ(a->port.relative_target_port, 1);
  EXPECT_EQ(b->port.relative_target_port, 2);
  EXPECT_EQ(a->port.target_port_group, 10);
  EXPECT_EQ(b->port.target_port_group, 20);
  EXPECT_EQ(a->port.target_name, "iqn.2026-11.io.mpath.sim:array0");
  EXPECT_EQ(b->port.target_name, a->port.target_name);

  EXPECT_EQ(a->inquiry.vendor, "MPATHSIM");
  EXPECT_EQ(a->inquiry.product, "ALUA-ARRAY");
  EXPECT_EQ(a->inquiry.tpgs, 3);
  EXPECT_EQ(a->supported_vpd_pages, (std::vector<std::uint8_t>{0x00, 0x80, 0x83, 0xB0, 0xB2}));
  ASSERT_TRUE(a->block_limits);
  EXPECT_EQ(a->block_limits->max_transfer_blocks, 8192u);
  ASSERT_TRUE(a->capacity);
  EXPECT_EQ(a->capacity->blocks, kBlocks);
  EXPECT_EQ(a->capacity->block_size, kBlockSize);
  EXPECT_FALSE(a->capacity_refused);

  // The raw page is the device's, byte for byte: it parses to the same answers.
  EXPECT_EQ(ParseLuIdentity(a->vpd83)->identity.str(), kIdentity);
  EXPECT_EQ(ParseTargetPortInfo(b->vpd83)->target_port_group, 20);

  const DeviceInfo info = a->ToDeviceInfo();
  EXPECT_EQ(info.identity.str(), kIdentity);
  EXPECT_TRUE(info.reports_access_states);
  EXPECT_EQ(info.capacity_bytes, kBlocks * kBlockSize);
  EXPECT_EQ(info.block_size, kBlockSize);
  EXPECT_EQ(info.initial_access, AccessState::kOptimized);

  // Four INQUIRYs per probe; INQUIRY never reports the new nexus's 29/00, so READ CAPACITY (16) absorbs it once.
  EXPECT_EQ(array_->CommandCount(op::kInquiry), 8u);
  EXPECT_EQ(array_->CommandCount(op::kServiceActionIn16), 4u);
  EXPECT_EQ(array_->CommandCount(op::kReadCapacity10), 0u);
}

TEST_F(ProbeTest, PiledUpUnitAttentionsAreAbsorbed) {
  Build();
  auto p1 = Connect(1);
  array_->RaiseUnitAttentionEverywhere(asc::kAsymmetricAccessStateChanged);
  array_->RaiseUnitAttentionEverywhere(asc::kCapacityDataHasChanged);
  auto a = Probe(*p1);
  ASSERT_TRUE(a) << a.error().ToString();
  EXPECT_EQ(a->capacity->blocks, kBlocks);
  EXPECT_EQ(array_->CommandCount(op::kServiceActionIn16), 4u) << "29/00, 2A/06, 2A/09, then the capacity";
}

TEST_F(ProbeTest, UnitAttentionOnEveryTryEndsTheProbe) {
  Build();
  array_->SetHandler(op::kServiceActionIn16, [](fake::CommandContext& c) {
    spec::SetCheckCondition(c.command, spec::SenseFormat::kFixed, asc::kAsymmetricAccessStateChanged);
  });
  auto p1 = Connect(1);
  ExpectError(Probe(*p1), Errc::kBusy, "READ CAPACITY (16): UNIT ATTENTION on each of 8 tries (last sense 6/2a/06)");
  EXPECT_EQ(array_->CommandCount(op::kServiceActionIn16), 8u);
  Result<ProbedUnit> last = Probe(*p1);
  ASSERT_FALSE(last.has_value());
  std::optional<ScsiOutcome> raw = DecodeRawStatus(last.error().raw());
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(raw->sense, asc::kAsymmetricAccessStateChanged) << "the device's last answer travels with the error";
  ExpectError(Probe(*p1, ProbeOptions{.unit_attention_tries = 3}), Errc::kBusy, "each of 3 tries");
  EXPECT_EQ(array_->CommandCount(op::kServiceActionIn16), 19u);
}

TEST_F(ProbeTest, ReadCapacity16RefusedFallsBackTo10) {
  Build();
  array_->SetHandler(op::kServiceActionIn16, [](fake::CommandContext& c) {
    spec::SetCheckCondition(c.command, spec::SenseFormat::kDescriptor, asc::kInvalidCommandOperationCode);
  });
  auto p1 = Connect(1);
  auto a = Probe(*p1);
  ASSERT_TRUE(a) << a.error().ToString();
  ASSERT_TRUE(a->capacity);
  EXPECT_EQ(a->capacity->blocks, kBlocks);
  EXPECT_EQ(a->capacity->block_size, kBlockSize);
  EXPECT_EQ(array_->CommandCount(op::kServiceActionIn16), 1u);
  EXPECT_EQ(array_->CommandCount(op::kReadCapacity10), 2u) << "the first one met the nexus's 29/00";
}

TEST_F(ProbeTest, CapacityBeyondReadCapacity10NeedsReadCapacity16) {
  Build({}, 1ull << 33);
  array_->SetHandler(op::kServiceActionIn16, [](fake::CommandContext& c) {
    spec::SetCheckCondition(c.command, spec::SenseFormat::kFixed, asc::kInvalidCommandOperationCode);
  });
  auto p1 = Connect(1);
  ExpectError(Probe(*p1), Errc::kUnsupported, "READ CAPACITY (10): READ CAPACITY (10) says the capacity needs");
}

TEST_F(ProbeTest, GrowsTheBufferWhenThePageIsLonger) {
  Build();
  auto n1 = Connect(1);
  Recorder whole(*n1, executor_, /*defer=*/false);
  auto reference = Probe(whole);
  ASSERT_TRUE(reference) << reference.error().ToString();
  const auto page_size = static_cast<unsigned>(reference->vpd83.size());
  EXPECT_GT(page_size, 100u);
  EXPECT_EQ(whole.VpdAllocations(0x83), (std::vector<unsigned>{255}));

  auto n2 = Connect(2);
  Recorder small(*n2, executor_, /*defer=*/false);
  auto grown = Probe(small, ProbeOptions{.vpd_allocation_length = 8});
  ASSERT_TRUE(grown) << grown.error().ToString();
  EXPECT_EQ(small.VpdAllocations(0x00), (std::vector<unsigned>{8, 9})) << "page 00h lists five pages: 9 bytes";
  EXPECT_EQ(small.VpdAllocations(0x83), (std::vector<unsigned>{8, page_size}));
  EXPECT_EQ(small.VpdAllocations(0xB0), (std::vector<unsigned>{8, 64}));
  EXPECT_EQ(grown->vpd83.size(), page_size);
  EXPECT_EQ(grown->identity.identity.str(), kIdentity);
  EXPECT_FALSE(grown->identity.truncated);
  EXPECT_EQ(grown->port.relative_target_port, 2);
  EXPECT_EQ(grown->supported_vpd_pages.size(), 5u);
  EXPECT_EQ(grown->block_limits->max_transfer_blocks, 8192u);
}

// A target whose page always claims 100 bytes more than was asked for is read with what arrived after two
// regrowths, not forever.
TEST_F(ProbeTest, APageThatNeverFitsIsReadAsSent) {
  Build();
  array_->SetHandler(op::kInquiry, [](fake::CommandContext& c) {
    const auto cdb = *wire::Load<spec::InquiryCdb>(std::as_bytes(c.command.cdb_bytes()));
    if (!cdb.evpd() || cdb.page_code != 0x83) return c.array.DefaultHandler(c);
    const int claimed = cdb.allocation_length.value() - 4 + 100;
    const Bytes page = Page83({Lu(DesignatorType::kNaa, CodeSet::kBinary, NaaBytes())}, claimed);
    const std::size_t n = std::min({page.size(), c.command.data.size(), std::size_t{cdb.allocation_length.value()}});
    std::memcpy(c.command.data.data(), page.data(), n);
    c.command.residual = static_cast<std::uint32_t>(c.command.data.size() - n);
  });
  auto p1 = Connect(1);
  Recorder recorder(*p1, executor_, /*defer=*/false);
  auto a = Probe(recorder);
  ASSERT_TRUE(a) << a.error().ToString();
  EXPECT_EQ(recorder.VpdAllocations(0x83), (std::vector<unsigned>{255, 355, 455}));
  EXPECT_EQ(a->identity.identity.str(), kIdentity);
  EXPECT_TRUE(a->identity.truncated);
  EXPECT_NE(a->identity.reason.find("PAGE LENGTH announces 555"), std::string::npos) << a->identity.reason;
  EXPECT_EQ(a->vpd83.size(), 24u);
}

TEST_F(ProbeTest, TransportsThatAnswerLaterWork) {
  Build();
  auto p2 = Connect(2);
  Recorder later(*p2, executor_, /*defer=*/true);
  Outcome out;
  Start(later, out);
  executor_.RunUntilIdle();
  ASSERT_EQ(out.calls, 1);
  ASSERT_TRUE(*out.result) << out.result->error().ToString();
  const ProbedUnit& unit = **out.result;
  EXPECT_EQ(unit.identity.identity.str(), kIdentity);
  EXPECT_EQ(unit.port.target_port_group, 20);
  EXPECT_EQ(unit.capacity->blocks, kBlocks);
  EXPECT_EQ(later.cdbs.size(), 6u) << "INQUIRY, VPD 00h, 83h, B0h, READ CAPACITY (16) twice";
}

TEST_F(ProbeTest, TgtLikeArrayReportsNoAccessStates) {
  Build(fake::ArrayConfig{.vendor = "IET", .product = "VIRTUAL-DISK", .tpgs = 0});
  auto p1 = Connect(1);
  auto a = Probe(*p1);
  ASSERT_TRUE(a) << a.error().ToString();
  EXPECT_EQ(a->inquiry.tpgs, 0);
  const DeviceInfo info = a->ToDeviceInfo();
  EXPECT_FALSE(info.reports_access_states);
  EXPECT_EQ(info.identity.str(), kIdentity);
  EXPECT_FALSE(DecideOptIn(Policy(MultipathMode::kOn), info).multipath);
  EXPECT_TRUE(DecideOptIn(Policy(MultipathMode::kAlways), info).multipath);
}

TEST_F(ProbeTest, StandbyPortStillYieldsTheIdentity) {
  Build();
  ASSERT_TRUE(array_->SetAccessState(20, AluaState::kStandby));
  auto p2 = Connect(2);
  auto b = Probe(*p2);
  ASSERT_TRUE(b) << b.error().ToString();
  EXPECT_EQ(b->identity.identity.str(), kIdentity);
  EXPECT_EQ(b->port.target_port_group, 20);
  EXPECT_FALSE(b->capacity);
  EXPECT_EQ(b->capacity_refused, asc::kLunNotReadyTargetPortStandby);
  const DeviceInfo info = b->ToDeviceInfo();
  EXPECT_EQ(info.initial_access, AccessState::kStandby);
  EXPECT_EQ(info.capacity_bytes, 0u);

  ASSERT_TRUE(array_->SetAccessState(20, AluaState::kUnavailable));
  auto again = Probe(*p2);
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->capacity_refused, asc::kLunNotReadyTargetPortUnavailable);
  EXPECT_EQ(again->ToDeviceInfo().initial_access, AccessState::kUnavailable);
}

TEST_F(ProbeTest, NoLogicalUnitAtTheLun) {
  Build();
  auto p1 = Connect(1);
  ExpectError(Probe(*p1, {}, 5), Errc::kNotFound, "probe of LUN 5: INQUIRY: no logical unit is connected");
  EXPECT_EQ(array_->CommandCount(op::kInquiry), 1u) << "nothing more is asked of an absent LU";
}

TEST_F(ProbeTest, RefusedPagesCostOnlyTheirInformation) {
  Build();
  std::uint8_t refused = 0x83;
  array_->SetHandler(op::kInquiry, [&refused](fake::CommandContext& c) {
    const auto cdb = *wire::Load<spec::InquiryCdb>(std::as_bytes(c.command.cdb_bytes()));
    if (cdb.evpd() && cdb.page_code == refused) {
      spec::SetCheckCondition(c.command, spec::SenseFormat::kFixed, asc::kInvalidFieldInCdb);
      return;
    }
    c.array.DefaultHandler(c);
  });
  auto p1 = Connect(1);
  auto no83 = Probe(*p1);
  ASSERT_TRUE(no83) << no83.error().ToString();
  EXPECT_TRUE(no83->identity.identity.empty());
  EXPECT_NE(no83->identity.reason.find("refused VPD page 83h (sense 5/24/00)"), std::string::npos)
      << no83->identity.reason;
  EXPECT_TRUE(no83->vpd83.empty());
  EXPECT_TRUE(no83->block_limits) << "the pages after it are still read";
  EXPECT_TRUE(no83->ToDeviceInfo().identity.empty());

  refused = 0x00;
  auto no00 = Probe(*p1);
  ASSERT_TRUE(no00) << no00.error().ToString();
  EXPECT_TRUE(no00->supported_vpd_pages.empty());
  EXPECT_EQ(no00->identity.identity.str(), kIdentity) << "page 83h is mandatory, so it is asked for anyway";
  EXPECT_FALSE(no00->block_limits) << "B0h is only asked for when listed";

  refused = 0xB0;
  auto noB0 = Probe(*p1);
  ASSERT_TRUE(noB0) << noB0.error().ToString();
  EXPECT_FALSE(noB0->block_limits);
  EXPECT_TRUE(noB0->capacity);
}

TEST_F(ProbeTest, MalformedAnswersFailTheProbeClearly) {
  Build();
  std::uint8_t sent_page_code = 0x80;
  array_->SetHandler(op::kInquiry, [&sent_page_code](fake::CommandContext& c) {
    const auto cdb = *wire::Load<spec::InquiryCdb>(std::as_bytes(c.command.cdb_bytes()));
    if (!cdb.evpd() || cdb.page_code != 0x83) return c.array.DefaultHandler(c);
    const std::uint8_t page[] = {0x00, sent_page_code, 0x00, 0x00};
    std::memcpy(c.command.data.data(), page, sizeof(page));
    c.command.residual = static_cast<std::uint32_t>(c.command.data.size() - sizeof(page));
  });
  auto p1 = Connect(1);
  ExpectError(Probe(*p1), Errc::kTargetError, "INQUIRY VPD 83h: VPD page 80h received where page 83h was expected");

  // Garbage sense on a CHECK CONDITION.
  array_->SetHandler(op::kInquiry, {});
  array_->SetHandler(op::kServiceActionIn16, [](fake::CommandContext& c) {
    c.command.status = static_cast<std::uint8_t>(spec::Status::kCheckCondition);
    c.command.sense_length = 3;
    c.command.sense[0] = 0x7F;
  });
  ExpectError(Probe(*p1), Errc::kTargetError, "READ CAPACITY (16): CHECK CONDITION with unreadable sense data");

  // A status the probe does not expect, and a NOT READY that is not about the port's access state.
  array_->SetHandler(op::kServiceActionIn16, [](fake::CommandContext& c) {
    c.command.status = static_cast<std::uint8_t>(spec::Status::kBusy);
  });
  ExpectError(Probe(*p1), Errc::kTargetError, "READ CAPACITY (16): status 0x08");
  array_->SetHandler(op::kServiceActionIn16, [](fake::CommandContext& c) {
    spec::SetCheckCondition(c.command, spec::SenseFormat::kFixed, asc::kLunNotReadyCauseNotReportable);
  });
  ExpectError(Probe(*p1), Errc::kTargetError, "CHECK CONDITION, sense 2/04/00");
}

// --- Transfer limits from the Block Limits VPD page (SBC-4 §6.6.4), in bytes of the device's blocks.

TEST_F(ProbeTest, BlockLimitsBecomeTransferAndZeroingBytes) {
  auto array = fake::Array::Create({}, clock_);
  ASSERT_TRUE(array) << array.error().ToString();
  array_ = std::move(*array);
  ASSERT_TRUE(array_->AddPortGroup({.id = 10, .state = AluaState::kActiveOptimized, .relative_ports = {1}}));
  ASSERT_TRUE(array_->AddLogicalUnit({.lun = kLun,
                                      .blocks = kBlocks,
                                      .block_size = kBlockSize,
                                      .naa = kNaa,
                                      .serial = "limited",
                                      .max_transfer_blocks = 256,
                                      .max_unmap_blocks = 2048,
                                      .max_unmap_descriptors = 4,
                                      .max_write_same_blocks = 1024}));
  // Not thin: the page reports no UNMAP limit, so WRITE SAME's alone bounds zeroing.
  std::array<std::uint8_t, 16> other = kNaa;
  other[15] ^= 0xFF;
  ASSERT_TRUE(array_->AddLogicalUnit({.lun = 2,
                                      .blocks = kBlocks,
                                      .block_size = 512,
                                      .naa = other,
                                      .serial = "thick",
                                      .thin = false,
                                      .max_transfer_blocks = 128,
                                      .max_write_same_blocks = 4096}));
  auto p1 = Connect(1);

  auto limited = Probe(*p1);
  ASSERT_TRUE(limited) << limited.error().ToString();
  ASSERT_TRUE(limited->block_limits);
  DeviceInfo info = limited->ToDeviceInfo();
  EXPECT_EQ(info.max_transfer_bytes, 256u * kBlockSize);
  EXPECT_EQ(info.max_zeroing_bytes, 1024u * kBlockSize) << "WRITE SAME's 1024 blocks are tighter than UNMAP's 2048";

  auto thick = Probe(*p1, {}, 2);
  ASSERT_TRUE(thick) << thick.error().ToString();
  info = thick->ToDeviceInfo();
  EXPECT_EQ(info.block_size, 512u);
  EXPECT_EQ(info.max_transfer_bytes, 128u * 512);
  EXPECT_EQ(info.max_zeroing_bytes, 4096u * 512);
}

TEST_F(ProbeTest, DefaultArrayLimitsReachTheDeviceInfo) {
  Build();
  auto p1 = Connect(1);
  auto a = Probe(*p1);
  ASSERT_TRUE(a) << a.error().ToString();
  const DeviceInfo info = a->ToDeviceInfo();
  EXPECT_EQ(info.max_transfer_bytes, 8192u * kBlockSize);
  EXPECT_EQ(info.max_zeroing_bytes, 0x10000ull * kBlockSize) << "min(UNMAP 0x40000, WRITE SAME 0x10000) blocks";
}

TEST_F(ProbeTest, NoBlockLimitsPageMeansNoLimits) {
  Build();
  array_->SetHandler(op::kInquiry, [](fake::CommandContext& c) {
    const auto cdb = *wire::Load<spec::InquiryCdb>(std::as_bytes(c.command.cdb_bytes()));
    if (cdb.evpd() && cdb.page_code == 0xB0) {
      spec::SetCheckCondition(c.command, spec::SenseFormat::kFixed, asc::kInvalidFieldInCdb);
      return;
    }
    c.array.DefaultHandler(c);
  });
  auto p1 = Connect(1);
  auto a = Probe(*p1);
  ASSERT_TRUE(a) << a.error().ToString();
  ASSERT_FALSE(a->block_limits);
  const DeviceInfo info = a->ToDeviceInfo();
  EXPECT_EQ(info.max_transfer_bytes, 0u);
  EXPECT_EQ(info.max_zeroing_bytes, 0u);
  EXPECT_EQ(info.block_size, kBlockSize);
}

// ToDeviceInfo on its own, with Block Limits values a device could send.
ProbedUnit UnitWithLimits(std::optional<BlockLimits> limits, std::uint32_t block_size = 4096) {
  ProbedUnit unit;
  unit.capacity = Capacity{.blocks = 1 << 20, .block_size = block_size};
  unit.block_limits = limits;
  return unit;
}

TEST(ProbedUnitLimitsTest, EachZeroingLimitAloneAndTheTighterOfBoth) {
  struct Case {
    std::uint32_t unmap;
    std::uint64_t write_same;
    std::uint64_t zeroing_blocks;
  };
  for (const Case& c : {Case{0, 0, 0}, Case{2048, 0, 2048}, Case{0, 1024, 1024}, Case{2048, 1024, 1024},
                        Case{512, 1024, 512}}) {
    SCOPED_TRACE(::testing::Message() << "unmap " << c.unmap << " write same " << c.write_same);
    const BlockLimits limits{.max_unmap_blocks = c.unmap, .max_write_same_blocks = c.write_same};
    const DeviceInfo info = UnitWithLimits(limits).ToDeviceInfo();
    EXPECT_EQ(info.max_transfer_bytes, 0u) << "0 blocks: the device reports no limit";
    EXPECT_EQ(info.max_zeroing_bytes, c.zeroing_blocks * 4096);
  }
  EXPECT_EQ(UnitWithLimits(BlockLimits{.max_transfer_blocks = 64}, 512).ToDeviceInfo().max_transfer_bytes, 32768u);
}

TEST(ProbedUnitLimitsTest, AbsentPageGivesNoLimits) {
  const DeviceInfo info = UnitWithLimits(std::nullopt).ToDeviceInfo();
  EXPECT_EQ(info.max_transfer_bytes, 0u);
  EXPECT_EQ(info.max_zeroing_bytes, 0u);
}

// The page's 32- and 64-bit block counts times the block size overflow the byte fields: they are capped at the most
// whole blocks that fit, never wrapped (a wrap could land on 0, "no limit", or on a tiny limit).
TEST(ProbedUnitLimitsTest, HugeValuesAreCappedNotWrapped) {
  constexpr std::uint32_t kMax32 = 0xFFFF'FFFF;
  constexpr std::uint64_t kMax64 = 0xFFFF'FFFF'FFFF'FFFF;
  DeviceInfo info = UnitWithLimits(BlockLimits{.max_transfer_blocks = kMax32, .max_unmap_blocks = 0,
                                               .max_write_same_blocks = kMax64})
                        .ToDeviceInfo();
  EXPECT_EQ(info.max_transfer_bytes, kMax32 - 4095) << "the largest multiple of 4096 below 2^32";
  EXPECT_EQ(info.max_zeroing_bytes, kMax64 - 4095);

  info = UnitWithLimits(BlockLimits{.max_transfer_blocks = 1u << 20, .max_unmap_blocks = kMax32,
                                    .max_write_same_blocks = kMax64})
             .ToDeviceInfo();
  EXPECT_EQ(info.max_transfer_bytes, kMax32 - 4095) << "2^20 blocks of 4 KiB are exactly 2^32 bytes";
  EXPECT_EQ(info.max_zeroing_bytes, std::uint64_t{kMax32} * 4096) << "UNMAP's count fits 64 bits of bytes";

  info = UnitWithLimits(BlockLimits{.max_transfer_blocks = (1u << 23) + 1}, 512).ToDeviceInfo();
  EXPECT_EQ(info.max_transfer_bytes, kMax32 - 511);
}

// --- Link faults from the simulated SAN.

class ProbeOverSanTest : public ::testing::Test {
 protected:
  ProbeOverSanTest() : executor_(clock_) {
    auto san = sim::SimSan::Create(sim::SanOptions{.clock = &clock_});
    EXPECT_TRUE(san);
    san_ = std::move(*san);
    auto array = san_->AddScsiArray("array0", {});
    EXPECT_TRUE(array);
    Populate(**array);
  }
  ScsiTransport& Path(const std::string& name, std::uint16_t port) {
    auto path = san_->ConnectScsi(
        {.name = name, .array = "array0", .initiator_port = std::string(kInitiator), .relative_port = port});
    EXPECT_TRUE(path) << path.error().ToString();
    return **path;
  }
  sim::LinkFaults& Faults(const std::string& name) { return **san_->Faults(name); }
  void Start(ScsiTransport& transport, Outcome& out, ProbeOptions options = {}) {
    ProbeLogicalUnit(transport, kLun, executor_, options, [&out](Result<ProbedUnit> r) {
      ++out.calls;
      out.result = std::move(r);
    });
  }

  ManualClock clock_;
  mpath::testing::ManualExecutor executor_;
  std::unique_ptr<sim::SimSan> san_;
};

TEST_F(ProbeOverSanTest, HealthyPathsAgreeOnIdentity) {
  Outcome a, b;
  Start(Path("a", 1), a);
  Start(Path("b", 2), b);
  executor_.RunUntilIdle();
  ASSERT_EQ(a.calls, 1);
  ASSERT_EQ(b.calls, 1);
  ASSERT_TRUE(*a.result && *b.result);
  EXPECT_EQ((*a.result)->identity.identity.str(), kIdentity);
  EXPECT_EQ((*b.result)->identity.identity, (*a.result)->identity.identity);
  EXPECT_NE((*b.result)->port.relative_target_port, (*a.result)->port.relative_target_port);
}

TEST_F(ProbeOverSanTest, LinkDownFailsAtOnceAndOnce) {
  ScsiTransport& path = Path("a", 1);
  Faults("a").SetLinkDown(true);
  Outcome out;
  Start(path, out);
  executor_.RunUntilIdle();
  ASSERT_EQ(out.calls, 1);
  ASSERT_FALSE(*out.result);
  EXPECT_EQ(out.result->error().code(), Errc::kPathError);
  EXPECT_EQ(out.result->error().message(), "probe of LUN 1: INQUIRY: not delivered: link down");
  std::optional<ScsiOutcome> raw = DecodeRawStatus(out.result->error().raw());
  ASSERT_TRUE(raw.has_value()) << "the error keeps the transport's verdict";
  EXPECT_EQ(raw->delivery, proto::Delivery::kLinkDown);
  executor_.Advance(std::chrono::minutes(5));
  EXPECT_EQ(out.calls, 1);
}

TEST_F(ProbeOverSanTest, HungLinkTimesOutAtTheCommandTimeout) {
  ScsiTransport& path = Path("a", 1);
  Faults("a").SetHang(true);
  Outcome out;
  Start(path, out, ProbeOptions{.command_timeout = std::chrono::seconds(5)});
  executor_.RunUntilIdle();
  EXPECT_EQ(out.calls, 0);
  executor_.Advance(std::chrono::milliseconds(4999));
  EXPECT_EQ(out.calls, 0) << "still within the timeout";
  executor_.Advance(std::chrono::milliseconds(1));
  ASSERT_EQ(out.calls, 1);
  ASSERT_FALSE(*out.result);
  EXPECT_EQ(out.result->error().code(), Errc::kTimedOut);
  EXPECT_NE(out.result->error().message().find("INQUIRY: not delivered: timed out"), std::string::npos);
  executor_.Advance(std::chrono::minutes(5));
  EXPECT_EQ(out.calls, 1);
  EXPECT_EQ(executor_.pending_timers(), 0u);
}

TEST_F(ProbeOverSanTest, LinkLostHalfwayFailsTheCommandInFlight) {
  ScsiTransport& path = Path("a", 1);
  Faults("a").SetLatency(std::chrono::milliseconds(1));
  Outcome out;
  Start(path, out);
  executor_.RunUntilIdle();
  executor_.Advance(std::chrono::milliseconds(1));  // standard INQUIRY answered; VPD 00h on the wire
  EXPECT_EQ(out.calls, 0);
  Faults("a").SetLinkDown(true);
  executor_.Advance(std::chrono::milliseconds(1));
  ASSERT_EQ(out.calls, 1);
  ASSERT_FALSE(*out.result);
  EXPECT_EQ(out.result->error().code(), Errc::kPathError);
  EXPECT_NE(out.result->error().message().find("INQUIRY VPD 00h: not delivered: link down"), std::string::npos)
      << out.result->error().message();
  executor_.Advance(std::chrono::minutes(1));
  EXPECT_EQ(out.calls, 1);
}

TEST_F(ProbeOverSanTest, SlowLinkStillProbes) {
  ScsiTransport& path = Path("a", 1);
  Faults("a").SetLatency(std::chrono::milliseconds(20));
  Outcome out;
  Start(path, out);
  executor_.Advance(std::chrono::milliseconds(119));
  EXPECT_EQ(out.calls, 0) << "six commands of 20 ms each";
  executor_.Advance(std::chrono::milliseconds(1));
  ASSERT_EQ(out.calls, 1);
  ASSERT_TRUE(*out.result) << out.result->error().ToString();
  EXPECT_EQ((*out.result)->capacity->bytes(), kBlocks * kBlockSize);
}

}  // namespace
}  // namespace mpath::scsi::testing
