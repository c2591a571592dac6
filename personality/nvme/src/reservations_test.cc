// NvmeReservations against the simulated subsystem, through the simulated SAN's links: every command is a real SQE
// with real data that the subsystem's reservation book judges, and every report is parsed from the bytes it wrote.
// Host A reaches the subsystem through two controllers (CNTLID 1 on port 1, 2 on port 2); host B through one
// (CNTLID 3 on port 1).
#include "mpath/nvme/reservations.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "mpath/nvme/fake/subsystem.h"
#include "mpath/nvme/raw_status.h"
#include "mpath/nvme/spec/nvm_io.h"
#include "mpath/nvme/spec/opcodes.h"
#include "mpath/nvme/spec/status.h"
#include "mpath/sim/san.h"
#include "mpath/testing/manual_executor.h"

namespace mpath::nvme {
namespace {

using spec::GenericStatus;
using spec::IoOpcode;
using spec::ReservationType;

constexpr std::uint32_t kNsid = 1;
constexpr std::uint64_t kKeyA = 0xAAAA'0000'0000'0001;
constexpr std::uint64_t kKeyA2 = 0xAAAA'0000'0000'0002;
constexpr std::uint64_t kKeyB = 0xBBBB'0000'0000'0001;
constexpr std::uint64_t kForeignKey = 0xF0F0'0000'0000'0001;
constexpr std::uint16_t kCntlidA1 = 1;
constexpr std::uint16_t kCntlidA2 = 2;
constexpr std::uint16_t kCntlidB = 3;

// Host identifiers whose halves differ, so that a parser keeping only 64 bits would be caught.
spec::HostId MakeHostId(std::uint8_t tag) {
  spec::HostId id{};
  for (std::size_t i = 0; i < id.size(); ++i) id[i] = static_cast<std::uint8_t>(tag + i);
  return id;
}
const spec::HostId kHostA = MakeHostId(0xA0);
const spec::HostId kHostB = MakeHostId(0xB0);
const spec::HostId kForeignHost = MakeHostId(0xF0);

constexpr std::uint8_t Op(IoOpcode opcode) { return spec::Raw(opcode); }

std::uint64_t Le64At(const std::vector<std::byte>& bytes, std::size_t offset) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    value |= std::uint64_t{static_cast<std::uint8_t>(bytes.at(offset + i))} << (8 * i);
  }
  return value;
}

// One registered controller as a report lists it.
struct Seen {
  std::uint16_t cntlid = 0;
  spec::HostId host{};
  std::uint64_t key = 0;
  bool holder = false;
  friend bool operator==(const Seen&, const Seen&) = default;
  friend std::ostream& operator<<(std::ostream& os, const Seen& s) {
    os << "{cntlid " << s.cntlid << ", host " << std::hex << static_cast<unsigned>(s.host[0]) << ".."
       << static_cast<unsigned>(s.host[15]) << ", key 0x" << s.key << std::dec << (s.holder ? ", holder}" : "}");
    return os;
  }
};

std::vector<Seen> Registrants(const spec::ReservationStatus& status) {
  std::vector<Seen> out;
  for (const spec::Registrant& r : status.registrants) out.push_back({r.cntlid, r.hostid, r.rkey, r.holds_reservation});
  std::sort(out.begin(), out.end(), [](const Seen& a, const Seen& b) { return a.cntlid < b.cntlid; });
  return out;
}

// What reached the subsystem: the SQE, the queue and controller it arrived on, and the data-out as sent.
struct Sent {
  std::uint16_t cntlid = 0;
  spec::SubmissionQueueEntry sqe{};
  DataDirection direction = DataDirection::kNone;
  std::vector<std::byte> data;
  Nanos timeout{0};
};

// Test-only route that alternates between controllers, as a head spreading commands over its paths would.
// Threading: as the controllers it forwards to.
class AlternatingRoute final : public NvmeTransport {
 public:
  explicit AlternatingRoute(std::vector<NvmeTransport*> controllers) : controllers_(std::move(controllers)) {}
  void Submit(NvmeCommand& command) override { controllers_[turn_++ % controllers_.size()]->Submit(command); }

 private:
  std::vector<NvmeTransport*> controllers_;
  std::size_t turn_ = 0;
};

class NvmeReservationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto san = sim::SimSan::Create(sim::SanOptions{.clock = &clock_});
    ASSERT_TRUE(san) << san.error().ToString();
    san_ = std::move(*san);
    auto subsystem = san_->AddNvmeSubsystem("array", fake::SubsystemConfig{});
    ASSERT_TRUE(subsystem) << subsystem.error().ToString();
    subsystem_ = *subsystem;
    ASSERT_TRUE(subsystem_->AddPort(1));
    ASSERT_TRUE(subsystem_->AddPort(2));
    ASSERT_TRUE(subsystem_->AddNamespace(fake::NamespaceConfig{.nsid = kNsid, .blocks = 2048, .ana_group = 1}));
    a1_ = Connect("a1", kHostA, 1);
    a2_ = Connect("a2", kHostA, 2);
    b_ = Connect("b", kHostB, 1);
    ASSERT_NE(a1_, nullptr);
    ASSERT_NE(a2_, nullptr);
    ASSERT_NE(b_, nullptr);
  }

  void TearDown() override { executor_.RunUntilIdle(); }

  NvmeTransport* Connect(const std::string& name, const spec::HostId& host, std::uint16_t port) {
    auto transport = san_->ConnectNvme(sim::NvmePathSpec{.name = name,
                                                         .subsystem = "array",
                                                         .host_nqn = "nqn.2014-08.org.nvmexpress:uuid:" + name,
                                                         .host_id = host,
                                                         .port = port});
    EXPECT_TRUE(transport) << transport.error().ToString();
    return transport ? *transport : nullptr;
  }

  std::unique_ptr<NvmeReservations> Make(NvmeTransport& route, ReservationOptions options = {}) {
    auto created = NvmeReservations::Create(route, kNsid, executor_, options);
    EXPECT_TRUE(created) << created.error().ToString();
    return created ? std::move(*created) : nullptr;
  }

  // Runs one operation to its end: `done` must not run inside the call, and must run exactly once.
  template <typename Start>
  Result<void> Run(Start start) {
    int calls = 0;
    std::optional<Result<void>> out;
    start(ReservationDone([&](Result<void> r) {
      ++calls;
      out.emplace(std::move(r));
    }));
    EXPECT_EQ(calls, 0) << "done ran inside the call";
    executor_.RunUntilIdle();
    EXPECT_EQ(calls, 1);
    if (!out) return MakeError(Errc::kInternal, "done never ran");
    return std::move(*out);
  }

  Result<spec::ReservationStatus> ReportOf(NvmeReservations& r) {
    int calls = 0;
    std::optional<Result<spec::ReservationStatus>> out;
    r.Report([&](Result<spec::ReservationStatus> s) {
      ++calls;
      out.emplace(std::move(s));
    });
    EXPECT_EQ(calls, 0) << "done ran inside the call";
    executor_.RunUntilIdle();
    EXPECT_EQ(calls, 1);
    if (!out) return MakeError(Errc::kInternal, "done never ran");
    return std::move(*out);
  }

  spec::ReservationStatus CheckedReport(NvmeReservations& r) {
    auto status = ReportOf(r);
    EXPECT_TRUE(status) << status.error().ToString();
    return status ? std::move(*status) : spec::ReservationStatus{};
  }

  // A one-block Write or Read from `host`'s controller, answered by the subsystem.
  spec::Status Media(NvmeTransport& controller, bool write) {
    std::vector<std::byte> block(512, std::byte{0x5A});
    NvmeCommand command;
    command.sqe = write ? spec::MakeWrite(kNsid, 0, 1) : spec::MakeRead(kNsid, 0, 1);
    command.queue = QueueKind::kIo;
    command.direction = write ? DataDirection::kToController : DataDirection::kFromController;
    command.data = block;
    command.executor = &executor_;
    bool finished = false;
    command.OnFinish([](NvmeCommand&, void* arg) { *static_cast<bool*>(arg) = true; }, &finished);
    controller.Submit(command);
    executor_.RunUntilIdle();
    EXPECT_TRUE(finished);
    EXPECT_EQ(command.delivery, Delivery::kDelivered);
    return command.cqe.status();
  }
  bool CanWrite(NvmeTransport& controller) {
    const spec::Status s = Media(controller, true);
    EXPECT_TRUE(s.ok() || spec::Is(s, GenericStatus::kReservationConflict)) << spec::StatusName(s);
    return s.ok();
  }
  bool CanRead(NvmeTransport& controller) {
    const spec::Status s = Media(controller, false);
    EXPECT_TRUE(s.ok() || spec::Is(s, GenericStatus::kReservationConflict)) << spec::StatusName(s);
    return s.ok();
  }

  // Records every I/O command of `opcode` the subsystem receives, then answers it as it would.
  void Record(IoOpcode opcode) {
    subsystem_->SetHandler(QueueKind::kIo, Op(opcode), [this](fake::CommandContext& context) {
      const NvmeCommand& c = context.command;
      sent_.push_back(Sent{context.controller_id, c.sqe, c.direction,
                           std::vector<std::byte>(c.data.begin(), c.data.end()), c.timeout});
      context.subsystem.DefaultHandler(context);
    });
  }
  void RecordReservationCommands() {
    for (IoOpcode opcode : {IoOpcode::kReservationRegister, IoOpcode::kReservationAcquire,
                            IoOpcode::kReservationRelease, IoOpcode::kReservationReport}) {
      Record(opcode);
    }
  }

  [[nodiscard]] std::uint64_t Count(IoOpcode opcode) const {
    return subsystem_->CommandCount(QueueKind::kIo, Op(opcode));
  }

  static NvmeOutcome Decoded(const Error& error) {
    const std::optional<NvmeOutcome> outcome = DecodeRawStatus(error.raw());
    EXPECT_TRUE(outcome) << "no NVMe status kept in: " << error.ToString();
    return outcome.value_or(NvmeOutcome{});
  }

  ManualClock clock_;
  testing::ManualExecutor executor_{clock_};
  std::unique_ptr<sim::SimSan> san_;
  fake::Subsystem* subsystem_ = nullptr;
  NvmeTransport* a1_ = nullptr;
  NvmeTransport* a2_ = nullptr;
  NvmeTransport* b_ = nullptr;
  std::vector<Sent> sent_;
};

TEST_F(NvmeReservationsTest, CreateRefusesWhatCannotWork) {
  EXPECT_EQ(NvmeReservations::Create(*a1_, 0, executor_).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(NvmeReservations::Create(*a1_, spec::kBroadcastNsid, executor_).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(NvmeReservations::Create(*a1_, kNsid, executor_, {.command_timeout = Nanos(-1)}).error().code(),
            Errc::kInvalidArgument);
  EXPECT_EQ(NvmeReservations::Create(*a1_, kNsid, executor_, {.initial_report_registrants = 0x10000}).error().code(),
            Errc::kInvalidArgument);
  auto ok = NvmeReservations::Create(*a1_, 7, executor_, {.initial_report_registrants = 0xFFFF});
  ASSERT_TRUE(ok);
  EXPECT_EQ((*ok)->nsid(), 7u);
}

// Each command as it reaches the controller: opcode, NSID, CDW10/11 bit by bit, and the data structure's bytes.
TEST_F(NvmeReservationsTest, CommandsCarryTheSpecifiedFieldsAndData) {
  RecordReservationCommands();
  auto r = Make(*a1_, {.command_timeout = std::chrono::seconds(7), .initial_report_registrants = 3});
  ASSERT_TRUE(Run([&](ReservationDone d) { r->Register(kKeyA, false, true, std::move(d)); }));
  ASSERT_TRUE(Run([&](ReservationDone d) { r->Acquire(kKeyA, ReservationType::kExclusiveAccess, std::move(d)); }));
  ASSERT_TRUE(Run([&](ReservationDone d) {
    r->Preempt(kKeyA, kKeyA, ReservationType::kWriteExclusiveRegistrantsOnly, true, std::move(d));
  }));
  ASSERT_TRUE(Run([&](ReservationDone d) {
    r->Release(kKeyA, ReservationType::kWriteExclusiveRegistrantsOnly, std::move(d));
  }));
  ASSERT_TRUE(Run([&](ReservationDone d) { r->Replace(kKeyA, kKeyA2, std::move(d)); }));
  ASSERT_TRUE(ReportOf(*r));
  ASSERT_TRUE(Run([&](ReservationDone d) { r->Unregister(kKeyA2, std::move(d)); }));
  ASSERT_TRUE(Run([&](ReservationDone d) { r->Register(kKeyB, false, false, std::move(d)); }));
  ASSERT_TRUE(Run([&](ReservationDone d) { r->Clear(kKeyB, std::move(d)); }));
  ASSERT_EQ(sent_.size(), 9u);

  for (const Sent& s : sent_) {
    EXPECT_EQ(s.cntlid, kCntlidA1);
    EXPECT_EQ(s.sqe.nsid.value(), kNsid);
    EXPECT_EQ(s.timeout, std::chrono::seconds(7));
  }
  auto expect_out = [](const Sent& s, std::uint8_t opcode, std::uint32_t cdw10, std::vector<std::uint64_t> keys) {
    SCOPED_TRACE(::testing::Message() << "opcode 0x" << std::hex << unsigned{opcode} << " cdw10 0x" << cdw10);
    EXPECT_EQ(s.sqe.opc, opcode);
    EXPECT_EQ(s.sqe.cdw10.value(), cdw10);
    EXPECT_EQ(s.direction, DataDirection::kToController);
    ASSERT_EQ(s.data.size(), keys.size() * 8);
    for (std::size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(Le64At(s.data, i * 8), keys[i]);
  };
  // Register: RREGA 000b, CPTPL 11b (persist); CRKEY unused, NRKEY.
  expect_out(sent_[0], 0x0D, 0xC000'0000u, {0, kKeyA});
  // Acquire: RACQA 000b, RTYPE 2 in bits 15:8; CRKEY, PRKEY.
  expect_out(sent_[1], 0x11, 0x0200u, {kKeyA, 0});
  // Preempt and Abort: RACQA 010b, RTYPE 3.
  expect_out(sent_[2], 0x11, 0x0302u, {kKeyA, kKeyA});
  // Release: RRELA 000b, RTYPE 3; an 8-byte CRKEY only.
  expect_out(sent_[3], 0x15, 0x0300u, {kKeyA});
  // Replace: RREGA 010b, no CPTPL change.
  expect_out(sent_[4], 0x0D, 0x0002u, {kKeyA, kKeyA2});
  // Report: EDS (CDW11 bit 0), NUMD for a 64-byte header and three 64-byte entries, read into the host.
  EXPECT_EQ(sent_[5].sqe.opc, 0x0E);
  EXPECT_EQ(sent_[5].sqe.cdw10.value(), (64u + 3u * 64u) / 4u - 1u);
  EXPECT_EQ(sent_[5].sqe.cdw11.value(), 1u);
  EXPECT_EQ(sent_[5].direction, DataDirection::kFromController);
  EXPECT_EQ(sent_[5].data.size(), 64u + 3u * 64u);
  // Unregister: RREGA 001b; CRKEY, NRKEY 0.
  expect_out(sent_[6], 0x0D, 0x0001u, {kKeyA2, 0});
  expect_out(sent_[7], 0x0D, 0x0000u, {0, kKeyB});
  // Clear: RRELA 001b, no type.
  expect_out(sent_[8], 0x15, 0x0001u, {kKeyB});
}

// The acceptance sequence, with the report read back after every step.
TEST_F(NvmeReservationsTest, RegisterAcquireReportPreemptReleaseClear) {
  auto a = Make(*a1_);
  auto b = Make(*b_);

  spec::ReservationStatus s = CheckedReport(*a);
  EXPECT_EQ(s.generation, 0u);
  EXPECT_EQ(s.type(), ReservationType::kNone);
  EXPECT_TRUE(Registrants(s).empty());

  // Register: one registrant (host A), listed once per controller of the host.
  ASSERT_TRUE(Run([&](ReservationDone d) { a->Register(kKeyA, false, false, std::move(d)); }));
  s = CheckedReport(*a);
  EXPECT_EQ(s.generation, 1u);
  EXPECT_EQ(s.type(), ReservationType::kNone);
  EXPECT_FALSE(s.ptpl);
  EXPECT_EQ(Registrants(s), (std::vector<Seen>{{kCntlidA1, kHostA, kKeyA, false}, {kCntlidA2, kHostA, kKeyA, false}}));

  ASSERT_TRUE(Run([&](ReservationDone d) { b->Register(kKeyB, false, false, std::move(d)); }));
  s = CheckedReport(*a);
  EXPECT_EQ(s.generation, 2u);
  EXPECT_EQ(s.regctl, 3u);

  // Acquire: host A holds Write Exclusive on both of its controllers; the generation does not move.
  ASSERT_TRUE(Run([&](ReservationDone d) { a->Acquire(kKeyA, ReservationType::kWriteExclusive, std::move(d)); }));
  s = CheckedReport(*a);
  EXPECT_EQ(s.generation, 2u);
  EXPECT_EQ(s.type(), ReservationType::kWriteExclusive);
  EXPECT_EQ(Registrants(s), (std::vector<Seen>{{kCntlidA1, kHostA, kKeyA, true},
                                               {kCntlidA2, kHostA, kKeyA, true},
                                               {kCntlidB, kHostB, kKeyB, false}}));
  EXPECT_TRUE(CanWrite(*a2_));
  EXPECT_FALSE(CanWrite(*b_));
  EXPECT_TRUE(CanRead(*b_));

  // Preempt: A removes B's registration and keeps its reservation.
  ASSERT_TRUE(Run([&](ReservationDone d) {
    a->Preempt(kKeyA, kKeyB, ReservationType::kWriteExclusive, false, std::move(d));
  }));
  s = CheckedReport(*a);
  EXPECT_EQ(s.generation, 3u);
  EXPECT_EQ(s.type(), ReservationType::kWriteExclusive);
  EXPECT_EQ(Registrants(s), (std::vector<Seen>{{kCntlidA1, kHostA, kKeyA, true}, {kCntlidA2, kHostA, kKeyA, true}}));
  auto b_acquire = Run([&](ReservationDone d) { b->Acquire(kKeyB, ReservationType::kWriteExclusive, std::move(d)); });
  ASSERT_FALSE(b_acquire);
  EXPECT_EQ(b_acquire.error().code(), Errc::kReservationConflict) << "B's key is gone";

  // Release: no reservation any more, the registration stays, and the generation does not move.
  ASSERT_TRUE(Run([&](ReservationDone d) { a->Release(kKeyA, ReservationType::kWriteExclusive, std::move(d)); }));
  s = CheckedReport(*a);
  EXPECT_EQ(s.generation, 3u);
  EXPECT_EQ(s.type(), ReservationType::kNone);
  EXPECT_EQ(Registrants(s), (std::vector<Seen>{{kCntlidA1, kHostA, kKeyA, false}, {kCntlidA2, kHostA, kKeyA, false}}));
  EXPECT_TRUE(CanWrite(*b_));

  // Clear: nobody is registered.
  ASSERT_TRUE(Run([&](ReservationDone d) { a->Clear(kKeyA, std::move(d)); }));
  s = CheckedReport(*a);
  EXPECT_EQ(s.generation, 4u);
  EXPECT_EQ(s.type(), ReservationType::kNone);
  EXPECT_EQ(s.regctl, 0u);
  EXPECT_TRUE(s.registrants.empty());
}

TEST_F(NvmeReservationsTest, PreemptTakesTheReservationOfAnotherHolder) {
  RecordReservationCommands();
  auto a = Make(*a1_);
  auto b = Make(*b_);
  ASSERT_TRUE(Run([&](ReservationDone d) { b->Register(kKeyB, false, false, std::move(d)); }));
  ASSERT_TRUE(Run([&](ReservationDone d) { b->Acquire(kKeyB, ReservationType::kExclusiveAccess, std::move(d)); }));
  ASSERT_TRUE(Run([&](ReservationDone d) { a->Register(kKeyA, false, false, std::move(d)); }));
  EXPECT_FALSE(CanRead(*a1_));

  sent_.clear();
  ASSERT_TRUE(Run([&](ReservationDone d) {
    a->Preempt(kKeyA, kKeyB, ReservationType::kWriteExclusive, true, std::move(d));
  }));
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(spec::DecodeReservationAcquire(sent_[0].sqe).action, 0x2) << "Preempt and Abort";

  const spec::ReservationStatus s = CheckedReport(*a);
  EXPECT_EQ(s.generation, 3u);
  EXPECT_EQ(s.type(), ReservationType::kWriteExclusive);
  EXPECT_EQ(Registrants(s), (std::vector<Seen>{{kCntlidA1, kHostA, kKeyA, true}, {kCntlidA2, kHostA, kKeyA, true}}));
  EXPECT_TRUE(CanRead(*a1_));
  EXPECT_TRUE(CanWrite(*a2_));
  EXPECT_FALSE(CanWrite(*b_));
}

// Registrations belong to the host identifier: what one controller registered, the other controller of the host
// uses, and a second registration with another key is the same registrant's conflict.
TEST_F(NvmeReservationsTest, AnotherControllerOfTheHostSeesTheRegistration) {
  auto first = Make(*a1_);
  auto second = Make(*a2_);
  ASSERT_TRUE(Run([&](ReservationDone d) { first->Register(kKeyA, false, false, std::move(d)); }));
  ASSERT_TRUE(Run([&](ReservationDone d) { second->Acquire(kKeyA, ReservationType::kWriteExclusive, std::move(d)); }));

  const spec::ReservationStatus s = CheckedReport(*second);
  EXPECT_EQ(Registrants(s), (std::vector<Seen>{{kCntlidA1, kHostA, kKeyA, true}, {kCntlidA2, kHostA, kKeyA, true}}));
  EXPECT_TRUE(CanWrite(*a1_)) << "the reservation taken through controller 2 covers controller 1";

  auto again = Run([&](ReservationDone d) { second->Register(kKeyA2, false, false, std::move(d)); });
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), Errc::kReservationConflict);
  ASSERT_TRUE(Run([&](ReservationDone d) { second->Register(kKeyA, false, false, std::move(d)); }))
      << "registering the same key again is harmless";
  ASSERT_TRUE(Run([&](ReservationDone d) { first->Release(kKeyA, ReservationType::kWriteExclusive, std::move(d)); }));
  EXPECT_EQ(CheckedReport(*first).type(), ReservationType::kNone);
}

// A route that sends each command down another controller, as the head may: the sequence works all the same.
TEST_F(NvmeReservationsTest, CommandsSpreadOverControllersActForOneRegistrant) {
  RecordReservationCommands();
  AlternatingRoute route({a1_, a2_});
  auto r = Make(route);
  ASSERT_TRUE(Run([&](ReservationDone d) { r->Register(kKeyA, false, false, std::move(d)); }));
  ASSERT_TRUE(Run([&](ReservationDone d) { r->Acquire(kKeyA, ReservationType::kExclusiveAccess, std::move(d)); }));
  const spec::ReservationStatus s = CheckedReport(*r);
  EXPECT_EQ(Registrants(s), (std::vector<Seen>{{kCntlidA1, kHostA, kKeyA, true}, {kCntlidA2, kHostA, kKeyA, true}}));
  ASSERT_TRUE(Run([&](ReservationDone d) { r->Replace(kKeyA, kKeyA2, std::move(d)); }));
  ASSERT_TRUE(Run([&](ReservationDone d) { r->Release(kKeyA2, ReservationType::kExclusiveAccess, std::move(d)); }));
  ASSERT_TRUE(Run([&](ReservationDone d) { r->Unregister(kKeyA2, std::move(d)); }));

  std::vector<std::uint16_t> controllers;
  for (const Sent& sent : sent_) controllers.push_back(sent.cntlid);
  EXPECT_EQ(controllers, (std::vector<std::uint16_t>{1, 2, 1, 2, 1, 2}));
  EXPECT_TRUE(CheckedReport(*r).registrants.empty());
}

TEST_F(NvmeReservationsTest, ForeignHostConflictsUnderWriteExclusive) {
  auto a = Make(*a1_);
  auto b = Make(*b_);
  ASSERT_TRUE(Run([&](ReservationDone d) { a->Register(kKeyA, false, false, std::move(d)); }));
  ASSERT_TRUE(Run([&](ReservationDone d) { a->Acquire(kKeyA, ReservationType::kWriteExclusive, std::move(d)); }));
  EXPECT_FALSE(CanWrite(*b_));
  EXPECT_TRUE(CanRead(*b_));

  auto taken = Run([&](ReservationDone d) { b->Acquire(kKeyB, ReservationType::kWriteExclusive, std::move(d)); });
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().code(), Errc::kReservationConflict);
  EXPECT_EQ(taken.error().message(), "reservation acquire (write exclusive) on nsid 1: Reservation Conflict");
  const NvmeOutcome outcome = Decoded(taken.error());
  EXPECT_EQ(outcome.delivery, Delivery::kDelivered);
  EXPECT_EQ(outcome.sct, spec::kSctGeneric);
  EXPECT_EQ(outcome.sc, 0x83);
  EXPECT_TRUE(outcome.dnr);
  EXPECT_FALSE(outcome.admin);
  EXPECT_EQ(outcome.opcode, Op(IoOpcode::kReservationAcquire));

  // Registered, B still cannot take what A holds.
  ASSERT_TRUE(Run([&](ReservationDone d) { b->Register(kKeyB, false, false, std::move(d)); }));
  auto still = Run([&](ReservationDone d) { b->Acquire(kKeyB, ReservationType::kWriteExclusive, std::move(d)); });
  ASSERT_FALSE(still);
  EXPECT_EQ(still.error().code(), Errc::kReservationConflict);
  EXPECT_FALSE(CanWrite(*b_));
}

TEST_F(NvmeReservationsTest, ForeignPreemptRemovesOurRegistration) {
  auto a = Make(*a1_);
  ASSERT_TRUE(Run([&](ReservationDone d) { a->Register(kKeyA, false, false, std::move(d)); }));
  ASSERT_TRUE(Run([&](ReservationDone d) { a->Acquire(kKeyA, ReservationType::kWriteExclusive, std::move(d)); }));
  const std::uint32_t before = CheckedReport(*a).generation;

  ASSERT_TRUE(subsystem_->ForeignPreempt(kNsid, kForeignHost, kForeignKey,
                                         static_cast<std::uint8_t>(ReservationType::kExclusiveAccess)));
  const spec::ReservationStatus s = CheckedReport(*a);
  EXPECT_GT(s.generation, before);
  EXPECT_EQ(s.type(), ReservationType::kExclusiveAccess);
  // The foreign host has no controller here: it is listed under the dynamic controller ID.
  EXPECT_EQ(Registrants(s), (std::vector<Seen>{{spec::kCntlidDynamic, kForeignHost, kForeignKey, true}}));

  auto released = Run([&](ReservationDone d) { a->Release(kKeyA, ReservationType::kWriteExclusive, std::move(d)); });
  ASSERT_FALSE(released);
  EXPECT_EQ(released.error().code(), Errc::kReservationConflict);
  EXPECT_EQ(released.error().message(), "reservation release (write exclusive) on nsid 1: Reservation Conflict");
  EXPECT_EQ(Decoded(released.error()).opcode, Op(IoOpcode::kReservationRelease));
  EXPECT_FALSE(CanRead(*a1_));
}

TEST_F(NvmeReservationsTest, ReplaceAndUnregister) {
  auto a = Make(*a1_);
  ASSERT_TRUE(Run([&](ReservationDone d) { a->Register(kKeyA, false, false, std::move(d)); }));
  ASSERT_TRUE(Run([&](ReservationDone d) { a->Replace(kKeyA, kKeyA2, std::move(d)); }));
  spec::ReservationStatus s = CheckedReport(*a);
  EXPECT_EQ(s.generation, 2u);
  EXPECT_EQ(Registrants(s),
            (std::vector<Seen>{{kCntlidA1, kHostA, kKeyA2, false}, {kCntlidA2, kHostA, kKeyA2, false}}));

  auto stale = Run([&](ReservationDone d) { a->Replace(kKeyA, kKeyB, std::move(d)); });
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code(), Errc::kReservationConflict) << "the current key is no longer kKeyA";
  EXPECT_EQ(stale.error().message(), "reservation replace on nsid 1: Reservation Conflict");

  const std::uint64_t registers = Count(IoOpcode::kReservationRegister);
  auto to_zero = Run([&](ReservationDone d) { a->Replace(kKeyA2, 0, std::move(d)); });
  ASSERT_FALSE(to_zero);
  EXPECT_EQ(to_zero.error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(Count(IoOpcode::kReservationRegister), registers) << "nothing was sent";

  auto wrong = Run([&](ReservationDone d) { a->Unregister(kKeyA, std::move(d)); });
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), Errc::kReservationConflict);
  ASSERT_TRUE(Run([&](ReservationDone d) { a->Unregister(kKeyA2, std::move(d)); }));
  s = CheckedReport(*a);
  EXPECT_EQ(s.generation, 3u);
  EXPECT_TRUE(s.registrants.empty());
}

TEST_F(NvmeReservationsTest, KeyZeroIsRefusedWithoutSendingAnything) {
  auto a = Make(*a1_);
  const std::uint64_t registers = Count(IoOpcode::kReservationRegister);
  for (bool ignore_existing : {false, true}) {
    auto refused = Run([&](ReservationDone d) { a->Register(0, ignore_existing, false, std::move(d)); });
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code(), Errc::kInvalidArgument);
    EXPECT_NE(refused.error().message().find("reservation register on nsid 1: key 0"), std::string::npos)
        << refused.error().message();
    EXPECT_EQ(refused.error().raw().family, 0) << "no device status: nothing was sent";
  }
  EXPECT_EQ(Count(IoOpcode::kReservationRegister), registers);
  EXPECT_TRUE(CheckedReport(*a).registrants.empty());
}

// IEKEY: "register this key, whatever is there" takes one command when nothing or the same key is there, and a
// Replace with IEKEY when another key is.
TEST_F(NvmeReservationsTest, RegisterIgnoringTheExistingKey) {
  RecordReservationCommands();
  auto a = Make(*a1_);
  ASSERT_TRUE(Run([&](ReservationDone d) { a->Register(kKeyA, true, false, std::move(d)); }));
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].sqe.cdw10.value(), 0x0008u) << "Register with IEKEY";
  EXPECT_EQ(Registrants(CheckedReport(*a)).front().key, kKeyA);

  auto plain = Run([&](ReservationDone d) { a->Register(kKeyA2, false, false, std::move(d)); });
  ASSERT_FALSE(plain);
  EXPECT_EQ(plain.error().code(), Errc::kReservationConflict);

  sent_.clear();
  ASSERT_TRUE(Run([&](ReservationDone d) { a->Register(kKeyA2, true, true, std::move(d)); }));
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[0].sqe.cdw10.value(), 0xC000'0008u) << "Register with IEKEY and CPTPL";
  EXPECT_EQ(sent_[1].sqe.cdw10.value(), 0xC000'000Au) << "then Replace with IEKEY and CPTPL";
  EXPECT_EQ(Le64At(sent_[1].data, 8), kKeyA2);
  const spec::ReservationStatus s = CheckedReport(*a);
  EXPECT_TRUE(s.ptpl);
  EXPECT_EQ(Registrants(s),
            (std::vector<Seen>{{kCntlidA1, kHostA, kKeyA2, false}, {kCntlidA2, kHostA, kKeyA2, false}}));

  // The same key again: the Register alone succeeds.
  sent_.clear();
  ASSERT_TRUE(Run([&](ReservationDone d) { a->Register(kKeyA2, true, false, std::move(d)); }));
  EXPECT_EQ(std::count_if(sent_.begin(), sent_.end(), [](const Sent& x) { return x.sqe.opc == 0x0D; }), 1);
}

// The second read of a long report is asked for at its whole size, and every registrant arrives.
TEST_F(NvmeReservationsTest, LongReportIsReadAgainWhole) {
  RecordReservationCommands();
  std::vector<spec::HostId> hosts;
  for (std::uint8_t i = 0; i < 5; ++i) {
    hosts.push_back(MakeHostId(static_cast<std::uint8_t>(0x10 + 0x10 * i)));
    NvmeTransport* controller = Connect("foreign" + std::to_string(i), hosts.back(), 2);
    ASSERT_NE(controller, nullptr);
    auto foreign = Make(*controller);
    ASSERT_TRUE(Run([&](ReservationDone d) { foreign->Register(0x1000u + i, false, false, std::move(d)); }));
  }
  auto a = Make(*a1_, {.initial_report_registrants = 2});
  ASSERT_TRUE(Run([&](ReservationDone d) { a->Register(kKeyA, false, false, std::move(d)); }));

  sent_.clear();
  const spec::ReservationStatus s = CheckedReport(*a);
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[0].sqe.cdw10.value(), (64u + 2u * 64u) / 4u - 1u);
  EXPECT_EQ(sent_[1].sqe.cdw10.value(), (64u + 7u * 64u) / 4u - 1u) << "the second read holds all seven";
  EXPECT_EQ(s.regctl, 7u);
  ASSERT_EQ(s.registrants.size(), 7u);
  const std::vector<Seen> seen = Registrants(s);
  EXPECT_EQ(seen[0], (Seen{kCntlidA1, kHostA, kKeyA, false}));
  EXPECT_EQ(seen[1], (Seen{kCntlidA2, kHostA, kKeyA, false}));
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    // CNTLID 4.. in connection order (3 is host B's, not registered).
    EXPECT_EQ(seen.at(i + 2), (Seen{static_cast<std::uint16_t>(4 + i), hosts[i], 0x1000u + i, false})) << i;
  }

  // A report that fits takes one read.
  sent_.clear();
  auto roomy = Make(*a1_);
  EXPECT_EQ(CheckedReport(*roomy).registrants.size(), 7u);
  EXPECT_EQ(sent_.size(), 1u);
}

// A controller whose REGCTL keeps outgrowing the buffer it was asked to fill.
TEST_F(NvmeReservationsTest, ReportThatNeverFitsIsAClearError) {
  subsystem_->SetHandler(QueueKind::kIo, Op(IoOpcode::kReservationReport), [](fake::CommandContext& context) {
    context.subsystem.DefaultHandler(context);
    std::span<std::byte> data = context.command.data;
    const std::size_t fit = (data.size() - 64) / 64;
    const auto claimed = static_cast<std::uint16_t>(fit + 1);
    data[5] = static_cast<std::byte>(claimed & 0xFF);
    data[6] = static_cast<std::byte>(claimed >> 8);
  });
  auto a = Make(*a1_, {.initial_report_registrants = 1});
  const std::uint64_t reports = Count(IoOpcode::kReservationReport);
  auto report = ReportOf(*a);
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code(), Errc::kTargetError);
  EXPECT_NE(report.error().message().find("reservation report on nsid 1: REGCTL says"), std::string::npos)
      << report.error().message();
  EXPECT_EQ(Count(IoOpcode::kReservationReport) - reports, 4u) << "bounded re-reads";
  EXPECT_EQ(Decoded(report.error()).opcode, Op(IoOpcode::kReservationReport));
}

TEST_F(NvmeReservationsTest, ReportWithAnUndefinedTypeIsAClearError) {
  subsystem_->SetHandler(QueueKind::kIo, Op(IoOpcode::kReservationReport), [](fake::CommandContext& context) {
    context.subsystem.DefaultHandler(context);
    context.command.data[4] = std::byte{0x09};  // RTYPE
  });
  auto a = Make(*a1_);
  auto report = ReportOf(*a);
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code(), Errc::kTargetError);
  EXPECT_EQ(report.error().message(), "reservation report on nsid 1: reservation type 0x09 is not defined");
}

TEST_F(NvmeReservationsTest, RefusedCommandsKeepTheirStatus) {
  auto a = Make(*a1_);
  // A controller without reservations: Invalid Command Opcode.
  subsystem_->SetHandler(QueueKind::kIo, Op(IoOpcode::kReservationAcquire), [](fake::CommandContext& context) {
    context.command.cqe.set_status(spec::MakeStatus(GenericStatus::kInvalidCommandOpcode, spec::Dnr::kSet));
  });
  auto unsupported = Run([&](ReservationDone d) { a->Acquire(kKeyA, ReservationType::kWriteExclusive, std::move(d)); });
  ASSERT_FALSE(unsupported);
  EXPECT_EQ(unsupported.error().code(), Errc::kUnsupported);
  EXPECT_EQ(unsupported.error().message(), "reservation acquire (write exclusive) on nsid 1: Invalid Command Opcode");
  EXPECT_EQ(Decoded(unsupported.error()).sc, 0x01);

  // Any other error status: the target refused it.
  subsystem_->SetHandler(QueueKind::kIo, Op(IoOpcode::kReservationRegister), [](fake::CommandContext& context) {
    context.command.cqe.set_status(spec::MakeStatus(GenericStatus::kInvalidFieldInCommand, spec::Dnr::kSet));
  });
  auto refused = Run([&](ReservationDone d) { a->Register(kKeyA, false, false, std::move(d)); });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::kTargetError);
  EXPECT_EQ(refused.error().message(), "reservation register on nsid 1: Invalid Field in Command");
  const NvmeOutcome outcome = Decoded(refused.error());
  EXPECT_EQ(outcome.sc, 0x02);
  EXPECT_TRUE(outcome.dnr);
  EXPECT_EQ(outcome.opcode, Op(IoOpcode::kReservationRegister));

  // The transport aborted it.
  subsystem_->SetHandler(QueueKind::kIo, Op(IoOpcode::kReservationRelease),
                         [](fake::CommandContext& context) { context.command.delivery = Delivery::kAborted; });
  auto aborted = Run([&](ReservationDone d) { a->Clear(kKeyA, std::move(d)); });
  ASSERT_FALSE(aborted);
  EXPECT_EQ(aborted.error().code(), Errc::kAborted);
  EXPECT_EQ(Decoded(aborted.error()).delivery, Delivery::kAborted);
}

// An ANA status refuses the command because of the path it came through: another path may do.
TEST_F(NvmeReservationsTest, PathRelatedStatusIsAPathError) {
  ASSERT_TRUE(subsystem_->SetAnaState(1, 1, fake::AnaState::kInaccessible));
  auto through_port1 = Make(*a1_);
  auto refused = Run([&](ReservationDone d) { through_port1->Register(kKeyA, false, false, std::move(d)); });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), Errc::kPathError);
  EXPECT_EQ(refused.error().message(), "reservation register on nsid 1: ANA Inaccessible");
  const NvmeOutcome outcome = Decoded(refused.error());
  EXPECT_EQ(outcome.sct, spec::kSctPathRelated);
  EXPECT_EQ(outcome.sc, 0x02);

  auto through_port2 = Make(*a2_);
  ASSERT_TRUE(Run([&](ReservationDone d) { through_port2->Register(kKeyA, false, false, std::move(d)); }));
}

TEST_F(NvmeReservationsTest, LinkDownIsAPathError) {
  auto faults = san_->Faults("a1");
  ASSERT_TRUE(faults);
  (*faults)->SetLinkDown(true);
  auto a = Make(*a1_);
  const std::uint64_t registers = Count(IoOpcode::kReservationRegister);
  auto down = Run([&](ReservationDone d) { a->Register(kKeyA, false, false, std::move(d)); });
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().code(), Errc::kPathError);
  EXPECT_EQ(down.error().message(), "reservation register on nsid 1: link down");
  const NvmeOutcome outcome = Decoded(down.error());
  EXPECT_EQ(outcome.delivery, Delivery::kLinkDown);
  EXPECT_EQ(outcome.opcode, Op(IoOpcode::kReservationRegister));
  EXPECT_EQ(Count(IoOpcode::kReservationRegister), registers) << "the controller never saw it";

  auto report = ReportOf(*a);
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code(), Errc::kPathError);

  (*faults)->SetLinkDown(false);
  ASSERT_TRUE(Run([&](ReservationDone d) { a->Register(kKeyA, false, false, std::move(d)); }));
}

TEST_F(NvmeReservationsTest, HungCommandTimesOutAtTheCommandTimeout) {
  auto faults = san_->Faults("a1");
  ASSERT_TRUE(faults);
  (*faults)->SetHang(true);
  auto a = Make(*a1_, {.command_timeout = std::chrono::seconds(5)});
  std::optional<Result<spec::ReservationStatus>> out;
  a->Report([&](Result<spec::ReservationStatus> s) { out.emplace(std::move(s)); });
  executor_.Advance(std::chrono::seconds(4));
  EXPECT_FALSE(out) << "still waiting before its timeout";
  executor_.Advance(std::chrono::seconds(1));
  ASSERT_TRUE(out);
  ASSERT_FALSE(*out);
  EXPECT_EQ(out->error().code(), Errc::kTimedOut);
  EXPECT_EQ(out->error().message(), "reservation report on nsid 1: timed out");
  EXPECT_EQ(Decoded(out->error()).delivery, Delivery::kTimedOut);
}

// Answers that arrive after the object is gone are dropped, with their callbacks, and nothing is left behind.
TEST_F(NvmeReservationsTest, DestructionWithCommandsInFlightIsHarmless) {
  NvmeCommand* held = nullptr;
  subsystem_->SetHandler(QueueKind::kIo, Op(IoOpcode::kReservationAcquire), [&held](fake::CommandContext& context) {
    held = &context.command;
    context.held = true;
  });
  auto a = Make(*a1_);
  int calls = 0;
  a->Acquire(kKeyA, ReservationType::kWriteExclusive, [&](Result<void>) { ++calls; });  // held by the controller
  a->Register(kKeyA, false, false, [&](Result<void>) { ++calls; });                        // answered, not yet handled
  a->Register(0, false, false, [&](Result<void>) { ++calls; });                            // refused, not yet handled
  ASSERT_NE(held, nullptr);
  a.reset();
  executor_.RunUntilIdle();
  EXPECT_EQ(calls, 0);

  held->cqe.set_status(spec::MakeStatus(GenericStatus::kSuccess));
  held->Finish();
  executor_.RunUntilIdle();
  EXPECT_EQ(calls, 0);
}

// The same held command finished while the object lives: its callback runs once the answer comes.
TEST_F(NvmeReservationsTest, HeldCommandCompletesWhenAnswered) {
  NvmeCommand* held = nullptr;
  subsystem_->SetHandler(QueueKind::kIo, Op(IoOpcode::kReservationRegister), [&held](fake::CommandContext& context) {
    held = &context.command;
    context.held = true;
  });
  auto a = Make(*a1_);
  std::optional<Result<void>> out;
  a->Register(kKeyA, false, false, [&](Result<void> r) { out.emplace(std::move(r)); });
  executor_.RunUntilIdle();
  EXPECT_FALSE(out);
  ASSERT_NE(held, nullptr);
  held->cqe.set_status(spec::MakeStatus(GenericStatus::kReservationConflict, spec::Dnr::kSet));
  held->Finish();
  executor_.RunUntilIdle();
  ASSERT_TRUE(out);
  ASSERT_FALSE(*out);
  EXPECT_EQ(out->error().code(), Errc::kReservationConflict);
}

}  // namespace
}  // namespace mpath::nvme
