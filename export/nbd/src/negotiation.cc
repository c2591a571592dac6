#include "mpath/nbd/negotiation.h"

#include <algorithm>
#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "mpath/proto/wire.h"

namespace mpath::nbd {
namespace {

using spec::Option;
using spec::OptionReply;

constexpr std::uint32_t kKnownClientFlags = spec::kClientFlagFixedNewstyle | spec::kClientFlagNoZeroes;

void AppendBytes(std::vector<std::byte>& out, std::span<const std::byte> bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}

void AppendText(std::vector<std::byte>& out, std::string_view text) {
  AppendBytes(out, std::as_bytes(std::span(text.data(), text.size())));
}

template <wire::WireStruct T>
void AppendStruct(std::vector<std::byte>& out, const T& value) {
  AppendBytes(out, wire::BytesOf(value));
}

void AppendReplyHeader(std::vector<std::byte>& out, std::uint32_t option, OptionReply type, std::size_t length) {
  spec::OptionReplyHeader header;
  header.magic = spec::kOptionReplyMagic;
  header.option = option;
  header.reply_type = static_cast<std::uint32_t>(type);
  header.length = static_cast<std::uint32_t>(length);
  AppendStruct(out, header);
}

void AppendAck(std::vector<std::byte>& out, std::uint32_t option) {
  AppendReplyHeader(out, option, OptionReply::kAck, 0);
}

// NBD protocol "Option reply types": any error reply may carry a message for the user, so each one says what was
// wrong rather than leaving the client to guess from the code alone.
void AppendError(std::vector<std::byte>& out, std::uint32_t option, OptionReply type, std::string_view message) {
  message = message.substr(0, spec::kMaxStringLength);
  AppendReplyHeader(out, option, type, message.size());
  AppendText(out, message);
}

// A client-chosen name quoted in a message: the message must be a valid UTF-8 string, the name need not be, so
// anything but printable ASCII is shown as '?', and a long name is cut.
std::string Quote(std::span<const std::byte> name) {
  constexpr std::size_t kMaxQuoted = 64;
  std::string quoted = "'";
  for (std::size_t i = 0; i < name.size() && i < kMaxQuoted; ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    quoted.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  if (name.size() > kMaxQuoted) quoted += "...";
  quoted += "'";
  return quoted;
}

std::string_view AsText(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// Reads the option data field by field; every read fails once the data runs out, so a malformed option is caught
// wherever it lies.
class DataReader {
 public:
  explicit DataReader(std::span<const std::byte> data) : data_(data) {}

  template <wire::WireStruct T>
  std::optional<T> Read() {
    auto value = wire::Load<T>(data_, pos_);
    if (value) pos_ += sizeof(T);
    return value;
  }
  std::optional<std::span<const std::byte>> ReadBytes(std::size_t n) {
    if (n > data_.size() - pos_) return std::nullopt;
    auto bytes = data_.subspan(pos_, n);
    pos_ += n;
    return bytes;
  }
  [[nodiscard]] std::size_t remaining() const { return data_.size() - pos_; }

 private:
  std::span<const std::byte> data_;
  std::size_t pos_ = 0;
};

// NBD protocol "NBD_OPT_LIST_META_CONTEXT" / "NBD_OPT_SET_META_CONTEXT" data: an export name, a query count and
// that many length-prefixed queries, filling the option exactly. Returns what is wrong with it, or nullopt.
std::optional<std::string> MetaContextShapeError(std::span<const std::byte> data) {
  DataReader reader(data);
  auto name_length = reader.Read<wire::Be32>();
  if (!name_length) return "the option data is too short for the export name length";
  if (name_length->value() > spec::kMaxStringLength) {
    return fmt::format("export name of {} bytes is longer than {}", name_length->value(), spec::kMaxStringLength);
  }
  if (!reader.ReadBytes(name_length->value())) return "the export name runs past the option data";
  auto count = reader.Read<wire::Be32>();
  if (!count) return "the option data is too short for the number of queries";
  for (std::uint32_t i = 0; i < count->value(); ++i) {
    auto query_length = reader.Read<wire::Be32>();
    if (!query_length) return fmt::format("the option data ends before query {} of {}", i + 1, count->value());
    if (query_length->value() > spec::kMaxStringLength) {
      return fmt::format("query {} of {} bytes is longer than {}", i + 1, query_length->value(),
                         spec::kMaxStringLength);
    }
    if (!reader.ReadBytes(query_length->value())) return fmt::format("query {} runs past the option data", i + 1);
  }
  if (reader.remaining() != 0) {
    return fmt::format("{} bytes follow the last query", reader.remaining());
  }
  return std::nullopt;
}

}  // namespace

Negotiation::Negotiation(const ExportCatalog& catalog, NegotiationLimits limits)
    : catalog_(catalog), limits_(limits) {}

void Negotiation::Start(std::vector<std::byte>& out) {
  spec::Greeting greeting;
  greeting.nbd_magic = spec::kNbdMagic;
  greeting.ihaveopt = spec::kIHaveOpt;
  greeting.handshake_flags = static_cast<std::uint16_t>(spec::kFlagFixedNewstyle | spec::kFlagNoZeroes);
  AppendStruct(out, greeting);
}

std::size_t Negotiation::Consume(std::span<const std::byte> in, std::vector<std::byte>& out) {
  std::size_t consumed = 0;
  if (state_ == State::kClientFlags) {
    auto flags = wire::Load<wire::Be32>(in);
    if (!flags) return 0;
    consumed += sizeof(wire::Be32);
    ConsumeClientFlags(flags->value());
  }
  while (state_ == State::kOptions) {
    std::size_t used = ConsumeOption(in.subspan(consumed), out);
    if (used == 0) break;
    consumed += used;
  }
  return consumed;
}

void Negotiation::ConsumeClientFlags(std::uint32_t flags) {
  // NBD protocol "Client flags": a flag the server does not know means the client expects something it will not
  // get, so the connection is dropped. Clients that do not claim fixed newstyle are too old for NBD_OPT_GO.
  if ((flags & ~kKnownClientFlags) != 0) {
    Close(fmt::format("client flags {:#010x} set unknown bits {:#010x}", flags, flags & ~kKnownClientFlags));
    return;
  }
  if ((flags & spec::kClientFlagFixedNewstyle) == 0) {
    Close(fmt::format("client flags {:#010x} lack NBD_FLAG_C_FIXED_NEWSTYLE", flags));
    return;
  }
  client_no_zeroes_ = (flags & spec::kClientFlagNoZeroes) != 0;
  state_ = State::kOptions;
}

std::size_t Negotiation::ConsumeOption(std::span<const std::byte> in, std::vector<std::byte>& out) {
  if (skip_remaining_ > 0) {
    // Over-long option data is dropped as it arrives so that a client cannot make the server hold it.
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(skip_remaining_, in.size()));
    skip_remaining_ -= n;
    if (skip_remaining_ == 0) {
      AppendError(out, skipping_option_, OptionReply::kErrTooBig,
                  fmt::format("option {} carried more than {} bytes of data", skipping_option_,
                              limits_.max_option_length));
    }
    return n;
  }

  auto header = wire::Load<spec::OptionHeader>(in);
  if (!header) return 0;
  if (header->magic.value() != spec::kIHaveOpt) {
    Close(fmt::format("option magic {:#018x} is not IHAVEOPT", header->magic.value()));
    return 0;
  }
  const std::uint32_t option = header->option.value();
  const std::uint32_t length = header->length.value();
  if (options_seen_ >= limits_.max_options) {
    Close(fmt::format("more than {} options without choosing an export", limits_.max_options));
    return 0;
  }
  if (option == static_cast<std::uint32_t>(Option::kAbort)) {
    // NBD protocol "NBD_OPT_ABORT": any data is ignored, so there is no need to wait for it.
    ++options_seen_;
    AppendAck(out, option);
    Close("client aborted");
    return sizeof(spec::OptionHeader);
  }
  if (option == static_cast<std::uint32_t>(Option::kExportName) &&
      length > std::min<std::size_t>(spec::kMaxStringLength, limits_.max_option_length)) {
    // NBD protocol "NBD_OPT_EXPORT_NAME" has no error reply: an export name no server can hold ends the session.
    Close(fmt::format("NBD_OPT_EXPORT_NAME with a name of {} bytes (at most {})", length, spec::kMaxStringLength));
    return 0;
  }
  if (length > limits_.max_option_length) {
    ++options_seen_;
    skipping_option_ = option;
    skip_remaining_ = length;
    return sizeof(spec::OptionHeader);
  }
  if (in.size() - sizeof(spec::OptionHeader) < length) return 0;
  ++options_seen_;
  HandleOption(option, in.subspan(sizeof(spec::OptionHeader), length), out);
  return sizeof(spec::OptionHeader) + length;
}

void Negotiation::HandleOption(std::uint32_t option, std::span<const std::byte> data, std::vector<std::byte>& out) {
  switch (static_cast<Option>(option)) {
    case Option::kExportName:
      HandleExportName(data, out);
      return;
    case Option::kList:
      HandleList(option, data, out);
      return;
    case Option::kInfo:
    case Option::kGo:
      HandleInfoOrGo(option, data, out);
      return;
    case Option::kStructuredReply:
      if (!data.empty()) {
        AppendError(out, option, OptionReply::kErrInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data");
        return;
      }
      negotiated_.structured_replies = true;
      AppendAck(out, option);
      return;
    case Option::kListMetaContext:
    case Option::kSetMetaContext:
      HandleMetaContext(option, data, out);
      return;
    case Option::kStartTls:
      // NBD protocol "NOTLS mode": a server without TLS answers NBD_REP_ERR_UNSUP (it does not know the option at
      // all; NBD_REP_ERR_POLICY would claim TLS is merely switched off).
      AppendError(out, option, OptionReply::kErrUnsupported, "this server does not support TLS");
      return;
    default:
      // NBD_OPT_EXTENDED_HEADERS, the withdrawn NBD_OPT_PEEK_EXPORT and anything newer.
      AppendError(out, option, OptionReply::kErrUnsupported, fmt::format("option {} is not supported", option));
      return;
  }
}

void Negotiation::HandleExportName(std::span<const std::byte> name, std::vector<std::byte>& out) {
  auto found = catalog_.Find(AsText(name));
  if (!found) {
    Close(name.empty() ? std::string("NBD_OPT_EXPORT_NAME asked for the default export; there is none")
                       : fmt::format("NBD_OPT_EXPORT_NAME asked for unknown export {}", Quote(name)));
    return;
  }
  spec::ExportNameReply reply;
  reply.export_size = found->info.size_bytes;
  reply.transmission_flags = AdvertisedFlags(found->info);
  AppendStruct(out, reply);
  if (!client_no_zeroes_) out.insert(out.end(), spec::kExportNameReplyPadding, std::byte{0});
  negotiated_.chosen = std::move(*found);
  negotiated_.block_size_agreed = false;
  state_ = State::kTransmission;
}

void Negotiation::HandleList(std::uint32_t option, std::span<const std::byte> data, std::vector<std::byte>& out) {
  if (!data.empty()) {
    AppendError(out, option, OptionReply::kErrInvalid, "NBD_OPT_LIST takes no data");
    return;
  }
  for (const ExportInfo& info : catalog_.List()) {
    // NBD protocol "NBD_REP_SERVER": whatever follows the name is free text for a human; nbdinfo shows it as the
    // description.
    const std::size_t length = sizeof(wire::Be32) + info.name.size() + info.description.size();
    AppendReplyHeader(out, option, OptionReply::kServer, length);
    AppendStruct(out, wire::Be32(static_cast<std::uint32_t>(info.name.size())));
    AppendText(out, info.name);
    AppendText(out, info.description);
  }
  AppendAck(out, option);
}

void Negotiation::HandleInfoOrGo(std::uint32_t option, std::span<const std::byte> data, std::vector<std::byte>& out) {
  const std::string_view what = option == static_cast<std::uint32_t>(Option::kGo) ? "NBD_OPT_GO" : "NBD_OPT_INFO";
  auto invalid = [&](std::string_view message) {
    AppendError(out, option, OptionReply::kErrInvalid, fmt::format("{}: {}", what, message));
  };
  // NBD protocol "NBD_OPT_INFO and NBD_OPT_GO": name length, name, request count, requests; nothing else.
  DataReader reader(data);
  auto name_length = reader.Read<wire::Be32>();
  if (!name_length || data.size() < sizeof(wire::Be32) + sizeof(wire::Be16)) {
    return invalid(fmt::format("{} bytes of data is shorter than the 6 a request needs", data.size()));
  }
  if (name_length->value() > spec::kMaxStringLength) {
    return invalid(fmt::format("export name of {} bytes is longer than {}", name_length->value(),
                               spec::kMaxStringLength));
  }
  auto name = reader.ReadBytes(name_length->value());
  auto count = reader.Read<wire::Be16>();
  if (!name || !count) {
    return invalid(fmt::format("export name of {} bytes does not fit {} bytes of data", name_length->value(),
                               data.size()));
  }
  if (reader.remaining() != std::size_t{count->value()} * sizeof(wire::Be16)) {
    return invalid(fmt::format("{} information requests need {} bytes, {} follow", count->value(),
                               std::size_t{count->value()} * sizeof(wire::Be16), reader.remaining()));
  }
  bool want_name = false;
  bool want_description = false;
  bool want_block_size = false;
  for (std::uint16_t i = 0; i < count->value(); ++i) {
    // Unknown information types are ignored, as the protocol requires.
    switch (static_cast<spec::InfoType>(reader.Read<wire::Be16>()->value())) {
      case spec::InfoType::kName: want_name = true; break;
      case spec::InfoType::kDescription: want_description = true; break;
      case spec::InfoType::kBlockSize: want_block_size = true; break;
      default: break;
    }
  }

  auto found = catalog_.Find(AsText(*name));
  if (!found) {
    AppendError(out, option, OptionReply::kErrUnknown,
                name->empty() ? std::string("there is no default export: name one of the exports NBD_OPT_LIST shows")
                              : fmt::format("there is no export named {}", Quote(*name)));
    return;
  }
  const ExportInfo& info = found->info;

  spec::InfoExport export_info;
  export_info.type = static_cast<std::uint16_t>(spec::InfoType::kExport);
  export_info.export_size = info.size_bytes;
  export_info.transmission_flags = AdvertisedFlags(info);
  AppendReplyHeader(out, option, OptionReply::kInfo, sizeof(export_info));
  AppendStruct(out, export_info);
  auto append_text_info = [&](spec::InfoType type, std::string_view text) {
    AppendReplyHeader(out, option, OptionReply::kInfo, sizeof(wire::Be16) + text.size());
    AppendStruct(out, wire::Be16(static_cast<std::uint16_t>(type)));
    AppendText(out, text);
  };
  if (want_name) append_text_info(spec::InfoType::kName, info.name);
  if (want_description) append_text_info(spec::InfoType::kDescription, info.description);
  // NBD protocol "Size constraints": a head's logical block is usually larger than the default minimum of 1, and a
  // server with constraints beyond the defaults must advertise them, asked or not.
  spec::InfoBlockSize block_size;
  block_size.type = static_cast<std::uint16_t>(spec::InfoType::kBlockSize);
  block_size.minimum_block_size = info.block_size;
  block_size.preferred_block_size = info.preferred_block_size;
  block_size.maximum_payload = info.max_payload;
  AppendReplyHeader(out, option, OptionReply::kInfo, sizeof(block_size));
  AppendStruct(out, block_size);
  AppendAck(out, option);

  if (option == static_cast<std::uint32_t>(Option::kGo)) {
    negotiated_.chosen = std::move(*found);
    negotiated_.block_size_agreed = want_block_size;
    state_ = State::kTransmission;
  }
}

void Negotiation::HandleMetaContext(std::uint32_t option, std::span<const std::byte> data,
                                    std::vector<std::byte>& out) {
  const bool set = option == static_cast<std::uint32_t>(Option::kSetMetaContext);
  const std::string_view what = set ? "NBD_OPT_SET_META_CONTEXT" : "NBD_OPT_LIST_META_CONTEXT";
  // NBD protocol "NBD_OPT_SET_META_CONTEXT": selecting contexts needs structured replies first. Listing only
  // should, so it is answered either way.
  if (set && !negotiated_.structured_replies) {
    AppendError(out, option, OptionReply::kErrInvalid,
                fmt::format("{} needs NBD_OPT_STRUCTURED_REPLY first", what));
    return;
  }
  if (auto error = MetaContextShapeError(data)) {
    AppendError(out, option, OptionReply::kErrInvalid, fmt::format("{}: {}", what, *error));
    return;
  }
  // No metadata context is served (not even base:allocation), so every query matches nothing: a lone ACK is the
  // protocol's answer both for listing and for selecting.
  AppendAck(out, option);
}

std::uint16_t Negotiation::AdvertisedFlags(const ExportInfo& info) const {
  std::uint16_t flags = info.TransmissionFlags();
  // NBD protocol "Transmission flags": NBD_FLAG_SEND_DF must stay clear unless structured replies were negotiated.
  if (!negotiated_.structured_replies) flags &= static_cast<std::uint16_t>(~spec::kTxSendDf);
  return flags;
}

void Negotiation::Close(std::string reason) {
  close_reason_ = std::move(reason);
  state_ = State::kClosed;
}

}  // namespace mpath::nbd
