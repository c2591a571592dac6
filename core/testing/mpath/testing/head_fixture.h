// A head over null paths with a manual clock and executor, and a recorder of completions: the common ground of the
// core's behavioural tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mpath/core/head.h"
#include "mpath/core/head_channel.h"
#include "mpath/core/path_driver.h"
#include "mpath/core/personality.h"
#include "mpath/testing/manual_executor.h"

namespace mpath::testing {

// What a null path of device `identity` reports; tests and benchmarks alter fields from here.
inline DeviceInfo NullPathInfo(std::string name, const DeviceIdentity& identity, std::uint64_t capacity_bytes,
                               std::uint32_t block_size = 512, int locality = kUnknownLocality) {
  DeviceInfo info;
  info.name = std::move(name);
  info.transport = "null";
  info.identity = identity;
  info.reports_access_states = true;
  info.capacity_bytes = capacity_bytes;
  info.block_size = block_size;
  info.locality = locality;
  return info;
}

// Records every completion with its order; each request may complete once only.
// Threading: thread-confined to the channel's thread.
class CompletionLog {
 public:
  struct Entry {
    std::size_t tag;
    IoStatus status;
  };
  static void Hook(IoRequest& io, void* log) {
    auto* self = static_cast<CompletionLog*>(log);
    self->entries.push_back({reinterpret_cast<std::size_t>(io.user), io.status});
  }
  [[nodiscard]] std::size_t CountOf(std::size_t tag) const {
    std::size_t n = 0;
    for (const auto& e : entries) n += e.tag == tag;
    return n;
  }
  std::vector<Entry> entries;
};

// Threading: single-threaded; the test thread plays every role.
class HeadFixture {
 public:
  static constexpr std::uint64_t kCapacity = 1 << 20;
  static constexpr std::uint32_t kBlock = 512;

  explicit HeadFixture(HeadOptions options = {}, const HeadTemplate& personality = NeutralTemplate::Instance())
      : executor_(clock_) {
    auto created = Head::Create({"mpath0", DeviceIdentity("naa.600140500000000000000000000000aa"), kCapacity, kBlock,
                                 options},
                                personality, executor_, [this](Head&) { ++removed_announcements_; });
    head_ = std::move(created).value();
  }

  // What a path of this head's device reports; tests alter fields to make it disagree.
  DeviceInfo DescribePath(std::string name) const {
    return NullPathInfo(std::move(name), head_->identity(), kCapacity, kBlock);
  }

  // Adds a null path; returns its id. `mode` kInline completes at once, kHold keeps requests until released.
  PathId AddPath(std::string name, AccessState access = AccessState::kOptimized,
                 NullPath::Mode mode = NullPath::Mode::kInline, int locality = kUnknownLocality,
                 PathState state = PathState::kLive) {
    DeviceInfo info = DescribePath(std::move(name));
    info.locality = locality;
    info.initial_state = state;
    info.initial_access = access;
    auto driver = std::make_unique<NullPath>(mode, &executor_);
    NullPath* raw = driver.get();
    PathId id = head_->AddPath(info, std::move(driver)).value();
    drivers_.push_back({id, raw});
    pinned_paths_.push_back(head_->FindPath(id));  // keeps drivers alive for the test, even after removal
    return id;
  }

  NullPath& driver(PathId id) {
    for (auto& [pid, d] : drivers_) {
      if (pid == id) return *d;
    }
    std::abort();
  }

  HeadChannel& channel() {
    if (!channel_) channel_ = head_->OpenChannel(executor_);
    return *channel_;
  }

  // Submits a request tagged `tag` (a read of one block at `tag` blocks unless told otherwise).
  IoRequest& Submit(std::size_t tag, IoOp op = IoOp::kRead) {
    requests_.push_back(std::make_unique<IoRequest>());
    IoRequest& io = *requests_.back();
    io.op = op;
    io.offset = (tag % (kCapacity / kBlock)) * kBlock;
    io.length = (op == IoOp::kFlush || op == IoOp::kPassthrough) ? 0 : kBlock;
    io.data = buffer_;
    io.user = reinterpret_cast<void*>(tag);
    io.OnComplete(&CompletionLog::Hook, &log_);
    channel().Submit(io);
    return io;
  }

  ~HeadFixture() {
    for (auto& [id, d] : drivers_) {
      (void)id;
      d->CompleteHeld(IoStatus::Of(Errc::kAborted, "test teardown"));
    }
    executor_.RunUntilIdle();
    if (channel_) channel_->Close();
  }

  ManualClock& clock() { return clock_; }
  ManualExecutor& executor() { return executor_; }
  Head& head() { return *head_; }
  std::shared_ptr<Head>& head_ptr() { return head_; }
  CompletionLog& log() { return log_; }
  int removed_announcements() const { return removed_announcements_; }

 private:
  ManualClock clock_;
  ManualExecutor executor_;
  std::shared_ptr<Head> head_;
  std::vector<std::pair<PathId, NullPath*>> drivers_;
  std::vector<std::shared_ptr<Path>> pinned_paths_;
  std::shared_ptr<HeadChannel> channel_;
  std::vector<std::unique_ptr<IoRequest>> requests_;
  CompletionLog log_;
  std::byte buffer_[kBlock]{};
  int removed_announcements_ = 0;
};

}  // namespace mpath::testing
