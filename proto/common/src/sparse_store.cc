#include "mpath/proto/sparse_store.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace mpath::proto {

SparseStore::SparseStore(std::size_t chunk_bytes) : chunk_bytes_(std::max<std::size_t>(chunk_bytes, 1)) {}

template <typename Fn>
void SparseStore::ForEachPiece(std::uint64_t offset, std::uint64_t length, Fn&& fn) const {
  std::uint64_t done = 0;
  while (done < length) {
    const std::uint64_t at = offset + done;
    const std::uint64_t index = at / chunk_bytes_;
    const std::uint64_t in_chunk = at % chunk_bytes_;
    const std::uint64_t n = std::min<std::uint64_t>(chunk_bytes_ - in_chunk, length - done);
    fn(index, in_chunk, done, n);
    done += n;
  }
}

void SparseStore::Read(std::uint64_t offset, std::span<std::byte> out) const {
  ForEachPiece(offset, out.size(), [&](std::uint64_t index, std::uint64_t in_chunk, std::uint64_t done,
                                       std::uint64_t n) {
    auto it = chunks_.find(index);
    if (it == chunks_.end()) {
      std::memset(out.data() + done, 0, n);
    } else {
      std::memcpy(out.data() + done, it->second.get() + in_chunk, n);
    }
  });
}

void SparseStore::Write(std::uint64_t offset, std::span<const std::byte> in) {
  ForEachPiece(offset, in.size(), [&](std::uint64_t index, std::uint64_t in_chunk, std::uint64_t done,
                                      std::uint64_t n) {
    auto& chunk = chunks_[index];
    if (!chunk) chunk = std::make_unique<std::byte[]>(chunk_bytes_);  // value-initialized: zeroes
    std::memcpy(chunk.get() + in_chunk, in.data() + done, n);
  });
}

void SparseStore::Zero(std::uint64_t offset, std::uint64_t length) {
  if (length == 0) return;
  const std::uint64_t first = offset / chunk_bytes_;
  const std::uint64_t last = (offset + length - 1) / chunk_bytes_;
  // A range far larger than what was written (deallocating a whole volume) visits the allocated chunks, not the range.
  std::vector<std::uint64_t> indices;
  if (last - first >= chunks_.size()) {
    for (const auto& [index, chunk] : chunks_) {
      if (index >= first && index <= last) indices.push_back(index);
    }
  } else {
    for (std::uint64_t index = first; index <= last; ++index) {
      if (chunks_.contains(index)) indices.push_back(index);
    }
  }
  for (std::uint64_t index : indices) {
    const std::uint64_t chunk_start = index * chunk_bytes_;
    const std::uint64_t from = std::max(offset, chunk_start) - chunk_start;
    const std::uint64_t to = std::min(offset + length, chunk_start + chunk_bytes_) - chunk_start;
    auto it = chunks_.find(index);
    std::byte* data = it->second.get();
    std::memset(data + from, 0, to - from);
    if (std::all_of(data, data + chunk_bytes_, [](std::byte b) { return b == std::byte{0}; })) chunks_.erase(it);
  }
}

}  // namespace mpath::proto
