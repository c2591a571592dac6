#include "mpath/daemon/render.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <sstream>

#include "mpath/core/path.h"

namespace mpath::daemon {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

PathView MakePath(std::string name, std::string address, PathState state, AccessState access, std::uint64_t ios,
                  std::uint64_t errors, std::uint64_t failovers) {
  PathView path;
  path.name = std::move(name);
  path.protocol = "scsi";
  path.transport = "sim";
  path.address = std::move(address);
  path.state = state;
  path.access = access;
  path.usable = state == PathState::kLive;
  path.counters.ios = ios;
  path.counters.errors = errors;
  path.counters.failovers = failovers;
  return path;
}

// A SCSI head with two optimized paths (one preferred and busy, one failed and marginal) and one non-optimized,
// given out of listing order on purpose.
HeadView ScsiHead() {
  HeadView head;
  head.name = "mpath0";
  head.alias = "db0";
  head.identity = "naa.60014050abcd0000000000000000000a";
  head.protocol = "scsi";
  head.vendor = "MPATHSIM";
  head.product = "ALUA-ARRAY";
  head.capacity_bytes = 64ull << 20;
  head.block_size = 512;
  head.policy = IoPolicyKind::kRoundRobin;
  head.state = HeadState::kLive;
  head.counters.ios = 1212;
  head.counters.bytes = 1212 * 4096;
  head.counters.errors = 1;
  head.counters.failovers = 3;
  head.counters.requeues = 2;
  head.counters.no_path_failures = 0;
  head.counters.retries = 4;
  head.paths.push_back(MakePath("a0-tp3", "sim array0 tpg2/port3 lun0", PathState::kLive, AccessState::kNonOptimized,
                                5, 0, 0));
  PathView tp1 = MakePath("a0-tp1", "sim array0 tpg1/port1 lun0", PathState::kLive, AccessState::kOptimized, 1200, 1,
                          3);
  tp1.preferred = true;
  tp1.in_flight = 2;
  tp1.latency_p50_us = 12.34;
  tp1.latency_p99_us = 4560;
  tp1.latency_max_us = 1.2e6;
  head.paths.push_back(tp1);
  PathView tp2 = MakePath("a0-tp2", "sim array0 tpg1/port2 lun0", PathState::kFailed, AccessState::kOptimized, 7, 4, 0);
  tp2.marginal = MarginalReason::kErrors;
  head.paths.push_back(tp2);
  return head;
}

HeadView NvmeHead() {
  HeadView head;
  head.name = "mpath1";
  head.identity = "nguid.00112233445566778899aabbccddeeff";
  head.protocol = "nvme";
  head.vendor = "MPATHSIM NVMe";
  head.product = "SN0001";
  head.capacity_bytes = 1610612736;  // 1.5 GiB
  head.block_size = 4096;
  head.policy = IoPolicyKind::kNuma;
  head.state = HeadState::kQueueing;
  PathView path = MakePath("s0-p1n1", "sim subsys0 port1 nsid1 (cntlid 1)", PathState::kConnecting,
                           AccessState::kTransitioning, 0, 0, 0);
  path.protocol = "nvme";
  head.paths.push_back(path);
  return head;
}

TEST(RenderList, ShowsHeadsAndTheirPathsGroupedByAccessStateInAlignedColumns) {
  HeadView empty;
  empty.name = "mpath2";
  empty.identity = "naa.6001405000000000000000000000000b";
  empty.protocol = "scsi";
  empty.capacity_bytes = 4096;
  empty.block_size = 512;
  empty.state = HeadState::kFailing;
  std::vector<HeadView> heads = {ScsiHead(), NvmeHead(), empty};

  std::vector<std::string> expected = {
      "mpath0 (db0) naa.60014050abcd0000000000000000000a MPATHSIM,ALUA-ARRAY",
      "size=64MiB blocks=131072x512 protocol=scsi policy=round-robin state=live",
      "|-+- optimized:",
      "| |- a0-tp1  sim array0 tpg1/port1 lun0  live    optimized      preferred                   inflight=2  "
      "ios=1200  errors=1  failovers=3",
      "| `- a0-tp2  sim array0 tpg1/port2 lun0  failed  optimized                 marginal=errors  inflight=0  "
      "ios=7     errors=4  failovers=0",
      "`-+- non-optimized:",
      "  `- a0-tp3  sim array0 tpg2/port3 lun0  live    non-optimized                              inflight=0  "
      "ios=5     errors=0  failovers=0",
      "mpath1 nguid.00112233445566778899aabbccddeeff MPATHSIM NVMe,SN0001",
      "size=1.5GiB blocks=393216x4096 protocol=nvme policy=numa state=queueing",
      "`-+- transitioning:",
      "  `- s0-p1n1  sim subsys0 port1 nsid1 (cntlid 1)  connecting  transitioning  inflight=0  ios=0  errors=0  "
      "failovers=0",
      "mpath2 naa.6001405000000000000000000000000b",
      "size=4KiB blocks=8x512 protocol=scsi policy=numa state=failing",
      "`-+- (no paths)",
  };
  EXPECT_EQ(Lines(RenderList(heads)), expected);
}

TEST(RenderList, SaysSoWhenThereAreNoHeads) { EXPECT_EQ(RenderList({}), "No heads.\n"); }

TEST(RenderShow, ShowsEveryAttributeAndEachPathWithCountersAndLatency) {
  std::vector<std::string> lines = Lines(RenderShow(ScsiHead()));
  std::vector<std::string> expected_head = {
      "mpath0",
      "  alias:     db0",
      "  identity:  naa.60014050abcd0000000000000000000a",
      "  protocol:  scsi",
      "  vendor:    MPATHSIM",
      "  product:   ALUA-ARRAY",
      "  size:      64MiB (67108864 bytes, 131072 blocks of 512)",
      "  policy:    round-robin",
      "  state:     live",
      "  counters:  ios=1212 bytes=4964352 errors=1 failovers=3 requeues=2 no_path_failures=0 retries=4",
      "  paths:     3 (2 usable)",
      "",
      "  path a0-tp1",
      "    address:    sim array0 tpg1/port1 lun0",
      "    transport:  sim",
      "    state:      live",
      "    access:     optimized",
      "    preferred:  yes",
      "    marginal:   no",
      "    usable:     yes",
      "    in-flight:  2",
      "    counters:   ios=1200 bytes=0 errors=1 failovers=3 requeues=0 no_path_failures=0 retries=0",
      "    latency:    p50=12.3us p99=4.56ms max=1.20s",
      "",
      "  path a0-tp2",
  };
  ASSERT_GE(lines.size(), expected_head.size());
  EXPECT_EQ(std::vector<std::string>(lines.begin(), lines.begin() + static_cast<long>(expected_head.size())),
            expected_head);
  std::string text = RenderShow(ScsiHead());
  EXPECT_THAT(text, HasSubstr("    marginal:   errors\n"));
  EXPECT_THAT(text, HasSubstr("    latency:    - (no I/O sampled)\n"));
  // The non-optimized path comes last, after both optimized ones.
  EXPECT_LT(text.find("path a0-tp2"), text.find("path a0-tp3"));
  EXPECT_EQ(lines.back(), "    latency:    - (no I/O sampled)");
}

TEST(Format, SizesUseBinaryUnits) {
  EXPECT_EQ(FormatSize(0), "0B");
  EXPECT_EQ(FormatSize(512), "512B");
  EXPECT_EQ(FormatSize(1536), "1.5KiB");
  EXPECT_EQ(FormatSize(64ull << 20), "64MiB");
  EXPECT_EQ(FormatSize(3ull << 40), "3TiB");
  EXPECT_EQ(FormatSize((1ull << 20) - 1), "1.0MiB");  // not "1024.0KiB"
  EXPECT_EQ(FormatSize(~0ull), "16.0EiB");
}

TEST(Format, LatenciesPickTheirUnit) {
  EXPECT_EQ(FormatMicros(0.85), "850ns");
  EXPECT_EQ(FormatMicros(12.34), "12.3us");
  EXPECT_EQ(FormatMicros(4560), "4.56ms");
  EXPECT_EQ(FormatMicros(1.2e6), "1.20s");
}

TEST(Keys, ParseHexAndDecimalAndFormatAsHex) {
  EXPECT_EQ(ParseKey("0x1234").value(), 0x1234u);
  EXPECT_EQ(ParseKey("0XABCdef").value(), 0xabcdefu);
  EXPECT_EQ(ParseKey("4660").value(), 4660u);
  EXPECT_EQ(ParseKey("0").value(), 0u);
  EXPECT_EQ(ParseKey("0xffffffffffffffff").value(), ~0ull);
  EXPECT_EQ(ParseKey("18446744073709551615").value(), ~0ull);
  EXPECT_EQ(FormatKey(0x1234), "0x1234");
  EXPECT_EQ(ParseKey(FormatKey(0xfeedface12345678)).value(), 0xfeedface12345678u);
}

TEST(Keys, RefuseAnythingElseNamingTheText) {
  for (std::string_view bad : {"", "0x", "12ab", "-1", " 1", "1 ", "0x1g", "abc", "+5"}) {
    auto key = ParseKey(bad);
    ASSERT_FALSE(key.has_value()) << "'" << bad << "'";
    EXPECT_EQ(key.error().code(), Errc::kInvalidArgument);
    EXPECT_THAT(key.error().message(), HasSubstr(fmt::format("'{}'", bad)));
  }
  auto big = ParseKey("0x10000000000000000");
  ASSERT_FALSE(big.has_value());
  EXPECT_THAT(big.error().message(), HasSubstr("larger than 64 bits"));
  EXPECT_FALSE(ParseKey("18446744073709551616").has_value());
}

TEST(Json, HeadsCarryTheDocumentedFieldsWithTheirTypes) {
  std::vector<HeadView> heads = {ScsiHead(), NvmeHead()};
  json doc = HeadsToJson(heads);
  ASSERT_TRUE(doc["heads"].is_array());
  ASSERT_EQ(doc["heads"].size(), 2u);
  const json& head = doc["heads"][0];
  for (const char* key : {"name", "alias", "identity", "protocol", "vendor", "product", "policy", "state"}) {
    EXPECT_TRUE(head[key].is_string()) << key;
  }
  EXPECT_EQ(head["name"], "mpath0");
  EXPECT_EQ(head["alias"], "db0");
  EXPECT_EQ(head["policy"], "round-robin");
  EXPECT_EQ(head["state"], "live");
  EXPECT_TRUE(head["size_bytes"].is_number_unsigned());
  EXPECT_EQ(head["size_bytes"], 64u << 20);
  EXPECT_EQ(head["block_size"], 512u);
  for (const char* key : {"ios", "bytes", "errors", "failovers", "requeues", "no_path_failures", "retries"}) {
    EXPECT_TRUE(head["counters"][key].is_number_unsigned()) << key;
  }
  EXPECT_EQ(head["counters"]["retries"], 4u);
  ASSERT_EQ(head["paths"].size(), 3u);
  const json& path = head["paths"][1];
  EXPECT_EQ(path["name"], "a0-tp1");
  EXPECT_EQ(path["address"], "sim array0 tpg1/port1 lun0");
  EXPECT_EQ(path["state"], "live");
  EXPECT_EQ(path["access"], "optimized");
  EXPECT_EQ(path["preferred"], true);
  EXPECT_EQ(path["marginal"], "none");
  EXPECT_EQ(path["usable"], true);
  EXPECT_EQ(path["in_flight"], 2u);
  EXPECT_EQ(path["counters"]["ios"], 1200u);
  EXPECT_DOUBLE_EQ(path["latency_us"]["p50"].get<double>(), 12.34);
  EXPECT_DOUBLE_EQ(path["latency_us"]["p99"].get<double>(), 4560.0);
  EXPECT_DOUBLE_EQ(path["latency_us"]["max"].get<double>(), 1.2e6);
  EXPECT_EQ(head["paths"][2]["marginal"], "errors");
  EXPECT_EQ(doc["heads"][1]["paths"][0]["access"], "transitioning");
}

TEST(Json, HeadsRoundTripThroughJsonText) {
  std::vector<HeadView> heads = {ScsiHead(), NvmeHead()};
  // Through text, as the socket carries it, so numbers are re-parsed.
  json doc = json::parse(HeadsToJson(heads).dump());
  auto back = HeadsFromJson(doc);
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  ASSERT_EQ(back->size(), 2u);
  // Rendering the parsed views gives exactly the text of the originals.
  EXPECT_EQ(RenderList(*back), RenderList(heads));
  EXPECT_EQ(RenderShow((*back)[0]), RenderShow(heads[0]));
  EXPECT_EQ((*back)[0].paths[1].latency_p99_us, 4560.0);
  EXPECT_EQ((*back)[0].counters.requeues, 2u);
  EXPECT_EQ((*back)[1].state, HeadState::kQueueing);
  EXPECT_EQ((*back)[1].paths[0].state, PathState::kConnecting);
}

TEST(Json, ParsingNamesTheFieldThatIsMissingOrMistyped) {
  json doc = HeadsToJson(std::vector<HeadView>{ScsiHead()});
  json missing = doc;
  missing["heads"][0]["paths"][1].erase("access");
  auto a = HeadsFromJson(missing);
  ASSERT_FALSE(a.has_value());
  EXPECT_EQ(a.error().message(), "heads[0].paths[1]: missing field 'access'");

  json mistyped = doc;
  mistyped["heads"][0]["size_bytes"] = "big";
  auto b = HeadsFromJson(mistyped);
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().message(), "heads[0]: field 'size_bytes' must be a non-negative integer");

  json unknown_state = doc;
  unknown_state["heads"][0]["paths"][0]["state"] = "sleepy";
  auto c = HeadsFromJson(unknown_state);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().message(), "heads[0].paths[0]: field 'state' has unknown value 'sleepy'");

  EXPECT_FALSE(HeadsFromJson(json::array()).has_value());
  EXPECT_FALSE(HeadFromJson(json{{"name", 3}}).has_value());
}

TEST(Json, PrReportsCarryKeysAsHexStringsAndRoundTrip) {
  PrReport report;
  report.generation = 7;
  report.keys = {0x1234, 0xfeedface12345678};
  report.holder_key = 0x1234;
  report.type = "write-exclusive";
  report.message = "read the reservation";
  json doc = PrReportToJson(report);
  EXPECT_EQ(doc["generation"], 7u);
  EXPECT_EQ(doc["keys"], json({"0x1234", "0xfeedface12345678"}));
  EXPECT_EQ(doc["holder_key"], "0x1234");
  EXPECT_EQ(doc["type"], "write-exclusive");

  auto back = PrReportFromJson(json::parse(doc.dump()));
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  EXPECT_EQ(back->keys, report.keys);
  EXPECT_EQ(back->holder_key, report.holder_key);

  PrReport none;
  EXPECT_TRUE(PrReportToJson(none)["holder_key"].is_null());
  auto none_back = PrReportFromJson(PrReportToJson(none));
  ASSERT_TRUE(none_back.has_value());
  EXPECT_FALSE(none_back->holder_key.has_value());
}

TEST(RenderPr, PrintsKeysReservationsAndMessages) {
  PrReport report;
  report.generation = 3;
  report.keys = {0xabc, 0x1};
  EXPECT_EQ(RenderPrReport("mpath0", "read-keys", report),
            "mpath0: generation 3, 2 registered keys:\n  0xabc\n  0x1\n");
  EXPECT_EQ(RenderPrReport("mpath0", "read-keys", PrReport{}), "mpath0: generation 0, no registered keys\n");
  report.holder_key = 0xabc;
  report.type = "exclusive-access";
  EXPECT_EQ(RenderPrReport("mpath0", "read-reservation", report),
            "mpath0: generation 3, reservation held by key 0xabc, type exclusive-access\n");
  EXPECT_EQ(RenderPrReport("mpath0", "read-reservation", PrReport{}), "mpath0: generation 0, no reservation\n");
  PrReport done;
  done.message = "mpath0: registered key 0xabc on 4 paths";
  EXPECT_EQ(RenderPrReport("mpath0", "register", done), "mpath0: registered key 0xabc on 4 paths\n");
  EXPECT_EQ(RenderPrReport("mpath0", "clear", PrReport{}), "mpath0: clear done\n");
}

}  // namespace
}  // namespace mpath::daemon
