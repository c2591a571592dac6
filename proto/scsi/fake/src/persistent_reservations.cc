// Persistent reservations per SPC-5 r19 §5.14 (model), §6.15 (PERSISTENT RESERVE IN) and §6.16 (PERSISTENT
// RESERVE OUT). Where Linux LIO (target_core_pr.c), the target the lab checked against, answers differently from
// the standard, the standard wins and the comment names the difference, so a test that passes here and fails on
// LIO is not a surprise.
#include "persistent_reservations.h"

#include <algorithm>
#include <cstring>
#include <span>
#include <utility>

namespace mpath::scsi::fake {
namespace {

namespace asc = spec::asc;
using spec::PrOutServiceAction;
using spec::PrType;

constexpr std::size_t kNotFound = static_cast<std::size_t>(-1);

PrAnswer Conflict() {
  PrAnswer answer;
  answer.status = spec::Status::kReservationConflict;
  return answer;
}

PrAnswer Check(spec::SenseCode code) {
  PrAnswer answer;
  answer.status = spec::Status::kCheckCondition;
  answer.sense = code;
  return answer;
}

// Grows |out| and then copies, rather than vector::insert: at -O3 g++ 12 inlines insert's reallocation and reports a
// false -Wstringop-overflow on the copy into the new storage.
void Append(std::vector<std::byte>& out, std::span<const std::byte> bytes) {
  if (bytes.empty()) return;
  std::size_t offset = out.size();
  out.resize(offset + bytes.size());
  std::memcpy(out.data() + offset, bytes.data(), bytes.size());
}

template <wire::WireStruct T>
void Append(std::vector<std::byte>& out, const T& value) {
  Append(out, std::span<const std::byte>(wire::BytesOf(value)));
}

bool IsLogicalUnitScope(std::uint8_t scope) { return scope == static_cast<std::uint8_t>(spec::PrScope::kLogicalUnit); }

}  // namespace

PersistentReservations::PersistentReservations(PrCapabilities capabilities) : capabilities_(capabilities) {}

PrAnswer PersistentReservations::Out(const NexusId& nexus, std::span<const std::uint8_t> cdb_bytes,
                                     std::span<const std::byte> parameters) {
  std::optional<spec::PersistentReserveOutCdb> cdb =
      wire::Load<spec::PersistentReserveOutCdb>(std::as_bytes(cdb_bytes));
  if (!cdb) return Check(asc::kInvalidFieldInCdb);
  if (cdb->operation_code != spec::op::kPersistentReserveOut) return Check(asc::kInvalidCommandOperationCode);
  // REPLACE LOST RESERVATION (08h) lands here too: the simulated array never loses its PR state.
  if (cdb->service_action() > static_cast<std::uint8_t>(PrOutServiceAction::kRegisterAndMove)) {
    return Check(asc::kInvalidFieldInCdb);
  }
  auto action = static_cast<PrOutServiceAction>(cdb->service_action());

  // The list the CDB declares must have arrived whole, and nothing after it is looked at.
  std::uint32_t length = cdb->parameter_list_length.value();
  if (parameters.size() < length) return Check(asc::kParameterListLengthError);
  parameters = parameters.first(length);
  if (action == PrOutServiceAction::kRegisterAndMove) return RegisterAndMove(nexus, parameters);

  std::optional<spec::PrOutParameterList> list = wire::Load<spec::PrOutParameterList>(parameters);
  if (!list) return Check(asc::kParameterListLengthError);
  // SPEC_I_PT is optional and not simulated (REPORT CAPABILITIES says SIP_C = 0), so it is refused wherever it
  // appears; LIO refuses it the same way outside REGISTER.
  if (list->spec_i_pt()) return Check(asc::kInvalidFieldInParameterList);
  // §6.16.3: without SPEC_I_PT the basic list is exactly 24 bytes.
  if (length != sizeof(spec::PrOutParameterList)) return Check(asc::kParameterListLengthError);
  // ALL_TG_PT and APTPL only mean something to the registering actions (§6.16.3) and are ignored elsewhere.
  bool registering =
      action == PrOutServiceAction::kRegister || action == PrOutServiceAction::kRegisterAndIgnoreExistingKey;
  if (registering && list->all_tg_pt() && !capabilities_.all_target_ports) {
    return Check(asc::kInvalidFieldInParameterList);
  }
  if (registering && list->aptpl() && !capabilities_.persist_through_power_loss) {
    return Check(asc::kInvalidFieldInParameterList);
  }

  OutRequest request{nexus, cdb->scope(), cdb->type(), *list};
  switch (action) {
    case PrOutServiceAction::kRegister: return Register(request, /*ignore_existing_key=*/false);
    case PrOutServiceAction::kRegisterAndIgnoreExistingKey: return Register(request, /*ignore_existing_key=*/true);
    case PrOutServiceAction::kReserve: return Reserve(request);
    case PrOutServiceAction::kRelease: return Release(request);
    case PrOutServiceAction::kClear: return Clear(request);
    // The array completes every command inside Submit, so when a PREEMPT AND ABORT runs there is no other command
    // of the preempted nexuses left to abort (nor ACA to clear): it is a PREEMPT, and it establishes no 2F/00.
    case PrOutServiceAction::kPreempt:
    case PrOutServiceAction::kPreemptAndAbort: return Preempt(request);
    default: return Check(asc::kInvalidFieldInCdb);
  }
}

// §5.14.7 "Registering", tables "Register behaviors for a REGISTER service action" and "... REGISTER AND IGNORE
// EXISTING KEY service action".
PrAnswer PersistentReservations::Register(const OutRequest& request, bool ignore_existing_key) {
  std::uint64_t key = request.list.reservation_key.value();
  std::uint64_t new_key = request.list.service_action_reservation_key.value();
  PrAnswer answer;
  std::size_t index = Find(request.nexus);
  if (index == kNotFound) {
    if (!ignore_existing_key && key != 0) return Conflict();
    // "Do nothing except return GOOD status": PRgeneration included, since no registration changes.
    if (new_key == 0) return answer;
    NexusId registered = request.nexus;
    if (request.list.all_tg_pt()) registered.relative_target_port = kEveryTargetPort;
    registrations_.push_back(Registration{std::move(registered), new_key});
  } else {
    if (!ignore_existing_key && key != registrations_[index].key) return Conflict();
    // A registered nexus keeps the scope it registered with: ALL_TG_PT is not looked at again. (LIO refuses to
    // unregister an ALL_TG_PT registration with ALL_TG_PT = 0 in the list; SPC-5 has no such rule.)
    if (new_key == 0) {
      Unregister(index, answer);
    } else {
      registrations_[index].key = new_key;
    }
  }
  aptpl_ = request.list.aptpl();
  ++generation_;
  return answer;
}

// §5.14.9 "Reserving".
PrAnswer PersistentReservations::Reserve(const OutRequest& request) {
  // LIO answers a bad SCOPE with INVALID FIELD IN PARAMETER LIST; SCOPE is a CDB field.
  if (!IsLogicalUnitScope(request.scope)) return Check(asc::kInvalidFieldInCdb);
  std::optional<PrType> type = spec::ToPrType(request.type);
  if (!type) return Check(asc::kInvalidFieldInCdb);
  std::size_t index = Find(request.nexus);
  if (index == kNotFound || registrations_[index].key != request.list.reservation_key.value()) return Conflict();
  if (reservation_) {
    // Only a holder asking again for exactly what it holds is not a conflict.
    if (IsHolder(request.nexus) && reservation_->type == *type) return {};
    return Conflict();
  }
  reservation_ = Reservation{request.nexus, *type};
  return {};
}

// §5.14.11.2.2 "Releasing".
PrAnswer PersistentReservations::Release(const OutRequest& request) {
  std::size_t index = Find(request.nexus);
  if (index == kNotFound || registrations_[index].key != request.list.reservation_key.value()) return Conflict();
  if (!reservation_ || !IsHolder(request.nexus)) return {};
  // LIO completes this case with RESERVATION CONFLICT.
  if (!IsLogicalUnitScope(request.scope) || request.type != static_cast<std::uint8_t>(reservation_->type)) {
    return Check(spec::asc::kInvalidReleaseOfPersistentReservation);
  }
  PrType released = reservation_->type;
  reservation_.reset();
  PrAnswer answer;
  // NUAR (Control mode page) is taken as zero: the registrants-only and all-registrants types tell the others.
  if (spec::IsRegistrantsOnly(released) || spec::IsAllRegistrants(released)) {
    for (std::size_t i = 0; i < registrations_.size(); ++i) {
      if (i != index) answer.unit_attentions.push_back({registrations_[i].nexus, asc::kReservationsReleased});
    }
  }
  return answer;
}

// §5.14.11.2.7 "Clearing".
PrAnswer PersistentReservations::Clear(const OutRequest& request) {
  std::size_t index = Find(request.nexus);
  if (index == kNotFound || registrations_[index].key != request.list.reservation_key.value()) return Conflict();
  PrAnswer answer;
  for (std::size_t i = 0; i < registrations_.size(); ++i) {
    if (i != index) answer.unit_attentions.push_back({registrations_[i].nexus, asc::kReservationsPreempted});
  }
  registrations_.clear();
  reservation_.reset();
  ++generation_;
  return answer;
}

// §5.14.11.2.4 "Preempting" (table "Preempting actions" and the figure that goes with it) and §5.14.11.2.5
// "Removing registrations".
PrAnswer PersistentReservations::Preempt(const OutRequest& request) {
  std::size_t index = Find(request.nexus);
  if (index == kNotFound || registrations_[index].key != request.list.reservation_key.value()) return Conflict();
  std::uint64_t victim = request.list.service_action_reservation_key.value();
  bool all_registrants = reservation_ && spec::IsAllRegistrants(reservation_->type);
  if (victim == 0 && !all_registrants) return Check(asc::kInvalidFieldInParameterList);

  bool takes_reservation = false;
  if (reservation_) {
    if (all_registrants) {
      // The reservation key of an all-registrants reservation is zero (§5.14.10), so only zero names it. LIO
      // also takes the reservation when the key is that of the one registration it happens to record as holder.
      takes_reservation = victim == 0;
    } else {
      std::size_t holder = Find(reservation_->holder);
      takes_reservation = holder != kNotFound && registrations_[holder].key == victim;
    }
  }

  PrAnswer answer;
  std::vector<Registration> kept;
  if (takes_reservation) {
    // SCOPE and TYPE define the new reservation here and only here: removing registrations ignores them.
    if (!IsLogicalUnitScope(request.scope)) return Check(asc::kInvalidFieldInCdb);
    std::optional<PrType> type = spec::ToPrType(request.type);
    if (!type) return Check(asc::kInvalidFieldInCdb);
    PrType previous = reservation_->type;
    // The preempting nexus keeps its registration even when it carries the victim key (a holder may preempt
    // itself to change the type); with an all-registrants reservation and key zero every other one goes.
    std::size_t issuer = kNotFound;
    for (std::size_t i = 0; i < registrations_.size(); ++i) {
      if (i == index || (victim != 0 && registrations_[i].key != victim)) {
        if (i == index) issuer = kept.size();
        kept.push_back(registrations_[i]);
      } else {
        answer.unit_attentions.push_back({registrations_[i].nexus, asc::kRegistrationsPreempted});
      }
    }
    registrations_ = std::move(kept);
    reservation_ = Reservation{request.nexus, *type};
    if (previous != *type) {
      for (std::size_t i = 0; i < registrations_.size(); ++i) {
        if (i != issuer) answer.unit_attentions.push_back({registrations_[i].nexus, asc::kReservationsReleased});
      }
    }
  } else {
    // Every registration with the victim key goes, the issuer's included (§5.14.11.2.5 allows RESERVATION KEY ==
    // SERVICE ACTION RESERVATION KEY), but the issuer gets no unit attention. LIO spares the issuer under an
    // all-registrants reservation.
    bool matched = false;
    for (std::size_t i = 0; i < registrations_.size(); ++i) {
      if (registrations_[i].key != victim) {
        kept.push_back(registrations_[i]);
        continue;
      }
      matched = true;
      if (i != index) answer.unit_attentions.push_back({registrations_[i].nexus, asc::kRegistrationsPreempted});
    }
    if (!matched) return Conflict();
    registrations_ = std::move(kept);
    // The holder of any other type carries a different key and stays; an all-registrants reservation ends with
    // its last registrant.
    if (all_registrants && registrations_.empty()) reservation_.reset();
  }
  ++generation_;
  return answer;
}

// §5.14.8 "Registering and moving the reservation" with the parameter list of §6.16.4.
PrAnswer PersistentReservations::RegisterAndMove(const NexusId& nexus, std::span<const std::byte> parameters) {
  std::optional<spec::PrRegisterAndMoveParameterList> list =
      wire::Load<spec::PrRegisterAndMoveParameterList>(parameters);
  if (!list) return Check(asc::kParameterListLengthError);
  std::size_t transport_id_length = list->transport_id_parameter_data_length.value();
  std::span<const std::byte> transport_id = parameters.subspan(sizeof(*list));
  // LIO reports a TransportID length that disagrees with the list length as INVALID FIELD IN PARAMETER LIST.
  if (transport_id.size() < transport_id_length) return Check(asc::kParameterListLengthError);
  transport_id = transport_id.first(transport_id_length);
  if (list->aptpl() && !capabilities_.persist_through_power_loss) return Check(asc::kInvalidFieldInParameterList);

  std::size_t index = Find(nexus);
  if (index == kNotFound || registrations_[index].key != list->reservation_key.value()) return Conflict();
  if (!reservation_) return Check(asc::kInvalidFieldInCdb);
  if (spec::IsAllRegistrants(reservation_->type) || !IsHolder(nexus)) return Conflict();
  std::uint64_t new_key = list->service_action_reservation_key.value();
  if (new_key == 0) return Check(asc::kInvalidFieldInParameterList);

  auto decoded = spec::DecodeIscsiTransportId(transport_id);
  if (!decoded) {
    return Check(decoded.error() == spec::TransportIdError::kTruncated ? asc::kParameterListLengthError
                                                                       : asc::kInvalidFieldInParameterList);
  }
  std::uint16_t port = list->relative_target_port_identifier.value();
  if (port == 0) return Check(asc::kInvalidFieldInParameterList);
  // Moving to the issuing initiator port, through whichever target port, is refused (§5.14.8).
  if (decoded->initiator_port == nexus.initiator_port) return Check(asc::kInvalidFieldInParameterList);

  NexusId destination{std::move(decoded->initiator_port), port};
  // "It is not an error ... to register an I_T nexus that is already registered": its key becomes the new one.
  std::size_t existing = Find(destination);
  if (existing == kNotFound) {
    registrations_.push_back(Registration{destination, new_key});
  } else {
    registrations_[existing].key = new_key;
  }
  reservation_->holder = std::move(destination);
  PrAnswer answer;
  // The issuer no longer holds the reservation, so unregistering it releases nothing and tells no one.
  if (list->unreg()) Unregister(Find(nexus), answer);
  aptpl_ = list->aptpl();
  ++generation_;
  return answer;
}

PrAnswer PersistentReservations::In(const NexusId&, std::span<const std::uint8_t> cdb_bytes,
                                    std::span<std::byte> out) const {
  std::optional<spec::PersistentReserveInCdb> cdb = wire::Load<spec::PersistentReserveInCdb>(std::as_bytes(cdb_bytes));
  if (!cdb) return Check(asc::kInvalidFieldInCdb);
  if (cdb->operation_code != spec::op::kPersistentReserveIn) return Check(asc::kInvalidCommandOperationCode);
  std::vector<std::byte> data;
  switch (cdb->service_action()) {
    case static_cast<std::uint8_t>(spec::PrInServiceAction::kReadKeys): data = ReadKeys(); break;
    case static_cast<std::uint8_t>(spec::PrInServiceAction::kReadReservation): data = ReadReservation(); break;
    case static_cast<std::uint8_t>(spec::PrInServiceAction::kReportCapabilities): data = ReportCapabilities(); break;
    case static_cast<std::uint8_t>(spec::PrInServiceAction::kReadFullStatus): data = ReadFullStatus(); break;
    default: return Check(asc::kInvalidFieldInCdb);
  }
  // The data is built whole and then cut, so the length fields keep describing all of it (§4.2.5.6).
  std::size_t limit = std::min<std::size_t>(out.size(), cdb->allocation_length.value());
  std::size_t n = std::min(limit, data.size());
  std::copy_n(data.begin(), n, out.begin());
  PrAnswer answer;
  answer.transferred = static_cast<std::uint32_t>(n);
  return answer;
}

// §6.15.2.
std::vector<std::byte> PersistentReservations::ReadKeys() const {
  std::vector<std::byte> data;
  spec::PrInHeader header;
  header.prgeneration = generation_;
  header.additional_length = static_cast<std::uint32_t>(registrations_.size() * sizeof(wire::Be64));
  Append(data, header);
  for (const Registration& registration : registrations_) Append(data, wire::Be64(registration.key));
  return data;
}

// §6.15.3.
std::vector<std::byte> PersistentReservations::ReadReservation() const {
  std::vector<std::byte> data;
  spec::PrInHeader header;
  header.prgeneration = generation_;
  header.additional_length = reservation_ ? std::uint32_t{sizeof(spec::PrReservationDescriptor)} : 0;
  Append(data, header);
  if (reservation_) {
    spec::PrReservationDescriptor descriptor;
    if (!spec::IsAllRegistrants(reservation_->type)) {
      std::size_t holder = Find(reservation_->holder);
      if (holder != kNotFound) descriptor.reservation_key = registrations_[holder].key;
    }
    descriptor.set_scope(static_cast<std::uint8_t>(spec::PrScope::kLogicalUnit));
    descriptor.set_type(static_cast<std::uint8_t>(reservation_->type));
    Append(data, descriptor);
  }
  return data;
}

// §6.15.4. CRH = 0: the array has no SPC-2 RESERVE/RELEASE to reconcile. ALLOW COMMANDS = 000b: the Write Exclusive
// exceptions for commands that only read are not claimed (Allows() knows reads and writes, nothing finer).
std::vector<std::byte> PersistentReservations::ReportCapabilities() const {
  spec::PrReportCapabilitiesData capabilities;
  capabilities.length = std::uint16_t{sizeof(spec::PrReportCapabilitiesData)};
  capabilities.set_sip_c(false);
  capabilities.set_atp_c(capabilities_.all_target_ports);
  capabilities.set_ptpl_c(capabilities_.persist_through_power_loss);
  capabilities.set_tmv(true);
  capabilities.set_ptpl_a(aptpl_);
  for (PrType type : spec::kPrTypes) capabilities.set_supports(type, true);
  std::vector<std::byte> data;
  Append(data, capabilities);
  return data;
}

// §6.15.5. One descriptor per registration record: an ALL_TG_PT registration is one record here, with ALL_TG_PT
// set and relative target port 0, where a real device may list it once per target port.
std::vector<std::byte> PersistentReservations::ReadFullStatus() const {
  std::vector<std::byte> descriptors;
  for (std::size_t i = 0; i < registrations_.size(); ++i) {
    const Registration& registration = registrations_[i];
    std::vector<std::byte> transport_id = spec::IscsiTransportId(registration.nexus.initiator_port);
    spec::PrFullStatusDescriptor descriptor;
    descriptor.reservation_key = registration.key;
    descriptor.set_all_tg_pt(registration.nexus.relative_target_port == kEveryTargetPort);
    if (HoldsReservation(i)) {
      descriptor.set_r_holder(true);
      descriptor.set_scope(static_cast<std::uint8_t>(spec::PrScope::kLogicalUnit));
      descriptor.set_type(static_cast<std::uint8_t>(reservation_->type));
    }
    descriptor.relative_target_port_identifier = registration.nexus.relative_target_port;
    descriptor.additional_descriptor_length = static_cast<std::uint32_t>(transport_id.size());
    Append(descriptors, descriptor);
    Append(descriptors, std::span<const std::byte>(transport_id));
  }
  std::vector<std::byte> data;
  spec::PrInHeader header;
  header.prgeneration = generation_;
  header.additional_length = static_cast<std::uint32_t>(descriptors.size());
  Append(data, header);
  Append(data, std::span<const std::byte>(descriptors));
  return data;
}

// SPC-5 §5.14.3 and SBC-4 §4.17 (Table 13): who may read and write under each type.
bool PersistentReservations::Allows(const NexusId& nexus, AccessKind kind) const {
  if (kind == AccessKind::kUnrestricted || !reservation_) return true;
  PrType type = reservation_->type;
  if (kind == AccessKind::kRead && spec::IsWriteExclusive(type)) return true;
  if (spec::IsRegistrantsOnly(type) || spec::IsAllRegistrants(type)) return Find(nexus) != kNotFound;
  return IsHolder(nexus);
}

PrAnswer PersistentReservations::ForeignPreempt(const NexusId& foreign, std::uint64_t key, std::uint8_t type_code) {
  std::optional<PrType> type = spec::ToPrType(type_code);
  if (!type) return Check(asc::kInvalidFieldInCdb);
  if (key == 0) return Check(asc::kInvalidFieldInParameterList);
  // REGISTER AND IGNORE EXISTING KEY.
  std::size_t index = Find(foreign);
  if (index == kNotFound) {
    registrations_.push_back(Registration{foreign, key});
    index = registrations_.size() - 1;
  } else {
    registrations_[index].key = key;
  }
  ++generation_;
  // Then the PREEMPTs that leave it alone: the holder's key (taking the reservation with `type`), and whatever
  // other keys remain. Every registration removed is told 2A/05; no one remains to be told 2A/04.
  PrAnswer answer;
  for (std::size_t i = 0; i < registrations_.size(); ++i) {
    if (i != index) answer.unit_attentions.push_back({registrations_[i].nexus, asc::kRegistrationsPreempted});
  }
  Registration survivor = std::move(registrations_[index]);
  registrations_.clear();
  registrations_.push_back(std::move(survivor));
  reservation_ = Reservation{foreign, *type};
  ++generation_;
  return answer;
}

// §5.14.11.2.1: a power cycle keeps the state only if the last APTPL was one; PRgeneration restarts either way
// (§6.15.2).
void PersistentReservations::PowerCycle() {
  if (!aptpl_) {
    registrations_.clear();
    reservation_.reset();
  }
  generation_ = 0;
}

std::uint32_t PersistentReservations::generation() const { return generation_; }

bool PersistentReservations::IsRegistered(const NexusId& nexus) const { return Find(nexus) != kNotFound; }

std::size_t PersistentReservations::Find(const NexusId& nexus) const {
  // A nexus's own registration wins over its initiator port's ALL_TG_PT one, so each nexus acts under one key.
  std::size_t every_port = kNotFound;
  for (std::size_t i = 0; i < registrations_.size(); ++i) {
    const NexusId& registered = registrations_[i].nexus;
    if (registered.initiator_port != nexus.initiator_port) continue;
    if (registered.relative_target_port == nexus.relative_target_port) return i;
    if (registered.relative_target_port == kEveryTargetPort && every_port == kNotFound) every_port = i;
  }
  return every_port;
}

// §5.14.10: any registrant for the all-registrants types, else the one I_T nexus that reserved (or was moved to).
// Another target port of the holder's initiator is not the holder, even under an ALL_TG_PT registration.
bool PersistentReservations::IsHolder(const NexusId& nexus) const {
  if (!reservation_) return false;
  if (spec::IsAllRegistrants(reservation_->type)) return Find(nexus) != kNotFound;
  return nexus == reservation_->holder;
}

bool PersistentReservations::HoldsReservation(std::size_t index) const {
  if (!reservation_) return false;
  return spec::IsAllRegistrants(reservation_->type) || Find(reservation_->holder) == index;
}

// §5.14.11.2.3 "Unregistering" and the table "Processing for a released or preempted persistent reservation".
void PersistentReservations::Unregister(std::size_t index, PrAnswer& answer) {
  bool held = HoldsReservation(index);
  registrations_.erase(registrations_.begin() + static_cast<std::ptrdiff_t>(index));
  if (!held) return;
  PrType type = reservation_->type;
  if (spec::IsAllRegistrants(type)) {
    if (registrations_.empty()) reservation_.reset();
    return;
  }
  reservation_.reset();
  // Only the registrants-only types announce it; the issuer's registration is already gone.
  if (spec::IsRegistrantsOnly(type)) {
    for (const Registration& registration : registrations_) {
      answer.unit_attentions.push_back({registration.nexus, asc::kReservationsReleased});
    }
  }
}

}  // namespace mpath::scsi::fake
