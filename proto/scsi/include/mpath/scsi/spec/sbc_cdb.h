// SBC-4 command descriptor blocks and their parameter data: capacity, reads and writes, cache flush, and the
// provisioning commands (WRITE SAME with UNMAP, UNMAP).
#pragma once

#include <cstdint>

#include "mpath/proto/wire.h"
#include "mpath/scsi/spec/spc_cdb.h"

namespace mpath::scsi::spec {

// SBC-4 r22 §5.20 "READ CAPACITY (10) command" (Table 64). LOGICAL BLOCK ADDRESS and PMI are obsolete in SBC-4.
struct ReadCapacity10Cdb {
  std::uint8_t operation_code;
  std::uint8_t reserved1;
  wire::Be32 logical_block_address;
  std::uint8_t reserved6[2];
  std::uint8_t pmi;  // PMI bit 0 (obsolete)
  std::uint8_t control;

  static constexpr ReadCapacity10Cdb Make() { return ReadCapacity10Cdb{op::kReadCapacity10, 0, 0u, {}, 0, 0}; }
};
MPATH_WIRE_LAYOUT(ReadCapacity10Cdb, 10);
MPATH_WIRE_FIELD(ReadCapacity10Cdb, logical_block_address, 2);

// SBC-4 r22 §5.20.2 "READ CAPACITY (10) parameter data" (Table 65).
struct ReadCapacity10Data {
  wire::Be32 returned_logical_block_address;  // FFFF_FFFFh when the capacity needs READ CAPACITY (16)
  wire::Be32 logical_block_length_in_bytes;
};
MPATH_WIRE_LAYOUT(ReadCapacity10Data, 8);
MPATH_WIRE_FIELD(ReadCapacity10Data, logical_block_length_in_bytes, 4);

// SBC-4 r22 §5.21 "READ CAPACITY (16) command" (Table 66): SERVICE ACTION IN(16), service action 10h.
struct ReadCapacity16Cdb {
  std::uint8_t operation_code;
  std::uint8_t service_action_field;  // SERVICE ACTION bits 4:0
  wire::Be64 logical_block_address;   // obsolete
  wire::Be32 allocation_length;
  std::uint8_t pmi;                   // PMI bit 0 (obsolete)
  std::uint8_t control;

  [[nodiscard]] constexpr std::uint8_t service_action() const { return wire::GetBits<4, 0>(service_action_field); }
  static constexpr ReadCapacity16Cdb Make(std::uint32_t allocation_length) {
    return ReadCapacity16Cdb{op::kServiceActionIn16, service_action::kReadCapacity16, 0ull, allocation_length, 0, 0};
  }
};
MPATH_WIRE_LAYOUT(ReadCapacity16Cdb, 16);
MPATH_WIRE_FIELD(ReadCapacity16Cdb, logical_block_address, 2);
MPATH_WIRE_FIELD(ReadCapacity16Cdb, allocation_length, 10);

// SBC-4 r22 §5.21.2 "READ CAPACITY (16) parameter data" (Table 67).
struct ReadCapacity16Data {
  wire::Be64 returned_logical_block_address;
  wire::Be32 logical_block_length_in_bytes;
  std::uint8_t protection;           // RC BASIS bits 5:4, P_TYPE bits 3:1, PROT_EN bit 0
  std::uint8_t exponents;            // P_I_EXPONENT bits 7:4, LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT bits 3:0
  wire::Be16 provisioning;           // LBPME bit 15, LBPRZ bit 14, LOWEST ALIGNED LOGICAL BLOCK ADDRESS bits 13:0
  std::uint8_t reserved16[16];

  [[nodiscard]] constexpr bool lbpme() const { return wire::GetBit<15>(provisioning.value()); }
  [[nodiscard]] constexpr bool lbprz() const { return wire::GetBit<14>(provisioning.value()); }
  [[nodiscard]] constexpr std::uint16_t lowest_aligned_logical_block_address() const {
    return wire::GetBits<13, 0>(provisioning.value());
  }
  constexpr void set_provisioning(bool lbpme, bool lbprz) {
    std::uint16_t v = provisioning.value();
    v = wire::SetBit<15>(v, lbpme);
    v = wire::SetBit<14>(v, lbprz);
    provisioning = v;
  }
};
MPATH_WIRE_LAYOUT(ReadCapacity16Data, 32);
MPATH_WIRE_FIELD(ReadCapacity16Data, logical_block_length_in_bytes, 8);
MPATH_WIRE_FIELD(ReadCapacity16Data, protection, 12);
MPATH_WIRE_FIELD(ReadCapacity16Data, provisioning, 14);

// FUA: the device server writes (or reads) through to the medium.
enum class Fua : bool { kNo, kYes };

// Byte 1 of READ(10)/(16) and WRITE(10)/(16): SBC-4 r22 §5.16 Table 59 / §5.40 Table 107.
// RDPROTECT/WRPROTECT bits 7:5, DPO bit 4, FUA bit 3; RARC bit 2 on reads.
struct RwFlags {
  [[nodiscard]] static constexpr std::uint8_t Protect(std::uint8_t b) { return wire::GetBits<7, 5>(b); }
  [[nodiscard]] static constexpr bool HasDpo(std::uint8_t b) { return wire::GetBit<4>(b); }
  [[nodiscard]] static constexpr bool HasFua(std::uint8_t b) { return wire::GetBit<3>(b); }
  [[nodiscard]] static constexpr std::uint8_t Make(Fua fua) { return wire::SetBit<3>(std::uint8_t{0}, fua == Fua::kYes); }
};

// SBC-4 r22 §5.16 "READ (10) command" (Table 59).
struct Read10Cdb {
  std::uint8_t operation_code;
  std::uint8_t flags;  // RwFlags
  wire::Be32 logical_block_address;
  std::uint8_t group_number;  // GROUP NUMBER bits 4:0
  wire::Be16 transfer_length;
  std::uint8_t control;

  static constexpr Read10Cdb Make(std::uint32_t lba, std::uint16_t blocks, Fua fua = Fua::kNo) {
    return Read10Cdb{op::kRead10, RwFlags::Make(fua), lba, 0, blocks, 0};
  }
};
MPATH_WIRE_LAYOUT(Read10Cdb, 10);
MPATH_WIRE_FIELD(Read10Cdb, logical_block_address, 2);
MPATH_WIRE_FIELD(Read10Cdb, transfer_length, 7);

// SBC-4 r22 §5.18 "READ (16) command" (Table 61).
struct Read16Cdb {
  std::uint8_t operation_code;
  std::uint8_t flags;  // RwFlags
  wire::Be64 logical_block_address;
  wire::Be32 transfer_length;
  std::uint8_t group_number;  // GROUP NUMBER bits 5:0
  std::uint8_t control;

  static constexpr Read16Cdb Make(std::uint64_t lba, std::uint32_t blocks, Fua fua = Fua::kNo) {
    return Read16Cdb{op::kRead16, RwFlags::Make(fua), lba, blocks, 0, 0};
  }
};
MPATH_WIRE_LAYOUT(Read16Cdb, 16);
MPATH_WIRE_FIELD(Read16Cdb, logical_block_address, 2);
MPATH_WIRE_FIELD(Read16Cdb, transfer_length, 10);

// SBC-4 r22 §5.40 "WRITE (10) command" (Table 107).
struct Write10Cdb {
  std::uint8_t operation_code;
  std::uint8_t flags;  // RwFlags
  wire::Be32 logical_block_address;
  std::uint8_t group_number;
  wire::Be16 transfer_length;
  std::uint8_t control;

  static constexpr Write10Cdb Make(std::uint32_t lba, std::uint16_t blocks, Fua fua = Fua::kNo) {
    return Write10Cdb{op::kWrite10, RwFlags::Make(fua), lba, 0, blocks, 0};
  }
};
MPATH_WIRE_LAYOUT(Write10Cdb, 10);
MPATH_WIRE_FIELD(Write10Cdb, logical_block_address, 2);
MPATH_WIRE_FIELD(Write10Cdb, transfer_length, 7);

// SBC-4 r22 §5.42 "WRITE (16) command" (Table 109).
struct Write16Cdb {
  std::uint8_t operation_code;
  std::uint8_t flags;  // RwFlags
  wire::Be64 logical_block_address;
  wire::Be32 transfer_length;
  std::uint8_t group_number;
  std::uint8_t control;

  static constexpr Write16Cdb Make(std::uint64_t lba, std::uint32_t blocks, Fua fua = Fua::kNo) {
    return Write16Cdb{op::kWrite16, RwFlags::Make(fua), lba, blocks, 0, 0};
  }
};
MPATH_WIRE_LAYOUT(Write16Cdb, 16);
MPATH_WIRE_FIELD(Write16Cdb, logical_block_address, 2);
MPATH_WIRE_FIELD(Write16Cdb, transfer_length, 10);

// SBC-4 r22 §5.30 "SYNCHRONIZE CACHE (10) command" (Table 93).
struct SynchronizeCache10Cdb {
  std::uint8_t operation_code;
  std::uint8_t flags;  // IMMED bit 1
  wire::Be32 logical_block_address;
  std::uint8_t group_number;
  wire::Be16 number_of_logical_blocks;  // 0: through the last logical block
  std::uint8_t control;

  [[nodiscard]] constexpr bool immed() const { return wire::GetBit<1>(flags); }
  static constexpr SynchronizeCache10Cdb Make(std::uint32_t lba = 0, std::uint16_t blocks = 0) {
    return SynchronizeCache10Cdb{op::kSynchronizeCache10, 0, lba, 0, blocks, 0};
  }
};
MPATH_WIRE_LAYOUT(SynchronizeCache10Cdb, 10);
MPATH_WIRE_FIELD(SynchronizeCache10Cdb, number_of_logical_blocks, 7);

// SBC-4 r22 §5.31 "SYNCHRONIZE CACHE (16) command" (Table 94).
struct SynchronizeCache16Cdb {
  std::uint8_t operation_code;
  std::uint8_t flags;  // IMMED bit 1
  wire::Be64 logical_block_address;
  wire::Be32 number_of_logical_blocks;  // 0: through the last logical block
  std::uint8_t group_number;
  std::uint8_t control;

  [[nodiscard]] constexpr bool immed() const { return wire::GetBit<1>(flags); }
  static constexpr SynchronizeCache16Cdb Make(std::uint64_t lba = 0, std::uint32_t blocks = 0) {
    return SynchronizeCache16Cdb{op::kSynchronizeCache16, 0, lba, blocks, 0, 0};
  }
};
MPATH_WIRE_LAYOUT(SynchronizeCache16Cdb, 16);
MPATH_WIRE_FIELD(SynchronizeCache16Cdb, number_of_logical_blocks, 10);

// SBC-4 r22 §5.50 "WRITE SAME (16) command" (Table 121).
struct WriteSame16Cdb {
  std::uint8_t operation_code;
  std::uint8_t flags;  // WRPROTECT bits 7:5, ANCHOR bit 4, UNMAP bit 3, NDOB bit 0
  wire::Be64 logical_block_address;
  wire::Be32 number_of_logical_blocks;
  std::uint8_t group_number;
  std::uint8_t control;

  [[nodiscard]] constexpr std::uint8_t wrprotect() const { return wire::GetBits<7, 5>(flags); }
  [[nodiscard]] constexpr bool anchor() const { return wire::GetBit<4>(flags); }
  [[nodiscard]] constexpr bool unmap() const { return wire::GetBit<3>(flags); }
  [[nodiscard]] constexpr bool ndob() const { return wire::GetBit<0>(flags); }
  enum class Unmap : bool { kNo, kYes };
  enum class Ndob : bool { kNo, kYes };  // no data-out buffer: the block written is all zeroes
  static constexpr WriteSame16Cdb Make(std::uint64_t lba, std::uint32_t blocks, Unmap unmap = Unmap::kNo,
                                       Ndob ndob = Ndob::kNo) {
    std::uint8_t f = wire::SetBit<3>(std::uint8_t{0}, unmap == Unmap::kYes);
    f = wire::SetBit<0>(f, ndob == Ndob::kYes);
    return WriteSame16Cdb{op::kWriteSame16, f, lba, blocks, 0, 0};
  }
};
MPATH_WIRE_LAYOUT(WriteSame16Cdb, 16);
MPATH_WIRE_FIELD(WriteSame16Cdb, logical_block_address, 2);
MPATH_WIRE_FIELD(WriteSame16Cdb, number_of_logical_blocks, 10);

// SBC-4 r22 §5.35.1 "UNMAP command overview" (Table 98).
struct UnmapCdb {
  std::uint8_t operation_code;
  std::uint8_t flags;  // ANCHOR bit 0
  std::uint8_t reserved2[4];
  std::uint8_t group_number;
  wire::Be16 parameter_list_length;
  std::uint8_t control;

  [[nodiscard]] constexpr bool anchor() const { return wire::GetBit<0>(flags); }
  static constexpr UnmapCdb Make(std::uint16_t parameter_list_length) {
    return UnmapCdb{op::kUnmap, 0, {}, 0, parameter_list_length, 0};
  }
};
MPATH_WIRE_LAYOUT(UnmapCdb, 10);
MPATH_WIRE_FIELD(UnmapCdb, parameter_list_length, 7);

// SBC-4 r22 §5.35.2 "UNMAP parameter list" (Table 99).
struct UnmapParameterListHeader {
  wire::Be16 unmap_data_length;                   // bytes after byte 1
  wire::Be16 unmap_block_descriptor_data_length;  // bytes of descriptors after byte 7
  std::uint8_t reserved4[4];

  static constexpr UnmapParameterListHeader ForDescriptors(std::uint16_t count) {
    return UnmapParameterListHeader{static_cast<std::uint16_t>(6 + 16 * count),
                                    static_cast<std::uint16_t>(16 * count), {}};
  }
};
MPATH_WIRE_LAYOUT(UnmapParameterListHeader, 8);
MPATH_WIRE_FIELD(UnmapParameterListHeader, unmap_block_descriptor_data_length, 2);

// SBC-4 r22 §5.35.2 "UNMAP block descriptor" (Table 100).
struct UnmapBlockDescriptor {
  wire::Be64 unmap_logical_block_address;
  wire::Be32 number_of_logical_blocks;
  std::uint8_t reserved12[4];
};
MPATH_WIRE_LAYOUT(UnmapBlockDescriptor, 16);
MPATH_WIRE_FIELD(UnmapBlockDescriptor, number_of_logical_blocks, 8);

}  // namespace mpath::scsi::spec
