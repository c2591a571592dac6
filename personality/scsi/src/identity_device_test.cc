// Port designators, the standard INQUIRY summary, READ CAPACITY, the small VPD pages, DescribeDevice, and the core's
// opt-in decided on what this personality reports for tgt-like and LIO-like devices.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "identity_test_util.h"
#include "mpath/core/path_driver.h"
#include "mpath/core/personality.h"
#include "mpath/core/registry.h"
#include "mpath/scsi/identity.h"
#include "mpath/testing/manual_executor.h"

namespace mpath::scsi::testing {
namespace {

// --- Port designators.

TEST(TargetPortInfo, LioPortsDifferOnlyInPortAndGroup) {
  auto a = ParseTargetPortInfo(LioPage(1, 10));
  auto b = ParseTargetPortInfo(LioPage(2, 20));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->relative_target_port, 1);
  EXPECT_EQ(a->target_port_group, 10);
  EXPECT_EQ(b->relative_target_port, 2);
  EXPECT_EQ(b->target_port_group, 20);
  EXPECT_EQ(a->target_name, "iqn.2024-01.lab.interop:lio1") << "the ,t,0x0001 suffix names the port, not the target";
  EXPECT_EQ(b->target_name, a->target_name);
}

TEST(TargetPortInfo, TgtReportsNoPortDesignators) {
  auto t = ParseTargetPortInfo(TgtPage());
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->relative_target_port);
  EXPECT_FALSE(t->target_port_group);
  EXPECT_EQ(t->target_name, "") << "LU designators never name the target";
}

TEST(TargetPortInfo, NameSuffixIsRemovedOnlyWhenItIsOne) {
  auto name = [](std::string text) {
    auto t = ParseTargetPortInfo(Page83({Port(DesignatorType::kScsiNameString, CodeSet::kUtf8, NameString(text))}));
    return t ? t->target_name : "error";
  };
  EXPECT_EQ(name("iqn.2026-01.io.example:t1,t,0x0001"), "iqn.2026-01.io.example:t1");
  EXPECT_EQ(name("iqn.2026-01.io.example:t1,t,0x1F"), "iqn.2026-01.io.example:t1");
  EXPECT_EQ(name("iqn.2026-01.io.example:t1"), "iqn.2026-01.io.example:t1");
  EXPECT_EQ(name("iqn.2026-01.io.example:t1,t,0x"), "iqn.2026-01.io.example:t1,t,0x");
  EXPECT_EQ(name("iqn.2026-01.io.example:t1,t,0xzz"), "iqn.2026-01.io.example:t1,t,0xzz");
  EXPECT_EQ(name("naa.5001405abde00001"), "naa.5001405abde00001");
}

TEST(TargetPortInfo, TargetNameFallsBackFromPortNameToDeviceNameToNaa) {
  const Bytes port_name = Port(DesignatorType::kScsiNameString, CodeSet::kUtf8, NameString("iqn.t:port,t,0x2"));
  const Bytes device_name = Designator(Association::kTargetDevice, DesignatorType::kScsiNameString, CodeSet::kUtf8,
                                       NameString("iqn.t:device"), 5, Piv::kYes);
  const Bytes device_naa = Designator(Association::kTargetDevice, DesignatorType::kNaa, CodeSet::kBinary,
                                      U8({0x50, 0, 0, 0, 0, 0, 0, 0xd}), 6, Piv::kYes);
  const Bytes port_naa = Port(DesignatorType::kNaa, CodeSet::kBinary, U8({0x50, 0, 0, 0, 0, 0, 0, 0x9}));
  auto name = [](Bytes page) { return ParseTargetPortInfo(page)->target_name; };
  EXPECT_EQ(name(Page83({port_naa, device_naa, device_name, port_name})), "iqn.t:port");
  EXPECT_EQ(name(Page83({port_naa, device_naa, device_name})), "iqn.t:device");
  EXPECT_EQ(name(Page83({port_naa, device_naa})), "naa.500000000000000d");
  EXPECT_EQ(name(Page83({port_naa})), "naa.5000000000000009");
  // A name that is no name (empty, wrong code set) does not count.
  EXPECT_EQ(name(Page83({Port(DesignatorType::kScsiNameString, CodeSet::kUtf8, Bytes(4)), port_naa})),
            "naa.5000000000000009");
  EXPECT_EQ(name(Page83({Port(DesignatorType::kScsiNameString, CodeSet::kBinary, NameString("iqn.x")), port_naa})),
            "naa.5000000000000009");
}

TEST(TargetPortInfo, PortDesignatorsMustBeWellFormed) {
  auto info = [](std::initializer_list<Bytes> designators) { return *ParseTargetPortInfo(Page83(designators)); };
  // Logical unit association: not a port designator.
  EXPECT_FALSE(info({Lu(DesignatorType::kRelativeTargetPort, CodeSet::kBinary, Id16(1))}).relative_target_port);
  EXPECT_FALSE(info({Lu(DesignatorType::kTargetPortGroup, CodeSet::kBinary, Id16(1))}).target_port_group);
  // Wrong length or code set.
  EXPECT_FALSE(info({Port(DesignatorType::kRelativeTargetPort, CodeSet::kBinary, U8({0, 1}))}).relative_target_port);
  EXPECT_FALSE(info({Port(DesignatorType::kTargetPortGroup, CodeSet::kBinary, U8({0, 0, 0, 1, 0}))})
                   .target_port_group);
  EXPECT_FALSE(info({Port(DesignatorType::kRelativeTargetPort, CodeSet::kAscii, Id16(1))}).relative_target_port);
  // Of two that disagree the first is kept; a malformed first one does not hide a good second.
  const TargetPortInfo two = info({Port(DesignatorType::kTargetPortGroup, CodeSet::kBinary, Id16(7)),
                                   Port(DesignatorType::kTargetPortGroup, CodeSet::kBinary, Id16(8)),
                                   Port(DesignatorType::kRelativeTargetPort, CodeSet::kBinary, U8({1})),
                                   Port(DesignatorType::kRelativeTargetPort, CodeSet::kBinary, Id16(0x1234))});
  EXPECT_EQ(two.target_port_group, 7);
  EXPECT_EQ(two.relative_target_port, 0x1234);
}

TEST(TargetPortInfo, BoundedByWhatArrived) {
  const Bytes whole = LioPage(2, 20);
  // Offsets where each port designator ends: after NAA (24) and T10 (4 + 29 = 57): relative port 65, group 73.
  for (std::size_t n = 4; n <= whole.size(); ++n) {
    SCOPED_TRACE(n);
    auto info = ParseTargetPortInfo(std::span(whole).first(n));
    ASSERT_TRUE(info);
    EXPECT_EQ(info->relative_target_port.has_value(), n >= 65);
    EXPECT_EQ(info->target_port_group.has_value(), n >= 73);
    EXPECT_EQ(info->target_name.empty(), n < whole.size());
  }
  EXPECT_EQ(ParseTargetPortInfo(U8({0, 0x83})).error().code(), Errc::kTargetError);
  EXPECT_EQ(ParseTargetPortInfo(Page83({}, -1, 0x80)).error().code(), Errc::kTargetError);
}

// --- Standard INQUIRY.

TEST(InquirySummary, LioAndTgt) {
  auto lio = ParseStandardInquiry(LioInquiry());
  ASSERT_TRUE(lio);
  EXPECT_EQ(lio->peripheral_qualifier, 0);
  EXPECT_EQ(lio->peripheral_device_type, 0);
  EXPECT_EQ(lio->version, 0x06);
  EXPECT_EQ(lio->tpgs, 3);
  EXPECT_TRUE(lio->reports_access_states());
  EXPECT_EQ(lio->vendor, "LIO-ORG");
  EXPECT_EQ(lio->product, "IBLOCK");
  EXPECT_EQ(lio->revision, "4.0");
  EXPECT_EQ(lio->length, 96u);

  auto tgt = ParseStandardInquiry(TgtInquiry());
  ASSERT_TRUE(tgt);
  EXPECT_EQ(tgt->version, 0x05);
  EXPECT_EQ(tgt->tpgs, 0);
  EXPECT_FALSE(tgt->reports_access_states());
  EXPECT_EQ(tgt->vendor, "IET");
  EXPECT_EQ(tgt->product, "VIRTUAL-DISK");
  EXPECT_EQ(tgt->length, 66u);
}

TEST(InquirySummary, ShortRepliesLeaveLaterFieldsAbsent) {
  const Bytes whole = LioInquiry();
  EXPECT_EQ(ParseStandardInquiry({}).error().code(), Errc::kTargetError);
  for (std::size_t n = 1; n <= 40; ++n) {
    SCOPED_TRACE(n);
    auto s = ParseStandardInquiry(std::span(whole).first(n));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->length, n);
    EXPECT_EQ(s->peripheral_device_type, 0);
    EXPECT_EQ(s->version.has_value(), n >= 3);
    EXPECT_EQ(s->tpgs.has_value(), n >= 6);
    EXPECT_EQ(s->reports_access_states(), n >= 6);
    EXPECT_EQ(s->vendor.has_value(), n >= 16);
    EXPECT_EQ(s->product.has_value(), n >= 32);
    EXPECT_EQ(s->revision.has_value(), n >= 36);
  }
}

TEST(InquirySummary, AdditionalLengthBoundsTheFields) {
  Bytes d = LioInquiry();
  d[4] = std::byte{10};  // 15 bytes in all, though 96 arrived
  auto s = ParseStandardInquiry(d);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->length, 15u);
  EXPECT_EQ(s->tpgs, 3);
  EXPECT_FALSE(s->vendor);
  d[4] = std::byte{31};  // exactly the 36 classic bytes
  s = ParseStandardInquiry(d);
  EXPECT_EQ(s->length, 36u);
  EXPECT_EQ(s->revision, "4.0");
}

TEST(InquirySummary, TextIsTrimmedAndPrintable) {
  Bytes d = StandardInquiry(1, "  AB", "", "\x01Z");
  d[14] = std::byte{0};  // a NUL in the vendor field's padding
  auto s = ParseStandardInquiry(d);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->vendor, "AB");
  EXPECT_EQ(s->product, "") << "all spaces";
  EXPECT_EQ(s->revision, "?Z");
  EXPECT_EQ(s->tpgs, 1);
}

TEST(InquirySummary, OnlyConnectedBlockDevicesAreProbed) {
  auto check = [](std::uint8_t peripheral) {
    return CheckBlockDevice(*ParseStandardInquiry(StandardInquiry(0, "IET", "CONTROLLER", "0001", 5, peripheral)));
  };
  EXPECT_TRUE(check(0x00));
  EXPECT_EQ(check(0x7F).error().code(), Errc::kNotFound) << "qualifier 011b: no LU at this LUN";
  EXPECT_EQ(check(0x20).error().code(), Errc::kNotFound) << "qualifier 001b: not connected";
  auto controller = check(0x0C);
  EXPECT_EQ(controller.error().code(), Errc::kUnsupported) << "tgt's LUN 0, a storage array controller";
  EXPECT_NE(controller.error().message().find("0x0c"), std::string::npos) << controller.error().message();
}

// --- READ CAPACITY and the small VPD pages.

TEST(Capacity, ReadCapacity16) {
  auto c = ParseReadCapacity16(ReadCapacity16(0x1FFFFF, 512));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->blocks, 0x200000u);
  EXPECT_EQ(c->block_size, 512u);
  EXPECT_EQ(c->bytes(), 1ull << 30);
  const Bytes small = ReadCapacity16(7, 4096);
  EXPECT_TRUE(ParseReadCapacity16(std::span(small).first(12))) << "12 bytes hold the capacity";
  EXPECT_EQ(ParseReadCapacity16(std::span(small).first(11)).error().code(), Errc::kTargetError);
  EXPECT_EQ(ParseReadCapacity16(ReadCapacity16(7, 0)).error().code(), Errc::kTargetError);
  EXPECT_EQ(ParseReadCapacity16(ReadCapacity16(~0ull, 512)).error().code(), Errc::kTargetError);
  EXPECT_EQ(ParseReadCapacity16(ReadCapacity16(1ull << 56, 512)).error().code(), Errc::kTargetError);
  EXPECT_EQ(ParseReadCapacity16(ReadCapacity16((1ull << 55) - 1, 512)).error().code(), Errc::kTargetError)
      << "exactly 2^64 bytes";
  EXPECT_EQ(ParseReadCapacity16(ReadCapacity16((1ull << 54) - 1, 512))->bytes(), 1ull << 63);
}

TEST(Capacity, ReadCapacity10) {
  auto c = ParseReadCapacity10(U8({0x00, 0x00, 0x0F, 0xFF, 0x00, 0x00, 0x10, 0x00}));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->blocks, 0x1000u);
  EXPECT_EQ(c->block_size, 4096u);
  EXPECT_EQ(ParseReadCapacity10(U8({0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 2, 0})).error().code(), Errc::kUnsupported);
  EXPECT_EQ(ParseReadCapacity10(U8({0, 0, 0, 1, 0, 0, 2})).error().code(), Errc::kTargetError);
}

TEST(VpdPages, SupportedPagesBoundedByPageLength) {
  auto pages = ParseSupportedVpdPages(U8({0x00, 0x00, 0x00, 0x03, 0x00, 0x80, 0x83, 0xB0}));
  ASSERT_TRUE(pages);
  EXPECT_EQ(*pages, (std::vector<std::uint8_t>{0x00, 0x80, 0x83}));
  EXPECT_EQ(ParseSupportedVpdPages(U8({0x00, 0x00, 0x00, 0x09, 0x00, 0x83}))->size(), 2u) << "bounded by what arrived";
  EXPECT_EQ(ParseSupportedVpdPages(U8({0x00, 0x83, 0x00, 0x00})).error().code(), Errc::kTargetError);
  EXPECT_EQ(ParseSupportedVpdPages(U8({0x00, 0x00})).error().code(), Errc::kTargetError);
}

TEST(VpdPages, BlockLimitsBoundedByPageLength) {
  spec::BlockLimitsVpdPage p{};
  p.header.page_code = 0xB0;
  p.header.page_length = 0x3C;
  p.maximum_transfer_length = 8192;
  p.optimal_transfer_length = 128;
  p.maximum_unmap_lba_count = 0x40000;
  p.maximum_unmap_block_descriptor_count = 256;
  p.maximum_write_same_length = 0x10000;
  Bytes page;
  AppendRaw(page, &p, sizeof(p));
  auto limits = ParseBlockLimits(page);
  ASSERT_TRUE(limits);
  EXPECT_EQ(limits->max_transfer_blocks, 8192u);
  EXPECT_EQ(limits->optimal_transfer_blocks, 128u);
  EXPECT_EQ(limits->max_unmap_blocks, 0x40000u);
  EXPECT_EQ(limits->max_unmap_descriptors, 256u);
  EXPECT_EQ(limits->max_write_same_blocks, 0x10000u);
  // An old target's 12-byte page (PAGE LENGTH 8): what is beyond it reads as "no limit".
  page[3] = std::byte{8};
  limits = ParseBlockLimits(page);
  ASSERT_TRUE(limits);
  EXPECT_EQ(limits->max_transfer_blocks, 8192u);
  EXPECT_EQ(limits->optimal_transfer_blocks, 0u);
  EXPECT_EQ(limits->max_write_same_blocks, 0u);
  EXPECT_EQ(ParseBlockLimits(LioPage(1, 10)).error().code(), Errc::kTargetError);
}

// --- DescribeDevice.

TEST(DescribeDevice, LioLikeDevice) {
  auto d = DescribeDevice(LioInquiry(), LioPage(2, 20), ReadCapacity16(0x1FFFFF, 512));
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_EQ(d->info.identity.str(), kLioIdentity);
  EXPECT_TRUE(d->info.reports_access_states);
  EXPECT_EQ(d->info.capacity_bytes, 1ull << 30);
  EXPECT_EQ(d->info.block_size, 512u);
  EXPECT_EQ(d->identity.kind, IdentityKind::kNaaRegisteredExtended);
  EXPECT_EQ(d->port.relative_target_port, 2);
  EXPECT_EQ(d->port.target_port_group, 20);
  EXPECT_EQ(d->inquiry.vendor, "LIO-ORG");
}

TEST(DescribeDevice, TgtLikeDevice) {
  auto d = DescribeDevice(TgtInquiry(), TgtPage(), ReadCapacity16(131071, 512));
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_EQ(d->info.identity.str(), kTgtIdentity);
  EXPECT_FALSE(d->info.reports_access_states);
  EXPECT_EQ(d->info.capacity_bytes, 64ull << 20);
}

TEST(DescribeDevice, NoUsableDesignatorIsADeviceWithoutIdentity) {
  auto d = DescribeDevice(LioInquiry(), Page83({Port(DesignatorType::kRelativeTargetPort, CodeSet::kBinary, Id16(1))}),
                          ReadCapacity16(7, 4096));
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_TRUE(d->info.identity.empty());
  EXPECT_EQ(d->identity.kind, IdentityKind::kNone);
  EXPECT_NE(d->identity.reason.find("no usable logical unit designator"), std::string::npos) << d->identity.reason;
  EXPECT_EQ(d->port.relative_target_port, 1);
}

TEST(DescribeDevice, MalformedAnswersAreClearErrors) {
  auto expect = [](Result<DeviceDescription> d, Errc code, std::string_view phrase) {
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().code(), code) << d.error().ToString();
    EXPECT_NE(d.error().message().find(phrase), std::string::npos) << d.error().message();
  };
  const Bytes rc = ReadCapacity16(7, 512);
  expect(DescribeDevice({}, LioPage(1, 10), rc), Errc::kTargetError, "no data");
  expect(DescribeDevice(StandardInquiry(3, "X", "Y", "Z", 6, 0x7F), LioPage(1, 10), rc), Errc::kNotFound,
         "no logical unit");
  expect(DescribeDevice(StandardInquiry(3, "X", "Y", "Z", 6, 0x05), LioPage(1, 10), rc), Errc::kUnsupported,
         "not a direct access block device");
  expect(DescribeDevice(LioInquiry(), U8({0, 0x83}), rc), Errc::kTargetError, "shorter than the page header");
  expect(DescribeDevice(LioInquiry(), Page83({}, -1, 0xB0), rc), Errc::kTargetError, "page b0h received");
  expect(DescribeDevice(LioInquiry(), LioPage(1, 10), std::span(rc).first(8)), Errc::kTargetError,
         "READ CAPACITY (16) returned 8 bytes");
  expect(DescribeDevice(LioInquiry(), LioPage(1, 10), ReadCapacity16(7, 0)), Errc::kTargetError,
         "logical block length of 0");
}

// --- Opt-in: the core's rule applied to what this personality reports.

struct OptInCase {
  MultipathMode mode;
  const char* device;
  bool multipath;
};

OptInPolicy Policy(MultipathMode mode, std::vector<std::string> opted_out = {}) {
  OptInPolicy policy;
  policy.mode = mode;
  policy.opted_out_transports = std::move(opted_out);
  return policy;
}

DeviceInfo Info(std::string_view device) {
  Result<DeviceDescription> d = std::string_view(device) == "tgt"
                                    ? DescribeDevice(TgtInquiry(), TgtPage(), ReadCapacity16(131071, 512))
                                : device == "lio"
                                    ? DescribeDevice(LioInquiry(), LioPage(1, 10), ReadCapacity16(131071, 512))
                                    : DescribeDevice(LioInquiry(), Page83({}), ReadCapacity16(131071, 512));
  EXPECT_TRUE(d) << d.error().ToString();
  DeviceInfo info = d->info;
  info.name = std::string(device) + ":lun1";
  info.transport = "iscsi";
  return info;
}

TEST(OptIn, OnAlwaysOffOnTgtLioAndNoIdentity) {
  const OptInCase cases[] = {
      {MultipathMode::kOff, "tgt", false},       {MultipathMode::kOff, "lio", false},
      {MultipathMode::kOff, "anonymous", false}, {MultipathMode::kOn, "tgt", false},
      {MultipathMode::kOn, "lio", true},         {MultipathMode::kOn, "anonymous", false},
      {MultipathMode::kAlways, "tgt", true},     {MultipathMode::kAlways, "lio", true},
      {MultipathMode::kAlways, "anonymous", false},
  };
  for (const OptInCase& c : cases) {
    SCOPED_TRACE(std::string(Name(c.mode)) + " " + c.device);
    const OptInDecision decision = DecideOptIn(Policy(c.mode), Info(c.device));
    EXPECT_EQ(decision.multipath, c.multipath) << decision.reason;
  }
  // The reason tells an operator why tgt is left alone under "on".
  const OptInDecision tgt = DecideOptIn(Policy(MultipathMode::kOn), Info("tgt"));
  EXPECT_NE(tgt.reason.find("asymmetric access states"), std::string::npos) << tgt.reason;
  EXPECT_FALSE(DecideOptIn(Policy(MultipathMode::kAlways, {"iscsi"}), Info("lio")).multipath);
}

TEST(OptIn, RegistryGivesTgtTheDirectBypassUnderOn) {
  ManualClock clock;
  mpath::testing::ManualExecutor control(clock);
  RegistryOptions options;
  options.opt_in = Policy(MultipathMode::kOn);
  auto registry = Registry::Create(std::move(options), control);
  ASSERT_TRUE(registry) << registry.error().ToString();

  auto tgt = (*registry)->Attach(Info("tgt"), NeutralTemplate::Instance(), std::make_unique<NullPath>());
  ASSERT_TRUE(tgt) << tgt.error().ToString();
  EXPECT_FALSE(tgt->multipathed());
  ASSERT_NE(tgt->direct, nullptr);
  EXPECT_EQ(tgt->direct->capacity_bytes(), 64ull << 20);
  EXPECT_EQ(tgt->direct->block_size(), 512u);

  DeviceInfo lio_a = Info("lio");
  DeviceInfo lio_b = lio_a;
  lio_b.name = "lio:lun1:b";
  auto a = (*registry)->Attach(lio_a, NeutralTemplate::Instance(), std::make_unique<NullPath>());
  auto b = (*registry)->Attach(lio_b, NeutralTemplate::Instance(), std::make_unique<NullPath>());
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(a->multipathed());
  EXPECT_EQ(a->head, b->head) << "one identity, one head";
  EXPECT_EQ((*registry)->FindHead(kLioIdentity), a->head);
  EXPECT_EQ((*registry)->Heads().size(), 1u);
  control.RunUntilIdle();
}

}  // namespace
}  // namespace mpath::scsi::testing
