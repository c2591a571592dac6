#include "mpath/daemon/workload.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <mutex>

#include <fmt/format.h>

#include "mpath/core/head_channel.h"
#include "mpath/core/io_request.h"

namespace mpath::daemon {
namespace {

using namespace std::chrono_literals;

// What every path driver below a head may need per request; a head may ask for more in its options.
constexpr std::size_t kMinDriverContextBytes = 256;
// A slot's I/O often completes inside Submit (the simulated SAN answers inline), so issuing is a loop rather than a
// recursion; after this many issues the loop yields to the event loop, so timers and the control plane still run.
constexpr std::size_t kIssuesPerTurn = 256;
// A failed I/O is not followed at once by the slot's next one: a head that fails everything (removed, no path)
// would otherwise turn the loop into a spin of errors.
constexpr Nanos kErrorBackoff = 10ms;
constexpr std::size_t kErrorsKept = 1000;
constexpr std::size_t kMaxSlotsPerHead = 4096;
constexpr std::uint32_t kMaxIoBytes = 1u << 20;

// Every 512-byte sector the workload writes starts with this header; the rest is a pattern derived from it, so a
// sector that lands elsewhere, comes from another head or an older generation, or is torn, reads back wrong.
constexpr std::uint32_t kSector = 512;
constexpr std::uint64_t kMagic = 0x314b4c42'48544150;  // "PATHBLK1" read as little-endian bytes
struct SectorHeader {
  std::uint64_t magic;
  std::uint64_t sector;  // byte offset / 512 on the head
  std::uint32_t head;
  std::uint32_t generation;
};
static_assert(sizeof(SectorHeader) == 24);

// What a block may hold. Generations of writes start at 1 and are unique per head.
constexpr std::uint32_t kZeroes = 0;                                            // trimmed
constexpr std::uint32_t kUnknown = std::numeric_limits<std::uint32_t>::max();  // nothing is known: not checked
constexpr std::uint32_t kNoAlternative = kUnknown - 1;
constexpr std::uint32_t kLastGeneration = kUnknown - 2;

struct Expectation {
  std::uint32_t now = kUnknown;
  // After a write or trim that failed: what it may have left instead (the device may have executed it).
  std::uint32_t alternative = kNoAlternative;
};

std::uint64_t Mix(std::uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void FillSector(std::byte* out, std::uint64_t sector, std::uint32_t head, std::uint32_t generation) {
  const SectorHeader header{kMagic, sector, head, generation};
  std::memcpy(out, &header, sizeof header);
  std::uint64_t x = Mix(sector ^ (std::uint64_t{head} << 32) ^ generation);
  for (std::size_t at = sizeof header; at + 8 <= kSector; at += 8) {
    x = Mix(x + 0x9e3779b97f4a7c15ull);
    std::memcpy(out + at, &x, 8);
  }
}

void FillBlock(std::byte* out, std::uint32_t bytes, std::uint64_t first_sector, std::uint32_t head,
               std::uint32_t generation) {
  for (std::uint32_t s = 0; s < bytes / kSector; ++s) FillSector(out + s * kSector, first_sector + s, head, generation);
}

bool IsZero(const std::byte* data, std::uint32_t bytes) {
  return std::all_of(data, data + bytes, [](std::byte b) { return b == std::byte{0}; });
}

bool BlockHolds(const std::byte* data, std::uint32_t bytes, std::uint64_t first_sector, std::uint32_t head,
                std::uint32_t generation) {
  if (generation == kZeroes) return IsZero(data, bytes);
  std::byte expected[kSector];
  for (std::uint32_t s = 0; s < bytes / kSector; ++s) {
    FillSector(expected, first_sector + s, head, generation);
    if (std::memcmp(data + s * kSector, expected, kSector) != 0) return false;
  }
  return true;
}

std::string DescribeExpected(std::uint32_t generation) {
  if (generation == kZeroes) return "zeroes";
  return fmt::format("generation {}", generation);
}

// What a block that failed verification holds, in words: enough to tell a stale write from a misdirected one.
std::string DescribeFound(const std::byte* data, std::uint32_t bytes, std::uint64_t first_sector) {
  if (IsZero(data, bytes)) return "zeroes";
  SectorHeader header;
  std::memcpy(&header, data, sizeof header);
  if (header.magic != kMagic) return "bytes this workload never wrote";
  std::string found = fmt::format("generation {} of head #{} for sector {}", header.generation, header.head,
                                  header.sector);
  if (header.sector == first_sector && !BlockHolds(data, bytes, first_sector, header.head, header.generation)) {
    found += " (torn or corrupted)";
  }
  return found;
}

std::string_view OpName(IoOp op) {
  switch (op) {
    case IoOp::kRead: return "read";
    case IoOp::kWrite: return "write";
    case IoOp::kFlush: return "flush";
    case IoOp::kDiscard: return "trim";
    default: return "I/O";
  }
}

template <typename T>
void Bump(std::atomic<T>& counter, T by = 1) {  // single writer: no locked instruction needed
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

}  // namespace

// Threading: Start, Stop, Quiesce, Stats and Errors from any thread but the I/O loops; everything else runs on the
// I/O loop of the head it concerns.
class Workload::Impl {
 public:
  struct HeadRun;
  struct LoopRun;

  enum class Step : std::uint8_t { kCheck, kWrite, kRead, kTrim, kReadTrimmed, kFlush };

  // One I/O at a time over its own blocks. A round on a block reads what the block held since the slot's last round
  // on it (so that data is checked long after it was written, across whatever faults came in between), writes a new
  // generation, reads it back, and now and then trims the block and reads zeroes, or flushes.
  struct Slot {
    HeadRun* head = nullptr;
    std::byte* buffer = nullptr;
    std::uint64_t first_block = 0;  // its blocks are [first_block, first_block + blocks_per_slot)
    std::uint64_t block = 0;        // the current one
    std::uint64_t rounds = 0;       // blocks begun
    Step step = Step::kCheck;
    std::uint32_t generation = 0;   // of the write in flight
    Slot* next_ready = nullptr;     // LoopRun's ready list
  };

  // Threading: everything not atomic or named as guarded is touched only on the head's loop thread.
  struct HeadRun {
    // Constant after Create.
    Impl* impl = nullptr;
    LoopRun* loop = nullptr;
    std::shared_ptr<Head> head;
    std::uint32_t index = 0;
    std::string name, alias, identity, protocol;
    std::vector<Slot> slots;
    std::unique_ptr<std::byte[]> buffers;

    // Loop thread only.
    std::shared_ptr<HeadChannel> channel;
    std::vector<Expectation> expect;  // per block of the working set
    std::uint32_t next_generation = 1;
    bool trims = true;                // false once the head said it cannot discard
    std::size_t active = 0;           // slots with I/O in flight, ready, or waiting out a backoff
    std::size_t in_flight = 0;
    TimePoint last_progress{};        // last completion, or when I/O became outstanding after none was
    std::int64_t second = 0;          // the second since Start being counted
    std::uint64_t second_ios = 0;
    bool drained = false;

    // Written on the loop thread, read from any.
    std::atomic<std::uint64_t> ios{0}, verified_bytes{0}, errors{0}, data_errors{0}, failovers_at_start{0};
    std::atomic<std::int64_t> max_pause_ns{0}, last_progress_ns{0}, outstanding{0};
    // Guarded by impl->mu_.
    std::vector<std::uint64_t> ios_per_second;
  };

  // The heads one I/O loop drives, and the requests they use.
  // Threading: loop thread only, but for construction.
  struct LoopRun {
    LoopRun(EventLoop& l, std::size_t requests, std::size_t context) : loop(l), pool(requests, context) {}
    EventLoop& loop;
    IoRequestPool pool;
    std::vector<HeadRun*> heads;
    Slot* ready_first = nullptr;
    Slot* ready_last = nullptr;
    bool pumping = false;
    bool continuation_posted = false;
    bool stopping = false;
  };

  explicit Impl(WorkloadOptions options) : options_(options) {}

  // --- Any thread.
  void Start();
  Result<void> Stop(Nanos timeout);
  bool Quiesce();
  std::vector<HeadStats> Stats() const;
  std::vector<SurfacedError> Errors() const;

  const WorkloadOptions options_;
  const Clock* clock_ = nullptr;  // the I/O loops' clock
  std::vector<std::unique_ptr<HeadRun>> heads_;
  std::vector<std::unique_ptr<LoopRun>> loops_;

 private:
  // --- Loop thread.
  void Begin(LoopRun& loop);
  void Kick(Slot& slot);
  void Pump(LoopRun& loop);
  void Issue(Slot& slot);
  static void OnDone(IoRequest& io, void* slot);
  void Completed(Slot& slot, IoRequest& io);
  void Verify(Slot& slot, Expectation& expected);
  // The slot's next step: check, write, read back, maybe trim and read zeroes, maybe flush, then the next block.
  void Advance(Slot& slot);
  void Idle(Slot& slot);
  void CountSeconds(HeadRun& head, TimePoint now, bool completion);
  void Drain(HeadRun& head);
  void Record(HeadRun& head, TimePoint now, Errc code, std::string context);

  [[nodiscard]] std::uint64_t Offset(const Slot& slot) const { return slot.block * options_.io_bytes; }

  mutable std::mutex mu_;
  std::condition_variable drained_cv_;
  // Guarded by mu_.
  bool started_ = false;
  bool stop_posted_ = false;
  std::size_t drained_ = 0;
  std::vector<SurfacedError> errors_;
  TimePoint start_{};  // written once under mu_ before any loop work is posted; read freely after
};

void Workload::Impl::Start() {
  {
    std::lock_guard lock(mu_);
    if (started_) return;
    started_ = true;
    start_ = clock_->Now();
  }
  for (auto& head : heads_) {
    head->failovers_at_start.store(head->head->Counters().failovers, std::memory_order_relaxed);
  }
  for (auto& loop : loops_) {
    LoopRun* l = loop.get();
    l->loop.Post([this, l] { Begin(*l); });
  }
}

void Workload::Impl::Begin(LoopRun& loop) {
  const TimePoint now = clock_->Now();
  for (HeadRun* head : loop.heads) {
    head->channel = head->head->OpenChannel(loop.loop);
    head->last_progress = now;
    head->active = head->slots.size();
  }
  for (HeadRun* head : loop.heads) {
    for (Slot& slot : head->slots) Kick(slot);
  }
}

void Workload::Impl::Kick(Slot& slot) {
  LoopRun& loop = *slot.head->loop;
  slot.next_ready = nullptr;
  if (loop.ready_last != nullptr) {
    loop.ready_last->next_ready = &slot;
  } else {
    loop.ready_first = &slot;
  }
  loop.ready_last = &slot;
  if (!loop.pumping && !loop.continuation_posted) Pump(loop);
}

void Workload::Impl::Pump(LoopRun& loop) {
  loop.pumping = true;
  for (std::size_t issued = 0; loop.ready_first != nullptr; ++issued) {
    if (issued == kIssuesPerTurn) {
      loop.continuation_posted = true;
      loop.loop.Post([this, l = &loop] {
        l->continuation_posted = false;
        Pump(*l);
      });
      break;
    }
    Slot* slot = loop.ready_first;
    loop.ready_first = slot->next_ready;
    if (loop.ready_first == nullptr) loop.ready_last = nullptr;
    Issue(*slot);
  }
  loop.pumping = false;
}

void Workload::Impl::Issue(Slot& slot) {
  HeadRun& head = *slot.head;
  if (head.loop->stopping) {
    Idle(slot);
    return;
  }
  // Nothing to check on a block this workload has not written yet.
  if (slot.step == Step::kCheck && head.expect[slot.block].now == kUnknown) slot.step = Step::kWrite;
  IoRequest* io = head.loop->pool.Acquire();
  assert(io != nullptr && "the pool holds one request per slot");
  io->fua = false;
  io->offset = Offset(slot);
  io->length = options_.io_bytes;
  io->data = slot.buffer;
  switch (slot.step) {
    case Step::kWrite:
      if (head.next_generation > kLastGeneration) head.next_generation = 1;
      slot.generation = head.next_generation++;
      io->op = IoOp::kWrite;
      FillBlock(slot.buffer, options_.io_bytes, io->offset / kSector, head.index, slot.generation);
      break;
    case Step::kCheck:
    case Step::kRead:
    case Step::kReadTrimmed:
      io->op = IoOp::kRead;
      // Whatever the read leaves unfilled must not pass for data.
      std::memset(slot.buffer, 0xA5, options_.io_bytes);
      break;
    case Step::kTrim:
      io->op = IoOp::kDiscard;
      io->data = nullptr;
      break;
    case Step::kFlush:
    default:
      io->op = IoOp::kFlush;
      io->offset = 0;
      io->length = 0;
      io->data = nullptr;
      break;
  }
  if (head.in_flight++ == 0) {
    head.last_progress = clock_->Now();
    head.last_progress_ns.store((head.last_progress - start_).count(), std::memory_order_relaxed);
  }
  Bump(head.outstanding);
  io->OnComplete(&Impl::OnDone, &slot);
  head.channel->Submit(*io);
}

void Workload::Impl::OnDone(IoRequest& io, void* slot) {
  auto& s = *static_cast<Slot*>(slot);
  s.head->impl->Completed(s, io);
}

void Workload::Impl::Completed(Slot& slot, IoRequest& io) {
  HeadRun& head = *slot.head;
  const TimePoint now = clock_->Now();
  const std::int64_t gap = (now - head.last_progress).count();
  if (gap > head.max_pause_ns.load(std::memory_order_relaxed)) head.max_pause_ns.store(gap, std::memory_order_relaxed);
  head.last_progress = now;
  head.last_progress_ns.store((now - start_).count(), std::memory_order_relaxed);
  --head.in_flight;
  Bump(head.outstanding, std::int64_t{-1});
  Bump(head.ios);
  CountSeconds(head, now, true);

  const IoStatus status = io.status;
  const IoOp op = io.op;
  const std::uint64_t offset = io.offset;
  head.loop->pool.Release(&io);
  Expectation& expected = head.expect[slot.block];

  if (!status.ok() && slot.step == Step::kTrim && status.code == Errc::kUnsupported) {
    // Trimming is optional: a head that cannot discard is not failing, it just is not trimmed any more.
    if (head.trims) {
      head.trims = false;
      Record(head, now, status.code, fmt::format("trim: {} (trimming stops on this head)", status.context));
    }
    slot.step = Step::kReadTrimmed;  // as if the trim and its read were done: on to the flush or the next block
    Advance(slot);
    Kick(slot);
    return;
  }
  if (!status.ok()) {
    Bump(head.errors);
    Record(head, now, status.code,
           op == IoOp::kFlush ? fmt::format("flush: {}", status.context)
                              : fmt::format("{} of {} bytes at byte {}: {}", OpName(op), options_.io_bytes, offset,
                                            status.context));
    if (slot.step == Step::kWrite || slot.step == Step::kTrim) {
      // The device may or may not have executed it; the read that follows accepts either outcome.
      const std::uint32_t attempted = slot.step == Step::kWrite ? slot.generation : kZeroes;
      if (expected.alternative != kNoAlternative) {
        expected = {};  // a third possibility: stop checking this block until it is written again
      } else if (expected.now != kUnknown) {
        expected.alternative = attempted;
      }
    }
    Advance(slot);
    if (head.loop->stopping) {
      Idle(slot);
      return;
    }
    head.loop->loop.ScheduleAfter(kErrorBackoff, [this, s = &slot] { Kick(*s); });
    return;
  }

  switch (slot.step) {
    case Step::kWrite:
      expected = {slot.generation, kNoAlternative};
      break;
    case Step::kTrim:
      expected = {kZeroes, kNoAlternative};
      break;
    case Step::kCheck:
    case Step::kRead:
    case Step::kReadTrimmed:
      Verify(slot, expected);
      break;
    case Step::kFlush:
    default:
      break;
  }
  Advance(slot);
  Kick(slot);
}

void Workload::Impl::Verify(Slot& slot, Expectation& expected) {
  HeadRun& head = *slot.head;
  if (expected.now == kUnknown) return;
  const std::uint64_t first_sector = Offset(slot) / kSector;
  const std::uint32_t bytes = options_.io_bytes;
  bool good = BlockHolds(slot.buffer, bytes, first_sector, head.index, expected.now);
  if (!good && expected.alternative != kNoAlternative &&
      BlockHolds(slot.buffer, bytes, first_sector, head.index, expected.alternative)) {
    expected.now = expected.alternative;
    good = true;
  }
  if (good) {
    expected.alternative = kNoAlternative;  // the read settled which outcome the device kept
    Bump(head.verified_bytes, std::uint64_t{bytes});
    return;
  }
  Bump(head.data_errors);
  std::string wanted = DescribeExpected(expected.now);
  if (expected.alternative != kNoAlternative) wanted += " or " + DescribeExpected(expected.alternative);
  Record(head, clock_->Now(), Errc::kMismatch,
         fmt::format("data error: read of {} bytes at byte {} returned {}, expected {}", bytes, Offset(slot),
                     DescribeFound(slot.buffer, bytes, first_sector), wanted));
}

void Workload::Impl::Advance(Slot& slot) {
  const bool trim_due =
      options_.trim_every != 0 && slot.head->trims && (slot.rounds + 1) % options_.trim_every == 0;
  const bool flush_due = options_.flush_every != 0 && (slot.rounds + 1) % options_.flush_every == 0;
  switch (slot.step) {
    case Step::kCheck:
      slot.step = Step::kWrite;
      return;
    case Step::kWrite:
      slot.step = Step::kRead;
      return;
    case Step::kRead:
      if (trim_due) {
        slot.step = Step::kTrim;
        return;
      }
      [[fallthrough]];
    case Step::kReadTrimmed:
      if (flush_due) {
        slot.step = Step::kFlush;
        return;
      }
      break;
    case Step::kTrim:
      slot.step = Step::kReadTrimmed;
      return;
    case Step::kFlush:
    default:
      break;
  }
  ++slot.rounds;
  slot.block = slot.first_block + slot.rounds % options_.blocks_per_slot;
  slot.step = Step::kCheck;
}

void Workload::Impl::Idle(Slot& slot) {
  HeadRun& head = *slot.head;
  if (--head.active == 0 && head.loop->stopping) Drain(head);
}

void Workload::Impl::CountSeconds(HeadRun& head, TimePoint now, bool completion) {
  const std::int64_t second = (now - start_) / 1s;
  if (second > head.second) {
    std::lock_guard lock(mu_);
    head.ios_per_second.push_back(head.second_ios);
    head.ios_per_second.resize(head.ios_per_second.size() + static_cast<std::size_t>(second - head.second - 1), 0);
    head.second = second;
    head.second_ios = 0;
  }
  if (completion) ++head.second_ios;
}

void Workload::Impl::Drain(HeadRun& head) {
  if (head.drained) return;
  head.drained = true;
  head.channel->Close();
  head.channel.reset();
  CountSeconds(head, clock_->Now(), false);
  // Told from a task of its own: the caller is still inside this loop's pump, and once the last head is counted
  // drained the workload may be destroyed.
  head.loop->loop.Post([this] {
    std::lock_guard lock(mu_);
    ++drained_;
    drained_cv_.notify_all();
  });
}

void Workload::Impl::Record(HeadRun& head, TimePoint now, Errc code, std::string context) {
  std::lock_guard lock(mu_);
  if (errors_.size() >= kErrorsKept) return;
  errors_.push_back({now - start_, head.name, code, std::move(context)});
}

Result<void> Workload::Impl::Stop(Nanos timeout) {
  std::unique_lock lock(mu_);
  if (!started_) return {};
  if (!stop_posted_) {
    stop_posted_ = true;
    for (auto& loop : loops_) {
      LoopRun* l = loop.get();
      l->loop.Post([this, l] {
        l->stopping = true;
        for (HeadRun* head : l->heads) {
          if (head->active == 0) Drain(*head);
        }
      });
    }
  }
  if (drained_cv_.wait_for(lock, timeout, [&] { return drained_ == heads_.size(); })) return {};
  std::string holding;
  for (const auto& head : heads_) {
    const auto outstanding = head->outstanding.load(std::memory_order_relaxed);
    if (outstanding > 0) holding += fmt::format("{}{} ({} I/Os)", holding.empty() ? "" : ", ", head->name, outstanding);
  }
  if (holding.empty()) holding = "a head waiting out an error backoff";
  return MakeError(Errc::kTimedOut,
                   fmt::format("workload: I/O still outstanding {} after stopping: {}",
                               fmt::format("{:.1f} s", std::chrono::duration<double>(timeout).count()), holding));
}

// Stops and drains; when I/O is still held after the first wait (queued for a path that does not come), aborts what
// the channels queue and waits again. Returns false when I/O is still outstanding even then.
bool Workload::Impl::Quiesce() {
  if (Stop(60s)) return true;
  for (auto& loop : loops_) {
    LoopRun* l = loop.get();
    l->loop.Post([l] {
      for (HeadRun* head : l->heads) {
        if (head->channel) head->channel->Close();
      }
    });
  }
  return Stop(60s).has_value();
}

std::vector<HeadStats> Workload::Impl::Stats() const {
  TimePoint start;
  bool started;
  {
    std::lock_guard lock(mu_);
    start = start_;
    started = started_;
  }
  const TimePoint now = clock_->Now();
  std::vector<HeadStats> out;
  out.reserve(heads_.size());
  for (const auto& head : heads_) {
    HeadStats s;
    s.name = head->name;
    s.alias = head->alias;
    s.identity = head->identity;
    s.protocol = head->protocol;
    s.ios = head->ios.load(std::memory_order_relaxed);
    s.verified_bytes = head->verified_bytes.load(std::memory_order_relaxed);
    s.errors_surfaced = head->errors.load(std::memory_order_relaxed);
    s.data_errors = head->data_errors.load(std::memory_order_relaxed);
    if (started) {
      const std::uint64_t failovers = head->head->Counters().failovers;
      const std::uint64_t at_start = head->failovers_at_start.load(std::memory_order_relaxed);
      s.failovers = failovers > at_start ? failovers - at_start : 0;
    }
    // A pause still going on counts too, so that a live view shows a stall while it lasts.
    Nanos pause(head->max_pause_ns.load(std::memory_order_relaxed));
    if (started && head->outstanding.load(std::memory_order_relaxed) > 0) {
      pause = std::max(pause, now - (start + Nanos(head->last_progress_ns.load(std::memory_order_relaxed))));
    }
    s.max_pause = pause;
    {
      std::lock_guard lock(mu_);
      s.ios_per_second = head->ios_per_second;
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<SurfacedError> Workload::Impl::Errors() const {
  std::lock_guard lock(mu_);
  return errors_;
}

Result<std::unique_ptr<Workload>> Workload::Create(Fabric& fabric, std::vector<std::shared_ptr<Head>> heads,
                                                   WorkloadOptions options) {
  if (heads.empty()) return MakeError(Errc::kInvalidArgument, "workload: no heads to run on");
  if (options.slots_per_head == 0 || options.slots_per_head > kMaxSlotsPerHead) {
    return MakeError(Errc::kInvalidArgument, fmt::format("workload: slots_per_head must be 1..{} (got {})",
                                                         kMaxSlotsPerHead, options.slots_per_head));
  }
  if (options.io_bytes == 0 || options.io_bytes % kSector != 0 || options.io_bytes > kMaxIoBytes) {
    return MakeError(Errc::kInvalidArgument,
                     fmt::format("workload: io_bytes must be a multiple of 512 up to {} (got {})", kMaxIoBytes,
                                 options.io_bytes));
  }
  if (options.blocks_per_slot == 0) return MakeError(Errc::kInvalidArgument, "workload: blocks_per_slot must be >= 1");
  if (fabric.io_threads() == 0) return MakeError(Errc::kInvalidArgument, "workload: the fabric has no I/O loop");

  const std::uint64_t blocks = options.slots_per_head * options.blocks_per_slot;
  std::size_t context = kMinDriverContextBytes;
  for (const auto& head : heads) {
    if (!head) return MakeError(Errc::kInvalidArgument, "workload: a head is missing (null)");
    if (options.io_bytes % head->block_size() != 0) {
      return MakeError(Errc::kInvalidArgument,
                       fmt::format("workload: io_bytes {} is not a multiple of the block size {} of {}",
                                   options.io_bytes, head->block_size(), head->name()));
    }
    if (blocks > head->capacity_bytes() / options.io_bytes) {
      return MakeError(Errc::kOutOfRange,
                       fmt::format("workload: the working set ({} slots x {} blocks of {} bytes) does not fit in {} "
                                   "({} bytes)",
                                   options.slots_per_head, options.blocks_per_slot, options.io_bytes, head->name(),
                                   head->capacity_bytes()));
    }
    context = std::max(context, head->options().request_context_size);
  }

  auto impl = std::make_unique<Impl>(options);
  impl->clock_ = &fabric.io_loop(0).clock();
  const std::size_t loops = std::min(fabric.io_threads(), heads.size());
  std::vector<std::size_t> heads_on_loop(loops, 0);
  for (std::size_t i = 0; i < heads.size(); ++i) ++heads_on_loop[i % loops];
  for (std::size_t l = 0; l < loops; ++l) {
    impl->loops_.push_back(std::make_unique<Impl::LoopRun>(fabric.io_loop(l),
                                                           heads_on_loop[l] * options.slots_per_head, context));
  }
  for (std::size_t i = 0; i < heads.size(); ++i) {
    auto run = std::make_unique<Impl::HeadRun>();
    run->impl = impl.get();
    run->loop = impl->loops_[i % loops].get();
    run->head = heads[i];
    run->index = static_cast<std::uint32_t>(i);
    run->name = heads[i]->name();
    run->identity = heads[i]->identity().str();
    run->protocol = std::string(heads[i]->personality().protocol());
    if (auto view = fabric.FindHeadView(run->identity)) run->alias = view->alias;
    run->expect.resize(blocks);
    run->buffers = std::make_unique<std::byte[]>(options.slots_per_head * options.io_bytes);
    run->slots.resize(options.slots_per_head);
    for (std::size_t s = 0; s < options.slots_per_head; ++s) {
      Impl::Slot& slot = run->slots[s];
      slot.head = run.get();
      slot.buffer = run->buffers.get() + s * options.io_bytes;
      slot.first_block = s * options.blocks_per_slot;
      slot.block = slot.first_block;
    }
    run->ios_per_second.reserve(3600);
    run->loop->heads.push_back(run.get());
    impl->heads_.push_back(std::move(run));
  }
  return std::unique_ptr<Workload>(new Workload(std::move(impl)));
}

Workload::Workload(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Workload::~Workload() {
  // I/O still outstanding points into the slots: rather than free memory a completion would write, leak it.
  if (!impl_->Quiesce()) (void)impl_.release();
}

void Workload::Start() { impl_->Start(); }
Result<void> Workload::Stop(Nanos timeout) { return impl_->Stop(timeout); }
std::vector<HeadStats> Workload::Stats() const { return impl_->Stats(); }
std::vector<SurfacedError> Workload::Errors() const { return impl_->Errors(); }

}  // namespace mpath::daemon
