#include "mpath/nvme/spec/features.h"

#include "mpath/nvme/spec/async_event.h"
#include "mpath/nvme/spec/opcodes.h"

namespace mpath::nvme::spec {

SubmissionQueueEntry MakeSetFeatures(FeatureId fid, std::uint32_t cdw11, SaveFeature save) {
  SubmissionQueueEntry sqe{};
  sqe.opc = Raw(AdminOpcode::kSetFeatures);
  sqe.cdw10 = wire::SetBit<31>(std::uint32_t{static_cast<std::uint8_t>(fid)}, save == SaveFeature::kYes);
  sqe.cdw11 = cdw11;
  return sqe;
}

SubmissionQueueEntry MakeGetFeatures(FeatureId fid, FeatureSelect select) {
  SubmissionQueueEntry sqe{};
  sqe.opc = Raw(AdminOpcode::kGetFeatures);
  sqe.cdw10 = wire::SetBits<10, 8>(std::uint32_t{static_cast<std::uint8_t>(fid)}, static_cast<std::uint8_t>(select));
  return sqe;
}

SetFeaturesFields DecodeSetFeatures(const SubmissionQueueEntry& sqe) {
  const std::uint32_t cdw10 = sqe.cdw10.value();
  return SetFeaturesFields{
      .fid = static_cast<FeatureId>(wire::GetBits<7, 0>(cdw10)),
      .save = wire::GetBit<31>(cdw10) ? SaveFeature::kYes : SaveFeature::kNo,
      .cdw11 = sqe.cdw11.value(),
  };
}

GetFeaturesFields DecodeGetFeatures(const SubmissionQueueEntry& sqe) {
  const std::uint32_t cdw10 = sqe.cdw10.value();
  return GetFeaturesFields{
      .fid = static_cast<FeatureId>(wire::GetBits<7, 0>(cdw10)),
      .select = static_cast<FeatureSelect>(wire::GetBits<10, 8>(cdw10)),
      .cdw11 = sqe.cdw11.value(),
  };
}

SubmissionQueueEntry MakeAsyncEventRequest() {
  SubmissionQueueEntry sqe{};
  sqe.opc = Raw(AdminOpcode::kAsynchronousEventRequest);
  return sqe;
}

}  // namespace mpath::nvme::spec
