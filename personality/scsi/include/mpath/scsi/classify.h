// The one place SCSI status and sense are read for routing: one table turns an answer (delivery, status byte, sense)
// into the error class the submitter sees and the disposition the core acts on. ToIoStatus (raw_status.h) takes its
// Errc and context from here, so the error an application gets and the retry the core makes never disagree.
#pragma once

#include <chrono>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/core/io_request.h"
#include "mpath/core/personality.h"
#include "mpath/scsi/raw_status.h"

namespace mpath::scsi {

// Same-path retry delays. The core bounds the number of retries (HeadOptions::max_same_path_retries); when they run
// out it completes the I/O with the last status, which is why each row also carries a meaningful Errc.
inline constexpr Nanos kUnitAttentionRetryDelay = Nanos(0);  // the UA was consumed by the answer that reported it
inline constexpr Nanos kBecomingReadyRetryDelay = std::chrono::milliseconds(250);
inline constexpr Nanos kAbortedCommandRetryDelay = std::chrono::milliseconds(5);
inline constexpr Nanos kBusyRetryDelay = std::chrono::milliseconds(20);

// What one SCSI answer means.
struct ScsiVerdict {
  Errc code = Errc::kOk;
  const char* context = "";  // static storage
  Decision decision{Disposition::kSuccess};
};

// The table. Total over every delivery, status byte and sense (unknown values included). Pure; safe from any thread.
[[nodiscard]] ScsiVerdict JudgeScsi(const ScsiOutcome& outcome);

// The personality's Classify: decides from status.raw when it is a SCSI status, and otherwise (host-side errors the
// driver raised itself, such as a misaligned request) by the canonical class as NeutralTemplate does. Passthrough is
// classified like any I/O so that its path errors count against the path; the core never resends it.
// Pure; safe from any thread.
[[nodiscard]] Decision ClassifyScsi(const IoRequest& io, const IoStatus& status);

}  // namespace mpath::scsi
