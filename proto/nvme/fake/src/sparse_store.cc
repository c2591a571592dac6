#include "sparse_store.h"

#include <algorithm>
#include <cstring>

namespace mpath::nvme::fake {

void SparseStore::Read(std::uint64_t offset, std::span<std::byte> out) const {
  std::size_t done = 0;
  while (done < out.size()) {
    const std::uint64_t pos = offset + done;
    const std::uint64_t index = pos / kChunkBytes;
    const std::size_t within = pos % kChunkBytes;
    const std::size_t n = std::min(out.size() - done, kChunkBytes - within);
    auto it = chunks_.find(index);
    if (it == chunks_.end()) {
      std::memset(out.data() + done, 0, n);
    } else {
      std::memcpy(out.data() + done, it->second.get() + within, n);
    }
    done += n;
  }
}

void SparseStore::Write(std::uint64_t offset, std::span<const std::byte> in) {
  std::size_t done = 0;
  while (done < in.size()) {
    const std::uint64_t pos = offset + done;
    const std::uint64_t index = pos / kChunkBytes;
    const std::size_t within = pos % kChunkBytes;
    const std::size_t n = std::min(in.size() - done, kChunkBytes - within);
    auto& chunk = chunks_[index];
    if (!chunk) chunk = std::make_unique<std::byte[]>(kChunkBytes);  // value-initialized: zero
    std::memcpy(chunk.get() + within, in.data() + done, n);
    done += n;
  }
}

void SparseStore::Zero(std::uint64_t offset, std::uint64_t length) {
  std::uint64_t done = 0;
  while (done < length) {
    const std::uint64_t pos = offset + done;
    const std::uint64_t index = pos / kChunkBytes;
    const std::size_t within = pos % kChunkBytes;
    const std::uint64_t n = std::min<std::uint64_t>(length - done, kChunkBytes - within);
    auto it = chunks_.find(index);
    if (it != chunks_.end()) {
      if (n == kChunkBytes) {
        chunks_.erase(it);
      } else {
        std::memset(it->second.get() + within, 0, n);
      }
    }
    done += n;
  }
}

}  // namespace mpath::nvme::fake
