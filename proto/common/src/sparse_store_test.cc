#include "mpath/proto/sparse_store.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace mpath::proto
