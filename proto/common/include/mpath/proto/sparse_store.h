// The bytes of one simulated volume (a SCSI LU or an NVMe namespace), kept in fixed-size chunks allocated on first
// write, so that a terabyte volume costs only what was written. Bytes never written, or zeroed, read as zero, and
// chunks left all zero are freed: deallocation frees memory however the ranges were cut. Shared by the device fakes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>

namespace mpath::proto {

// Threading: not thread-safe; the owning device's lock guards it.
class SparseStore {
 public:
  static constexpr std::size_t kDefaultChunkBytes = 64 * 1024;

  explicit SparseStore(std::size_t chunk_bytes = kDefaultChunkBytes);
  SparseStore(const SparseStore&) = delete;
  SparseStore& operator=(const SparseStore&) = delete;
  SparseStore(SparseStore&&) = default;
  SparseStore& operator=(SparseStore&&) = default;

  // Callers check ranges against the volume's capacity; the store itself is unbounded.
  void Read(std::uint64_t offset, std::span<std::byte> out) const;
  void Write(std::uint64_t offset, std::span<const std::byte> in);
  // [offset, offset + length) reads as zeroes afterwards.
  void Zero(std::uint64_t offset, std::uint64_t length);
  void Clear() { chunks_.clear(); }

  [[nodiscard]] std::uint64_t allocated_bytes() const { return chunks_.size() * chunk_bytes_; }

 private:
  // Calls fn(chunk index, offset in chunk, offset in the range, length) for each piece of a byte range.
  template <typename Fn>
  void ForEachPiece(std::uint64_t offset, std::uint64_t length, Fn&& fn) const;

  std::size_t chunk_bytes_;
  std::unordered_map<std::uint64_t, std::unique_ptr<std::byte[]>> chunks_;
};

}  // namespace mpath::proto
