// The bytes of one namespace, kept in fixed-size chunks allocated on first write so that a large, mostly empty
// namespace costs only what has been written. Bytes never written read as zero.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>

namespace mpath::nvme::fake {

// Threading: thread-unsafe; the subsystem's lock guards it.
class SparseStore {
 public:
  static constexpr std::size_t kChunkBytes = 64 * 1024;

  SparseStore() = default;
  SparseStore(const SparseStore&) = delete;
  SparseStore& operator=(const SparseStore&) = delete;

  void Read(std::uint64_t offset, std::span<std::byte> out) const;
  void Write(std::uint64_t offset, std::span<const std::byte> in);
  // Zeroes [offset, offset + length), releasing the chunks it covers whole.
  void Zero(std::uint64_t offset, std::uint64_t length);
  void Clear() { chunks_.clear(); }
  [[nodiscard]] std::size_t allocated_chunks() const { return chunks_.size(); }

 private:
  std::unordered_map<std::uint64_t, std::unique_ptr<std::byte[]>> chunks_;
};

}  // namespace mpath::nvme::fake
