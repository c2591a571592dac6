// Media commands: READ/WRITE (10)/(16), SYNCHRONIZE CACHE, WRITE SAME (16) and UNMAP, their range and buffer
// checks, and thin provisioning seen through AllocatedBytes.
#include <gtest/gtest.h>

#include "array_test_util.h"
#include "mpath/proto/sparse_store.h"
#include "mpath/scsi/spec/sbc_cdb.h"

namespace mpath::scsi::fake::testing {
namespace {

namespace asc = spec::asc;
using spec::Read10Cdb;
using spec::Read16Cdb;
using spec::UnmapBlockDescriptor;
using spec::UnmapCdb;
using spec::UnmapParameterListHeader;
using spec::Write10Cdb;
using spec::Write16Cdb;
using spec::WriteSame16Cdb;

std::vector<std::byte> Zeroes(std::size_t n) { return std::vector<std::byte>(n); }

std::vector<std::byte> UnmapList(std::initializer_list<std::pair<std::uint64_t, std::uint32_t>> ranges) {
  std::vector<std::byte> list;
  Append(list, UnmapParameterListHeader::ForDescriptors(static_cast<std::uint16_t>(ranges.size())));
  for (auto [lba, blocks] : ranges) Append(list, UnmapBlockDescriptor{lba, blocks, {}});
  return list;
}

class ArrayIo : public ArrayTest {
 protected:
  std::vector<std::byte> ReadBlocks(Host& host, std::uint64_t lba, std::uint32_t blocks) {
    Answer r = host.In(0, Read16Cdb::Make(lba, blocks), std::size_t{blocks} * kBlockSize);
    EXPECT_TRUE(r.good());
    return r.buffer;
  }
  std::uint64_t Allocated() { return *array().AllocatedBytes(0); }
  Answer Unmap(std::vector<std::byte> list) {
    const auto length = static_cast<std::uint16_t>(list.size());
    return a().Out(0, UnmapCdb::Make(length), std::move(list));
  }
};

TEST_F(ArrayIo, WrittenThroughOneNexusReadsBackThroughAnother) {
  const auto data = Pattern(4 * kBlockSize, 1);
  Answer w = a().Out(0, Write10Cdb::Make(100, 4, spec::Fua::kYes), data);
  ASSERT_TRUE(w.good());
  EXPECT_EQ(w.residual, 0u);
  Answer r = b().In(0, Read10Cdb::Make(100, 4), 4 * kBlockSize);
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.buffer, data);
  const auto data16 = Pattern(2 * kBlockSize, 2);
  ASSERT_TRUE(b().Out(0, Write16Cdb::Make(kBlocks - 2, 2), data16).good());
  EXPECT_EQ(ReadBlocks(a(), kBlocks - 2, 2), data16);
  EXPECT_EQ(ReadBlocks(a(), 0, 1), Zeroes(kBlockSize)) << "never written: zeroes";
}

TEST_F(ArrayIo, RangeIsCheckedAgainstTheCapacity) {
  EXPECT_EQ(a().In(0, Read10Cdb::Make(kBlocks - 1, 2), 2 * kBlockSize).code(), asc::kLbaOutOfRange);
  EXPECT_EQ(a().Out(0, Write10Cdb::Make(kBlocks, 1), Pattern(kBlockSize, 0)).code(), asc::kLbaOutOfRange);
  EXPECT_EQ(a().In(0, Read16Cdb::Make(~0ull - 1, 4), 4 * kBlockSize).code(), asc::kLbaOutOfRange)
      << "LBA + length wraps around";
  EXPECT_TRUE(a().In(0, Read10Cdb::Make(kBlocks, 0), 0).good()) << "nothing at the end is no access";
  EXPECT_EQ(a().In(0, Read10Cdb::Make(kBlocks + 1, 0), 0).code(), asc::kLbaOutOfRange);
  EXPECT_TRUE(a().In(0, Read10Cdb::Make(kBlocks - 1, 1), kBlockSize).good());
}

TEST_F(ArrayIo, TransferBeyondMaximumTransferLengthIsInvalidField) {
  EXPECT_TRUE(a().In(0, Read16Cdb::Make(0, 256), 256 * kBlockSize).good());
  EXPECT_EQ(a().In(0, Read16Cdb::Make(0, 257), 257 * kBlockSize).code(), asc::kInvalidFieldInCdb);
  EXPECT_EQ(a().Out(0, Write16Cdb::Make(0, 257), Pattern(257 * kBlockSize, 0)).code(), asc::kInvalidFieldInCdb);
}

TEST_F(ArrayIo, ShortBufferIsRefusedAndChangesNothing) {
  Answer w = a().Out(0, Write10Cdb::Make(10, 2), Pattern(2 * kBlockSize - 1, 3));
  EXPECT_EQ(w.code(), asc::kInvalidFieldInCdb);
  EXPECT_EQ(w.residual, 2 * kBlockSize - 1);
  EXPECT_EQ(ReadBlocks(a(), 10, 2), Zeroes(2 * kBlockSize));
  EXPECT_EQ(Allocated(), 0u);
  EXPECT_EQ(a().In(0, Read10Cdb::Make(10, 2), kBlockSize).code(), asc::kInvalidFieldInCdb);
}

TEST_F(ArrayIo, LongerBufferDoesWhatTheCdbSaysAndReportsTheRest) {
  auto data = Pattern(3 * kBlockSize, 4);
  Answer w = a().Out(0, Write10Cdb::Make(20, 1), data);
  ASSERT_TRUE(w.good());
  EXPECT_EQ(w.residual, 2 * kBlockSize);
  EXPECT_EQ(ReadBlocks(a(), 20, 1), std::vector<std::byte>(data.begin(), data.begin() + kBlockSize));
  EXPECT_EQ(ReadBlocks(a(), 21, 2), Zeroes(2 * kBlockSize));
  Answer r = a().In(0, Read10Cdb::Make(20, 1), 4 * kBlockSize);
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.residual, 3 * kBlockSize);
  EXPECT_EQ(r.received().size(), kBlockSize);
}

TEST_F(ArrayIo, TransferLengthZeroMovesNothing) {
  Answer w = a().Out(0, Write10Cdb::Make(30, 0), Pattern(kBlockSize, 5));
  ASSERT_TRUE(w.good());
  EXPECT_EQ(w.residual, kBlockSize);
  EXPECT_EQ(ReadBlocks(a(), 30, 1), Zeroes(kBlockSize));
  Answer r = a().In(0, Read16Cdb::Make(30, 0), kBlockSize);
  ASSERT_TRUE(r.good());
  EXPECT_EQ(r.residual, kBlockSize);
}

TEST_F(ArrayIo, ProtectionFieldsAreRefusedWithoutProtectionInformation) {
  auto read = Read10Cdb::Make(0, 1);
  read.flags = 0x20;  // RDPROTECT 001b
  EXPECT_EQ(a().In(0, read, kBlockSize).code(), asc::kInvalidFieldInCdb);
  auto write = Write16Cdb::Make(0, 1);
  write.flags = 0x40;
  EXPECT_EQ(a().Out(0, write, Pattern(kBlockSize, 0)).code(), asc::kInvalidFieldInCdb);
  auto dpo = Read10Cdb::Make(0, 1, spec::Fua::kYes);
  dpo.flags |= 0x10;  // DPO and FUA are hints: accepted
  EXPECT_TRUE(a().In(0, dpo, kBlockSize).good());
}

TEST_F(ArrayIo, SynchronizeCache) {
  EXPECT_TRUE(a().None(0, spec::SynchronizeCache10Cdb::Make()).good());
  EXPECT_TRUE(a().None(0, spec::SynchronizeCache16Cdb::Make(kBlocks - 8, 8)).good());
  EXPECT_EQ(a().None(0, spec::SynchronizeCache10Cdb::Make(kBlocks - 8, 9)).code(), asc::kLbaOutOfRange);
  EXPECT_EQ(a().None(0, spec::SynchronizeCache16Cdb::Make(kBlocks, 0)).code(), asc::kLbaOutOfRange);
}

TEST_F(ArrayIo, WriteSameWritesThePatternEverywhere) {
  const auto block = Pattern(kBlockSize, 6);
  Answer w = a().Out(0, WriteSame16Cdb::Make(40, 3), block);
  ASSERT_TRUE(w.good());
  const auto read = ReadBlocks(b(), 39, 5);
  for (int i = 0; i < 5; ++i) {
    const std::vector<std::byte> got(read.begin() + i * kBlockSize, read.begin() + (i + 1) * kBlockSize);
    EXPECT_EQ(got, (i == 0 || i == 4) ? Zeroes(kBlockSize) : block) << i;
  }
  // UNMAP with a non-zero pattern: a deallocated block would read differently, so it is written.
  ASSERT_TRUE(a().Out(0, WriteSame16Cdb::Make(41, 1, WriteSame16Cdb::Unmap::kYes), block).good());
  EXPECT_EQ(ReadBlocks(a(), 41, 1), block);
  // NDOB: no data-out, the blocks become zeroes.
  Answer ndob = a().None(0, WriteSame16Cdb::Make(40, 3, WriteSame16Cdb::Unmap::kNo, WriteSame16Cdb::Ndob::kYes));
  ASSERT_TRUE(ndob.good());
  EXPECT_EQ(ReadBlocks(a(), 40, 3), Zeroes(3 * kBlockSize));
}

TEST_F(ArrayIo, WriteSameWithUnmapDeallocates) {
  ASSERT_TRUE(a().Out(0, Write16Cdb::Make(0, 256), Pattern(256 * kBlockSize, 7)).good());
  const std::uint64_t written = Allocated();
  EXPECT_GE(written, 256u * kBlockSize);
  ASSERT_TRUE(a().Out(0, WriteSame16Cdb::Make(0, 256, WriteSame16Cdb::Unmap::kYes), Zeroes(kBlockSize)).good());
  EXPECT_EQ(Allocated(), 0u);
  EXPECT_EQ(ReadBlocks(a(), 0, 256), Zeroes(256 * kBlockSize));
  ASSERT_TRUE(a().Out(0, Write16Cdb::Make(0, 8), Pattern(8 * kBlockSize, 8)).good());
  ASSERT_TRUE(
      a().None(0, WriteSame16Cdb::Make(0, 8, WriteSame16Cdb::Unmap::kYes, WriteSame16Cdb::Ndob::kYes)).good());
  EXPECT_EQ(Allocated(), 0u);
}

TEST_F(ArrayIo, WriteSameRefusals) {
  const auto block = Pattern(kBlockSize, 9);
  EXPECT_EQ(a().Out(0, WriteSame16Cdb::Make(0, 0), block).code(), asc::kInvalidFieldInCdb) << "WSNZ";
  EXPECT_EQ(a().Out(0, WriteSame16Cdb::Make(0, 1025), block).code(), asc::kInvalidFieldInCdb)
      << "beyond MAXIMUM WRITE SAME LENGTH";
  EXPECT_EQ(a().Out(0, WriteSame16Cdb::Make(kBlocks - 1, 2), block).code(), asc::kLbaOutOfRange);
  EXPECT_EQ(a().Out(0, WriteSame16Cdb::Make(0, 1), Pattern(kBlockSize - 1, 0)).code(), asc::kInvalidFieldInCdb)
      << "less than one block of data";
  auto anchor = WriteSame16Cdb::Make(0, 1, WriteSame16Cdb::Unmap::kYes);
  anchor.flags |= 0x10;
  EXPECT_EQ(a().Out(0, anchor, block).code(), asc::kInvalidFieldInCdb);
  LogicalUnitConfig thick = DefaultLu(1);
  thick.thin = false;
  ASSERT_TRUE(array().AddLogicalUnit(thick));
  a().DrainUnitAttentions(0);
  a().DrainUnitAttentions(1);
  EXPECT_EQ(a().Out(1, WriteSame16Cdb::Make(0, 1, WriteSame16Cdb::Unmap::kYes), Zeroes(kBlockSize)).code(),
            asc::kInvalidFieldInCdb)
      << "a fully provisioned LU does not unmap";
  EXPECT_TRUE(a().Out(1, WriteSame16Cdb::Make(0, 1), Zeroes(kBlockSize)).good());
}

TEST_F(ArrayIo, UnmapDeallocatesSparsely) {
  ASSERT_TRUE(a().Out(0, Write16Cdb::Make(0, 128), Pattern(128 * kBlockSize, 10)).good());
  ASSERT_TRUE(a().Out(0, Write16Cdb::Make(1024, 64), Pattern(64 * kBlockSize, 11)).good());
  const std::uint64_t before = Allocated();
  ASSERT_GT(before, 0u);
  // Part of a chunk: the data goes, the chunk stays for its other blocks.
  Answer partial = Unmap(UnmapList({{0, 10}}));
  ASSERT_TRUE(partial.good());
  EXPECT_EQ(partial.residual, 0u);
  EXPECT_EQ(ReadBlocks(a(), 0, 10), Zeroes(10 * kBlockSize));
  EXPECT_EQ(Allocated(), before);
  ASSERT_TRUE(Unmap(UnmapList({{0, 128}, {1024, 64}})).good());
  EXPECT_EQ(Allocated(), 0u);
  EXPECT_EQ(ReadBlocks(b(), 1024, 64), Zeroes(64 * kBlockSize));
}

TEST_F(ArrayIo, UnmapOfAHugeSparseLuIsCheap) {
  LogicalUnitConfig huge = DefaultLu(1);
  huge.blocks = 1ull << 40;  // 512 TiB
  huge.max_unmap_blocks = 0xFFFF'FFFF;
  ASSERT_TRUE(array().AddLogicalUnit(huge));
  a().DrainUnitAttentions(0);
  a().DrainUnitAttentions(1);
  const auto data = Pattern(kBlockSize, 12);
  ASSERT_TRUE(a().Out(1, Write16Cdb::Make((1ull << 40) - 1, 1), data).good());
  ASSERT_TRUE(a().Out(1, Write16Cdb::Make((1ull << 39), 1), data).good());
  EXPECT_EQ(*array().AllocatedBytes(1), 2u * proto::SparseStore::kDefaultChunkBytes);
  auto list = UnmapList({{(1ull << 40) - 0xFFFF'FFFFull, 0xFFFF'FFFF}, {1ull << 39, 0xFFFF'FFFF}});
  ASSERT_TRUE(a().Out(1, UnmapCdb::Make(static_cast<std::uint16_t>(list.size())), list).good());
  EXPECT_EQ(*array().AllocatedBytes(1), 0u);
}

TEST_F(ArrayIo, MalformedUnmapParameterLists) {
  ASSERT_TRUE(a().Out(0, Write16Cdb::Make(0, 8), Pattern(8 * kBlockSize, 13)).good());
  const std::uint64_t allocated = Allocated();
  // PARAMETER LIST LENGTH 0: nothing to do, not an error.
  EXPECT_TRUE(a().Out(0, UnmapCdb::Make(0), {}).good());
  // Shorter than the header.
  EXPECT_EQ(a().Out(0, UnmapCdb::Make(4), Zeroes(4)).code(), asc::kParameterListLengthError);
  // More parameter data announced than the buffer holds.
  EXPECT_EQ(a().Out(0, UnmapCdb::Make(24), Zeroes(16)).code(), asc::kInvalidFieldInCdb);
  // Descriptor length beyond UNMAP DATA LENGTH, and beyond the list.
  auto list = UnmapList({{0, 1}});
  list[1] = std::byte{6};  // UNMAP DATA LENGTH 6 but 16 descriptor bytes
  EXPECT_EQ(Unmap(list).code(), asc::kInvalidFieldInParameterList);
  list = UnmapList({{0, 1}});
  list[3] = std::byte{32};  // two descriptors announced, one sent
  list[1] = std::byte{38};
  EXPECT_EQ(Unmap(list).code(), asc::kInvalidFieldInParameterList);
  // More descriptors than MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT, more blocks than MAXIMUM UNMAP LBA COUNT.
  EXPECT_EQ(Unmap(UnmapList({{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}})).code(), asc::kInvalidFieldInParameterList);
  EXPECT_EQ(Unmap(UnmapList({{0, 2049}})).code(), asc::kInvalidFieldInParameterList);
  // One good descriptor and one out of range: nothing is deallocated.
  EXPECT_EQ(Unmap(UnmapList({{0, 8}, {kBlocks - 1, 2}})).code(), asc::kLbaOutOfRange);
  EXPECT_EQ(Allocated(), allocated);
  EXPECT_NE(ReadBlocks(a(), 0, 8), Zeroes(8 * kBlockSize));
  // ANCHOR is not supported.
  auto anchor = UnmapCdb::Make(24);
  anchor.flags = 0x01;
  EXPECT_EQ(a().Out(0, anchor, UnmapList({{0, 1}})).code(), asc::kInvalidFieldInCdb);
  // A trailing partial descriptor is ignored (SBC-4 §5.35.2).
  list = UnmapList({{0, 8}});
  list.resize(list.size() + 8);
  list[1] = std::byte{6 + 24};
  list[3] = std::byte{24};
  EXPECT_TRUE(Unmap(list).good());
  EXPECT_EQ(Allocated(), 0u);
}

TEST_F(ArrayIo, UnmapOnAFullyProvisionedLuIsNotSupported) {
  LogicalUnitConfig thick = DefaultLu(1);
  thick.thin = false;
  ASSERT_TRUE(array().AddLogicalUnit(thick));
  a().DrainUnitAttentions(1);
  auto list = UnmapList({{0, 1}});
  EXPECT_EQ(a().Out(1, UnmapCdb::Make(static_cast<std::uint16_t>(list.size())), list).code(),
            asc::kInvalidCommandOperationCode);
}

TEST_F(ArrayIo, ChangeCapacityDropsDataBeyondTheNewEnd) {
  ASSERT_TRUE(a().Out(0, Write16Cdb::Make(kBlocks - 1, 1), Pattern(kBlockSize, 14)).good());
  ASSERT_TRUE(array().ChangeCapacity(0, kBlocks / 2));
  EXPECT_EQ(a().DrainUnitAttentions(), (std::vector<spec::SenseCode>{asc::kCapacityDataHasChanged}));
  EXPECT_EQ(a().In(0, Read16Cdb::Make(kBlocks - 1, 1), kBlockSize).code(), asc::kLbaOutOfRange);
  Answer cap = a().In(0, spec::ReadCapacity16Cdb::Make(32), 32);
  EXPECT_EQ(wire::LoadPadded<spec::ReadCapacity16Data>(cap.received()).returned_logical_block_address.value(),
            kBlocks / 2 - 1);
  ASSERT_TRUE(array().ChangeCapacity(0, kBlocks));
  a().DrainUnitAttentions();
  EXPECT_EQ(ReadBlocks(a(), kBlocks - 1, 1), Zeroes(kBlockSize));
  EXPECT_EQ(Allocated(), 0u);
}

}  // namespace
}  // namespace mpath::scsi::fake::testing
