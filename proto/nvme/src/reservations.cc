#include "mpath/nvme/spec/reservations.h"

#include <algorithm>
#include <cstring>

#include "mpath/nvme/spec/opcodes.h"

namespace mpath::nvme::spec {

std::string_view Name(ReservationType type) {
  switch (type) {
    case ReservationType::kNone: return "none";
    case ReservationType::kWriteExclusive: return "Write Exclusive";
    case ReservationType::kExclusiveAccess: return "Exclusive Access";
    case ReservationType::kWriteExclusiveRegistrantsOnly: return "Write Exclusive - Registrants Only";
    case ReservationType::kExclusiveAccessRegistrantsOnly: return "Exclusive Access - Registrants Only";
    case ReservationType::kWriteExclusiveAllRegistrants: return "Write Exclusive - All Registrants";
    case ReservationType::kExclusiveAccessAllRegistrants: return "Exclusive Access - All Registrants";
    default: return "unknown";
  }
}

SubmissionQueueEntry MakeReservationRegister(std::uint32_t nsid, RegisterAction action, IgnoreExistingKey iekey,
                                             ChangePtpl cptpl) {
  SubmissionQueueEntry sqe{};
  sqe.opc = Raw(IoOpcode::kReservationRegister);
  sqe.nsid = nsid;
  std::uint32_t cdw10 = static_cast<std::uint8_t>(action);
  cdw10 = wire::SetBit<3>(cdw10, iekey == IgnoreExistingKey::kYes);
  sqe.cdw10 = wire::SetBits<31, 30>(cdw10, static_cast<std::uint8_t>(cptpl));
  return sqe;
}

SubmissionQueueEntry MakeReservationAcquire(std::uint32_t nsid, AcquireAction action, ReservationType type) {
  SubmissionQueueEntry sqe{};
  sqe.opc = Raw(IoOpcode::kReservationAcquire);
  sqe.nsid = nsid;
  sqe.cdw10 = wire::SetBits<15, 8>(std::uint32_t{static_cast<std::uint8_t>(action)}, static_cast<std::uint8_t>(type));
  return sqe;
}

SubmissionQueueEntry MakeReservationRelease(std::uint32_t nsid, ReleaseAction action, ReservationType type) {
  SubmissionQueueEntry sqe{};
  sqe.opc = Raw(IoOpcode::kReservationRelease);
  sqe.nsid = nsid;
  sqe.cdw10 = wire::SetBits<15, 8>(std::uint32_t{static_cast<std::uint8_t>(action)}, static_cast<std::uint8_t>(type));
  return sqe;
}

SubmissionQueueEntry MakeReservationReport(std::uint32_t nsid, std::uint32_t length_bytes, ReportFormat format) {
  SubmissionQueueEntry sqe{};
  sqe.opc = Raw(IoOpcode::kReservationReport);
  sqe.nsid = nsid;
  sqe.cdw10 = std::max<std::uint32_t>(length_bytes / 4, 1) - 1;
  sqe.cdw11 = wire::SetBit<0>(std::uint32_t{0}, format == ReportFormat::kExtended);
  return sqe;
}

ReservationRegisterFields DecodeReservationRegister(const SubmissionQueueEntry& sqe) {
  const std::uint32_t cdw10 = sqe.cdw10.value();
  return ReservationRegisterFields{
      .action = static_cast<std::uint8_t>(wire::GetBits<2, 0>(cdw10)),
      .iekey = wire::GetBit<3>(cdw10),
      .cptpl = static_cast<std::uint8_t>(wire::GetBits<31, 30>(cdw10)),
  };
}

ReservationAcquireFields DecodeReservationAcquire(const SubmissionQueueEntry& sqe) {
  const std::uint32_t cdw10 = sqe.cdw10.value();
  return ReservationAcquireFields{
      .action = static_cast<std::uint8_t>(wire::GetBits<2, 0>(cdw10)),
      .iekey = wire::GetBit<3>(cdw10),
      .rtype = static_cast<std::uint8_t>(wire::GetBits<15, 8>(cdw10)),
  };
}

ReservationReleaseFields DecodeReservationRelease(const SubmissionQueueEntry& sqe) {
  const std::uint32_t cdw10 = sqe.cdw10.value();
  return ReservationReleaseFields{
      .action = static_cast<std::uint8_t>(wire::GetBits<2, 0>(cdw10)),
      .iekey = wire::GetBit<3>(cdw10),
      .rtype = static_cast<std::uint8_t>(wire::GetBits<15, 8>(cdw10)),
  };
}

ReservationReportFields DecodeReservationReport(const SubmissionQueueEntry& sqe) {
  return ReservationReportFields{
      .numd = sqe.cdw10.value(),
      .format = wire::GetBit<0>(sqe.cdw11.value()) ? ReportFormat::kExtended : ReportFormat::kCompact,
  };
}

Result<ReservationStatus> ParseReservationStatus(std::span<const std::byte> bytes, ReportFormat format) {
  const bool extended = format == ReportFormat::kExtended;
  const std::size_t header_size = extended ? sizeof(ReservationStatusExtendedHeader) : sizeof(ReservationStatusHeader);
  if (bytes.size() < header_size) return MakeError(Errc::kTargetError, "reservation status shorter than its header");
  const auto header = *wire::Load<ReservationStatusHeader>(bytes);
  ReservationStatus status{
      .generation = header.gen.value(),
      .rtype = header.rtype,
      .regctl = header.regctl.value(),
      .ptpl = wire::GetBit<0>(header.ptpls),
      .registrants = {},
  };
  const std::size_t entry_size = extended ? sizeof(RegisteredControllerExtended) : sizeof(RegisteredController);
  const std::size_t arrived = (bytes.size() - header_size) / entry_size;
  const std::size_t count = std::min<std::size_t>(status.regctl, arrived);
  status.registrants.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t offset = header_size + i * entry_size;
    Registrant r;
    if (extended) {
      const auto e = *wire::Load<RegisteredControllerExtended>(bytes, offset);
      r.cntlid = e.cntlid.value();
      r.holds_reservation = wire::GetBit<kRcstsHoldsReservation>(e.rcsts);
      r.rkey = e.rkey.value();
      r.hostid = e.hostid;
    } else {
      const auto c = *wire::Load<RegisteredController>(bytes, offset);
      r.cntlid = c.cntlid.value();
      r.holds_reservation = wire::GetBit<kRcstsHoldsReservation>(c.rcsts);
      r.rkey = c.rkey.value();
      std::copy(c.hostid.begin(), c.hostid.end(), r.hostid.begin());
    }
    status.registrants.push_back(r);
  }
  return status;
}

}  // namespace mpath::nvme::spec
