// The one place NVMe completion status is read for routing: one table turns an answer (delivery, SCT/SC, DNR, CRD)
// into the error class the submitter sees and the disposition the core acts on. ToIoStatus (raw_status.h) takes its
// Errc and context from here, so the error an application gets and the retry the core makes never disagree.
#pragma once

#include <chrono>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/core/io_request.h"
#include "mpath/core/personality.h"
#include "mpath/nvme/raw_status.h"

namespace mpath::nvme {

// A retriable status whose CQE asked for no delay (CRD 0) is retried on the same path after this long; the core
// bounds the number of retries (HeadOptions::max_same_path_retries).
inline constexpr Nanos kDefaultRetryDelay = std::chrono::milliseconds(10);

// What one NVMe answer means.
struct NvmeVerdict {
  Errc code = Errc::kOk;
  const char* context = "";  // static storage
  Decision decision{Disposition::kSuccess};
  bool refresh_ana = false;  // an ANA status (0x301, 0x302, 0x303): the controller's ANA log must be read again
};

// The table. Total over every delivery and every SCT/SC/DNR/CRD combination (unknown values included):
//   not delivered (link down, timeout, abort)                    -> another path
//   SCT 3h path related, no DNR                                  -> another path; 0x301/0x302 refresh ANA; 0x303
//                                                                   waits for the state change (and refreshes)
//   DNR (any SCT)                                                -> fail up, unchanged
//   reservation conflict, media errors (SCT 2h), invalid field/opcode/namespace, LBA out of range, write protected,
//   command specific (SCT 1h), vendor specific (SCT 7h)          -> fail up
//   other generic statuses without DNR (internal error, namespace not ready, transient transport error...)
//                                                                -> same path after the CRD delay (kDefaultRetryDelay
//                                                                   when CRD is 0), bounded by the core
// Pure; safe from any thread.
[[nodiscard]] NvmeVerdict JudgeNvme(const NvmeOutcome& outcome);

// The personality's Classify: decides from status.raw when it is an NVMe status, and otherwise (host-side errors the
// driver raised itself, such as a misaligned request) by the canonical class as NeutralTemplate does. Passthrough is
// classified like any I/O so that its path errors count against the path; the core never resends it elsewhere.
// Pure; safe from any thread.
[[nodiscard]] Decision ClassifyNvme(const IoRequest& io, const IoStatus& status);

}  // namespace mpath::nvme
