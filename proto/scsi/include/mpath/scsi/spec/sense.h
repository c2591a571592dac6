// Sense data in both formats (fixed 70h/71h and descriptor 72h/73h): the wire structs, a builder that writes either
// format, and a parser that reads whatever bytes a target sent. The parser bounds itself by the bytes received and by
// ADDITIONAL SENSE LENGTH, whichever ends first, and never reads past either: targets and transports truncate sense
// (Linux keeps 96 bytes), and a garbage buffer must yield "unparseable", not a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string_view>

#include "mpath/proto/wire.h"
#include "mpath/scsi/spec/status.h"

namespace mpath::scsi {
class ScsiCommand;
}  // namespace mpath::scsi

namespace mpath::scsi::spec {

// SPC-5 r19 §4.4.1 "Sense data introduction" (Table 27 "Sense data response codes").
enum class SenseResponseCode : std::uint8_t {
  kFixedCurrent = 0x70,
  kFixedDeferred = 0x71,
  kDescriptorCurrent = 0x72,
  kDescriptorDeferred = 0x73,
};

enum class SenseFormat : std::uint8_t { kFixed, kDescriptor };

// SPC-5 r19 §4.4.3 "Fixed format sense data" (Table 48).
struct FixedSenseData {
  std::uint8_t response;                 // VALID bit 7, RESPONSE CODE bits 6:0
  std::uint8_t obsolete;
  std::uint8_t flags_and_key;            // FILEMARK 7, EOM 6, ILI 5, SDAT_OVFL 4, SENSE KEY 3:0
  wire::Be32 information;
  std::uint8_t additional_sense_length;  // bytes after byte 7
  wire::Be32 command_specific_information;
  std::uint8_t additional_sense_code;
  std::uint8_t additional_sense_code_qualifier;
  std::uint8_t field_replaceable_unit_code;
  std::uint8_t sense_key_specific[3];    // SKSV is bit 7 of the first byte

  [[nodiscard]] constexpr bool valid() const { return wire::GetBit<7>(response); }
  [[nodiscard]] constexpr std::uint8_t response_code() const { return wire::GetBits<6, 0>(response); }
  [[nodiscard]] constexpr std::uint8_t sense_key() const { return wire::GetBits<3, 0>(flags_and_key); }
};
MPATH_WIRE_LAYOUT(FixedSenseData, 18);
MPATH_WIRE_FIELD(FixedSenseData, information, 3);
MPATH_WIRE_FIELD(FixedSenseData, additional_sense_length, 7);
MPATH_WIRE_FIELD(FixedSenseData, additional_sense_code, 12);
MPATH_WIRE_FIELD(FixedSenseData, sense_key_specific, 15);

// SPC-5 r19 §4.4.2.1 "Descriptor format sense data" (Table 28): the 8-byte header before the sense data descriptors.
struct DescriptorSenseHeader {
  std::uint8_t response;                 // RESPONSE CODE bits 6:0
  std::uint8_t sense_key;                // SENSE KEY bits 3:0
  std::uint8_t additional_sense_code;
  std::uint8_t additional_sense_code_qualifier;
  std::uint8_t sdat_ovfl;                // SDAT_OVFL bit 7
  std::uint8_t reserved[2];
  std::uint8_t additional_sense_length;  // bytes after byte 7: the descriptors
};
MPATH_WIRE_LAYOUT(DescriptorSenseHeader, 8);
MPATH_WIRE_FIELD(DescriptorSenseHeader, additional_sense_code, 2);
MPATH_WIRE_FIELD(DescriptorSenseHeader, additional_sense_length, 7);

// SPC-5 r19 §4.4.2.1 "Descriptor format sense data" (Table 30 "Sense data descriptor format").
struct SenseDescriptorHeader {
  std::uint8_t descriptor_type;
  std::uint8_t additional_length;  // bytes after byte 1
};
MPATH_WIRE_LAYOUT(SenseDescriptorHeader, 2);

// SPC-5 r19 §4.4.2.2 "Sense data descriptor type codes" (Table 31): the ones mpath reads or writes.
inline constexpr std::uint8_t kInformationDescriptor = 0x00;
inline constexpr std::uint8_t kCommandSpecificInformationDescriptor = 0x01;
inline constexpr std::uint8_t kSenseKeySpecificDescriptor = 0x02;

// SPC-5 r19 §4.4.2.3 "Information sense data descriptor" (Table 32).
struct InformationSenseDescriptor {
  std::uint8_t descriptor_type = kInformationDescriptor;
  std::uint8_t additional_length = 0x0A;
  std::uint8_t valid = 0;                // VALID bit 7
  std::uint8_t reserved = 0;
  wire::Be64 information;
};
MPATH_WIRE_LAYOUT(InformationSenseDescriptor, 12);
MPATH_WIRE_FIELD(InformationSenseDescriptor, information, 4);

inline constexpr std::size_t kFixedSenseLength = sizeof(FixedSenseData);
inline constexpr std::size_t kDescriptorSenseLengthWithInformation =
    sizeof(DescriptorSenseHeader) + sizeof(InformationSenseDescriptor);

// What sense data says, whichever format carried it.
struct SenseData {
  SenseFormat format = SenseFormat::kFixed;
  bool deferred = false;  // 71h/73h: about an earlier command, not the one that got it
  SenseCode code;
  // False when the bytes (or ADDITIONAL SENSE LENGTH) ended before ASC and ASCQ: `code` then holds only the key,
  // with ASC/ASCQ 0, as Linux's scsi_normalize_sense reports it.
  bool has_additional_sense_code = false;
  std::optional<std::uint64_t> information;  // only when VALID and inside the bytes received
  friend bool operator==(const SenseData&, const SenseData&) = default;
};

enum class SenseParseError : std::uint8_t {
  kEmpty,                // no sense bytes at all
  kUnknownResponseCode,  // not 70h-73h (7Fh vendor specific included)
  kTooShort,             // ended before the sense key
};
std::string_view SenseParseErrorName(SenseParseError error);

// Reads sense data from the bytes that arrived.
[[nodiscard]] std::expected<SenseData, SenseParseError> ParseSense(std::span<const std::uint8_t> bytes);
[[nodiscard]] std::expected<SenseData, SenseParseError> ParseSense(std::span<const std::byte> bytes);

struct SenseOptions {
  bool deferred = false;
  // Reported in INFORMATION with VALID set; in fixed format only if it fits 32 bits (else VALID stays 0).
  std::optional<std::uint64_t> information;
};

// Writes sense data of `format` into `out`, truncated to out.size(). Returns the full length of the sense data
// (18 for fixed; 8, or 20 with information, for descriptor), which may exceed what was written.
std::size_t BuildSense(std::span<std::uint8_t> out, SenseFormat format, SenseCode code, const SenseOptions& options = {});
std::size_t BuildSense(std::span<std::byte> out, SenseFormat format, SenseCode code, const SenseOptions& options = {});

// Fills command.sense and sense_length (the status is left alone).
void WriteSense(ScsiCommand& command, SenseFormat format, SenseCode code, const SenseOptions& options = {});
// Status CHECK CONDITION with the given sense.
void SetCheckCondition(ScsiCommand& command, SenseFormat format, SenseCode code, const SenseOptions& options = {});

}  // namespace mpath::scsi::spec
