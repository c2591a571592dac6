#include "mpath/nvme/spec/nvm_io.h"

#include "mpath/nvme/spec/opcodes.h"

namespace mpath::nvme::spec {
namespace {

SubmissionQueueEntry MakeBlockRange(IoOpcode opcode, std::uint32_t nsid, std::uint64_t slba,
                                    std::uint32_t block_count, ForceUnitAccess fua) {
  SubmissionQueueEntry sqe{};
  sqe.opc = Raw(opcode);
  sqe.nsid = nsid;
  sqe.cdw10 = static_cast<std::uint32_t>(slba);
  sqe.cdw11 = static_cast<std::uint32_t>(slba >> 32);
  std::uint32_t cdw12 = wire::SetBits<15, 0>(std::uint32_t{0}, block_count - 1);
  sqe.cdw12 = wire::SetBit<30>(cdw12, fua == ForceUnitAccess::kYes);
  return sqe;
}

}  // namespace

SubmissionQueueEntry MakeRead(std::uint32_t nsid, std::uint64_t slba, std::uint32_t block_count, ForceUnitAccess fua) {
  return MakeBlockRange(IoOpcode::kRead, nsid, slba, block_count, fua);
}

SubmissionQueueEntry MakeWrite(std::uint32_t nsid, std::uint64_t slba, std::uint32_t block_count, ForceUnitAccess fua) {
  return MakeBlockRange(IoOpcode::kWrite, nsid, slba, block_count, fua);
}

SubmissionQueueEntry MakeWriteZeroes(std::uint32_t nsid, std::uint64_t slba, std::uint32_t block_count,
                                     Deallocate deac, ForceUnitAccess fua) {
  SubmissionQueueEntry sqe = MakeBlockRange(IoOpcode::kWriteZeroes, nsid, slba, block_count, fua);
  sqe.cdw12 = wire::SetBit<25>(sqe.cdw12.value(), deac == Deallocate::kYes);
  return sqe;
}

SubmissionQueueEntry MakeFlush(std::uint32_t nsid) {
  SubmissionQueueEntry sqe{};
  sqe.opc = Raw(IoOpcode::kFlush);
  sqe.nsid = nsid;
  return sqe;
}

ReadWriteFields DecodeReadWrite(const SubmissionQueueEntry& sqe) {
  const std::uint32_t cdw12 = sqe.cdw12.value();
  return ReadWriteFields{
      .slba = (std::uint64_t{sqe.cdw11.value()} << 32) | sqe.cdw10.value(),
      .nlb = static_cast<std::uint16_t>(wire::GetBits<15, 0>(cdw12)),
      .deac = wire::GetBit<25>(cdw12),
      .prinfo = static_cast<std::uint8_t>(wire::GetBits<29, 26>(cdw12)),
      .fua = wire::GetBit<30>(cdw12),
      .limited_retry = wire::GetBit<31>(cdw12),
  };
}

SubmissionQueueEntry MakeDeallocate(std::uint32_t nsid, std::uint16_t range_count) {
  SubmissionQueueEntry sqe{};
  sqe.opc = Raw(IoOpcode::kDatasetManagement);
  sqe.nsid = nsid;
  sqe.cdw10 = wire::SetBits<7, 0>(std::uint32_t{0}, range_count - 1u);
  sqe.cdw11 = wire::SetBit<2>(std::uint32_t{0}, true);
  return sqe;
}

DatasetManagementFields DecodeDatasetManagement(const SubmissionQueueEntry& sqe) {
  const std::uint32_t cdw11 = sqe.cdw11.value();
  return DatasetManagementFields{
      .range_count = static_cast<std::uint16_t>(wire::GetBits<7, 0>(sqe.cdw10.value()) + 1),
      .integral_read = wire::GetBit<0>(cdw11),
      .integral_write = wire::GetBit<1>(cdw11),
      .deallocate = wire::GetBit<2>(cdw11),
  };
}

}  // namespace mpath::nvme::spec
