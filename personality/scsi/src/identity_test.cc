// The LU identity from VPD 83h, table driven: every priority pair in both orders, each NAA type, EUI-64 lengths,
// SCSI name strings, T10 vendor ids, associations, code sets, lengths, duplicates, conflicts, truncation and the
// pages LIO, tgt and scsi_debug send. Each page is built byte by byte.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "identity_test_util.h"
#include "mpath/scsi/identity.h"

namespace mpath::scsi::testing {
namespace {

struct IdCase {
  std::string name;
  Bytes page;
  std::string want;  // the identity; empty when an error is expected
  IdentityKind kind = IdentityKind::kNone;
  Errc error = Errc::kOk;
  bool conflict = false;
  bool truncated = false;
  std::string mentions = "";  // a phrase the reason (or the error message) must contain
};

void PrintTo(const IdCase& c, std::ostream* os) { *os << c.name; }

// The designators the table combines, each with the identity it gives alone.
struct Sample {
  std::string label;
  Bytes designator;
  std::string identity;
  IdentityKind kind;
};

const Bytes kN6b = U8({0x60, 0x0a, 0x0b, 0x80, 0x00, 0x2f, 0xc1, 0x34, 0x00, 0x00, 0x5e, 0x8c, 0x4f, 0x6b, 0x1e, 0x01});
const Bytes kN5 = U8({0x50, 0x01, 0x40, 0x5a, 0xbd, 0xe0, 0x00, 0x01});
const Bytes kN5b = U8({0x50, 0x00, 0xc5, 0x00, 0x12, 0x34, 0x56, 0x78});
const Bytes kN2 = U8({0x20, 0x00, 0x00, 0x1b, 0x32, 0x12, 0x34, 0x56});
const Bytes kN3 = U8({0x30, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01});
const Bytes kE8 = U8({0x00, 0x25, 0x38, 0x8b, 0x01, 0x23, 0x45, 0x67});
const Bytes kE12 = Cat({kE8, U8({0x89, 0xab, 0xcd, 0xef})});
const Bytes kE16 = Cat({kE12, U8({0xfe, 0xdc, 0xba, 0x98})});
const std::string kName = "iqn.2026-01.io.example:lu1";

Bytes Naa(const Bytes& v) { return Lu(DesignatorType::kNaa, CodeSet::kBinary, v); }
Bytes Eui(const Bytes& v) { return Lu(DesignatorType::kEui64, CodeSet::kBinary, v); }
Bytes Name(const Bytes& v) { return Lu(DesignatorType::kScsiNameString, CodeSet::kUtf8, v); }
Bytes T10(const Bytes& v) { return Lu(DesignatorType::kT10VendorId, CodeSet::kAscii, v); }

std::vector<Sample> Samples() {
  return {
      {"Naa6", Naa(kLioNaa), std::string(kLioIdentity), IdentityKind::kNaaRegisteredExtended},
      {"Naa5", Naa(kN5), "naa.5001405abde00001", IdentityKind::kNaaRegistered},
      {"Naa2", Naa(kN2), "naa.2000001b32123456", IdentityKind::kNaaExtended},
      {"Naa3", Naa(kN3), "naa.3000000100000001", IdentityKind::kNaaLocallyAssigned},
      {"Eui64", Eui(kE8), "eui.0025388b01234567", IdentityKind::kEui64},
      {"Name", Name(NameString(kName)), kName, IdentityKind::kScsiNameString},
      {"T10", T10(Text("IET     00010001")), "t10.IET     00010001", IdentityKind::kT10VendorId},
  };
}

IdCase Ok(std::string name, Bytes page, std::string want, IdentityKind kind, std::string mentions = "") {
  return IdCase{std::move(name), std::move(page), std::move(want), kind, Errc::kOk, false, false, std::move(mentions)};
}
IdCase NotFound(std::string name, Bytes page, std::string mentions) {
  return IdCase{std::move(name), std::move(page), "", IdentityKind::kNone, Errc::kNotFound, false, false,
                std::move(mentions)};
}

std::vector<IdCase> Cases() {
  std::vector<IdCase> c;
  const std::vector<Sample> samples = Samples();

  // Every designator alone, then every ordered pair: the better kind wins wherever it sits on the page.
  for (const Sample& s : samples) c.push_back(Ok("Alone_" + s.label, Page83({s.designator}), s.identity, s.kind));
  for (const Sample& a : samples) {
    for (const Sample& b : samples) {
      if (a.label == b.label) continue;
      const Sample& best = a.kind < b.kind ? a : b;
      c.push_back(Ok("Pair_" + a.label + "_then_" + b.label, Page83({a.designator, b.designator}), best.identity,
                     best.kind));
    }
  }

  // EUI-64 in its three lengths, printed whole in lowercase hex.
  c.push_back(Ok("Eui64_12", Page83({Eui(kE12)}), "eui.0025388b0123456789abcdef", IdentityKind::kEui64));
  c.push_back(Ok("Eui64_16", Page83({Eui(kE16)}), "eui.0025388b0123456789abcdeffedcba98", IdentityKind::kEui64));
  c.push_back(Ok("Naa6_UppercaseNibblesPrintLowercase",
                 Page83({Naa(U8({0x6A, 0xBC, 0xDE, 0xF0, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xAB}))}),
                 "naa.6abcdef0ff00000000000000000000ab", IdentityKind::kNaaRegisteredExtended));
  c.push_back(Ok("Naa5_OverEui64_16", Page83({Eui(kE16), Naa(kN5)}), "naa.5001405abde00001",
                 IdentityKind::kNaaRegistered));

  // NAA lengths are fixed by the NAA type; reserved types are refused.
  c.push_back(NotFound("Naa6_With8Bytes", Page83({Naa(U8({0x60, 1, 2, 3, 4, 5, 6, 7}))}), "has 16"));
  c.push_back(NotFound("Naa6_With15Bytes", Page83({Naa(Bytes(kLioNaa.begin(), kLioNaa.end() - 1))}), "of 15 bytes"));
  c.push_back(NotFound("Naa6_With17Bytes", Page83({Naa(Cat({kLioNaa, U8({0})}))}), "of 17 bytes"));
  c.push_back(NotFound("Naa5_With16Bytes", Page83({Naa(Cat({kN5, kN5}))}), "NAA type 5 designator of 16 bytes"));
  c.push_back(NotFound("Naa5_With7Bytes", Page83({Naa(Bytes(kN5.begin(), kN5.end() - 1))}), "of 7 bytes"));
  c.push_back(NotFound("Naa2_With16Bytes", Page83({Naa(Cat({kN2, kN2}))}), "NAA type 2"));
  c.push_back(NotFound("Naa3_With9Bytes", Page83({Naa(Cat({kN3, U8({0})}))}), "NAA type 3"));
  c.push_back(NotFound("Naa_Type1Reserved", Page83({Naa(U8({0x10, 0, 0, 0, 0, 0, 0, 1}))}), "reserved NAA type 0x1"));
  c.push_back(NotFound("Naa_Type0Reserved", Page83({Naa(U8({0x00, 0, 0, 0, 0, 0, 0, 1}))}), "reserved NAA type 0x0"));
  c.push_back(NotFound("Naa_Type4Reserved", Page83({Naa(U8({0x40, 0, 0, 0, 0, 0, 0, 1}))}), "reserved NAA type 0x4"));
  c.push_back(NotFound("Naa_TypeFReserved", Page83({Naa(Cat({U8({0xF0}), Bytes(15)}))}), "reserved NAA type 0xf"));
  c.push_back(Ok("Naa6_BadLength_FallsBackToNaa5", Page83({Naa(U8({0x60, 1, 2, 3, 4, 5, 6, 7})), Naa(kN5)}),
                 "naa.5001405abde00001", IdentityKind::kNaaRegistered, "descriptor 1 skipped"));

  // EUI-64 lengths other than 8, 12 and 16.
  for (int n : {4, 7, 9, 10, 20}) {
    c.push_back(NotFound("Eui64_With" + std::to_string(n) + "Bytes", Page83({Eui(Bytes(n, std::byte{0x11}))}),
                         "EUI-64 designator of " + std::to_string(n) + " bytes"));
  }

  // Code sets are checked against the designator type.
  c.push_back(NotFound("Naa_Ascii", Page83({Lu(DesignatorType::kNaa, CodeSet::kAscii, kLioNaa)}), "code set ASCII"));
  c.push_back(NotFound("Naa_Utf8", Page83({Lu(DesignatorType::kNaa, CodeSet::kUtf8, kN5)}), "code set UTF-8"));
  c.push_back(NotFound("Naa_ReservedCodeSet", Page83({Lu(DesignatorType::kNaa, static_cast<CodeSet>(0x0), kN5)}),
                       "code set reserved"));
  c.push_back(NotFound("Eui64_Ascii", Page83({Lu(DesignatorType::kEui64, CodeSet::kAscii, kE8)}), "code set ASCII"));
  c.push_back(NotFound("T10_Binary", Page83({Lu(DesignatorType::kT10VendorId, CodeSet::kBinary, Text("IET     1"))}),
                       "code set binary"));
  c.push_back(NotFound("T10_Utf8", Page83({Lu(DesignatorType::kT10VendorId, CodeSet::kUtf8, Text("IET     1"))}),
                       "code set UTF-8"));
  c.push_back(NotFound("Name_Binary",
                       Page83({Lu(DesignatorType::kScsiNameString, CodeSet::kBinary, NameString(kName))}),
                       "code set binary"));
  c.push_back(NotFound("Name_Ascii", Page83({Lu(DesignatorType::kScsiNameString, CodeSet::kAscii, NameString(kName))}),
                       "code set ASCII"));
  c.push_back(Ok("Naa_Ascii_FallsBackToT10",
                 Page83({Lu(DesignatorType::kNaa, CodeSet::kAscii, kLioNaa), T10(Text("IET     00010001"))}),
                 "t10.IET     00010001", IdentityKind::kT10VendorId, "code set ASCII"));

  // SCSI name strings: the text up to the first NUL, as sent.
  c.push_back(Ok("Name_NoPadding", Page83({Name(Text(kName))}), kName, IdentityKind::kScsiNameString));
  c.push_back(Ok("Name_ExtraNulPadding", Page83({Name(Cat({NameString(kName), Bytes(8)}))}), kName,
                 IdentityKind::kScsiNameString));
  c.push_back(Ok("Name_TextAfterNulIgnored", Page83({Name(Cat({Text("naa.600A0B80"), U8({0}), Text("junk")}))}),
                 "naa.600A0B80", IdentityKind::kScsiNameString));
  c.push_back(Ok("Name_Utf8Multibyte", Page83({Name(NameString("iqn.2026-01.io.example:l\xc3\xbc"))}),
                 "iqn.2026-01.io.example:l\xc3\xbc", IdentityKind::kScsiNameString));
  c.push_back(NotFound("Name_OnlyNuls", Page83({Name(Bytes(8))}), "empty SCSI name string"));
  c.push_back(NotFound("Name_InvalidUtf8", Page83({Name(Cat({Text("iqn.x"), U8({0xff, 0xfe, 0, 0})}))}),
                       "not printable UTF-8"));
  c.push_back(NotFound("Name_Overlong", Page83({Name(Cat({Text("iqn."), U8({0xc0, 0xaf, 0, 0})}))}),
                       "not printable UTF-8"));
  c.push_back(NotFound("Name_ControlCharacter", Page83({Name(Cat({Text("iqn.a"), U8({0x0a, 0, 0})}))}),
                       "not printable UTF-8"));
  c.push_back(NotFound("Name_CutMultibyte", Page83({Name(Cat({Text("iqn.ab"), U8({0xc3})}))}), "not printable"));

  // T10 vendor ids: as sent, trailing NULs dropped, spaces kept.
  c.push_back(Ok("T10_TrailingNulDropped", Page83({T10(Cat({Text("LIO-ORG IBLOCK:disk0"), U8({0, 0})}))}),
                 "t10.LIO-ORG IBLOCK:disk0", IdentityKind::kT10VendorId));
  c.push_back(Ok("T10_TrailingSpacesKept", Page83({T10(Text("IET     0001  "))}), "t10.IET     0001  ",
                 IdentityKind::kT10VendorId));
  c.push_back(Ok("T10_VendorFieldOnly", Page83({T10(Text("ACME    "))}), "t10.ACME    ", IdentityKind::kT10VendorId));
  c.push_back(NotFound("T10_ShorterThanVendorField", Page83({T10(Text("ACME"))}), "of 4 bytes"));
  c.push_back(NotFound("T10_NonPrintable", Page83({T10(Cat({Text("ACME    ab"), U8({0x01}), Text("cd")}))}),
                       "non-printable"));
  c.push_back(NotFound("T10_OnlyNuls", Page83({T10(Bytes(12))}), "of 0 bytes"));

  // Only logical unit association names the LU.
  c.push_back(NotFound("Naa6_TargetPortOnly",
                       Page83({Port(DesignatorType::kNaa, CodeSet::kBinary, kLioNaa)}), "only target port"));
  c.push_back(NotFound("Naa6_TargetDeviceOnly",
                       Page83({Designator(Association::kTargetDevice, DesignatorType::kNaa, CodeSet::kBinary,
                                          kLioNaa, 5, Piv::kYes)}),
                       "only target port or target device designators (1)"));
  c.push_back(NotFound("ReservedAssociationIgnored",
                       Page83({Designator(static_cast<Association>(0b11), DesignatorType::kNaa, CodeSet::kBinary,
                                          kLioNaa)}),
                       "reserved association 11b"));
  c.push_back(Ok("PortNaa6_LuNaa5", Page83({Port(DesignatorType::kNaa, CodeSet::kBinary, kLioNaa), Naa(kN5)}),
                 "naa.5001405abde00001", IdentityKind::kNaaRegistered));
  c.push_back(Ok("PortName_LuT10",
                 Page83({Port(DesignatorType::kScsiNameString, CodeSet::kUtf8, NameString(kName + ",t,0x0001")),
                         T10(Text("IET     00010001"))}),
                 "t10.IET     00010001", IdentityKind::kT10VendorId));
  c.push_back(NotFound("PortDesignatorsOnly",
                       Page83({Port(DesignatorType::kRelativeTargetPort, CodeSet::kBinary, Id16(1)),
                               Port(DesignatorType::kTargetPortGroup, CodeSet::kBinary, Id16(10))}),
                       "only target port or target device designators (2)"));
  c.push_back(Ok("LuDesignatorWithPivAndProtocol",
                 Page83({Designator(Association::kLogicalUnit, DesignatorType::kNaa, CodeSet::kBinary, kN5, 5,
                                    Piv::kYes)}),
                 "naa.5001405abde00001", IdentityKind::kNaaRegistered));

  // Designator types that never name the LU for multipath.
  c.push_back(NotFound("VendorSpecificOnly", Page83({Lu(DesignatorType::kVendorSpecific, CodeSet::kBinary, kN5)}),
                       "type 0x0 does not name the LU"));
  c.push_back(NotFound("UuidOnly", Page83({Lu(DesignatorType::kUuid, CodeSet::kBinary, Cat({U8({0x10, 0}), kE16}))}),
                       "type 0xa"));
  c.push_back(NotFound("Md5Only", Page83({Lu(DesignatorType::kMd5LogicalUnitIdentifier, CodeSet::kBinary, kE16)}),
                       "type 0x7"));
  c.push_back(Ok("VendorSpecific_ThenT10",
                 Page83({Lu(DesignatorType::kVendorSpecific, CodeSet::kBinary, kN5), T10(Text("IET     00010001"))}),
                 "t10.IET     00010001", IdentityKind::kT10VendorId));
  c.push_back(Ok("LuGroup_ThenNaa6",
                 Page83({Lu(DesignatorType::kLogicalUnitGroup, CodeSet::kBinary, Id16(3)), Naa(kLioNaa)}),
                 std::string(kLioIdentity), IdentityKind::kNaaRegisteredExtended));

  // Zero-length designators are skipped and the walk goes on after them.
  c.push_back(NotFound("ZeroLengthNaa", Page83({Naa({})}), "empty NAA designator"));
  c.push_back(Ok("ZeroLengthNaa_ThenNaa5", Page83({Naa({}), Naa(kN5)}), "naa.5001405abde00001",
                 IdentityKind::kNaaRegistered, "descriptor 1 skipped: empty NAA"));
  c.push_back(NotFound("ZeroLengthT10", Page83({T10({})}), "of 0 bytes"));
  c.push_back(NotFound("ZeroLengthName", Page83({Name({})}), "empty SCSI name string"));
  c.push_back(NotFound("ZeroLengthEui64", Page83({Eui({})}), "of 0 bytes"));

  // Truncation: by the bytes received, by PAGE LENGTH, by a DESIGNATOR LENGTH running past either.
  {
    Bytes cut = Page83({Naa(kLioNaa)});
    cut.resize(cut.size() - 1);
    IdCase x = NotFound("Naa6_CutByBytesReceived", cut, "is cut after");
    x.truncated = true;
    c.push_back(x);
  }
  {
    Bytes page = Page83({Naa(kN5), Naa(kLioNaa)});
    page.resize(page.size() - 4);
    IdCase x = Ok("Naa5_Whole_Naa6_Cut", page, "naa.5001405abde00001", IdentityKind::kNaaRegistered,
                  "after 1 whole designators (32 bytes received, PAGE LENGTH announces 36)");
    x.truncated = true;
    c.push_back(x);
  }
  {
    IdCase x = Ok("PageLengthBeyondReceived", Page83({Naa(kN5)}, 200), "naa.5001405abde00001",
                  IdentityKind::kNaaRegistered, "PAGE LENGTH announces 204");
    x.truncated = true;
    c.push_back(x);
  }
  c.push_back(Ok("PageLengthShorterThanReceived_RestIgnored", Page83({Naa(kN5), Naa(kLioNaa)}, 12),
                 "naa.5001405abde00001", IdentityKind::kNaaRegistered));
  {
    IdCase x = NotFound("PageLengthCutsTheOnlyDesignator", Page83({Naa(kLioNaa)}, 10), "PAGE LENGTH announces 14");
    x.truncated = true;
    c.push_back(x);
  }
  {
    IdCase x = NotFound("DesignatorLengthBeyondPage",
                        Page83({Designator(Association::kLogicalUnit, DesignatorType::kNaa, CodeSet::kBinary, kN5, 0,
                                           Piv::kNo, 40)}),
                        "is cut after");
    x.truncated = true;
    c.push_back(x);
  }
  {
    IdCase x = Ok("HalfADescriptorHeaderAtTheEnd", Cat({Page83({Naa(kN5)}, 14), U8({0x01, 0x03})}),
                  "naa.5001405abde00001", IdentityKind::kNaaRegistered);
    x.truncated = true;
    c.push_back(x);
  }
  {
    IdCase x = NotFound("HeaderOnly_PageLengthSaysMore", Page83({}, 20), "no designator arrived whole");
    x.truncated = true;
    c.push_back(x);
  }

  // Duplicates are fine; different designators of the chosen kind are a conflict, and the first wins.
  c.push_back(Ok("Naa6_Twice_Identical", Page83({Naa(kLioNaa), Naa(kLioNaa)}), std::string(kLioIdentity),
                 IdentityKind::kNaaRegisteredExtended));
  auto conflict = [&](std::string name, Bytes page, std::string want, IdentityKind kind, std::string mentions) {
    IdCase x = Ok(std::move(name), std::move(page), std::move(want), kind, std::move(mentions));
    x.conflict = true;
    c.push_back(x);
  };
  conflict("Naa6_Conflict_FirstWins", Page83({Naa(kLioNaa), Naa(kN6b)}), std::string(kLioIdentity),
           IdentityKind::kNaaRegisteredExtended, "descriptor 2 (naa.600a0b80002fc13400005e8c4f6b1e01)");
  conflict("Naa6_Conflict_OtherOrder", Page83({Naa(kN6b), Naa(kLioNaa)}), "naa.600a0b80002fc13400005e8c4f6b1e01",
           IdentityKind::kNaaRegisteredExtended, "the first is used");
  conflict("Naa5_Conflict", Page83({Naa(kN5b), Naa(kN5)}), "naa.5000c50012345678", IdentityKind::kNaaRegistered,
           "conflicting NAA IEEE Registered designators");
  conflict("T10_Conflict", Page83({T10(Text("IET     00010001")), T10(Text("IET     00010002"))}),
           "t10.IET     00010001", IdentityKind::kT10VendorId, "t10.IET     00010002");
  conflict("Eui64_8And16_Conflict", Page83({Eui(kE8), Eui(kE16)}), "eui.0025388b01234567", IdentityKind::kEui64,
           "EUI-64");
  conflict("Naa6_Three_TwoAgree", Page83({Naa(kN6b), Naa(kLioNaa), Naa(kN6b)}),
           "naa.600a0b80002fc13400005e8c4f6b1e01", IdentityKind::kNaaRegisteredExtended, "descriptor 2");
  c.push_back(Ok("Naa5Conflict_Irrelevant_UnderNaa6", Page83({Naa(kN5), Naa(kN5b), Naa(kLioNaa)}),
                 std::string(kLioIdentity), IdentityKind::kNaaRegisteredExtended));
  c.push_back(Ok("Naa6_Duplicate_AroundNaa5", Page83({Naa(kLioNaa), Naa(kN5), Naa(kLioNaa)}),
                 std::string(kLioIdentity), IdentityKind::kNaaRegisteredExtended));

  // Pages that are not pages 83h, or carry nothing.
  c.push_back(NotFound("EmptyPage", Page83({}), "the page carries no designators"));
  c.push_back(IdCase{"NoBytes", {}, "", IdentityKind::kNone, Errc::kTargetError, false, false, "shorter than"});
  c.push_back(IdCase{"ThreeBytes", U8({0x00, 0x83, 0x00}), "", IdentityKind::kNone, Errc::kTargetError, false, false,
                     "3 bytes"});
  c.push_back(IdCase{"WrongPageCode", Page83({Naa(kN5)}, -1, 0x80), "", IdentityKind::kNone, Errc::kTargetError,
                     false, false, "page 80h received"});

  // What real targets send (NOTES.md).
  c.push_back(Ok("Lio_PortA", LioPage(1, 10), std::string(kLioIdentity), IdentityKind::kNaaRegisteredExtended));
  c.push_back(Ok("Lio_PortB", LioPage(2, 20), std::string(kLioIdentity), IdentityKind::kNaaRegisteredExtended));
  c.push_back(Ok("Tgt", TgtPage(), std::string(kTgtIdentity), IdentityKind::kNaaRegisteredExtended));
  // scsi_debug: wwid naa.33333330000007d0, a locally assigned NAA with a T10 id beside it.
  c.push_back(Ok("ScsiDebug",
                 Page83({T10(Text("Linux   scsi_debug      2000")),
                         Naa(U8({0x33, 0x33, 0x33, 0x30, 0x00, 0x00, 0x07, 0xd0})),
                         Port(DesignatorType::kRelativeTargetPort, CodeSet::kBinary, Id16(1))}),
                 "naa.33333330000007d0", IdentityKind::kNaaLocallyAssigned));
  return c;
}

class IdentityTable : public ::testing::TestWithParam<IdCase> {};

TEST_P(IdentityTable, ChoosesTheRightDesignator) {
  const IdCase& c = GetParam();
  auto got = ParseLuIdentity(c.page);
  if (c.error != Errc::kOk) {
    ASSERT_FALSE(got.has_value()) << "chose " << got->identity.str();
    EXPECT_EQ(got.error().code(), c.error) << got.error().ToString();
    EXPECT_NE(got.error().message().find(c.mentions), std::string::npos) << got.error().message();
    return;
  }
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(got->identity.str(), c.want);
  EXPECT_EQ(got->kind, c.kind) << Name(got->kind);
  EXPECT_EQ(got->conflict, c.conflict) << got->reason;
  EXPECT_EQ(got->truncated, c.truncated) << got->reason;
  EXPECT_NE(got->reason.find(Name(c.kind)), std::string::npos) << got->reason;
  EXPECT_NE(got->reason.find(c.mentions), std::string::npos) << got->reason;
}

INSTANTIATE_TEST_SUITE_P(Vpd83, IdentityTable, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<IdCase>& info) { return info.param.name; });

TEST(IdentityTableSize, CoversAboutOneHundredTwentyEightCases) { EXPECT_GE(Cases().size(), 120u); }

// Every length a LIO page can be cut to: nothing before the NAA is whole, the NAA from then on, and the flag says
// whether anything was cut.
TEST(IdentityTruncation, LioPageCutAtEveryByte) {
  const Bytes whole = LioPage(1, 10);
  constexpr std::size_t kNaaEnd = 4 + 4 + 16;
  for (std::size_t n = 0; n <= whole.size(); ++n) {
    SCOPED_TRACE(n);
    const std::span<const std::byte> cut = std::span(whole).first(n);
    auto got = ParseLuIdentity(cut);
    if (n < 4) {
      ASSERT_FALSE(got.has_value());
      EXPECT_EQ(got.error().code(), Errc::kTargetError);
    } else if (n < kNaaEnd) {
      ASSERT_FALSE(got.has_value());
      EXPECT_EQ(got.error().code(), Errc::kNotFound);
      EXPECT_NE(got.error().message().find("is cut after"), std::string::npos) << got.error().message();
    } else {
      ASSERT_TRUE(got.has_value()) << got.error().ToString();
      EXPECT_EQ(got->identity.str(), kLioIdentity);
      EXPECT_EQ(got->truncated, n < whole.size());
      EXPECT_FALSE(got->conflict);
    }
  }
}

// The same cuts applied through PAGE LENGTH rather than the bytes received give the same answers.
TEST(IdentityTruncation, LioPageCutByPageLength) {
  const Bytes whole = LioPage(2, 20);
  for (std::size_t body = 0; body + 4 <= whole.size(); ++body) {
    SCOPED_TRACE(body);
    Bytes page = whole;
    page[2] = std::byte{static_cast<std::uint8_t>(body >> 8)};
    page[3] = std::byte{static_cast<std::uint8_t>(body)};
    auto got = ParseLuIdentity(page);
    if (body < 20) {
      ASSERT_FALSE(got.has_value());
      EXPECT_EQ(got.error().code(), Errc::kNotFound);
    } else {
      ASSERT_TRUE(got.has_value()) << got.error().ToString();
      EXPECT_EQ(got->identity.str(), kLioIdentity);
    }
  }
}

TEST(IdentityKindNames, AreDistinct) {
  EXPECT_EQ(Name(IdentityKind::kNaaRegisteredExtended), "NAA IEEE Registered Extended");
  EXPECT_EQ(Name(IdentityKind::kEui64), "EUI-64");
  EXPECT_EQ(Name(IdentityKind::kScsiNameString), "SCSI name string");
  EXPECT_EQ(Name(IdentityKind::kT10VendorId), "T10 vendor ID");
  EXPECT_EQ(Name(IdentityKind::kNone), "none");
}

}  // namespace
}  // namespace mpath::scsi::testing
