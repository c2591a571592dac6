// Reservations as the simulated subsystem keeps them (NVM Express Base 2.0c §8.19): the access matrix of all six
// types across hosts, registrations shared by the controllers of one host, every reservation command's error paths,
// Report's bytes, and the fault injections that preempt or remap.
#include <gtest/gtest.h>

#include "test_util.h"

namespace mpath::nvme::fake::testing {
namespace {

using spec::AcquireAction;
using spec::ChangePtpl;
using spec::IgnoreExistingKey;
using spec::RegisterAction;
using spec::ReleaseAction;
using spec::ReservationType;

constexpr std::uint64_t kKeyA = 0xAAAA'0000'0000'0001;
constexpr std::uint64_t kKeyB = 0xBBBB'0000'0000'0002;
constexpr std::uint64_t kKeyC = 0xCCCC'0000'0000'0003;

const Status kOk = MakeStatus(GenericStatus::kSuccess);
const Status kConflict = MakeStatus(GenericStatus::kReservationConflict, Dnr::kSet);
const Status kInvalidField = MakeStatus(GenericStatus::kInvalidFieldInCommand, Dnr::kSet);

class ReservationTest : public SubsystemTest {
 protected:
  static Status Send(NvmeTransport& c, const spec::SubmissionQueueEntry& sqe, std::uint64_t first,
                     std::uint64_t second, std::size_t bytes = 16) {
    Exchange x(QueueKind::kIo, sqe, bytes, DataDirection::kToController);
    wire::Store(x.data, spec::Le64(first));
    if (bytes >= 16) wire::Store(x.data, spec::Le64(second), 8);
    c.Submit(x.command);
    EXPECT_EQ(x.finished, 1);
    return x.status();
  }
  static Status Register(NvmeTransport& c, RegisterAction action, std::uint64_t crkey, std::uint64_t nrkey,
                         IgnoreExistingKey iekey = IgnoreExistingKey::kNo, ChangePtpl cptpl = ChangePtpl::kNoChange) {
    return Send(c, spec::MakeReservationRegister(1, action, iekey, cptpl), crkey, nrkey);
  }
  static Status Acquire(NvmeTransport& c, AcquireAction action, ReservationType type, std::uint64_t crkey,
                        std::uint64_t prkey = 0) {
    return Send(c, spec::MakeReservationAcquire(1, action, type), crkey, prkey);
  }
  static Status Release(NvmeTransport& c, ReleaseAction action, ReservationType type, std::uint64_t crkey) {
    return Send(c, spec::MakeReservationRelease(1, action, type), crkey, 0, 8);
  }
  static spec::ReservationStatus Report(NvmeTransport& c) {
    auto x = Io(c, spec::MakeReservationReport(1, 4096), 4096);
    EXPECT_TRUE(x->status().ok());
    auto status = spec::ParseReservationStatus(x->data, spec::ReportFormat::kExtended);
    EXPECT_TRUE(status);
    return status ? *status : spec::ReservationStatus{};
  }
  static bool CanRead(NvmeTransport& c) {
    const Status s = Read(c, 1, 0, 1, 512)->status();
    EXPECT_TRUE(s.ok() || s == kConflict) << spec::StatusName(s);
    return s.ok();
  }
  // Every command of the write group must agree; returns whether they were allowed.
  static bool CanWrite(NvmeTransport& c) {
    const std::vector<Status> results = {
        Write(c, 1, 0, Pattern(512, 1), 512),
        Io(c, spec::MakeWriteZeroes(1, 1, 1))->status(),
        Io(c, spec::MakeFlush(1))->status(),
        [&] {
          Exchange dsm(QueueKind::kIo, spec::MakeDeallocate(1, 1), 16, DataDirection::kToController);
          spec::DsmRange range{};
          range.nlb = 1;
          range.slba = 2;
          wire::Store(dsm.data, range);
          c.Submit(dsm.command);
          return dsm.status();
        }(),
    };
    for (const Status& s : results) EXPECT_EQ(s, results.front()) << spec::StatusName(s);
    EXPECT_TRUE(results.front().ok() || results.front() == kConflict);
    return results.front().ok();
  }
};

// Base 2.0c §8.19 "Command Behavior in the Presence of a Reservation", written out for a holder A (reached through two
// controllers), a registrant B and a non-registrant C.
TEST_F(ReservationTest, AccessMatrixOfAllSixTypes) {
  struct Row {
    ReservationType type;
    bool b_read, b_write, c_read, c_write;
  };
  const Row rows[] = {
      {ReservationType::kWriteExclusive, true, false, true, false},
      {ReservationType::kExclusiveAccess, false, false, false, false},
      {ReservationType::kWriteExclusiveRegistrantsOnly, true, true, true, false},
      {ReservationType::kExclusiveAccessRegistrantsOnly, true, true, false, false},
      {ReservationType::kWriteExclusiveAllRegistrants, true, true, true, false},
      {ReservationType::kExclusiveAccessAllRegistrants, true, true, false, false},
  };
  NvmeTransport& a1 = Connect(kHostA, 1);
  NvmeTransport& a2 = Connect(kHostA, 2);
  NvmeTransport& b = Connect(kHostB, 1);
  NvmeTransport& c = Connect(kHostC, 2);
  for (const Row& row : rows) {
    SCOPED_TRACE(spec::Name(row.type));
    ASSERT_EQ(Register(a1, RegisterAction::kRegister, 0, kKeyA), kOk);
    ASSERT_EQ(Register(b, RegisterAction::kRegister, 0, kKeyB), kOk);
    ASSERT_EQ(Acquire(a1, AcquireAction::kAcquire, row.type, kKeyA), kOk);
    EXPECT_TRUE(CanRead(a1));
    EXPECT_TRUE(CanWrite(a1));
    EXPECT_TRUE(CanRead(a2)) << "the host's other controller shares its reservation";
    EXPECT_TRUE(CanWrite(a2));
    EXPECT_EQ(CanRead(b), row.b_read);
    EXPECT_EQ(CanWrite(b), row.b_write);
    EXPECT_EQ(CanRead(c), row.c_read);
    EXPECT_EQ(CanWrite(c), row.c_write);
    // Admin commands are never subject to reservations.
    EXPECT_TRUE(Admin(c, spec::MakeIdentify(spec::Cns::kNamespace, 1), 4096)->status().ok());
    ASSERT_EQ(Release(b, ReleaseAction::kClear, ReservationType::kNone, kKeyB), kOk);
    EXPECT_TRUE(CanWrite(c));
  }
}

TEST_F(ReservationTest, ControllersOfOneHostShareTheRegistration) {
  NvmeTransport& a1 = Connect(kHostA, 1);
  NvmeTransport& a2 = Connect(kHostA, 2);
  ASSERT_EQ(Register(a1, RegisterAction::kRegister, 0, kKeyA), kOk);
  // The second controller is already registered, with the same key.
  EXPECT_EQ(Register(a2, RegisterAction::kRegister, 0, kKeyB), kConflict);
  EXPECT_EQ(Register(a2, RegisterAction::kRegister, 0, kKeyA), kOk);
  EXPECT_EQ(Acquire(a2, AcquireAction::kAcquire, ReservationType::kExclusiveAccess, kKeyA), kOk);
  EXPECT_EQ(Acquire(a1, AcquireAction::kAcquire, ReservationType::kExclusiveAccess, kKeyA), kOk);
  const spec::ReservationStatus status = Report(a1);
  EXPECT_EQ(status.regctl, 2);  // one host, two controllers
  ASSERT_EQ(status.registrants.size(), 2u);
  EXPECT_EQ(status.registrants[0].cntlid, 1);
  EXPECT_EQ(status.registrants[1].cntlid, 2);
  for (const auto& r : status.registrants) {
    EXPECT_EQ(r.hostid, kHostA);
    EXPECT_EQ(r.rkey, kKeyA);
    EXPECT_TRUE(r.holds_reservation);
  }
  // Registrations outlive controllers: they belong to the host.
  controllers_.erase(controllers_.begin());
  EXPECT_TRUE(CanWrite(a2));
}

TEST_F(ReservationTest, ReportBytes) {
  NvmeTransport& a = Connect(kHostA, 1);
  NvmeTransport& b = Connect(kHostB, 2);
  ASSERT_EQ(Register(a, RegisterAction::kRegister, 0, kKeyA, IgnoreExistingKey::kNo, ChangePtpl::kSet), kOk);
  ASSERT_EQ(Register(b, RegisterAction::kRegister, 0, kKeyB), kOk);
  ASSERT_EQ(Acquire(a, AcquireAction::kAcquire, ReservationType::kWriteExclusiveRegistrantsOnly, kKeyA), kOk);
  auto x = Io(b, spec::MakeReservationReport(1, 256), 256);
  ASSERT_TRUE(x->status().ok());
  EXPECT_EQ(x->le32(0), 2u);       // GEN: two registrations; acquiring does not count
  EXPECT_EQ(x->byte(4), 0x03);     // RTYPE
  EXPECT_EQ(x->le16(5), 2);        // REGCTL
  EXPECT_EQ(x->byte(9), 0x01);     // PTPLS
  // Extended registered controller data structures from byte 64.
  EXPECT_EQ(x->le16(64), 1);       // CNTLID of A's controller
  EXPECT_EQ(x->byte(66), 0x01);    // RCSTS: holds the reservation
  EXPECT_EQ(x->le64(72), kKeyA);
  for (std::size_t i = 0; i < 16; ++i) EXPECT_EQ(x->byte(80 + i), kHostA[i]);
  EXPECT_EQ(x->le16(128), 2);
  EXPECT_EQ(x->byte(130), 0x00);
  EXPECT_EQ(x->le64(136), kKeyB);
  EXPECT_EQ(x->byte(144), kHostB[0]);
  for (std::size_t i = 192; i < 256; ++i) ASSERT_EQ(x->byte(i), 0);

  // NUMD short of the whole structure: what fits.
  auto cut = Io(b, spec::MakeReservationReport(1, 100), 100);
  ASSERT_TRUE(cut->status().ok());
  auto parsed = spec::ParseReservationStatus(cut->data, spec::ReportFormat::kExtended);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->regctl, 2);
  EXPECT_TRUE(parsed->registrants.empty());
  EXPECT_TRUE(parsed->truncated());

  // Fabrics hosts have 128-bit identifiers: the compact structure cannot describe them.
  EXPECT_EQ(Io(b, spec::MakeReservationReport(1, 256, spec::ReportFormat::kCompact), 256)->status(),
            MakeStatus(GenericStatus::kHostIdentifierInconsistentFormat, Dnr::kSet));
  EXPECT_EQ(Io(b, spec::MakeReservationReport(1, 256), 128)->status(),
            MakeStatus(GenericStatus::kDataSglLengthInvalid, Dnr::kSet));
}

TEST_F(ReservationTest, RegisterErrors) {
  NvmeTransport& a = Connect(kHostA, 1);
  EXPECT_EQ(Register(a, RegisterAction::kUnregister, kKeyA, 0), kConflict) << "not registered";
  EXPECT_EQ(Register(a, RegisterAction::kReplace, kKeyA, kKeyB), kConflict) << "not registered";
  EXPECT_EQ(Register(a, RegisterAction::kReplace, 0, kKeyB, IgnoreExistingKey::kYes), kConflict)
      << "IEKEY does not register";
  ASSERT_EQ(Register(a, RegisterAction::kRegister, 0, kKeyA), kOk);
  EXPECT_EQ(Register(a, RegisterAction::kRegister, 0, kKeyA), kOk) << "same key again";
  EXPECT_EQ(Register(a, RegisterAction::kRegister, 0, kKeyB), kConflict) << "another key";
  EXPECT_EQ(Register(a, RegisterAction::kReplace, kKeyB, kKeyC), kConflict) << "wrong current key";
  EXPECT_EQ(Register(a, RegisterAction::kReplace, kKeyB, kKeyC, IgnoreExistingKey::kYes), kOk);
  EXPECT_EQ(Report(a).registrants.at(0).rkey, kKeyC);
  EXPECT_EQ(Register(a, RegisterAction::kUnregister, kKeyA, 0), kConflict) << "wrong current key";
  EXPECT_EQ(Register(a, static_cast<RegisterAction>(3), kKeyC, 0), kInvalidField);
  EXPECT_EQ(Register(a, RegisterAction::kRegister, 0, kKeyC, IgnoreExistingKey::kNo, static_cast<ChangePtpl>(1)),
            kInvalidField);
  EXPECT_EQ(Register(a, RegisterAction::kRegister, 0, kKeyC, IgnoreExistingKey::kNo, ChangePtpl::kSet), kOk);
  EXPECT_TRUE(Report(a).ptpl);
  EXPECT_EQ(Register(a, RegisterAction::kRegister, 0, kKeyC, IgnoreExistingKey::kNo, ChangePtpl::kClear), kOk);
  EXPECT_FALSE(Report(a).ptpl);
  const std::uint32_t generation = Report(a).generation;
  EXPECT_EQ(Register(a, RegisterAction::kUnregister, 0, 0, IgnoreExistingKey::kYes), kOk);
  const spec::ReservationStatus after = Report(a);
  EXPECT_EQ(after.generation, generation + 1);
  EXPECT_EQ(after.regctl, 0);
}

TEST_F(ReservationTest, AcquireErrors) {
  NvmeTransport& a = Connect(kHostA, 1);
  NvmeTransport& b = Connect(kHostB, 2);
  EXPECT_EQ(Acquire(a, AcquireAction::kAcquire, ReservationType::kWriteExclusive, kKeyA), kConflict) << "not registered";
  ASSERT_EQ(Register(a, RegisterAction::kRegister, 0, kKeyA), kOk);
  ASSERT_EQ(Register(b, RegisterAction::kRegister, 0, kKeyB), kOk);
  EXPECT_EQ(Acquire(a, AcquireAction::kAcquire, ReservationType::kWriteExclusive, kKeyB), kConflict) << "wrong key";
  EXPECT_EQ(Acquire(a, AcquireAction::kAcquire, ReservationType::kNone, kKeyA), kInvalidField);
  EXPECT_EQ(Acquire(a, AcquireAction::kAcquire, static_cast<ReservationType>(7), kKeyA), kInvalidField);
  EXPECT_EQ(Acquire(a, static_cast<AcquireAction>(3), ReservationType::kWriteExclusive, kKeyA), kInvalidField);
  auto with_iekey = spec::MakeReservationAcquire(1, AcquireAction::kAcquire, ReservationType::kWriteExclusive);
  with_iekey.cdw10 = wire::SetBit<3>(with_iekey.cdw10.value(), true);
  EXPECT_EQ(Send(a, with_iekey, kKeyA, 0), kInvalidField);

  ASSERT_EQ(Acquire(a, AcquireAction::kAcquire, ReservationType::kWriteExclusive, kKeyA), kOk);
  EXPECT_EQ(Acquire(a, AcquireAction::kAcquire, ReservationType::kWriteExclusive, kKeyA), kOk) << "already held";
  EXPECT_EQ(Acquire(a, AcquireAction::kAcquire, ReservationType::kExclusiveAccess, kKeyA), kConflict)
      << "held as another type";
  EXPECT_EQ(Acquire(b, AcquireAction::kAcquire, ReservationType::kWriteExclusive, kKeyB), kConflict)
      << "held by another host";
  EXPECT_EQ(Report(a).generation, 2u) << "acquiring does not change the generation";
}

TEST_F(ReservationTest, PreemptTakesTheReservationAndUnregistersTheHolder) {
  NvmeTransport& a = Connect(kHostA, 1);
  NvmeTransport& b = Connect(kHostB, 2);
  NvmeTransport& c = Connect(kHostC, 1);
  ASSERT_EQ(Register(a, RegisterAction::kRegister, 0, kKeyA), kOk);
  ASSERT_EQ(Register(b, RegisterAction::kRegister, 0, kKeyB), kOk);
  ASSERT_EQ(Register(c, RegisterAction::kRegister, 0, kKeyC), kOk);
  ASSERT_EQ(Acquire(a, AcquireAction::kAcquire, ReservationType::kWriteExclusive, kKeyA), kOk);

  EXPECT_EQ(Acquire(b, AcquireAction::kPreempt, ReservationType::kExclusiveAccess, kKeyB, 0), kInvalidField)
      << "PRKEY 0 names nobody under a single-holder type";
  EXPECT_EQ(Acquire(b, AcquireAction::kPreempt, ReservationType::kExclusiveAccess, kKeyB, 0x999), kConflict)
      << "PRKEY matching nobody";
  // PRKEY of a registrant that is not the holder: it loses its registration, the reservation stays.
  ASSERT_EQ(Acquire(b, AcquireAction::kPreempt, ReservationType::kExclusiveAccess, kKeyB, kKeyC), kOk);
  spec::ReservationStatus status = Report(a);
  EXPECT_EQ(status.type(), ReservationType::kWriteExclusive);
  EXPECT_EQ(status.regctl, 2);

  const std::uint32_t generation = status.generation;
  ASSERT_EQ(Acquire(b, AcquireAction::kPreemptAndAbort, ReservationType::kExclusiveAccess, kKeyB, kKeyA), kOk);
  status = Report(b);
  EXPECT_EQ(status.type(), ReservationType::kExclusiveAccess);
  EXPECT_EQ(status.generation, generation + 1);
  ASSERT_EQ(status.registrants.size(), 1u);
  EXPECT_EQ(status.registrants[0].hostid, kHostB);
  EXPECT_TRUE(status.registrants[0].holds_reservation);
  EXPECT_FALSE(CanRead(a)) << "A is no longer registered, and EA admits the holder only";
  EXPECT_EQ(Acquire(a, AcquireAction::kAcquire, ReservationType::kExclusiveAccess, kKeyA), kConflict);

  // The holder preempting itself changes the type.
  ASSERT_EQ(Acquire(b, AcquireAction::kPreempt, ReservationType::kWriteExclusive, kKeyB, kKeyB), kOk);
  EXPECT_EQ(Report(b).type(), ReservationType::kWriteExclusive);
  EXPECT_TRUE(CanRead(a));
}

TEST_F(ReservationTest, PreemptWithoutAReservationOnlyUnregisters) {
  NvmeTransport& a = Connect(kHostA, 1);
  NvmeTransport& b = Connect(kHostB, 2);
  ASSERT_EQ(Register(a, RegisterAction::kRegister, 0, kKeyA), kOk);
  ASSERT_EQ(Register(b, RegisterAction::kRegister, 0, kKeyB), kOk);
  EXPECT_EQ(Acquire(b, AcquireAction::kPreempt, ReservationType::kWriteExclusive, kKeyB, kKeyC), kConflict);
  ASSERT_EQ(Acquire(b, AcquireAction::kPreempt, ReservationType::kWriteExclusive, kKeyB, kKeyA), kOk);
  const spec::ReservationStatus status = Report(b);
  EXPECT_EQ(status.type(), ReservationType::kNone);
  EXPECT_EQ(status.regctl, 1);
}

TEST_F(ReservationTest, AllRegistrantsReservations) {
  NvmeTransport& a = Connect(kHostA, 1);
  NvmeTransport& b = Connect(kHostB, 2);
  NvmeTransport& c = Connect(kHostC, 1);
  ASSERT_EQ(Register(a, RegisterAction::kRegister, 0, kKeyA), kOk);
  ASSERT_EQ(Register(b, RegisterAction::kRegister, 0, kKeyB), kOk);
  ASSERT_EQ(Register(c, RegisterAction::kRegister, 0, kKeyC), kOk);
  ASSERT_EQ(Acquire(a, AcquireAction::kAcquire, ReservationType::kExclusiveAccessAllRegistrants, kKeyA), kOk);
  // Every registrant holds it: B acquiring the same type is a no-op, any of them may release it.
  EXPECT_EQ(Acquire(b, AcquireAction::kAcquire, ReservationType::kExclusiveAccessAllRegistrants, kKeyB), kOk);
  for (const auto& r : Report(a).registrants) EXPECT_TRUE(r.holds_reservation);

  // The original holder leaving does not end it while registrants remain.
  ASSERT_EQ(Register(a, RegisterAction::kUnregister, kKeyA, 0), kOk);
  EXPECT_EQ(Report(b).type(), ReservationType::kExclusiveAccessAllRegistrants);
  EXPECT_FALSE(CanRead(a));

  // PRKEY non-zero under an all-registrants type unregisters that key only.
  ASSERT_EQ(Acquire(b, AcquireAction::kPreempt, ReservationType::kWriteExclusive, kKeyB, kKeyC), kOk);
  EXPECT_EQ(Report(b).type(), ReservationType::kExclusiveAccessAllRegistrants);
  EXPECT_FALSE(CanRead(c));

  // PRKEY 0 takes it over as a new type and unregisters everyone else.
  ASSERT_EQ(Register(a, RegisterAction::kRegister, 0, kKeyA), kOk);
  ASSERT_EQ(Acquire(b, AcquireAction::kPreempt, ReservationType::kWriteExclusive, kKeyB, 0), kOk);
  spec::ReservationStatus status = Report(b);
  EXPECT_EQ(status.type(), ReservationType::kWriteExclusive);
  ASSERT_EQ(status.registrants.size(), 1u);
  EXPECT_EQ(status.registrants[0].hostid, kHostB);

  // Released by a registrant: gone.
  ASSERT_EQ(Register(c, RegisterAction::kRegister, 0, kKeyC), kOk);
  ASSERT_EQ(Acquire(b, AcquireAction::kPreempt, ReservationType::kWriteExclusiveAllRegistrants, kKeyB, kKeyB), kOk);
  ASSERT_EQ(Release(c, ReleaseAction::kRelease, ReservationType::kWriteExclusiveAllRegistrants, kKeyC), kOk);
  EXPECT_EQ(Report(b).type(), ReservationType::kNone);
}

TEST_F(ReservationTest, ReleaseAndClear) {
  NvmeTransport& a = Connect(kHostA, 1);
  NvmeTransport& b = Connect(kHostB, 2);
  NvmeTransport& c = Connect(kHostC, 1);
  EXPECT_EQ(Release(a, ReleaseAction::kRelease, ReservationType::kWriteExclusive, kKeyA), kConflict)
      << "not registered";
  ASSERT_EQ(Register(a, RegisterAction::kRegister, 0, kKeyA), kOk);
  ASSERT_EQ(Register(b, RegisterAction::kRegister, 0, kKeyB), kOk);
  EXPECT_EQ(Release(a, ReleaseAction::kRelease, ReservationType::kWriteExclusive, kKeyA), kOk) << "nothing held";
  ASSERT_EQ(Acquire(a, AcquireAction::kAcquire, ReservationType::kWriteExclusive, kKeyA), kOk);

  EXPECT_EQ(Release(a, ReleaseAction::kRelease, ReservationType::kWriteExclusive, kKeyB), kConflict) << "wrong key";
  EXPECT_EQ(Release(b, ReleaseAction::kRelease, ReservationType::kWriteExclusive, kKeyB), kOk)
      << "a registrant that does not hold it: no effect";
  EXPECT_EQ(Report(a).type(), ReservationType::kWriteExclusive);
  EXPECT_EQ(Release(a, ReleaseAction::kRelease, ReservationType::kExclusiveAccess, kKeyA), kInvalidField)
      << "wrong type";
  EXPECT_EQ(Release(a, static_cast<ReleaseAction>(2), ReservationType::kWriteExclusive, kKeyA), kInvalidField);
  auto with_iekey = spec::MakeReservationRelease(1, ReleaseAction::kRelease, ReservationType::kWriteExclusive);
  with_iekey.cdw10 = wire::SetBit<3>(with_iekey.cdw10.value(), true);
  EXPECT_EQ(Send(a, with_iekey, kKeyA, 0, 8), kInvalidField);
  EXPECT_FALSE(CanWrite(c));
  const std::uint32_t generation = Report(a).generation;
  ASSERT_EQ(Release(a, ReleaseAction::kRelease, ReservationType::kWriteExclusive, kKeyA), kOk);
  EXPECT_EQ(Report(a).type(), ReservationType::kNone);
  EXPECT_EQ(Report(a).generation, generation) << "a release does not change the generation";
  EXPECT_TRUE(CanWrite(c));

  // Unregistering the holder of a single-holder type ends its reservation.
  ASSERT_EQ(Acquire(a, AcquireAction::kAcquire, ReservationType::kExclusiveAccess, kKeyA), kOk);
  ASSERT_EQ(Register(a, RegisterAction::kUnregister, kKeyA, 0), kOk);
  EXPECT_EQ(Report(b).type(), ReservationType::kNone);

  // Clear drops every registration and the reservation.
  ASSERT_EQ(Register(a, RegisterAction::kRegister, 0, kKeyA), kOk);
  ASSERT_EQ(Acquire(a, AcquireAction::kAcquire, ReservationType::kExclusiveAccess, kKeyA), kOk);
  EXPECT_EQ(Release(c, ReleaseAction::kClear, ReservationType::kNone, kKeyC), kConflict) << "C is not registered";
  const std::uint32_t before_clear = Report(a).generation;
  ASSERT_EQ(Release(b, ReleaseAction::kClear, ReservationType::kNone, kKeyB), kOk);
  const spec::ReservationStatus cleared = Report(a);
  EXPECT_EQ(cleared.type(), ReservationType::kNone);
  EXPECT_EQ(cleared.regctl, 0);
  EXPECT_EQ(cleared.generation, before_clear + 1);
  EXPECT_TRUE(CanWrite(c));
}

TEST_F(ReservationTest, ForeignPreemptFencesEveryOtherHost) {
  NvmeTransport& a = Connect(kHostA, 1);
  NvmeTransport& b = Connect(kHostB, 2);
  ASSERT_EQ(Register(a, RegisterAction::kRegister, 0, kKeyA), kOk);
  ASSERT_EQ(Register(b, RegisterAction::kRegister, 0, kKeyB), kOk);
  ASSERT_EQ(Acquire(a, AcquireAction::kAcquire, ReservationType::kWriteExclusiveRegistrantsOnly, kKeyA), kOk);
  const spec::HostId foreign = MakeHostId(0xF0);
  ASSERT_TRUE(subsystem_->ForeignPreempt(1, foreign, 0xF0F0, 2));
  EXPECT_FALSE(CanRead(a));
  EXPECT_FALSE(CanWrite(b));
  EXPECT_EQ(Acquire(a, AcquireAction::kAcquire, ReservationType::kWriteExclusive, kKeyA), kConflict);
  const spec::ReservationStatus status = Report(a);
  EXPECT_EQ(status.type(), ReservationType::kExclusiveAccess);
  ASSERT_EQ(status.registrants.size(), 1u);
  EXPECT_EQ(status.registrants[0].cntlid, spec::kCntlidDynamic) << "no controller of the foreign host is here";
  EXPECT_EQ(status.registrants[0].hostid, foreign);
  EXPECT_EQ(status.registrants[0].rkey, 0xF0F0u);
  EXPECT_TRUE(status.registrants[0].holds_reservation);
  // The fenced host can register again, and preempt back with the foreign key.
  ASSERT_EQ(Register(a, RegisterAction::kRegister, 0, kKeyA), kOk);
  ASSERT_EQ(Acquire(a, AcquireAction::kPreempt, ReservationType::kWriteExclusive, kKeyA, 0xF0F0), kOk);
  EXPECT_TRUE(CanWrite(a));
}

TEST_F(ReservationTest, RemapClearsReservations) {
  NvmeTransport& a = Connect(kHostA, 1);
  NvmeTransport& c = Connect(kHostC, 2);
  ASSERT_EQ(Register(a, RegisterAction::kRegister, 0, kKeyA), kOk);
  ASSERT_EQ(Acquire(a, AcquireAction::kAcquire, ReservationType::kExclusiveAccess, kKeyA), kOk);
  EXPECT_FALSE(CanRead(c));
  ASSERT_TRUE(subsystem_->ChangeIdentity(1, {}, {}, {}));
  EXPECT_TRUE(CanRead(c));
  const spec::ReservationStatus status = Report(a);
  EXPECT_EQ(status.generation, 0u);
  EXPECT_EQ(status.regctl, 0);
}

}  // namespace
}  // namespace mpath::nvme::fake::testing
