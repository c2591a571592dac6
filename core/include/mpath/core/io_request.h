// One I/O as it travels from a submitter (NBD export, benchmark, test) through a head to a path driver and back.
// Requests come from a preallocated pool and carry every layer's per-I/O state inline, so that nothing between the
// submitter and the transport allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"

namespace mpath {

enum class IoOp : std::uint8_t {
  kRead,
  kWrite,
  kFlush,
  kWriteZeroes,
  kDiscard,
  kPassthrough,  // a protocol command built by the caller; sent down one path and never retried elsewhere
  kProbe,        // a health check the core sends to one path (personalities map it to TEST UNIT READY, Keep Alive...)
};

class IoRequest;

// Completion hook: a plain function pointer plus argument, so that completing never allocates or type-erases.
using IoCallback = void (*)(IoRequest& io, void* arg);

// Threading: owned by one thread at a time (the submitter's), handed down and back by Submit and Complete.
class IoRequest {
 public:
  IoRequest() = default;
  IoRequest(const IoRequest&) = delete;
  IoRequest& operator=(const IoRequest&) = delete;

  // --- Set by the submitter.
  IoOp op = IoOp::kRead;
  bool fua = false;               // writes only: durable before completion
  std::uint64_t offset = 0;       // bytes from the start of the device
  std::uint32_t length = 0;       // bytes
  std::byte* data = nullptr;      // `length` bytes for reads and writes
  const void* passthrough = nullptr;  // kPassthrough: the protocol command, opaque to the core
  void* user = nullptr;           // free for the submitter

  // --- Set once the request completes.
  IoStatus status;

  // Who hears about the completion. Must be set before the request is submitted.
  void OnComplete(IoCallback callback, void* arg) {
    done_ = callback;
    done_arg_ = arg;
  }

  // For the layer that hands this request to a driver: the driver's Complete() calls `callback` instead of the
  // submitter's hook, so the layer can retry before the submitter hears anything.
  void RouteCompletion(IoCallback callback, void* arg) {
    route_ = callback;
    route_arg_ = arg;
  }
  // Routes the completion straight to the submitter's hook (the direct, non-multipath case).
  void RouteToSubmitter() {
    route_ = done_;
    route_arg_ = done_arg_;
  }

  // For drivers: finish the request. Exactly once per Submit, on the thread that called Submit (possibly inline).
  void Complete(IoStatus result) {
    status = result;
    route_(*this, route_arg_);
  }
  // For layers above the driver: deliver the final status to the submitter.
  void CompleteToSubmitter(IoStatus result) {
    status = result;
    done_(*this, done_arg_);
  }

  // Per-request scratch space for the path driver, sized by the pool (IoRequestPool) for every layer below.
  [[nodiscard]] void* driver_context() const { return driver_ctx_; }
  [[nodiscard]] std::size_t driver_context_size() const { return driver_ctx_size_; }
  void AttachDriverContext(void* ctx, std::size_t size) {
    driver_ctx_ = ctx;
    driver_ctx_size_ = size;
  }

 private:
  friend class HeadChannel;
  friend class IoList;

  IoCallback done_ = nullptr;
  void* done_arg_ = nullptr;
  IoCallback route_ = nullptr;
  void* route_arg_ = nullptr;
  void* driver_ctx_ = nullptr;
  std::size_t driver_ctx_size_ = 0;

  // Multipath bookkeeping, owned by the channel while the request is inside a head.
  IoRequest* next_ = nullptr;      // intrusive link: requeue and delay lists
  void* lane_ = nullptr;           // the path lane the request was issued on
  std::uint64_t excluded_ = 0;     // path slots that already failed this request in the current round
  TimePoint submitted_at_{};
  TimePoint issued_at_{};
  TimePoint resume_at_{};          // delayed retries: when to resubmit
  std::uint16_t same_path_retries_ = 0;
  std::uint8_t rounds_ = 0;        // full rounds over every usable path that ended in path errors
  bool pinned_ = false;            // a delayed retry that must go back to `lane_`
};

// A fixed set of requests with their driver contexts laid out beside them.
// Threading: thread-confined (one pool per I/O thread).
class IoRequestPool {
 public:
  IoRequestPool(std::size_t count, std::size_t driver_context_size);

  // Returns nullptr when every request is in use: the submitter's backpressure signal.
  [[nodiscard]] IoRequest* Acquire();
  void Release(IoRequest* io);

  [[nodiscard]] std::size_t capacity() const { return count_; }
  [[nodiscard]] std::size_t available() const { return free_count_; }

 private:
  std::size_t count_;
  std::size_t ctx_stride_;
  std::unique_ptr<IoRequest[]> requests_;
  std::unique_ptr<std::byte[]> contexts_;
  std::unique_ptr<IoRequest*[]> free_;
  std::size_t free_count_;
};

}  // namespace mpath
