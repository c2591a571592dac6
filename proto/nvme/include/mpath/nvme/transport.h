// The NVMe transport seam: everything below the NVMe personality (the simulated subsystem, NVMe/TCP) implements Submit
// and nothing else. A command is a 64-byte SQE for the admin or an I/O queue plus a data buffer; the answer is how the
// transport delivered it plus, when delivered, the 16-byte CQE.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "mpath/core/clock.h"
#include "mpath/core/executor.h"
#include "mpath/nvme/spec/queue_entries.h"
#include "mpath/proto/completion.h"
#include "mpath/proto/delivery.h"

namespace mpath::nvme {

using proto::Delivery;

enum class QueueKind : std::uint8_t { kAdmin, kIo };
enum class DataDirection : std::uint8_t { kNone, kFromController, kToController };

class NvmeCommand;
using NvmeCallback = proto::CommandCompletion<NvmeCommand>::Callback;

// One command and its completion. Owned by the submitter; the transport borrows it from Submit until it calls Finish.
// Threading: owned by one thread at a time.
class NvmeCommand : public proto::CommandCompletion<NvmeCommand> {
 public:
  // --- Set by the submitter. The transport owns the command identifier and the data pointer of the SQE.
  spec::SubmissionQueueEntry sqe{};
  QueueKind queue = QueueKind::kIo;
  DataDirection direction = DataDirection::kNone;
  std::span<std::byte> data;
  Nanos timeout{0};  // 0: the transport's default; Asynchronous Event Requests never time out
  // Where a completion that does not happen inside Submit is delivered: the submitter's executor.
  Executor* executor = nullptr;

  // --- Set by the transport before Finish.
  Delivery delivery = Delivery::kDelivered;
  spec::CompletionQueueEntry cqe{};

  void ResetAnswer() {
    delivery = Delivery::kDelivered;
    cqe = {};
  }
};

// One controller reached over one path.
// Threading: Submit may be called from any thread; each command finishes on its submitter's thread (inline, or as a
// task on command.executor). The transport must outlive every command in flight.
class NvmeTransport {
 public:
  virtual ~NvmeTransport() = default;
  virtual void Submit(NvmeCommand& command) = 0;
};

}  // namespace mpath::nvme
