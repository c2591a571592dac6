#include "mpath/scsi/path_driver.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <type_traits>

#include "mpath/core/executor.h"
#include "mpath/scsi/raw_status.h"
#include "mpath/scsi/spec/sbc_cdb.h"
#include "mpath/scsi/spec/spc_cdb.h"

namespace mpath::scsi {
namespace {

// One zero block for WRITE SAME without NDOB. Data-out buffers are only ever read by transports, so one shared,
// read-only block serves every request on every thread; a transport that wrote into it would fault, not corrupt.
constexpr std::size_t kZeroBlockBytes = 64 * 1024;
alignas(64) constinit const std::byte kZeroBlock[kZeroBlockBytes] = {};

constexpr std::size_t kUnmapListBytes = sizeof(spec::UnmapParameterListHeader) + sizeof(spec::UnmapBlockDescriptor);

std::span<std::byte> ZeroBlock(std::uint32_t block_size) {
  // const_cast: ScsiCommand::data is one span for both directions; see kZeroBlock.
  return {const_cast<std::byte*>(kZeroBlock), block_size};
}

}  // namespace

// Everything one request needs while it is on the wire, placed in IoRequest::driver_context().
struct ScsiPathDriver::Context {
  ScsiCommand command;
  IoRequest* io = nullptr;
  const ScsiPathDriver* driver = nullptr;
  alignas(8) std::byte unmap_list[kUnmapListBytes];
};


Result<std::unique_ptr<ScsiPathDriver>> ScsiPathDriver::Create(ScsiTransport& transport, std::uint64_t lun,
                                                              std::uint32_t block_size, std::uint64_t capacity_blocks,
                                                              const ScsiPathDriverOptions& options,
                                                              ScsiPathObserver* observer) {
  if (block_size == 0) return MakeError(Errc::kInvalidArgument, "SCSI path driver: block size 0");
  if (capacity_blocks == 0) return MakeError(Errc::kInvalidArgument, "SCSI path driver: capacity of 0 blocks");
  if (capacity_blocks > std::numeric_limits<std::uint64_t>::max() / block_size) {
    return MakeError(Errc::kInvalidArgument, "SCSI path driver: capacity " + std::to_string(capacity_blocks) +
                                                 " blocks of " + std::to_string(block_size) +
                                                 " bytes overflows 64 bits");
  }
  if (options.command_timeout < Nanos(0)) {
    return MakeError(Errc::kInvalidArgument, "SCSI path driver: negative command timeout");
  }
  return std::unique_ptr<ScsiPathDriver>(
      new ScsiPathDriver(transport, lun, block_size, capacity_blocks, options, observer));
}

ScsiPathDriver::ScsiPathDriver(ScsiTransport& transport, std::uint64_t lun, std::uint32_t block_size,
                               std::uint64_t capacity_blocks, const ScsiPathDriverOptions& options,
                               ScsiPathObserver* observer)
    : transport_(transport),
      lun_(lun),
      block_size_(block_size),
      capacity_blocks_(capacity_blocks),
      options_(options),
      observer_(observer) {}

ScsiPathDriver::~ScsiPathDriver() = default;

std::size_t ScsiPathDriver::RequiredContextSize() {
  // The context ends its lifetime before the request completes (a retry reuses it at once), so nothing in it may
  // need destruction.
  static_assert(std::is_trivially_destructible_v<Context>);
  static_assert(sizeof(Context) <= 256, "must fit HeadOptions::request_context_size's default");
  return sizeof(Context);
}

std::size_t ScsiPathDriver::ContextSize() const { return RequiredContextSize(); }

void ScsiPathDriver::Submit(IoRequest& io) {
  void* storage = io.driver_context();
  if (storage == nullptr || io.driver_context_size() < sizeof(Context) ||
      reinterpret_cast<std::uintptr_t>(storage) % alignof(Context) != 0) [[unlikely]] {
    io.Complete(IoStatus::Of(Errc::kInternal, "request has no room for the SCSI driver's context"));
    return;
  }
  auto* context = new (storage) Context;
  context->io = &io;
  context->driver = this;
  if (IoStatus refused = Build(io, *context); !refused.ok()) [[unlikely]] {
    context->~Context();
    io.Complete(refused);
    return;
  }
  ScsiCommand& command = context->command;
  // A transport that answers later delivers on the submitter's thread.
  command.executor = CurrentExecutor();
  command.OnFinish(&ScsiPathDriver::OnFinished, context);
  transport_.Submit(lun_, command);
}

IoStatus ScsiPathDriver::CheckRange(const IoRequest& io) const {
  if (io.length == 0) return IoStatus::Of(Errc::kInvalidArgument, "zero-length I/O");
  if (io.offset % block_size_ != 0 || io.length % block_size_ != 0) {
    return IoStatus::Of(Errc::kInvalidArgument, "I/O not aligned to the logical block size");
  }
  const std::uint64_t lba = io.offset / block_size_;
  const std::uint64_t blocks = io.length / block_size_;
  if (lba > capacity_blocks_ || blocks > capacity_blocks_ - lba) {
    return IoStatus::Of(Errc::kOutOfRange, "I/O beyond the capacity of the logical unit");
  }
  return IoStatus::Ok();
}

IoStatus ScsiPathDriver::Build(const IoRequest& io, Context& context) const {
  ScsiCommand& c = context.command;
  c.timeout = options_.command_timeout;
  const bool use16 = options_.rw_cdb == RwCdbSize::kAlways16;
  const std::uint64_t lba = io.offset / block_size_;
  // Every op that carries a range has length <= 4 GiB - 1, so its block count fits the 32-bit fields of the (16) CDBs.
  const auto blocks = static_cast<std::uint32_t>(io.length / block_size_);
  switch (io.op) {
    case IoOp::kRead:
    case IoOp::kWrite: {
      if (io.data == nullptr) return IoStatus::Of(Errc::kInvalidArgument, "I/O without a buffer");
      if (IoStatus range = CheckRange(io); !range.ok()) return range;
      // (10) addresses LBAs below 2^32 and up to 65535 blocks; like Linux sd, use it only when the whole range fits.
      const bool fits10 = lba + blocks <= (std::uint64_t{1} << 32) && blocks <= 0xFFFF;
      const spec::Fua fua = io.op == IoOp::kWrite && io.fua ? spec::Fua::kYes : spec::Fua::kNo;
      if (io.op == IoOp::kRead) {
        if (use16 || !fits10) {
          c.SetCdb(spec::Read16Cdb::Make(lba, blocks));
        } else {
          c.SetCdb(spec::Read10Cdb::Make(static_cast<std::uint32_t>(lba), static_cast<std::uint16_t>(blocks)));
        }
        c.direction = DataDirection::kFromDevice;
      } else {
        if (use16 || !fits10) {
          c.SetCdb(spec::Write16Cdb::Make(lba, blocks, fua));
        } else {
          c.SetCdb(spec::Write10Cdb::Make(static_cast<std::uint32_t>(lba), static_cast<std::uint16_t>(blocks), fua));
        }
        c.direction = DataDirection::kToDevice;
      }
      c.data = {io.data, io.length};
      return IoStatus::Ok();
    }
    case IoOp::kFlush:
      // The whole LU: LBA 0 and NUMBER OF LOGICAL BLOCKS 0.
      if (use16) {
        c.SetCdb(spec::SynchronizeCache16Cdb::Make());
      } else {
        c.SetCdb(spec::SynchronizeCache10Cdb::Make());
      }
      c.direction = DataDirection::kNone;
      return IoStatus::Ok();
    case IoOp::kWriteZeroes: {
      if (IoStatus range = CheckRange(io); !range.ok()) return range;
      return BuildWriteSameZeroes(c, lba, blocks, spec::WriteSame16Cdb::Unmap::kNo,
                                  "write zeroes: block size too large without WRITE SAME NDOB");
    }
    case IoOp::kDiscard: {
      if (IoStatus range = CheckRange(io); !range.ok()) return range;
      if (options_.unmap) {
        spec::UnmapParameterListHeader header = spec::UnmapParameterListHeader::ForDescriptors(1);
        spec::UnmapBlockDescriptor descriptor{};
        descriptor.unmap_logical_block_address = lba;
        descriptor.number_of_logical_blocks = blocks;
        std::memcpy(context.unmap_list, &header, sizeof(header));
        std::memcpy(context.unmap_list + sizeof(header), &descriptor, sizeof(descriptor));
        c.SetCdb(spec::UnmapCdb::Make(static_cast<std::uint16_t>(kUnmapListBytes)));
        c.direction = DataDirection::kToDevice;
        c.data = {context.unmap_list, kUnmapListBytes};
        return IoStatus::Ok();
      }
      if (options_.write_same_unmap) {
        // With UNMAP set the target deallocates only if the pattern reads back the same, so the pattern is zeroes.
        return BuildWriteSameZeroes(c, lba, blocks, spec::WriteSame16Cdb::Unmap::kYes,
                                    "discard: block size too large without WRITE SAME NDOB");
      }
      return IoStatus::Of(Errc::kUnsupported, "discard: the LU supports neither UNMAP nor WRITE SAME with UNMAP");
    }
    case IoOp::kProbe:
      c.SetCdb(spec::TestUnitReadyCdb::Make());
      c.direction = DataDirection::kNone;
      return IoStatus::Ok();
    case IoOp::kPassthrough: {
      const auto* p = static_cast<const ScsiPassthrough*>(io.passthrough);
      if (p == nullptr) return IoStatus::Of(Errc::kInvalidArgument, "passthrough without a command");
      if (p->cdb.empty() || p->cdb.size() > kMaxCdbLength) {
        return IoStatus::Of(Errc::kInvalidArgument, "passthrough CDB length not within 1..32 bytes");
      }
      if ((p->direction == DataDirection::kNone) != p->data.empty()) {
        return IoStatus::Of(Errc::kInvalidArgument, "passthrough data buffer does not match its direction");
      }
      if (p->timeout < Nanos(0)) return IoStatus::Of(Errc::kInvalidArgument, "passthrough with a negative timeout");
      std::memcpy(c.cdb.data(), p->cdb.data(), p->cdb.size());
      c.cdb_length = static_cast<std::uint8_t>(p->cdb.size());
      c.direction = p->direction;
      c.data = p->data;
      if (p->timeout > Nanos(0)) c.timeout = p->timeout;
      return IoStatus::Ok();
    }
    default:
      return IoStatus::Of(Errc::kUnsupported, "operation not supported by the SCSI path driver");
  }
}

IoStatus ScsiPathDriver::BuildWriteSameZeroes(ScsiCommand& c, std::uint64_t lba, std::uint32_t blocks,
                                               spec::WriteSame16Cdb::Unmap unmap, const char* too_large) const {
  // With NDOB no data goes out; otherwise the pattern is one zero block.
  if (options_.write_same_ndob) {
    c.SetCdb(spec::WriteSame16Cdb::Make(lba, blocks, unmap, spec::WriteSame16Cdb::Ndob::kYes));
    c.direction = DataDirection::kNone;
    return IoStatus::Ok();
  }
  if (block_size_ > kZeroBlockBytes) return IoStatus::Of(Errc::kUnsupported, too_large);
  c.SetCdb(spec::WriteSame16Cdb::Make(lba, blocks, unmap));
  c.direction = DataDirection::kToDevice;
  c.data = ZeroBlock(block_size_);
  return IoStatus::Ok();
}

void ScsiPathDriver::OnFinished(ScsiCommand& command, void* arg) {
  auto* context = static_cast<Context*>(arg);
  IoRequest& io = *context->io;
  const ScsiPathDriver& driver = *context->driver;

  ScsiOutcome outcome = OutcomeOf(command);
  // A READ or WRITE must move every byte; anything less under GOOD status is a transport fault, not a result.
  if ((io.op == IoOp::kRead || io.op == IoOp::kWrite) && command.residual != 0 && outcome.delivered() &&
      (outcome.status == spec::Status::kGood || outcome.status == spec::Status::kConditionMet)) {
    outcome.short_transfer = true;
  }
  if (driver.observer_ != nullptr && outcome.check_condition() && outcome.sense_parsed &&
      (outcome.sense.key == spec::SenseKey::kUnitAttention || outcome.sense.key == spec::SenseKey::kNotReady)) {
    driver.observer_->OnSense(outcome.sense);
  }
  if (driver.observer_ != nullptr && outcome.delivered() && outcome.status == spec::Status::kReservationConflict) {
    driver.observer_->OnReservationConflict();
  }
  if (io.op == IoOp::kPassthrough) {
    const auto* p = static_cast<const ScsiPassthrough*>(io.passthrough);
    if (p->answer != nullptr) {
      ScsiPassthroughAnswer& answer = *p->answer;
      answer.delivery = command.delivery;
      answer.status = command.status;
      answer.sense_length = static_cast<std::uint8_t>(std::min<std::size_t>(command.sense_length, kMaxSenseLength));
      std::memcpy(answer.sense.data(), command.sense.data(), answer.sense_length);
      answer.residual = command.residual;
    }
  }
  const IoStatus status = ToIoStatus(outcome);
  // The context is free again before the request completes: a same-path retry reuses it at once.
  context->~Context();
  io.Complete(status);
}

}  // namespace mpath::scsi
