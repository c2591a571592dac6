// The simulated SAN, mpath's embedded default: SCSI arrays and NVMe subsystems living in this process, reached over
// named paths that each carry a fault decorator. `mpath demo`, the tests and the benchmarks build their fabric here;
// the personalities see nothing but the SCSI and NVMe transport seams.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "mpath/core/clock.h"
#include "mpath/core/error.h"
#include "mpath/nvme/fake/subsystem.h"
#include "mpath/nvme/transport.h"
#include "mpath/scsi/fake/array.h"
#include "mpath/scsi/transport.h"
#include "mpath/sim/faulty_transport.h"
#include "mpath/sim/link_faults.h"

namespace mpath::sim {

struct SanOptions {
  const Clock* clock = nullptr;   // nullptr: the steady clock. Must outlive the SAN.
  std::uint64_t seed = 1;         // every random fault draw derives from it
  Nanos scsi_timeout = kDefaultScsiTimeout;
  Nanos nvme_io_timeout = kDefaultNvmeIoTimeout;
  Nanos nvme_admin_timeout = kDefaultNvmeAdminTimeout;
};

// One I_T nexus: `initiator_port` on the host to target port `relative_port` of `array`.
struct ScsiPathSpec {
  std::string name;
  std::string array;
  std::string initiator_port;
  std::uint16_t relative_port = 1;
};

// One NVMe controller: `host_nqn` / `host_id` connected through `port` of `subsystem`.
struct NvmePathSpec {
  std::string name;
  std::string subsystem;
  std::string host_nqn;
  std::array<std::uint8_t, 16> host_id{};
  std::uint16_t port = 1;
};

enum class PathProtocol : std::uint8_t { kScsi, kNvme };

struct SimPathInfo {
  std::string name;
  PathProtocol protocol = PathProtocol::kScsi;
  std::string target;       // array or subsystem name
  std::string initiator;    // initiator port or host NQN
  std::uint16_t port = 0;   // relative target port or NVMe port id
  LinkFaultSettings faults;
  LinkFaultCounts counts;
};

// Threading: every method is safe from any thread. Transports and fault handles returned here stay valid until
// their path is disconnected or the SAN is destroyed; a path may be disconnected only when nothing is in flight on it.
class SimSan {
 public:
  static Result<std::unique_ptr<SimSan>> Create(SanOptions options = {});
  ~SimSan();

  Result<scsi::fake::Array*> AddScsiArray(const std::string& name, scsi::fake::ArrayConfig config);
  Result<nvme::fake::Subsystem*> AddNvmeSubsystem(const std::string& name, nvme::fake::SubsystemConfig config);
  [[nodiscard]] scsi::fake::Array* FindScsiArray(std::string_view name) const;
  [[nodiscard]] nvme::fake::Subsystem* FindNvmeSubsystem(std::string_view name) const;

  // Connects a path; the transport returned applies the path's link faults before the device sees a command.
  Result<scsi::ScsiTransport*> ConnectScsi(const ScsiPathSpec& spec);
  Result<nvme::NvmeTransport*> ConnectNvme(const NvmePathSpec& spec);
  Result<void> Disconnect(std::string_view path);

  // The link faults of one path, to inject at run time.
  Result<LinkFaults*> Faults(std::string_view path) const;
  [[nodiscard]] std::vector<SimPathInfo> Paths() const;

  [[nodiscard]] const Clock& clock() const { return clock_; }

 private:
  struct PathEntry {
    SimPathInfo info;  // name, protocol, target, initiator, port
    std::unique_ptr<FaultyScsiTransport> scsi;
    std::unique_ptr<FaultyNvmeTransport> nvme;
    LinkFaults* faults = nullptr;
  };

  explicit SimSan(const SanOptions& options);
  [[nodiscard]] std::unique_ptr<LinkFaults> NewLinkFaults();
  Result<void> CheckNewPathName(const std::string& name) const;

  const Clock& clock_;
  const SanOptions options_;
  mutable std::mutex mu_;
  // Declared before the paths so that every path is torn down before the devices it reaches.
  std::map<std::string, std::unique_ptr<scsi::fake::Array>, std::less<>> arrays_;            // guarded by mu_
  std::map<std::string, std::unique_ptr<nvme::fake::Subsystem>, std::less<>> subsystems_;   // guarded by mu_
  std::map<std::string, PathEntry, std::less<>> paths_;                                     // guarded by mu_
  std::uint64_t paths_created_ = 0;                                                         // guarded by mu_
};

}  // namespace mpath::sim
