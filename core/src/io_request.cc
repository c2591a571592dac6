#include "mpath/core/io_request.h"

#include <cassert>
#include <cstdint>

namespace mpath {

namespace {
// Driver contexts are cache-line aligned so that neighbouring requests on different threads never share a line.
constexpr std::size_t kContextAlign = 64;
}  // namespace

IoRequestPool::IoRequestPool(std::size_t count, std::size_t driver_context_size)
    : count_(count),
      ctx_stride_((driver_context_size + kContextAlign - 1) / kContextAlign * kContextAlign),
      requests_(new IoRequest[count]),
      contexts_(ctx_stride_ ? new std::byte[count * ctx_stride_ + kContextAlign] : nullptr),
      free_(new IoRequest*[count]),
      free_count_(count) {
  std::byte* base = nullptr;
  if (ctx_stride_) {
    auto addr = reinterpret_cast<std::uintptr_t>(contexts_.get());
    base = contexts_.get() + ((kContextAlign - addr % kContextAlign) % kContextAlign);
  }
  for (std::size_t i = 0; i < count; ++i) {
    requests_[i].AttachDriverContext(ctx_stride_ ? base + i * ctx_stride_ : nullptr, ctx_stride_);
    free_[i] = &requests_[count - 1 - i];
  }
}

IoRequest* IoRequestPool::Acquire() {
  if (free_count_ == 0) return nullptr;
  return free_[--free_count_];
}

void IoRequestPool::Release(IoRequest* io) {
  assert(free_count_ < count_);
  free_[free_count_++] = io;
}

}  // namespace mpath
