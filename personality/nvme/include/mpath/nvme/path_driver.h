// The NVMe path driver: one namespace over one controller (one NvmeTransport). It turns the core's IoRequests into NVM
// command set SQEs built in the request's own context, and their CQEs back into IoStatus with the raw NVMe status
// kept (raw_status.h). It never retries: retries are the classifier's and the core's business.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/core/io_request.h"
#include "mpath/core/path_driver.h"
#include "mpath/nvme/raw_status.h"
#include "mpath/nvme/transport.h"

namespace mpath::nvme {

// Told when a completion carries an ANA status (0x301, 0x302, 0x303): the controller's ANA log must be read again.
// Threading: called on the thread that completes the I/O (the submitter's), before the I/O completes, concurrently
// from every I/O thread. Implementations must be thread-safe, must not block, and must not submit on this driver from
// inside the call.
class NvmePathObserver {
 public:
  virtual ~NvmePathObserver() = default;
  virtual void OnAnaStatus(std::uint16_t status_code) = 0;
};

// IoRequest::passthrough for IoOp::kPassthrough: an SQE sent as is (the transport sets CID and the data pointer), on
// one path, never resent. The request does not own any of it; everything must stay valid until the request completes.
struct NvmePassthrough {
  spec::SubmissionQueueEntry sqe{};
  QueueKind queue = QueueKind::kIo;
  DataDirection direction = DataDirection::kNone;
  std::span<std::byte> data{};  // empty when direction is kNone
  Nanos timeout{0};             // 0: the driver's command timeout
  // Optional: filled before the request completes whenever the command reached the transport (a request refused by
  // the driver leaves it alone). The IoStatus carries the same answer in its raw status.
  struct Answer {
    Delivery delivery = Delivery::kDelivered;
    spec::CompletionQueueEntry cqe{};
  }* answer = nullptr;
};

struct NvmePathDriverOptions {
  RetryDelayTimes retry_delays{};      // the controller's CRDT1..3 (Identify Controller)
  bool write_zeroes = false;           // ONCS Write Zeroes: else kWriteZeroes is kUnsupported
  bool deallocate = false;             // ONCS Dataset Management: else kDiscard is kUnsupported
  std::uint32_t max_transfer_bytes = 0;  // from MDTS; 0: no limit beyond the command's 65536 blocks
  Nanos command_timeout{0};            // every command's timeout; 0: the transport's default
};

// Threading: Submit may be called from any number of threads at once: the driver keeps no mutable state (no lock, no
// allocation per I/O). Each request completes exactly once on its submitter's thread, inline or through the executor
// current at Submit (CurrentExecutor()); over a transport that answers later, Submit must run on an executor's thread.
class NvmePathDriver final : public PathDriver {
 public:
  // `transport` and `observer` (optional) are borrowed and must outlive the driver and every request in flight on it.
  // The geometry is the namespace's (Identify Namespace NSZE and LBA format): requests are checked against it before
  // anything is sent.
  static Result<std::unique_ptr<NvmePathDriver>> Create(NvmeTransport& transport, std::uint32_t nsid,
                                                        std::uint32_t block_size, std::uint64_t capacity_blocks,
                                                        const NvmePathDriverOptions& options = {},
                                                        NvmePathObserver* observer = nullptr);
  ~NvmePathDriver() override;
  NvmePathDriver(const NvmePathDriver&) = delete;
  NvmePathDriver& operator=(const NvmePathDriver&) = delete;

  // The context holds the NvmeCommand and one Dataset Management range: well inside HeadOptions::request_context_size's
  // default (256).
  [[nodiscard]] std::size_t ContextSize() const override;
  static std::size_t RequiredContextSize();

  // kRead/kWrite -> Read/Write (FUA from io.fua), kFlush -> Flush, kWriteZeroes -> Write Zeroes, kDiscard -> Dataset
  // Management (deallocate) with one range, kProbe -> Flush (it reaches the namespace through the I/O queue, as real
  // I/O does), kPassthrough -> the NvmePassthrough at io.passthrough. A request that is misaligned, beyond the
  // capacity or the transfer limit, malformed or unsupported completes at once with kInvalidArgument, kOutOfRange or
  // kUnsupported and never reaches the transport.
  void Submit(IoRequest& io) override;

  [[nodiscard]] std::uint32_t nsid() const { return nsid_; }
  [[nodiscard]] std::uint32_t block_size() const { return block_size_; }
  [[nodiscard]] std::uint64_t capacity_blocks() const { return capacity_blocks_; }
  [[nodiscard]] const NvmePathDriverOptions& options() const { return options_; }

 private:
  struct Context;

  NvmePathDriver(NvmeTransport& transport, std::uint32_t nsid, std::uint32_t block_size,
                 std::uint64_t capacity_blocks, const NvmePathDriverOptions& options, NvmePathObserver* observer);

  // Constant after construction.
  NvmeTransport& transport_;
  const std::uint32_t nsid_;
  const std::uint32_t block_size_;
  const std::uint64_t capacity_blocks_;
  const NvmePathDriverOptions options_;
  NvmePathObserver* const observer_;
};

}  // namespace mpath::nvme
