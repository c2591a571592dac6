// One NBD client connection from accept to close, and the state the server shares with its connections. Private to
// mpath_nbd: NbdServer (server.cc) creates connections and Stop() ends them.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "mpath/core/executor.h"
#include "mpath/core/head.h"
#include "mpath/core/head_channel.h"
#include "mpath/core/io_request.h"
#include "mpath/nbd/export.h"
#include "mpath/nbd/negotiation.h"
#include "mpath/nbd/request.h"
#include "mpath/nbd/server.h"
#include "mpath/nbd/spec.h"
#include "mpath/runtime/event_loop.h"

namespace mpath::nbd::internal {

// What every connection of one server reads and counts.
// Threading: the counters are atomics, safe from any thread; `open` changes under `mu` so that Stop() can wait on
// `all_closed` without missing the last close.
struct ServerContext {
  ServerContext(const ExportCatalog& catalog, NbdServerOptions options)
      : catalog(catalog), options(std::move(options)) {}

  // A connection calls this as the very last thing it does; the server may be destroyed as soon as it returns.
  void ConnectionGone() {
    std::lock_guard lock(mu);
    open.fetch_sub(1, std::memory_order_relaxed);
    all_closed.notify_all();
  }

  // Constant after construction.
  const ExportCatalog& catalog;
  const NbdServerOptions options;

  std::atomic<bool> stopping{false};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> refused{0};
  std::atomic<std::uint64_t> open{0};  // decremented under mu
  std::atomic<std::uint64_t> handshakes_failed{0};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> request_errors{0};
  std::atomic<std::uint64_t> violations{0};

  std::mutex mu;
  std::condition_variable all_closed;
};

class Connection;

// The connections living on one I/O loop, so that Stop() can reach them without a lock.
// Threading: `loop` is constant; the list is touched only on that loop's thread.
struct LoopShard {
  explicit LoopShard(EventLoop& loop) : loop(loop) {}
  EventLoop& loop;
  Connection* first = nullptr;  // intrusive, through Connection::shard_prev_/shard_next_
};

// Threading: created on the accept loop, then confined to its shard's loop from Adopt() on. It deletes itself (by a
// task posted to its loop) once it is closed and the head has returned every request it was given.
class Connection {
 public:
  // Takes ownership of `fd`, a connected non-blocking socket.
  Connection(ServerContext& server, LoopShard& shard, int fd);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // On the shard's loop: registers the connection there, watches its socket and sends the greeting.
  static void Adopt(std::unique_ptr<Connection> connection);

  // On the shard's loop, from NbdServer::Stop: stop reading, fail what the head still queues with NBD_ESHUTDOWN,
  // wait for what is in flight, send what can be sent, close.
  void Shutdown();
  // On the shard's loop: Shutdown() for every connection living there.
  static void ShutdownAll(LoopShard& shard);

  // Receive buffer size: large enough for any option the negotiation buffers, and for many pipelined requests.
  static constexpr std::size_t kReceiveBufferBytes = 256 * 1024;

 private:
  enum class Phase : std::uint8_t {
    kHandshake,     // negotiating
    kTransmission,  // serving requests
    kDraining,      // reading no more (NBD_CMD_DISC, a refused handshake, Stop): finishing in-flight I/O, flushing
    kAborted,       // socket closed: waiting only for the head to return what it holds
    kDone,          // destruction posted
  };
  // Where the next received bytes go during transmission.
  enum class Receiving : std::uint8_t { kHeader, kPayload, kDiscard };

  // One request in progress: everything it needs from header to reply, preallocated per connection.
  struct Slot {
    Connection* connection = nullptr;
    IoRequest* io = nullptr;
    Slot* next = nullptr;  // free list or reply queue
    std::uint64_t cookie = 0;
    std::uint64_t offset = 0;
    std::uint32_t length = 0;
    std::uint32_t held_bytes = 0;  // counted against max_bytes_in_flight until the slot is free again
    spec::Command command = spec::Command::kRead;
    bool reply_carries_data = false;  // a successful read: `length` bytes of `data` follow the reply header
    std::uint32_t reply_size = 0;     // bytes of `reply` in use
    // A request larger than the head takes in one command goes down in pieces, one after another.
    std::uint32_t piece_done = 0;     // bytes of the request finished by earlier pieces
    bool submitting = false;          // inside HeadChannel::Submit for this slot
    bool next_piece_due = false;      // a piece completed inside Submit and another must follow
    std::unique_ptr<std::byte[]> data;
    std::uint32_t capacity = 0;       // bytes of `data`; only grows
    std::byte reply[kMaxErrorChunk];  // the encoded reply header (or whole error chunk)
  };

  // Runs Settle() when the outermost entry into the connection returns, so that work done by nested callbacks (a
  // head completing inside Submit) is flushed once, from one place.
  class Entry {
   public:
    explicit Entry(Connection& c) : c_(c) { ++c_.depth_; }
    ~Entry() {
      if (--c_.depth_ == 0) c_.Settle();
    }
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;

   private:
    Connection& c_;
  };

  void Begin();
  void OnSocketEvents(std::uint32_t events);
  void OnHandshakeTimeout();
  static void OnIoDone(IoRequest& io, void* slot);
  void Completed(Slot& slot);

  void ReadSocket();
  void ConsumeBuffered();
  bool ConsumeHandshake();
  void EnterTransmission();
  void HandleRequest(const spec::RequestHeader& header);
  void ReceivePayload(std::size_t bytes);
  void Submit(Slot& slot);
  void SubmitPieces(Slot& slot);
  void PieceDone(Slot& slot);
  // `data_ready`: the head filled the slot's buffer (a completed read).
  void EncodeReply(Slot& slot, spec::Errno error, std::string_view message, bool data_ready);
  void QueueReply(Slot& slot);
  // Sends what is queued until done or the socket is full; returns whether a slot was freed.
  bool Flush();
  void Settle();
  void UpdateInterest();
  void MaybeFinish();
  void Abort(bool violation);
  // Stops the handshake timer and the watch, then closes the socket.
  void CloseSocket();
  void FailHandshake();
  void Finish();
  void Destroy();

  Slot* TakeSlot();
  void FreeSlot(Slot& slot);
  [[nodiscard]] bool WantsInput() const;
  [[nodiscard]] bool HasOutput() const { return handshake_sent_ < handshake_out_.size() || reply_first_ != nullptr; }
  [[nodiscard]] std::size_t Buffered() const { return rx_end_ - rx_start_; }
  [[nodiscard]] std::size_t ReplyBytes(const Slot& slot) const {
    return slot.reply_size + (slot.reply_carries_data ? slot.length : 0);
  }

  // Constant after construction.
  ServerContext& server_;
  LoopShard& shard_;
  EventLoop& loop_;

  // Loop-confined state.
  int fd_;
  WatchId watch_ = 0;
  std::uint32_t watched_events_ = 0;
  TimerId handshake_timer_ = 0;
  Phase phase_ = Phase::kHandshake;
  int depth_ = 0;
  bool handshake_counted_ = false;   // handshakes_failed already counts this connection
  bool shutting_down_ = false;       // Stop() reached it
  bool closing_channel_ = false;     // inside HeadChannel::Close: what completes now fails with NBD_ESHUTDOWN
  Connection* shard_prev_ = nullptr;
  Connection* shard_next_ = nullptr;

  std::optional<Negotiation> negotiation_;
  std::vector<std::byte> handshake_out_;
  std::size_t handshake_sent_ = 0;

  std::unique_ptr<std::byte[]> rx_;  // kReceiveBufferBytes
  std::size_t rx_start_ = 0;
  std::size_t rx_end_ = 0;
  Receiving receiving_ = Receiving::kHeader;
  Slot* payload_slot_ = nullptr;     // kPayload: the write whose data is arriving
  std::size_t payload_done_ = 0;
  std::uint64_t discard_left_ = 0;   // kDiscard: bytes of a refused write still to drop

  ExportInfo info_;
  IoLimits limits_;                  // the head's; read again when it refuses a piece as too large
  bool structured_ = false;
  std::shared_ptr<Head> head_;
  std::unique_ptr<IoRequestPool> pool_;
  std::unique_ptr<Slot[]> slots_;
  std::shared_ptr<HeadChannel> channel_;  // declared after the pool: closed before the requests go
  Slot* free_first_ = nullptr;
  std::size_t held_bytes_ = 0;
  std::size_t in_head_ = 0;          // submitted, not yet completed
  Slot* reply_first_ = nullptr;
  Slot* reply_last_ = nullptr;
  std::size_t front_sent_ = 0;       // bytes of reply_first_ already sent
};

}  // namespace mpath::nbd::internal
