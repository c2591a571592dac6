// Conformance of the simulated subsystem's admin side: Identify bytes, features, completion fields, handler overrides
// and the configuration API.
#include <gtest/gtest.h>

#include "test_util.h"

namespace mpath::nvme::fake::testing {
namespace {

using spec::AdminOpcode;
using spec::Cns;
using spec::IoOpcode;

TEST_F(SubsystemTest, IdentifyControllerBytes) {
  NvmeTransport& first = Connect(kHostA, 1);
  NvmeTransport& second = Connect(kHostB, 2);
  auto x = Admin(second, spec::MakeIdentify(Cns::kController), spec::kIdentifyDataSize);
  ASSERT_TRUE(x->status().ok());
  const SubsystemConfig config;
  EXPECT_EQ(x->le16(0), 0);                                        // VID
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(&x->data[4]), 20), "MPATHSIM0001        ");
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(&x->data[24]), 40),
            "mpath simulated NVMe                    ");
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(&x->data[64]), 8), "1.0     ");
  EXPECT_EQ(x->byte(76), 0x0B);                                    // CMIC
  EXPECT_EQ(x->byte(77), 5);                                       // MDTS
  EXPECT_EQ(x->le16(78), 2);                                       // CNTLID: the second connection
  EXPECT_EQ(x->le32(80), 0x0002'0000u);                            // VER 2.0
  EXPECT_EQ(x->le32(92), 0x0000'0900u);                            // OAES: ANA change (11), NS attribute (8)
  EXPECT_EQ(x->le32(96), 0x1u);                                    // CTRATT: 128-bit host identifier
  EXPECT_EQ(x->byte(111), 1);                                      // CNTRLTYPE: I/O controller
  EXPECT_EQ(x->byte(259), 3);                                      // AERL: four outstanding
  EXPECT_EQ(x->byte(261), 0x04);                                   // LPA: extended data
  EXPECT_EQ(x->byte(342), 10);                                     // ANATT
  EXPECT_EQ(x->byte(343), 0x5F);                                   // ANACAP
  EXPECT_EQ(x->le32(344), 128u);                                   // ANAGRPMAX
  EXPECT_EQ(x->le32(348), 128u);                                   // NANAGRPID
  EXPECT_EQ(x->byte(512), 0x66);                                   // SQES
  EXPECT_EQ(x->byte(513), 0x44);                                   // CQES
  EXPECT_EQ(x->le32(516), 1024u);                                  // NN
  EXPECT_EQ(x->le16(520), 0x002C);                                 // ONCS: DSM, Write Zeroes, reservations
  EXPECT_EQ(x->byte(525), 0x07);                                   // VWC
  EXPECT_EQ(x->le32(540), 1024u);                                  // MNAN
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(&x->data[768])), config.nqn);  // SUBNQN, NUL terminated
  EXPECT_EQ(x->byte(768 + config.nqn.size()), 0);
  EXPECT_EQ(x->le32(1792), 4u);                                    // IOCCSZ

  const auto id = x->As<spec::IdentifyController>();
  EXPECT_TRUE(id.ana_reporting());
  EXPECT_EQ(spec::TrimmedText(id.mn), config.model);
  EXPECT_EQ(Admin(first, spec::MakeIdentify(Cns::kController), 4096)->le16(78), 1);
}

TEST_F(SubsystemTest, IdentifyNamespaceBytes) {
  NvmeTransport& c = Connect(kHostA, 1);
  auto x = Admin(c, spec::MakeIdentify(Cns::kNamespace, 1), 4096);
  ASSERT_TRUE(x->status().ok());
  EXPECT_EQ(x->le64(0), kBlocks);    // NSZE
  EXPECT_EQ(x->le64(8), kBlocks);    // NCAP
  EXPECT_EQ(x->le64(16), kBlocks);   // NUSE
  EXPECT_EQ(x->byte(25), 0);         // NLBAF: one format
  EXPECT_EQ(x->byte(26), 0);         // FLBAS: format 0
  EXPECT_EQ(x->byte(30), 1);         // NMIC: shared
  EXPECT_EQ(x->byte(31), 0xFF);      // RESCAP
  EXPECT_EQ(x->byte(33), 0x09);      // DLFEAT
  EXPECT_EQ(x->le64(48), kBlocks * 512);  // NVMCAP
  EXPECT_EQ(x->le32(92), 1u);        // ANAGRPID
  for (std::size_t i = 0; i < 16; ++i) EXPECT_EQ(x->byte(104 + i), kNguid1[i]);
  for (std::size_t i = 0; i < 8; ++i) EXPECT_EQ(x->byte(120 + i), kEui1[i]);
  EXPECT_EQ(x->byte(130), 9);        // LBAF0 LBADS: 512
  EXPECT_EQ(x->As<spec::IdentifyNamespace>().block_size(), 512u);

  auto ns2 = Admin(c, spec::MakeIdentify(Cns::kNamespace, 2), 4096);
  EXPECT_EQ(ns2->byte(130), 12);
  EXPECT_EQ(ns2->le32(92), 2u);
  for (std::size_t i = 104; i < 128; ++i) EXPECT_EQ(ns2->byte(i), 0) << "unset identifiers stay zero, byte " << i;
}

TEST_F(SubsystemTest, IdentifyNamespaceNsidRules) {
  NvmeTransport& c = Connect(kHostA, 1);
  // A valid NSID with no namespace behind it is inactive: success, all zeroes.
  auto inactive = Admin(c, spec::MakeIdentify(Cns::kNamespace, 3), 4096);
  EXPECT_TRUE(inactive->status().ok());
  for (std::byte b : inactive->data) ASSERT_EQ(b, std::byte{0});
  // NSID 0, one above NN, and the broadcast NSID without namespace management: Invalid Namespace or Format.
  for (std::uint32_t nsid : {0u, 1025u, spec::kBroadcastNsid}) {
    EXPECT_EQ(Admin(c, spec::MakeIdentify(Cns::kNamespace, nsid), 4096)->status(),
              MakeStatus(GenericStatus::kInvalidNamespaceOrFormat, Dnr::kSet))
        << nsid;
  }
}

TEST_F(SubsystemTest, IdentifyDescriptorListReportsOnlySetIdentifiers) {
  NvmeTransport& c = Connect(kHostA, 1);
  auto x = Admin(c, spec::MakeIdentify(Cns::kNamespaceIdentificationDescriptors, 1), 4096);
  ASSERT_TRUE(x->status().ok());
  // EUI-64, NGUID, UUID, CSI, then a zero NIDL.
  EXPECT_EQ(x->byte(0), 1);
  EXPECT_EQ(x->byte(1), 8);
  EXPECT_EQ(x->byte(4), kEui1[0]);
  EXPECT_EQ(x->byte(12), 2);
  EXPECT_EQ(x->byte(13), 16);
  EXPECT_EQ(x->byte(16), kNguid1[0]);
  EXPECT_EQ(x->byte(32), 3);
  EXPECT_EQ(x->byte(33), 16);
  EXPECT_EQ(x->byte(36 + 15), kUuid1[15]);
  EXPECT_EQ(x->byte(52), 4);
  EXPECT_EQ(x->byte(53), 1);
  EXPECT_EQ(x->byte(56), 0);
  EXPECT_EQ(x->byte(57), 0);  // end of list
  auto ids = spec::ParseNamespaceIdDescriptors(x->data);
  ASSERT_TRUE(ids);
  EXPECT_EQ(ids->nguid, kNguid1);
  EXPECT_EQ(ids->eui64, kEui1);
  EXPECT_EQ(ids->uuid, kUuid1);

  auto bare = spec::ParseNamespaceIdDescriptors(
      Admin(c, spec::MakeIdentify(Cns::kNamespaceIdentificationDescriptors, 2), 4096)->data);
  ASSERT_TRUE(bare);
  EXPECT_FALSE(bare->nguid);
  EXPECT_FALSE(bare->eui64);
  EXPECT_FALSE(bare->uuid);
  EXPECT_EQ(bare->csi, 0);

  EXPECT_EQ(Admin(c, spec::MakeIdentify(Cns::kNamespaceIdentificationDescriptors, 3), 4096)->status(),
            MakeStatus(GenericStatus::kInvalidNamespaceOrFormat, Dnr::kSet));
}

TEST_F(SubsystemTest, IdentifyActiveNamespaceList) {
  ASSERT_TRUE(subsystem_->AddNamespace({.nsid = 7, .blocks = 8}));
  NvmeTransport& c = Connect(kHostA, 1);
  auto all = Admin(c, spec::MakeIdentify(Cns::kActiveNamespaceList, 0), 4096);
  ASSERT_TRUE(all->status().ok());
  EXPECT_EQ(spec::ParseNamespaceList(all->data), (std::vector<std::uint32_t>{1, 2, 7}));
  EXPECT_EQ(all->le32(12), 0u);
  EXPECT_EQ(spec::ParseNamespaceList(Admin(c, spec::MakeIdentify(Cns::kActiveNamespaceList, 1), 4096)->data),
            (std::vector<std::uint32_t>{2, 7}));
  EXPECT_TRUE(spec::ParseNamespaceList(Admin(c, spec::MakeIdentify(Cns::kActiveNamespaceList, 7), 4096)->data).empty());
  EXPECT_EQ(Admin(c, spec::MakeIdentify(Cns::kActiveNamespaceList, 0xFFFF'FFFE), 4096)->status(),
            MakeStatus(GenericStatus::kInvalidNamespaceOrFormat, Dnr::kSet));
}

TEST_F(SubsystemTest, IdentifyBadCnsAndShortBuffer) {
  NvmeTransport& c = Connect(kHostA, 1);
  for (auto cns : {Cns::kNvmSetList, Cns::kIoCommandSetController, static_cast<Cns>(0x1F)}) {
    EXPECT_EQ(Admin(c, spec::MakeIdentify(cns), 4096)->status(),
              MakeStatus(GenericStatus::kInvalidFieldInCommand, Dnr::kSet));
  }
  auto shorter = Admin(c, spec::MakeIdentify(Cns::kController), 4095);
  EXPECT_EQ(shorter->status(), MakeStatus(GenericStatus::kDataSglLengthInvalid, Dnr::kSet));
  for (std::byte b : shorter->data) ASSERT_EQ(b, std::byte{0});  // nothing written into a buffer that is too short
}

TEST_F(SubsystemTest, CompletionCarriesCidSqidAndAdvancingSqhd) {
  NvmeTransport& c = Connect(kHostA, 1);
  auto sqe = spec::MakeIdentify(Cns::kController);
  sqe.cid = 0xBEEF;
  auto first = Admin(c, sqe, 4096);
  EXPECT_EQ(first->command.cqe.cid.value(), 0xBEEF);
  EXPECT_EQ(first->command.cqe.sqid.value(), 0);
  EXPECT_EQ(first->command.cqe.sqhd.value(), 1);
  EXPECT_EQ(first->command.cqe.status_and_phase.value() & 1, 0);
  EXPECT_EQ(Admin(c, sqe, 4096)->command.cqe.sqhd.value(), 2);

  auto read = spec::MakeRead(1, 0, 1);
  read.cid = 0x0042;
  auto io = Io(c, read, 512);
  EXPECT_EQ(io->command.cqe.cid.value(), 0x0042);
  EXPECT_EQ(io->command.cqe.sqid.value(), 1);
  EXPECT_EQ(io->command.cqe.sqhd.value(), 1);  // each queue has its own head
  // Failures carry the same header.
  auto bad = spec::MakeRead(9, 0, 1);
  bad.cid = 7;
  auto failed = Io(c, bad, 512);
  EXPECT_EQ(failed->command.cqe.cid.value(), 7);
  EXPECT_EQ(failed->command.cqe.sqhd.value(), 2);
}

TEST_F(SubsystemTest, UnknownAdminOpcode) {
  NvmeTransport& c = Connect(kHostA, 1);
  for (std::uint8_t opcode : {std::uint8_t{0x01}, std::uint8_t{0x7E}, std::uint8_t{0xC0}}) {
    spec::SubmissionQueueEntry sqe{};
    sqe.opc = opcode;
    EXPECT_EQ(Admin(c, sqe)->status(), MakeStatus(GenericStatus::kInvalidCommandOpcode, Dnr::kSet)) << int{opcode};
  }
}

TEST_F(SubsystemTest, KeepAliveAndAbort) {
  NvmeTransport& c = Connect(kHostA, 1);
  spec::SubmissionQueueEntry keep_alive{};
  keep_alive.opc = spec::Raw(AdminOpcode::kKeepAlive);
  EXPECT_TRUE(Admin(c, keep_alive)->status().ok());
  spec::SubmissionQueueEntry abort{};
  abort.opc = spec::Raw(AdminOpcode::kAbort);
  auto x = Admin(c, abort);
  EXPECT_TRUE(x->status().ok());
  EXPECT_EQ(x->dw0(), 1u);  // nothing was aborted
}

TEST_F(SubsystemTest, Features) {
  NvmeTransport& c = Connect(kHostA, 1);
  using spec::FeatureId;
  using spec::FeatureSelect;
  // Asynchronous event configuration: both notices on by default.
  EXPECT_EQ(Admin(c, spec::MakeGetFeatures(FeatureId::kAsynchronousEventConfiguration))->dw0(), 0x900u);
  EXPECT_TRUE(Admin(c, spec::MakeSetFeatures(FeatureId::kAsynchronousEventConfiguration, 0x100))->status().ok());
  EXPECT_EQ(Admin(c, spec::MakeGetFeatures(FeatureId::kAsynchronousEventConfiguration))->dw0(), 0x100u);
  EXPECT_EQ(Admin(c, spec::MakeGetFeatures(FeatureId::kAsynchronousEventConfiguration, FeatureSelect::kDefault))->dw0(),
            0x900u);
  EXPECT_EQ(Admin(c, spec::MakeGetFeatures(FeatureId::kAsynchronousEventConfiguration, FeatureSelect::kSaved))->dw0(),
            0x900u);
  EXPECT_EQ(Admin(c, spec::MakeGetFeatures(FeatureId::kKeepAliveTimer, FeatureSelect::kSupportedCapabilities))->dw0(),
            0x4u);  // changeable, not saveable, not per namespace

  // Number of queues: the grant, whatever was asked; FFFFh is not a request.
  auto queues = Admin(c, spec::MakeSetFeatures(FeatureId::kNumberOfQueues, spec::NumberOfQueues{3, 3}.Encode()));
  EXPECT_TRUE(queues->status().ok());
  EXPECT_EQ(queues->dw0(), 0x003F'003Fu);
  EXPECT_EQ(Admin(c, spec::MakeSetFeatures(FeatureId::kNumberOfQueues, 0xFFFF))->status(),
            MakeStatus(GenericStatus::kInvalidFieldInCommand, Dnr::kSet));
  EXPECT_EQ(Admin(c, spec::MakeGetFeatures(FeatureId::kNumberOfQueues))->dw0(), 0x003F'003Fu);

  // Keep alive timeout is kept per controller.
  EXPECT_TRUE(Admin(c, spec::MakeSetFeatures(FeatureId::kKeepAliveTimer, 5000))->status().ok());
  EXPECT_EQ(Admin(c, spec::MakeGetFeatures(FeatureId::kKeepAliveTimer))->dw0(), 5000u);
  EXPECT_EQ(Admin(Connect(kHostA, 2), spec::MakeGetFeatures(FeatureId::kKeepAliveTimer))->dw0(), 0u);

  // Nothing is saveable; unknown features and selects are invalid fields.
  EXPECT_EQ(Admin(c, spec::MakeSetFeatures(FeatureId::kKeepAliveTimer, 1, spec::SaveFeature::kYes))->status(),
            MakeStatus(spec::CommandSpecificStatus::kFeatureIdentifierNotSaveable, Dnr::kSet));
  EXPECT_EQ(Admin(c, spec::MakeSetFeatures(FeatureId::kArbitration, 0))->status(),
            MakeStatus(GenericStatus::kInvalidFieldInCommand, Dnr::kSet));
  EXPECT_EQ(Admin(c, spec::MakeGetFeatures(FeatureId::kTimestamp))->status(),
            MakeStatus(GenericStatus::kInvalidFieldInCommand, Dnr::kSet));
  EXPECT_EQ(Admin(c, spec::MakeGetFeatures(FeatureId::kKeepAliveTimer, static_cast<FeatureSelect>(5)))->status(),
            MakeStatus(GenericStatus::kInvalidFieldInCommand, Dnr::kSet));
}

TEST_F(SubsystemTest, CommandCountsPerQueueAndOpcode) {
  NvmeTransport& c = Connect(kHostA, 1);
  Admin(c, spec::MakeIdentify(Cns::kController), 4096);
  Admin(c, spec::MakeIdentify(Cns::kNamespace, 1), 4096);
  Read(c, 1, 0, 1, 512);
  Read(c, 9, 0, 1, 512);  // failed commands count too
  EXPECT_EQ(subsystem_->CommandCount(QueueKind::kAdmin, spec::Raw(AdminOpcode::kIdentify)), 2u);
  EXPECT_EQ(subsystem_->CommandCount(QueueKind::kIo, spec::Raw(IoOpcode::kRead)), 2u);
  // Opcode 02h is Get Log Page on the admin queue and Read on I/O queues: counted apart.
  EXPECT_EQ(subsystem_->CommandCount(QueueKind::kAdmin, spec::Raw(AdminOpcode::kGetLogPage)), 0u);
  EXPECT_EQ(subsystem_->CommandCount(QueueKind::kIo, spec::Raw(IoOpcode::kWrite)), 0u);
}

TEST_F(SubsystemTest, HandlerOverridesAndFallsThrough) {
  NvmeTransport& c = Connect(kHostA, 1);
  int seen = 0;
  subsystem_->SetHandler(QueueKind::kIo, spec::Raw(IoOpcode::kRead), [&](CommandContext& context) {
    ++seen;
    EXPECT_EQ(context.controller_id, 1);
    if (context.command.sqe.nsid.value() == 2) {
      context.command.cqe.set_status(MakeStatus(PathStatus::kControllerPathingError));
      return;
    }
    context.subsystem.DefaultHandler(context);
  });
  auto overridden = Read(c, 2, 0, 1, 4096);
  EXPECT_EQ(overridden->status(), MakeStatus(PathStatus::kControllerPathingError));
  EXPECT_EQ(overridden->command.cqe.sqid.value(), 1);  // the controller still fills the header
  EXPECT_TRUE(Read(c, 1, 0, 1, 512)->status().ok());
  EXPECT_EQ(seen, 2);

  // A handler can fail the delivery itself, as a broken link would.
  subsystem_->SetHandler(QueueKind::kAdmin, spec::Raw(AdminOpcode::kKeepAlive),
                         [](CommandContext& context) { context.command.delivery = Delivery::kTimedOut; });
  spec::SubmissionQueueEntry keep_alive{};
  keep_alive.opc = spec::Raw(AdminOpcode::kKeepAlive);
  Exchange x(QueueKind::kAdmin, keep_alive, 0);
  c.Submit(x.command);
  EXPECT_EQ(x.finished, 1);
  EXPECT_EQ(x.command.delivery, Delivery::kTimedOut);

  subsystem_->SetHandler(QueueKind::kIo, spec::Raw(IoOpcode::kRead), nullptr);
  EXPECT_TRUE(Read(c, 2, 0, 1, 4096)->status().ok());
  EXPECT_EQ(seen, 2);
}

TEST_F(SubsystemTest, HandlerCanInjectAnAsyncEvent) {
  NvmeTransport& c = Connect(kHostA, 1);
  // A test that wants an ANA change notice without changing any state answers the AER itself.
  subsystem_->SetHandler(QueueKind::kAdmin, spec::Raw(AdminOpcode::kAsynchronousEventRequest),
                         [](CommandContext& context) { context.command.cqe.dw0 = spec::kAnaChangeNotice.Encode(); });
  auto aer = SubmitAer(c);
  EXPECT_EQ(aer->finished, 1);
  EXPECT_EQ(spec::AsyncEvent::Decode(aer->dw0()), spec::kAnaChangeNotice);
}

TEST(SubsystemApiTest, ConfigurationErrors) {
  ManualClock clock;
  EXPECT_FALSE(Subsystem::Create(SubsystemConfig{.nqn = ""}, clock));
  EXPECT_FALSE(Subsystem::Create(SubsystemConfig{.serial = std::string(21, 'x')}, clock));
  EXPECT_FALSE(Subsystem::Create(SubsystemConfig{.anagrpmax = 4, .nanagrpid = 8}, clock));
  EXPECT_FALSE(Subsystem::Create(SubsystemConfig{.max_namespaces = 0}, clock));
  auto created = Subsystem::Create(SubsystemConfig{.anagrpmax = 8, .nanagrpid = 8}, clock);
  ASSERT_TRUE(created);
  Subsystem& s = **created;
  EXPECT_EQ(s.config().anagrpmax, 8u);

  ASSERT_TRUE(s.AddPort(1));
  EXPECT_EQ(s.AddPort(1).error().code(), Errc::kAlreadyExists);
  EXPECT_EQ(s.AddNamespace({.nsid = 0, .blocks = 8}).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(s.AddNamespace({.nsid = 1025, .blocks = 8}).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(s.AddNamespace({.nsid = 1, .blocks = 0}).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(s.AddNamespace({.nsid = 1, .blocks = 8, .block_size = 1000}).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(s.AddNamespace({.nsid = 1, .blocks = 8, .block_size = 8192}).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(s.AddNamespace({.nsid = 1, .blocks = 8, .ana_group = 9}).error().code(), Errc::kInvalidArgument);
  ASSERT_TRUE(s.AddNamespace({.nsid = 1, .blocks = 8}));
  EXPECT_EQ(s.AddNamespace({.nsid = 1, .blocks = 8}).error().code(), Errc::kAlreadyExists);
  EXPECT_EQ(s.RemoveNamespace(2).error().code(), Errc::kNotFound);

  EXPECT_EQ(s.Connect("nqn.host", kHostA, 9).error().code(), Errc::kNotFound);
  EXPECT_EQ(s.Connect("", kHostA, 1).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(s.SetAnaState(9, 1, AnaState::kOptimized).error().code(), Errc::kNotFound);
  EXPECT_EQ(s.SetAnaState(1, 0, AnaState::kOptimized).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(s.SetAnaState(1, 9, AnaState::kOptimized).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(s.SetAnaState(1, 1, static_cast<AnaState>(7)).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(s.SetAnaState(1, 1, AnaState::kInaccessible, Nanos(-1)).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(s.GetAnaState(9, 1).error().code(), Errc::kNotFound);
  EXPECT_EQ(s.GetAnaState(1, 0).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(*s.GetAnaState(1, 5), AnaState::kOptimized);  // every group starts optimized
  EXPECT_EQ(s.ChangeIdentity(2, {}, {}, {}).error().code(), Errc::kNotFound);
  EXPECT_EQ(s.ChangeCapacity(2, 8).error().code(), Errc::kNotFound);
  EXPECT_EQ(s.ChangeCapacity(1, 0).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(s.ForeignPreempt(1, kHostC, 1, 0).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(s.ForeignPreempt(1, kHostC, 1, 7).error().code(), Errc::kInvalidArgument);
  EXPECT_EQ(s.ForeignPreempt(2, kHostC, 1, 1).error().code(), Errc::kNotFound);
}

}  // namespace
}  // namespace mpath::nvme::fake::testing
