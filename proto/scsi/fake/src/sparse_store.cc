#include "sparse_store.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace mpath::scsi::fake {

SparseStore::SparseStore(std::uint32_t block_size, std::uint64_t blocks)
    : block_size_(block_size), blocks_(blocks), chunk_bytes_(kBlocksPerChunk * block_size) {}

template <typename Fn>
void SparseStore::ForEachPiece(std::uint64_t byte_offset, std::uint64_t length, Fn&& fn) const {
  std::uint64_t done = 0;
  while (done < length) {
    const std::uint64_t at = byte_offset + done;
    const std::uint64_t index = at / chunk_bytes_;
    const std::uint64_t in_chunk = at % chunk_bytes_;
    const std::uint64_t n = std::min(chunk_bytes_ - in_chunk, length - done);
    fn(index, in_chunk, done, n);
    done += n;
  }
}

std::byte* SparseStore::ChunkForWrite(std::uint64_t index) {
  Chunk& chunk = chunks_[index];
  if (!chunk) chunk = std::make_unique<std::byte[]>(chunk_bytes_);  // value-initialized: zeroes
  return chunk.get();
}

void SparseStore::Read(std::uint64_t lba, std::span<std::byte> out) const {
  ForEachPiece(lba * block_size_, out.size(), [&](std::uint64_t index, std::uint64_t in_chunk, std::uint64_t done,
                                                  std::uint64_t n) {
    auto it = chunks_.find(index);
    if (it == chunks_.end()) {
      std::memset(out.data() + done, 0, n);
    } else {
      std::memcpy(out.data() + done, it->second.get() + in_chunk, n);
    }
  });
}

void SparseStore::Write(std::uint64_t lba, std::span<const std::byte> data) {
  ForEachPiece(lba * block_size_, data.size(), [&](std::uint64_t index, std::uint64_t in_chunk, std::uint64_t done,
                                                   std::uint64_t n) {
    std::memcpy(ChunkForWrite(index) + in_chunk, data.data() + done, n);
  });
}

void SparseStore::WriteSame(std::uint64_t lba, std::uint64_t blocks, std::span<const std::byte> block) {
  for (std::uint64_t i = 0; i < blocks; ++i) Write(lba + i, block.first(block_size_));
}

void SparseStore::ZeroRange(std::uint64_t byte_offset, std::uint64_t length) {
  if (length == 0) return;
  const std::uint64_t first = byte_offset / chunk_bytes_;
  const std::uint64_t last = (byte_offset + length - 1) / chunk_bytes_;
  // A range far larger than what was written (UNMAP of a whole LU) visits the allocated chunks, not the range.
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
    const std::uint64_t from = std::max(byte_offset, chunk_start) - chunk_start;
    const std::uint64_t to = std::min(byte_offset + length, chunk_start + chunk_bytes_) - chunk_start;
    auto it = chunks_.find(index);
    std::byte* data = it->second.get();
    std::memset(data + from, 0, to - from);
    // Keeping a chunk that is all zeroes would make deallocation depend on how the ranges were cut.
    if (std::all_of(data, data + chunk_bytes_, [](std::byte b) { return b == std::byte{0}; })) chunks_.erase(it);
  }
}

void SparseStore::Deallocate(std::uint64_t lba, std::uint64_t blocks) {
  ZeroRange(lba * block_size_, blocks * block_size_);
}

void SparseStore::Resize(std::uint64_t blocks) {
  if (blocks < blocks_) ZeroRange(blocks * block_size_, (blocks_ - blocks) * block_size_);
  blocks_ = blocks;
}

}  // namespace mpath::scsi::fake
