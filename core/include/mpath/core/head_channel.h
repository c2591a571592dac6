// A head's data plane for one I/O thread: its own copy of the path set, its own cursor and cached path, its own
// in-flight counts and requeue list. Submitting takes no lock and allocates nothing; the only shared read is the
// head's generation word, which tells the channel to refresh its copy after the control plane changed something.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "mpath/core/counters.h"
#include "mpath/core/executor.h"
#include "mpath/core/head.h"
#include "mpath/core/io_request.h"

namespace mpath {

// An intrusive FIFO of requests (links live in the requests, so queueing never allocates).
// Threading: thread-confined, like the channel that owns it.
class IoList {
 public:
  [[nodiscard]] bool empty() const { return head_ == nullptr; }
  [[nodiscard]] std::size_t size() const { return size_; }
  void PushBack(IoRequest& io);
  IoRequest* PopFront();
  void Swap(IoList& other);

 private:
  IoRequest* head_ = nullptr;
  IoRequest* tail_ = nullptr;
  std::size_t size_ = 0;
};

// Threading: thread-confined. Submit, Close and every completion of the channel's I/O run on the thread of the
// executor it was opened with; the head reaches it only by posting to that executor.
class HeadChannel : public std::enable_shared_from_this<HeadChannel> {
 public:
  HeadChannel(std::shared_ptr<Head> head, Executor& executor, int locality);
  ~HeadChannel();
  HeadChannel(const HeadChannel&) = delete;
  HeadChannel& operator=(const HeadChannel&) = delete;

  // Sends `io` down a path chosen by the head's iopolicy, or queues or fails it by the head's no-path rules. The
  // completion hook (IoRequest::OnComplete) runs exactly once, on this thread, possibly before Submit returns.
  void Submit(IoRequest& io);

  // Fails every queued or delayed request with kAborted. In-flight requests still complete normally.
  void Close();

  [[nodiscard]] Head& head() const { return *head_; }
  [[nodiscard]] std::size_t queued() const { return requeue_.size() + delayed_.size(); }
  [[nodiscard]] std::size_t in_flight() const { return in_flight_; }

 private:
  friend class Head;
  struct Lane;

  void Refresh();
  void Route(IoRequest& io);
  Lane* Select(IoRequest& io);
  Lane* SelectExcluding(std::uint64_t excluded) const;
  void Issue(IoRequest& io, Lane& lane);
  static void OnPathDone(IoRequest& io, void* channel);
  void HandlePathDone(IoRequest& io);
  void HandleFailure(IoRequest& io, Lane& lane);
  void FailOver(IoRequest& io, Lane& lane, bool count_against_path);
  void Delay(IoRequest& io, Nanos delay);
  void Finish(IoRequest& io, IoStatus status);
  void DrainRequeue();
  void ArmDelayTimer();
  void OnDelayTimer();
  void Kick();
  void NoteOutcome(Lane& lane, bool path_failed);
  void CheckLatency(Lane& lane);
  void AgeLatencies();
  void ReleaseLaneIfIdle(Lane& lane);
  void SchedulePurge();
  [[nodiscard]] IoStatus Validate(const IoRequest& io) const;

  // Constant after construction.
  const std::shared_ptr<Head> head_;
  Executor& executor_;
  const Clock& clock_;
  const int locality_;
  const HeadTemplate& personality_;
  const std::shared_ptr<IoCounterCell> counters_;
  const std::uint64_t capacity_bytes_;
  const std::uint64_t block_mask_;

  // Thread-confined state.
  std::uint64_t seen_generation_ = 0;
  HeadOptions options_;
  IoPolicyKind policy_ = IoPolicyKind::kNuma;
  bool queue_when_no_path_ = false;
  IoStatus no_path_status_;
  IoLimits limits_;
  std::vector<std::unique_ptr<Lane>> lanes_;     // every path of the current snapshot
  std::vector<std::unique_ptr<Lane>> retired_;   // removed paths that still have I/O of this channel in flight
  std::vector<Lane*> best_;                      // usable lanes of the lowest non-empty tier
  std::vector<Lane*> usable_;                    // every usable lane, by tier
  Lane* cached_ = nullptr;                       // numa: the chosen path until something changes
  std::uint32_t rr_cursor_ = 0;
  std::uint32_t ios_since_aging_ = 0;
  std::uint32_t sample_mask_ = 0;    // latency_sample_interval - 1
  std::uint32_t issue_count_ = 0;
  std::size_t in_flight_ = 0;
  IoList requeue_;                               // waiting for a usable path, in arrival order
  std::vector<IoRequest*> delayed_;              // waiting for resume_at_ (retries, quiesce, backoff)
  TimerId delay_timer_ = 0;
  TimePoint delay_timer_at_{};
  bool draining_ = false;
  bool purge_posted_ = false;
};

}  // namespace mpath
