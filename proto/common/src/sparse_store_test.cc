#include "mpath/proto/sparse_store.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace mpath::proto {
namespace {

std::vector<std::byte> Fill(std::size_t n, std::uint8_t v) { return std::vector<std::byte>(n, std::byte{v}); }

TEST(SparseStore, UnwrittenReadsZeroAndCostsNothing) {
  SparseStore store;
  std::vector<std::byte> out(1024, std::byte{0xEE});
  store.Read((1ull << 50) - 512, out);
  EXPECT_EQ(out, Fill(1024, 0));
  EXPECT_EQ(store.allocated_bytes(), 0u);
}

TEST(SparseStore, WritesAcrossChunkBoundaries) {
  SparseStore store(4096);
  const auto data = Fill(3 * 512, 0x5A);
  store.Write(4096 - 512, data);  // the last 512 bytes of chunk 0 and the first 1024 of chunk 1
  EXPECT_EQ(store.allocated_bytes(), 2u * 4096);
  std::vector<std::byte> out(5 * 512);
  store.Read(4096 - 1024, out);
  EXPECT_EQ(std::vector<std::byte>(out.begin(), out.begin() + 512), Fill(512, 0));
  EXPECT_EQ(std::vector<std::byte>(out.begin() + 512, out.begin() + 4 * 512), data);
  EXPECT_EQ(std::vector<std::byte>(out.begin() + 4 * 512, out.end()), Fill(512, 0));
}

TEST(SparseStore, ZeroFreesChunksThatEndUpEmptyHoweverTheRangesAreCut) {
  SparseStore store(64 * 1024);
  store.Write(0, Fill(4096, 1));
  store.Write(10 * 4096, Fill(4096, 2));
  store.Zero(0, 4096);
  EXPECT_EQ(store.allocated_bytes(), 64u * 1024) << "the second write still holds data in chunk 0";
  std::vector<std::byte> out(4096);
  store.Read(10 * 4096, out);
  EXPECT_EQ(out, Fill(4096, 2));
  store.Zero(10 * 4096, 4096);
  EXPECT_EQ(store.allocated_bytes(), 0u);
}

TEST(SparseStore, ZeroOfAHugeRangeVisitsOnlyWhatWasWritten) {
  SparseStore store;
  store.Write(1ull << 40, Fill(512, 3));
  store.Write(5, Fill(512, 4));
  store.Zero(0, 1ull << 62);
  EXPECT_EQ(store.allocated_bytes(), 0u);
  store.Zero(0, 0);
}

TEST(SparseStore, ClearDropsEverything) {
  SparseStore store;
  store.Write(0, Fill(512, 9));
  store.Clear();
  std::vector<std::byte> out(512);
  store.Read(0, out);
  EXPECT_EQ(out, Fill(512, 0));
  EXPECT_EQ(store.allocated_bytes(), 0u);
}


// With 512-byte chunks a leaf of the chunk table spans 256 KiB, so these ranges cross leaves.
TEST(SparseStore, RangesAcrossLeavesReadBackAndFreeWhenZeroed) {
  constexpr std::uint64_t kChunk = 512;
  constexpr std::uint64_t kLeafSpan = 512 * kChunk;
  SparseStore store(kChunk);
  const auto data = Fill(4 * kChunk, 0x7C);
  store.Write(kLeafSpan - 2 * kChunk, data);  // two chunks at the end of leaf 0, two at the start of leaf 1
  store.Write(5 * kLeafSpan + 100, Fill(10, 0x11));
  EXPECT_EQ(store.allocated_bytes(), 5 * kChunk);

  std::vector<std::byte> out(6 * kChunk);
  store.Read(kLeafSpan - 3 * kChunk, out);
  EXPECT_EQ(std::vector<std::byte>(out.begin(), out.begin() + kChunk), Fill(kChunk, 0));
  EXPECT_EQ(std::vector<std::byte>(out.begin() + kChunk, out.begin() + 5 * kChunk), data);
  EXPECT_EQ(std::vector<std::byte>(out.begin() + 5 * kChunk, out.end()), Fill(kChunk, 0));

  // Cut mid-chunk on both sides: the chunks at the cut keep their other halves.
  store.Zero(kLeafSpan - 2 * kChunk + kChunk / 2, 3 * kChunk);
  EXPECT_EQ(store.allocated_bytes(), 3 * kChunk);
  store.Read(kLeafSpan - 2 * kChunk, std::span(out).first(4 * kChunk));
  EXPECT_EQ(std::vector<std::byte>(out.begin(), out.begin() + kChunk / 2), Fill(kChunk / 2, 0x7C));
  EXPECT_EQ(std::vector<std::byte>(out.begin() + kChunk / 2, out.begin() + 3 * kChunk + kChunk / 2),
            Fill(3 * kChunk, 0));
  EXPECT_EQ(std::vector<std::byte>(out.begin() + 3 * kChunk + kChunk / 2, out.begin() + 4 * kChunk),
            Fill(kChunk / 2, 0x7C));

  // A range over many leaves, only some of them allocated.
  store.Zero(0, 4 * kLeafSpan);
  EXPECT_EQ(store.allocated_bytes(), kChunk);
  std::vector<std::byte> tail(10);
  store.Read(5 * kLeafSpan + 100, tail);
  EXPECT_EQ(tail, Fill(10, 0x11));
  store.Zero(5 * kLeafSpan, kChunk);
  EXPECT_EQ(store.allocated_bytes(), 0u);
}

TEST(SparseStore, ZeroKeepsAChunkWhoseDataLiesOutsideTheRange) {
  SparseStore store(4096);
  store.Write(4095, Fill(1, 0xAB));  // the chunk's very last byte
  store.Zero(0, 4095);
  EXPECT_EQ(store.allocated_bytes(), 4096u);
  store.Write(0, Fill(1, 0xCD));  // and its very first
  store.Zero(1, 4095);
  EXPECT_EQ(store.allocated_bytes(), 4096u);
  std::vector<std::byte> out(4096);
  store.Read(0, out);
  EXPECT_EQ(out[0], std::byte{0xCD});
  EXPECT_EQ(std::vector<std::byte>(out.begin() + 1, out.end()), Fill(4095, 0));
  store.Zero(0, 1);
  EXPECT_EQ(store.allocated_bytes(), 0u);
}

TEST(SparseStore, MovedFromStoreIsEmpty) {
  SparseStore store;
  store.Write(0, Fill(512, 6));
  SparseStore moved(std::move(store));
  EXPECT_EQ(moved.allocated_bytes(), SparseStore::kDefaultChunkBytes);
  EXPECT_EQ(store.allocated_bytes(), 0u);  // NOLINT(bugprone-use-after-move): the state a move leaves is the point
  std::vector<std::byte> out(512);
  moved.Read(0, out);
  EXPECT_EQ(out, Fill(512, 6));
}

}  // namespace
}  // namespace mpath::proto
