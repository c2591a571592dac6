#include "mpath/scsi/spec/inquiry.h"

#include <algorithm>

namespace mpath::scsi::spec {

std::optional<std::uint16_t> Designator::PortOrGroupIdentifier() const {
  const auto type = header.designator_type();
  if (type != DesignatorType::kRelativeTargetPort && type != DesignatorType::kTargetPortGroup) return std::nullopt;
  // Both designators keep the identifier in bytes 2-3 of a 4-byte field.
  const auto d = wire::Load<RelativeTargetPortDesignator>(designator);
  if (!d) return std::nullopt;
  return d->relative_target_port_identifier.value();
}

std::string_view Designator::Text() const {
  std::string_view text(reinterpret_cast<const char*>(designator.data()), designator.size());
  while (!text.empty() && text.back() == '\0') text.remove_suffix(1);
  return text;
}

DesignatorReader::DesignatorReader(std::span<const std::byte> page) {
  const auto header = wire::Load<VpdPageHeader>(page);
  if (!header || header->page_code != vpd::kDeviceIdentification) return;
  valid_ = true;
  const std::size_t announced = sizeof(VpdPageHeader) + header->page_length.value();
  if (page.size() < announced) truncated_ = true;
  bytes_ = page.first(std::min(page.size(), announced));
}

std::optional<Designator> DesignatorReader::Next() {
  if (!valid_ || offset_ >= bytes_.size()) return std::nullopt;
  const auto header = wire::Load<DesignationDescriptorHeader>(bytes_, offset_);
  const std::size_t start = offset_ + sizeof(DesignationDescriptorHeader);
  if (!header || header->designator_length > bytes_.size() - start) {
    truncated_ = true;
    offset_ = bytes_.size();
    return std::nullopt;
  }
  offset_ = start + header->designator_length;
  return Designator{*header, bytes_.subspan(start, header->designator_length)};
}

std::optional<Designator> DesignatorReader::Find(DesignatorType type, Association association) const {
  DesignatorReader copy = *this;
  copy.offset_ = sizeof(VpdPageHeader);
  while (auto d = copy.Next()) {
    if (d->header.designator_type() == type && d->header.association() == association) return d;
  }
  return std::nullopt;
}

}  // namespace mpath::scsi::spec
