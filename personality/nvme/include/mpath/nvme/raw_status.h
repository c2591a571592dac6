// How an NVMe answer travels in the core's RawStatus: seven bytes that keep what the transport and the controller said
// (delivery, SCT, SC, the DNR/More/CRD bits, the opcode and the controller's retry delay for that CRD) so that the
// classifier, the logs and the CLI all read the same facts, with no allocation on the I/O path.
//
//   family   'N' (0x4E)
//   bytes[0] proto::Delivery
//   bytes[1] status code type (SCT)     } from the CQE; 0 when not delivered
//   bytes[2] status code (SC)           }
//   bytes[3] flags (nvme_raw_flags below) and the CRD field in bits 5:4
//   bytes[4] the SQE's opcode
//   bytes[5] the retry delay the CRD field selects, in 100 ms units (CRDT1..3 of Identify Controller), low byte
//   bytes[6] the same, high byte
//
// The delay is stored rather than looked up so that the classifier stays a pure function of the status: the path
// driver, which knows its controller's CRDT values, fills it in.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/nvme/spec/queue_entries.h"
#include "mpath/nvme/transport.h"

namespace mpath::nvme {

inline constexpr std::uint8_t kNvmeStatusFamily = 0x4E;  // 'N'

namespace nvme_raw_flags {
inline constexpr std::uint8_t kDoNotRetry = 1u << 0;  // DNR
inline constexpr std::uint8_t kMore = 1u << 1;        // More: a log page has more detail
inline constexpr std::uint8_t kAdminQueue = 1u << 2;  // the command went to the admin queue
inline constexpr unsigned kCrdShift = 4;              // bits 5:4: the Command Retry Delay field (0..3)
}  // namespace nvme_raw_flags

// The Command Retry Delay Times of a controller (Identify Controller CRDT1..CRDT3, in 100 ms units).
// NVM Express Base Specification 2.0c §5.17.2.1 (Identify Controller bytes 134..139).
using RetryDelayTimes = std::array<std::uint16_t, 3>;

// The decoded form of an NVMe RawStatus.
struct NvmeOutcome {
  Delivery delivery = Delivery::kDelivered;
  std::uint8_t sct = 0;
  std::uint8_t sc = 0;
  bool dnr = false;
  bool more = false;
  std::uint8_t crd = 0;               // 0: no delay asked; 1..3 select CRDT1..3
  bool admin = false;
  std::uint8_t opcode = 0;
  std::uint16_t retry_delay_100ms = 0;  // CRDT[crd - 1] of the controller; 0 when crd is 0

  [[nodiscard]] bool delivered() const { return delivery == Delivery::kDelivered; }
  [[nodiscard]] bool success() const { return delivered() && sct == 0 && sc == 0; }
  // SCT and SC together, as specs and logs print them (0x302).
  [[nodiscard]] std::uint16_t code() const { return static_cast<std::uint16_t>((sct & 0x7u) << 8 | sc); }
  [[nodiscard]] Nanos retry_delay() const { return std::chrono::milliseconds(100) * retry_delay_100ms; }
  friend bool operator==(const NvmeOutcome&, const NvmeOutcome&) = default;
};

// What a finished command says. `delays` are the controller's CRDT values, used when the CQE asks for a delay.
[[nodiscard]] NvmeOutcome OutcomeOf(const NvmeCommand& command, const RetryDelayTimes& delays = {});

[[nodiscard]] RawStatus EncodeRawStatus(const NvmeOutcome& outcome);
// nullopt when `raw` is not an NVMe status (another family, or none).
[[nodiscard]] std::optional<NvmeOutcome> DecodeRawStatus(const RawStatus& raw);

// For logs and the CLI, e.g. "ANA Inaccessible (path 0x302) on Read", "Reservation Conflict (generic 0x083, DNR) on
// Write", "link down on Flush", "timed out on Get Log Page (admin)".
[[nodiscard]] std::string DescribeRawStatus(const RawStatus& raw);
// The status name alone ("ANA Inaccessible"); unknown codes come back as "status 0x3A5".
[[nodiscard]] std::string StatusName(std::uint8_t sct, std::uint8_t sc);

// The completion of a command as the core sees it: ok for a successful CQE; otherwise an Errc and a static context
// chosen by the classifier's table (classify.h), with the raw status. No allocation.
[[nodiscard]] IoStatus ToIoStatus(const NvmeOutcome& outcome);

}  // namespace mpath::nvme
