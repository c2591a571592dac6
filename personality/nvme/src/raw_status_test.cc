// The NVMe RawStatus layout byte by byte, OutcomeOf on real CQEs (every status field bit and every CRD value), the
// round trip of every field through Encode/Decode, the descriptions operators read, and ToIoStatus.
#include "mpath/nvme/raw_status.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>

#include "mpath/nvme/classify.h"
#include "mpath/nvme/spec/opcodes.h"
#include "mpath/nvme/spec/status.h"
#include "mpath/proto/wire.h"

namespace mpath::nvme {
namespace {

using namespace std::chrono_literals;
using spec::AdminOpcode;
using spec::Dnr;
using spec::GenericStatus;
using spec::IoOpcode;
using spec::MakeStatus;
using spec::MediaStatus;
using spec::More;
using spec::PathStatus;

constexpr RetryDelayTimes kDelays = {7, 300, 0x1234};

// A status field with the CRD bits (12:11) set as well.
spec::Status WithCrd(spec::Status status, std::uint8_t crd) {
  return spec::Status{wire::SetBits<12, 11>(status.field, std::uint16_t{crd})};
}

// A finished command as a transport hands it back.
NvmeCommand Answered(QueueKind queue, std::uint8_t opcode, spec::Status status,
                     Delivery delivery = Delivery::kDelivered) {
  NvmeCommand c;
  c.queue = queue;
  c.sqe.opc = opcode;
  c.delivery = delivery;
  c.cqe.cid = 0x1234;
  c.cqe.set_status(status);
  return c;
}

std::array<std::uint8_t, 7> Bytes(std::uint8_t b0, std::uint8_t b1, std::uint8_t b2, std::uint8_t b3, std::uint8_t b4,
                                  std::uint8_t b5, std::uint8_t b6) {
  return {b0, b1, b2, b3, b4, b5, b6};
}

TEST(NvmeRawStatusTest, OutcomeReadsEveryFieldOfTheCqe) {
  const NvmeCommand c = Answered(QueueKind::kIo, spec::Raw(IoOpcode::kRead),
                                 WithCrd(MakeStatus(PathStatus::kAsymmetricAccessInaccessible, Dnr::kSet, More::kSet), 2));
  const NvmeOutcome o = OutcomeOf(c, kDelays);
  EXPECT_EQ(o.delivery, Delivery::kDelivered);
  EXPECT_EQ(o.sct, 0x3);
  EXPECT_EQ(o.sc, 0x02);
  EXPECT_TRUE(o.dnr);
  EXPECT_TRUE(o.more);
  EXPECT_EQ(o.crd, 2);
  EXPECT_FALSE(o.admin);
  EXPECT_EQ(o.opcode, 0x02);
  EXPECT_EQ(o.retry_delay_100ms, 300);
  EXPECT_EQ(o.retry_delay(), 30s);
  EXPECT_EQ(o.code(), 0x302);
  EXPECT_FALSE(o.success());
}

TEST(NvmeRawStatusTest, EachCrdSelectsItsCrdt) {
  const std::uint16_t expected[] = {0, 7, 300, 0x1234};
  for (std::uint8_t crd = 0; crd <= 3; ++crd) {
    const NvmeCommand c =
        Answered(QueueKind::kIo, spec::Raw(IoOpcode::kWrite), WithCrd(MakeStatus(GenericStatus::kInternalError), crd));
    const NvmeOutcome o = OutcomeOf(c, kDelays);
    EXPECT_EQ(o.crd, crd);
    EXPECT_EQ(o.retry_delay_100ms, expected[crd]) << int(crd);
    EXPECT_EQ(o.retry_delay(), 100ms * expected[crd]);
    // Without the controller's CRDT values, a CRD selects no delay.
    EXPECT_EQ(OutcomeOf(c).retry_delay_100ms, 0);
  }
}

TEST(NvmeRawStatusTest, AdminCommandsAreMarked) {
  const NvmeOutcome o = OutcomeOf(
      Answered(QueueKind::kAdmin, spec::Raw(AdminOpcode::kGetLogPage), MakeStatus(GenericStatus::kSuccess)));
  EXPECT_TRUE(o.admin);
  EXPECT_EQ(o.opcode, 0x02);
  EXPECT_TRUE(o.success());
  EXPECT_EQ(EncodeRawStatus(o).bytes, Bytes(0x00, 0x00, 0x00, 0x04, 0x02, 0x00, 0x00));
}

TEST(NvmeRawStatusTest, UndeliveredCommandsKeepOnlyDeliveryQueueAndOpcode) {
  // Stale CQE bits from the slot must not leak into what the classifier reads.
  for (Delivery delivery : {Delivery::kLinkDown, Delivery::kTimedOut, Delivery::kAborted}) {
    NvmeCommand c = Answered(QueueKind::kAdmin, spec::Raw(AdminOpcode::kIdentify),
                             WithCrd(MakeStatus(PathStatus::kAsymmetricAccessTransition, Dnr::kSet, More::kSet), 3),
                             delivery);
    const NvmeOutcome o = OutcomeOf(c, kDelays);
    EXPECT_EQ(o, (NvmeOutcome{.delivery = delivery, .admin = true, .opcode = 0x06}));
    EXPECT_FALSE(o.success());
    EXPECT_EQ(EncodeRawStatus(o).bytes, Bytes(static_cast<std::uint8_t>(delivery), 0, 0, 0x04, 0x06, 0, 0));
  }
}

TEST(NvmeRawStatusTest, LayoutByteByByte) {
  // 0x302 with More, as the simulated subsystem (and nvmet) answers a Read in an inaccessible group.
  EXPECT_EQ(EncodeRawStatus(OutcomeOf(Answered(QueueKind::kIo, 0x02, MakeStatus(PathStatus::kAsymmetricAccessInaccessible,
                                                                                 Dnr::kClear, More::kSet))))
                .bytes,
            Bytes(0x00, 0x03, 0x02, 0x02, 0x02, 0x00, 0x00));
  // Reservation conflict with DNR on a Write.
  const RawStatus conflict =
      EncodeRawStatus(OutcomeOf(Answered(QueueKind::kIo, 0x01, MakeStatus(GenericStatus::kReservationConflict, Dnr::kSet))));
  EXPECT_EQ(conflict.family, 0x4E);
  EXPECT_EQ(conflict.bytes, Bytes(0x00, 0x00, 0x83, 0x01, 0x01, 0x00, 0x00));
  // CRD 3 selects CRDT3 = 0x1234: the CRD field in bits 5:4, the delay little-endian in bytes 5 and 6.
  EXPECT_EQ(EncodeRawStatus(OutcomeOf(Answered(QueueKind::kIo, 0x02, WithCrd(MakeStatus(GenericStatus::kNamespaceNotReady), 3)),
                                      kDelays))
                .bytes,
            Bytes(0x00, 0x00, 0x82, 0x30, 0x02, 0x34, 0x12));
  // Every flag at once on the admin queue, media error.
  EXPECT_EQ(EncodeRawStatus(OutcomeOf(Answered(QueueKind::kAdmin, 0x80,
                                               WithCrd(MakeStatus(MediaStatus::kWriteFault, Dnr::kSet, More::kSet), 1)),
                                      kDelays))
                .bytes,
            Bytes(0x00, 0x02, 0x80, 0x17, 0x80, 0x07, 0x00));
}

TEST(NvmeRawStatusTest, DecodeInvertsEncodeForEveryField) {
  int checked = 0;
  for (Delivery delivery : {Delivery::kDelivered, Delivery::kLinkDown, Delivery::kTimedOut, Delivery::kAborted}) {
    for (std::uint8_t sct = 0; sct <= 7; ++sct) {
      for (std::uint8_t sc : {0x00, 0x01, 0x02, 0x7F, 0x80, 0x83, 0xFF}) {
        for (unsigned bits = 0; bits < 8; ++bits) {  // dnr, more, admin
          for (std::uint8_t crd = 0; crd <= 3; ++crd) {
            for (std::uint16_t delay : {0, 1, 0xFF, 0x100, 0xFFFF}) {
              for (std::uint8_t opcode : {0x00, 0x02, 0x7F, 0xFF}) {
                NvmeOutcome o{.delivery = delivery, .admin = (bits & 4) != 0, .opcode = opcode};
                if (delivery == Delivery::kDelivered) {
                  o.sct = sct;
                  o.sc = sc;
                  o.dnr = (bits & 1) != 0;
                  o.more = (bits & 2) != 0;
                  o.crd = crd;
                  o.retry_delay_100ms = delay;
                }
                const RawStatus raw = EncodeRawStatus(o);
                const auto decoded = DecodeRawStatus(raw);
                ASSERT_TRUE(decoded.has_value());
                ASSERT_EQ(*decoded, o) << DescribeRawStatus(raw);
                ++checked;
              }
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(checked, 4 * 8 * 7 * 8 * 4 * 5 * 4);
}

TEST(NvmeRawStatusTest, OtherFamiliesDoNotDecode) {
  EXPECT_FALSE(DecodeRawStatus(RawStatus{}).has_value());
  EXPECT_FALSE(DecodeRawStatus(RawStatus{.family = 0x53, .bytes = {0x00, 0x03, 0x02, 0x02, 0x02, 0, 0}}).has_value());
}

TEST(NvmeRawStatusTest, DescriptionsReadLikeALog) {
  auto describe = [](QueueKind queue, std::uint8_t opcode, spec::Status status,
                     Delivery delivery = Delivery::kDelivered) {
    return DescribeRawStatus(EncodeRawStatus(OutcomeOf(Answered(queue, opcode, status, delivery), kDelays)));
  };
  const std::uint8_t read = spec::Raw(IoOpcode::kRead);
  const std::uint8_t write = spec::Raw(IoOpcode::kWrite);
  EXPECT_EQ(describe(QueueKind::kIo, read, MakeStatus(PathStatus::kAsymmetricAccessInaccessible, Dnr::kClear, More::kSet)),
            "ANA Inaccessible (path 0x302) on Read");
  EXPECT_EQ(describe(QueueKind::kIo, write, MakeStatus(GenericStatus::kReservationConflict, Dnr::kSet)),
            "Reservation Conflict (generic 0x083, DNR) on Write");
  EXPECT_EQ(describe(QueueKind::kIo, spec::Raw(IoOpcode::kFlush), {}, Delivery::kLinkDown), "link down on Flush");
  EXPECT_EQ(describe(QueueKind::kAdmin, spec::Raw(AdminOpcode::kGetLogPage), {}, Delivery::kTimedOut),
            "timed out on Get Log Page (admin)");
  EXPECT_EQ(describe(QueueKind::kIo, spec::Raw(IoOpcode::kDatasetManagement), {}, Delivery::kAborted),
            "aborted by the transport on Dataset Management");
  EXPECT_EQ(describe(QueueKind::kIo, read, WithCrd(MakeStatus(GenericStatus::kInternalError), 2)),
            "Internal Error (generic 0x006, CRD 2: retry after 30000 ms) on Read");
  EXPECT_EQ(describe(QueueKind::kIo, read, MakeStatus(PathStatus::kAsymmetricAccessTransition)),
            "ANA Transition (path 0x303) on Read");
  EXPECT_EQ(describe(QueueKind::kIo, write, MakeStatus(PathStatus::kAsymmetricAccessPersistentLoss)),
            "ANA Persistent Loss (path 0x301) on Write");
  EXPECT_EQ(describe(QueueKind::kIo, read, MakeStatus(MediaStatus::kUnrecoveredReadError, Dnr::kSet)),
            "Unrecovered Read Error (media 0x281, DNR) on Read");
  EXPECT_EQ(describe(QueueKind::kIo, write, spec::Status::Of(0x3, 0xA5)), "status 0x3A5 (path 0x3A5) on Write");
  EXPECT_EQ(describe(QueueKind::kIo, write, spec::Status::Of(0x7, 0xC0)), "Vendor Specific (vendor 0x7C0) on Write");
  EXPECT_EQ(describe(QueueKind::kIo, write, spec::Status::Of(0x5, 0x12)),
            "status 0x512 (reserved SCT 0x512) on Write");
  EXPECT_EQ(describe(QueueKind::kIo, 0x7E, spec::Status::Of(0x1, 0x83)),
            "Command Size Limit Exceeded (command specific 0x183) on opcode 0x7E");
  EXPECT_EQ(describe(QueueKind::kAdmin, spec::Raw(AdminOpcode::kIdentify), {}), "Successful Completion (generic 0x000) "
                                                                                  "on Identify (admin)");
  EXPECT_EQ(describe(QueueKind::kAdmin, 0xEE, MakeStatus(GenericStatus::kInvalidCommandOpcode, Dnr::kSet)),
            "Invalid Command Opcode (generic 0x001, DNR) on opcode 0xEE (admin)");
  // Bytes no encoder writes still describe without crashing.
  EXPECT_EQ(DescribeRawStatus(RawStatus{.family = 0x4E, .bytes = {0x00, 0x09, 0x12, 0x00, 0x02, 0, 0}}),
            "status SCT 0x09 SC 0x12 (reserved SCT) on Read");
  EXPECT_EQ(DescribeRawStatus(RawStatus{.family = 0x4E, .bytes = {0x42, 0x09, 0x12, 0x00, 0x02, 0, 0}}),
            "undelivered (delivery 66) on Read");
  EXPECT_EQ(DescribeRawStatus(RawStatus{.family = 0x53, .bytes = {}}), "not an NVMe status (family 0x53)");
  EXPECT_EQ(DescribeRawStatus(RawStatus{}), "no device status");
}

TEST(NvmeRawStatusTest, StatusNames) {
  EXPECT_EQ(StatusName(0x3, 0x02), "ANA Inaccessible");
  EXPECT_EQ(StatusName(0x3, 0x01), "ANA Persistent Loss");
  EXPECT_EQ(StatusName(0x3, 0x03), "ANA Transition");
  EXPECT_EQ(StatusName(0x3, 0x00), "Internal Path Error");
  EXPECT_EQ(StatusName(0x3, 0x60), "Controller Pathing Error");
  EXPECT_EQ(StatusName(0x3, 0x70), "Host Pathing Error");
  EXPECT_EQ(StatusName(0x3, 0x71), "Command Aborted By Host");
  EXPECT_EQ(StatusName(0x0, 0x83), "Reservation Conflict");
  EXPECT_EQ(StatusName(0x0, 0x22), "Transient Transport Error");
  EXPECT_EQ(StatusName(0x1, 0x81), "Invalid Protection Information");
  EXPECT_EQ(StatusName(0x2, 0x82), "End-to-end Guard Check Error");
  EXPECT_EQ(StatusName(0x3, 0xA5), "status 0x3A5");
  EXPECT_EQ(StatusName(0x0, 0xFF), "status 0x0FF");
  EXPECT_EQ(StatusName(0x6, 0x00), "status 0x600");
  EXPECT_EQ(StatusName(0x0B, 0x01), "status SCT 0x0B SC 0x01");
  // Every code the spec header names has a name of its own.
  for (unsigned sc = 0; sc <= 0xFF; ++sc) {
    for (std::uint8_t sct : {0, 1, 2, 3}) {
      const std::string name = StatusName(sct, static_cast<std::uint8_t>(sc));
      const bool named = spec::StatusName(spec::Status::Of(sct, static_cast<std::uint8_t>(sc))) != "unknown";
      EXPECT_EQ(name.starts_with("status 0x"), !named) << name;
    }
  }
}

TEST(NvmeRawStatusTest, ToIoStatusTakesItsClassFromTheClassifierAndKeepsTheRawStatus) {
  const NvmeCommand c = Answered(QueueKind::kIo, 0x02, MakeStatus(PathStatus::kAsymmetricAccessInaccessible,
                                                                  Dnr::kClear, More::kSet));
  const NvmeOutcome o = OutcomeOf(c);
  const IoStatus status = ToIoStatus(o);
  const NvmeVerdict verdict = JudgeNvme(o);
  EXPECT_EQ(status.code, Errc::kPathError);
  EXPECT_EQ(status.code, verdict.code);
  EXPECT_EQ(status.context, verdict.context);  // the same static string, not a copy
  EXPECT_STREQ(status.context, "ANA inaccessible (path 0x302)");
  EXPECT_EQ(status.raw, EncodeRawStatus(o));

  const IoStatus ok = ToIoStatus(OutcomeOf(Answered(QueueKind::kIo, 0x01, MakeStatus(GenericStatus::kSuccess))));
  EXPECT_TRUE(ok.ok());
  EXPECT_STREQ(ok.context, "");
  // Success still carries its raw status (the opcode), for whoever logs it.
  EXPECT_EQ(ok.raw.family, 0x4E);
  EXPECT_EQ(ok.raw.bytes[4], 0x01);
}

}  // namespace
}  // namespace mpath::nvme
