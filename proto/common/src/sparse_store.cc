#include "mpath/proto/sparse_store.h"

#include <algorithm>
#include <cstring>
#include <new>

namespace mpath::proto {
namespace {

bool IsAllZero(const std::byte* data, std::size_t n) {
  // Every byte equals the next one and the first is zero: one vectorised memcmp instead of a byte loop.
  return n == 0 || (data[0] == std::byte{0} && std::memcmp(data, data + 1, n - 1) == 0);
}

}  // namespace

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

const std::byte* SparseStore::FindChunk(std::uint64_t index) const {
  auto it = leaves_.find(index / kLeafChunks);
  return it == leaves_.end() ? nullptr : it->second->chunks[index % kLeafChunks].get();
}

std::byte* SparseStore::ChunkForWrite(std::uint64_t index) {
  std::unique_ptr<Leaf>& leaf = leaves_[index / kLeafChunks];
  if (!leaf) leaf = std::make_unique<Leaf>();
  Chunk& chunk = leaf->chunks[index % kLeafChunks];
  if (!chunk) {
    // calloc rather than a value-initialised new[]: memory fresh from the system is zero already and is not cleared
    // again, and pages the volume never touches are never faulted in.
    chunk.reset(static_cast<std::byte*>(std::calloc(chunk_bytes_, 1)));
    if (!chunk) throw std::bad_alloc();
    ++leaf->used;
    ++chunk_count_;
  }
  return chunk.get();
}

void SparseStore::Read(std::uint64_t offset, std::span<std::byte> out) const {
  ForEachPiece(offset, out.size(), [&](std::uint64_t index, std::uint64_t in_chunk, std::uint64_t done,
                                       std::uint64_t n) {
    const std::byte* chunk = FindChunk(index);
    if (chunk == nullptr) {
      std::memset(out.data() + done, 0, n);
    } else {
      std::memcpy(out.data() + done, chunk + in_chunk, n);
    }
  });
}

void SparseStore::Write(std::uint64_t offset, std::span<const std::byte> in) {
  ForEachPiece(offset, in.size(), [&](std::uint64_t index, std::uint64_t in_chunk, std::uint64_t done,
                                      std::uint64_t n) {
    std::memcpy(ChunkForWrite(index) + in_chunk, in.data() + done, n);
  });
}

bool SparseStore::ZeroInLeaf(std::uint64_t leaf_index, Leaf& leaf, std::uint64_t offset, std::uint64_t length) {
  const std::uint64_t leaf_first = leaf_index * kLeafChunks;
  const std::uint64_t first = std::max(offset / chunk_bytes_, leaf_first);
  const std::uint64_t last = std::min((offset + length - 1) / chunk_bytes_, leaf_first + kLeafChunks - 1);
  for (std::uint64_t index = first; index <= last; ++index) {
    Chunk& chunk = leaf.chunks[index - leaf_first];
    if (!chunk) continue;
    const std::uint64_t chunk_start = index * chunk_bytes_;
    const std::uint64_t from = std::max(offset, chunk_start) - chunk_start;
    const std::uint64_t to = std::min(offset + length, chunk_start + chunk_bytes_) - chunk_start;
    std::byte* data = chunk.get();
    std::memset(data + from, 0, to - from);
    // Only what lies outside the zeroed range can still hold data.
    if (IsAllZero(data, from) && IsAllZero(data + to, chunk_bytes_ - to)) {
      chunk.reset();
      --leaf.used;
      --chunk_count_;
    }
  }
  return leaf.used == 0;
}

void SparseStore::Zero(std::uint64_t offset, std::uint64_t length) {
  if (length == 0) return;
  const std::uint64_t first_leaf = offset / chunk_bytes_ / kLeafChunks;
  const std::uint64_t last_leaf = (offset + length - 1) / chunk_bytes_ / kLeafChunks;
  // A range far larger than what was written (deallocating a whole volume) visits the allocated leaves, not the range.
  if (last_leaf - first_leaf >= leaves_.size()) {
    for (auto it = leaves_.begin(); it != leaves_.end();) {
      const bool in_range = it->first >= first_leaf && it->first <= last_leaf;
      if (in_range && ZeroInLeaf(it->first, *it->second, offset, length)) {
        it = leaves_.erase(it);
      } else {
        ++it;
      }
    }
    return;
  }
  for (std::uint64_t leaf_index = first_leaf; leaf_index <= last_leaf; ++leaf_index) {
    auto it = leaves_.find(leaf_index);
    if (it != leaves_.end() && ZeroInLeaf(leaf_index, *it->second, offset, length)) leaves_.erase(it);
  }
}

}  // namespace mpath::proto
