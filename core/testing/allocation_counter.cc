#include <cstdlib>
#include <new>

#include "mpath/testing/allocation_scope.h"

namespace {

thread_local bool counting_allocations = false;
thread_local std::size_t allocations = 0;

void* Allocate(std::size_t size) {
  if (counting_allocations) ++allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}

}  // namespace

namespace mpath::testing {

AllocationScope::AllocationScope() {
  allocations = 0;
  counting_allocations = true;
}
AllocationScope::~AllocationScope() { counting_allocations = false; }
std::size_t AllocationScope::count() const { return allocations; }

}  // namespace mpath::testing

void* operator new(std::size_t size) { return Allocate(size); }
void* operator new[](std::size_t size) { return Allocate(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return std::malloc(size == 0 ? 1 : size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return std::malloc(size == 0 ? 1 : size); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
