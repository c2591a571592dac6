#include "mpath/nvme/path_driver.h"

#include <bit>
#include <cstdint>
#include <limits>
#include <new>
#include <string>
#include <type_traits>

#include "mpath/core/executor.h"
#include "mpath/nvme/classify.h"
#include "mpath/nvme/spec/common.h"
#include "mpath/nvme/spec/nvm_io.h"

namespace mpath::nvme {
namespace {

// Everything one request needs while it is on the wire, placed in IoRequest::driver_context(). Defined here, under a
// name the completion hook can use, so that the header keeps only what callers see.
// Threading: owned by the request's submitting thread, like the request itself.
struct InFlight {
  NvmeCommand command;
  IoRequest* io = nullptr;
  const NvmePathDriver* driver = nullptr;
  NvmePathObserver* observer = nullptr;
  spec::DsmRange range{};  // the one Dataset Management range of a discard
};

// The completion hook: classify, tell the observer about ANA statuses, complete the request. Runs on the submitter's
// thread (inline in Submit, or as a task on the executor named in the command).
void OnFinished(NvmeCommand& command, void* arg) {
  auto* context = static_cast<InFlight*>(arg);
  IoRequest& io = *context->io;
  const NvmeOutcome outcome = OutcomeOf(command, context->driver->options().retry_delays);
  const NvmeVerdict verdict = JudgeNvme(outcome);
  // Before the request completes, so that the ANA engine has marked the group before the core picks the retry's path.
  if (verdict.refresh_ana && context->observer != nullptr) context->observer->OnAnaStatus(outcome.code());
  if (io.op == IoOp::kPassthrough) {
    const auto* p = static_cast<const NvmePassthrough*>(io.passthrough);
    if (p->answer != nullptr) {
      p->answer->delivery = command.delivery;
      // An undelivered command's CQE is not the controller's; the caller gets zeroes rather than filler.
      p->answer->cqe = outcome.delivered() ? command.cqe : spec::CompletionQueueEntry{};
    }
  }
  const IoStatus status{verdict.code, EncodeRawStatus(outcome), verdict.context};
  // The context is free again before the request completes: a same-path retry reuses it at once.
  context->~InFlight();
  io.Complete(status);
}

// Checks a ranged request against the namespace; `max_blocks` is what one command can carry.
IoStatus CheckRange(const IoRequest& io, std::uint32_t block_size, std::uint64_t capacity_blocks,
                    std::uint64_t max_blocks) {
  if (io.length == 0) return IoStatus::Of(Errc::kInvalidArgument, "zero-length I/O");
  if (io.offset % block_size != 0 || io.length % block_size != 0) {
    return IoStatus::Of(Errc::kInvalidArgument, "I/O not aligned to the namespace's logical block size");
  }
  const std::uint64_t lba = io.offset / block_size;
  const std::uint64_t blocks = io.length / block_size;
  if (lba > capacity_blocks || blocks > capacity_blocks - lba) {
    return IoStatus::Of(Errc::kOutOfRange, "I/O beyond the capacity of the namespace");
  }
  if (blocks > max_blocks) {
    return IoStatus::Of(Errc::kInvalidArgument, "I/O of more than 65536 logical blocks in one command");
  }
  return IoStatus::Ok();
}

IoStatus BuildPassthrough(const IoRequest& io, NvmeCommand& c) {
  const auto* p = static_cast<const NvmePassthrough*>(io.passthrough);
  if (p == nullptr) return IoStatus::Of(Errc::kInvalidArgument, "passthrough without a command");
  if (p->queue != QueueKind::kAdmin && p->queue != QueueKind::kIo) {
    return IoStatus::Of(Errc::kInvalidArgument, "passthrough to an unknown queue kind");
  }
  if (p->direction != DataDirection::kNone && p->direction != DataDirection::kFromController &&
      p->direction != DataDirection::kToController) {
    return IoStatus::Of(Errc::kInvalidArgument, "passthrough with an unknown data direction");
  }
  if ((p->direction == DataDirection::kNone) != p->data.empty()) {
    return IoStatus::Of(Errc::kInvalidArgument, "passthrough data buffer does not match its direction");
  }
  if (p->timeout < Nanos(0)) return IoStatus::Of(Errc::kInvalidArgument, "passthrough with a negative timeout");
  c.sqe = p->sqe;
  c.queue = p->queue;
  c.direction = p->direction;
  c.data = p->data;
  if (p->timeout > Nanos(0)) c.timeout = p->timeout;
  return IoStatus::Ok();
}

// Fills the command for `io`; a non-ok status means the request is refused before it reaches the transport.
IoStatus Build(const IoRequest& io, InFlight& context) {
  const NvmePathDriver& d = *context.driver;
  const NvmePathDriverOptions& options = d.options();
  const std::uint32_t nsid = d.nsid();
  const std::uint32_t block_size = d.block_size();
  const std::uint64_t capacity = d.capacity_blocks();
  NvmeCommand& c = context.command;
  c.timeout = options.command_timeout;
  const std::uint64_t lba = io.offset / block_size;
  // Every ranged op is checked to at most 2^32 - 1 bytes, so its block count fits the builders' parameters.
  const auto blocks = static_cast<std::uint32_t>(io.length / block_size);
  switch (io.op) {
    case IoOp::kRead:
    case IoOp::kWrite: {
      if (io.data == nullptr) return IoStatus::Of(Errc::kInvalidArgument, "I/O without a buffer");
      if (IoStatus range = CheckRange(io, block_size, capacity, spec::kMaxBlocksPerCommand); !range.ok()) {
        return range;
      }
      if (options.max_transfer_bytes != 0 && io.length > options.max_transfer_bytes) {
        return IoStatus::Of(Errc::kInvalidArgument, "I/O larger than the controller's maximum transfer (MDTS)");
      }
      if (io.op == IoOp::kRead) {
        c.sqe = spec::MakeRead(nsid, lba, blocks);
        c.direction = DataDirection::kFromController;
      } else {
        c.sqe = spec::MakeWrite(nsid, lba, blocks, io.fua ? spec::ForceUnitAccess::kYes : spec::ForceUnitAccess::kNo);
        c.direction = DataDirection::kToController;
      }
      c.data = {io.data, io.length};
      return IoStatus::Ok();
    }
    case IoOp::kFlush:
    case IoOp::kProbe:
      // A probe is a Flush: it travels the I/O queue to the namespace as real I/O does, so a path that answers
      // admin commands but fails I/O does not pass it; and it moves no data.
      c.sqe = spec::MakeFlush(nsid);
      c.direction = DataDirection::kNone;
      return IoStatus::Ok();
    case IoOp::kWriteZeroes: {
      if (!options.write_zeroes) {
        return IoStatus::Of(Errc::kUnsupported, "write zeroes: the controller does not support Write Zeroes");
      }
      // No data moves, so MDTS does not bound it; the 16-bit NLB does.
      if (IoStatus range = CheckRange(io, block_size, capacity, spec::kMaxBlocksPerCommand); !range.ok()) {
        return range;
      }
      c.sqe = spec::MakeWriteZeroes(nsid, lba, blocks);
      c.direction = DataDirection::kNone;
      return IoStatus::Ok();
    }
    case IoOp::kDiscard: {
      if (!options.deallocate) {
        return IoStatus::Of(Errc::kUnsupported, "discard: the controller does not support Dataset Management");
      }
      // A range's NLB is 32 bits, more than any one request's length can ask for.
      if (IoStatus range = CheckRange(io, block_size, capacity, ~std::uint32_t{0}); !range.ok()) {
        return range;
      }
      context.range.context_attributes = 0;
      context.range.nlb = blocks;  // 1-based here, unlike Read and Write
      context.range.slba = lba;
      c.sqe = spec::MakeDeallocate(nsid, 1);
      c.direction = DataDirection::kToController;
      c.data = {reinterpret_cast<std::byte*>(&context.range), sizeof(spec::DsmRange)};
      return IoStatus::Ok();
    }
    case IoOp::kPassthrough:
      return BuildPassthrough(io, c);
    default:
      return IoStatus::Of(Errc::kUnsupported, "operation not supported by the NVMe path driver");
  }
}

}  // namespace

// The name the header sizes the context by; requests hold an InFlight.
struct NvmePathDriver::Context : InFlight {};

Result<std::unique_ptr<NvmePathDriver>> NvmePathDriver::Create(NvmeTransport& transport, std::uint32_t nsid,
                                                              std::uint32_t block_size, std::uint64_t capacity_blocks,
                                                              const NvmePathDriverOptions& options,
                                                              NvmePathObserver* observer) {
  if (nsid == 0 || nsid == spec::kBroadcastNsid) {
    return MakeError(Errc::kInvalidArgument, "NVMe path driver: NSID " + std::to_string(nsid) +
                                                 " does not name one namespace");
  }
  // LBADS is a power of two of at least 2^9 (NVM Command Set 1.0c, "LBA Format Data Structure").
  if (block_size < 512 || !std::has_single_bit(block_size)) {
    return MakeError(Errc::kInvalidArgument,
                     "NVMe path driver: block size " + std::to_string(block_size) + " is not a power of two >= 512");
  }
  if (capacity_blocks == 0) return MakeError(Errc::kInvalidArgument, "NVMe path driver: capacity of 0 blocks");
  if (capacity_blocks > std::numeric_limits<std::uint64_t>::max() / block_size) {
    return MakeError(Errc::kInvalidArgument, "NVMe path driver: capacity " + std::to_string(capacity_blocks) +
                                                 " blocks of " + std::to_string(block_size) +
                                                 " bytes overflows 64 bits");
  }
  if (options.max_transfer_bytes != 0 && options.max_transfer_bytes < block_size) {
    return MakeError(Errc::kInvalidArgument, "NVMe path driver: maximum transfer of " +
                                                 std::to_string(options.max_transfer_bytes) +
                                                 " bytes is less than one block of " + std::to_string(block_size));
  }
  if (options.command_timeout < Nanos(0)) {
    return MakeError(Errc::kInvalidArgument, "NVMe path driver: negative command timeout");
  }
  return std::unique_ptr<NvmePathDriver>(
      new NvmePathDriver(transport, nsid, block_size, capacity_blocks, options, observer));
}

NvmePathDriver::NvmePathDriver(NvmeTransport& transport, std::uint32_t nsid, std::uint32_t block_size,
                               std::uint64_t capacity_blocks, const NvmePathDriverOptions& options,
                               NvmePathObserver* observer)
    : transport_(transport),
      nsid_(nsid),
      block_size_(block_size),
      capacity_blocks_(capacity_blocks),
      options_(options),
      observer_(observer) {}

NvmePathDriver::~NvmePathDriver() = default;

std::size_t NvmePathDriver::RequiredContextSize() {
  // The context ends its lifetime before the request completes (a retry reuses it at once), so nothing in it may
  // need destruction.
  static_assert(std::is_trivially_destructible_v<InFlight>);
  static_assert(sizeof(Context) == sizeof(InFlight) && alignof(Context) == alignof(InFlight));
  static_assert(sizeof(Context) <= 256, "must fit HeadOptions::request_context_size's default");
  return sizeof(Context);
}

std::size_t NvmePathDriver::ContextSize() const { return RequiredContextSize(); }

void NvmePathDriver::Submit(IoRequest& io) {
  void* storage = io.driver_context();
  if (storage == nullptr || io.driver_context_size() < sizeof(Context) ||
      reinterpret_cast<std::uintptr_t>(storage) % alignof(Context) != 0) [[unlikely]] {
    io.Complete(IoStatus::Of(Errc::kInternal, "request has no room for the NVMe driver's context"));
    return;
  }
  auto* context = new (storage) InFlight;
  context->io = &io;
  context->driver = this;
  context->observer = observer_;
  if (IoStatus refused = Build(io, *context); !refused.ok()) [[unlikely]] {
    context->~InFlight();
    io.Complete(refused);
    return;
  }
  NvmeCommand& command = context->command;
  // A transport that answers later delivers on the submitter's thread.
  command.executor = CurrentExecutor();
  command.OnFinish(&OnFinished, context);
  transport_.Submit(command);
}

}  // namespace mpath::nvme
