// The persistent reservation state of one logical unit: registrations per I_T nexus, the reservation and its type,
// and the access rules of SPC-5 §5.14. Pure logic over CDB and parameter bytes, so the PR matrix is tested without
// an array around it; the array asks it before every command and queues the unit attentions it reports.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mpath/scsi/spec/pr.h"
#include "mpath/scsi/spec/status.h"

namespace mpath::scsi::fake {

// One I_T nexus: an initiator port (its iSCSI-style name) and a relative target port identifier (1-based).
struct NexusId {
  std::string initiator_port;
  std::uint16_t relative_target_port = 0;
  friend auto operator<=>(const NexusId&, const NexusId&) = default;
};

// Relative target port 0 is reserved by SPC-5 (§7.7.6.6); in a UnitAttention it means "every target port of
// initiator_port" (an ALL_TG_PT registration), for the array to expand.
inline constexpr std::uint16_t kEveryTargetPort = 0;

struct UnitAttention {
  NexusId nexus;
  spec::SenseCode code;
};

// How a command touches the medium, for the conflict rules of SPC-5 §5.14.3 and SBC-4 §4.17 (Table 13).
enum class AccessKind : std::uint8_t {
  kUnrestricted,  // allowed whatever the reservation (INQUIRY, TEST UNIT READY, REPORT LUNS, RTPG, PR IN/OUT...)
  kRead,          // READ, and anything that only reads the medium
  kWrite,         // WRITE, WRITE SAME, UNMAP, SYNCHRONIZE CACHE
};

struct PrCapabilities {
  bool all_target_ports = true;            // ATP_C: ALL_TG_PT accepted
  bool persist_through_power_loss = true;  // PTPL_C: APTPL accepted
};

// The answer to one PR command. status is kGood, kReservationConflict or kCheckCondition (then `sense` says why).
struct PrAnswer {
  spec::Status status = spec::Status::kGood;
  spec::SenseCode sense{};
  std::uint32_t transferred = 0;               // PR IN: bytes placed in the data-in buffer
  std::vector<UnitAttention> unit_attentions;  // to queue on other nexuses
};

// Threading: not thread-safe; the array holds its lock around every call.
class PersistentReservations {
 public:
  explicit PersistentReservations(PrCapabilities capabilities = {});

  // PERSISTENT RESERVE OUT (SPC-5 §6.16): `cdb` is the whole 10-byte CDB, `parameters` the data-out bytes received.
  PrAnswer Out(const NexusId& nexus, std::span<const std::uint8_t> cdb, std::span<const std::byte> parameters);
  // PERSISTENT RESERVE IN (SPC-5 §6.15): fills at most out.size() bytes (the allocation length already applied).
  PrAnswer In(const NexusId& nexus, std::span<const std::uint8_t> cdb, std::span<std::byte> out) const;
  // Whether a command of `kind` from `nexus` may run, or must get RESERVATION CONFLICT.
  [[nodiscard]] bool Allows(const NexusId& nexus, AccessKind kind) const;
  // Another host's takeover, as the simulated SAN injects it: `foreign` registers `key` (ignoring any existing key)
  // and preempts every other registration, leaving it holding a reservation of `type`.
  PrAnswer ForeignPreempt(const NexusId& foreign, std::uint64_t key, std::uint8_t type);
  // Power loss: registrations and the reservation survive only if the last APTPL seen was set.
  void PowerCycle();

  // For tests and the array's own reporting.
  [[nodiscard]] std::uint32_t generation() const;
  [[nodiscard]] bool IsRegistered(const NexusId& nexus) const;

 private:
  struct Registration {
    NexusId nexus;  // relative_target_port == kEveryTargetPort for an ALL_TG_PT registration
    std::uint64_t key = 0;
  };
  struct Reservation {
    NexusId holder;  // the I_T nexus that reserved; for the all-registrants types every registrant holds it
    spec::PrType type = spec::PrType::kWriteExclusive;
  };
  // One decoded PERSISTENT RESERVE OUT: CDB fields and the basic parameter list (REGISTER AND MOVE reads its own).
  struct OutRequest {
    const NexusId& nexus;
    std::uint8_t scope;
    std::uint8_t type;
    spec::PrOutParameterList list;
  };

  PrAnswer Register(const OutRequest& request, bool ignore_existing_key);
  PrAnswer Reserve(const OutRequest& request);
  PrAnswer Release(const OutRequest& request);
  PrAnswer Clear(const OutRequest& request);
  PrAnswer Preempt(const OutRequest& request);
  PrAnswer RegisterAndMove(const NexusId& nexus, std::span<const std::byte> parameters);

  std::vector<std::byte> ReadKeys() const;
  std::vector<std::byte> ReadReservation() const;
  std::vector<std::byte> ReportCapabilities() const;
  std::vector<std::byte> ReadFullStatus() const;

  // The registration `nexus` acts under: its own, else its initiator port's ALL_TG_PT one; npos when unregistered.
  [[nodiscard]] std::size_t Find(const NexusId& nexus) const;
  [[nodiscard]] bool IsHolder(const NexusId& nexus) const;
  // Whether registration `index` is (one of) the reservation holder(s).
  [[nodiscard]] bool HoldsReservation(std::size_t index) const;
  // Removes registration `index` as an unregistration would, releasing the reservation per SPC-5 §5.14.11.2.3.
  void Unregister(std::size_t index, PrAnswer& answer);

  PrCapabilities capabilities_;
  std::uint32_t generation_ = 0;
  bool aptpl_ = false;
  std::vector<Registration> registrations_;  // in registration order, which READ KEYS and READ FULL STATUS keep
  std::optional<Reservation> reservation_;
};

}  // namespace mpath::scsi::fake
