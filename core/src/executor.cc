#include "mpath/core/executor.h"

namespace mpath {
namespace {
thread_local Executor* current_executor = nullptr;
}  // namespace

Executor* CurrentExecutor() { return current_executor; }

ScopedCurrentExecutor::ScopedCurrentExecutor(Executor* executor) : previous_(current_executor) {
  current_executor = executor;
}

ScopedCurrentExecutor::~ScopedCurrentExecutor() { current_executor = previous_; }

}  // namespace mpath
