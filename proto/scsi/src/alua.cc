#include "mpath/scsi/spec/alua.h"

#include <algorithm>

namespace mpath::scsi::spec {

std::uint16_t RtpgGroup::relative_port(std::size_t i) const {
  const auto d = wire::Load<TargetPortDescriptor>(ports, i * sizeof(TargetPortDescriptor));
  return d ? d->relative_target_port_identifier.value() : 0;
}

RtpgReader::RtpgReader(std::span<const std::byte> received) {
  const auto length_only = wire::Load<RtpgLengthOnlyHeader>(received);
  if (!length_only) return;
  return_data_length_ = length_only->return_data_length.value();
  // In the length-only format byte 4 is the first descriptor's PREF/state byte, whose bits 6:4 are reserved (0), so
  // FORMAT TYPE 001b there can only mean the extended header.
  std::size_t header_length = sizeof(RtpgLengthOnlyHeader);
  if (received.size() > 4 && wire::GetBits<6, 4>(static_cast<std::uint8_t>(received[4])) ==
                                 static_cast<std::uint8_t>(RtpgFormat::kExtended)) {
    const auto extended = wire::Load<RtpgExtendedHeader>(received);
    if (!extended) return;
    format_ = RtpgFormat::kExtended;
    implicit_transition_time_ = extended->implicit_transition_time;
    header_length = sizeof(RtpgExtendedHeader);
  }
  valid_ = true;
  const std::size_t announced = announced_length();
  if (received.size() < announced) truncated_ = true;
  bytes_ = received.first(std::max(header_length, std::min(received.size(), announced)));
  offset_ = header_length;
}

std::optional<RtpgGroup> RtpgReader::Next() {
  if (!valid_ || offset_ >= bytes_.size()) return std::nullopt;
  const auto descriptor = wire::Load<TargetPortGroupDescriptor>(bytes_, offset_);
  if (!descriptor) {
    truncated_ = true;
    offset_ = bytes_.size();
    return std::nullopt;
  }
  offset_ += sizeof(TargetPortGroupDescriptor);
  const std::size_t wanted = std::size_t{descriptor->target_port_count} * sizeof(TargetPortDescriptor);
  const std::size_t available = (bytes_.size() - offset_) / sizeof(TargetPortDescriptor) * sizeof(TargetPortDescriptor);
  RtpgGroup group{*descriptor, bytes_.subspan(offset_, std::min(wanted, available)), wanted > available};
  if (group.truncated) {
    truncated_ = true;
    offset_ = bytes_.size();
  } else {
    offset_ += wanted;
  }
  return group;
}

}  // namespace mpath::scsi::spec
