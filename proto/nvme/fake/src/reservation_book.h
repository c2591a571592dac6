// The reservation of one namespace: who is registered with which key, who holds a reservation of which type, and the
// rules of the four reservation commands (NVM Express Base Specification 2.0c §8.19 "Reservations"). Registrants are
// hosts, identified by host identifier, so that every controller of one host shares its registration.
#pragma once

#include <cstdint>
#include <vector>

#include "mpath/nvme/spec/reservations.h"
#include "mpath/nvme/spec/status.h"

namespace mpath::nvme::fake {

// Threading: thread-unsafe; the subsystem's lock guards it.
class ReservationBook {
 public:
  struct Registration {
    spec::HostId host{};
    std::uint64_t key = 0;
  };

  spec::Status Register(const spec::HostId& host, const spec::ReservationRegisterFields& fields,
                        const spec::ReservationRegisterData& data);
  spec::Status Acquire(const spec::HostId& host, const spec::ReservationAcquireFields& fields,
                       const spec::ReservationAcquireData& data);
  spec::Status Release(const spec::HostId& host, const spec::ReservationReleaseFields& fields,
                       const spec::ReservationReleaseData& data);

  // Whether a command of `access` from `host` may proceed (otherwise: Reservation Conflict).
  [[nodiscard]] bool Permits(const spec::HostId& host, spec::AccessKind access) const;

  // `host` registers `key` (replacing any key it had), every other registrant is removed, and `host` holds a
  // reservation of `type`: what another cluster node does when it fences this one.
  void ForeignPreempt(const spec::HostId& host, std::uint64_t key, spec::ReservationType type);
  // Forgets everything, generation included: the namespace became another volume.
  void Reset() { *this = ReservationBook(); }

  [[nodiscard]] bool IsHolder(const spec::HostId& host) const;
  [[nodiscard]] const std::vector<Registration>& registrants() const { return registrants_; }
  [[nodiscard]] spec::ReservationType type() const { return type_; }
  [[nodiscard]] std::uint32_t generation() const { return generation_; }
  [[nodiscard]] bool ptpl() const { return ptpl_; }

 private:
  [[nodiscard]] Registration* Find(const spec::HostId& host);
  [[nodiscard]] const Registration* Find(const spec::HostId& host) const;
  // Unregisters every registrant whose key is `key` other than `except` (when given); returns how many.
  std::size_t RemoveByKey(std::uint64_t key, const spec::HostId* except = nullptr);
  // A reservation whose holder is gone (or, for all-registrants types, whose registrants are all gone) ends.
  void DropOrphanedReservation();

  std::vector<Registration> registrants_;  // in registration order
  spec::ReservationType type_ = spec::ReservationType::kNone;
  spec::HostId holder_{};                  // meaningful for a held reservation of a single-holder type
  std::uint32_t generation_ = 0;
  bool ptpl_ = false;
};

}  // namespace mpath::nvme::fake
