// The SCSI path driver: one logical unit over one ScsiTransport (one I_T nexus). It turns the core's IoRequests into
// SBC-4/SPC-5 commands built in the request's own context, and their answers back into IoStatus with the raw SCSI
// status kept (raw_status.h). It never retries: retries are the classifier's and the core's business.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/core/io_request.h"
#include "mpath/core/path_driver.h"
#include "mpath/scsi/spec/sbc_cdb.h"
#include "mpath/scsi/spec/status.h"
#include "mpath/scsi/transport.h"

namespace mpath::scsi {

// Told about the sense that changes what the personality knows of a path: every UNIT ATTENTION and every NOT READY
// (ALUA transitions, standby, unavailable; 2A/06, 29/xx, 2A/03...). The ALUA engine and the PR coordinator listen.
// Threading: called on the thread that completes the I/O (the submitter's), before the I/O completes, concurrently
// from every I/O thread. Implementations must be thread-safe, must not block, and must not submit on this driver
// from inside the call.
class ScsiPathObserver {
 public:
  virtual ~ScsiPathObserver() = default;
  virtual void OnSense(const spec::SenseCode& code) = 0;
  // RESERVATION CONFLICT status: our registration may be gone (a foreign preempt the UA did not tell us of).
  virtual void OnReservationConflict() {}
};

// What a passthrough caller hears besides the IoStatus: the whole answer.
struct ScsiPassthroughAnswer {
  Delivery delivery = Delivery::kDelivered;
  std::uint8_t status = 0;
  std::uint8_t sense_length = 0;
  std::array<std::uint8_t, kMaxSenseLength> sense{};
  std::uint32_t residual = 0;
};

// IoRequest::passthrough for IoOp::kPassthrough: a CDB sent as is, on one path, never resent.
// The request does not own any of it; everything must stay valid until the request completes.
struct ScsiPassthrough {
  std::span<const std::uint8_t> cdb{};  // 1 to kMaxCdbLength bytes
  DataDirection direction = DataDirection::kNone;
  std::span<std::byte> data{};          // empty when direction is kNone
  Nanos timeout{0};                   // 0: the driver's command timeout
  // Optional: filled before the request completes whenever the command reached the transport (a request refused by
  // the driver leaves it alone). The IoStatus carries the same answer in its raw status.
  ScsiPassthroughAnswer* answer = nullptr;
};

// Which READ/WRITE/SYNCHRONIZE CACHE CDBs the driver sends.
enum class RwCdbSize : std::uint8_t {
  kSmallestThatFits,  // (10) when the LBA range and length fit it, else (16), as Linux sd does
  kAlways16,
};

struct ScsiPathDriverOptions {
  RwCdbSize rw_cdb = RwCdbSize::kSmallestThatFits;
  // From the LU's VPD pages when the caller knows them (B0h/B2h); all off is always safe but disables discard.
  bool write_same_ndob = false;   // WRITE SAME(16) with NDOB (no data-out buffer) is accepted
  bool unmap = false;             // UNMAP is supported (VPD B2h LBPU)
  bool write_same_unmap = false;  // WRITE SAME(16) with UNMAP deallocates (VPD B2h LBPWS)
  Nanos command_timeout{0};       // every command's timeout; 0: the transport's default
};

// Threading: Submit may be called from any number of threads at once: the driver keeps no mutable state (no lock, no
// allocation per I/O). Each request completes exactly once on its submitter's thread, inline or through the executor
// current at Submit (CurrentExecutor()); over a transport that answers later, Submit must run on an executor's thread.
class ScsiPathDriver final : public PathDriver {
 public:
  // `transport` and `observer` (optional) are borrowed and must outlive the driver and every request in flight on it.
  // The geometry is the LU's (READ CAPACITY): requests are checked against it before anything is sent.
  static Result<std::unique_ptr<ScsiPathDriver>> Create(ScsiTransport& transport, std::uint64_t lun,
                                                        std::uint32_t block_size, std::uint64_t capacity_blocks,
                                                        const ScsiPathDriverOptions& options = {},
                                                        ScsiPathObserver* observer = nullptr);
  ~ScsiPathDriver() override;
  ScsiPathDriver(const ScsiPathDriver&) = delete;
  ScsiPathDriver& operator=(const ScsiPathDriver&) = delete;

  // The context holds the ScsiCommand and an UNMAP parameter list: well inside HeadOptions::request_context_size's
  // default (256).
  [[nodiscard]] std::size_t ContextSize() const override;
  static std::size_t RequiredContextSize();

  // kRead/kWrite -> READ/WRITE (10 or 16; FUA from io.fua), kFlush -> SYNCHRONIZE CACHE, kWriteZeroes -> WRITE SAME(16)
  // (NDOB, or one zero block), kDiscard -> UNMAP with one descriptor (or WRITE SAME(16) with UNMAP), kProbe -> TEST
  // UNIT READY, kPassthrough -> the ScsiPassthrough at io.passthrough. A request that is misaligned, beyond the
  // capacity, malformed or unsupported completes at once with kInvalidArgument, kOutOfRange or kUnsupported and
  // never reaches the transport.
  void Submit(IoRequest& io) override;

  [[nodiscard]] std::uint64_t lun() const { return lun_; }
  [[nodiscard]] std::uint32_t block_size() const { return block_size_; }
  [[nodiscard]] std::uint64_t capacity_blocks() const { return capacity_blocks_; }
  [[nodiscard]] const ScsiPathDriverOptions& options() const { return options_; }

 private:
  struct Context;

  ScsiPathDriver(ScsiTransport& transport, std::uint64_t lun, std::uint32_t block_size, std::uint64_t capacity_blocks,
                 const ScsiPathDriverOptions& options, ScsiPathObserver* observer);

  // Fills the command for `io`; a non-ok status means the request is refused before it reaches the transport.
  [[nodiscard]] IoStatus Build(const IoRequest& io, Context& context) const;
  [[nodiscard]] IoStatus CheckRange(const IoRequest& io) const;
  // WRITE SAME(16) of zeroes over [lba, lba + blocks), deallocating when `unmap` says so.
  [[nodiscard]] IoStatus BuildWriteSameZeroes(ScsiCommand& c, std::uint64_t lba, std::uint32_t blocks,
                                              spec::WriteSame16Cdb::Unmap unmap, const char* too_large) const;
  static void OnFinished(ScsiCommand& command, void* arg);

  // Constant after construction.
  ScsiTransport& transport_;
  const std::uint64_t lun_;
  const std::uint32_t block_size_;
  const std::uint64_t capacity_blocks_;
  const ScsiPathDriverOptions options_;
  ScsiPathObserver* const observer_;
};

}  // namespace mpath::scsi
