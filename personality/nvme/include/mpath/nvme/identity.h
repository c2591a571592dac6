// What a controller and a namespace report about themselves (Identify controller, Identify namespace, the namespace
// identification descriptor list), reduced to what multipath needs: the namespace's identity, the opt-in facts, the
// geometry and the ANA facts. Pure functions over received bytes; the commands are sent by probe.h.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "mpath/core/error.h"
#include "mpath/core/path.h"
#include "mpath/nvme/raw_status.h"
#include "mpath/nvme/spec/identify.h"

namespace mpath::nvme {

// Identify Controller (CNS 01h), the fields multipath uses. NVM Express Base Specification 2.0c §5.17.2.1.
struct ControllerSummary {
  std::uint16_t cntlid = 0;
  std::string subnqn;            // trimmed; the scope within which namespaces are matched
  std::string model;             // trimmed
  std::string serial;            // trimmed
  std::string firmware;          // trimmed
  bool multi_controller = false;  // CMIC bit 1 (MCTRS): the subsystem may have several controllers
  bool ana_reporting = false;     // CMIC bit 3 (ANARS)
  bool ana_change_notices = false;           // OAES bit 11
  bool namespace_attribute_notices = false;  // OAES bit 8
  std::uint8_t anatt_secs = 0;     // ANA transition time; 0 when ANA is not reported
  std::uint8_t anacap = 0;
  std::uint32_t anagrpmax = 0;
  std::uint32_t nanagrpid = 0;     // ANA groups the log may list
  std::uint32_t mnan = 0;          // max namespaces the log may list (0: NN is the bound)
  std::uint32_t nn = 0;            // number of namespaces (highest NSID)
  std::uint8_t aerl = 0;           // Asynchronous Event Request Limit, 0's based
  std::uint8_t mdts = 0;           // 2^mdts minimum pages; 0: no limit
  RetryDelayTimes retry_delays{};  // CRDT1..3, 100 ms units
  bool write_zeroes = false;       // ONCS bit 3
  bool dataset_management = false;  // ONCS bit 2
  bool reservations = false;       // ONCS bit 5
  bool volatile_write_cache = false;  // VWC bit 0
  bool extended_log_data = false;  // LPA bit 2: Get Log Page offsets and NUMDU honoured

  // Bytes of the ANA log with every group and every namespace listed (header, NANAGRPID descriptors, MNAN (else NN)
  // NSIDs), which is what the host asks for so that no answer is cut. 0 when ANA is not reported.
  [[nodiscard]] std::uint64_t AnaLogBytes() const;
  // The largest transfer a command may carry: 2^MDTS * 4 KiB (CAP.MPSMIN assumed 4 KiB), 0 when unlimited.
  [[nodiscard]] std::uint32_t MaxTransferBytes() const;
};

// Decodes Identify Controller data; fails (kTargetError, naming the field) when fewer than 4096 bytes arrived or a
// field is impossible (an empty SUBNQN).
[[nodiscard]] Result<ControllerSummary> ParseIdentifyController(std::span<const std::byte> bytes);

// Which designator names the namespace, in the order multipath prefers them.
enum class NamespaceIdKind : std::uint8_t { kNone, kNguid, kEui64, kUuid };
std::string_view Name(NamespaceIdKind kind);

// The identity of one namespace, as every controller of the subsystem must report it.
struct NamespaceIdentity {
  NamespaceIdKind kind = NamespaceIdKind::kNone;
  std::string designator;  // "nguid.<32 hex>", "eui.<16 hex>", "uuid.<8-4-4-4-12>"; empty for kNone
  std::string subnqn;
  std::uint32_t nsid = 0;
  std::string reason;      // for kNone: why there is no identity, in words an operator understands

  // The core's grouping key: the designator scoped by subsystem NQN and NSID, so that two subsystems reporting the same
  // designator (a cloned volume), or one designator at two NSIDs, never merge:
  // "<designator>@<subnqn>/ns<nsid>". Empty for kNone.
  [[nodiscard]] DeviceIdentity ToDeviceIdentity() const;
};

// Identify Namespace (CNS 00h), the fields multipath uses. NVM Command Set Specification 1.0c §4.1.5.1.
struct NamespaceSummary {
  std::uint32_t nsid = 0;
  std::uint64_t nsze = 0;              // blocks
  std::uint32_t block_size = 0;        // 2^LBADS of the format FLBAS selects
  bool shared = false;                 // NMIC bit 0
  std::uint32_t anagrpid = 0;
  std::uint8_t rescap = 0;             // reservation capabilities
  std::array<std::uint8_t, 16> nguid{};  // all zero: not reported
  std::array<std::uint8_t, 8> eui64{};   // all zero: not reported
};

// Decodes Identify Namespace data; fails (kTargetError, naming the field) when fewer than 4096 bytes arrived, FLBAS
// selects a format beyond NLBAF, or LBADS is outside 9..16. An all-zero answer (an inactive NSID) is kNotFound.
[[nodiscard]] Result<NamespaceSummary> ParseIdentifyNamespace(std::uint32_t nsid, std::span<const std::byte> bytes);

// Chooses the identity: NGUID, else EUI-64, else UUID, each from the descriptor list (CNS 03h) when it reports it and
// from Identify Namespace otherwise; the two must agree when both report one (else kTargetError). `descriptors` is
// nullopt when the controller refused CNS 03h.
[[nodiscard]] Result<NamespaceIdentity> ChooseNamespaceIdentity(const ControllerSummary& controller,
                                                                const NamespaceSummary& ns,
                                                                const std::optional<spec::NamespaceIdentifiers>& descriptors);

// The core's view of one namespace seen through one controller: identity, reports_access_states (the subsystem
// reports multiple controllers (CMIC) and the namespace is shared (NMIC): what `multipath = on` requires), capacity
// and block size. Name, transport and locality are left for the caller.
[[nodiscard]] DeviceInfo ToDeviceInfo(const ControllerSummary& controller, const NamespaceSummary& ns,
                                      const NamespaceIdentity& identity);

}  // namespace mpath::nvme
