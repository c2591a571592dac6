#include "reservation_book.h"

#include <algorithm>

namespace mpath::nvme::fake {

using spec::Dnr;
using spec::GenericStatus;
using spec::MakeStatus;
using spec::ReservationType;
using spec::Status;

namespace {

constexpr Status kSuccess = MakeStatus(GenericStatus::kSuccess);
constexpr Status kConflict = MakeStatus(GenericStatus::kReservationConflict, Dnr::kSet);
constexpr Status kInvalidField = MakeStatus(GenericStatus::kInvalidFieldInCommand, Dnr::kSet);

}  // namespace

ReservationBook::Registration* ReservationBook::Find(const spec::HostId& host) {
  auto it = std::ranges::find(registrants_, host, &Registration::host);
  return it == registrants_.end() ? nullptr : &*it;
}

const ReservationBook::Registration* ReservationBook::Find(const spec::HostId& host) const {
  auto it = std::ranges::find(registrants_, host, &Registration::host);
  return it == registrants_.end() ? nullptr : &*it;
}

bool ReservationBook::IsHolder(const spec::HostId& host) const {
  if (type_ == ReservationType::kNone) return false;
  return spec::IsAllRegistrants(type_) ? Find(host) != nullptr : holder_ == host;
}

bool ReservationBook::Permits(const spec::HostId& host, spec::AccessKind access) const {
  spec::ReservationRole role = IsHolder(host)   ? spec::ReservationRole::kHolder
                               : Find(host)     ? spec::ReservationRole::kRegistrant
                                                : spec::ReservationRole::kNonRegistrant;
  return spec::ReservationPermits(type_, role, access);
}

std::size_t ReservationBook::RemoveByKey(std::uint64_t key, const spec::HostId* except) {
  const std::size_t removed = std::erase_if(registrants_, [&](const Registration& r) {
    return r.key == key && (except == nullptr || r.host != *except);
  });
  DropOrphanedReservation();
  return removed;
}

void ReservationBook::DropOrphanedReservation() {
  if (type_ == ReservationType::kNone) return;
  const bool orphaned = spec::IsAllRegistrants(type_) ? registrants_.empty() : Find(holder_) == nullptr;
  if (orphaned) type_ = ReservationType::kNone;
}

Status ReservationBook::Register(const spec::HostId& host, const spec::ReservationRegisterFields& fields,
                                 const spec::ReservationRegisterData& data) {
  if (fields.action > static_cast<std::uint8_t>(spec::RegisterAction::kReplace)) return kInvalidField;
  if (fields.cptpl == 0x1) return kInvalidField;  // reserved encoding
  Registration* self = Find(host);
  switch (static_cast<spec::RegisterAction>(fields.action)) {
    case spec::RegisterAction::kRegister:
      // Registering again is harmless only with the key already registered.
      if (self != nullptr) {
        if (self->key != data.nrkey.value()) return kConflict;
      } else {
        registrants_.push_back(Registration{host, data.nrkey.value()});
      }
      break;
    case spec::RegisterAction::kUnregister:
      if (self == nullptr || (!fields.iekey && self->key != data.crkey.value())) return kConflict;
      std::erase_if(registrants_, [&](const Registration& r) { return r.host == host; });
      DropOrphanedReservation();
      break;
    case spec::RegisterAction::kReplace:
      if (self == nullptr || (!fields.iekey && self->key != data.crkey.value())) return kConflict;
      self->key = data.nrkey.value();
      break;
    default: return kInvalidField;
  }
  if (fields.cptpl == static_cast<std::uint8_t>(spec::ChangePtpl::kClear)) ptpl_ = false;
  if (fields.cptpl == static_cast<std::uint8_t>(spec::ChangePtpl::kSet)) ptpl_ = true;
  ++generation_;
  return kSuccess;
}

Status ReservationBook::Acquire(const spec::HostId& host, const spec::ReservationAcquireFields& fields,
                                const spec::ReservationAcquireData& data) {
  // Since revision 1.3 (RESCAP bit 7) IEKEY belongs to Reservation Register only.
  if (fields.action > static_cast<std::uint8_t>(spec::AcquireAction::kPreemptAndAbort) || fields.iekey ||
      !spec::IsValidReservationType(fields.rtype)) {
    return kInvalidField;
  }
  const Registration* self = Find(host);
  if (self == nullptr || self->key != data.crkey.value()) return kConflict;
  const auto type = static_cast<ReservationType>(fields.rtype);

  if (static_cast<spec::AcquireAction>(fields.action) == spec::AcquireAction::kAcquire) {
    if (type_ == ReservationType::kNone) {
      type_ = type;
      holder_ = host;
      return kSuccess;
    }
    return IsHolder(host) && type_ == type ? kSuccess : kConflict;
  }

  // Preempt, and preempt and abort: nothing the simulator runs is still in flight to abort, so both act alike.
  const std::uint64_t prkey = data.prkey.value();
  if (type_ == ReservationType::kNone) {
    if (RemoveByKey(prkey) == 0) return kConflict;
  } else if (spec::IsAllRegistrants(type_)) {
    if (prkey == 0) {
      std::erase_if(registrants_, [&](const Registration& r) { return r.host != host; });
      type_ = type;
      holder_ = host;
    } else if (RemoveByKey(prkey) == 0) {
      return kConflict;
    }
  } else {
    const Registration* holder = Find(holder_);
    if (holder != nullptr && prkey == holder->key) {
      // The preempting host takes the reservation (its own, with a new type, when it held it already).
      holder_ = host;
      type_ = type;
      RemoveByKey(prkey, &host);
    } else if (prkey != 0) {
      if (RemoveByKey(prkey) == 0) return kConflict;
    } else {
      return kInvalidField;
    }
  }
  ++generation_;
  return kSuccess;
}

Status ReservationBook::Release(const spec::HostId& host, const spec::ReservationReleaseFields& fields,
                                const spec::ReservationReleaseData& data) {
  if (fields.action > static_cast<std::uint8_t>(spec::ReleaseAction::kClear) || fields.iekey) return kInvalidField;
  const Registration* self = Find(host);
  if (self == nullptr || self->key != data.crkey.value()) return kConflict;
  if (static_cast<spec::ReleaseAction>(fields.action) == spec::ReleaseAction::kClear) {
    registrants_.clear();
    type_ = ReservationType::kNone;
    ++generation_;
    return kSuccess;
  }
  // Releasing what one does not hold is not an error; releasing it as the wrong type is.
  if (!IsHolder(host)) return kSuccess;
  if (fields.rtype != static_cast<std::uint8_t>(type_)) return kInvalidField;
  type_ = ReservationType::kNone;
  return kSuccess;
}

void ReservationBook::ForeignPreempt(const spec::HostId& host, std::uint64_t key, ReservationType type) {
  std::erase_if(registrants_, [&](const Registration& r) { return r.host != host; });
  if (Registration* self = Find(host)) {
    self->key = key;
  } else {
    registrants_.push_back(Registration{host, key});
  }
  type_ = type;
  holder_ = host;
  ++generation_;
}

}  // namespace mpath::nvme::fake
