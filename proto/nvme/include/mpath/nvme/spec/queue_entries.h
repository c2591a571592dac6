// NVMe submission and completion queue entries and the completion status field.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mpath/proto/wire.h"

namespace mpath::nvme::spec {

using wire::Le16;
using wire::Le32;
using wire::Le64;

// NVM Express Base Specification 2.0c §4.2 "Submission Queue Entry" (Figure 88, common command format).
struct SubmissionQueueEntry {
  std::uint8_t opc;     // opcode
  std::uint8_t flags;   // FUSE bits 1:0, PSDT bits 7:6
  Le16 cid;             // command identifier, owned by the transport
  Le32 nsid;
  Le32 cdw2;
  Le32 cdw3;
  Le64 mptr;
  std::uint8_t dptr[16];
  Le32 cdw10;
  Le32 cdw11;
  Le32 cdw12;
  Le32 cdw13;
  Le32 cdw14;
  Le32 cdw15;
};
MPATH_WIRE_LAYOUT(SubmissionQueueEntry, 64);
MPATH_WIRE_FIELD(SubmissionQueueEntry, nsid, 4);
MPATH_WIRE_FIELD(SubmissionQueueEntry, dptr, 24);
MPATH_WIRE_FIELD(SubmissionQueueEntry, cdw10, 40);
MPATH_WIRE_FIELD(SubmissionQueueEntry, cdw15, 60);

// NVM Express Base Specification 2.0c §4.6.1 "Status Field Definition" (Figure 93): the 15-bit status field as it
// sits in bits 15:1 of the CQE's last word, shifted down so that SC is bits 7:0.
struct Status {
  std::uint16_t field = 0;

  [[nodiscard]] constexpr std::uint8_t sc() const { return static_cast<std::uint8_t>(wire::GetBits<7, 0>(field)); }
  [[nodiscard]] constexpr std::uint8_t sct() const { return static_cast<std::uint8_t>(wire::GetBits<10, 8>(field)); }
  [[nodiscard]] constexpr std::uint8_t crd() const { return static_cast<std::uint8_t>(wire::GetBits<12, 11>(field)); }
  [[nodiscard]] constexpr bool more() const { return wire::GetBit<13>(field); }
  [[nodiscard]] constexpr bool dnr() const { return wire::GetBit<14>(field); }
  [[nodiscard]] constexpr bool ok() const { return sct() == 0 && sc() == 0; }
  // SCT and SC together, as specs and logs print them (0x302 = path related, ANA inaccessible).
  [[nodiscard]] constexpr std::uint16_t code() const { return static_cast<std::uint16_t>(wire::GetBits<10, 0>(field)); }

  static constexpr Status Of(std::uint8_t sct, std::uint8_t sc, bool dnr = false, bool more = false) {
    std::uint16_t f = 0;
    f = wire::SetBits<7, 0>(f, sc);
    f = wire::SetBits<10, 8>(f, sct);
    f = wire::SetBit<13>(f, more);
    f = wire::SetBit<14>(f, dnr);
    return Status{f};
  }
  friend constexpr bool operator==(const Status&, const Status&) = default;
};

// Status code types, §4.6.1.2 (Figure 94).
inline constexpr std::uint8_t kSctGeneric = 0x0;
inline constexpr std::uint8_t kSctCommandSpecific = 0x1;
inline constexpr std::uint8_t kSctMediaError = 0x2;
inline constexpr std::uint8_t kSctPathRelated = 0x3;
inline constexpr std::uint8_t kSctVendor = 0x7;

// NVM Express Base Specification 2.0c §4.6 "Completion Queue Entry" (Figure 90).
struct CompletionQueueEntry {
  Le32 dw0;    // command specific
  Le32 dw1;
  Le16 sqhd;   // submission queue head pointer
  Le16 sqid;
  Le16 cid;
  Le16 status_and_phase;  // bit 0 phase tag, bits 15:1 the status field

  [[nodiscard]] constexpr Status status() const {
    return Status{static_cast<std::uint16_t>(status_and_phase.value() >> 1)};
  }
  constexpr void set_status(Status s) {
    status_and_phase = static_cast<std::uint16_t>((s.field << 1) | (status_and_phase.value() & 1));
  }
};
MPATH_WIRE_LAYOUT(CompletionQueueEntry, 16);
MPATH_WIRE_FIELD(CompletionQueueEntry, sqhd, 8);
MPATH_WIRE_FIELD(CompletionQueueEntry, cid, 12);
MPATH_WIRE_FIELD(CompletionQueueEntry, status_and_phase, 14);

}  // namespace mpath::nvme::spec
