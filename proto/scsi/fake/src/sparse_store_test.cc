#include "sparse_store.h"

#include <gtest/gtest.h>

#include <vector>

namespace mpath::scsi::fake {
namespace {

std::vector<std::byte> Fill(std::size_t n, std::uint8_t v) { return std::vector<std::byte>(n, std::byte{v}); }

TEST(SparseStore, UnwrittenReadsZeroAndCostsNothing) {
  SparseStore store(512, 1ull << 40);
  std::vector<std::byte> out(1024, std::byte{0xEE});
  store.Read((1ull << 40) - 2, out);
  EXPECT_EQ(out, Fill(1024, 0));
  EXPECT_EQ(store.allocated_bytes(), 0u);
}

TEST(SparseStore, WritesAcrossChunkBoundaries) {
  SparseStore store(512, 1024);
  const auto data = Fill(3 * 512, 0x5A);
  store.Write(63, data);  // blocks 63..65: the end of chunk 0, the start of chunk 1
  EXPECT_EQ(store.allocated_bytes(), 2u * 64 * 512);
  std::vector<std::byte> out(5 * 512);
  store.Read(62, out);
  EXPECT_EQ(std::vector<std::byte>(out.begin(), out.begin() + 512), Fill(512, 0));
  EXPECT_EQ(std::vector<std::byte>(out.begin() + 512, out.begin() + 4 * 512), data);
  EXPECT_EQ(std::vector<std::byte>(out.begin() + 4 * 512, out.end()), Fill(512, 0));
}

TEST(SparseStore, DeallocateFreesChunksThatEndUpEmpty) {
  SparseStore store(4096, 1024);
  store.Write(0, Fill(4096, 1));
  store.Write(10, Fill(4096, 2));
  store.Deallocate(0, 1);
  EXPECT_EQ(store.allocated_bytes(), 64u * 4096) << "block 10 still holds data";
  store.Deallocate(10, 1);
  EXPECT_EQ(store.allocated_bytes(), 0u);
  store.WriteSame(100, 200, Fill(4096, 3));
  store.Deallocate(0, 1024);
  EXPECT_EQ(store.allocated_bytes(), 0u);
}

TEST(SparseStore, ResizeDropsTheTail) {
  SparseStore store(512, 256);
  store.Write(200, Fill(512, 9));
  store.Resize(100);
  store.Resize(256);
  std::vector<std::byte> out(512);
  store.Read(200, out);
  EXPECT_EQ(out, Fill(512, 0));
  EXPECT_EQ(store.allocated_bytes(), 0u);
}

}  // namespace
}  // namespace mpath::scsi::fake
