// Discovery of one logical unit over one I_T nexus: the commands Linux's sd and scsi_scan send before a disk is
// usable (standard INQUIRY, the supported VPD pages, VPD 83h, VPD B0h, READ CAPACITY), sent asynchronously through
// the transport seam and turned into what the registry needs to attach the path.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/core/executor.h"
#include "mpath/core/path.h"
#include "mpath/scsi/identity.h"
#include "mpath/scsi/spec/status.h"
#include "mpath/scsi/transport.h"

namespace mpath::scsi {

struct ProbeOptions {
  Nanos command_timeout = std::chrono::seconds(30);  // per command; 0: the transport's default
  // A command answered with UNIT ATTENTION is sent again, up to this many times in all (a new nexus reports 29/00
  // on its first command, and a transition queues 2A/06 on top).
  int unit_attention_tries = 8;
  // Allocation length of the first try of each VPD page; a page that says it is longer is read again whole.
  std::uint16_t vpd_allocation_length = 255;
};

// What one path reports about one LU.
struct ProbedUnit {
  InquirySummary inquiry;
  std::vector<std::uint8_t> supported_vpd_pages;  // empty when the device refused page 00h
  LuIdentity identity;                            // kind kNone, with the reason, when there is none
  TargetPortInfo port;
  std::optional<BlockLimits> block_limits;        // when page B0h is listed and answered
  // nullopt when the port's asymmetric access state refused READ CAPACITY (a standby, unavailable, transitioning or
  // offline port answers NOT READY 04/0B, 04/0C, 04/0A or 04/12); capacity_refused holds that code. The head's
  // geometry comes from an active path then.
  std::optional<Capacity> capacity;
  std::optional<spec::SenseCode> capacity_refused;
  std::vector<std::byte> vpd83;                   // the Device Identification page as received

  // The core's view: identity, reports_access_states, capacity_bytes and block_size (0 and 512 when the capacity is
  // unknown), the transfer limits (only with the capacity: they are counted in blocks), and as initial_access the
  // state a refused READ CAPACITY implies. Name and transport are left empty.
  [[nodiscard]] DeviceInfo ToDeviceInfo() const;
};

// Sets `info`'s transfer limits from a Block Limits page for `info.block_size`; none when the page is absent.
void ApplyBlockLimits(const std::optional<BlockLimits>& limits, DeviceInfo& info);

using ProbeCallback = std::move_only_function<void(Result<ProbedUnit>)>;

// Probes LUN `lun` behind `transport`. Every command is submitted from `executor`'s thread and carries
// command.executor = &executor, so transports that answer later deliver there; `done` runs exactly once, on that
// thread, with the unit or the first error that ended the probe:
//   - kNotFound: no LU at this LUN (peripheral qualifier); kUnsupported: not a direct access block device;
//   - kPathError / kTimedOut / kAborted: the transport did not deliver a command (link down, no answer, aborted);
//   - kBusy: UNIT ATTENTION on every one of `unit_attention_tries` tries;
//   - kTargetError: any other CHECK CONDITION or status, or malformed data.
// Refusals that only cost information do not fail the probe: ILLEGAL REQUEST to VPD 00h, 83h or B0h (the unit then
// lacks that information, and `identity.reason` says so for 83h), and to READ CAPACITY (16), which falls back to
// READ CAPACITY (10).
// REQUIRES: `done` is callable; `transport` and `executor` outlive the probe (until `done` has run).
// Threading: may be called from any thread; the work itself runs as tasks on `executor`.
void ProbeLogicalUnit(ScsiTransport& transport, std::uint64_t lun, Executor& executor, ProbeOptions options,
                      ProbeCallback done);

}  // namespace mpath::scsi
