// The handshake phase of one NBD connection (NBD protocol "Fixed newstyle negotiation" and "Option types") as a pure
// state machine: bytes in, replies out, no socket. The connection feeds it what arrives; tests and the fuzzer feed it
// whatever they like.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mpath/nbd/export.h"

namespace mpath::nbd {

struct NegotiationLimits {
  // Option data longer than this is skipped as it arrives and answered NBD_REP_ERR_TOO_BIG; it is never buffered.
  std::size_t max_option_length = 64 * 1024;
  // Options after which a client still haggling is dropped (a client looping on NBD_OPT_LIST must not keep a slot).
  std::size_t max_options = 1024;
};

// What the handshake agreed, once it reached transmission.
struct Negotiated {
  Export chosen;
  bool structured_replies = false;  // NBD_OPT_STRUCTURED_REPLY was acknowledged
  bool block_size_agreed = false;   // the client asked for NBD_INFO_BLOCK_SIZE in NBD_OPT_GO
};

// Threading: thread-confined (one connection's loop).
class Negotiation {
 public:
  enum class State : std::uint8_t {
    kClientFlags,    // greeting sent; waiting for the client's 32-bit flags
    kOptions,        // option haggling
    kTransmission,   // NBD_OPT_GO or NBD_OPT_EXPORT_NAME succeeded; negotiated() is valid
    kClosed,         // NBD_OPT_ABORT, or a violation the protocol answers by closing; close_reason() says which
  };

  Negotiation(const ExportCatalog& catalog, NegotiationLimits limits = {});

  // Appends the server's greeting (spec::Greeting) to `out`. Call once, first.
  void Start(std::vector<std::byte>& out);

  // Consumes as many whole messages of `in` as it holds (and option data being skipped), appends every reply to
  // `out`, and returns how many bytes it consumed. The caller keeps the rest and offers it again with more bytes.
  // Consumes nothing once the state is kTransmission or kClosed: bytes after the final option belong to the
  // transmission phase.
  std::size_t Consume(std::span<const std::byte> in, std::vector<std::byte>& out);

  [[nodiscard]] State state() const { return state_; }
  [[nodiscard]] const Negotiated& negotiated() const { return negotiated_; }
  [[nodiscard]] const std::string& close_reason() const { return close_reason_; }

 private:
  void ConsumeClientFlags(std::uint32_t flags);
  // Consumes one option (or a piece of the over-long data being skipped); 0 when `in` holds too little, or when
  // the option closed the connection.
  std::size_t ConsumeOption(std::span<const std::byte> in, std::vector<std::byte>& out);
  void HandleOption(std::uint32_t option, std::span<const std::byte> data, std::vector<std::byte>& out);
  void HandleExportName(std::span<const std::byte> name, std::vector<std::byte>& out);
  void HandleList(std::uint32_t option, std::span<const std::byte> data, std::vector<std::byte>& out);
  void HandleInfoOrGo(std::uint32_t option, std::span<const std::byte> data, std::vector<std::byte>& out);
  void HandleMetaContext(std::uint32_t option, std::span<const std::byte> data, std::vector<std::byte>& out);
  // The export's transmission flags as this connection may see them.
  [[nodiscard]] std::uint16_t AdvertisedFlags(const ExportInfo& info) const;
  void Close(std::string reason);

  const ExportCatalog& catalog_;
  const NegotiationLimits limits_;
  State state_ = State::kClientFlags;
  Negotiated negotiated_;
  std::string close_reason_;
  bool client_no_zeroes_ = false;
  std::size_t options_seen_ = 0;
  std::uint32_t skipping_option_ = 0;    // the option whose over-long data is being skipped
  std::uint64_t skip_remaining_ = 0;     // bytes of it still to skip
};

}  // namespace mpath::nbd
