// How a SCSI or NVMe command gets back to its submitter: one hook (a function pointer and an argument, so finishing
// never allocates), which a fault or tracing decorator may borrow and give back.
#pragma once

#include <utility>

namespace mpath::proto {

// Threading: part of the command, owned by one thread at a time.
template <typename Command>
class CommandCompletion {
 public:
  using Callback = void (*)(Command& command, void* arg);
  struct Hook {
    Callback callback = nullptr;
    void* arg = nullptr;
  };

  // Who hears about the answer. Must be set before the command is submitted.
  void OnFinish(Callback callback, void* arg) { hook_ = {callback, arg}; }
  // For decorators that must see the answer before the submitter does: installs `next` and returns the hook it
  // replaced, which the decorator restores before it finishes the command itself.
  Hook ExchangeHook(Hook next) { return std::exchange(hook_, next); }
  // For transports: hand the answered command back. Exactly once per Submit, inside Submit or on the command's
  // executor.
  void Finish() { hook_.callback(static_cast<Command&>(*this), hook_.arg); }

 private:
  Hook hook_;
};

}  // namespace mpath::proto
