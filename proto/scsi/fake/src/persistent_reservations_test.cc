#include "persistent_reservations.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mpath/scsi/spec/pr.h"

namespace mpath::scsi::fake {
namespace {

namespace asc = spec::asc;
using spec::PrInServiceAction;
using spec::PrOutServiceAction;
using spec::PrType;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// Host a reaches the array through target ports 1 and 2; b and c through one port each (b also has port 2, for
// REGISTER AND MOVE).
const NexusId kA{"iqn.2026-01.io.mpath:host-a", 1};
const NexusId kA2{"iqn.2026-01.io.mpath:host-a", 2};
const NexusId kB{"iqn.2026-01.io.mpath:host-b", 1};
const NexusId kB2{"iqn.2026-01.io.mpath:host-b", 2};
const NexusId kC{"iqn.2026-01.io.mpath:host-c", 2};
const NexusId kForeign{"iqn.1998-01.com.other:cluster-node", 1};

constexpr std::uint64_t kKeyA = 0xAAAA'0000'0000'0001;
constexpr std::uint64_t kKeyB = 0xBBBB'0000'0000'0002;
constexpr std::uint64_t kKeyC = 0xCCCC'0000'0000'0003;

template <wire::WireStruct T>
std::vector<std::byte> Bytes(const T& value) {
  auto bytes = wire::BytesOf(value);
  return {bytes.begin(), bytes.end()};
}

template <wire::WireStruct T>
std::array<std::uint8_t, sizeof(T)> CdbBytes(const T& cdb) {
  return std::bit_cast<std::array<std::uint8_t, sizeof(T)>>(cdb);
}

std::vector<std::byte> Raw(std::initializer_list<int> values) {
  std::vector<std::byte> bytes;
  for (int v : values) bytes.push_back(static_cast<std::byte>(v));
  return bytes;
}

std::vector<std::byte> Concat(std::vector<std::byte> a, const std::vector<std::byte>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::string Code(const spec::SenseCode& code) {
  char text[16];
  std::snprintf(text, sizeof(text), "%X/%02X/%02X", static_cast<unsigned>(code.key), code.asc, code.ascq);
  return text;
}

// "GOOD", "CONFLICT" or "CHECK 5/24/00": what an initiator would see, readable in a failed expectation.
std::string Result(const PrAnswer& answer) {
  switch (answer.status) {
    case spec::Status::kGood: return "GOOD";
    case spec::Status::kReservationConflict: return "CONFLICT";
    case spec::Status::kCheckCondition: return "CHECK " + Code(answer.sense);
    default: return "status " + std::to_string(static_cast<int>(answer.status));
  }
}
std::string Check(const spec::SenseCode& code) { return "CHECK " + Code(code); }

// Unit attentions as "host-b:1 2A/05" (port 0: every target port of the initiator).
std::vector<std::string> Uas(const PrAnswer& answer) {
  std::vector<std::string> out;
  for (const UnitAttention& ua : answer.unit_attentions) {
    std::string_view name = ua.nexus.initiator_port;
    name = name.substr(name.rfind(':') + 1);
    std::string code = Code(ua.code);
    out.push_back(std::string(name) + ":" + std::to_string(ua.nexus.relative_target_port) + " " + code.substr(2));
  }
  return out;
}

spec::PrRegisterAndMoveParameterList MoveHeader(std::uint64_t key, std::uint64_t new_key, std::uint16_t port,
                                                std::size_t transport_id_length, bool unreg = false) {
  spec::PrRegisterAndMoveParameterList list;
  list.reservation_key = key;
  list.service_action_reservation_key = new_key;
  list.relative_target_port_identifier = port;
  list.transport_id_parameter_data_length = static_cast<std::uint32_t>(transport_id_length);
  list.set_unreg(unreg);
  return list;
}

std::vector<std::byte> MoveList(std::uint64_t key, std::uint64_t new_key, const NexusId& destination,
                                bool unreg = false) {
  std::vector<std::byte> transport_id = spec::IscsiTransportId(destination.initiator_port);
  return Concat(Bytes(MoveHeader(key, new_key, destination.relative_target_port, transport_id.size(), unreg)),
                transport_id);
}

// The flag bits of a basic parameter list.
struct Flags {
  bool all_tg_pt = false;
  bool aptpl = false;
};

class PersistentReservationsTest : public ::testing::Test {
 protected:
  PrAnswer Out(const NexusId& nexus, PrOutServiceAction action, std::uint64_t key, std::uint64_t new_key,
               PrType type = PrType::kWriteExclusive, Flags flags = {}) {
    spec::PrOutParameterList list = spec::PrOutParameterList::Make(key, new_key);
    list.set_all_tg_pt(flags.all_tg_pt);
    list.set_aptpl(flags.aptpl);
    return OutRaw(nexus, spec::PersistentReserveOutCdb::Make(action, sizeof(list), type), Bytes(list));
  }
  PrAnswer OutRaw(const NexusId& nexus, const spec::PersistentReserveOutCdb& cdb,
                  const std::vector<std::byte>& parameters) {
    auto bytes = CdbBytes(cdb);
    return pr_.Out(nexus, bytes, parameters);
  }
  PrAnswer Register(const NexusId& nexus, std::uint64_t key, Flags flags = {}) {
    return Out(nexus, PrOutServiceAction::kRegister, 0, key, PrType::kWriteExclusive, flags);
  }
  PrAnswer Unregister(const NexusId& nexus, std::uint64_t key) {
    return Out(nexus, PrOutServiceAction::kRegister, key, 0);
  }
  PrAnswer Reserve(const NexusId& nexus, std::uint64_t key, PrType type) {
    return Out(nexus, PrOutServiceAction::kReserve, key, 0, type);
  }
  PrAnswer Release(const NexusId& nexus, std::uint64_t key, PrType type) {
    return Out(nexus, PrOutServiceAction::kRelease, key, 0, type);
  }
  PrAnswer Clear(const NexusId& nexus, std::uint64_t key) { return Out(nexus, PrOutServiceAction::kClear, key, 0); }
  PrAnswer Preempt(const NexusId& nexus, std::uint64_t key, std::uint64_t victim, PrType type,
                   PrOutServiceAction action = PrOutServiceAction::kPreempt) {
    return Out(nexus, action, key, victim, type);
  }
  PrAnswer Move(const NexusId& nexus, const std::vector<std::byte>& list) {
    return OutRaw(nexus,
                  spec::PersistentReserveOutCdb::Make(PrOutServiceAction::kRegisterAndMove,
                                                      static_cast<std::uint32_t>(list.size())),
                  list);
  }

  // PERSISTENT RESERVE IN into an `out_size` buffer with ALLOCATION LENGTH `allocation`; the bytes transferred.
  std::vector<std::byte> In(PrInServiceAction action, std::size_t out_size = 4096, std::uint16_t allocation = 0xFFFF) {
    std::vector<std::byte> out(out_size, std::byte{0xEE});
    auto cdb = CdbBytes(spec::PersistentReserveInCdb::Make(action, allocation));
    PrAnswer answer = pr_.In(kA, cdb, out);
    EXPECT_EQ(Result(answer), "GOOD");
    EXPECT_LE(answer.transferred, out_size);
    out.resize(answer.transferred);
    return out;
  }
  std::vector<std::uint64_t> Keys() { return spec::ParseReadKeys(In(PrInServiceAction::kReadKeys))->keys; }
  std::optional<spec::PrHeldReservation> Held() {
    return spec::ParseReadReservation(In(PrInServiceAction::kReadReservation))->reservation;
  }
  // The reservation as "type/key", or "none".
  std::string Reservation() {
    std::optional<spec::PrHeldReservation> held = Held();
    if (!held) return "none";
    char text[40];
    std::snprintf(text, sizeof(text), "%u/%llX", held->type, static_cast<unsigned long long>(held->key));
    return text;
  }
  static std::string ReservationOf(PrType type, std::uint64_t key) {
    char text[40];
    std::snprintf(text, sizeof(text), "%u/%llX", static_cast<unsigned>(type), static_cast<unsigned long long>(key));
    return text;
  }

  // a holds a reservation of `type`; b and c are registered; nothing else.
  void SetUpThreeHosts(PrType type) {
    pr_ = PersistentReservations{};
    ASSERT_EQ(Result(Register(kA, kKeyA)), "GOOD");
    ASSERT_EQ(Result(Register(kB, kKeyB)), "GOOD");
    ASSERT_EQ(Result(Register(kC, kKeyC)), "GOOD");
    ASSERT_EQ(Result(Reserve(kA, kKeyA, type)), "GOOD");
  }

  PersistentReservations pr_;
};

// --- pr.h: the wire structs build the bytes SPC-5 shows.

TEST(PrWireTest, CdbsCarryServiceActionScopeTypeAndLengths) {
  EXPECT_EQ(Bytes(spec::PersistentReserveInCdb::Make(PrInServiceAction::kReadFullStatus, 0x1234)),
            Raw({0x5E, 0x03, 0, 0, 0, 0, 0, 0x12, 0x34, 0}));
  EXPECT_EQ(Bytes(spec::PersistentReserveOutCdb::Make(PrOutServiceAction::kPreemptAndAbort, 24,
                                                      PrType::kExclusiveAccessRegistrantsOnly)),
            Raw({0x5F, 0x05, 0x06, 0, 0, 0, 0, 0, 0x18, 0}));
  spec::PersistentReserveOutCdb cdb =
      spec::PersistentReserveOutCdb::Make(PrOutServiceAction::kRegisterAndMove, 0x10203);
  cdb.set_scope(0x2);
  cdb.set_type(std::uint8_t{0xF});
  EXPECT_EQ(Bytes(cdb), Raw({0x5F, 0x07, 0x2F, 0, 0, 0, 0x01, 0x02, 0x03, 0}));
  EXPECT_EQ(cdb.scope(), 0x2);
  EXPECT_EQ(cdb.type(), 0xF);
}

TEST(PrWireTest, ParameterListsPutKeysAndFlagsAtTheirOffsets) {
  spec::PrOutParameterList list = spec::PrOutParameterList::Make(0x0102030405060708, 0x1112131415161718);
  list.set_spec_i_pt(true);
  list.set_all_tg_pt(true);
  list.set_aptpl(true);
  EXPECT_EQ(Bytes(list), Raw({1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,  //
                              0, 0, 0, 0, 0x0D, 0, 0, 0}));
  list.set_spec_i_pt(false);
  EXPECT_EQ(list.flags, 0x05);

  spec::PrRegisterAndMoveParameterList move = MoveHeader(1, 2, 0x0102, 0x1C, /*unreg=*/true);
  move.set_aptpl(true);
  EXPECT_EQ(Bytes(move), Raw({0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0x03, 0x01, 0x02, 0, 0, 0, 0x1C}));
}

TEST(PrWireTest, TypeMaskMatchesWhatLioAndTgtReport) {
  spec::PrReportCapabilitiesData capabilities;
  capabilities.set_tmv(true);
  for (PrType type : spec::kPrTypes) capabilities.set_supports(type, true);
  EXPECT_EQ(capabilities.type_mask.value(), 0xEA01);  // NOTES.md: "type_mask=ea01" on both targets
  capabilities.set_supports(PrType::kExclusiveAccess, false);
  EXPECT_FALSE(capabilities.supports(PrType::kExclusiveAccess));
  EXPECT_TRUE(capabilities.supports(PrType::kExclusiveAccessAllRegistrants));
  // LIO's flags "1d 90": CRH, SIP_C, ATP_C, PTPL_C; TMV and ALLOW COMMANDS 001b.
  spec::PrReportCapabilitiesData lio =
      wire::LoadPadded<spec::PrReportCapabilitiesData>(Raw({0, 8, 0x1D, 0x90, 0xEA, 1}));
  EXPECT_TRUE(lio.crh() && lio.sip_c() && lio.atp_c() && lio.ptpl_c() && lio.tmv());
  EXPECT_FALSE(lio.ptpl_a() || lio.rlr_c());
  EXPECT_EQ(lio.allow_commands(), 1);
}

TEST(PrWireTest, TypeCodesAndFamilies) {
  for (int code = 0; code < 16; ++code) {
    bool valid = code == 1 || code == 3 || (code >= 5 && code <= 8);
    EXPECT_EQ(spec::ToPrType(static_cast<std::uint8_t>(code)).has_value(), valid) << code;
  }
  EXPECT_TRUE(spec::IsWriteExclusive(PrType::kWriteExclusiveAllRegistrants));
  EXPECT_FALSE(spec::IsWriteExclusive(PrType::kExclusiveAccessRegistrantsOnly));
  EXPECT_TRUE(spec::IsRegistrantsOnly(PrType::kWriteExclusiveRegistrantsOnly));
  EXPECT_TRUE(spec::IsAllRegistrants(PrType::kExclusiveAccessAllRegistrants));
}

TEST(PrWireTest, IscsiTransportIdIsPaddedToFourAndToTheMinimum) {
  // "iqn.x" and its NUL fit the 20-byte minimum.
  EXPECT_EQ(spec::IscsiTransportId("iqn.x"),
            Raw({0x05, 0, 0, 20, 'i', 'q', 'n', '.', 'x', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  // 27 characters and the NUL make 28: already a multiple of four.
  EXPECT_EQ(spec::IscsiTransportIdLength(kA.initiator_port), 32u);
  // 28 characters need 29 bytes, padded to 32.
  EXPECT_EQ(spec::IscsiTransportIdLength("iqn.2026-01.io.mpath:host-ab"), 36u);
  // An initiator port name with its ISID goes in the port format (01b), same string.
  std::vector<std::byte> port = spec::IscsiTransportId("iqn.x,i,0x23d000000001");
  EXPECT_EQ(port[0], std::byte{0x45});
  EXPECT_EQ(port.size(), 4u + 24u);

  // Cut short, it writes what fits.
  std::array<std::byte, 6> small{};
  EXPECT_EQ(spec::EncodeIscsiTransportId("iqn.x", small), 6u);
  EXPECT_EQ(small[4], std::byte{'i'});
}

TEST(PrWireTest, IscsiTransportIdDecodesAndRejectsMalformedOnes) {
  for (std::string_view name : {"iqn.x", "iqn.2026-01.io.mpath:host-a", "iqn.x,i,0x23d000000001"}) {
    std::vector<std::byte> bytes = Concat(spec::IscsiTransportId(name), Raw({0xFF, 0xFF}));
    auto decoded = spec::DecodeIscsiTransportId(bytes);
    ASSERT_TRUE(decoded.has_value()) << name;
    EXPECT_EQ(decoded->initiator_port, name);
    EXPECT_EQ(decoded->length, bytes.size() - 2);
  }
  struct Case {
    const char* name;
    std::vector<std::byte> bytes;
    spec::TransportIdError error;
  };
  std::vector<std::byte> good = spec::IscsiTransportId("iqn.x");
  std::vector<std::byte> fc = good;
  fc[0] = std::byte{0x00};
  std::vector<std::byte> format10 = good;
  format10[0] = std::byte{0x85};
  std::vector<std::byte> short_length = good;
  short_length[3] = std::byte{16};
  std::vector<std::byte> odd_length = Concat(good, Raw({0, 0}));
  odd_length[3] = std::byte{22};
  std::vector<std::byte> unterminated = Raw({0x05, 0, 0, 20});
  for (int i = 0; i < 20; ++i) unterminated.push_back(std::byte{'a'});
  std::vector<std::byte> empty = Raw({0x05, 0, 0, 20});
  empty.resize(24);
  std::vector<std::byte> port_without_separator = good;
  port_without_separator[0] = std::byte{0x45};
  const Case cases[] = {
      {"header cut", Raw({0x05, 0, 0}), spec::TransportIdError::kTruncated},
      {"name cut", std::vector<std::byte>(good.begin(), good.end() - 1), spec::TransportIdError::kTruncated},
      {"Fibre Channel", fc, spec::TransportIdError::kNotIscsi},
      {"format 10b", format10, spec::TransportIdError::kBadFormat},
      {"additional length 16", short_length, spec::TransportIdError::kBadLength},
      {"additional length 22", odd_length, spec::TransportIdError::kBadLength},
      {"no NUL", unterminated, spec::TransportIdError::kBadName},
      {"empty name", empty, spec::TransportIdError::kBadName},
      {"port format without ,i,0x", port_without_separator, spec::TransportIdError::kBadName},
  };
  for (const Case& c : cases) {
    auto decoded = spec::DecodeIscsiTransportId(c.bytes);
    ASSERT_FALSE(decoded.has_value()) << c.name;
    EXPECT_EQ(decoded.error(), c.error) << c.name;
  }
}

TEST(PrWireTest, ParsersStopAtTheBytesReceived) {
  std::vector<std::byte> keys = Raw({0, 0, 0, 7, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0});
  std::optional<spec::PrKeyList> list = spec::ParseReadKeys(keys);
  ASSERT_TRUE(list.has_value());
  EXPECT_EQ(list->generation, 7u);
  EXPECT_THAT(list->keys, ElementsAre(1u));
  EXPECT_FALSE(list->complete());
  EXPECT_FALSE(spec::ParseReadKeys(Raw({0, 0, 0, 7, 0, 0, 0})).has_value());

  EXPECT_FALSE(spec::ParseReadReservation(Raw({0, 0, 0, 1, 0, 0, 0, 16, 0, 0})).has_value());
  std::optional<spec::PrReservationReport> none = spec::ParseReadReservation(Raw({0, 0, 0, 1, 0, 0, 0, 0}));
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->reservation.has_value());
}

// --- The access matrix (SPC-5 §5.14.3, SBC-4 Table 13).

struct AccessRow {
  PrType type;
  bool holder_read, holder_write;
  bool registrant_read, registrant_write;
  bool other_read, other_write;
};
constexpr AccessRow kAccessMatrix[] = {
    {PrType::kWriteExclusive, true, true, true, false, true, false},
    {PrType::kExclusiveAccess, true, true, false, false, false, false},
    {PrType::kWriteExclusiveRegistrantsOnly, true, true, true, true, true, false},
    {PrType::kExclusiveAccessRegistrantsOnly, true, true, true, true, false, false},
    {PrType::kWriteExclusiveAllRegistrants, true, true, true, true, true, false},
    {PrType::kExclusiveAccessAllRegistrants, true, true, true, true, false, false},
};

TEST_F(PersistentReservationsTest, EverythingIsAllowedWithoutAReservation) {
  ASSERT_EQ(Result(Register(kA, kKeyA)), "GOOD");
  for (const NexusId& nexus : {kA, kB}) {
    for (AccessKind kind : {AccessKind::kUnrestricted, AccessKind::kRead, AccessKind::kWrite}) {
      EXPECT_TRUE(pr_.Allows(nexus, kind));
    }
  }
}

TEST_F(PersistentReservationsTest, AccessMatrixForEveryTypeAcrossThreeNexuses) {
  for (const AccessRow& row : kAccessMatrix) {
    SCOPED_TRACE(static_cast<int>(row.type));
    pr_ = PersistentReservations{};
    ASSERT_EQ(Result(Register(kA, kKeyA)), "GOOD");
    ASSERT_EQ(Result(Register(kB, kKeyB)), "GOOD");
    ASSERT_EQ(Result(Reserve(kA, kKeyA, row.type)), "GOOD");
    EXPECT_EQ(pr_.Allows(kA, AccessKind::kRead), row.holder_read);
    EXPECT_EQ(pr_.Allows(kA, AccessKind::kWrite), row.holder_write);
    EXPECT_EQ(pr_.Allows(kB, AccessKind::kRead), row.registrant_read);
    EXPECT_EQ(pr_.Allows(kB, AccessKind::kWrite), row.registrant_write);
    EXPECT_EQ(pr_.Allows(kC, AccessKind::kRead), row.other_read);
    EXPECT_EQ(pr_.Allows(kC, AccessKind::kWrite), row.other_write);
    for (const NexusId& nexus : {kA, kB, kC}) EXPECT_TRUE(pr_.Allows(nexus, AccessKind::kUnrestricted));
  }
}

TEST_F(PersistentReservationsTest, AccessMatrixWithTwoNexusesHolderAndStranger) {
  for (const AccessRow& row : kAccessMatrix) {
    SCOPED_TRACE(static_cast<int>(row.type));
    pr_ = PersistentReservations{};
    ASSERT_EQ(Result(Register(kA, kKeyA)), "GOOD");
    ASSERT_EQ(Result(Reserve(kA, kKeyA, row.type)), "GOOD");
    EXPECT_EQ(pr_.Allows(kA, AccessKind::kWrite), row.holder_write);
    EXPECT_EQ(pr_.Allows(kB, AccessKind::kRead), row.other_read);
    EXPECT_EQ(pr_.Allows(kB, AccessKind::kWrite), row.other_write);
    // Registering moves b from the "other" column to the "registrant" one.
    ASSERT_EQ(Result(Register(kB, kKeyB)), "GOOD");
    EXPECT_EQ(pr_.Allows(kB, AccessKind::kRead), row.registrant_read);
    EXPECT_EQ(pr_.Allows(kB, AccessKind::kWrite), row.registrant_write);
  }
}

TEST_F(PersistentReservationsTest, HoldersOtherTargetPortIsARegistrantNotTheHolder) {
  for (const AccessRow& row : kAccessMatrix) {
    SCOPED_TRACE(static_cast<int>(row.type));
    pr_ = PersistentReservations{};
    ASSERT_EQ(Result(Register(kA, kKeyA, {.all_tg_pt = true})), "GOOD");
    ASSERT_EQ(Result(Reserve(kA, kKeyA, row.type)), "GOOD");
    // §5.14.10: the holder is the I_T nexus that reserved; a's other path only shares its registration.
    EXPECT_EQ(pr_.Allows(kA2, AccessKind::kRead), row.registrant_read);
    EXPECT_EQ(pr_.Allows(kA2, AccessKind::kWrite), row.registrant_write);
  }
}

// --- REGISTER and REGISTER AND IGNORE EXISTING KEY (§5.14.7).

TEST_F(PersistentReservationsTest, RegisterBehaviours) {
  struct Row {
    const char* name;
    bool registered_before;  // with kKeyA
    PrOutServiceAction action;
    std::uint64_t key;
    std::uint64_t new_key;
    const char* result;
    std::vector<std::uint64_t> keys_after;
    std::uint32_t generation_after;  // 1 after the setup registration
  };
  const auto kRegister = PrOutServiceAction::kRegister;
  const auto kIgnore = PrOutServiceAction::kRegisterAndIgnoreExistingKey;
  const Row rows[] = {
      {"unregistered, key 0, new key 0: nothing", false, kRegister, 0, 0, "GOOD", {}, 0},
      {"unregistered, key 0: registers", false, kRegister, 0, kKeyB, "GOOD", {kKeyB}, 1},
      {"unregistered, non-zero key", false, kRegister, kKeyA, kKeyB, "CONFLICT", {}, 0},
      {"registered, wrong key", true, kRegister, kKeyC, kKeyB, "CONFLICT", {kKeyA}, 1},
      {"registered, key 0 is not its key", true, kRegister, 0, kKeyB, "CONFLICT", {kKeyA}, 1},
      {"registered, right key: replaced", true, kRegister, kKeyA, kKeyB, "GOOD", {kKeyB}, 2},
      {"registered, same key again", true, kRegister, kKeyA, kKeyA, "GOOD", {kKeyA}, 2},
      {"registered, new key 0: unregisters", true, kRegister, kKeyA, 0, "GOOD", {}, 2},
      {"ignore: unregistered, any key: registers", false, kIgnore, kKeyC, kKeyB, "GOOD", {kKeyB}, 1},
      {"ignore: unregistered, new key 0: nothing", false, kIgnore, kKeyC, 0, "GOOD", {}, 0},
      {"ignore: registered, wrong key: replaced", true, kIgnore, kKeyC, kKeyB, "GOOD", {kKeyB}, 2},
      {"ignore: registered, new key 0: unregisters", true, kIgnore, kKeyC, 0, "GOOD", {}, 2},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    pr_ = PersistentReservations{};
    if (row.registered_before) {
      ASSERT_EQ(Result(Register(kA, kKeyA)), "GOOD");
    }
    PrAnswer answer = Out(kA, row.action, row.key, row.new_key);
    EXPECT_EQ(Result(answer), row.result);
    EXPECT_THAT(answer.unit_attentions, IsEmpty());
    EXPECT_EQ(Keys(), row.keys_after);
    EXPECT_EQ(pr_.IsRegistered(kA), !row.keys_after.empty());
    EXPECT_EQ(pr_.generation(), row.generation_after);
  }
}

TEST_F(PersistentReservationsTest, RegistrationsArePerNexusAndKeysMayRepeat) {
  ASSERT_EQ(Result(Register(kA, kKeyA)), "GOOD");
  EXPECT_TRUE(pr_.IsRegistered(kA));
  EXPECT_FALSE(pr_.IsRegistered(kA2));  // the other path of the same initiator is another I_T nexus
  ASSERT_EQ(Result(Register(kA2, kKeyA)), "GOOD");
  ASSERT_EQ(Result(Register(kB, kKeyA)), "GOOD");
  EXPECT_THAT(Keys(), ElementsAre(kKeyA, kKeyA, kKeyA));
  // A registration has no effect on another one with the same key.
  ASSERT_EQ(Result(Out(kA2, PrOutServiceAction::kRegister, kKeyA, kKeyB)), "GOOD");
  EXPECT_THAT(Keys(), ElementsAre(kKeyA, kKeyB, kKeyA));
}

TEST_F(PersistentReservationsTest, GenerationCountsRegistrationChangesOnly) {
  struct Step {
    const char* name;
    std::function<PrAnswer()> run;
    std::string result;
    std::uint32_t generation;
  };
  const Step steps[] = {
      {"register a", [&] { return Register(kA, kKeyA); }, "GOOD", 1},
      {"register b", [&] { return Register(kB, kKeyB); }, "GOOD", 2},
      {"reserve", [&] { return Reserve(kA, kKeyA, PrType::kWriteExclusive); }, "GOOD", 2},
      {"reserve again", [&] { return Reserve(kA, kKeyA, PrType::kWriteExclusive); }, "GOOD", 2},
      {"conflicting reserve", [&] { return Reserve(kB, kKeyB, PrType::kWriteExclusive); }, "CONFLICT", 2},
      {"register with a wrong key", [&] { return Out(kB, PrOutServiceAction::kRegister, kKeyC, kKeyC); },
       "CONFLICT", 2},
      {"bad release", [&] { return Release(kA, kKeyA, PrType::kExclusiveAccess); },
       Check(spec::asc::kInvalidReleaseOfPersistentReservation), 2},
      {"release", [&] { return Release(kA, kKeyA, PrType::kWriteExclusive); }, "GOOD", 2},
      {"key change", [&] { return Out(kB, PrOutServiceAction::kRegister, kKeyB, kKeyC); }, "GOOD", 3},
      {"preempt", [&] { return Preempt(kA, kKeyA, kKeyC, PrType::kWriteExclusive); }, "GOOD", 4},
      {"preempt nobody", [&] { return Preempt(kA, kKeyA, kKeyB, PrType::kWriteExclusive); }, "CONFLICT", 4},
      {"register c", [&] { return Register(kC, kKeyC); }, "GOOD", 5},
      {"clear", [&] { return Clear(kC, kKeyC); }, "GOOD", 6},
  };
  for (const Step& step : steps) {
    SCOPED_TRACE(step.name);
    EXPECT_EQ(Result(step.run()), step.result);
    EXPECT_EQ(pr_.generation(), step.generation);
  }
  pr_.PowerCycle();
  EXPECT_EQ(pr_.generation(), 0u);
}

// --- RESERVE (§5.14.9).

TEST_F(PersistentReservationsTest, ReserveOutcomes) {
  SetUpThreeHosts(PrType::kWriteExclusiveRegistrantsOnly);
  struct Row {
    const char* name;
    NexusId nexus;
    std::uint64_t key;
    PrType type;
    const char* result;
  };
  const Row rows[] = {
      {"holder, same type", kA, kKeyA, PrType::kWriteExclusiveRegistrantsOnly, "GOOD"},
      {"holder, other type", kA, kKeyA, PrType::kExclusiveAccess, "CONFLICT"},
      {"holder, wrong key", kA, kKeyB, PrType::kWriteExclusiveRegistrantsOnly, "CONFLICT"},
      {"registrant, same type", kB, kKeyB, PrType::kWriteExclusiveRegistrantsOnly, "CONFLICT"},
      {"unregistered", kA2, 0, PrType::kWriteExclusiveRegistrantsOnly, "CONFLICT"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    EXPECT_EQ(Result(Reserve(row.nexus, row.key, row.type)), row.result);
    EXPECT_EQ(Reservation(), ReservationOf(PrType::kWriteExclusiveRegistrantsOnly, kKeyA));
  }
}

TEST_F(PersistentReservationsTest, EveryRegistrantHoldsAnAllRegistrantsReservation) {
  SetUpThreeHosts(PrType::kExclusiveAccessAllRegistrants);
  EXPECT_EQ(Result(Reserve(kB, kKeyB, PrType::kExclusiveAccessAllRegistrants)), "GOOD");
  EXPECT_EQ(Result(Reserve(kB, kKeyB, PrType::kWriteExclusiveAllRegistrants)), "CONFLICT");
  // READ RESERVATION reports key zero for the all-registrants types.
  EXPECT_EQ(Reservation(), ReservationOf(PrType::kExclusiveAccessAllRegistrants, 0));
}

TEST_F(PersistentReservationsTest, ReserveRejectsBadScopeAndTypeEvenFromStrangers) {
  for (std::uint8_t type : {0x0, 0x2, 0x4, 0x9, 0xF}) {
    spec::PersistentReserveOutCdb cdb = spec::PersistentReserveOutCdb::Make(PrOutServiceAction::kReserve, 24);
    cdb.set_type(type);
    EXPECT_EQ(Result(OutRaw(kB, cdb, Bytes(spec::PrOutParameterList::Make(0, 0)))), Check(asc::kInvalidFieldInCdb))
        << int{type};
  }
  ASSERT_EQ(Result(Register(kA, kKeyA)), "GOOD");
  spec::PersistentReserveOutCdb element_scope =
      spec::PersistentReserveOutCdb::Make(PrOutServiceAction::kReserve, 24, PrType::kWriteExclusive);
  element_scope.set_scope(0x2);
  EXPECT_EQ(Result(OutRaw(kA, element_scope, Bytes(spec::PrOutParameterList::Make(kKeyA, 0)))),
            Check(asc::kInvalidFieldInCdb));
  EXPECT_EQ(Reservation(), "none");
}

// --- RELEASE (§5.14.11.2.2).

TEST_F(PersistentReservationsTest, ReleaseOutcomesThatReleaseNothing) {
  SetUpThreeHosts(PrType::kWriteExclusive);
  struct Row {
    const char* name;
    NexusId nexus;
    std::uint64_t key;
    PrType type;
    std::string result;
  };
  const Row rows[] = {
      {"unregistered", kA2, 0, PrType::kWriteExclusive, "CONFLICT"},
      {"wrong key", kB, kKeyC, PrType::kWriteExclusive, "CONFLICT"},
      {"registrant that does not hold it", kB, kKeyB, PrType::kWriteExclusive, "GOOD"},
      {"holder, other type", kA, kKeyA, PrType::kExclusiveAccess, Check(spec::asc::kInvalidReleaseOfPersistentReservation)},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    PrAnswer answer = Release(row.nexus, row.key, row.type);
    EXPECT_EQ(Result(answer), row.result);
    EXPECT_THAT(answer.unit_attentions, IsEmpty());
    EXPECT_EQ(Reservation(), ReservationOf(PrType::kWriteExclusive, kKeyA));
  }
  spec::PersistentReserveOutCdb element_scope =
      spec::PersistentReserveOutCdb::Make(PrOutServiceAction::kRelease, 24, PrType::kWriteExclusive);
  element_scope.set_scope(0x2);
  EXPECT_EQ(Result(OutRaw(kA, element_scope, Bytes(spec::PrOutParameterList::Make(kKeyA, 0)))),
            Check(spec::asc::kInvalidReleaseOfPersistentReservation));
  EXPECT_EQ(Reservation(), ReservationOf(PrType::kWriteExclusive, kKeyA));
}

TEST_F(PersistentReservationsTest, ReleaseWithoutAReservationIsGood) {
  ASSERT_EQ(Result(Register(kA, kKeyA)), "GOOD");
  EXPECT_EQ(Result(Release(kA, kKeyA, PrType::kExclusiveAccess)), "GOOD");
}

TEST_F(PersistentReservationsTest, ReleaseTellsOtherRegistrantsForRegistrantsTypesOnly) {
  struct Row {
    PrType type;
    NexusId releaser;
    std::uint64_t key;
    std::vector<std::string> uas;
  };
  const Row rows[] = {
      {PrType::kWriteExclusive, kA, kKeyA, {}},
      {PrType::kExclusiveAccess, kA, kKeyA, {}},
      {PrType::kWriteExclusiveRegistrantsOnly, kA, kKeyA, {"host-b:1 2A/04", "host-c:2 2A/04"}},
      {PrType::kExclusiveAccessRegistrantsOnly, kA, kKeyA, {"host-b:1 2A/04", "host-c:2 2A/04"}},
      {PrType::kWriteExclusiveAllRegistrants, kA, kKeyA, {"host-b:1 2A/04", "host-c:2 2A/04"}},
      // Any registrant holds an all-registrants reservation, so any of them may release it.
      {PrType::kExclusiveAccessAllRegistrants, kB, kKeyB, {"host-a:1 2A/04", "host-c:2 2A/04"}},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(static_cast<int>(row.type));
    SetUpThreeHosts(row.type);
    PrAnswer answer = Release(row.releaser, row.key, row.type);
    EXPECT_EQ(Result(answer), "GOOD");
    EXPECT_EQ(Uas(answer), row.uas);
    EXPECT_EQ(Reservation(), "none");
    EXPECT_EQ(Keys().size(), 3u);  // releasing removes no registration
    EXPECT_EQ(pr_.generation(), 3u);
  }
}

// --- Unregistering the holder (§5.14.11.2.3).

TEST_F(PersistentReservationsTest, UnregisteringTheHolderReleasesPerType) {
  struct Row {
    PrType type;
    std::vector<std::string> uas;
    bool released;
  };
  const Row rows[] = {
      {PrType::kWriteExclusive, {}, true},
      {PrType::kExclusiveAccess, {}, true},
      {PrType::kWriteExclusiveRegistrantsOnly, {"host-b:1 2A/04", "host-c:2 2A/04"}, true},
      {PrType::kExclusiveAccessRegistrantsOnly, {"host-b:1 2A/04", "host-c:2 2A/04"}, true},
      {PrType::kWriteExclusiveAllRegistrants, {}, false},
      {PrType::kExclusiveAccessAllRegistrants, {}, false},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(static_cast<int>(row.type));
    SetUpThreeHosts(row.type);
    PrAnswer answer = Unregister(kA, kKeyA);
    EXPECT_EQ(Result(answer), "GOOD");
    EXPECT_EQ(Uas(answer), row.uas);
    EXPECT_EQ(Reservation() == "none", row.released);
    EXPECT_FALSE(pr_.IsRegistered(kA));
  }
}

TEST_F(PersistentReservationsTest, AllRegistrantsReservationEndsWithTheLastRegistrant) {
  SetUpThreeHosts(PrType::kWriteExclusiveAllRegistrants);
  ASSERT_EQ(Result(Unregister(kA, kKeyA)), "GOOD");
  ASSERT_EQ(Result(Unregister(kB, kKeyB)), "GOOD");
  EXPECT_EQ(Reservation(), ReservationOf(PrType::kWriteExclusiveAllRegistrants, 0));
  EXPECT_FALSE(pr_.Allows(kA, AccessKind::kWrite));
  EXPECT_TRUE(pr_.Allows(kC, AccessKind::kWrite));
  PrAnswer last = Unregister(kC, kKeyC);
  EXPECT_EQ(Result(last), "GOOD");
  EXPECT_THAT(last.unit_attentions, IsEmpty());
  EXPECT_EQ(Reservation(), "none");
  EXPECT_TRUE(pr_.Allows(kA, AccessKind::kWrite));
}

TEST_F(PersistentReservationsTest, UnregisteringANonHolderLeavesTheReservation) {
  SetUpThreeHosts(PrType::kExclusiveAccessRegistrantsOnly);
  PrAnswer answer = Unregister(kB, kKeyB);
  EXPECT_EQ(Result(answer), "GOOD");
  EXPECT_THAT(answer.unit_attentions, IsEmpty());
  EXPECT_EQ(Reservation(), ReservationOf(PrType::kExclusiveAccessRegistrantsOnly, kKeyA));
  EXPECT_FALSE(pr_.Allows(kB, AccessKind::kRead));
}

TEST_F(PersistentReservationsTest, HolderMayChangeItsKeyAndKeepTheReservation) {
  SetUpThreeHosts(PrType::kExclusiveAccess);
  ASSERT_EQ(Result(Out(kA, PrOutServiceAction::kRegisterAndIgnoreExistingKey, 0, 0x1234)), "GOOD");
  EXPECT_EQ(Reservation(), ReservationOf(PrType::kExclusiveAccess, 0x1234));
  EXPECT_TRUE(pr_.Allows(kA, AccessKind::kWrite));
}

// --- CLEAR (§5.14.11.2.7).

TEST_F(PersistentReservationsTest, ClearRemovesEverythingAndTellsTheOthers) {
  SetUpThreeHosts(PrType::kExclusiveAccess);
  EXPECT_EQ(Result(Clear(kA2, 0)), "CONFLICT");
  EXPECT_EQ(Result(Clear(kB, kKeyA)), "CONFLICT");
  EXPECT_EQ(pr_.generation(), 3u);
  PrAnswer answer = Clear(kB, kKeyB);  // any registrant may clear, holder or not
  EXPECT_EQ(Result(answer), "GOOD");
  EXPECT_THAT(Uas(answer), ElementsAre("host-a:1 2A/03", "host-c:2 2A/03"));
  EXPECT_THAT(Keys(), IsEmpty());
  EXPECT_EQ(Reservation(), "none");
  EXPECT_EQ(pr_.generation(), 4u);
  EXPECT_TRUE(pr_.Allows(kC, AccessKind::kWrite));
}

// --- PREEMPT and PREEMPT AND ABORT (§5.14.11.2.4 to .6); with no task set to abort they behave alike.

class PreemptTest : public PersistentReservationsTest, public ::testing::WithParamInterface<PrOutServiceAction> {
 protected:
  PrAnswer Preempt(const NexusId& nexus, std::uint64_t key, std::uint64_t victim, PrType type) {
    return PersistentReservationsTest::Preempt(nexus, key, victim, type, GetParam());
  }
};

TEST_P(PreemptTest, HoldersKeyTakesTheReservationAndRemovesItsRegistrations) {
  SetUpThreeHosts(PrType::kWriteExclusiveRegistrantsOnly);
  ASSERT_EQ(Result(Register(kA2, kKeyA)), "GOOD");  // a's second path, same key
  PrAnswer answer = Preempt(kB, kKeyB, kKeyA, PrType::kWriteExclusiveRegistrantsOnly);
  EXPECT_EQ(Result(answer), "GOOD");
  // Same type: only the removed registrations hear about it.
  EXPECT_THAT(Uas(answer), UnorderedElementsAre("host-a:1 2A/05", "host-a:2 2A/05"));
  EXPECT_THAT(Keys(), ElementsAre(kKeyB, kKeyC));
  EXPECT_EQ(Reservation(), ReservationOf(PrType::kWriteExclusiveRegistrantsOnly, kKeyB));
  EXPECT_EQ(pr_.generation(), 5u);
  EXPECT_FALSE(pr_.Allows(kA, AccessKind::kWrite));
  EXPECT_TRUE(pr_.Allows(kC, AccessKind::kWrite));
}

TEST_P(PreemptTest, ChangingTheTypeTellsTheRemainingRegistrantsReservationsReleased) {
  SetUpThreeHosts(PrType::kWriteExclusiveRegistrantsOnly);
  PrAnswer answer = Preempt(kB, kKeyB, kKeyA, PrType::kExclusiveAccess);
  EXPECT_EQ(Result(answer), "GOOD");
  EXPECT_THAT(Uas(answer), UnorderedElementsAre("host-a:1 2A/05", "host-c:2 2A/04"));
  EXPECT_EQ(Reservation(), ReservationOf(PrType::kExclusiveAccess, kKeyB));
  EXPECT_FALSE(pr_.Allows(kC, AccessKind::kRead));
}

TEST_P(PreemptTest, HolderMayPreemptItselfToChangeType) {
  SetUpThreeHosts(PrType::kWriteExclusive);
  PrAnswer answer = Preempt(kA, kKeyA, kKeyA, PrType::kExclusiveAccess);
  EXPECT_EQ(Result(answer), "GOOD");
  EXPECT_THAT(Uas(answer), UnorderedElementsAre("host-b:1 2A/04", "host-c:2 2A/04"));
  EXPECT_THAT(Keys(), ElementsAre(kKeyA, kKeyB, kKeyC));
  EXPECT_EQ(Reservation(), ReservationOf(PrType::kExclusiveAccess, kKeyA));
}

TEST_P(PreemptTest, OtherKeyOnlyRemovesRegistrations) {
  SetUpThreeHosts(PrType::kExclusiveAccessRegistrantsOnly);
  // TYPE is ignored when only registrations go, even a reserved code.
  spec::PersistentReserveOutCdb cdb = spec::PersistentReserveOutCdb::Make(GetParam(), 24);
  cdb.set_type(std::uint8_t{0x2});
  PrAnswer answer = OutRaw(kA, cdb, Bytes(spec::PrOutParameterList::Make(kKeyA, kKeyC)));
  EXPECT_EQ(Result(answer), "GOOD");
  EXPECT_THAT(Uas(answer), ElementsAre("host-c:2 2A/05"));
  EXPECT_THAT(Keys(), ElementsAre(kKeyA, kKeyB));
  EXPECT_EQ(Reservation(), ReservationOf(PrType::kExclusiveAccessRegistrantsOnly, kKeyA));
  EXPECT_EQ(pr_.generation(), 4u);
}

TEST_P(PreemptTest, WithoutAReservationItRemovesRegistrations) {
  ASSERT_EQ(Result(Register(kA, kKeyA)), "GOOD");
  ASSERT_EQ(Result(Register(kB, kKeyB)), "GOOD");
  PrAnswer answer = Preempt(kA, kKeyA, kKeyB, PrType::kExclusiveAccess);
  EXPECT_EQ(Result(answer), "GOOD");
  EXPECT_THAT(Uas(answer), ElementsAre("host-b:1 2A/05"));
  EXPECT_EQ(Reservation(), "none");
  EXPECT_THAT(Keys(), ElementsAre(kKeyA));
}

TEST_P(PreemptTest, IssuerNamingItsOwnKeyLosesItsRegistrationWithoutAUnitAttention) {
  SetUpThreeHosts(PrType::kWriteExclusive);
  ASSERT_EQ(Result(Register(kA2, kKeyB)), "GOOD");
  PrAnswer answer = Preempt(kB, kKeyB, kKeyB, PrType::kWriteExclusive);
  EXPECT_EQ(Result(answer), "GOOD");
  EXPECT_THAT(Uas(answer), ElementsAre("host-a:2 2A/05"));
  EXPECT_FALSE(pr_.IsRegistered(kB));
  EXPECT_EQ(Reservation(), ReservationOf(PrType::kWriteExclusive, kKeyA));
}

TEST_P(PreemptTest, AllRegistrantsWithKeyZeroTakesOverAlone) {
  SetUpThreeHosts(PrType::kWriteExclusiveAllRegistrants);
  PrAnswer answer = Preempt(kB, kKeyB, 0, PrType::kExclusiveAccessRegistrantsOnly);
  EXPECT_EQ(Result(answer), "GOOD");
  EXPECT_THAT(Uas(answer), UnorderedElementsAre("host-a:1 2A/05", "host-c:2 2A/05"));
  EXPECT_THAT(Keys(), ElementsAre(kKeyB));
  EXPECT_EQ(Reservation(), ReservationOf(PrType::kExclusiveAccessRegistrantsOnly, kKeyB));
}

TEST_P(PreemptTest, AllRegistrantsWithAKeyOnlyRemovesThatKey) {
  SetUpThreeHosts(PrType::kExclusiveAccessAllRegistrants);
  PrAnswer answer = Preempt(kB, kKeyB, kKeyA, PrType::kWriteExclusive);
  EXPECT_EQ(Result(answer), "GOOD");
  EXPECT_THAT(Uas(answer), ElementsAre("host-a:1 2A/05"));
  EXPECT_EQ(Reservation(), ReservationOf(PrType::kExclusiveAccessAllRegistrants, 0));
  EXPECT_TRUE(pr_.Allows(kC, AccessKind::kWrite));
}

TEST_P(PreemptTest, Failures) {
  SetUpThreeHosts(PrType::kWriteExclusive);
  struct Row {
    const char* name;
    NexusId nexus;
    std::uint64_t key;
    std::uint64_t victim;
    std::uint8_t type;
    std::uint8_t scope;
    std::string result;
  };
  const Row rows[] = {
      {"unregistered", kA2, 0, kKeyA, 1, 0, "CONFLICT"},
      {"wrong key", kB, kKeyC, kKeyA, 1, 0, "CONFLICT"},
      {"no such key", kB, kKeyB, 0x5555, 1, 0, "CONFLICT"},
      {"key zero without all-registrants", kB, kKeyB, 0, 1, 0, Check(asc::kInvalidFieldInParameterList)},
      {"taking it with a reserved type", kB, kKeyB, kKeyA, 0x4, 0, Check(asc::kInvalidFieldInCdb)},
      {"taking it with element scope", kB, kKeyB, kKeyA, 1, 0x2, Check(asc::kInvalidFieldInCdb)},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    spec::PersistentReserveOutCdb cdb = spec::PersistentReserveOutCdb::Make(GetParam(), 24);
    cdb.set_type(row.type);
    cdb.set_scope(row.scope);
    PrAnswer answer = OutRaw(row.nexus, cdb, Bytes(spec::PrOutParameterList::Make(row.key, row.victim)));
    EXPECT_EQ(Result(answer), row.result);
    EXPECT_THAT(answer.unit_attentions, IsEmpty());
    EXPECT_THAT(Keys(), ElementsAre(kKeyA, kKeyB, kKeyC));
    EXPECT_EQ(Reservation(), ReservationOf(PrType::kWriteExclusive, kKeyA));
    EXPECT_EQ(pr_.generation(), 3u);
  }
  pr_ = PersistentReservations{};
  ASSERT_EQ(Result(Register(kA, kKeyA)), "GOOD");
  EXPECT_EQ(Result(Preempt(kA, kKeyA, 0, PrType::kWriteExclusive)), Check(asc::kInvalidFieldInParameterList));
}

INSTANTIATE_TEST_SUITE_P(PreemptAndPreemptAndAbort, PreemptTest,
                         ::testing::Values(PrOutServiceAction::kPreempt, PrOutServiceAction::kPreemptAndAbort),
                         [](const ::testing::TestParamInfo<PrOutServiceAction>& info) {
                           return info.param == PrOutServiceAction::kPreempt ? "Preempt" : "PreemptAndAbort";
                         });

// --- ALL_TG_PT and APTPL.

TEST_F(PersistentReservationsTest, AllTargetPortsRegistrationIsSeenFromEveryPortOfTheInitiator) {
  ASSERT_EQ(Result(Register(kA, kKeyA, {.all_tg_pt = true})), "GOOD");
  EXPECT_TRUE(pr_.IsRegistered(kA2));
  EXPECT_FALSE(pr_.IsRegistered(kB));
  EXPECT_THAT(Keys(), ElementsAre(kKeyA));
  // The other path may use the registration: reserve through port 2.
  ASSERT_EQ(Result(Reserve(kA2, kKeyA, PrType::kExclusiveAccess)), "GOOD");
  EXPECT_TRUE(pr_.Allows(kA2, AccessKind::kWrite));
  EXPECT_FALSE(pr_.Allows(kA, AccessKind::kWrite));
  // Preempting it reports the unit attention for every target port of host a.
  ASSERT_EQ(Result(Register(kB, kKeyB)), "GOOD");
  PrAnswer answer = Preempt(kB, kKeyB, kKeyA, PrType::kExclusiveAccess);
  EXPECT_THAT(Uas(answer), ElementsAre("host-a:0 2A/05"));
  EXPECT_FALSE(pr_.IsRegistered(kA));
  EXPECT_FALSE(pr_.IsRegistered(kA2));
}

TEST_F(PersistentReservationsTest, UnregisteringThroughAnyPortRemovesAnAllTargetPortsRegistration) {
  ASSERT_EQ(Result(Register(kA, kKeyA, {.all_tg_pt = true})), "GOOD");
  ASSERT_EQ(Result(Unregister(kA2, kKeyA)), "GOOD");
  EXPECT_FALSE(pr_.IsRegistered(kA));
}

TEST_F(PersistentReservationsTest, UnsupportedAllTargetPortsAndAptplAreInvalidFields) {
  pr_ = PersistentReservations(PrCapabilities{.all_target_ports = false, .persist_through_power_loss = false});
  EXPECT_EQ(Result(Register(kA, kKeyA, {.all_tg_pt = true})), Check(asc::kInvalidFieldInParameterList));
  EXPECT_EQ(Result(Register(kA, kKeyA, {.aptpl = true})), Check(asc::kInvalidFieldInParameterList));
  EXPECT_FALSE(pr_.IsRegistered(kA));
  // The bits mean nothing to the other service actions.
  ASSERT_EQ(Result(Register(kA, kKeyA)), "GOOD");
  EXPECT_EQ(Result(Out(kA, PrOutServiceAction::kReserve, kKeyA, 0, PrType::kExclusiveAccess,
                       {.all_tg_pt = true, .aptpl = true})),
            "GOOD");
  EXPECT_EQ(In(PrInServiceAction::kReportCapabilities), Raw({0, 8, 0x00, 0x80, 0xEA, 0x01, 0, 0}));
}

TEST_F(PersistentReservationsTest, AptplKeepsRegistrationsAndReservationAcrossPowerCycle) {
  ASSERT_EQ(Result(Register(kA, kKeyA, {.aptpl = true})), "GOOD");
  ASSERT_EQ(Result(Register(kB, kKeyB, {.aptpl = true})), "GOOD");
  ASSERT_EQ(Result(Reserve(kA, kKeyA, PrType::kWriteExclusiveRegistrantsOnly)), "GOOD");
  EXPECT_EQ(In(PrInServiceAction::kReportCapabilities), Raw({0, 8, 0x05, 0x81, 0xEA, 0x01, 0, 0}));
  pr_.PowerCycle();
  EXPECT_EQ(pr_.generation(), 0u);
  EXPECT_THAT(Keys(), ElementsAre(kKeyA, kKeyB));
  EXPECT_EQ(Reservation(), ReservationOf(PrType::kWriteExclusiveRegistrantsOnly, kKeyA));
  EXPECT_FALSE(pr_.Allows(kC, AccessKind::kWrite));
  // The last APTPL decides: a registration with APTPL 0 makes the next power loss forget everything.
  ASSERT_EQ(Result(Out(kB, PrOutServiceAction::kRegister, kKeyB, kKeyC)), "GOOD");
  EXPECT_EQ(In(PrInServiceAction::kReportCapabilities), Raw({0, 8, 0x05, 0x80, 0xEA, 0x01, 0, 0}));
  pr_.PowerCycle();
  EXPECT_THAT(Keys(), IsEmpty());
  EXPECT_EQ(Reservation(), "none");
  EXPECT_TRUE(pr_.Allows(kC, AccessKind::kWrite));
}

TEST_F(PersistentReservationsTest, PowerCycleWithoutAptplForgetsEverything) {
  SetUpThreeHosts(PrType::kExclusiveAccess);
  pr_.PowerCycle();
  EXPECT_THAT(Keys(), IsEmpty());
  EXPECT_EQ(Reservation(), "none");
  EXPECT_EQ(pr_.generation(), 0u);
}

// --- REGISTER AND MOVE (§5.14.8, parameter list §6.16.4).

TEST_F(PersistentReservationsTest, RegisterAndMoveHandsTheReservationToAnotherNexus) {
  SetUpThreeHosts(PrType::kExclusiveAccess);
  PrAnswer answer = Move(kA, MoveList(kKeyA, 0xB2, kB2));
  EXPECT_EQ(Result(answer), "GOOD");
  EXPECT_THAT(answer.unit_attentions, IsEmpty());
  EXPECT_TRUE(pr_.IsRegistered(kB2));
  EXPECT_THAT(Keys(), ElementsAre(kKeyA, kKeyB, kKeyC, 0xB2));
  EXPECT_EQ(Reservation(), ReservationOf(PrType::kExclusiveAccess, 0xB2));
  EXPECT_TRUE(pr_.Allows(kB2, AccessKind::kWrite));
  EXPECT_FALSE(pr_.Allows(kB, AccessKind::kRead));  // another nexus of the same initiator
  EXPECT_FALSE(pr_.Allows(kA, AccessKind::kRead));
  EXPECT_EQ(pr_.generation(), 4u);
}

TEST_F(PersistentReservationsTest, RegisterAndMoveWithUnregLeavesTheIssuerUnregistered) {
  SetUpThreeHosts(PrType::kWriteExclusiveRegistrantsOnly);
  // The destination is already registered: its key becomes the new one.
  PrAnswer answer = Move(kA, MoveList(kKeyA, 0xB0, kB, /*unreg=*/true));
  EXPECT_EQ(Result(answer), "GOOD");
  EXPECT_THAT(answer.unit_attentions, IsEmpty());
  EXPECT_FALSE(pr_.IsRegistered(kA));
  EXPECT_THAT(Keys(), ElementsAre(0xB0u, kKeyC));
  EXPECT_EQ(Reservation(), ReservationOf(PrType::kWriteExclusiveRegistrantsOnly, 0xB0));
  EXPECT_FALSE(pr_.Allows(kA, AccessKind::kWrite));
}

TEST_F(PersistentReservationsTest, RegisterAndMoveFailures) {
  std::vector<std::byte> to_b2 = MoveList(kKeyA, 0xB2, kB2);
  std::vector<std::byte> foreign_protocol = to_b2;
  foreign_protocol[24] = std::byte{0x00};  // Fibre Channel
  std::vector<std::byte> announced_too_long = to_b2;
  announced_too_long[23] = std::byte{static_cast<unsigned char>(to_b2.size() - 24 + 4)};
  // 20 bytes of TRANSPORTID PARAMETER DATA LENGTH cannot hold a TransportID that says it is 32 long.
  std::vector<std::byte> cut_transport_id =
      Concat(Bytes(MoveHeader(kKeyA, 0xB2, 2, 20)), std::vector<std::byte>(to_b2.begin() + 24, to_b2.begin() + 44));
  struct Row {
    const char* name;
    PrType type;
    NexusId issuer;
    std::vector<std::byte> list;
    std::string result;
  };
  const Row rows[] = {
      {"unregistered issuer", PrType::kExclusiveAccess, kA2, MoveList(0, 0xB2, kB2), "CONFLICT"},
      {"wrong key", PrType::kExclusiveAccess, kA, MoveList(kKeyB, 0xB2, kB2), "CONFLICT"},
      {"not the holder", PrType::kExclusiveAccess, kC, MoveList(kKeyC, 0xB2, kB2), "CONFLICT"},
      {"all-registrants type", PrType::kWriteExclusiveAllRegistrants, kA, to_b2, "CONFLICT"},
      {"new key zero", PrType::kExclusiveAccess, kA, MoveList(kKeyA, 0, kB2), Check(asc::kInvalidFieldInParameterList)},
      {"to the issuing initiator, other port", PrType::kExclusiveAccess, kA, MoveList(kKeyA, 0xA2, kA2),
       Check(asc::kInvalidFieldInParameterList)},
      {"to relative port 0", PrType::kExclusiveAccess, kA, MoveList(kKeyA, 0xB2, {kB.initiator_port, 0}),
       Check(asc::kInvalidFieldInParameterList)},
      {"not an iSCSI TransportID", PrType::kExclusiveAccess, kA, foreign_protocol,
       Check(asc::kInvalidFieldInParameterList)},
      {"TransportID length past the list", PrType::kExclusiveAccess, kA, announced_too_long,
       Check(asc::kParameterListLengthError)},
      {"TransportID cut by its length", PrType::kExclusiveAccess, kA, cut_transport_id,
       Check(asc::kParameterListLengthError)},
      {"list shorter than its header", PrType::kExclusiveAccess, kA,
       std::vector<std::byte>(to_b2.begin(), to_b2.begin() + 20), Check(asc::kParameterListLengthError)},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    SetUpThreeHosts(row.type);
    PrAnswer answer = Move(row.issuer, row.list);
    EXPECT_EQ(Result(answer), row.result);
    EXPECT_FALSE(pr_.IsRegistered(kB2));
    EXPECT_EQ(pr_.generation(), 3u);
  }
  // Without a reservation there is nothing to move: the standard says INVALID FIELD IN CDB.
  pr_ = PersistentReservations{};
  ASSERT_EQ(Result(Register(kA, kKeyA)), "GOOD");
  EXPECT_EQ(Result(Move(kA, to_b2)), Check(asc::kInvalidFieldInCdb));
  // APTPL that the device cannot honour.
  pr_ = PersistentReservations(PrCapabilities{.all_target_ports = true, .persist_through_power_loss = false});
  ASSERT_EQ(Result(Register(kA, kKeyA)), "GOOD");
  ASSERT_EQ(Result(Reserve(kA, kKeyA, PrType::kExclusiveAccess)), "GOOD");
  std::vector<std::byte> with_aptpl = to_b2;
  with_aptpl[17] = std::byte{0x01};
  EXPECT_EQ(Result(Move(kA, with_aptpl)), Check(asc::kInvalidFieldInParameterList));
}

// --- Malformed commands.

TEST_F(PersistentReservationsTest, MalformedPersistentReserveOut) {
  auto list = [](std::size_t size, std::uint8_t flags = 0) {
    std::vector<std::byte> bytes(size);
    if (size > 20) bytes[20] = static_cast<std::byte>(flags);
    return bytes;
  };
  auto cdb = [](PrOutServiceAction action, std::uint32_t length, std::size_t cdb_size = 10) {
    std::array<std::uint8_t, 10> bytes = CdbBytes(spec::PersistentReserveOutCdb::Make(action, length));
    return std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cdb_size));
  };
  auto with_byte = [](std::vector<std::uint8_t> bytes, std::size_t at, std::uint8_t value) {
    bytes[at] = value;
    return bytes;
  };
  const auto kRegister = PrOutServiceAction::kRegister;
  struct Row {
    const char* name;
    std::vector<std::uint8_t> cdb;
    std::vector<std::byte> parameters;
    std::string result;
  };
  const Row rows[] = {
      {"list length 0", cdb(kRegister, 0), list(0), Check(asc::kParameterListLengthError)},
      {"list length 23", cdb(kRegister, 23), list(23), Check(asc::kParameterListLengthError)},
      {"list length 25", cdb(kRegister, 25), list(25), Check(asc::kParameterListLengthError)},
      {"list length 28 without SPEC_I_PT", cdb(kRegister, 28), list(28), Check(asc::kParameterListLengthError)},
      {"fewer bytes than the CDB declares", cdb(kRegister, 24), list(16), Check(asc::kParameterListLengthError)},
      {"SPEC_I_PT", cdb(kRegister, 28), list(28, 0x08), Check(asc::kInvalidFieldInParameterList)},
      {"SPEC_I_PT in 24 bytes", cdb(kRegister, 24), list(24, 0x08), Check(asc::kInvalidFieldInParameterList)},
      {"CDB of 9 bytes", cdb(kRegister, 24, 9), list(24), Check(asc::kInvalidFieldInCdb)},
      {"REPLACE LOST RESERVATION", with_byte(cdb(kRegister, 24), 1, 0x08), list(24), Check(asc::kInvalidFieldInCdb)},
      {"service action 1Fh", with_byte(cdb(kRegister, 24), 1, 0x1F), list(24), Check(asc::kInvalidFieldInCdb)},
      {"not PERSISTENT RESERVE OUT", with_byte(cdb(kRegister, 24), 0, 0x5E), list(24),
       Check(asc::kInvalidCommandOperationCode)},
      {"REGISTER AND MOVE list of 16", cdb(PrOutServiceAction::kRegisterAndMove, 16), list(16),
       Check(asc::kParameterListLengthError)},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    // Exactly-sized spans: ASan catches any read past them.
    PrAnswer answer = pr_.Out(kA, row.cdb, row.parameters);
    EXPECT_EQ(Result(answer), row.result);
    EXPECT_FALSE(pr_.IsRegistered(kA));
    EXPECT_EQ(pr_.generation(), 0u);
  }
  // Bytes past the declared list are not looked at.
  std::vector<std::byte> longer = Concat(Bytes(spec::PrOutParameterList::Make(0, kKeyA)), list(8, 0xFF));
  EXPECT_EQ(Result(pr_.Out(kA, cdb(kRegister, 24), longer)), "GOOD");
}

TEST_F(PersistentReservationsTest, MalformedPersistentReserveIn) {
  std::vector<std::byte> out(64);
  std::array<std::uint8_t, 10> cdb = CdbBytes(spec::PersistentReserveInCdb::Make(PrInServiceAction::kReadKeys, 64));
  EXPECT_EQ(Result(pr_.In(kA, std::span(cdb).first(9), out)), Check(asc::kInvalidFieldInCdb));
  cdb[1] = 0x04;
  EXPECT_EQ(Result(pr_.In(kA, cdb, out)), Check(asc::kInvalidFieldInCdb));
  cdb[1] = 0x00;
  cdb[0] = 0x5F;
  EXPECT_EQ(Result(pr_.In(kA, cdb, out)), Check(asc::kInvalidCommandOperationCode));
}

// --- PERSISTENT RESERVE IN data, byte for byte.

TEST_F(PersistentReservationsTest, ReadKeysAndReadReservationBytes) {
  EXPECT_EQ(In(PrInServiceAction::kReadKeys), Raw({0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(In(PrInServiceAction::kReadReservation), Raw({0, 0, 0, 0, 0, 0, 0, 0}));
  ASSERT_EQ(Result(Register(kA, 0x0102030405060708)), "GOOD");
  ASSERT_EQ(Result(Register(kB, 0x1112131415161718)), "GOOD");
  ASSERT_EQ(Result(Reserve(kB, 0x1112131415161718, PrType::kExclusiveAccessRegistrantsOnly)), "GOOD");
  EXPECT_EQ(In(PrInServiceAction::kReadKeys), Raw({0, 0, 0, 2, 0, 0, 0, 16,  //
                                                   1, 2, 3, 4, 5, 6, 7, 8,   //
                                                   0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18}));
  EXPECT_EQ(In(PrInServiceAction::kReadReservation), Raw({0, 0, 0, 2, 0, 0, 0, 16,                              //
                                                          0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,  //
                                                          0, 0, 0, 0, 0, 0x06, 0, 0}));
}

TEST_F(PersistentReservationsTest, ReportCapabilitiesBytes) {
  // CRH 0, SIP_C 0, ATP_C 1, PTPL_C 1; TMV 1, ALLOW COMMANDS 0, PTPL_A 0; all six types.
  EXPECT_EQ(In(PrInServiceAction::kReportCapabilities), Raw({0, 8, 0x05, 0x80, 0xEA, 0x01, 0, 0}));
}

TEST_F(PersistentReservationsTest, ReadFullStatusBytes) {
  ASSERT_EQ(Result(Register(kA, kKeyA)), "GOOD");
  ASSERT_EQ(Result(Register(kB, kKeyB, {.all_tg_pt = true})), "GOOD");
  ASSERT_EQ(Result(Reserve(kA, kKeyA, PrType::kWriteExclusiveRegistrantsOnly)), "GOOD");
  std::vector<std::byte> data = In(PrInServiceAction::kReadFullStatus);

  std::vector<std::byte> a_id = spec::IscsiTransportId(kA.initiator_port);
  std::vector<std::byte> b_id = spec::IscsiTransportId(kB.initiator_port);
  spec::PrInHeader header;
  header.prgeneration = 2;
  header.additional_length =
      static_cast<std::uint32_t>(2 * sizeof(spec::PrFullStatusDescriptor) + a_id.size() + b_id.size());
  spec::PrFullStatusDescriptor a;
  a.reservation_key = kKeyA;
  a.set_r_holder(true);
  a.set_type(static_cast<std::uint8_t>(PrType::kWriteExclusiveRegistrantsOnly));
  a.relative_target_port_identifier = 1;
  a.additional_descriptor_length = static_cast<std::uint32_t>(a_id.size());
  spec::PrFullStatusDescriptor b;
  b.reservation_key = kKeyB;
  b.set_all_tg_pt(true);
  b.additional_descriptor_length = static_cast<std::uint32_t>(b_id.size());
  EXPECT_EQ(data, Concat(Concat(Concat(Concat(Bytes(header), Bytes(a)), a_id), Bytes(b)), b_id));

  // The same, as raw bytes at the offsets of §6.15.5.
  ASSERT_EQ(data.size(), 8u + 24 + 32 + 24 + 32);
  EXPECT_EQ(data[7], std::byte{112});        // ADDITIONAL LENGTH
  EXPECT_EQ(data[8 + 7], std::byte{0x01});   // a's key, last byte
  EXPECT_EQ(data[8 + 12], std::byte{0x01});  // R_HOLDER
  EXPECT_EQ(data[8 + 13], std::byte{0x05});  // LU_SCOPE, WR_EX_RO
  EXPECT_EQ(data[8 + 19], std::byte{0x01});  // relative target port 1
  EXPECT_EQ(data[8 + 23], std::byte{32});    // ADDITIONAL DESCRIPTOR LENGTH
  EXPECT_EQ(data[8 + 24], std::byte{0x05});  // iSCSI, format 00b
  EXPECT_EQ(data[8 + 27], std::byte{28});    // TransportID ADDITIONAL LENGTH
  EXPECT_EQ(data[8 + 28], std::byte{'i'});
  EXPECT_EQ(data[64 + 12], std::byte{0x02});  // b: ALL_TG_PT, not a holder
  EXPECT_EQ(data[64 + 13], std::byte{0x00});

  std::optional<spec::PrFullStatus> parsed = spec::ParseReadFullStatus(data);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_TRUE(parsed->complete());
  ASSERT_EQ(parsed->entries.size(), 2u);
  EXPECT_EQ(parsed->entries[0].initiator_port, kA.initiator_port);
  EXPECT_TRUE(parsed->entries[0].holder);
  EXPECT_EQ(parsed->entries[0].type, 5);
  EXPECT_EQ(parsed->entries[1].initiator_port, kB.initiator_port);
  EXPECT_TRUE(parsed->entries[1].all_target_ports);
  EXPECT_FALSE(parsed->entries[1].holder);
}

TEST_F(PersistentReservationsTest, ReadFullStatusMarksEveryAllRegistrantsHolder) {
  SetUpThreeHosts(PrType::kExclusiveAccessAllRegistrants);
  std::optional<spec::PrFullStatus> parsed = spec::ParseReadFullStatus(In(PrInServiceAction::kReadFullStatus));
  ASSERT_TRUE(parsed.has_value());
  ASSERT_EQ(parsed->entries.size(), 3u);
  for (const spec::PrFullStatusEntry& entry : parsed->entries) {
    EXPECT_TRUE(entry.holder);
    EXPECT_EQ(entry.type, 8);
  }
  EXPECT_EQ(parsed->entries[2].relative_target_port, 2);
}

TEST_F(PersistentReservationsTest, ShortAllocationLengthsTruncateButKeepTheFullLengths) {
  SetUpThreeHosts(PrType::kWriteExclusiveRegistrantsOnly);
  for (PrInServiceAction action : {PrInServiceAction::kReadKeys, PrInServiceAction::kReadReservation,
                                   PrInServiceAction::kReportCapabilities, PrInServiceAction::kReadFullStatus}) {
    SCOPED_TRACE(static_cast<int>(action));
    std::vector<std::byte> full = In(action);
    for (std::size_t n = 0; n <= full.size(); ++n) {
      std::vector<std::byte> prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
      // Cut by the buffer, and by the CDB's ALLOCATION LENGTH with a larger buffer.
      EXPECT_EQ(In(action, n), prefix) << n;
      EXPECT_EQ(In(action, 4096, static_cast<std::uint16_t>(n)), prefix) << n;
    }
  }
  // A header-only reply still tells the initiator how much to ask for.
  std::optional<spec::PrKeyList> keys = spec::ParseReadKeys(In(PrInServiceAction::kReadKeys, 12));
  ASSERT_TRUE(keys.has_value());
  EXPECT_EQ(keys->additional_length, 24u);
  EXPECT_THAT(keys->keys, IsEmpty());
  EXPECT_FALSE(keys->complete());
  std::optional<spec::PrFullStatus> status = spec::ParseReadFullStatus(In(PrInServiceAction::kReadFullStatus, 100));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->entries.size(), 1u);
  EXPECT_FALSE(status->complete());
}

// --- ForeignPreempt: the simulated SAN's takeover by another cluster node.

TEST_F(PersistentReservationsTest, ForeignPreemptLeavesTheForeignNexusAloneHoldingTheType) {
  SetUpThreeHosts(PrType::kWriteExclusiveRegistrantsOnly);
  PrAnswer answer = pr_.ForeignPreempt(kForeign, 0xF0F0, static_cast<std::uint8_t>(PrType::kExclusiveAccess));
  EXPECT_EQ(Result(answer), "GOOD");
  EXPECT_THAT(Uas(answer), UnorderedElementsAre("host-a:1 2A/05", "host-b:1 2A/05", "host-c:2 2A/05"));
  EXPECT_THAT(Keys(), ElementsAre(0xF0F0u));
  EXPECT_EQ(Reservation(), ReservationOf(PrType::kExclusiveAccess, 0xF0F0));
  EXPECT_EQ(pr_.generation(), 5u);  // its REGISTER AND IGNORE EXISTING KEY and its PREEMPT
  for (const NexusId& nexus : {kA, kB, kC}) {
    EXPECT_FALSE(pr_.IsRegistered(nexus));
    EXPECT_FALSE(pr_.Allows(nexus, AccessKind::kRead));
  }
  EXPECT_TRUE(pr_.Allows(kForeign, AccessKind::kWrite));
  // Our host's old key is now a conflict; it must register again.
  EXPECT_EQ(Result(Reserve(kA, kKeyA, PrType::kExclusiveAccess)), "CONFLICT");
}

TEST_F(PersistentReservationsTest, ForeignPreemptWhenAlreadyRegisteredOrUnreserved) {
  ASSERT_EQ(Result(Register(kForeign, 0x1)), "GOOD");
  ASSERT_EQ(Result(Register(kA, kKeyA)), "GOOD");
  PrAnswer answer = pr_.ForeignPreempt(kForeign, 0x2, static_cast<std::uint8_t>(PrType::kWriteExclusiveAllRegistrants));
  EXPECT_EQ(Result(answer), "GOOD");
  EXPECT_THAT(Uas(answer), ElementsAre("host-a:1 2A/05"));
  EXPECT_THAT(Keys(), ElementsAre(0x2u));
  EXPECT_EQ(Reservation(), ReservationOf(PrType::kWriteExclusiveAllRegistrants, 0));
  EXPECT_EQ(Result(pr_.ForeignPreempt(kForeign, 0x2, 0x4)), Check(asc::kInvalidFieldInCdb));
  EXPECT_EQ(Result(pr_.ForeignPreempt(kForeign, 0, 0x1)), Check(asc::kInvalidFieldInParameterList));
}

// The iscsi-test-cu "Ownership" scenario that tgt fails (NOTES.md): a registrants-only reservation released by its
// holder raises 2A/04 on the other registrant.
TEST_F(PersistentReservationsTest, TwoInitiatorScenarioFromTheLab) {
  ASSERT_EQ(Result(Register(kA, kKeyA)), "GOOD");
  ASSERT_EQ(Result(Reserve(kA, kKeyA, PrType::kWriteExclusiveRegistrantsOnly)), "GOOD");
  EXPECT_FALSE(pr_.Allows(kB2, AccessKind::kWrite));
  EXPECT_TRUE(pr_.Allows(kB2, AccessKind::kRead));
  ASSERT_EQ(Result(Register(kB2, kKeyB)), "GOOD");
  EXPECT_TRUE(pr_.Allows(kB2, AccessKind::kWrite));
  PrAnswer preempt = Preempt(kB2, kKeyB, kKeyA, PrType::kWriteExclusiveRegistrantsOnly);
  EXPECT_EQ(Result(preempt), "GOOD");
  EXPECT_THAT(Uas(preempt), ElementsAre("host-a:1 2A/05"));
  EXPECT_EQ(Reservation(), ReservationOf(PrType::kWriteExclusiveRegistrantsOnly, kKeyB));
  ASSERT_EQ(Result(Register(kA, kKeyA)), "GOOD");
  PrAnswer release = Release(kB2, kKeyB, PrType::kWriteExclusiveRegistrantsOnly);
  EXPECT_THAT(Uas(release), ElementsAre("host-a:1 2A/04"));
}

}  // namespace
}  // namespace mpath::scsi::fake
