// ANA as the simulated subsystem reports and enforces it, and the asynchronous events that announce changes: the ANA
// log (groups, states per port, RGO, offsets, truncation, change counts), the status each state gives I/O,
// transitions timed by a ManualClock, and AEN delivery, masking, limits and abort on a ManualExecutor.
#include <gtest/gtest.h>

#include "test_util.h"

namespace mpath::nvme::fake::testing {
namespace {

using spec::AsyncEvent;
using spec::Cns;

TEST_F(SubsystemTest, AnaLogBytesPerPort) {
  ASSERT_TRUE(subsystem_->SetAnaState(1, 2, AnaState::kNonOptimized));
  ASSERT_TRUE(subsystem_->SetAnaState(2, 1, AnaState::kNonOptimized));
  ASSERT_TRUE(subsystem_->AddNamespace({.nsid = 3, .blocks = 8, .ana_group = 1}));
  NvmeTransport& port1 = Connect(kHostA, 1);
  auto x = AnaLog(port1, 256);
  ASSERT_TRUE(x->status().ok());
  // Header: CHGCNT 2 (one change per port), two groups.
  EXPECT_EQ(x->le64(0), 2u);
  EXPECT_EQ(x->le16(8), 2);
  // Group 1: optimized through port 1, NSIDs 1 and 3.
  EXPECT_EQ(x->le32(16), 1u);
  EXPECT_EQ(x->le32(20), 2u);
  EXPECT_EQ(x->le64(24), 0u);
  EXPECT_EQ(x->byte(32), 0x01);
  EXPECT_EQ(x->le32(48), 1u);
  EXPECT_EQ(x->le32(52), 3u);
  // Group 2: non-optimized through port 1, changed once there, NSID 2.
  EXPECT_EQ(x->le32(56), 2u);
  EXPECT_EQ(x->le32(60), 1u);
  EXPECT_EQ(x->le64(64), 1u);
  EXPECT_EQ(x->byte(72), 0x02);
  EXPECT_EQ(x->le32(88), 2u);
  for (std::size_t i = 92; i < 256; ++i) ASSERT_EQ(x->byte(i), 0) << "past the log, byte " << i;

  // Port 2 sees the mirror image.
  const spec::AnaLog log2 = ParsedAnaLog(Connect(kHostA, 2));
  ASSERT_EQ(log2.groups.size(), 2u);
  EXPECT_EQ(log2.groups[0].state(), AnaState::kNonOptimized);
  EXPECT_EQ(log2.groups[1].state(), AnaState::kOptimized);
  EXPECT_EQ(log2.groups[0].chgcnt, 1u);
  EXPECT_EQ(log2.groups[1].chgcnt, 0u);
}

TEST_F(SubsystemTest, AnaLogReturnGroupsOnly) {
  NvmeTransport& c = Connect(kHostA, 1);
  auto x = AnaLog(c, 128, spec::AnaLogScope::kGroupsOnly);
  ASSERT_TRUE(x->status().ok());
  EXPECT_EQ(x->le16(8), 2);
  EXPECT_EQ(x->le32(16), 1u);
  EXPECT_EQ(x->le32(20), 0u);  // NNSIDS 0 under RGO
  EXPECT_EQ(x->le32(48), 2u);  // the next descriptor follows at once
  EXPECT_EQ(x->le32(52), 0u);
  for (std::size_t i = spec::AnaLogSize(2, 0); i < 128; ++i) ASSERT_EQ(x->byte(i), 0);
}

TEST_F(SubsystemTest, AnaLogOffsetAndTruncation) {
  NvmeTransport& c = Connect(kHostA, 1);
  auto whole = AnaLog(c, 4096);
  const std::size_t size = spec::AnaLogSize(2, 2);

  // Reading from offset 16 starts at the first descriptor.
  auto tail = Admin(c, spec::MakeGetLogPage({.lid = spec::LogPageId::kAsymmetricNamespaceAccess,
                                             .length_bytes = 64, .offset = 16}), 64);
  ASSERT_TRUE(tail->status().ok());
  for (std::size_t i = 0; i < 64; ++i) EXPECT_EQ(tail->data[i], whole->data[16 + i]) << i;

  // NUMD shorter than the log: the first bytes only, the buffer beyond untouched.
  auto cut = Admin(c, spec::MakeGetLogPage({.lid = spec::LogPageId::kAsymmetricNamespaceAccess, .length_bytes = 20}),
                   32);
  ASSERT_TRUE(cut->status().ok());
  for (std::size_t i = 0; i < 20; ++i) EXPECT_EQ(cut->data[i], whole->data[i]);
  for (std::size_t i = 20; i < 32; ++i) EXPECT_EQ(cut->byte(i), 0);
  EXPECT_FALSE(spec::ParseAnaLog(std::span(cut->data).first(20)));  // a cut log does not parse as a whole one

  // Offset at the end reads zeroes; beyond it, or not dword aligned, is an invalid field.
  auto at_end = Admin(c, spec::MakeGetLogPage({.lid = spec::LogPageId::kAsymmetricNamespaceAccess,
                                               .length_bytes = 8, .offset = size}), 8);
  EXPECT_TRUE(at_end->status().ok());
  for (std::uint64_t offset : {std::uint64_t{size + 4}, std::uint64_t{2}}) {
    EXPECT_EQ(Admin(c, spec::MakeGetLogPage({.lid = spec::LogPageId::kAsymmetricNamespaceAccess,
                                             .length_bytes = 8, .offset = offset}), 8)->status(),
              MakeStatus(GenericStatus::kInvalidFieldInCommand, Dnr::kSet))
        << offset;
  }
  // A buffer shorter than NUMD asks for.
  EXPECT_EQ(Admin(c, spec::MakeGetAnaLog(4096), 4092)->status(),
            MakeStatus(GenericStatus::kDataSglLengthInvalid, Dnr::kSet));
}

TEST_F(SubsystemTest, OtherLogPages) {
  NvmeTransport& c = Connect(kHostA, 1);
  auto error_log = Admin(c, spec::MakeGetLogPage({.lid = spec::LogPageId::kErrorInformation, .length_bytes = 64}), 64);
  EXPECT_TRUE(error_log->status().ok());
  EXPECT_EQ(error_log->le64(0), 0u);  // error count 0: no entries
  EXPECT_EQ(Admin(c, spec::MakeGetLogPage({.lid = spec::LogPageId::kSmartHealth, .length_bytes = 512}), 512)->status(),
            MakeStatus(spec::CommandSpecificStatus::kInvalidLogPage, Dnr::kSet));
}

TEST_F(SubsystemTest, EveryStateChangeBumpsChangeCounts) {
  NvmeTransport& c = Connect(kHostA, 1);
  EXPECT_EQ(ParsedAnaLog(c).chgcnt, 0u);
  ASSERT_TRUE(subsystem_->SetAnaState(1, 1, AnaState::kInaccessible));
  ASSERT_TRUE(subsystem_->SetAnaState(1, 1, AnaState::kOptimized));
  ASSERT_TRUE(subsystem_->SetAnaState(2, 2, AnaState::kPersistentLoss));
  const spec::AnaLog log = ParsedAnaLog(c);
  EXPECT_EQ(log.chgcnt, 3u);
  EXPECT_EQ(log.groups[0].chgcnt, 2u);
  EXPECT_EQ(log.groups[1].chgcnt, 0u);  // group 2 changed on port 2 only

  // A transition counts at its start and again at its end.
  ASSERT_TRUE(subsystem_->SetAnaState(1, 2, AnaState::kNonOptimized, std::chrono::seconds(2)));
  EXPECT_EQ(ParsedAnaLog(c).chgcnt, 4u);
  clock_.Advance(std::chrono::seconds(2));
  const spec::AnaLog after = ParsedAnaLog(c);
  EXPECT_EQ(after.chgcnt, 5u);
  EXPECT_EQ(after.groups[1].chgcnt, 2u);
}

TEST_F(SubsystemTest, EachAnaStateGivesItsStatusToIoAndNoneToAdmin) {
  struct Case {
    AnaState state;
    std::optional<Status> io;
  };
  const Case cases[] = {
      {AnaState::kOptimized, std::nullopt},
      {AnaState::kNonOptimized, std::nullopt},
      {AnaState::kInaccessible, MakeStatus(PathStatus::kAsymmetricAccessInaccessible, Dnr::kClear, More::kSet)},
      {AnaState::kPersistentLoss, MakeStatus(PathStatus::kAsymmetricAccessPersistentLoss, Dnr::kClear, More::kSet)},
      {AnaState::kChange, MakeStatus(PathStatus::kAsymmetricAccessTransition, Dnr::kClear, More::kSet)},
  };
  NvmeTransport& port1 = Connect(kHostA, 1);
  NvmeTransport& port2 = Connect(kHostA, 2);
  const auto data = Pattern(512, 3);
  for (const Case& c : cases) {
    SCOPED_TRACE(spec::Name(c.state));
    ASSERT_TRUE(subsystem_->SetAnaState(1, 1, c.state));
    const Status expected = c.io.value_or(MakeStatus(GenericStatus::kSuccess));
    EXPECT_EQ(Read(port1, 1, 0, 1, 512)->status(), expected);
    EXPECT_EQ(Write(port1, 1, 0, data, 512), expected);
    EXPECT_EQ(Io(port1, spec::MakeFlush(1))->status(), expected);
    EXPECT_EQ(Io(port1, spec::MakeWriteZeroes(1, 0, 1))->status(), expected);
    EXPECT_EQ(Io(port1, spec::MakeReservationReport(1, 64), 64)->status(), expected);
    // The same namespace through the other port, and the other group through this one, are untouched.
    EXPECT_TRUE(Read(port2, 1, 0, 1, 512)->status().ok());
    EXPECT_TRUE(Read(port1, 2, 0, 1, 4096)->status().ok());
    // Admin commands ignore ANA.
    EXPECT_TRUE(Admin(port1, spec::MakeIdentify(Cns::kNamespace, 1), 4096)->status().ok());
    EXPECT_TRUE(AnaLog(port1)->status().ok());
  }
  // 0x2302 on the wire, as nvmet answers (NOTES.md §2b).
  ASSERT_TRUE(subsystem_->SetAnaState(1, 1, AnaState::kInaccessible));
  auto x = Read(port1, 1, 0, 1, 512);
  EXPECT_EQ(x->command.cqe.status_and_phase.value() >> 1, 0x2302);
}

TEST_F(SubsystemTest, TransitionEndsWhenTheClockPassesIt) {
  NvmeTransport& c = Connect(kHostA, 1);
  ASSERT_TRUE(subsystem_->SetAnaState(1, 1, AnaState::kInaccessible, std::chrono::seconds(5)));
  EXPECT_EQ(*subsystem_->GetAnaState(1, 1), AnaState::kChange);
  EXPECT_EQ(*subsystem_->GetAnaState(2, 1), AnaState::kOptimized);
  EXPECT_EQ(ParsedAnaLog(c).groups[0].state_raw, 0x0F);
  EXPECT_EQ(Read(c, 1, 0, 1, 512)->status(),
            MakeStatus(PathStatus::kAsymmetricAccessTransition, Dnr::kClear, More::kSet));

  clock_.Advance(std::chrono::milliseconds(4999));
  EXPECT_EQ(*subsystem_->GetAnaState(1, 1), AnaState::kChange);
  clock_.Advance(std::chrono::milliseconds(1));
  EXPECT_EQ(Read(c, 1, 0, 1, 512)->status(),
            MakeStatus(PathStatus::kAsymmetricAccessInaccessible, Dnr::kClear, More::kSet));
  EXPECT_EQ(*subsystem_->GetAnaState(1, 1), AnaState::kInaccessible);
  EXPECT_EQ(ParsedAnaLog(c).groups[0].state_raw, 0x03);

  // A new state in mid-transition replaces the transition.
  ASSERT_TRUE(subsystem_->SetAnaState(1, 1, AnaState::kNonOptimized, std::chrono::seconds(5)));
  ASSERT_TRUE(subsystem_->SetAnaState(1, 1, AnaState::kOptimized));
  clock_.Advance(std::chrono::seconds(10));
  EXPECT_EQ(*subsystem_->GetAnaState(1, 1), AnaState::kOptimized);
}

TEST_F(SubsystemTest, AnaChangeNoticeReachesControllersOnThePortOnly) {
  NvmeTransport& port1 = Connect(kHostA, 1);
  NvmeTransport& port2 = Connect(kHostA, 2);
  auto aer1 = SubmitAer(port1);
  auto aer2 = SubmitAer(port2);
  EXPECT_EQ(aer1->finished, 0);
  ASSERT_TRUE(subsystem_->SetAnaState(1, 1, AnaState::kInaccessible));
  EXPECT_EQ(aer1->finished, 0);  // delivered on the executor, never inside the call that raised it
  executor_.RunUntilIdle();
  ASSERT_EQ(aer1->finished, 1);
  EXPECT_EQ(aer1->command.delivery, Delivery::kDelivered);
  EXPECT_TRUE(aer1->status().ok());
  EXPECT_EQ(aer1->dw0(), 0x000C'0302u);  // notice, ANA change, log page 0Ch
  EXPECT_EQ(aer1->command.cqe.sqid.value(), 0);
  EXPECT_EQ(aer2->finished, 0);
}

TEST_F(SubsystemTest, NoticeRaisedWithoutAnOutstandingRequestWaitsForTheNext) {
  NvmeTransport& c = Connect(kHostA, 1);
  ASSERT_TRUE(subsystem_->SetAnaState(1, 2, AnaState::kNonOptimized));
  auto aer = SubmitAer(c);
  EXPECT_EQ(aer->finished, 0);
  executor_.RunUntilIdle();
  ASSERT_EQ(aer->finished, 1);
  EXPECT_EQ(AsyncEvent::Decode(aer->dw0()), spec::kAnaChangeNotice);
}

TEST_F(SubsystemTest, AnaNoticeStaysMaskedUntilTheLogIsReadWithRaeCleared) {
  NvmeTransport& c = Connect(kHostA, 1);
  auto first = SubmitAer(c);
  ASSERT_TRUE(subsystem_->SetAnaState(1, 1, AnaState::kNonOptimized));
  executor_.RunUntilIdle();
  ASSERT_EQ(first->finished, 1);

  auto second = SubmitAer(c);
  ASSERT_TRUE(subsystem_->SetAnaState(1, 1, AnaState::kInaccessible));
  executor_.RunUntilIdle();
  EXPECT_EQ(second->finished, 0) << "masked: the host has not read the log yet";

  // Reading with RAE set keeps it masked.
  ASSERT_TRUE(AnaLog(c, 4096, spec::AnaLogScope::kGroupsAndNamespaces, spec::RetainAsyncEvent::kRetain)->status().ok());
  ASSERT_TRUE(subsystem_->SetAnaState(1, 1, AnaState::kOptimized));
  executor_.RunUntilIdle();
  EXPECT_EQ(second->finished, 0);

  // Reading with RAE cleared re-arms it: the next change is announced.
  ASSERT_TRUE(AnaLog(c)->status().ok());
  executor_.RunUntilIdle();
  EXPECT_EQ(second->finished, 0);
  ASSERT_TRUE(subsystem_->SetAnaState(1, 1, AnaState::kNonOptimized));
  executor_.RunUntilIdle();
  EXPECT_EQ(second->finished, 1);
}

TEST_F(SubsystemTest, TransitionEndIsAnnouncedWhenObserved) {
  NvmeTransport& c = Connect(kHostA, 1);
  auto start = SubmitAer(c);
  ASSERT_TRUE(subsystem_->SetAnaState(1, 1, AnaState::kInaccessible, std::chrono::seconds(3)));
  executor_.RunUntilIdle();
  ASSERT_EQ(start->finished, 1);
  ASSERT_TRUE(AnaLog(c)->status().ok());  // the host reads the log, which re-arms the notice

  auto end = SubmitAer(c);
  clock_.Advance(std::chrono::seconds(3));
  executor_.RunUntilIdle();
  EXPECT_EQ(end->finished, 0) << "nothing has looked at the subsystem since the deadline";
  EXPECT_EQ(*subsystem_->GetAnaState(2, 1), AnaState::kOptimized);  // any observation ends the transition
  executor_.RunUntilIdle();
  ASSERT_EQ(end->finished, 1);
  EXPECT_EQ(AsyncEvent::Decode(end->dw0()), spec::kAnaChangeNotice);
}

TEST_F(SubsystemTest, DisabledAnaNoticesAreNotSent) {
  NvmeTransport& c = Connect(kHostA, 1);
  ASSERT_TRUE(Admin(c, spec::MakeSetFeatures(spec::FeatureId::kAsynchronousEventConfiguration, 0x100))->status().ok());
  auto aer = SubmitAer(c);
  ASSERT_TRUE(subsystem_->SetAnaState(1, 1, AnaState::kInaccessible));
  executor_.RunUntilIdle();
  EXPECT_EQ(aer->finished, 0);
  // Namespace attribute notices are still on.
  ASSERT_TRUE(subsystem_->ChangeCapacity(1, kBlocks * 2));
  executor_.RunUntilIdle();
  ASSERT_EQ(aer->finished, 1);
  EXPECT_EQ(AsyncEvent::Decode(aer->dw0()), spec::kNamespaceAttributeChangedNotice);
}

TEST_F(SubsystemTest, NamespaceChangesRaiseAttributeNoticesAndFillTheChangedList) {
  NvmeTransport& c = Connect(kHostA, 1);
  auto changed_list = [&](spec::RetainAsyncEvent rae) {
    auto x = Admin(c, spec::MakeGetLogPage({.lid = spec::LogPageId::kChangedNamespaceList, .length_bytes = 4096,
                                            .rae = rae}), 4096);
    EXPECT_TRUE(x->status().ok());
    return spec::ParseChangedNamespaceList(x->data).nsids;
  };
  struct Step {
    const char* what;
    std::function<Result<void>()> change;
    std::uint32_t nsid;
  };
  const Step steps[] = {
      {"add", [&] { return subsystem_->AddNamespace({.nsid = 5, .blocks = 8}); }, 5},
      {"remove", [&] { return subsystem_->RemoveNamespace(5); }, 5},
      {"identity", [&] { return subsystem_->ChangeIdentity(1, {}, {}, {}); }, 1},
      {"capacity", [&] { return subsystem_->ChangeCapacity(2, 16); }, 2},
  };
  for (const Step& step : steps) {
    SCOPED_TRACE(step.what);
    auto aer = SubmitAer(c);
    ASSERT_TRUE(step.change());
    executor_.RunUntilIdle();
    ASSERT_EQ(aer->finished, 1);
    EXPECT_EQ(aer->dw0(), 0x0004'0002u);  // notice, namespace attribute changed, log page 04h
    EXPECT_EQ(changed_list(spec::RetainAsyncEvent::kClear), std::vector<std::uint32_t>{step.nsid});
    EXPECT_TRUE(changed_list(spec::RetainAsyncEvent::kClear).empty()) << "reading the list empties it";
  }
  // Retaining the event keeps it masked even though the list was read.
  auto aer = SubmitAer(c);
  ASSERT_TRUE(subsystem_->ChangeCapacity(2, 32));
  executor_.RunUntilIdle();
  ASSERT_EQ(aer->finished, 1);
  changed_list(spec::RetainAsyncEvent::kRetain);
  auto masked = SubmitAer(c);
  ASSERT_TRUE(subsystem_->ChangeCapacity(2, 64));
  executor_.RunUntilIdle();
  EXPECT_EQ(masked->finished, 0);
  EXPECT_EQ(changed_list(spec::RetainAsyncEvent::kClear), std::vector<std::uint32_t>{2});
}

TEST_F(SubsystemTest, AerLimitIsFour) {
  NvmeTransport& c = Connect(kHostA, 1);
  std::vector<Exchange*> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(SubmitAer(c));
    EXPECT_EQ(held.back()->finished, 0);
  }
  auto fifth = SubmitAer(c);
  ASSERT_EQ(fifth->finished, 1);
  EXPECT_EQ(fifth->status(), MakeStatus(spec::CommandSpecificStatus::kAsynchronousEventRequestLimitExceeded, Dnr::kSet));
  // Events complete the oldest first.
  ASSERT_TRUE(subsystem_->SetAnaState(1, 1, AnaState::kInaccessible));
  ASSERT_TRUE(subsystem_->ChangeCapacity(1, 16));
  executor_.RunUntilIdle();
  EXPECT_EQ(held[0]->finished, 1);
  EXPECT_EQ(held[1]->finished, 1);
  EXPECT_EQ(held[2]->finished, 0);
  EXPECT_EQ(AsyncEvent::Decode(held[1]->dw0()), spec::kNamespaceAttributeChangedNotice);
}

TEST_F(SubsystemTest, AerWithoutExecutorIsRejected) {
  NvmeTransport& c = Connect(kHostA, 1);
  EXPECT_EQ(Admin(c, spec::MakeAsyncEventRequest())->status(),
            MakeStatus(GenericStatus::kInvalidFieldInCommand, Dnr::kSet));
}

TEST_F(SubsystemTest, OutstandingAersAbortWhenTheControllerGoes) {
  auto controller = subsystem_->Connect("nqn.host-a", kHostA, 1);
  ASSERT_TRUE(controller);
  auto a = SubmitAer(**controller);
  auto b = SubmitAer(**controller);
  controller->reset();
  EXPECT_EQ(a->finished, 0);
  executor_.RunUntilIdle();
  ASSERT_EQ(a->finished, 1);
  ASSERT_EQ(b->finished, 1);
  EXPECT_EQ(a->command.delivery, Delivery::kAborted);
  EXPECT_EQ(b->command.delivery, Delivery::kAborted);
  // Nothing is left to notify.
  ASSERT_TRUE(subsystem_->SetAnaState(1, 1, AnaState::kInaccessible));
  executor_.RunUntilIdle();
  EXPECT_EQ(a->finished, 1);
}

}  // namespace
}  // namespace mpath::nvme::fake::testing
