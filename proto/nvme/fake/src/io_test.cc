// The simulated subsystem's data path: what is written through one controller reads back through another, sparse
// zeroes, Write Zeroes and deallocation, the statuses of malformed I/O, and what remapping or resizing a namespace
// does to it.
#include <gtest/gtest.h>

#include "test_util.h"

namespace mpath::nvme::fake::testing {
namespace {

using spec::Cns;

TEST_F(SubsystemTest, WriteThroughOneControllerReadsBackThroughAnother) {
  NvmeTransport& a = Connect(kHostA, 1);
  NvmeTransport& b = Connect(kHostB, 2);
  const auto data = Pattern(8 * 512, 0x11);
  ASSERT_TRUE(Write(a, 1, 100, data, 512).ok());
  auto x = Read(b, 1, 100, 8, 512);
  ASSERT_TRUE(x->status().ok());
  EXPECT_EQ(x->data, data);
  // A read straddling written and unwritten blocks: zeroes where nothing was written.
  auto straddle = Read(b, 1, 96, 8, 512);
  for (std::size_t i = 0; i < 4 * 512; ++i) ASSERT_EQ(straddle->data[i], std::byte{0});
  for (std::size_t i = 0; i < 4 * 512; ++i) ASSERT_EQ(straddle->data[4 * 512 + i], data[i]);
  // The last block of a 4 KiB-block namespace, with FUA.
  const auto block = Pattern(4096, 0x22);
  auto w = std::make_unique<Exchange>(QueueKind::kIo, spec::MakeWrite(2, kBlocks - 1, 1, spec::ForceUnitAccess::kYes),
                                      4096, DataDirection::kToController);
  std::copy(block.begin(), block.end(), w->data.begin());
  a.Submit(w->command);
  ASSERT_TRUE(w->status().ok());
  EXPECT_EQ(Read(b, 2, kBlocks - 1, 1, 4096)->data, block);
}

TEST_F(SubsystemTest, UnwrittenBlocksReadZero) {
  NvmeTransport& c = Connect(kHostA, 1);
  auto x = Read(c, 2, 17, 4, 4096);
  ASSERT_TRUE(x->status().ok());
  EXPECT_TRUE(IsZero(x->data));
}

TEST_F(SubsystemTest, WriteZeroesAndDeallocate) {
  NvmeTransport& c = Connect(kHostA, 1);
  ASSERT_TRUE(Write(c, 1, 0, Pattern(64 * 512, 5), 512).ok());
  ASSERT_TRUE(Io(c, spec::MakeWriteZeroes(1, 8, 8))->status().ok());
  ASSERT_TRUE(Io(c, spec::MakeWriteZeroes(1, 20, 4, spec::Deallocate::kYes))->status().ok());

  // Dataset Management: deallocate blocks 40..47 and 60..63.
  auto dsm = std::make_unique<Exchange>(QueueKind::kIo, spec::MakeDeallocate(1, 2), 32, DataDirection::kToController);
  spec::DsmRange r0{};
  r0.nlb = 8;
  r0.slba = 40;
  spec::DsmRange r1{};
  r1.nlb = 4;
  r1.slba = 60;
  wire::Store(dsm->data, r0);
  wire::Store(dsm->data, r1, 16);
  c.Submit(dsm->command);
  ASSERT_TRUE(dsm->status().ok());

  auto x = Read(c, 1, 0, 64, 512);
  const auto original = Pattern(64 * 512, 5);
  auto zeroed = [](std::uint64_t lba) {
    return (lba >= 8 && lba < 16) || (lba >= 20 && lba < 24) || (lba >= 40 && lba < 48) || lba >= 60;
  };
  for (std::uint64_t lba = 0; lba < 64; ++lba) {
    for (std::size_t i = 0; i < 512; ++i) {
      const std::size_t at = lba * 512 + i;
      ASSERT_EQ(x->data[at], zeroed(lba) ? std::byte{0} : original[at]) << "LBA " << lba;
    }
  }
}

TEST_F(SubsystemTest, FlushSucceeds) {
  NvmeTransport& c = Connect(kHostA, 1);
  EXPECT_TRUE(Io(c, spec::MakeFlush(1))->status().ok());
  EXPECT_TRUE(Io(c, spec::MakeFlush(spec::kBroadcastNsid))->status().ok());
  EXPECT_EQ(Io(c, spec::MakeFlush(9))->status(), MakeStatus(GenericStatus::kInvalidNamespaceOrFormat, Dnr::kSet));
}

TEST_F(SubsystemTest, MalformedIoGetsItsStatusWithDnr) {
  NvmeTransport& c = Connect(kHostA, 1);
  const Status invalid_opcode = MakeStatus(GenericStatus::kInvalidCommandOpcode, Dnr::kSet);
  const Status invalid_namespace = MakeStatus(GenericStatus::kInvalidNamespaceOrFormat, Dnr::kSet);
  const Status out_of_range = MakeStatus(GenericStatus::kLbaOutOfRange, Dnr::kSet);
  const Status invalid_field = MakeStatus(GenericStatus::kInvalidFieldInCommand, Dnr::kSet);
  const Status short_buffer = MakeStatus(GenericStatus::kDataSglLengthInvalid, Dnr::kSet);
  auto with_opcode = [](std::uint8_t opcode) {
    spec::SubmissionQueueEntry sqe{};
    sqe.opc = opcode;
    sqe.nsid = 1;
    return sqe;
  };
  struct Case {
    const char* what;
    spec::SubmissionQueueEntry sqe;
    std::size_t data_bytes;
    Status expected;
  };
  const Case cases[] = {
      {"unknown opcode", with_opcode(0x7E), 0, invalid_opcode},
      {"compare, not supported", with_opcode(spec::Raw(spec::IoOpcode::kCompare)), 512, invalid_opcode},
      {"read of a missing namespace", spec::MakeRead(3, 0, 1), 512, invalid_namespace},
      {"read of NSID 0", spec::MakeRead(0, 0, 1), 512, invalid_namespace},
      {"read of the broadcast NSID", spec::MakeRead(spec::kBroadcastNsid, 0, 1), 512, invalid_namespace},
      {"read starting past the end", spec::MakeRead(1, kBlocks, 1), 512, out_of_range},
      {"read running past the end", spec::MakeRead(1, kBlocks - 1, 2), 1024, out_of_range},
      {"read at an SLBA that wraps", spec::MakeRead(1, ~std::uint64_t{0}, 2), 1024, out_of_range},
      {"write zeroes past the end", spec::MakeWriteZeroes(1, kBlocks - 1, 2), 0, out_of_range},
      {"read above MDTS (128 KiB)", spec::MakeRead(1, 0, 257), 257 * 512, invalid_field},
      {"write above MDTS", spec::MakeWrite(2, 0, 33), 33 * 4096, invalid_field},
      {"read into a short buffer", spec::MakeRead(1, 0, 8), 8 * 512 - 1, short_buffer},
      {"deallocate with ranges missing", spec::MakeDeallocate(1, 2), 16, short_buffer},
      {"register without its data", spec::MakeReservationRegister(1, spec::RegisterAction::kRegister), 8,
       short_buffer},
  };
  for (const Case& c2 : cases) {
    EXPECT_EQ(Io(c, c2.sqe, c2.data_bytes)->status(), c2.expected) << c2.what;
  }
  // MDTS itself is fine: 256 blocks of 512 bytes.
  EXPECT_TRUE(Read(c, 1, 0, 256, 512)->status().ok());
}

TEST_F(SubsystemTest, ShortWriteBufferWritesNothing) {
  NvmeTransport& c = Connect(kHostA, 1);
  auto w = std::make_unique<Exchange>(QueueKind::kIo, spec::MakeWrite(1, 0, 4), 4 * 512 - 512,
                                      DataDirection::kToController);
  std::fill(w->data.begin(), w->data.end(), std::byte{0xEE});
  c.Submit(w->command);
  EXPECT_EQ(w->status(), MakeStatus(GenericStatus::kDataSglLengthInvalid, Dnr::kSet));
  EXPECT_TRUE(IsZero(Read(c, 1, 0, 4, 512)->data));
}

TEST_F(SubsystemTest, DeallocateRangeOutOfRangeChangesNothing) {
  NvmeTransport& c = Connect(kHostA, 1);
  const auto data = Pattern(512, 9);
  ASSERT_TRUE(Write(c, 1, 0, data, 512).ok());
  auto dsm = std::make_unique<Exchange>(QueueKind::kIo, spec::MakeDeallocate(1, 2), 32, DataDirection::kToController);
  spec::DsmRange ok{};
  ok.nlb = 1;
  ok.slba = 0;
  spec::DsmRange beyond{};
  beyond.nlb = 2;
  beyond.slba = kBlocks - 1;
  wire::Store(dsm->data, ok);
  wire::Store(dsm->data, beyond, 16);
  c.Submit(dsm->command);
  EXPECT_EQ(dsm->status(), MakeStatus(GenericStatus::kLbaOutOfRange, Dnr::kSet));
  EXPECT_EQ(Read(c, 1, 0, 1, 512)->data, data);
}

TEST_F(SubsystemTest, RemapGivesNewIdentifiersAndZeroData) {
  NvmeTransport& c = Connect(kHostA, 1);
  ASSERT_TRUE(Write(c, 1, 5, Pattern(512, 1), 512).ok());
  std::array<std::uint8_t, 16> nguid{};
  nguid.fill(0x42);
  const std::array<std::uint8_t, 8> eui{9, 9, 9, 9, 9, 9, 9, 9};
  ASSERT_TRUE(subsystem_->ChangeIdentity(1, nguid, eui, {}));

  auto id = Admin(c, spec::MakeIdentify(Cns::kNamespace, 1), 4096)->As<spec::IdentifyNamespace>();
  EXPECT_EQ(id.nguid, nguid);
  EXPECT_EQ(id.eui64, eui);
  EXPECT_EQ(id.nsze.value(), kBlocks);
  auto ids = spec::ParseNamespaceIdDescriptors(
      Admin(c, spec::MakeIdentify(Cns::kNamespaceIdentificationDescriptors, 1), 4096)->data);
  ASSERT_TRUE(ids);
  EXPECT_EQ(ids->nguid, nguid);
  EXPECT_FALSE(ids->uuid) << "a zero UUID is no longer reported";
  EXPECT_TRUE(IsZero(Read(c, 1, 5, 1, 512)->data));
}

TEST_F(SubsystemTest, CapacityChangeShowsInIdentifyAndRange) {
  NvmeTransport& c = Connect(kHostA, 1);
  ASSERT_TRUE(Write(c, 1, kBlocks - 1, Pattern(512, 4), 512).ok());
  ASSERT_TRUE(subsystem_->ChangeCapacity(1, kBlocks * 2));
  auto id = Admin(c, spec::MakeIdentify(Cns::kNamespace, 1), 4096)->As<spec::IdentifyNamespace>();
  EXPECT_EQ(id.nsze.value(), kBlocks * 2);
  EXPECT_EQ(id.ncap.value(), kBlocks * 2);
  EXPECT_TRUE(Read(c, 1, kBlocks * 2 - 1, 1, 512)->status().ok());

  ASSERT_TRUE(subsystem_->ChangeCapacity(1, kBlocks - 1));
  EXPECT_EQ(Read(c, 1, kBlocks - 1, 1, 512)->status(), MakeStatus(GenericStatus::kLbaOutOfRange, Dnr::kSet));
  ASSERT_TRUE(subsystem_->ChangeCapacity(1, kBlocks));
  EXPECT_TRUE(IsZero(Read(c, 1, kBlocks - 1, 1, 512)->data)) << "cut off by the shrink";
}

TEST_F(SubsystemTest, RemovedNamespaceIsGone) {
  NvmeTransport& c = Connect(kHostA, 1);
  ASSERT_TRUE(subsystem_->RemoveNamespace(2));
  EXPECT_EQ(Read(c, 2, 0, 1, 4096)->status(), MakeStatus(GenericStatus::kInvalidNamespaceOrFormat, Dnr::kSet));
  auto id = Admin(c, spec::MakeIdentify(Cns::kNamespace, 2), 4096);
  EXPECT_TRUE(id->status().ok());
  EXPECT_EQ(id->As<spec::IdentifyNamespace>().nsze.value(), 0u);
  EXPECT_EQ(spec::ParseNamespaceList(Admin(c, spec::MakeIdentify(Cns::kActiveNamespaceList), 4096)->data),
            std::vector<std::uint32_t>{1});
  // The ANA log no longer lists group 2.
  EXPECT_EQ(ParsedAnaLog(c).groups.size(), 1u);
}

}  // namespace
}  // namespace mpath::nvme::fake::testing
