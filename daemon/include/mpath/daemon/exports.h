// The fabric's heads as NBD exports: one export per head, named by its [[device]] alias, else by its identity. A client
// may also ask for a head by its name (mpath0) or its identity when it has an alias. The catalog reads the fabric at
// every question, so an export appears when its head is made and disappears when its head is removed.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mpath/core/error.h"
#include "mpath/daemon/config.h"
#include "mpath/daemon/fabric.h"
#include "mpath/nbd/export.h"
#include "mpath/nbd/server.h"

namespace mpath::daemon {

// Threading: every method is safe from any thread, the fabric's loops included: it reads only the fabric's registry
// (safe anywhere, never waiting for the control loop) and what the constructor gathered.
class FabricExports final : public nbd::ExportCatalog {
 public:
  // `fabric` must outlive the catalog.
  FabricExports(const Fabric& fabric, ExportSettings settings);

  [[nodiscard]] std::vector<nbd::ExportInfo> List() const override;
  [[nodiscard]] std::optional<nbd::Export> Find(std::string_view name) const override;

 private:
  // The live heads (not removed), with their export names.
  struct Named {
    std::shared_ptr<Head> head;
    std::string name;  // alias, else identity
  };
  [[nodiscard]] std::vector<Named> LiveHeads() const;
  [[nodiscard]] nbd::ExportInfo InfoOf(const Named& named) const;
  // "<vendor> <product>" of the head, when the constructor saw it; "" otherwise.
  [[nodiscard]] std::string ModelOf(const Head& head) const;

  // Constant after construction.
  const Fabric& fabric_;
  const ExportSettings settings_;
  std::map<std::string, std::string, std::less<>> models_;  // by identity
};

// The server options [export] asks for.
[[nodiscard]] nbd::NbdServerOptions ToServerOptions(const ExportSettings& settings);

// Starts the NBD server of a built fabric: accepts on the control loop, serves on the I/O loops. Creates the unix
// socket's directory when it is missing.
[[nodiscard]] Result<std::unique_ptr<nbd::NbdServer>> StartExportServer(Fabric& fabric, const nbd::ExportCatalog& catalog,
                                                                        const ExportSettings& settings);

}  // namespace mpath::daemon
