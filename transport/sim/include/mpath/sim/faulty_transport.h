// Fault injection at the transport seam (conventions §14): decorators that wrap any SCSI or NVMe transport and
// apply one link's LinkFaults to every command. The simulated SAN puts one in front of every nexus and controller;
// the daemon can put one in front of a real transport for fault drills.
#pragma once

#include <cstdint>
#include <memory>

#include "mpath/core/clock.h"
#include "mpath/nvme/transport.h"
#include "mpath/scsi/transport.h"
#include "mpath/sim/link_faults.h"

namespace mpath::sim {

// Linux's defaults: SCSI command timeout 30 s (sd), NVMe I/O 30 s and admin 60 s (nvme_core io_timeout/admin_timeout).
inline constexpr Nanos kDefaultScsiTimeout = std::chrono::seconds(30);
inline constexpr Nanos kDefaultNvmeIoTimeout = std::chrono::seconds(30);
inline constexpr Nanos kDefaultNvmeAdminTimeout = std::chrono::seconds(60);

// Threading: as the wrapped transport (Submit from any thread; completions on each command's executor). Commands that
// wait (latency, hang, dropped answers) need command.executor; without one they are decided at once (latency
// ignored, a hang or a dropped answer times out immediately). Must outlive every command in flight, including hung
// ones, which end at their timeout.
class FaultyScsiTransport final : public scsi::ScsiTransport {
 public:
  FaultyScsiTransport(std::unique_ptr<scsi::ScsiTransport> inner, std::unique_ptr<LinkFaults> faults,
                      Nanos default_timeout = kDefaultScsiTimeout);
  ~FaultyScsiTransport() override;

  void Submit(std::uint64_t lun, scsi::ScsiCommand& command) override;

  [[nodiscard]] LinkFaults& faults() { return *faults_; }

 private:

  const std::unique_ptr<scsi::ScsiTransport> inner_;
  const std::unique_ptr<LinkFaults> faults_;
  const Nanos default_timeout_;
};

// Threading: as FaultyScsiTransport. Asynchronous Event Requests are never delayed, hung or dropped (they have no
// timeout and are answered only on events); a down link fails them like any command.
class FaultyNvmeTransport final : public nvme::NvmeTransport {
 public:
  FaultyNvmeTransport(std::unique_ptr<nvme::NvmeTransport> inner, std::unique_ptr<LinkFaults> faults,
                      Nanos io_timeout = kDefaultNvmeIoTimeout, Nanos admin_timeout = kDefaultNvmeAdminTimeout);
  ~FaultyNvmeTransport() override;

  void Submit(nvme::NvmeCommand& command) override;

  [[nodiscard]] LinkFaults& faults() { return *faults_; }

 private:

  const std::unique_ptr<nvme::NvmeTransport> inner_;
  const std::unique_ptr<LinkFaults> faults_;
  const Nanos io_timeout_;
  const Nanos admin_timeout_;
};

// Whether a command touches the medium (the commands a "ready but fails every I/O" path fails).
[[nodiscard]] bool IsScsiMediaCommand(const scsi::ScsiCommand& command);
[[nodiscard]] bool IsNvmeMediaCommand(const nvme::NvmeCommand& command);

}  // namespace mpath::sim
