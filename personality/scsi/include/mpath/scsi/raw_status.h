// How a SCSI answer travels in the core's RawStatus: seven bytes that keep what the transport and the target said
// (delivery, status byte, sense key, ASC, ASCQ, sense flags, opcode) so that the classifier, the logs and the CLI all
// read the same facts, with no allocation on the I/O path.
//
//   family   'S' (0x53)
//   bytes[0] proto::Delivery
//   bytes[1] SAM-5 status byte (0 when not delivered)
//   bytes[2] sense key            } only when kSenseParsed is set
//   bytes[3] additional sense code
//   bytes[4] additional sense code qualifier
//   bytes[5] flags (raw_flags below)
//   bytes[6] the CDB's operation code
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mpath/core/error.h"
#include "mpath/scsi/spec/status.h"
#include "mpath/scsi/transport.h"

namespace mpath::scsi {

inline constexpr std::uint8_t kScsiStatusFamily = 0x53;  // 'S'

namespace raw_flags {
inline constexpr std::uint8_t kSenseParsed = 1u << 0;       // sense present and parsed: bytes[2..4] hold it
inline constexpr std::uint8_t kDeferred = 1u << 1;          // the sense reports a deferred error (71h/73h)
inline constexpr std::uint8_t kSenseUnparseable = 1u << 2;  // sense bytes arrived but do not parse
// GOOD status, yet a READ or WRITE moved fewer bytes than asked (a residual). Set by the path driver, which knows
// the transfer had to be complete; for other commands a residual is normal (allocation lengths).
inline constexpr std::uint8_t kShortTransfer = 1u << 3;
}  // namespace raw_flags

// The decoded form of a SCSI RawStatus.
struct ScsiOutcome {
  Delivery delivery = Delivery::kDelivered;
  spec::Status status = spec::Status::kGood;  // may hold a value the enum does not name (obsolete or garbage)
  spec::SenseCode sense{};                    // meaningful only when sense_parsed
  bool sense_parsed = false;
  bool deferred = false;
  bool sense_unparseable = false;
  bool short_transfer = false;
  std::uint8_t opcode = 0;

  [[nodiscard]] bool delivered() const { return delivery == Delivery::kDelivered; }
  [[nodiscard]] bool check_condition() const { return delivered() && status == spec::Status::kCheckCondition; }
  friend bool operator==(const ScsiOutcome&, const ScsiOutcome&) = default;
};

// What an answered command says: its sense is parsed with spec::ParseSense, bounded by sense_length (and by the
// sense buffer). Sense is read only from delivered commands. No allocation.
[[nodiscard]] ScsiOutcome OutcomeOf(const ScsiCommand& command);

[[nodiscard]] RawStatus EncodeRawStatus(const ScsiOutcome& outcome);
[[nodiscard]] RawStatus EncodeRawStatus(const ScsiCommand& command);
// nullopt when `raw` is not a SCSI status (another family, or none).
[[nodiscard]] std::optional<ScsiOutcome> DecodeRawStatus(const RawStatus& raw);

// For logs and the CLI, e.g. "CHECK CONDITION, NOT READY 04/0B (target port in standby state) on READ(16)",
// "link down on WRITE(10)", "timed out on SYNCHRONIZE CACHE(10)".
[[nodiscard]] std::string DescribeRawStatus(const RawStatus& raw);

// Names for the same purpose; unknown values come back as "status 0x22", "sense key 0xC", "opcode 0xAB".
[[nodiscard]] std::string StatusName(spec::Status status);
[[nodiscard]] std::string SenseKeyName(spec::SenseKey key);
[[nodiscard]] std::string OpcodeName(std::uint8_t opcode);
// A short description of the ASC/ASCQs mpath knows; empty for the others.
[[nodiscard]] std::string_view AdditionalSenseDescription(std::uint8_t asc, std::uint8_t ascq);

// The completion of a command as the core sees it: ok for GOOD and CONDITION MET (and for RECOVERED ERROR and
// COMPLETED check conditions, whose command did complete); otherwise an Errc and a static context chosen by the
// classifier's table (classify.h), with the raw status. No allocation.
[[nodiscard]] IoStatus ToIoStatus(const ScsiOutcome& outcome);
[[nodiscard]] IoStatus ToIoStatus(const ScsiCommand& command);

}  // namespace mpath::scsi
