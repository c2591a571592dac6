// What the NBD server serves: exports, each one a multipath head, described by whoever owns the heads (the daemon).
// The server asks the catalog at every handshake, so exports appear and disappear with heads without telling it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mpath/core/head.h"
#include "mpath/nbd/spec.h"

namespace mpath::nbd {

// One export as a client sees it.
struct ExportInfo {
  std::string name;                        // what clients ask for: the head's alias, else its identity
  std::string description;                 // one line for `nbdinfo --list`
  std::uint64_t size_bytes = 0;
  std::uint32_t block_size = 512;          // minimum block size: the head's logical block; I/O must be aligned to it
  std::uint32_t preferred_block_size = 4096;
  std::uint32_t max_payload = spec::kDefaultMaxPayload;
  bool read_only = false;
  // Every path of a head reaches one volume with one cache, so a flush on any connection covers the writes completed
  // on every other: multi-connection clients are safe.
  bool multi_conn = true;
  bool trim = true;
  bool write_zeroes = true;

  // The transmission flags this export advertises (spec::kTx*).
  [[nodiscard]] std::uint16_t TransmissionFlags() const;
};

// One export with the head that serves it.
struct Export {
  ExportInfo info;
  std::shared_ptr<Head> head;  // may be null in tests that only negotiate
};

// Threading: every method is safe from any thread; connections on every I/O loop ask it.
class ExportCatalog {
 public:
  virtual ~ExportCatalog() = default;
  // Every export that exists now, in a stable order.
  [[nodiscard]] virtual std::vector<ExportInfo> List() const = 0;
  // The export called `name` (an empty name asks for the default export); nullopt when there is none now.
  [[nodiscard]] virtual std::optional<Export> Find(std::string_view name) const = 0;
};

}  // namespace mpath::nbd
