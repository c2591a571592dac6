#include "mpath/daemon/exports.h"

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "mpath/nbd/spec.h"

namespace mpath::daemon {

FabricExports::FabricExports(const Fabric& fabric, ExportSettings settings)
    : fabric_(fabric), settings_(std::move(settings)) {
  // The vendor and product come from the first INQUIRY / Identify of a head's first path and never change for one
  // identity (another volume at that address is another identity). They are read here, on the caller's thread,
  // because a handshake on an I/O loop must not wait for the control loop; a head made later is described without.
  for (const std::shared_ptr<Head>& head : fabric_.AllHeads()) {
    Result<HeadView> view = fabric_.FindHeadView(head->name());
    if (!view || view->identity != head->identity().str()) continue;
    std::string model = view->vendor;
    if (!view->product.empty()) model += (model.empty() ? "" : " ") + view->product;
    if (!model.empty()) models_.try_emplace(view->identity, std::move(model));
  }
}

std::vector<FabricExports::Named> FabricExports::LiveHeads() const {
  // AllHeads and DeviceFor, not Heads(): this runs at every handshake, and a full view computes every path's latency
  // percentiles.
  std::vector<Named> heads;
  for (std::shared_ptr<Head>& head : fabric_.AllHeads()) {
    if (head->state() == HeadState::kRemoved) continue;
    const DeviceSettings* device = fabric_.config().DeviceFor(head->identity().str());
    std::string name = device != nullptr && !device->alias.empty() ? device->alias : head->identity().str();
    heads.push_back({std::move(head), std::move(name)});
  }
  // Head names are "mpath<N>": shorter first keeps mpath10 after mpath9.
  std::sort(heads.begin(), heads.end(), [](const Named& a, const Named& b) {
    return std::pair(a.head->name().size(), std::string_view(a.head->name())) <
           std::pair(b.head->name().size(), std::string_view(b.head->name()));
  });
  return heads;
}

std::string FabricExports::ModelOf(const Head& head) const {
  auto it = models_.find(head.identity().str());
  return it != models_.end() ? it->second : std::string();
}

nbd::ExportInfo FabricExports::InfoOf(const Named& named) const {
  const Head& head = *named.head;
  const std::string model = ModelOf(head);
  const std::size_t paths = head.path_count();
  nbd::ExportInfo info;
  info.name = named.name;
  info.description = fmt::format("{}: {}{}{}, {} path{}, {}", head.name(), head.personality().protocol(),
                                 model.empty() ? "" : " ", model, paths, paths == 1 ? "" : "s", Name(head.policy()));
  info.size_bytes = head.capacity_bytes();
  info.block_size = head.block_size();
  info.preferred_block_size = std::max<std::uint32_t>(4096, head.block_size());
  info.max_payload = nbd::spec::kDefaultMaxPayload;
  info.read_only = settings_.read_only;
  // Every path of a head reaches one volume behind one cache: a flush through any path, so on any connection, covers
  // the writes completed on every other, which is what NBD protocol "Flags" asks of an export that can multi-conn.
  info.multi_conn = true;
  // Both personalities carry discard (UNMAP / Dataset Management) and zeroing (WRITE SAME / Write Zeroes).
  info.trim = true;
  info.write_zeroes = true;
  return info;
}

std::vector<nbd::ExportInfo> FabricExports::List() const {
  std::vector<nbd::ExportInfo> exports;
  for (const Named& named : LiveHeads()) exports.push_back(InfoOf(named));
  return exports;
}

std::optional<nbd::Export> FabricExports::Find(std::string_view name) const {
  std::vector<Named> heads = LiveHeads();
  const Named* found = nullptr;
  if (name.empty()) {
    if (!settings_.default_export.empty()) return Find(settings_.default_export);
    // With one head there is no choice to make for the client.
    if (heads.size() == 1) found = &heads.front();
  } else {
    // An export's own name (alias, else identity) and the identity first: an alias may look like another head's name.
    for (const Named& named : heads) {
      if (named.name == name || named.head->identity().str() == name) {
        found = &named;
        break;
      }
    }
    if (found == nullptr) {
      for (const Named& named : heads) {
        if (named.head->name() == name) {
          found = &named;
          break;
        }
      }
    }
  }
  if (found == nullptr) return std::nullopt;
  return nbd::Export{InfoOf(*found), found->head};
}

nbd::NbdServerOptions ToServerOptions(const ExportSettings& settings) {
  nbd::NbdServerOptions options;
  options.unix_path = settings.unix_socket;
  if (settings.tcp_port) options.tcp = nbd::NbdServerOptions::Tcp{settings.tcp_address, *settings.tcp_port};
  options.max_connections = settings.max_connections;
  options.requests_per_connection = settings.queue_depth;
  return options;
}

Result<std::unique_ptr<nbd::NbdServer>> StartExportServer(Fabric& fabric, const nbd::ExportCatalog& catalog,
                                                          const ExportSettings& settings) {
  nbd::NbdServerOptions options = ToServerOptions(settings);
  if (!options.unix_path.empty()) {
    // The default place, /run/mpath, may not exist yet on a fresh machine.
    const std::filesystem::path parent = std::filesystem::path(options.unix_path).parent_path();
    std::error_code error;
    if (!parent.empty() && !std::filesystem::is_directory(parent, error)) {
      std::filesystem::create_directories(parent, error);
      if (error) {
        return MakeError(Errc::kInvalidArgument,
                         fmt::format("cannot create {}: {}", parent.string(), error.message()));
      }
    }
  }
  std::vector<EventLoop*> io_loops;
  for (std::size_t i = 0; i < fabric.io_threads(); ++i) io_loops.push_back(&fabric.io_loop(i));
  return nbd::NbdServer::Start(catalog, fabric.control_loop(), std::move(io_loops), std::move(options));
}

}  // namespace mpath::daemon
