// The bytes of one simulated volume (a SCSI LU or an NVMe namespace), kept in fixed-size chunks allocated on first
// write, so that a terabyte volume costs only what was written. Bytes never written, or zeroed, read as zero, and
// chunks left all zero are freed: deallocation frees memory however the ranges were cut. Shared by the device fakes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <unordered_map>
#include <utility>

namespace mpath::proto {

// Threading: not thread-safe; the owning device's lock guards it.
class SparseStore {
 public:
  static constexpr std::size_t kDefaultChunkBytes = 64 * 1024;

  explicit SparseStore(std::size_t chunk_bytes = kDefaultChunkBytes);
  SparseStore(const SparseStore&) = delete;
  SparseStore& operator=(const SparseStore&) = delete;
  SparseStore(SparseStore&& other) noexcept
      : chunk_bytes_(other.chunk_bytes_),
        leaves_(std::exchange(other.leaves_, {})),
        chunk_count_(std::exchange(other.chunk_count_, 0)) {}
  SparseStore& operator=(SparseStore&& other) noexcept {
    chunk_bytes_ = other.chunk_bytes_;
    leaves_ = std::exchange(other.leaves_, {});
    chunk_count_ = std::exchange(other.chunk_count_, 0);
    return *this;
  }

  // Callers check ranges against the volume's capacity; the store itself is unbounded.
  void Read(std::uint64_t offset, std::span<std::byte> out) const;
  void Write(std::uint64_t offset, std::span<const std::byte> in);
  // [offset, offset + length) reads as zeroes afterwards.
  void Zero(std::uint64_t offset, std::uint64_t length);
  void Clear() {
    leaves_.clear();
    chunk_count_ = 0;
  }

  [[nodiscard]] std::uint64_t allocated_bytes() const { return chunk_count_ * chunk_bytes_; }

 private:
  // Chunks per leaf: a leaf is one page of pointers, and spans 32 MiB of the volume with the default chunk size.
  static constexpr std::size_t kLeafChunks = 512;

  struct FreeChunk {
    void operator()(std::byte* chunk) const { std::free(chunk); }
  };
  using Chunk = std::unique_ptr<std::byte[], FreeChunk>;
  struct Leaf {
    std::array<Chunk, kLeafChunks> chunks;
    std::size_t used = 0;  // non-null entries of chunks
  };

  // Calls fn(chunk index, offset in chunk, offset in the range, length) for each piece of a byte range.
  template <typename Fn>
  void ForEachPiece(std::uint64_t offset, std::uint64_t length, Fn&& fn) const;
  // The chunk holding chunk index `index`, or null when it was never written (or was zeroed whole).
  [[nodiscard]] const std::byte* FindChunk(std::uint64_t index) const;
  // The chunk holding `index`, allocated (reading as zeroes) when missing.
  [[nodiscard]] std::byte* ChunkForWrite(std::uint64_t index);
  // Zeroes [offset, offset + length) within one leaf and frees the chunks left all zero; true when the leaf is empty.
  bool ZeroInLeaf(std::uint64_t leaf_index, Leaf& leaf, std::uint64_t offset, std::uint64_t length);

  std::size_t chunk_bytes_;
  // Two levels, as a page table: a map of leaves, each a dense array of chunk pointers. The leaves of a volume's
  // working set are few and stay in cache, so finding a chunk costs a probe into a small, hot map and an array index,
  // where one map node per chunk, scattered over the heap between the chunks, missed cache and TLB on every I/O.
  std::unordered_map<std::uint64_t, std::unique_ptr<Leaf>> leaves_;
  std::uint64_t chunk_count_ = 0;
};

}  // namespace mpath::proto
