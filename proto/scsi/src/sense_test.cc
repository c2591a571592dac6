#include "mpath/scsi/spec/sense.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <random>
#include <vector>

#include "mpath/scsi/transport.h"

namespace mpath::scsi::spec {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes Build(SenseFormat format, SenseCode code, SenseOptions options = {}) {
  Bytes out(kMaxSenseLength, 0xEE);  // filler that must not leak into the result
  out.resize(BuildSense(std::span<std::uint8_t>(out), format, code, options));
  return out;
}

TEST(SenseBuild, FixedFormatBytes) {
  const Bytes s = Build(SenseFormat::kFixed, asc::kLunNotReadyTargetPortStandby);
  const Bytes expected = {0x70, 0, 0x02, 0, 0, 0, 0, 0x0A, 0, 0, 0, 0, 0x04, 0x0B, 0, 0, 0, 0};
  EXPECT_EQ(s, expected);
}

TEST(SenseBuild, FixedFormatDeferredWithInformation) {
  const Bytes s = Build(SenseFormat::kFixed, asc::kLbaOutOfRange, {.deferred = true, .information = 0x01020304});
  ASSERT_EQ(s.size(), kFixedSenseLength);
  EXPECT_EQ(s[0], 0xF1) << "VALID set, response code 71h";
  EXPECT_EQ(s[2], 0x05);
  EXPECT_EQ((Bytes{s.begin() + 3, s.begin() + 7}), (Bytes{1, 2, 3, 4}));
  EXPECT_EQ(s[12], 0x21);
}

TEST(SenseBuild, FixedFormatCannotCarryA64BitInformation) {
  const Bytes s = Build(SenseFormat::kFixed, asc::kLbaOutOfRange, {.information = 0x1'0000'0000ull});
  EXPECT_EQ(s[0], 0x70) << "VALID stays 0 when INFORMATION does not fit";
  EXPECT_FALSE(ParseSense(s)->information.has_value());
}

TEST(SenseBuild, DescriptorFormatBytes) {
  const Bytes s = Build(SenseFormat::kDescriptor, asc::kAsymmetricAccessStateChanged);
  EXPECT_EQ(s, (Bytes{0x72, 0x06, 0x2A, 0x06, 0, 0, 0, 0}));
  const Bytes info = Build(SenseFormat::kDescriptor, asc::kLbaOutOfRange, {.information = 0x1122334455667788ull});
  const Bytes expected = {0x72, 0x05, 0x21, 0x00, 0, 0, 0, 12,  // header, ADDITIONAL SENSE LENGTH 12
                          0x00, 0x0A, 0x80, 0x00,               // information descriptor, VALID
                          0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
  EXPECT_EQ(info, expected);
}

TEST(SenseBuild, TruncatesToTheBufferButReportsTheFullLength) {
  std::array<std::uint8_t, 5> small{};
  EXPECT_EQ(BuildSense(std::span<std::uint8_t>(small), SenseFormat::kFixed, asc::kInvalidFieldInCdb), 18u);
  EXPECT_EQ(small[0], 0x70);
  EXPECT_EQ(small[2], 0x05);
}

TEST(SenseBuild, IntoACommand) {
  ScsiCommand c;
  SetCheckCondition(c, SenseFormat::kDescriptor, asc::kInvalidFieldInCdb, {.information = 7});
  EXPECT_EQ(c.status, 0x02);
  EXPECT_EQ(c.sense_length, kDescriptorSenseLengthWithInformation);
  auto parsed = ParseSense(c.sense_bytes());
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->code, asc::kInvalidFieldInCdb);
  EXPECT_EQ(parsed->information, 7u);
  WriteSense(c, SenseFormat::kFixed, asc::kPowerOnOccurred);
  EXPECT_EQ(c.sense_length, kFixedSenseLength);
}

struct RoundTripCase {
  SenseFormat format;
  bool deferred;
  std::optional<std::uint64_t> information;
};

class SenseRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(SenseRoundTrip, ParseReadsWhatBuildWrote) {
  const RoundTripCase& p = GetParam();
  const SenseCode code{SenseKey::kNotReady, 0x04, 0x0A};
  const Bytes s = Build(p.format, code, {.deferred = p.deferred, .information = p.information});
  auto parsed = ParseSense(s);
  ASSERT_TRUE(parsed) << SenseParseErrorName(parsed.error());
  EXPECT_EQ(parsed->format, p.format);
  EXPECT_EQ(parsed->deferred, p.deferred);
  EXPECT_EQ(parsed->code, code);
  EXPECT_TRUE(parsed->has_additional_sense_code);
  EXPECT_EQ(parsed->information, p.information);
}

INSTANTIATE_TEST_SUITE_P(BothFormats, SenseRoundTrip,
                         ::testing::Values(RoundTripCase{SenseFormat::kFixed, false, std::nullopt},
                                           RoundTripCase{SenseFormat::kFixed, true, std::nullopt},
                                           RoundTripCase{SenseFormat::kFixed, false, 0xFFFFFFFFull},
                                           RoundTripCase{SenseFormat::kDescriptor, false, std::nullopt},
                                           RoundTripCase{SenseFormat::kDescriptor, true, std::nullopt},
                                           RoundTripCase{SenseFormat::kDescriptor, false, 0xFFFF'FFFF'FFFFull}));

// Every prefix of a full sense buffer: what is known at each length, and never a read past it (ASan checks that
// each prefix is parsed from a buffer of exactly that size).
TEST(SenseParse, FixedTruncatedAtEveryLength) {
  const Bytes full = Build(SenseFormat::kFixed, asc::kLbaOutOfRange, {.information = 0xA0B0C0D0});
  for (std::size_t n = 0; n <= full.size(); ++n) {
    const Bytes prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    auto parsed = ParseSense(prefix);
    SCOPED_TRACE(n);
    if (n == 0) {
      ASSERT_FALSE(parsed);
      EXPECT_EQ(parsed.error(), SenseParseError::kEmpty);
      continue;
    }
    if (n < 3) {
      ASSERT_FALSE(parsed);
      EXPECT_EQ(parsed.error(), SenseParseError::kTooShort);
      continue;
    }
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->code.key, SenseKey::kIllegalRequest);
    EXPECT_EQ(parsed->has_additional_sense_code, n >= 14);
    EXPECT_EQ(parsed->code.asc, n >= 14 ? 0x21 : 0);
    EXPECT_EQ(parsed->information.has_value(), n >= 7);
  }
}

TEST(SenseParse, DescriptorTruncatedAtEveryLength) {
  const Bytes full = Build(SenseFormat::kDescriptor, asc::kLbaOutOfRange, {.information = 42});
  for (std::size_t n = 0; n <= full.size(); ++n) {
    const Bytes prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    auto parsed = ParseSense(prefix);
    SCOPED_TRACE(n);
    if (n < 2) {
      ASSERT_FALSE(parsed);
      EXPECT_EQ(parsed.error(), n == 0 ? SenseParseError::kEmpty : SenseParseError::kTooShort);
      continue;
    }
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->code.key, SenseKey::kIllegalRequest);
    EXPECT_EQ(parsed->has_additional_sense_code, n >= 4);
    EXPECT_EQ(parsed->information.has_value(), n == full.size()) << "a cut descriptor is not read";
  }
}

struct BogusLengthCase {
  const char* name;
  Bytes sense;
  bool has_asc;
  std::optional<std::uint64_t> information;
};

class SenseBogusLength : public ::testing::TestWithParam<BogusLengthCase> {};

TEST_P(SenseBogusLength, BoundedByTheShorterOfReceivedAndAnnounced) {
  const BogusLengthCase& p = GetParam();
  auto parsed = ParseSense(p.sense);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->has_additional_sense_code, p.has_asc);
  EXPECT_EQ(parsed->information, p.information);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SenseBogusLength,
    ::testing::Values(
        // Fixed, ADDITIONAL SENSE LENGTH 0: ASC/ASCQ lie beyond what the target says is sense data.
        BogusLengthCase{"FixedLengthZero", {0x70, 0, 0x06, 0, 0, 0, 0, 0x00, 0, 0, 0, 0, 0x29, 0x00}, false, {}},
        // Fixed, ADDITIONAL SENSE LENGTH 255 but 14 bytes arrived.
        BogusLengthCase{"FixedLengthHuge", {0x70, 0, 0x06, 0, 0, 0, 0, 0xFF, 0, 0, 0, 0, 0x29, 0x00}, true, {}},
        // Fixed, length 5: ASC (byte 12) is outside 8 + 5.
        BogusLengthCase{"FixedLengthShort", {0xF0, 0, 0x06, 0, 0, 0, 9, 0x05, 0, 0, 0, 0, 0x29, 0x00}, false, 9},
        // Descriptor, ADDITIONAL SENSE LENGTH 0 but an information descriptor follows: it is not sense data.
        BogusLengthCase{"DescriptorLengthZero",
                        {0x72, 0x05, 0x21, 0x00, 0, 0, 0, 0, 0x00, 0x0A, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 5},
                        true,
                        {}},
        // Descriptor, ADDITIONAL SENSE LENGTH beyond what arrived: the whole descriptor that did arrive is read.
        BogusLengthCase{"DescriptorLengthHuge",
                        {0x72, 0x05, 0x21, 0x00, 0, 0, 0, 200, 0x00, 0x0A, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 5},
                        true,
                        5}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(SenseParse, DescriptorWalkSkipsOddLengthsAndStopsAtACutOne) {
  // A vendor descriptor with an odd additional length, an empty one, then the information descriptor.
  const Bytes walk = {0x72, 0x03, 0x11, 0x00, 0, 0, 0, 5 + 2 + 12,
                      0x80, 0x03, 0xAA, 0xBB, 0xCC,
                      0x81, 0x00,
                      0x00, 0x0A, 0x80, 0x00, 0, 0, 0, 0, 0, 0, 0x12, 0x34};
  auto parsed = ParseSense(walk);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->code, asc::kUnrecoveredReadError);
  EXPECT_EQ(parsed->information, 0x1234u);

  // A descriptor whose length runs past the end: the walk stops there, and what follows is not trusted.
  const Bytes cut = {0x72, 0x03, 0x11, 0x00, 0, 0, 0, 14, 0x80, 0x40, 0, 0, 0x00, 0x0A, 0x80, 0, 0, 0, 0, 0, 0, 9};
  parsed = ParseSense(cut);
  ASSERT_TRUE(parsed);
  EXPECT_FALSE(parsed->information);

  // An information descriptor too short for its field, and one with VALID clear, give no information.
  const Bytes short_info = {0x72, 0x03, 0x11, 0x00, 0, 0, 0, 4, 0x00, 0x02, 0x80, 0x00};
  EXPECT_FALSE(ParseSense(short_info)->information);
  const Bytes invalid_info = {0x72, 0x03, 0x11, 0x00, 0, 0, 0, 12, 0x00, 0x0A, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  EXPECT_FALSE(ParseSense(invalid_info)->information);

  // A single dangling byte after the header is not a descriptor.
  const Bytes dangling = {0x72, 0x03, 0x11, 0x00, 0, 0, 0, 1, 0x00};
  parsed = ParseSense(dangling);
  ASSERT_TRUE(parsed);
  EXPECT_FALSE(parsed->information);
}

TEST(SenseParse, UnknownResponseCodesAreUnparseable) {
  for (std::uint8_t code : {0x00, 0x01, 0x6F, 0x74, 0x7E, 0x7F, 0x80, 0xFF}) {
    const Bytes s = {code, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0, 0, 0};
    auto parsed = ParseSense(s);
    ASSERT_FALSE(parsed) << int{code};
    EXPECT_EQ(parsed.error(), SenseParseError::kUnknownResponseCode);
  }
  // VALID (bit 7) over 70h is still fixed format.
  EXPECT_TRUE(ParseSense(Bytes{0xF0, 0, 0x05}));
}

TEST(SenseParse, ByteSpanOverload) {
  const Bytes s = Build(SenseFormat::kFixed, asc::kInvalidFieldInCdb);
  auto parsed = ParseSense(std::as_bytes(std::span(s)));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->code, asc::kInvalidFieldInCdb);
}

// Garbage of every size up to the sense buffer must parse or be refused, never crash or read out of bounds.
TEST(SenseParse, RandomGarbageNeverReadsOutOfBounds) {
  std::mt19937 rng(20261107);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int round = 0; round < 20000; ++round) {
    Bytes s(static_cast<std::size_t>(round % (kMaxSenseLength + 1)));
    for (auto& b : s) b = static_cast<std::uint8_t>(byte(rng));
    // Steer half of them into the response codes that get walked.
    if (!s.empty() && (round & 1)) s[0] = static_cast<std::uint8_t>(0x70 + (round >> 1) % 4);
    auto parsed = ParseSense(s);
    if (parsed && parsed->information && parsed->format == SenseFormat::kDescriptor) {
      EXPECT_GE(s.size(), 20u);
    }
  }
}

TEST(SenseParse, ErrorNamesAreReadable) {
  EXPECT_FALSE(SenseParseErrorName(SenseParseError::kEmpty).empty());
  EXPECT_FALSE(SenseParseErrorName(SenseParseError::kUnknownResponseCode).empty());
  EXPECT_FALSE(SenseParseErrorName(SenseParseError::kTooShort).empty());
}

}  // namespace
}  // namespace mpath::scsi::spec
