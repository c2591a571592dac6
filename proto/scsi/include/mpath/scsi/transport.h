// The SCSI transport seam: everything below the SCSI personality (the simulated array, iSCSI) implements Submit and
// nothing else. A command is a CDB, a data buffer with a direction, and a timeout; the answer is how the transport
// delivered it plus, when delivered, the SCSI status, sense bytes and residual.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "mpath/core/clock.h"
#include "mpath/core/executor.h"
#include "mpath/proto/completion.h"
#include "mpath/proto/delivery.h"
#include "mpath/proto/wire.h"

namespace mpath::scsi {

using proto::Delivery;

enum class DataDirection : std::uint8_t { kNone, kFromDevice, kToDevice };

inline constexpr std::size_t kMaxCdbLength = 32;
// Linux's SCSI_SENSE_BUFFERSIZE; longer sense is truncated, as the kernel does.
inline constexpr std::size_t kMaxSenseLength = 96;

class ScsiCommand;
using ScsiCallback = proto::CommandCompletion<ScsiCommand>::Callback;

// One command and its answer. Owned by the submitter; the transport borrows it from Submit until it calls Finish.
// Threading: owned by one thread at a time.
class ScsiCommand : public proto::CommandCompletion<ScsiCommand> {
 public:
  // --- Set by the submitter.
  std::array<std::uint8_t, kMaxCdbLength> cdb{};
  std::uint8_t cdb_length = 0;
  DataDirection direction = DataDirection::kNone;
  std::span<std::byte> data;     // data-in buffer (its size is the transfer length asked for) or data-out bytes
  Nanos timeout{0};              // 0: the transport's default
  // Where a completion that does not happen inside Submit is delivered: the submitter's executor. Required whenever
  // the transport may complete later (every transport but an inline fake).
  Executor* executor = nullptr;

  // --- Set by the transport before Finish.
  Delivery delivery = Delivery::kDelivered;
  std::uint8_t status = 0;       // SAM-5 status byte; meaningful only when delivered
  std::uint8_t sense_length = 0;
  std::array<std::uint8_t, kMaxSenseLength> sense{};
  std::uint32_t residual = 0;    // bytes of `data` not transferred

  template <wire::WireStruct Cdb>
  void SetCdb(const Cdb& cdb_struct) {
    static_assert(sizeof(Cdb) <= kMaxCdbLength);
    std::memcpy(cdb.data(), &cdb_struct, sizeof(Cdb));
    cdb_length = sizeof(Cdb);
  }
  [[nodiscard]] std::span<const std::uint8_t> cdb_bytes() const { return {cdb.data(), cdb_length}; }
  [[nodiscard]] std::span<const std::uint8_t> sense_bytes() const { return {sense.data(), sense_length}; }
  // The part of a data-in buffer the device actually filled.
  [[nodiscard]] std::span<const std::byte> received() const {
    return data.first(data.size() - std::min<std::size_t>(residual, data.size()));
  }

  // Clears the answer so the command can be submitted again.
  void ResetAnswer() {
    delivery = Delivery::kDelivered;
    status = 0;
    sense_length = 0;
    residual = 0;
  }
};

// One I_T nexus: an initiator port connected to one target port, reaching the LUs behind it.
// Threading: Submit may be called from any thread; each command finishes on its submitter's thread (inline, or as a
// task on command.executor). The transport must outlive every command in flight.
class ScsiTransport {
 public:
  virtual ~ScsiTransport() = default;
  // `lun` selects the logical unit behind this nexus (SAM-5 single-level LUN number).
  virtual void Submit(std::uint64_t lun, ScsiCommand& command) = 0;
};

}  // namespace mpath::scsi
