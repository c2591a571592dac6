#include "mpath/proto/wire.h"

#include <gtest/gtest.h>

#include <array>
#include <cstddef>

namespace mpath::wire {
namespace {

TEST(BigEndian, StoresMostSignificantByteFirst) {
  Be32 v = 0x01020304u;
  auto bytes = BytesOf(v);
  EXPECT_EQ(bytes[0], std::byte{0x01});
  EXPECT_EQ(bytes[3], std::byte{0x04});
  EXPECT_EQ(v.value(), 0x01020304u);
}

TEST(BigEndian, ThreeByteFieldKeepsOnlyItsBytes) {
  Be24 v = 0xAABBCCu;
  static_assert(sizeof(Be24) == 3);
  auto bytes = BytesOf(v);
  EXPECT_EQ(bytes[0], std::byte{0xAA});
  EXPECT_EQ(bytes[2], std::byte{0xCC});
  EXPECT_EQ(Be24(0x12AABBCCu).value(), 0xAABBCCu);
}

TEST(LittleEndian, StoresLeastSignificantByteFirst) {
  Le64 v = 0x0102030405060708ull;
  auto bytes = BytesOf(v);
  EXPECT_EQ(bytes[0], std::byte{0x08});
  EXPECT_EQ(bytes[7], std::byte{0x01});
  EXPECT_EQ(v.value(), 0x0102030405060708ull);
}

TEST(Bits, ReadAndWriteBySpecBitNumbers) {
  std::uint8_t byte = 0b1011'0100;
  EXPECT_EQ((GetBits<5, 4>(byte)), 0b11);
  EXPECT_EQ((GetBits<7, 0>(byte)), byte);
  EXPECT_TRUE(GetBit<2>(byte));
  EXPECT_FALSE(GetBit<0>(byte));
  EXPECT_EQ((SetBits<5, 4>(byte, 0b01)), 0b1001'0100);
  EXPECT_EQ((SetBits<3, 0>(std::uint8_t{0xFF}, 0x1F)), 0xFF) << "value bits beyond the field are masked off";
  EXPECT_EQ((SetBit<0>(byte, true)), 0b1011'0101);
  EXPECT_EQ((SetBits<15, 0>(std::uint16_t{0}, 0xBEEF)), 0xBEEF);
}

struct Sample {
  std::uint8_t op;
  std::uint8_t flags;
  Be16 length;
  Be32 lba;
};
MPATH_WIRE_LAYOUT(Sample, 8);
MPATH_WIRE_FIELD(Sample, lba, 4);

TEST(Load, RefusesShortInputAndReadsUnalignedBytes) {
  std::array<std::byte, 9> raw{};
  raw[1] = std::byte{0x2A};                       // Sample starts at offset 1: unaligned
  raw[5] = std::byte{0x00};
  raw[8] = std::byte{0x07};
  auto sample = Load<Sample>(raw, 1);
  ASSERT_TRUE(sample.has_value());
  EXPECT_EQ(sample->op, 0x2A);
  EXPECT_EQ(sample->lba.value(), 7u);
  EXPECT_FALSE(Load<Sample>(raw, 2).has_value());
  EXPECT_FALSE(Load<Sample>(raw, 100).has_value());
}

TEST(LoadPadded, ZeroFillsWhatDidNotArrive) {
  std::array<std::byte, 3> raw{std::byte{0x28}, std::byte{0x01}, std::byte{0xFF}};
  Sample s = LoadPadded<Sample>(raw);
  EXPECT_EQ(s.op, 0x28);
  EXPECT_EQ(s.length.value(), 0xFF00u);
  EXPECT_EQ(s.lba.value(), 0u);
  EXPECT_EQ(LoadPadded<Sample>(raw, 10).op, 0) << "an offset past the end yields all zeroes";
}

TEST(Store, TruncatesToTheBufferLikeAnAllocationLength) {
  Sample s{.op = 0x12, .flags = 0, .length = 0x0102, .lba = 0x0A0B0C0D};
  std::array<std::byte, 5> out{};
  EXPECT_EQ(Store(std::span<std::byte>(out), s), 5u);
  EXPECT_EQ(out[3], std::byte{0x02});
  EXPECT_EQ(out[4], std::byte{0x0A});
  EXPECT_EQ(Store(std::span<std::byte>(out), s, 5), 0u);
  EXPECT_EQ(Store(std::span<std::byte>(out), s, 4), 1u);
}

}  // namespace
}  // namespace mpath::wire
