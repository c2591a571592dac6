// Counts heap allocations on the calling thread while a scope is open, for tests that prove a path allocates nothing.
// Linking mpath_allocation_counter replaces the global operator new of the whole test binary; it counts only inside
// an AllocationScope and only on that scope's thread, so gtest's own allocations elsewhere do not disturb it.
#pragma once

#include <cstddef>

namespace mpath::testing {

// Threading: thread-confined; one scope per thread at a time.
class AllocationScope {
 public:
  AllocationScope();
  ~AllocationScope();
  AllocationScope(const AllocationScope&) = delete;
  AllocationScope& operator=(const AllocationScope&) = delete;

  // Allocations on this thread since the scope opened.
  [[nodiscard]] std::size_t count() const;
};

}  // namespace mpath::testing
