#include "mpath/sim/san.h"

#include <fmt/format.h>

namespace mpath::sim {
namespace {

// SplitMix64: turns (seed, path number) into well-spread, reproducible per-path seeds.
std::uint64_t MixSeed(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

Result<std::unique_ptr<SimSan>> SimSan::Create(SanOptions options) {
  if (options.scsi_timeout <= Nanos(0) || options.nvme_io_timeout <= Nanos(0) ||
      options.nvme_admin_timeout <= Nanos(0)) {
    return MakeError(Errc::kInvalidArgument, "simulated SAN: command timeouts must be positive");
  }
  return std::unique_ptr<SimSan>(new SimSan(options));
}

SimSan::SimSan(const SanOptions& options)
    : clock_(options.clock != nullptr ? *options.clock : SteadyClock::Instance()), options_(options) {}

SimSan::~SimSan() {
  // Paths reach into the devices, so they go first.
  paths_.clear();
}

Result<scsi::fake::Array*> SimSan::AddScsiArray(const std::string& name, scsi::fake::ArrayConfig config) {
  std::lock_guard lock(mu_);
  if (name.empty()) return MakeError(Errc::kInvalidArgument, "simulated SAN: an array needs a name");
  if (arrays_.contains(name) || subsystems_.contains(name)) {
    return MakeError(Errc::kAlreadyExists, fmt::format("simulated SAN: a target named '{}' already exists", name));
  }
  auto array = MPATH_TRY(scsi::fake::Array::Create(std::move(config), clock_));
  scsi::fake::Array* raw = array.get();
  arrays_.emplace(name, std::move(array));
  return raw;
}

Result<nvme::fake::Subsystem*> SimSan::AddNvmeSubsystem(const std::string& name,
                                                        nvme::fake::SubsystemConfig config) {
  std::lock_guard lock(mu_);
  if (name.empty()) return MakeError(Errc::kInvalidArgument, "simulated SAN: a subsystem needs a name");
  if (arrays_.contains(name) || subsystems_.contains(name)) {
    return MakeError(Errc::kAlreadyExists, fmt::format("simulated SAN: a target named '{}' already exists", name));
  }
  auto subsystem = MPATH_TRY(nvme::fake::Subsystem::Create(std::move(config), clock_));
  nvme::fake::Subsystem* raw = subsystem.get();
  subsystems_.emplace(name, std::move(subsystem));
  return raw;
}

scsi::fake::Array* SimSan::FindScsiArray(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = arrays_.find(name);
  return it == arrays_.end() ? nullptr : it->second.get();
}

nvme::fake::Subsystem* SimSan::FindNvmeSubsystem(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = subsystems_.find(name);
  return it == subsystems_.end() ? nullptr : it->second.get();
}

std::unique_ptr<LinkFaults> SimSan::NewLinkFaults() {
  return std::make_unique<LinkFaults>(clock_, MixSeed(options_.seed + ++paths_created_));
}

Result<void> SimSan::CheckNewPathName(const std::string& name) const {
  if (name.empty()) return MakeError(Errc::kInvalidArgument, "simulated SAN: a path needs a name");
  if (paths_.contains(name)) {
    return MakeError(Errc::kAlreadyExists, fmt::format("simulated SAN: a path named '{}' already exists", name));
  }
  return {};
}

Result<scsi::ScsiTransport*> SimSan::ConnectScsi(const ScsiPathSpec& spec) {
  std::lock_guard lock(mu_);
  MPATH_TRY(CheckNewPathName(spec.name));
  auto array = arrays_.find(spec.array);
  if (array == arrays_.end()) {
    return MakeError(Errc::kNotFound, fmt::format("simulated SAN: path '{}' names no array '{}'", spec.name, spec.array));
  }
  auto nexus = MPATH_TRY(array->second->Connect(spec.initiator_port, spec.relative_port));
  PathEntry entry;
  entry.info = {.name = spec.name, .protocol = PathProtocol::kScsi, .target = spec.array,
                .initiator = spec.initiator_port, .port = spec.relative_port, .faults = {}, .counts = {}};
  entry.scsi = std::make_unique<FaultyScsiTransport>(std::move(nexus), NewLinkFaults(), options_.scsi_timeout);
  entry.faults = &entry.scsi->faults();
  scsi::ScsiTransport* transport = entry.scsi.get();
  paths_.emplace(spec.name, std::move(entry));
  return transport;
}

Result<nvme::NvmeTransport*> SimSan::ConnectNvme(const NvmePathSpec& spec) {
  std::lock_guard lock(mu_);
  MPATH_TRY(CheckNewPathName(spec.name));
  auto subsystem = subsystems_.find(spec.subsystem);
  if (subsystem == subsystems_.end()) {
    return MakeError(Errc::kNotFound,
                     fmt::format("simulated SAN: path '{}' names no subsystem '{}'", spec.name, spec.subsystem));
  }
  auto controller = MPATH_TRY(subsystem->second->Connect(spec.host_nqn, spec.host_id, spec.port));
  PathEntry entry;
  entry.info = {.name = spec.name, .protocol = PathProtocol::kNvme, .target = spec.subsystem,
                .initiator = spec.host_nqn, .port = spec.port, .faults = {}, .counts = {}};
  entry.nvme = std::make_unique<FaultyNvmeTransport>(std::move(controller), NewLinkFaults(), options_.nvme_io_timeout,
                                                     options_.nvme_admin_timeout);
  entry.faults = &entry.nvme->faults();
  nvme::NvmeTransport* transport = entry.nvme.get();
  paths_.emplace(spec.name, std::move(entry));
  return transport;
}

Result<void> SimSan::Disconnect(std::string_view path) {
  std::lock_guard lock(mu_);
  auto it = paths_.find(path);
  if (it == paths_.end()) return MakeError(Errc::kNotFound, fmt::format("simulated SAN: no path named '{}'", path));
  paths_.erase(it);
  return {};
}

Result<LinkFaults*> SimSan::Faults(std::string_view path) const {
  std::lock_guard lock(mu_);
  auto it = paths_.find(path);
  if (it == paths_.end()) return MakeError(Errc::kNotFound, fmt::format("simulated SAN: no path named '{}'", path));
  return it->second.faults;
}

std::vector<SimPathInfo> SimSan::Paths() const {
  std::lock_guard lock(mu_);
  std::vector<SimPathInfo> out;
  out.reserve(paths_.size());
  for (const auto& [name, entry] : paths_) {
    SimPathInfo info = entry.info;
    info.faults = entry.faults->settings();
    info.counts = entry.faults->counts();
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace mpath::sim
