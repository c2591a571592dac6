// The data of one logical unit: fixed-size chunks allocated on first write, so that a terabyte LU costs only what
// was written. Unwritten and deallocated blocks read as zeroes (LBPRZ=1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>

namespace mpath::scsi::fake {

// Threading: not thread-safe; the array's mutex guards it.
class SparseStore {
 public:
  SparseStore(std::uint32_t block_size, std::uint64_t blocks);
  SparseStore(const SparseStore&) = delete;
  SparseStore& operator=(const SparseStore&) = delete;
  SparseStore(SparseStore&&) = default;
  SparseStore& operator=(SparseStore&&) = default;

  // REQUIRES (for all four): the range lies inside the store; out/data hold exactly `blocks` blocks.
  void Read(std::uint64_t lba, std::span<std::byte> out) const;
  void Write(std::uint64_t lba, std::span<const std::byte> data);
  // Writes `block` (one logical block) to each of `blocks` blocks from `lba`.
  void WriteSame(std::uint64_t lba, std::uint64_t blocks, std::span<const std::byte> block);
  // The blocks read as zeroes afterwards, and chunks left all zero are freed.
  void Deallocate(std::uint64_t lba, std::uint64_t blocks);

  // Drops the data beyond a smaller capacity.
  void Resize(std::uint64_t blocks);
  void Clear() { chunks_.clear(); }

  [[nodiscard]] std::uint64_t blocks() const { return blocks_; }
  [[nodiscard]] std::uint32_t block_size() const { return block_size_; }
  [[nodiscard]] std::uint64_t allocated_bytes() const { return chunks_.size() * chunk_bytes_; }

 private:
  static constexpr std::uint64_t kBlocksPerChunk = 64;
  using Chunk = std::unique_ptr<std::byte[]>;

  // Calls fn(chunk index, byte offset in chunk, byte offset in the range, length) for each piece of a byte range.
  template <typename Fn>
  void ForEachPiece(std::uint64_t byte_offset, std::uint64_t length, Fn&& fn) const;
  std::byte* ChunkForWrite(std::uint64_t index);
  void ZeroRange(std::uint64_t byte_offset, std::uint64_t length);

  std::uint32_t block_size_;
  std::uint64_t blocks_;
  std::uint64_t chunk_bytes_;
  std::unordered_map<std::uint64_t, Chunk> chunks_;
};

}  // namespace mpath::scsi::fake
