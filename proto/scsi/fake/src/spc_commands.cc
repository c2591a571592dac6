// The SPC-5 commands the array answers: TEST UNIT READY, INQUIRY with its VPD pages, REQUEST SENSE, REPORT LUNS,
// REPORT/SET TARGET PORT GROUPS, and PERSISTENT RESERVE IN/OUT (handed to the LU's reservation engine).
#include <algorithm>
#include <cstdio>
#include <string>

#include "array_state.h"
#include "mpath/scsi/spec/alua.h"
#include "mpath/scsi/spec/inquiry.h"
#include "mpath/scsi/spec/pr.h"
#include "mpath/scsi/spec/report_luns.h"
#include "mpath/scsi/spec/spc_cdb.h"

namespace mpath::scsi::fake::internal {
namespace {

using spec::Association;
using spec::CodeSet;
using spec::DesignationDescriptorHeader;
using spec::DesignatorType;
using spec::Piv;

// LIO's INQUIRY VERSION: SPC-4.
constexpr std::uint8_t kInquiryVersion = 0x06;
constexpr std::uint8_t kResponseDataFormat = 2;

template <std::size_t N>
void CopyPadded(char (&field)[N], std::string_view text) {
  std::fill(std::begin(field), std::end(field), ' ');
  std::copy_n(text.begin(), std::min(text.size(), N), std::begin(field));
}

void AnswerStandardInquiry(Exec& e, std::uint8_t qualifier, std::uint8_t device_type, std::size_t allocation_length) {
  const ArrayConfig& config = e.array.config;
  spec::StandardInquiryData d{};
  d.set_peripheral(qualifier, device_type);
  d.version = kInquiryVersion;
  d.set_hisup(true);
  d.set_response_data_format(kResponseDataFormat);
  d.additional_length = sizeof(d) - 5;
  d.set_tpgs(config.tpgs);
  d.set_cmdque(true);
  CopyPadded(d.t10_vendor_identification, config.vendor);
  CopyPadded(d.product_identification, config.product);
  CopyPadded(d.product_revision_level, config.revision);
  // The claims LIO makes (spc_emulate_inquiry_std).
  d.version_descriptors[0] = spec::version_descriptor::kSam5;
  d.version_descriptors[1] = spec::version_descriptor::kIscsi;
  d.version_descriptors[2] = spec::version_descriptor::kSpc4;
  d.version_descriptors[3] = spec::version_descriptor::kSbc3;
  SendData(e, wire::BytesOf(d), allocation_length);
}

spec::VpdPageHeader PageHeader(std::uint8_t qualifier, std::uint8_t device_type, std::uint8_t page) {
  spec::VpdPageHeader h{};
  h.peripheral = wire::SetBits<4, 0>(wire::SetBits<7, 5>(std::uint8_t{0}, qualifier), device_type);
  h.page_code = page;
  return h;
}

// Fills PAGE LENGTH from the reply's size and sends it.
void SendPage(Exec& e, Reply& reply, std::size_t allocation_length) {
  auto header = wire::LoadPadded<spec::VpdPageHeader>(reply.bytes());
  header.page_length = static_cast<std::uint16_t>(reply.size() - sizeof(spec::VpdPageHeader));
  reply.PutAt(0, header);
  SendData(e, reply.bytes(), allocation_length);
}

std::vector<std::uint8_t> SupportedPages(const LogicalUnit& lu) {
  std::vector<std::uint8_t> pages{spec::vpd::kSupportedPages, spec::vpd::kUnitSerialNumber,
                                  spec::vpd::kDeviceIdentification, spec::vpd::kBlockLimits};
  if (lu.config.thin) pages.push_back(spec::vpd::kLogicalBlockProvisioning);
  return pages;
}

// SPC-5 r19 §7.7.6 "Device Identification VPD page", laid out as LIO's spc_emulate_evpd_83 lays it out: NAA and
// T10 vendor id for the LU, then relative target port, target port group and SCSI name string for the port the
// command came through.
void AppendDeviceIdentification(Exec& e, Reply& reply) {
  const ArrayConfig& config = e.array.config;
  const LogicalUnitConfig& lu = e.lu->config;
  constexpr auto kIscsi = static_cast<std::uint8_t>(spec::ProtocolIdentifier::kIscsi);

  reply.Put(DesignationDescriptorHeader::Make(0, CodeSet::kBinary, Piv::kNo, Association::kLogicalUnit,
                                              DesignatorType::kNaa, static_cast<std::uint8_t>(lu.naa.size())));
  reply.PutBytes(std::as_bytes(std::span(lu.naa)));

  // LIO: the vendor padded to 8, then "<product>:<unit serial>" and its NUL terminator.
  std::string vendor = config.vendor;
  vendor.resize(8, ' ');
  std::string t10 = vendor + config.product + ":" + lu.serial;
  t10.push_back('\0');
  if (t10.size() > 0xFF) t10.resize(0xFF);
  reply.Put(DesignationDescriptorHeader::Make(0, CodeSet::kAscii, Piv::kNo, Association::kLogicalUnit,
                                              DesignatorType::kT10VendorId, static_cast<std::uint8_t>(t10.size())));
  reply.PutText(t10);

  const std::uint16_t port = e.nexus.id.relative_target_port;
  reply.Put(DesignationDescriptorHeader::Make(kIscsi, CodeSet::kBinary, Piv::kYes, Association::kTargetPort,
                                              DesignatorType::kRelativeTargetPort, 4));
  reply.Put(spec::RelativeTargetPortDesignator{{}, port});

  reply.Put(DesignationDescriptorHeader::Make(kIscsi, CodeSet::kBinary, Piv::kYes, Association::kTargetPort,
                                              DesignatorType::kTargetPortGroup, 4));
  reply.Put(spec::TargetPortGroupDesignator{{}, e.array.groups[e.nexus.group].id});

  // "<target name>,t,0x<port>", NUL terminated and NUL padded to a multiple of 4 (SPC-5 §7.7.6.11), at most 252.
  char suffix[16];
  std::snprintf(suffix, sizeof(suffix), ",t,0x%04x", static_cast<unsigned>(port));
  std::string name = config.target_name + suffix;
  name.push_back('\0');
  name.resize(std::min<std::size_t>((name.size() + 3) / 4 * 4, 252), '\0');
  reply.Put(DesignationDescriptorHeader::Make(kIscsi, CodeSet::kUtf8, Piv::kYes, Association::kTargetPort,
                                              DesignatorType::kScsiNameString, static_cast<std::uint8_t>(name.size())));
  reply.PutText(name);
}

void AnswerVpd(Exec& e, std::uint8_t page, std::size_t allocation_length) {
  const LogicalUnitConfig& lu = e.lu->config;
  const auto pages = SupportedPages(*e.lu);
  if (std::find(pages.begin(), pages.end(), page) == pages.end()) {
    Fail(e, spec::asc::kInvalidFieldInCdb);
    return;
  }
  Reply reply;
  reply.Put(PageHeader(spec::kPeripheralQualifierConnected, spec::kDeviceTypeDirectAccessBlock, page));
  switch (page) {
    case spec::vpd::kSupportedPages:
      reply.PutBytes(std::as_bytes(std::span(pages)));
      break;
    case spec::vpd::kUnitSerialNumber:
      reply.PutText(lu.serial);
      break;
    case spec::vpd::kDeviceIdentification:
      AppendDeviceIdentification(e, reply);
      break;
    case spec::vpd::kBlockLimits: {
      spec::BlockLimitsVpdPage b{};
      b.wsnz = wire::SetBit<0>(std::uint8_t{0}, true);  // WRITE SAME with 0 blocks is refused, not "to the end"
      b.optimal_transfer_length_granularity = 1;
      b.maximum_transfer_length = lu.max_transfer_blocks;
      b.optimal_transfer_length = lu.max_transfer_blocks;
      if (lu.thin) {
        b.maximum_unmap_lba_count = lu.max_unmap_blocks;
        b.maximum_unmap_block_descriptor_count = lu.max_unmap_descriptors;
        b.optimal_unmap_granularity = 1;
      }
      b.maximum_write_same_length = lu.max_write_same_blocks;
      reply.PutBytes(wire::BytesOf(b).subspan(sizeof(spec::VpdPageHeader)));
      break;
    }
    case spec::vpd::kLogicalBlockProvisioning: {
      spec::LogicalBlockProvisioningVpdPage p{};
      // LBPU (UNMAP) and LBPWS (WRITE SAME(16) with UNMAP); LBPRZ 001b: deallocated blocks read as zeroes.
      std::uint8_t flags = wire::SetBit<7>(std::uint8_t{0}, true);
      flags = wire::SetBit<6>(flags, true);
      flags = wire::SetBits<4, 2>(flags, 0b001);
      p.flags = flags;
      p.provisioning = wire::SetBits<2, 0>(std::uint8_t{0}, spec::kProvisioningTypeThin);
      reply.PutBytes(wire::BytesOf(p).subspan(sizeof(spec::VpdPageHeader)));
      break;
    }
    default: break;
  }
  SendPage(e, reply, allocation_length);
}

void AnswerReportTargetPortGroups(Exec& e) {
  const ArrayConfig& config = e.array.config;
  const auto cdb = e.CdbAs<spec::ReportTargetPortGroupsCdb>();
  // Without ALUA (TPGS 0) tgt refuses RTPG as an invalid field; LIO would not get here.
  if (config.tpgs == 0) {
    Fail(e, spec::asc::kInvalidFieldInCdb);
    return;
  }
  const auto format = static_cast<spec::RtpgFormat>(cdb.parameter_data_format());
  if (format != spec::RtpgFormat::kLengthOnly && format != spec::RtpgFormat::kExtended) {
    Fail(e, spec::asc::kInvalidFieldInCdb);
    return;
  }
  Reply descriptors;
  for (const PortGroup& g : e.array.groups) {
    spec::TargetPortGroupDescriptor d{};
    d.set_state(g.preferred, g.Reported());
    // What LIO advertises: every state but logical block dependent.
    d.supported = spec::tpg_support::kTransitioning | spec::tpg_support::kOffline | spec::tpg_support::kUnavailable |
                  spec::tpg_support::kStandby | spec::tpg_support::kActiveNonOptimized |
                  spec::tpg_support::kActiveOptimized;
    d.target_port_group = g.id;
    d.status_code = static_cast<std::uint8_t>(g.status);
    d.target_port_count = static_cast<std::uint8_t>(g.ports.size());
    descriptors.Put(d);
    for (std::uint16_t port : g.ports) descriptors.Put(spec::TargetPortDescriptor{{}, port});
  }
  const auto descriptor_bytes = static_cast<std::uint32_t>(descriptors.size());
  Reply reply;
  std::size_t reply_length = 0;
  if (format == spec::RtpgFormat::kLengthOnly) {
    reply.Put(spec::RtpgLengthOnlyHeader{descriptor_bytes});
    reply.PutBytes(descriptors.bytes());
    reply_length = reply.size();
  } else {
    spec::RtpgExtendedHeader h{};
    h.set_format(spec::RtpgFormat::kExtended);
    h.implicit_transition_time = config.transition_time_secs;
    // LIO 6.1 puts the length-only value (the descriptors) in RETURN DATA LENGTH of the extended header too, and
    // transfers that many bytes plus 4: the last 4 bytes never arrive.
    h.return_data_length = config.lio_truncated_extended_rtpg ? descriptor_bytes : descriptor_bytes + 4;
    reply.Put(h);
    reply.PutBytes(descriptors.bytes());
    reply_length = config.lio_truncated_extended_rtpg ? descriptor_bytes + 4 : reply.size();
  }
  SendData(e, reply.bytes().first(reply_length), cdb.allocation_length.value());
}

void AnswerSetTargetPortGroups(Exec& e) {
  const auto cdb = e.CdbAs<spec::SetTargetPortGroupsCdb>();
  // LIO answers STPG without explicit ALUA as an unsupported opcode.
  if ((e.array.config.tpgs & spec::kTpgsExplicit) == 0) {
    Fail(e, spec::asc::kInvalidCommandOperationCode);
    return;
  }
  const std::uint32_t length = cdb.parameter_list_length.value();
  if (length > e.command.data.size()) {
    Fail(e, spec::asc::kInvalidFieldInCdb);
    return;
  }
  // SPC-5 §5.14, the table of commands allowed under each reservation type: SET TARGET PORT GROUPS conflicts as a
  // write does.
  if (!ReservationAllows(e, AccessKind::kWrite)) return;
  if (length == 0) {
    Complete(e, 0);
    return;
  }
  if (length < sizeof(spec::StpgParameterListHeader) ||
      (length - sizeof(spec::StpgParameterListHeader)) % sizeof(spec::SetTargetPortGroupDescriptor) != 0) {
    Fail(e, spec::asc::kInvalidFieldInParameterList);
    return;
  }
  const std::span<const std::byte> list = e.command.data.first(length);
  // All or nothing: every descriptor is checked before any group changes.
  std::vector<std::pair<PortGroup*, AluaState>> changes;
  for (std::size_t offset = sizeof(spec::StpgParameterListHeader); offset < length;
       offset += sizeof(spec::SetTargetPortGroupDescriptor)) {
    const auto d = *wire::Load<spec::SetTargetPortGroupDescriptor>(list, offset);
    PortGroup* group = e.array.FindGroup(d.target_port_group.value());
    const AluaState state = d.access_state();
    const bool settable = state == AluaState::kActiveOptimized || state == AluaState::kActiveNonOptimized ||
                          state == AluaState::kStandby || state == AluaState::kUnavailable;
    if (group == nullptr || !settable) {
      Fail(e, spec::asc::kInvalidFieldInParameterList);
      return;
    }
    changes.emplace_back(group, state);
  }
  for (auto& [group, state] : changes) {
    group->state = state;
    group->transition_ends.reset();
    group->status = spec::TpgStatusCode::kAlteredBySetTargetPortGroups;
  }
  // The issuer asked for the change; every other nexus learns of it.
  e.array.QueueUnitAttentionEverywhere(spec::asc::kAsymmetricAccessStateChanged, e.context.nexus_index);
  Complete(e, length);
}

void ApplyReservationAnswer(Exec& e, const PrAnswer& answer, std::size_t used) {
  switch (answer.status) {
    case spec::Status::kGood: Complete(e, used); break;
    case spec::Status::kReservationConflict: Conflict(e); break;
    case spec::Status::kCheckCondition: Fail(e, answer.sense); break;
    default:
      e.command.status = static_cast<std::uint8_t>(answer.status);
      e.command.residual = static_cast<std::uint32_t>(e.command.data.size());
      break;
  }
  e.array.QueueReservationUnitAttentions(*e.lu, answer.unit_attentions);
}

}  // namespace

void TestUnitReady(Exec& e) { Complete(e, 0); }

void Inquiry(Exec& e) {
  const auto cdb = e.CdbAs<spec::InquiryCdb>();
  const std::size_t allocation_length = cdb.allocation_length.value();
  if (cdb.cmddt() || (!cdb.evpd() && cdb.page_code != 0)) {
    Fail(e, spec::asc::kInvalidFieldInCdb);
    return;
  }
  if (e.lu == nullptr) {
    if (!cdb.evpd()) {
      AnswerStandardInquiry(e, spec::kPeripheralQualifierNotSupported, spec::kDeviceTypeUnknown, allocation_length);
    } else if (cdb.page_code == spec::vpd::kSupportedPages) {
      Reply reply;
      reply.Put(PageHeader(spec::kPeripheralQualifierNotSupported, spec::kDeviceTypeUnknown, cdb.page_code));
      reply.Put(spec::vpd::kSupportedPages);
      SendPage(e, reply, allocation_length);
    } else {
      Fail(e, spec::asc::kInvalidFieldInCdb);
    }
    return;
  }
  if (!cdb.evpd()) {
    AnswerStandardInquiry(e, spec::kPeripheralQualifierConnected, spec::kDeviceTypeDirectAccessBlock,
                          allocation_length);
  } else {
    AnswerVpd(e, cdb.page_code, allocation_length);
  }
}

void RequestSense(Exec& e, std::optional<spec::SenseCode> pending) {
  const auto cdb = e.CdbAs<spec::RequestSenseCdb>();
  const auto format = cdb.desc() ? SenseFormat::kDescriptor : SenseFormat::kFixed;
  std::array<std::byte, kMaxSenseLength> sense{};
  const std::size_t length = spec::BuildSense(std::span<std::byte>(sense), format, pending.value_or(spec::SenseCode{}));
  SendData(e, std::span<const std::byte>(sense).first(length), cdb.allocation_length);
}

void ReportLuns(Exec& e) {
  const auto cdb = e.CdbAs<spec::ReportLunsCdb>();
  const std::uint32_t allocation_length = cdb.allocation_length.value();
  // SPC-5 §6.33: an allocation length under 16 cannot hold the header and one LUN.
  if (allocation_length < 16) {
    Fail(e, spec::asc::kInvalidFieldInCdb);
    return;
  }
  Reply reply;
  reply.Put(spec::ReportLunsHeader{});
  switch (cdb.select_report) {
    case spec::select_report::kAllExceptWellKnown:
    case spec::select_report::kAll:
      for (const auto& [lun, lu] : e.array.lus) reply.Put(spec::LunEntry{*spec::EncodeLun(lun)});
      break;
    case spec::select_report::kWellKnownOnly: break;  // the array has no well-known LUs
    default:
      Fail(e, spec::asc::kInvalidFieldInCdb);
      return;
  }
  reply.PutAt(0, spec::ReportLunsHeader{static_cast<std::uint32_t>(reply.size() - sizeof(spec::ReportLunsHeader)), {}});
  SendData(e, reply.bytes(), allocation_length);
}

void MaintenanceIn(Exec& e) {
  if (spec::ServiceActionOf(e.command.cdb[1]) != spec::service_action::kReportTargetPortGroups) {
    Fail(e, spec::asc::kInvalidFieldInCdb);
    return;
  }
  AnswerReportTargetPortGroups(e);
}

void MaintenanceOut(Exec& e) {
  if (spec::ServiceActionOf(e.command.cdb[1]) != spec::service_action::kSetTargetPortGroups) {
    Fail(e, spec::asc::kInvalidFieldInCdb);
    return;
  }
  AnswerSetTargetPortGroups(e);
}

void PersistentReserveIn(Exec& e) {
  const std::size_t allocation_length = e.CdbAs<spec::PersistentReserveInCdb>().allocation_length.value();
  const std::span<std::byte> out = e.command.data.first(std::min(allocation_length, e.command.data.size()));
  const PrAnswer answer = e.lu->reservations->In(e.nexus.id, e.command.cdb_bytes(), out);
  ApplyReservationAnswer(e, answer, answer.transferred);
}

void PersistentReserveOut(Exec& e) {
  const std::uint32_t length = e.CdbAs<spec::PersistentReserveOutCdb>().parameter_list_length.value();
  if (length > e.command.data.size()) {
    Fail(e, spec::asc::kInvalidFieldInCdb);
    return;
  }
  const PrAnswer answer = e.lu->reservations->Out(e.nexus.id, e.command.cdb_bytes(), e.command.data.first(length));
  ApplyReservationAnswer(e, answer, length);
}

}  // namespace mpath::scsi::fake::internal
