#include "connection.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace mpath::nbd::internal {
namespace {

// Reads per readiness event before the loop gets to serve its other sockets.
constexpr std::size_t kMaxReadsPerEvent = 16;
// Iovecs per sendmsg: two per reply (header, then a read's data), so up to 32 replies leave in one system call.
constexpr std::size_t kMaxIovecs = 64;
// The smallest data buffer a slot grows to, so that a client doing small I/O of varying sizes settles at once.
constexpr std::uint32_t kMinDataBuffer = 4096;

bool WouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

template <typename T>
std::uint32_t Store(const T& value, std::byte* out) {
  std::memcpy(out, &value, sizeof(T));
  return sizeof(T);
}

}  // namespace

Connection::Connection(ServerContext& server, LoopShard& shard, int fd)
    : server_(server), shard_(shard), loop_(shard.loop), fd_(fd) {}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

void Connection::Adopt(std::unique_ptr<Connection> connection) {
  // From here on the connection owns itself: Destroy() deletes it once it is closed and the head has given back
  // every request.
  Connection* c = connection.release();
  c->shard_next_ = c->shard_.first;
  if (c->shard_next_ != nullptr) c->shard_next_->shard_prev_ = c;
  c->shard_.first = c;
  c->Begin();
}

void Connection::ShutdownAll(LoopShard& shard) {
  // Shutdown never deletes synchronously (Destroy is posted), so the list stays intact while it is walked.
  for (Connection* c = shard.first; c != nullptr; c = c->shard_next_) c->Shutdown();
}

void Connection::Begin() {
  Entry entry(*this);
  if (server_.stopping.load(std::memory_order_acquire)) {
    Abort(/*violation=*/false);
    return;
  }
  rx_ = std::make_unique_for_overwrite<std::byte[]>(kReceiveBufferBytes);
  auto watch = loop_.Watch(fd_, EPOLLIN, [this](std::uint32_t events) { OnSocketEvents(events); });
  if (!watch) {
    FailHandshake();
    Abort(/*violation=*/false);
    return;
  }
  watch_ = *watch;
  watched_events_ = EPOLLIN;
  negotiation_.emplace(server_.catalog, server_.options.negotiation);
  negotiation_->Start(handshake_out_);
  handshake_timer_ = loop_.ScheduleAfter(server_.options.handshake_timeout, [this] { OnHandshakeTimeout(); });
}

void Connection::Shutdown() {
  Entry entry(*this);
  shutting_down_ = true;
  switch (phase_) {
    case Phase::kHandshake:
      Abort(/*violation=*/false);
      break;
    case Phase::kTransmission:
      phase_ = Phase::kDraining;
      // A write whose data is still arriving was never submitted: nothing to answer.
      if (payload_slot_ != nullptr) {
        FreeSlot(*payload_slot_);
        payload_slot_ = nullptr;
      }
      [[fallthrough]];
    case Phase::kDraining:
      // NBD protocol "Terminating the transmission phase": on shutdown, requests not yet serviced fail with
      // NBD_ESHUTDOWN. What the head still queues (waiting for a path) completes inside Close.
      if (channel_ != nullptr) {
        closing_channel_ = true;
        channel_->Close();
        closing_channel_ = false;
      }
      break;
    case Phase::kAborted:
    case Phase::kDone:
    default:
      break;
  }
}

void Connection::OnSocketEvents(std::uint32_t events) {
  Entry entry(*this);
  if (phase_ == Phase::kAborted || phase_ == Phase::kDone) return;
  if ((events & EPOLLIN) != 0) ReadSocket();
  if (phase_ == Phase::kAborted || phase_ == Phase::kDone) return;
  // Without EPOLLIN (not reading: backpressure, draining) a hang-up or error is all there is to learn: the peer is
  // gone, and level-triggered reporting would otherwise spin the loop.
  if ((events & (EPOLLERR | EPOLLHUP)) != 0 && (events & EPOLLIN) == 0) {
    if (phase_ == Phase::kHandshake) FailHandshake();
    Abort(/*violation=*/false);
  }
  // EPOLLOUT needs nothing here: Settle() flushes when the entry ends.
}

void Connection::OnHandshakeTimeout() {
  Entry entry(*this);
  handshake_timer_ = 0;
  if (phase_ != Phase::kHandshake && phase_ != Phase::kDraining) return;
  FailHandshake();
  Abort(/*violation=*/false);
}

void Connection::ReadSocket() {
  for (std::size_t reads = 0; reads < kMaxReadsPerEvent && WantsInput(); ++reads) {
    // Replies to what the last read brought leave before the next read: the client refills its queue while this
    // loop goes on reading, where holding them to the end of the event left both sides waiting in turn.
    if (reads > 0 && reply_first_ != nullptr) {
      Flush();
      if (phase_ == Phase::kAborted || phase_ == Phase::kDone) return;
    }
    ssize_t n;
    if (phase_ == Phase::kTransmission && receiving_ == Receiving::kPayload && Buffered() == 0) {
      // The rest of a write's data goes straight into its slot: large payloads are not copied twice.
      Slot& slot = *payload_slot_;
      n = ::recv(fd_, slot.data.get() + payload_done_, slot.length - payload_done_, 0);
      if (n > 0) {
        ReceivePayload(static_cast<std::size_t>(n));
        continue;
      }
    } else {
      if (rx_start_ > 0) {
        std::memmove(rx_.get(), rx_.get() + rx_start_, Buffered());
        rx_end_ -= rx_start_;
        rx_start_ = 0;
      }
      if (rx_end_ == kReceiveBufferBytes) {
        // A whole buffer that nothing can consume: only a handshake message can be that long, and the negotiation
        // limits keep honest ones far smaller.
        FailHandshake();
        Abort(/*violation=*/false);
        return;
      }
      n = ::recv(fd_, rx_.get() + rx_end_, kReceiveBufferBytes - rx_end_, 0);
      if (n > 0) {
        rx_end_ += static_cast<std::size_t>(n);
        ConsumeBuffered();
        continue;
      }
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && WouldBlock(errno)) return;
    // End of stream or a socket error: the client is gone.
    if (phase_ == Phase::kHandshake) FailHandshake();
    Abort(/*violation=*/false);
    return;
  }
}

void Connection::ConsumeBuffered() {
  for (;;) {
    if (phase_ == Phase::kHandshake) {
      if (!ConsumeHandshake()) return;
      continue;
    }
    if (phase_ != Phase::kTransmission) return;
    switch (receiving_) {
      case Receiving::kHeader: {
        if (Buffered() < sizeof(spec::RequestHeader)) return;
        // Backpressure: the header waits in the buffer until a slot (and byte budget) frees up.
        if (free_first_ == nullptr || held_bytes_ >= server_.options.max_bytes_in_flight) return;
        spec::RequestHeader header;
        std::memcpy(&header, rx_.get() + rx_start_, sizeof(header));
        rx_start_ += sizeof(header);
        HandleRequest(header);
        break;
      }
      case Receiving::kPayload: {
        if (Buffered() == 0) return;
        Slot& slot = *payload_slot_;
        const std::size_t n = std::min<std::size_t>(Buffered(), slot.length - payload_done_);
        std::memcpy(slot.data.get() + payload_done_, rx_.get() + rx_start_, n);
        rx_start_ += n;
        ReceivePayload(n);
        break;
      }
      case Receiving::kDiscard:
      default: {
        if (Buffered() == 0) return;
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(Buffered(), discard_left_));
        rx_start_ += n;
        discard_left_ -= n;
        if (discard_left_ == 0) receiving_ = Receiving::kHeader;
        break;
      }
    }
  }
}

bool Connection::ConsumeHandshake() {
  const std::size_t used =
      negotiation_->Consume(std::span<const std::byte>(rx_.get() + rx_start_, Buffered()), handshake_out_);
  rx_start_ += used;
  switch (negotiation_->state()) {
    case Negotiation::State::kTransmission:
      EnterTransmission();
      return phase_ == Phase::kTransmission;  // the bytes after the final option are requests
    case Negotiation::State::kClosed:
      // Abort or a violation: the negotiation's last replies (e.g. the ACK of NBD_OPT_ABORT) still go out.
      FailHandshake();
      phase_ = Phase::kDraining;
      return false;
    case Negotiation::State::kClientFlags:
    case Negotiation::State::kOptions:
    default:
      return false;  // it consumed every whole message it had
  }
}

void Connection::EnterTransmission() {
  const Negotiated& agreed = negotiation_->negotiated();
  if (agreed.chosen.head == nullptr) {
    // An export without a head (the daemon lost it between listing and choosing): nothing to serve.
    FailHandshake();
    phase_ = Phase::kDraining;
    return;
  }
  if (handshake_timer_ != 0) {
    loop_.Cancel(handshake_timer_);
    handshake_timer_ = 0;
  }
  info_ = agreed.chosen.info;
  head_ = agreed.chosen.head;
  structured_ = agreed.structured_replies;
  negotiation_.reset();

  const std::size_t count = std::max<std::size_t>(1, server_.options.requests_per_connection);
  pool_ = std::make_unique<IoRequestPool>(count, head_->options().request_context_size);
  slots_ = std::make_unique<Slot[]>(count);
  for (std::size_t i = count; i-- > 0;) {
    Slot& slot = slots_[i];
    slot.connection = this;
    slot.io = pool_->Acquire();
    slot.next = free_first_;
    free_first_ = &slot;
  }
  channel_ = head_->OpenChannel(loop_);
  limits_ = head_->limits();
  phase_ = Phase::kTransmission;
  receiving_ = Receiving::kHeader;
}

void Connection::HandleRequest(const spec::RequestHeader& header) {
  const RequestPlan plan = PlanRequest(header, info_, structured_);
  switch (plan.action) {
    case RequestPlan::Action::kHardClose:
      Abort(/*violation=*/true);
      return;
    case RequestPlan::Action::kDisconnect:
      // NBD protocol "Terminating the transmission phase": finish what is outstanding, then close.
      phase_ = Phase::kDraining;
      return;
    case RequestPlan::Action::kSubmit:
    case RequestPlan::Action::kReplyError:
    case RequestPlan::Action::kReplyOk:
    default:
      break;
  }
  server_.requests.fetch_add(1, std::memory_order_relaxed);
  Slot& slot = *TakeSlot();
  slot.cookie = header.cookie.value();
  slot.offset = header.offset.value();
  slot.length = header.length.value();
  slot.command = static_cast<spec::Command>(header.type.value());
  slot.held_bytes = 0;

  if (plan.action == RequestPlan::Action::kSubmit) {
    const bool has_data = plan.op == IoOp::kRead || plan.op == IoOp::kWrite;
    if (has_data) {
      // The planner bounds payloads already; this keeps a planning slip from becoming a huge allocation.
      if (slot.length > std::max(info_.max_payload, spec::kDefaultMaxPayload)) {
        if (plan.op == IoOp::kWrite) {
          FreeSlot(slot);
          Abort(/*violation=*/true);
          return;
        }
        EncodeReply(slot, spec::Errno::kOverflow, "request larger than the maximum payload", false);
        QueueReply(slot);
        return;
      }
      if (slot.capacity < slot.length) {
        // Grows once to the largest request the slot has carried; steady state allocates nothing.
        const std::uint32_t capacity = std::max(slot.length, kMinDataBuffer);
        slot.data = std::make_unique_for_overwrite<std::byte[]>(capacity);
        slot.capacity = capacity;
      }
      slot.held_bytes = slot.length;
      held_bytes_ += slot.length;
    }
    IoRequest& io = *slot.io;
    io.op = plan.op;
    io.fua = plan.fua;
    io.offset = plan.op == IoOp::kFlush ? 0 : slot.offset;
    io.length = plan.op == IoOp::kFlush ? 0 : slot.length;
    io.data = has_data ? slot.data.get() : nullptr;
    if (plan.op == IoOp::kWrite && slot.length > 0) {
      payload_slot_ = &slot;
      payload_done_ = 0;
      receiving_ = Receiving::kPayload;
      return;  // submitted once its data is in
    }
    Submit(slot);
    return;
  }

  // Answered without the head; a refused write's data is still on its way and is dropped as it arrives.
  if (plan.payload_bytes > 0) {
    discard_left_ = plan.payload_bytes;
    receiving_ = Receiving::kDiscard;
  }
  const bool ok = plan.action == RequestPlan::Action::kReplyOk;
  EncodeReply(slot, ok ? spec::Errno::kOk : plan.error, plan.reason, false);
  QueueReply(slot);
}

void Connection::ReceivePayload(std::size_t bytes) {
  payload_done_ += bytes;
  Slot& slot = *payload_slot_;
  if (payload_done_ < slot.length) return;
  payload_slot_ = nullptr;
  receiving_ = Receiving::kHeader;
  Submit(slot);
}

void Connection::Submit(Slot& slot) {
  slot.piece_done = 0;
  slot.io->OnComplete(&Connection::OnIoDone, &slot);
  SubmitPieces(slot);
}

// NBD allows 32 MiB in one request; a path may take far less in one command (NVMe MDTS, SCSI Block Limits), so the
// export splits, as the block layer does under a kernel multipath head. The pieces go one after another: a request
// that large is bandwidth-bound, and the other slots keep the queue deep. A head that completes inside Submit hands
// the next piece back to this loop instead of recursing once per piece.
void Connection::SubmitPieces(Slot& slot) {
  IoRequest& io = *slot.io;
  const bool has_data = io.op == IoOp::kRead || io.op == IoOp::kWrite;
  do {
    slot.next_piece_due = false;
    if (io.op != IoOp::kFlush) {
      // Read each time: PieceDone may have taken tighter limits from the head.
      const std::uint64_t limit = has_data ? limits_.max_transfer_bytes : limits_.max_zeroing_bytes;
      const std::uint32_t remaining = slot.length - slot.piece_done;
      io.offset = slot.offset + slot.piece_done;
      io.length = limit == 0 ? remaining : static_cast<std::uint32_t>(std::min<std::uint64_t>(remaining, limit));
      io.data = has_data ? slot.data.get() + slot.piece_done : nullptr;
    }
    ++in_head_;
    slot.submitting = true;
    channel_->Submit(io);  // may complete inside
    slot.submitting = false;
  } while (slot.next_piece_due);
}

void Connection::OnIoDone(IoRequest& /*io*/, void* slot) {
  auto& s = *static_cast<Slot*>(slot);
  s.connection->PieceDone(s);
}

void Connection::PieceDone(Slot& slot) {
  IoRequest& io = *slot.io;
  // A path with tighter limits joined the head after transmission began, and the channel refused a piece cut to the
  // limits copied then. Taking the head's limits (a lock, but only on this refusal) and sending the same piece again,
  // cut to them, serves the request; limits only tighten, so this happens at most once per path added.
  bool resend = false;
  if (io.status.code == Errc::kInvalidArgument && io.op != IoOp::kFlush) {
    const IoLimits now = head_->limits();
    resend = now != limits_;
    limits_ = now;
  }
  const bool more = resend || (io.status.ok() && io.op != IoOp::kFlush && slot.piece_done + io.length < slot.length);
  if (!more) {
    Completed(slot);
    return;
  }
  Entry entry(*this);
  --in_head_;
  if (!resend) slot.piece_done += io.length;
  if (phase_ == Phase::kAborted || phase_ == Phase::kDone) {
    FreeSlot(slot);  // nobody to answer
    return;
  }
  if (shutting_down_ || closing_channel_) {
    ++in_head_;  // Completed() counts this piece out again
    io.status = IoStatus::Of(Errc::kAborted, "the server is stopping");
    Completed(slot);
    return;
  }
  if (slot.submitting) {
    slot.next_piece_due = true;
    return;
  }
  SubmitPieces(slot);
}

void Connection::Completed(Slot& slot) {
  Entry entry(*this);
  --in_head_;
  if (phase_ == Phase::kAborted || phase_ == Phase::kDone) {
    FreeSlot(slot);  // nobody to answer; the buffers were only waiting for the head to let go of them
    return;
  }
  const IoStatus& status = slot.io->status;
  if (status.ok()) {
    EncodeReply(slot, spec::Errno::kOk, {}, /*data_ready=*/true);
  } else {
    spec::Errno error = closing_channel_ ? spec::Errno::kShutdown : ToNbdErrno(status);
    if (error == spec::Errno::kOk) error = spec::Errno::kIo;  // a failure must never read as success
    // "<class>: <context>", formatted on the stack: a failing device must not make the server allocate.
    char text[kMaxErrorMessage];
    const char* context = status.context != nullptr ? status.context : "";
    const auto out = fmt::format_to_n(text, sizeof(text), "{}{}{}", ErrcName(status.code),
                                      *context != '\0' ? ": " : "", context);
    EncodeReply(slot, error, std::string_view(text, std::min(out.size, sizeof(text))), false);
  }
  QueueReply(slot);
}

void Connection::EncodeReply(Slot& slot, spec::Errno error, std::string_view message, bool data_ready) {
  if (error != spec::Errno::kOk) server_.request_errors.fetch_add(1, std::memory_order_relaxed);
  const bool read_data = error == spec::Errno::kOk && data_ready && slot.command == spec::Command::kRead &&
                         slot.length > 0;
  slot.reply_carries_data = read_data;
  // NBD protocol "Structured reply chunk message" lets a success without data go as a simple reply even when
  // structured replies were agreed: it is 16 bytes instead of 20 and one read for the client instead of two.
  if (!structured_ || (error == spec::Errno::kOk && slot.command != spec::Command::kRead)) {
    // NBD protocol "Simple reply message": a failed read carries no data.
    spec::SimpleReply reply;
    EncodeSimpleReply(slot.cookie, error, reply);
    slot.reply_size = Store(reply, slot.reply);
    return;
  }
  if (error != spec::Errno::kOk) {
    slot.reply_size = static_cast<std::uint32_t>(EncodeErrorChunk(slot.cookie, error, message, slot.reply));
  } else if (read_data) {
    OffsetDataHead head;
    EncodeReadChunk(slot.cookie, slot.offset, slot.length, head);
    slot.reply_size = Store(head, slot.reply);
  } else {
    // A read of zero bytes: structured replies must answer reads with a chunk.
    spec::StructuredReplyHeader done;
    EncodeDoneChunk(slot.cookie, done);
    slot.reply_size = Store(done, slot.reply);
  }
}

void Connection::QueueReply(Slot& slot) {
  // Replies leave in completion order, which the protocol allows (NBD protocol "Transmission").
  slot.next = nullptr;
  if (reply_last_ != nullptr) {
    reply_last_->next = &slot;
  } else {
    reply_first_ = &slot;
  }
  reply_last_ = &slot;
}

bool Connection::Flush() {
  if (fd_ < 0) return false;
  while (handshake_sent_ < handshake_out_.size()) {
    const ssize_t n = ::send(fd_, handshake_out_.data() + handshake_sent_, handshake_out_.size() - handshake_sent_,
                             MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (WouldBlock(errno)) return false;
      if (phase_ == Phase::kHandshake) FailHandshake();
      Abort(/*violation=*/false);
      return false;
    }
    handshake_sent_ += static_cast<std::size_t>(n);
  }
  if (handshake_sent_ > 0) {
    handshake_sent_ = 0;
    handshake_out_.clear();
    if (phase_ != Phase::kHandshake) handshake_out_.shrink_to_fit();  // not needed again
  }

  bool freed = false;
  while (reply_first_ != nullptr) {
    iovec iov[kMaxIovecs];
    std::size_t count = 0;
    std::size_t skip = front_sent_;
    auto add = [&](std::byte* base, std::size_t length) {
      if (skip >= length) {
        skip -= length;
        return;
      }
      iov[count++] = {base + skip, length - skip};
      skip = 0;
    };
    for (Slot* s = reply_first_; s != nullptr && count + 2 <= kMaxIovecs; s = s->next) {
      add(s->reply, s->reply_size);
      // A read's data is sent from the slot's own buffer, not copied behind the header.
      if (s->reply_carries_data) add(s->data.get(), s->length);
    }
    msghdr message{};
    message.msg_iov = iov;
    message.msg_iovlen = count;
    const ssize_t n = ::sendmsg(fd_, &message, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (WouldBlock(errno)) return freed;
      Abort(/*violation=*/false);
      return true;
    }
    std::size_t sent = front_sent_ + static_cast<std::size_t>(n);
    while (reply_first_ != nullptr && sent >= ReplyBytes(*reply_first_)) {
      Slot& done = *reply_first_;
      sent -= ReplyBytes(done);
      reply_first_ = done.next;
      if (reply_first_ == nullptr) reply_last_ = nullptr;
      FreeSlot(done);  // only now: the data buffer was part of the reply
      freed = true;
    }
    front_sent_ = sent;
  }
  return freed;
}

void Connection::Settle() {
  ++depth_;  // completions that happen in here only queue; this loop sends what they queued
  for (;;) {
    if (phase_ == Phase::kHandshake || phase_ == Phase::kTransmission) ConsumeBuffered();
    const bool freed = Flush();
    // Freed slots may let headers that were waiting in the buffer go ahead.
    if (!freed || phase_ != Phase::kTransmission || Buffered() == 0) break;
  }
  UpdateInterest();
  MaybeFinish();
  --depth_;
}

void Connection::UpdateInterest() {
  if (watch_ == 0 || phase_ == Phase::kAborted || phase_ == Phase::kDone) return;
  std::uint32_t want = 0;
  if (WantsInput()) want |= EPOLLIN;
  if (HasOutput()) want |= EPOLLOUT;  // only left over when the socket was full
  if (want == watched_events_) return;
  if (!loop_.Modify(watch_, want)) {
    if (phase_ == Phase::kHandshake) FailHandshake();
    Abort(/*violation=*/false);
    return;
  }
  watched_events_ = want;
}

bool Connection::WantsInput() const {
  switch (phase_) {
    case Phase::kHandshake:
      return true;
    case Phase::kTransmission:
      // Stop reading when every slot is taken or the byte budget is spent: a client that does not read its replies
      // stalls itself and nobody else.
      if (receiving_ != Receiving::kHeader) return true;
      return free_first_ != nullptr && held_bytes_ < server_.options.max_bytes_in_flight;
    case Phase::kDraining:
    case Phase::kAborted:
    case Phase::kDone:
    default:
      return false;
  }
}

void Connection::MaybeFinish() {
  switch (phase_) {
    case Phase::kDraining:
      if (in_head_ != 0) return;
      // On Stop, what the socket would not take now is given up rather than waited for.
      if (HasOutput() && !shutting_down_) return;
      Finish();
      return;
    case Phase::kAborted:
      if (in_head_ == 0) Finish();  // the head no longer writes into the buffers
      return;
    case Phase::kHandshake:
    case Phase::kTransmission:
    case Phase::kDone:
    default:
      return;
  }
}

void Connection::Abort(bool violation) {
  if (phase_ == Phase::kAborted || phase_ == Phase::kDone) return;
  if (violation) server_.violations.fetch_add(1, std::memory_order_relaxed);
  phase_ = Phase::kAborted;
  CloseSocket();
  // Replies that can no longer be sent and a write whose data will never arrive.
  while (reply_first_ != nullptr) {
    Slot& slot = *reply_first_;
    reply_first_ = slot.next;
    FreeSlot(slot);
  }
  reply_last_ = nullptr;
  front_sent_ = 0;
  if (payload_slot_ != nullptr) {
    FreeSlot(*payload_slot_);
    payload_slot_ = nullptr;
  }
}

void Connection::CloseSocket() {
  if (handshake_timer_ != 0) {
    loop_.Cancel(handshake_timer_);
    handshake_timer_ = 0;
  }
  if (watch_ != 0) {
    loop_.Unwatch(watch_);
    watch_ = 0;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void Connection::FailHandshake() {
  if (handshake_counted_) return;
  handshake_counted_ = true;
  server_.handshakes_failed.fetch_add(1, std::memory_order_relaxed);
}

void Connection::Finish() {
  phase_ = Phase::kDone;
  CloseSocket();
  // Not now: this may run inside a completion hook, with the head's channel still using the request.
  loop_.Post([this] { Destroy(); });
}

void Connection::Destroy() {
  if (shard_prev_ != nullptr) {
    shard_prev_->shard_next_ = shard_next_;
  } else {
    shard_.first = shard_next_;
  }
  if (shard_next_ != nullptr) shard_next_->shard_prev_ = shard_prev_;
  ServerContext& server = server_;
  delete this;
  server.ConnectionGone();  // last: the server may be gone once it returns
}

Connection::Slot* Connection::TakeSlot() {
  Slot* slot = free_first_;
  free_first_ = slot->next;
  slot->next = nullptr;
  return slot;
}

void Connection::FreeSlot(Slot& slot) {
  held_bytes_ -= slot.held_bytes;
  slot.held_bytes = 0;
  slot.reply_carries_data = false;
  slot.next = free_first_;
  free_first_ = &slot;
}

}  // namespace mpath::nbd::internal
