#include "mpath/nbd/negotiation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace mpath::nbd {
namespace {

using State = Negotiation::State;
using Bytes = std::vector<std::byte>;

// Builds wire bytes field by field, most significant byte first, independently of the spec structs under test.
class Wire {
 public:
  Wire& U8(std::uint8_t v) {
    bytes_.push_back(std::byte{v});
    return *this;
  }
  Wire& U16(std::uint16_t v) { return Int(v, 2); }
  Wire& U32(std::uint32_t v) { return Int(v, 4); }
  Wire& U64(std::uint64_t v) { return Int(v, 8); }
  Wire& Text(std::string_view s) {
    for (char c : s) bytes_.push_back(static_cast<std::byte>(c));
    return *this;
  }
  Wire& Zeroes(std::size_t n) {
    bytes_.insert(bytes_.end(), n, std::byte{0});
    return *this;
  }
  Wire& Append(const Bytes& b) {
    bytes_.insert(bytes_.end(), b.begin(), b.end());
    return *this;
  }
  // An option request: IHAVEOPT, option, length, data.
  Wire& Option(std::uint32_t option, const Bytes& data) {
    U64(0x49484156454F5054).U32(option).U32(static_cast<std::uint32_t>(data.size()));
    return Append(data);
  }
  // An option reply: reply magic, option, type, length, data.
  Wire& Reply(std::uint32_t option, std::uint32_t type, const Bytes& data = {}) {
    U64(0x3e889045565a9).U32(option).U32(type).U32(static_cast<std::uint32_t>(data.size()));
    return Append(data);
  }
  [[nodiscard]] const Bytes& bytes() const { return bytes_; }
  operator const Bytes&() const { return bytes_; }  // NOLINT: lets a Wire stand wherever bytes are expected

 private:
  Wire& Int(std::uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) bytes_.push_back(static_cast<std::byte>(v >> (8 * i)));
    return *this;
  }
  Bytes bytes_;
};

// Option and reply numbers spelled out, so that the tests do not lean on the enums they check.
constexpr std::uint32_t kOptExportName = 1, kOptAbort = 2, kOptList = 3, kOptPeek = 4, kOptStartTls = 5,
                        kOptInfo = 6, kOptGo = 7, kOptStructuredReply = 8, kOptListMeta = 9, kOptSetMeta = 10,
                        kOptExtendedHeaders = 11;
constexpr std::uint32_t kRepAck = 1, kRepServer = 2, kRepInfo = 3;
constexpr std::uint32_t kErrUnsup = 0x80000001, kErrInvalid = 0x80000003, kErrUnknown = 0x80000006,
                        kErrTooBig = 0x80000009;

Bytes Data(std::string_view s) { return Wire().Text(s); }

// The data of NBD_OPT_INFO / NBD_OPT_GO.
Bytes InfoRequest(std::string_view name, std::vector<std::uint16_t> infos = {}) {
  Wire w;
  w.U32(static_cast<std::uint32_t>(name.size())).Text(name).U16(static_cast<std::uint16_t>(infos.size()));
  for (auto i : infos) w.U16(i);
  return w;
}

// The data of the two META_CONTEXT options.
Bytes MetaRequest(std::string_view name, std::vector<std::string_view> queries) {
  Wire w;
  w.U32(static_cast<std::uint32_t>(name.size())).Text(name).U32(static_cast<std::uint32_t>(queries.size()));
  for (auto q : queries) w.U32(static_cast<std::uint32_t>(q.size())).Text(q);
  return w;
}

class FakeCatalog : public ExportCatalog {
 public:
  std::vector<ExportInfo> exports;
  std::string default_export;  // what an empty name finds; none when empty

  std::vector<ExportInfo> List() const override { return exports; }
  std::optional<Export> Find(std::string_view name) const override {
    if (name.empty()) name = default_export;
    for (const auto& info : exports) {
      if (!name.empty() && info.name == name) return Export{info, nullptr};
    }
    return std::nullopt;
  }
};

FakeCatalog ThreeExports() {
  FakeCatalog catalog;
  ExportInfo alpha;
  alpha.name = "alpha";
  alpha.description = "first head";
  alpha.size_bytes = 1 << 20;
  catalog.exports.push_back(alpha);
  ExportInfo beta;
  beta.name = "beta";
  beta.description = "";
  beta.size_bytes = 0x123456789000;
  beta.block_size = 4096;
  beta.preferred_block_size = 65536;
  beta.max_payload = 1 << 20;
  beta.read_only = true;
  catalog.exports.push_back(beta);
  ExportInfo gamma;
  gamma.name = "gamma";
  gamma.description = "third, with a longer description";
  gamma.size_bytes = 4096;
  gamma.multi_conn = false;
  gamma.trim = false;
  catalog.exports.push_back(gamma);
  return catalog;
}

struct Outcome {
  Bytes out;
  Bytes left;  // bytes the negotiation did not consume
  State state;
  std::string close_reason;
  Negotiated negotiated;
};

// Feeds `in` in pieces of `piece` bytes the way a connection does (keeping what was not consumed and offering it
// again with more), after the greeting.
Outcome Feed(const FakeCatalog& catalog, const Bytes& in, std::size_t piece, NegotiationLimits limits) {
  Negotiation negotiation(catalog, limits);
  Bytes greeting;
  negotiation.Start(greeting);
  Outcome outcome;
  Bytes pending;
  for (std::size_t pos = 0; pos < in.size(); pos += piece) {
    std::size_t n = std::min(piece, in.size() - pos);
    pending.insert(pending.end(), in.begin() + static_cast<std::ptrdiff_t>(pos),
                   in.begin() + static_cast<std::ptrdiff_t>(pos + n));
    // Offered from an allocation of exactly the pending size, so that reading past it is caught (by ASan, or by
    // the stale bytes a reused buffer would not hold).
    auto offer = std::make_unique<std::byte[]>(pending.size());
    std::copy(pending.begin(), pending.end(), offer.get());
    std::size_t consumed = negotiation.Consume(std::span(offer.get(), pending.size()), outcome.out);
    EXPECT_LE(consumed, pending.size());
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(consumed));
  }
  outcome.left = pending;
  outcome.state = negotiation.state();
  outcome.close_reason = negotiation.close_reason();
  outcome.negotiated = negotiation.negotiated();
  return outcome;
}

// Runs the exchange whole, a byte at a time and in odd pieces, and checks every delivery gives the same replies and
// leaves the same bytes.
Outcome Exchange(const FakeCatalog& catalog, const Bytes& in, NegotiationLimits limits = {}) {
  Outcome whole = Feed(catalog, in, std::max<std::size_t>(in.size(), 1), limits);
  for (std::size_t piece : {std::size_t{1}, std::size_t{7}}) {
    Outcome pieces = Feed(catalog, in, piece, limits);
    EXPECT_EQ(pieces.out, whole.out) << "delivered in pieces of " << piece;
    EXPECT_EQ(pieces.left, whole.left) << "delivered in pieces of " << piece;
    EXPECT_EQ(pieces.state, whole.state) << "delivered in pieces of " << piece;
  }
  return whole;
}

Bytes FixedNewstyle(bool no_zeroes = false) { return Wire().U32(no_zeroes ? 3 : 1); }

// The text of an error reply at the start of `out`, checking its framing.
std::string ErrorMessage(const Bytes& out, std::uint32_t option, std::uint32_t type) {
  EXPECT_GE(out.size(), 20u);
  if (out.size() < 20) return {};
  Bytes head(out.begin(), out.begin() + 16);
  EXPECT_EQ(head, Wire().U64(0x3e889045565a9).U32(option).U32(type).bytes());
  std::uint32_t length = 0;
  for (int i = 16; i < 20; ++i) length = (length << 8) | static_cast<std::uint8_t>(out[static_cast<std::size_t>(i)]);
  EXPECT_EQ(out.size(), 20u + length) << "one reply, nothing after it";
  std::string message;
  for (std::size_t i = 20; i < out.size(); ++i) message.push_back(static_cast<char>(out[i]));
  return message;
}

TEST(NegotiationTest, GreetingIsFixedNewstyleWithNoZeroes) {
  FakeCatalog catalog;
  Negotiation negotiation(catalog);
  Bytes out;
  negotiation.Start(out);
  EXPECT_EQ(out, Wire().Text("NBDMAGIC").Text("IHAVEOPT").U16(0x0003).bytes());
  EXPECT_EQ(negotiation.state(), State::kClientFlags);
}

TEST(NegotiationTest, ClientFlags) {
  FakeCatalog catalog = ThreeExports();
  EXPECT_EQ(Exchange(catalog, Wire().U32(1)).state, State::kOptions);
  EXPECT_EQ(Exchange(catalog, Wire().U32(3)).state, State::kOptions);

  Outcome partial = Exchange(catalog, Wire().U8(0).U8(0).U8(0));
  EXPECT_EQ(partial.state, State::kClientFlags);
  EXPECT_EQ(partial.left.size(), 3u);

  Outcome old_style = Exchange(catalog, Wire().U32(0));
  EXPECT_EQ(old_style.state, State::kClosed);
  EXPECT_NE(old_style.close_reason.find("FIXED_NEWSTYLE"), std::string::npos) << old_style.close_reason;
  EXPECT_TRUE(old_style.out.empty());

  Outcome unknown = Exchange(catalog, Wire().U32(0x00000005));
  EXPECT_EQ(unknown.state, State::kClosed);
  EXPECT_NE(unknown.close_reason.find("0x00000004"), std::string::npos) << unknown.close_reason;

  // Nothing after a refused flags word is read.
  Outcome refused = Exchange(catalog, Wire().U32(0x80000001).Option(kOptStructuredReply, {}));
  EXPECT_EQ(refused.state, State::kClosed);
  EXPECT_TRUE(refused.out.empty());
  EXPECT_EQ(refused.left.size(), 16u);
}

TEST(NegotiationTest, ExportNameWithZeroes) {
  FakeCatalog catalog = ThreeExports();
  Outcome o = Exchange(catalog, Wire().Append(FixedNewstyle()).Option(kOptExportName, Data("beta")));
  ASSERT_EQ(o.state, State::kTransmission);
  // beta: read-only; flags HAS_FLAGS|READ_ONLY|SEND_FLUSH|SEND_FUA|CAN_MULTI_CONN, and no SEND_DF without
  // structured replies.
  EXPECT_EQ(o.out, Wire().U64(0x123456789000).U16(0x0001 | 0x0002 | 0x0004 | 0x0008 | 0x0100).Zeroes(124).bytes());
  EXPECT_EQ(o.negotiated.chosen.info.name, "beta");
  EXPECT_FALSE(o.negotiated.structured_replies);
  EXPECT_FALSE(o.negotiated.block_size_agreed);
}

TEST(NegotiationTest, ExportNameWithoutZeroes) {
  FakeCatalog catalog = ThreeExports();
  Outcome o = Exchange(catalog, Wire()
                                    .Append(FixedNewstyle(/*no_zeroes=*/true))
                                    .Option(kOptStructuredReply, {})
                                    .Option(kOptExportName, Data("alpha"))
                                    .U32(0x25609513));  // the first request starts at once
  ASSERT_EQ(o.state, State::kTransmission);
  EXPECT_EQ(o.out, Wire()
                       .Reply(kOptStructuredReply, kRepAck)
                       .U64(1 << 20)
                       .U16(0x0001 | 0x0004 | 0x0008 | 0x0020 | 0x0040 | 0x0080 | 0x0100)
                       .bytes());
  EXPECT_EQ(o.left, Wire().U32(0x25609513).bytes());
  EXPECT_TRUE(o.negotiated.structured_replies);
}

TEST(NegotiationTest, ExportNameUnknownOrTooLongCloses) {
  FakeCatalog catalog = ThreeExports();
  Outcome unknown = Exchange(catalog, Wire().Append(FixedNewstyle()).Option(kOptExportName, Data("delta")));
  EXPECT_EQ(unknown.state, State::kClosed);
  EXPECT_TRUE(unknown.out.empty());
  EXPECT_NE(unknown.close_reason.find("'delta'"), std::string::npos) << unknown.close_reason;

  Outcome no_default = Exchange(catalog, Wire().Append(FixedNewstyle()).Option(kOptExportName, {}));
  EXPECT_EQ(no_default.state, State::kClosed);

  catalog.default_export = "gamma";
  Outcome by_default = Exchange(catalog, Wire().Append(FixedNewstyle(true)).Option(kOptExportName, {}));
  ASSERT_EQ(by_default.state, State::kTransmission);
  EXPECT_EQ(by_default.negotiated.chosen.info.name, "gamma");

  // A name longer than any string may be is refused on its header, without waiting for (or skipping) it.
  Outcome too_long = Exchange(catalog, Wire().Append(FixedNewstyle()).U64(0x49484156454F5054).U32(kOptExportName)
                                           .U32(5000).Zeroes(10));
  EXPECT_EQ(too_long.state, State::kClosed);
  EXPECT_TRUE(too_long.out.empty());
}

TEST(NegotiationTest, AbortIsAcknowledged) {
  FakeCatalog catalog = ThreeExports();
  Outcome o = Exchange(catalog, Wire().Append(FixedNewstyle()).Option(kOptAbort, {}));
  EXPECT_EQ(o.state, State::kClosed);
  EXPECT_EQ(o.close_reason, "client aborted");
  EXPECT_EQ(o.out, Wire().Reply(kOptAbort, kRepAck).bytes());

  // NBD protocol "NBD_OPT_ABORT": data the client should not have sent is ignored.
  Outcome with_data = Exchange(catalog, Wire().Append(FixedNewstyle()).Option(kOptAbort, Data("bye")));
  EXPECT_EQ(with_data.state, State::kClosed);
  EXPECT_EQ(with_data.out, Wire().Reply(kOptAbort, kRepAck).bytes());
}

TEST(NegotiationTest, ListsEveryExportWithItsDescription) {
  FakeCatalog catalog = ThreeExports();
  Outcome o = Exchange(catalog, Wire().Append(FixedNewstyle()).Option(kOptList, {}));
  EXPECT_EQ(o.state, State::kOptions);
  EXPECT_EQ(o.out, Wire()
                       .Reply(kOptList, kRepServer, Wire().U32(5).Text("alpha").Text("first head"))
                       .Reply(kOptList, kRepServer, Wire().U32(4).Text("beta"))
                       .Reply(kOptList, kRepServer,
                              Wire().U32(5).Text("gamma").Text("third, with a longer description"))
                       .Reply(kOptList, kRepAck)
                       .bytes());

  FakeCatalog empty;
  EXPECT_EQ(Exchange(empty, Wire().Append(FixedNewstyle()).Option(kOptList, {})).out,
            Wire().Reply(kOptList, kRepAck).bytes());

  Outcome with_data = Exchange(catalog, Wire().Append(FixedNewstyle()).Option(kOptList, Data("x")));
  EXPECT_EQ(with_data.state, State::kOptions);
  EXPECT_EQ(ErrorMessage(with_data.out, kOptList, kErrInvalid), "NBD_OPT_LIST takes no data");
}

// The three NBD_REP_INFO replies every successful INFO/GO for alpha carries, then optional ones.
// Without structured replies: SEND_DF (0x80) is not offered.
Wire AlphaExportInfo(std::uint32_t option) {
  Wire w;
  w.Reply(option, kRepInfo, Wire().U16(0).U64(1 << 20).U16(0x0001 | 0x0004 | 0x0008 | 0x0020 | 0x0040 | 0x0100));
  return w;
}
Bytes AlphaBlockSize(std::uint32_t option) {
  return Wire().Reply(option, kRepInfo, Wire().U16(3).U32(512).U32(4096).U32(1u << 25));
}

TEST(NegotiationTest, InfoRepliesWithoutLeavingOptions) {
  FakeCatalog catalog = ThreeExports();
  Outcome o = Exchange(catalog, Wire().Append(FixedNewstyle()).Option(kOptInfo, InfoRequest("alpha", {2, 1, 77})));
  EXPECT_EQ(o.state, State::kOptions);
  EXPECT_EQ(o.out, AlphaExportInfo(kOptInfo)
                       .Reply(kOptInfo, kRepInfo, Wire().U16(1).Text("alpha"))
                       .Reply(kOptInfo, kRepInfo, Wire().U16(2).Text("first head"))
                       .Append(AlphaBlockSize(kOptInfo))
                       .Reply(kOptInfo, kRepAck)
                       .bytes());
}

TEST(NegotiationTest, GoEntersTransmission) {
  FakeCatalog catalog = ThreeExports();
  Bytes request = Wire().U32(0x25609513).U16(0).U16(0).U64(1).U64(0).U32(512);
  Outcome o = Exchange(catalog, Wire()
                                    .Append(FixedNewstyle())
                                    .Option(kOptStructuredReply, {})
                                    .Option(kOptGo, InfoRequest("beta", {3}))
                                    .Append(request));
  ASSERT_EQ(o.state, State::kTransmission);
  EXPECT_EQ(o.out,
            Wire()
                .Reply(kOptStructuredReply, kRepAck)
                .Reply(kOptGo, kRepInfo, Wire().U16(0).U64(0x123456789000).U16(0x0001 | 0x0002 | 0x0004 | 0x0008 |
                                                                                  0x0080 | 0x0100))
                .Reply(kOptGo, kRepInfo, Wire().U16(3).U32(4096).U32(65536).U32(1 << 20))
                .Reply(kOptGo, kRepAck)
                .bytes());
  EXPECT_EQ(o.left, request) << "the first request is left for the transmission phase";
  EXPECT_EQ(o.negotiated.chosen.info.name, "beta");
  EXPECT_TRUE(o.negotiated.structured_replies);
  EXPECT_TRUE(o.negotiated.block_size_agreed);

  // Without asking for the block size: still told (the constraints are not the defaults), but not agreed.
  Outcome plain = Exchange(catalog, Wire().Append(FixedNewstyle()).Option(kOptGo, InfoRequest("alpha")));
  ASSERT_EQ(plain.state, State::kTransmission);
  EXPECT_EQ(plain.out, AlphaExportInfo(kOptGo).Append(AlphaBlockSize(kOptGo)).Reply(kOptGo, kRepAck).bytes());
  EXPECT_FALSE(plain.negotiated.block_size_agreed);
  EXPECT_FALSE(plain.negotiated.structured_replies);
}

TEST(NegotiationTest, InfoAndGoUnknownExport) {
  FakeCatalog catalog = ThreeExports();
  Outcome o = Exchange(catalog, Wire().Append(FixedNewstyle()).Option(kOptGo, InfoRequest("delta\n", {3})));
  EXPECT_EQ(o.state, State::kOptions);
  EXPECT_EQ(ErrorMessage(o.out, kOptGo, kErrUnknown), "there is no export named 'delta?'");

  Outcome empty = Exchange(catalog, Wire().Append(FixedNewstyle()).Option(kOptInfo, InfoRequest("")));
  EXPECT_EQ(empty.state, State::kOptions);
  std::string message = ErrorMessage(empty.out, kOptInfo, kErrUnknown);
  EXPECT_NE(message.find("name one of the exports"), std::string::npos) << message;

  // The client may try again after an error.
  Outcome retry = Exchange(catalog, Wire()
                                        .Append(FixedNewstyle())
                                        .Option(kOptGo, InfoRequest("delta"))
                                        .Option(kOptGo, InfoRequest("alpha")));
  EXPECT_EQ(retry.state, State::kTransmission);
}

TEST(NegotiationTest, InfoAndGoMalformed) {
  FakeCatalog catalog = ThreeExports();
  struct Case {
    const char* what;
    Bytes data;
  };
  const std::vector<Case> cases = {
      {"no data", {}},
      {"five bytes", Wire().U32(0).U8(0)},
      {"name length past the data", Wire().U32(6).Text("alpha").U16(0)},
      {"name length far past the data", Wire().U32(0xffffffff).Text("alpha").U16(0)},
      {"count larger than the requests", Wire().U32(5).Text("alpha").U16(2).U16(3)},
      {"count smaller than the requests", Wire().U32(5).Text("alpha").U16(1).U16(3).U16(1)},
      {"odd trailing byte", Wire().U32(5).Text("alpha").U16(0).U8(0)},
      {"name over 4096 bytes", Wire().U32(4097).Text(std::string(4097, 'a')).U16(0)},
  };
  for (std::uint32_t option : {kOptInfo, kOptGo}) {
    for (const Case& c : cases) {
      Outcome o = Exchange(catalog, Wire().Append(FixedNewstyle()).Option(option, c.data));
      EXPECT_EQ(o.state, State::kOptions) << c.what;
      std::string message = ErrorMessage(o.out, option, kErrInvalid);
      EXPECT_NE(message.find(option == kOptGo ? "NBD_OPT_GO: " : "NBD_OPT_INFO: "), std::string::npos)
          << c.what << ": " << message;
    }
  }
  Outcome o = Exchange(catalog,
                       Wire().Append(FixedNewstyle()).Option(kOptGo, Wire().U32(5).Text("alpha").U16(2).U16(3)));
  EXPECT_EQ(ErrorMessage(o.out, kOptGo, kErrInvalid), "NBD_OPT_GO: 2 information requests need 4 bytes, 2 follow");
}

TEST(NegotiationTest, StructuredReply) {
  FakeCatalog catalog = ThreeExports();
  Outcome o = Exchange(catalog, Wire().Append(FixedNewstyle()).Option(kOptStructuredReply, Data("?")));
  EXPECT_EQ(ErrorMessage(o.out, kOptStructuredReply, kErrInvalid), "NBD_OPT_STRUCTURED_REPLY takes no data");
  // Refused, it was not negotiated: a GO after it has simple replies.
  Outcome refused = Exchange(catalog, Wire()
                                          .Append(FixedNewstyle())
                                          .Option(kOptStructuredReply, Data("?"))
                                          .Option(kOptGo, InfoRequest("alpha")));
  ASSERT_EQ(refused.state, State::kTransmission);
  EXPECT_FALSE(refused.negotiated.structured_replies);
}

TEST(NegotiationTest, MetaContextsAreNoneButWellFormedRequestsAreAcknowledged) {
  FakeCatalog catalog = ThreeExports();
  Outcome list = Exchange(catalog, Wire()
                                       .Append(FixedNewstyle())
                                       .Option(kOptListMeta, MetaRequest("alpha", {}))
                                       .Option(kOptListMeta, MetaRequest("alpha", {"base:", "qemu:dirty-bitmap:x"})));
  EXPECT_EQ(list.out, Wire().Reply(kOptListMeta, kRepAck).Reply(kOptListMeta, kRepAck).bytes());

  Outcome set_early = Exchange(catalog, Wire().Append(FixedNewstyle())
                                            .Option(kOptSetMeta, MetaRequest("alpha", {"base:allocation"})));
  EXPECT_EQ(ErrorMessage(set_early.out, kOptSetMeta, kErrInvalid),
            "NBD_OPT_SET_META_CONTEXT needs NBD_OPT_STRUCTURED_REPLY first");

  Outcome set = Exchange(catalog, Wire()
                                      .Append(FixedNewstyle())
                                      .Option(kOptStructuredReply, {})
                                      .Option(kOptSetMeta, MetaRequest("alpha", {"base:allocation"})));
  EXPECT_EQ(set.out, Wire().Reply(kOptStructuredReply, kRepAck).Reply(kOptSetMeta, kRepAck).bytes());

  struct Case {
    const char* what;
    Bytes data;
  };
  const std::vector<Case> malformed = {
      {"no data", {}},
      {"short name length", Wire().U16(0)},
      {"name past the data", Wire().U32(9).Text("alpha").U32(0)},
      {"no query count", Wire().U32(5).Text("alpha")},
      {"count past the queries", Wire().U32(5).Text("alpha").U32(2).U32(5).Text("base:")},
      {"query past the data", Wire().U32(5).Text("alpha").U32(1).U32(6).Text("base:")},
      {"trailing bytes", Wire().U32(5).Text("alpha").U32(1).U32(5).Text("base:").U8(0)},
      {"query over 4096 bytes", Wire().U32(0).U32(1).U32(4097).Text(std::string(4097, 'q'))},
      {"name over 4096 bytes", Wire().U32(4097).Text(std::string(4097, 'n')).U32(0)},
      {"huge count", Wire().U32(0).U32(0xffffffff)},
  };
  for (const Case& c : malformed) {
    for (std::uint32_t option : {kOptListMeta, kOptSetMeta}) {
      Outcome o = Exchange(
          catalog, Wire().Append(FixedNewstyle()).Option(kOptStructuredReply, {}).Option(option, c.data));
      EXPECT_EQ(o.state, State::kOptions) << c.what;
      ASSERT_GT(o.out.size(), 20u) << c.what;
      Bytes after_ack(o.out.begin() + 20, o.out.end());
      std::string message = ErrorMessage(after_ack, option, kErrInvalid);
      EXPECT_FALSE(message.empty()) << c.what;
    }
  }
}

TEST(NegotiationTest, UnsupportedOptions) {
  FakeCatalog catalog = ThreeExports();
  for (std::uint32_t option : {kOptPeek, kOptStartTls, kOptExtendedHeaders, 0u, 12u, 0x7fffffffu, 0xffffffffu}) {
    Outcome o = Exchange(catalog, Wire().Append(FixedNewstyle()).Option(option, Data("ab")));
    EXPECT_EQ(o.state, State::kOptions) << option;
    std::string message = ErrorMessage(o.out, option, kErrUnsup);
    EXPECT_FALSE(message.empty()) << option;
  }
  Outcome tls = Exchange(catalog, Wire().Append(FixedNewstyle()).Option(kOptStartTls, {}));
  EXPECT_EQ(ErrorMessage(tls.out, kOptStartTls, kErrUnsup), "this server does not support TLS");
}

TEST(NegotiationTest, OverLongOptionDataIsSkippedNotBuffered) {
  FakeCatalog catalog = ThreeExports();
  NegotiationLimits limits;
  limits.max_option_length = 16;
  Bytes big(1000, std::byte{0x5a});
  Outcome o = Exchange(catalog,
                       Wire().Append(FixedNewstyle()).Option(kOptList, big).Option(kOptGo, InfoRequest("alpha")),
                       limits);
  ASSERT_EQ(o.state, State::kTransmission);
  std::string expected_message = "option 3 carried more than 16 bytes of data";
  Bytes expected = Wire()
                       .Reply(kOptList, kErrTooBig, Data(expected_message))
                       .Append(AlphaExportInfo(kOptGo))
                       .Append(AlphaBlockSize(kOptGo))
                       .Reply(kOptGo, kRepAck);
  EXPECT_EQ(o.out, expected);

  // Every byte of skipped data is taken as it comes; the reply waits for the last one.
  Negotiation negotiation(catalog, limits);
  Bytes out;
  negotiation.Start(out);
  out.clear();
  Bytes head = Wire().Append(FixedNewstyle()).U64(0x49484156454F5054).U32(kOptInfo).U32(0xffffffff).Zeroes(100);
  EXPECT_EQ(negotiation.Consume(head, out), head.size());
  EXPECT_TRUE(out.empty());
  Bytes chunk(1 << 20, std::byte{0});
  std::uint64_t left = 0xffffffffull - 100;
  while (left > chunk.size()) {
    ASSERT_EQ(negotiation.Consume(chunk, out), chunk.size());
    left -= chunk.size();
  }
  EXPECT_TRUE(out.empty());
  Bytes last(left + 3, std::byte{1});
  EXPECT_EQ(negotiation.Consume(last, out), left) << "the bytes after the skipped data are a new option";
  EXPECT_EQ(ErrorMessage(out, kOptInfo, kErrTooBig), "option 6 carried more than 16 bytes of data");
  EXPECT_EQ(negotiation.state(), State::kOptions);
}

TEST(NegotiationTest, BadOptionMagicCloses) {
  FakeCatalog catalog = ThreeExports();
  Outcome o = Exchange(catalog, Wire().Append(FixedNewstyle()).U64(0x4e42444d41474943).U32(kOptList).U32(0));
  EXPECT_EQ(o.state, State::kClosed);
  EXPECT_TRUE(o.out.empty());
  EXPECT_NE(o.close_reason.find("IHAVEOPT"), std::string::npos) << o.close_reason;
}

TEST(NegotiationTest, TooManyOptionsCloses) {
  FakeCatalog catalog = ThreeExports();
  NegotiationLimits limits;
  limits.max_options = 3;
  Wire in;
  in.Append(FixedNewstyle());
  for (int i = 0; i < 5; ++i) in.Option(kOptList, {});
  Outcome o = Exchange(catalog, in, limits);
  EXPECT_EQ(o.state, State::kClosed);
  EXPECT_NE(o.close_reason.find("more than 3 options"), std::string::npos) << o.close_reason;
  Wire replies;
  Bytes one_list = Exchange(catalog, Wire().Append(FixedNewstyle()).Option(kOptList, {})).out;
  for (int i = 0; i < 3; ++i) replies.Append(one_list);
  EXPECT_EQ(o.out, replies.bytes());

  // The limit counts options, so the third may still be the one that chooses an export.
  Outcome last = Exchange(catalog, Wire()
                                       .Append(FixedNewstyle())
                                       .Option(kOptList, {})
                                       .Option(kOptList, {})
                                       .Option(kOptGo, InfoRequest("gamma")),
                          limits);
  EXPECT_EQ(last.state, State::kTransmission);
}

TEST(NegotiationTest, NothingIsConsumedAfterTheEnd) {
  FakeCatalog catalog = ThreeExports();
  Negotiation negotiation(catalog);
  Bytes out;
  negotiation.Start(out);
  Bytes in = Wire().Append(FixedNewstyle()).Option(kOptGo, InfoRequest("alpha")).Option(kOptList, {});
  std::size_t consumed = negotiation.Consume(in, out);
  EXPECT_EQ(consumed, in.size() - 16);
  ASSERT_EQ(negotiation.state(), State::kTransmission);
  std::size_t replies = out.size();
  EXPECT_EQ(negotiation.Consume(std::span(in).subspan(consumed), out), 0u);
  EXPECT_EQ(out.size(), replies);
}

// A poor man's fuzzer: random bytes, and random bytes shaped like options, never crash the state machine, never make
// it consume more than it was given, and always leave it in a state it documents.
TEST(NegotiationTest, RandomInputNeverBreaksIt) {
  FakeCatalog catalog = ThreeExports();
  catalog.default_export = "alpha";
  NegotiationLimits limits;
  limits.max_option_length = 256;
  limits.max_options = 16;
  std::mt19937 rng(20261125);
  auto byte = [&] { return static_cast<std::uint8_t>(rng()); };
  const std::vector<std::uint32_t> options = {1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 99};
  int reached_transmission = 0;
  int reached_closed = 0;
  for (int iteration = 0; iteration < 3000; ++iteration) {
    Wire in;
    if (rng() % 8 != 0) in.U32(rng() % 4 == 0 ? rng() : 1 + (rng() % 2) * 2);
    int pieces = static_cast<int>(rng() % 6);
    for (int p = 0; p < pieces; ++p) {
      Wire data;
      switch (rng() % 4) {
        case 0: {
          std::size_t n = rng() % 40;
          for (std::size_t i = 0; i < n; ++i) data.U8(byte());
          break;
        }
        case 1:
          data.Append(InfoRequest(rng() % 2 ? "alpha" : "", {static_cast<std::uint16_t>(rng() % 5)}));
          break;
        case 2:
          data.Append(MetaRequest("beta", {"base:allocation"}));
          if (rng() % 2) data.U8(byte());
          break;
        default:
          break;
      }
      if (rng() % 10 == 0) {
        in.U64(0x49484156454F5054).U32(options[rng() % options.size()]).U32(rng() % 600);
      } else {
        in.Option(options[rng() % options.size()], data);
      }
      if (rng() % 16 == 0) in.U8(byte());  // a stray byte misframes everything after it
    }
    Bytes bytes = in.bytes();
    // Flip a few bits now and then.
    if (!bytes.empty() && rng() % 3 == 0) {
      for (int f = 0; f < 3; ++f) bytes[rng() % bytes.size()] ^= static_cast<std::byte>(1u << (rng() % 8));
    }
    std::size_t piece = 1 + rng() % 64;
    Outcome o = Feed(catalog, bytes, piece, limits);
    ASSERT_LE(o.left.size(), bytes.size());
    switch (o.state) {
      case State::kClientFlags:
        ASSERT_LT(bytes.size(), 4u);
        break;
      case State::kOptions:
        break;
      case State::kTransmission:
        ++reached_transmission;
        ASSERT_FALSE(o.negotiated.chosen.info.name.empty());
        break;
      case State::kClosed:
        ++reached_closed;
        ASSERT_FALSE(o.close_reason.empty());
        break;
    }
  }
  // The generator must reach both ends, or it is testing nothing past the first option.
  EXPECT_GT(reached_transmission, 50);
  EXPECT_GT(reached_closed, 50);
}

}  // namespace
}  // namespace mpath::nbd
