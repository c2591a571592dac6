#include "mpath/daemon/config.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include <arpa/inet.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>

#include "mpath/nbd/spec.h"
#include "mpath/scsi/alua_engine.h"
#include "text_file.h"

namespace mpath::daemon {

Result<HeadOptions> HeadSettings::ApplyTo(HeadOptions base) const {
  if (iopolicy) base.policy = *iopolicy;
  if (delayed_removal_secs) {
    base.delayed_removal = MPATH_TRY(SecondsToDuration(*delayed_removal_secs, "delayed_removal_secs"));
  }
  // Applied after delayed_removal_secs so that the order of keys in a file never changes what "false" means.
  if (queue_if_no_path.has_value() && !*queue_if_no_path) base.delayed_removal = Nanos(0);
  if (write_quiesce_secs) {
    base.write_quiesce_delay = MPATH_TRY(SecondsToDuration(*write_quiesce_secs, "write_quiesce_secs"));
  }
  if (max_same_path_retries) base.max_same_path_retries = *max_same_path_retries;
  if (marginal_window) base.marginal.window = *marginal_window;
  if (marginal_error_threshold) base.marginal.error_threshold = *marginal_error_threshold;
  if (marginal_latency_factor) base.marginal.latency_factor = *marginal_latency_factor;
  if (marginal_probe_interval_secs) {
    base.marginal.probe_interval =
        MPATH_TRY(SecondsToDuration(*marginal_probe_interval_secs, "marginal probe_interval_secs"));
  }
  if (marginal_probes_to_reinstate) base.marginal.probes_to_reinstate = *marginal_probes_to_reinstate;
  MPATH_TRY(base.Validate());
  return base;
}

Result<RegistryOptions> Config::ToRegistryOptions() const {
  RegistryOptions options;
  options.opt_in.mode = multipath;
  options.opt_in.opted_out_transports = opted_out_transports;
  options.head = MPATH_TRY(defaults.ApplyTo(HeadOptions{}));
  MPATH_TRY(options.Validate());
  return options;
}

namespace {

bool MatchTakes(std::string_view match, std::string_view identity) {
  if (match.empty()) return false;
  if (match.back() == '*') return identity.starts_with(match.substr(0, match.size() - 1));
  return match == identity;
}

}  // namespace

const DeviceSettings* Config::DeviceFor(std::string_view identity) const {
  for (const DeviceSettings& device : devices) {
    if (MatchTakes(device.match, identity)) return &device;
  }
  return nullptr;
}

namespace {

using KeyList = std::span<const std::string_view>;

constexpr std::string_view kTopLevelKeys[] = {"defaults", "device", "host", "export", "sim"};
constexpr std::string_view kDefaultsKeys[] = {
    "multipath", "iopolicy", "delayed_removal_secs", "queue_if_no_path", "write_quiesce_secs",
    "max_same_path_retries", "opt_out_transports", "alua", "marginal"};
constexpr std::string_view kDeviceKeys[] = {
    "match", "alias", "iopolicy", "delayed_removal_secs", "queue_if_no_path", "write_quiesce_secs",
    "max_same_path_retries", "marginal"};
constexpr std::string_view kMarginalKeys[] = {"window", "error_threshold", "latency_factor", "probe_interval_secs",
                                              "probes_to_reinstate"};
constexpr std::string_view kHostKeys[] = {"iscsi_initiator", "nvme_host_nqn", "nvme_host_id"};
constexpr std::string_view kExportKeys[] = {"enabled", "unix_socket", "tcp_port", "tcp_address", "read_only",
                                            "default_export", "max_connections", "queue_depth"};
constexpr std::string_view kSimKeys[] = {"seed", "scsi_array", "nvme_subsystem", "path"};
constexpr std::string_view kArrayKeys[] = {"name", "vendor", "product", "alua", "transition_secs", "port_group", "lu"};
constexpr std::string_view kPortGroupKeys[] = {"id", "state", "preferred", "ports"};
constexpr std::string_view kLuKeys[] = {"lun", "size_mib", "block_size", "naa", "serial"};
constexpr std::string_view kSubsystemKeys[] = {"name", "nqn", "ports", "anatt_secs", "namespace", "ana"};
constexpr std::string_view kNamespaceKeys[] = {"nsid", "size_mib", "block_size", "nguid", "ana_group"};
constexpr std::string_view kAnaKeys[] = {"port", "group", "state"};
constexpr std::string_view kPathKeys[] = {"name", "target", "port", "latency_ms"};

constexpr std::string_view kArrayAluaNames[] = {"none", "implicit", "explicit", "both"};  // index = TPGS value
constexpr std::string_view kPortGroupStates[] = {"active/optimized", "active/non-optimized", "standby",
                                                 "unavailable", "offline"};
constexpr std::string_view kAnaStates[] = {"optimized", "non-optimized", "inaccessible", "persistent-loss", "change"};

// Limits the simulated devices impose (proto/*/fake), checked here so that the error points into the file.
constexpr std::int64_t kMaxLun = 16383;          // SAM-5 single-level LUN, flat addressing
constexpr std::int64_t kMaxNsid = 1024;          // nvme::fake::SubsystemConfig::max_namespaces
constexpr std::int64_t kMaxAnaGroup = 128;       // nvme::fake::SubsystemConfig::anagrpmax
constexpr std::int64_t kMaxSizeMib = 1LL << 40;  // sparse stores; bounded only so that sizes in bytes never overflow
constexpr double kMaxLatencyMs = 60'000;         // beyond any command timeout: the path would only time out
constexpr std::size_t kMaxNameLength = 64;
constexpr std::size_t kMaxNqnLength = 223;       // NVMe: an NQN is at most 223 bytes; iSCSI names as well
constexpr std::size_t kMaxUnixPath = 107;        // sockaddr_un::sun_path, less its terminating NUL
constexpr std::int64_t kMaxExportLimit = 4096;   // max_connections and queue_depth: far beyond any real client
// A default export must be a name a client could send (NBD protocol "Conventions": strings of at most 4096 bytes).
constexpr std::size_t kMaxExportName = nbd::spec::kMaxStringLength;

std::string_view TypeName(toml::node_type type) {
  switch (type) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

std::string JoinKeys(KeyList keys) { return fmt::format("{}", fmt::join(keys, ", ")); }

bool Contains(KeyList keys, std::string_view key) { return std::find(keys.begin(), keys.end(), key) != keys.end(); }

// Names refer to each other (paths to targets) and are typed on command lines (`mpath inject array0 ...`): plain
// characters only, so that no name needs quoting and none can be confused with a key=value argument.
bool IsPlainName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

bool IsPrintableAscii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c <= 0x7E; });
}

// An NQN or an iSCSI name: a known prefix, then printable characters without spaces.
bool IsQualifiedName(std::string_view name, std::initializer_list<std::string_view> prefixes) {
  const bool prefixed = std::any_of(prefixes.begin(), prefixes.end(), [&](std::string_view prefix) {
    return name.size() > prefix.size() && name.starts_with(prefix);
  });
  return prefixed && name.size() <= kMaxNqnLength && IsPrintableAscii(name) && name.find(' ') == name.npos;
}

constexpr std::string_view kNqnForm = "nqn.YYYY-MM.reversed.domain:name";

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Exactly 32 hex digits, or a UUID's 8-4-4-4-12 when `uuid`.
std::optional<std::array<std::uint8_t, 16>> ParseHex16(std::string_view text, bool uuid) {
  std::array<std::uint8_t, 16> out{};
  std::size_t digits = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (uuid && (i == 8 || i == 13 || i == 18 || i == 23)) {
      if (text[i] != '-') return std::nullopt;
      continue;
    }
    const int v = HexDigit(text[i]);
    if (v < 0 || digits == 32) return std::nullopt;
    out[digits / 2] = static_cast<std::uint8_t>(out[digits / 2] | (digits % 2 == 0 ? v << 4 : v));
    ++digits;
  }
  if (digits != 32 || (uuid && text.size() != 36)) return std::nullopt;
  return out;
}

bool IsAllZero(const std::array<std::uint8_t, 16>& bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

std::string Escaped(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c >= 0x20 && c != 0x7F) {
      out += c;
    } else {
      fmt::format_to(std::back_inserter(out), "\\x{:02x}", static_cast<unsigned char>(c));
    }
  }
  return out;
}

// A value from the file as a message quotes it: cut short, so that a hostile value cannot bloat the message.
std::string Shown(std::string_view text) {
  constexpr std::size_t kMaxShown = 80;
  return text.size() > kMaxShown ? std::string(text.substr(0, kMaxShown)) + "..." : std::string(text);
}

std::string Hex(const std::array<std::uint8_t, 16>& bytes) {
  std::string out;
  for (std::uint8_t b : bytes) fmt::format_to(std::back_inserter(out), "{:02x}", b);
  return out;
}

// One table of the file as the parser walks it: the table, its name in messages ("sim.scsi_array[0].lu[1]") and
// its place in the format ("sim.scsi_array.lu"), from which the header it is written with follows.
struct Table {
  const toml::table& node;
  std::string name;
  std::string schema;
  bool array_element = false;

  [[nodiscard]] std::string Key(std::string_view key) const {
    return name.empty() ? std::string(key) : fmt::format("{}.{}", name, key);
  }
  [[nodiscard]] std::string SchemaKey(std::string_view key) const {
    return schema.empty() ? std::string(key) : fmt::format("{}.{}", schema, key);
  }
  // Where `key`'s value is, or where the table is when the key is absent (a default was taken).
  [[nodiscard]] const toml::source_region& SourceOf(std::string_view key) const {
    const toml::node* value = node.get(key);
    return value != nullptr ? value->source() : node.source();
  }
  [[nodiscard]] std::string Header() const {
    if (schema.empty()) return "the top level";
    return array_element ? fmt::format("[[{}]]", schema) : fmt::format("[{}]", schema);
  }
};

// Reads one document. Every method fails with "<file>:<line>:<column>: <key>: <what>" at the first problem.
// Threading: one parse on one thread.
class Parser {
 public:
  explicit Parser(std::string_view file) : file_(file) {}

  Result<Config> Parse(const toml::table& root, std::span<const std::string_view> foreign_tables);

 private:
  [[nodiscard]] std::string Where(const toml::source_region& at) const {
    return fmt::format("{}:{}:{}", file_, at.begin.line, at.begin.column);
  }
  [[nodiscard]] std::string Line(const toml::source_region& at) const {
    return fmt::format("{}:{}", file_, at.begin.line);
  }
  // Messages from the core quote values as they are; escaping here keeps every message on one line.
  [[nodiscard]] std::unexpected<Error> Fail(const toml::source_region& at, std::string_view what) const {
    return std::unexpected(Error(Errc::kInvalidArgument, fmt::format("{}: {}", Where(at), Escaped(what))));
  }
  [[nodiscard]] std::unexpected<Error> Fail(const toml::node& at, std::string_view key, std::string_view what) const {
    return Fail(at.source(), fmt::format("{}: {}", key, what));
  }
  [[nodiscard]] std::unexpected<Error> WrongType(const toml::node& at, std::string_view key,
                                                 std::string_view expected) const {
    return Fail(at, key, fmt::format("expected {}, got {}", expected, TypeName(at.type())));
  }

  Result<void> CheckKeys(const Table& table, KeyList allowed,
                         std::span<const std::string_view> skipped = {}) const;

  // Each returns nullopt when the key is absent and fails when it is present with the wrong type or out of range.
  Result<std::optional<std::string>> String(const Table& t, std::string_view key) const;
  Result<std::optional<std::int64_t>> Integer(const Table& t, std::string_view key, std::int64_t min,
                                              std::int64_t max) const;
  Result<std::optional<double>> Number(const Table& t, std::string_view key) const;
  Result<std::optional<bool>> Boolean(const Table& t, std::string_view key) const;
  Result<std::optional<std::vector<std::string>>> StringArray(const Table& t, std::string_view key) const;
  Result<std::optional<std::vector<std::int64_t>>> IntegerArray(const Table& t, std::string_view key,
                                                                std::int64_t min, std::int64_t max) const;
  Result<std::optional<Table>> SubTable(const Table& t, std::string_view key) const;
  Result<std::vector<Table>> TableArray(const Table& t, std::string_view key) const;
  // A string that must be one of `choices`; returns its index.
  Result<std::optional<std::size_t>> Choice(const Table& t, std::string_view key, KeyList choices) const;
  Result<std::optional<std::array<std::uint8_t, 16>>> Hex16(const Table& t, std::string_view key,
                                                            std::string_view example) const;
  Result<std::optional<std::string>> Name(const Table& t, std::string_view key) const;
  Result<std::string> RequiredName(const Table& t, std::string_view key) const;

  Result<void> ParseHead(const Table& t, HeadSettings& head) const;
  Result<void> ParseDefaults(const Table& t, Config& config) const;
  Result<DeviceSettings> ParseDevice(const Table& t) const;
  Result<void> ParseHost(const Table& t, HostSettings& host) const;
  Result<void> ParseExport(const Table& t, ExportSettings& settings) const;
  Result<void> ParseSim(const Table& t, SimFabric& sim) const;
  // `naa_owner`: the LUs of the arrays before this one, by NAA, to refuse one identity on two LUs.
  Result<SimScsiArray> ParseArray(const Table& t, std::map<std::string, std::string, std::less<>>& naa_owner) const;
  Result<SimNvmeSubsystem> ParseSubsystem(const Table& t) const;
  Result<SimPath> ParsePath(const Table& t) const;
  Result<std::optional<std::uint32_t>> BlockSize(const Table& t) const;

  const std::string file_;
};

Result<void> Parser::CheckKeys(const Table& table, KeyList allowed,
                               std::span<const std::string_view> skipped) const {
  // toml++ keeps keys sorted; report the first unknown one in file order.
  const toml::key* first = nullptr;
  for (auto&& [key, value] : table.node) {
    if (Contains(allowed, key.str())) continue;
    if (std::find(skipped.begin(), skipped.end(), key.str()) != skipped.end()) continue;
    const auto& at = key.source().begin;
    if (first == nullptr || at.line < first->source().begin.line ||
        (at.line == first->source().begin.line && at.column < first->source().begin.column)) {
      first = &key;
    }
  }
  if (first == nullptr) return {};
  return Fail(first->source(), fmt::format("unknown key '{}' in {}; allowed keys: {}", first->str(), table.Header(),
                                           JoinKeys(allowed)));
}

Result<std::optional<std::string>> Parser::String(const Table& t, std::string_view key) const {
  const toml::node* node = t.node.get(key);
  if (node == nullptr) return std::nullopt;
  if (!node->is_string()) return WrongType(*node, t.Key(key), "a string");
  return std::optional<std::string>(node->as_string()->get());
}

Result<std::optional<std::int64_t>> Parser::Integer(const Table& t, std::string_view key, std::int64_t min,
                                                    std::int64_t max) const {
  const toml::node* node = t.node.get(key);
  if (node == nullptr) return std::nullopt;
  if (!node->is_integer()) return WrongType(*node, t.Key(key), "an integer");
  const std::int64_t value = node->as_integer()->get();
  if (value < min || value > max) {
    return Fail(*node, t.Key(key), fmt::format("must be between {} and {} (got {})", min, max, value));
  }
  return std::optional<std::int64_t>(value);
}

Result<std::optional<double>> Parser::Number(const Table& t, std::string_view key) const {
  const toml::node* node = t.node.get(key);
  if (node == nullptr) return std::nullopt;
  // "delayed_removal_secs = 30" is as natural as "= 30.0": both are numbers of seconds.
  if (node->is_integer()) return std::optional<double>(static_cast<double>(node->as_integer()->get()));
  if (!node->is_floating_point()) return WrongType(*node, t.Key(key), "a number");
  const double value = node->as_floating_point()->get();
  if (!std::isfinite(value)) return Fail(*node, t.Key(key), fmt::format("must be a finite number (got {})", value));
  return std::optional<double>(value);
}

Result<std::optional<bool>> Parser::Boolean(const Table& t, std::string_view key) const {
  const toml::node* node = t.node.get(key);
  if (node == nullptr) return std::nullopt;
  if (!node->is_boolean()) return WrongType(*node, t.Key(key), "a boolean (true or false)");
  return std::optional<bool>(node->as_boolean()->get());
}

Result<std::optional<std::vector<std::string>>> Parser::StringArray(const Table& t, std::string_view key) const {
  const toml::node* node = t.node.get(key);
  if (node == nullptr) return std::nullopt;
  if (!node->is_array()) return WrongType(*node, t.Key(key), "an array of strings");
  std::vector<std::string> out;
  const toml::array& array = *node->as_array();
  for (std::size_t i = 0; i < array.size(); ++i) {
    const toml::node& element = array[i];
    if (!element.is_string()) return WrongType(element, fmt::format("{}[{}]", t.Key(key), i), "a string");
    out.push_back(element.as_string()->get());
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

Result<std::optional<std::vector<std::int64_t>>> Parser::IntegerArray(const Table& t, std::string_view key,
                                                                      std::int64_t min, std::int64_t max) const {
  const toml::node* node = t.node.get(key);
  if (node == nullptr) return std::nullopt;
  if (!node->is_array()) return WrongType(*node, t.Key(key), "an array of integers");
  std::vector<std::int64_t> out;
  const toml::array& array = *node->as_array();
  for (std::size_t i = 0; i < array.size(); ++i) {
    const toml::node& element = array[i];
    const std::string name = fmt::format("{}[{}]", t.Key(key), i);
    if (!element.is_integer()) return WrongType(element, name, "an integer");
    const std::int64_t value = element.as_integer()->get();
    if (value < min || value > max) {
      return Fail(element, name, fmt::format("must be between {} and {} (got {})", min, max, value));
    }
    out.push_back(value);
  }
  return std::optional<std::vector<std::int64_t>>(std::move(out));
}

Result<std::optional<Table>> Parser::SubTable(const Table& t, std::string_view key) const {
  const toml::node* node = t.node.get(key);
  if (node == nullptr) return std::nullopt;
  if (!node->is_table()) return WrongType(*node, t.Key(key), fmt::format("a table ([{}])", t.SchemaKey(key)));
  return std::optional<Table>(Table{*node->as_table(), t.Key(key), t.SchemaKey(key)});
}

Result<std::vector<Table>> Parser::TableArray(const Table& t, std::string_view key) const {
  std::vector<Table> out;
  const toml::node* node = t.node.get(key);
  if (node == nullptr) return out;
  const std::string header = fmt::format("[[{}]]", t.SchemaKey(key));
  if (!node->is_array()) return WrongType(*node, t.Key(key), fmt::format("an array of tables ({})", header));
  const toml::array& array = *node->as_array();
  for (std::size_t i = 0; i < array.size(); ++i) {
    const toml::node& element = array[i];
    const std::string name = fmt::format("{}[{}]", t.Key(key), i);
    if (!element.is_table()) return WrongType(element, name, fmt::format("a table ({})", header));
    out.push_back(Table{*element.as_table(), name, t.SchemaKey(key), /*array_element=*/true});
  }
  return out;
}

Result<std::optional<std::size_t>> Parser::Choice(const Table& t, std::string_view key, KeyList choices) const {
  const std::optional<std::string> text = MPATH_TRY(String(t, key));
  if (!text) return std::nullopt;
  const auto found = std::find(choices.begin(), choices.end(), *text);
  if (found == choices.end()) {
    return Fail(*t.node.get(key), t.Key(key),
                fmt::format("unknown value '{}'; expected one of: {}", Shown(*text), JoinKeys(choices)));
  }
  return std::optional<std::size_t>(static_cast<std::size_t>(found - choices.begin()));
}

Result<std::optional<std::array<std::uint8_t, 16>>> Parser::Hex16(const Table& t, std::string_view key,
                                                                  std::string_view example) const {
  const std::optional<std::string> text = MPATH_TRY(String(t, key));
  if (!text) return std::nullopt;
  const auto bytes = ParseHex16(*text, /*uuid=*/false);
  if (!bytes) {
    return Fail(*t.node.get(key), t.Key(key),
                fmt::format("'{}' is not 32 hex digits (e.g. \"{}\")", Shown(*text), example));
  }
  if (IsAllZero(*bytes)) return Fail(*t.node.get(key), t.Key(key), "must not be all zeros (that means 'none')");
  return std::optional<std::array<std::uint8_t, 16>>(*bytes);
}

Result<std::optional<std::string>> Parser::Name(const Table& t, std::string_view key) const {
  std::optional<std::string> name = MPATH_TRY(String(t, key));
  if (name && !IsPlainName(*name)) {
    return Fail(*t.node.get(key), t.Key(key),
                fmt::format("'{}' is not a name: use 1 to {} letters, digits, '.', '_' or '-'", Shown(*name),
                            kMaxNameLength));
  }
  return name;
}

Result<std::string> Parser::RequiredName(const Table& t, std::string_view key) const {
  std::optional<std::string> name = MPATH_TRY(Name(t, key));
  if (!name) return Fail(t.node.source(), fmt::format("{}: missing key '{}'", t.name, key));
  return std::move(*name);
}

Result<void> Parser::ParseHead(const Table& t, HeadSettings& head) const {
  if (const auto node = t.node.get("iopolicy")) {
    const std::optional<std::string> text = MPATH_TRY(String(t, "iopolicy"));
    auto policy = ParseIoPolicy(*text);
    if (!policy) return Fail(*node, t.Key("iopolicy"), policy.error().message());
    head.iopolicy = *policy;
  }
  // A duration is checked as the head will convert it, so that ApplyTo cannot fail later on a value read here.
  const auto seconds = [&](std::string_view key, std::optional<double>& out) -> Result<void> {
    const std::optional<double> value = MPATH_TRY(Number(t, key));
    if (!value) return {};
    auto duration = SecondsToDuration(*value, t.Key(key));
    if (!duration) return Fail(t.node.get(key)->source(), duration.error().message());
    out = *value;
    return {};
  };
  MPATH_TRY(seconds("delayed_removal_secs", head.delayed_removal_secs));
  head.queue_if_no_path = MPATH_TRY(Boolean(t, "queue_if_no_path"));
  MPATH_TRY(seconds("write_quiesce_secs", head.write_quiesce_secs));
  if (auto retries = MPATH_TRY(Integer(t, "max_same_path_retries", 0, std::numeric_limits<std::uint32_t>::max()))) {
    head.max_same_path_retries = static_cast<std::uint32_t>(*retries);
  }

  const std::optional<Table> marginal = MPATH_TRY(SubTable(t, "marginal"));
  if (!marginal) return {};
  MPATH_TRY(CheckKeys(*marginal, kMarginalKeys));
  const Table& m = *marginal;
  // The window is a 64-bit outcome mask per path and thread (core/head_options.h).
  if (auto window = MPATH_TRY(Integer(m, "window", 1, 64))) head.marginal_window = static_cast<std::uint32_t>(*window);
  if (auto threshold = MPATH_TRY(Integer(m, "error_threshold", 1, 64))) {
    head.marginal_error_threshold = static_cast<std::uint32_t>(*threshold);
  }
  if (auto factor = MPATH_TRY(Number(m, "latency_factor"))) {
    if (*factor != 0.0 && *factor < 1.0) {
      return Fail(*m.node.get("latency_factor"), m.Key("latency_factor"),
                  fmt::format("must be 0 (off) or at least 1 (got {})", *factor));
    }
    head.marginal_latency_factor = *factor;
  }
  if (auto interval = MPATH_TRY(Number(m, "probe_interval_secs"))) {
    auto duration = SecondsToDuration(*interval, m.Key("probe_interval_secs"));
    if (!duration) return Fail(m.node.get("probe_interval_secs")->source(), duration.error().message());
    if (*duration <= Nanos(0)) {
      return Fail(*m.node.get("probe_interval_secs"), m.Key("probe_interval_secs"),
                  fmt::format("must be more than 0 seconds (got {})", *interval));
    }
    head.marginal_probe_interval_secs = *interval;
  }
  if (auto probes = MPATH_TRY(Integer(m, "probes_to_reinstate", 1, std::numeric_limits<std::uint32_t>::max()))) {
    head.marginal_probes_to_reinstate = static_cast<std::uint32_t>(*probes);
  }
  return {};
}

Result<void> Parser::ParseDefaults(const Table& t, Config& config) const {
  MPATH_TRY(CheckKeys(t, kDefaultsKeys));
  if (const auto node = t.node.get("multipath")) {
    const std::optional<std::string> text = MPATH_TRY(String(t, "multipath"));
    auto mode = ParseMultipathMode(*text);
    if (!mode) return Fail(*node, t.Key("multipath"), mode.error().message());
    config.multipath = *mode;
  }
  if (auto transports = MPATH_TRY(StringArray(t, "opt_out_transports"))) {
    const toml::array& array = *t.node.get("opt_out_transports")->as_array();
    for (std::size_t i = 0; i < transports->size(); ++i) {
      if (!IsPlainName((*transports)[i])) {
        return Fail(array[i], fmt::format("{}[{}]", t.Key("opt_out_transports"), i),
                    fmt::format("'{}' is not a transport name", Shown((*transports)[i])));
      }
    }
    config.opted_out_transports = std::move(*transports);
  }
  if (const auto node = t.node.get("alua")) {
    const std::optional<std::string> text = MPATH_TRY(String(t, "alua"));
    // The SCSI personality's own vocabulary, so that the file and the engine cannot disagree on a name.
    if (auto mode = scsi::ParseAluaMode(*text); !mode) return Fail(*node, t.Key("alua"), mode.error().message());
    config.alua = *text;
  }
  MPATH_TRY(ParseHead(t, config.defaults));
  // Keys valid one by one may still disagree (error_threshold above window).
  if (auto options = config.defaults.ApplyTo(HeadOptions{}); !options) {
    return Fail(t.node.source(), fmt::format("{}: {}", t.Header(), options.error().message()));
  }
  return {};
}

Result<DeviceSettings> Parser::ParseDevice(const Table& t) const {
  MPATH_TRY(CheckKeys(t, kDeviceKeys));
  DeviceSettings device;
  device.source = Line(t.node.source());
  if (auto match = MPATH_TRY(String(t, "match"))) {
    const toml::node& node = *t.node.get("match");
    const std::size_t star = match->find('*');
    if (match->empty()) return Fail(node, t.Key("match"), "must not be empty");
    if (star != std::string::npos && star != match->size() - 1) {
      return Fail(node, t.Key("match"),
                  fmt::format("'{}': '*' may only end a match (a prefix of the identity)", Shown(*match)));
    }
    if (!IsPrintableAscii(*match)) return Fail(node, t.Key("match"), "must be printable ASCII, like the identities");
    device.match = std::move(*match);
  }
  if (auto alias = MPATH_TRY(Name(t, "alias"))) device.alias = std::move(*alias);
  if (device.match.empty()) {
    // An alias names a head that `match` picks; without a match nothing would ever take these settings.
    return Fail(t.node.source(), fmt::format("{}: a [[device]] needs 'match' (the identity, or its prefix and '*'){}",
                                             t.name, device.alias.empty() ? "" : " to give its alias to"));
  }
  MPATH_TRY(ParseHead(t, device.head));
  return device;
}

Result<void> Parser::ParseHost(const Table& t, HostSettings& host) const {
  MPATH_TRY(CheckKeys(t, kHostKeys));
  if (auto initiator = MPATH_TRY(String(t, "iscsi_initiator"))) {
    // PR TransportIDs carry it as an iSCSI name (RFC 7143): the iqn., eui. or naa. form.
    if (!IsQualifiedName(*initiator, {"iqn.", "eui.", "naa."})) {
      return Fail(*t.node.get("iscsi_initiator"), t.Key("iscsi_initiator"),
                  fmt::format("'{}' is not an iSCSI name (iqn.YYYY-MM.reversed.domain:name, at most {} characters, "
                              "no spaces)",
                              Shown(*initiator), kMaxNqnLength));
    }
    host.iscsi_initiator = std::move(*initiator);
  }
  if (auto nqn = MPATH_TRY(String(t, "nvme_host_nqn"))) {
    if (!IsQualifiedName(*nqn, {"nqn."})) {
      return Fail(*t.node.get("nvme_host_nqn"), t.Key("nvme_host_nqn"),
                  fmt::format("'{}' is not an NQN ({}, at most {} characters)", Shown(*nqn), kNqnForm,
                              kMaxNqnLength));
    }
    host.nvme_host_nqn = std::move(*nqn);
  }
  if (auto id = MPATH_TRY(String(t, "nvme_host_id"))) {
    const toml::node& node = *t.node.get("nvme_host_id");
    const auto bytes = ParseHex16(*id, /*uuid=*/true);
    if (!bytes) {
      return Fail(node, t.Key("nvme_host_id"),
                  fmt::format("'{}' is not a UUID (8-4-4-4-12 hex digits, e.g. "
                              "\"6d706174-6800-4000-8000-000000000001\")",
                              Shown(*id)));
    }
    // Reservations key on the host identifier, and zero is no identifier (NVM Express Base Specification 2.0c §5.27.1
    // "Host Identifier").
    if (IsAllZero(*bytes)) return Fail(node, t.Key("nvme_host_id"), "must not be all zeros");
    host.nvme_host_id = *bytes;
  }
  return {};
}

Result<void> Parser::ParseExport(const Table& t, ExportSettings& settings) const {
  MPATH_TRY(CheckKeys(t, kExportKeys));
  if (auto enabled = MPATH_TRY(Boolean(t, "enabled"))) settings.enabled = *enabled;
  if (auto path = MPATH_TRY(String(t, "unix_socket"))) {
    const toml::node& node = *t.node.get("unix_socket");
    if (path->size() > kMaxUnixPath) {
      return Fail(node, t.Key("unix_socket"),
                  fmt::format("'{}' is longer than {} bytes, the most a unix socket path may have", Shown(*path),
                              kMaxUnixPath));
    }
    if (path->find('\0') != std::string::npos) return Fail(node, t.Key("unix_socket"), "must not contain a NUL byte");
    settings.unix_socket = std::move(*path);
  }
  if (auto port = MPATH_TRY(Integer(t, "tcp_port", 1, 0xFFFF))) settings.tcp_port = static_cast<std::uint16_t>(*port);
  if (auto address = MPATH_TRY(String(t, "tcp_address"))) {
    const toml::node& node = *t.node.get("tcp_address");
    // A literal only: resolving a host name would make the listener depend on DNS at start-up.
    in6_addr scratch{};
    const bool literal = address->find('\0') == std::string::npos &&
                         (inet_pton(AF_INET, address->c_str(), &scratch) == 1 ||
                          inet_pton(AF_INET6, address->c_str(), &scratch) == 1);
    if (!literal) {
      return Fail(node, t.Key("tcp_address"),
                  fmt::format("'{}' is not an IPv4 or IPv6 address (e.g. \"127.0.0.1\", \"0.0.0.0\", \"::1\")",
                              Shown(*address)));
    }
    if (!settings.tcp_port) {
      return Fail(node, t.Key("tcp_address"), "is used only with tcp_port (TCP is off unless tcp_port is set)");
    }
    settings.tcp_address = std::move(*address);
  }
  if (auto read_only = MPATH_TRY(Boolean(t, "read_only"))) settings.read_only = *read_only;
  if (auto name = MPATH_TRY(String(t, "default_export"))) {
    // Which head it names is known only once the fabric is up (a head may be named by its identity), so only its
    // form is checked here.
    if (name->empty() || name->size() > kMaxExportName || !IsPrintableAscii(*name)) {
      return Fail(*t.node.get("default_export"), t.Key("default_export"),
                  fmt::format("must be 1 to {} printable ASCII characters: an alias, identity or head name (leave it "
                              "out to default to the only head)",
                              kMaxExportName));
    }
    settings.default_export = std::move(*name);
  }
  if (auto max = MPATH_TRY(Integer(t, "max_connections", 1, kMaxExportLimit))) {
    settings.max_connections = static_cast<std::uint32_t>(*max);
  }
  if (auto depth = MPATH_TRY(Integer(t, "queue_depth", 1, kMaxExportLimit))) {
    settings.queue_depth = static_cast<std::uint32_t>(*depth);
  }
  if (settings.enabled && settings.unix_socket.empty() && !settings.tcp_port) {
    return Fail(t.SourceOf("unix_socket"),
                fmt::format("{}: nothing to listen on: unix_socket is \"\" and tcp_port is not set (set one, or "
                            "enabled = false)",
                            t.name));
  }
  return {};
}

Result<std::optional<std::uint32_t>> Parser::BlockSize(const Table& t) const {
  const auto size = MPATH_TRY(Integer(t, "block_size", 0, std::numeric_limits<std::uint32_t>::max()));
  if (!size) return std::nullopt;
  // Every power of two up to 4 KiB divides a MiB, so any size_mib is a whole number of blocks.
  const auto block_size = static_cast<std::uint32_t>(*size);
  if (!std::has_single_bit(block_size) || block_size < 512 || block_size > 4096) {
    return Fail(*t.node.get("block_size"), t.Key("block_size"),
                fmt::format("must be a power of two from 512 to 4096 (got {})", block_size));
  }
  return std::optional<std::uint32_t>(block_size);
}

Result<SimScsiArray> Parser::ParseArray(const Table& t,
                                        std::map<std::string, std::string, std::less<>>& naa_owner) const {
  MPATH_TRY(CheckKeys(t, kArrayKeys));
  SimScsiArray array;
  array.name = MPATH_TRY(RequiredName(t, "name"));
  // T10 VENDOR IDENTIFICATION is 8 bytes and PRODUCT IDENTIFICATION 16 (SPC-5 r19 §6.6.2 "Standard INQUIRY data").
  const auto inquiry_text = [&](std::string_view key, std::size_t max, std::string& out) -> Result<void> {
    std::optional<std::string> text = MPATH_TRY(String(t, key));
    if (!text) return {};
    if (text->empty() || text->size() > max || !IsPrintableAscii(*text)) {
      return Fail(*t.node.get(key), t.Key(key),
                  fmt::format("'{}' must be 1 to {} printable ASCII characters (INQUIRY)", Shown(*text), max));
    }
    out = std::move(*text);
    return {};
  };
  MPATH_TRY(inquiry_text("vendor", 8, array.vendor));
  MPATH_TRY(inquiry_text("product", 16, array.product));
  if (auto alua = MPATH_TRY(Choice(t, "alua", kArrayAluaNames))) array.tpgs = static_cast<std::uint8_t>(*alua);
  if (auto secs = MPATH_TRY(Integer(t, "transition_secs", 0, 255))) {
    array.transition_secs = static_cast<std::uint8_t>(*secs);
  }

  std::map<std::uint16_t, std::string> port_owner;  // relative port -> the group that has it
  for (const Table& g : MPATH_TRY(TableArray(t, "port_group"))) {
    MPATH_TRY(CheckKeys(g, kPortGroupKeys));
    SimPortGroup group;
    if (auto id = MPATH_TRY(Integer(g, "id", 0, 0xFFFF))) group.id = static_cast<std::uint16_t>(*id);
    for (const SimPortGroup& other : array.port_groups) {
      if (other.id == group.id) {
        return Fail(g.SourceOf("id"),
                    fmt::format("{}: port group id {} is used twice in array '{}'", g.Key("id"), group.id,
                                array.name));
      }
    }
    if (auto state = MPATH_TRY(Choice(g, "state", kPortGroupStates))) {
      group.state = std::string(kPortGroupStates[*state]);
    }
    if (auto preferred = MPATH_TRY(Boolean(g, "preferred"))) group.preferred = *preferred;
    // Relative target port 0 is reserved (SPC-5 r19 §7.7.6.7).
    const auto ports = MPATH_TRY(IntegerArray(g, "ports", 1, 0xFFFF));
    if (!ports || ports->empty()) {
      return Fail(ports ? g.node.get("ports")->source() : g.node.source(),
                  fmt::format("{}: a port group needs at least one port (ports = [1, 2])", g.Key("ports")));
    }
    const toml::array& port_nodes = *g.node.get("ports")->as_array();
    for (std::size_t i = 0; i < ports->size(); ++i) {
      const auto port = static_cast<std::uint16_t>((*ports)[i]);
      const std::string owner = fmt::format("port group {}", group.id);
      if (auto [it, inserted] = port_owner.emplace(port, owner); !inserted) {
        return Fail(port_nodes[i], fmt::format("{}[{}]", g.Key("ports"), i),
                    fmt::format("port {} of array '{}' is already in {}", port, array.name, it->second));
      }
      group.ports.push_back(port);
    }
    array.port_groups.push_back(std::move(group));
  }
  if (array.port_groups.empty()) {
    return Fail(t.node.source(), fmt::format("{}: array '{}' needs at least one [[sim.scsi_array.port_group]] (its "
                                             "ports are the ports of its groups)",
                                             t.name, array.name));
  }

  for (const Table& l : MPATH_TRY(TableArray(t, "lu"))) {
    MPATH_TRY(CheckKeys(l, kLuKeys));
    SimLogicalUnit lu;
    if (auto lun = MPATH_TRY(Integer(l, "lun", 0, kMaxLun))) lu.lun = static_cast<std::uint64_t>(*lun);
    for (const SimLogicalUnit& other : array.lus) {
      if (other.lun == lu.lun) {
        return Fail(l.SourceOf("lun"),
                    fmt::format("{}: LUN {} is used twice in array '{}'", l.Key("lun"), lu.lun, array.name));
      }
    }
    if (auto size = MPATH_TRY(Integer(l, "size_mib", 1, kMaxSizeMib))) lu.size_mib = static_cast<std::uint64_t>(*size);
    if (auto block = MPATH_TRY(BlockSize(l))) lu.block_size = *block;
    auto naa = MPATH_TRY(Hex16(l, "naa", "60014050abcd0000000000000000000a"));
    if (!naa) {
      return Fail(l.node.source(), fmt::format("{}: missing key 'naa' (the LU's identity: 32 hex digits, NAA type 6)",
                                               l.name));
    }
    // Only NAA IEEE Registered Extended (type 6) is 16 bytes long (SPC-5 r19 §7.7.6.6.1).
    if (((*naa)[0] >> 4) != 6) {
      return Fail(*l.node.get("naa"), l.Key("naa"),
                  fmt::format("'{}' is not an NAA type 6 designator (it must start with the digit 6)", Hex(*naa)));
    }
    // Two LUs with one identity would be taken for two paths to one device.
    const std::string owner = fmt::format("array '{}' LUN {}", array.name, lu.lun);
    if (auto [it, inserted] = naa_owner.emplace(Hex(*naa), owner); !inserted) {
      return Fail(*l.node.get("naa"), l.Key("naa"),
                  fmt::format("NAA {} is already the identity of {}", it->first, it->second));
    }
    lu.naa = *naa;
    if (auto serial = MPATH_TRY(String(l, "serial"))) {
      if (serial->size() > 64 || !IsPrintableAscii(*serial)) {
        return Fail(*l.node.get("serial"), l.Key("serial"), "must be at most 64 printable ASCII characters");
      }
      lu.serial = std::move(*serial);
    }
    array.lus.push_back(std::move(lu));
  }
  if (array.lus.empty()) {
    return Fail(t.node.source(), fmt::format("{}: array '{}' needs at least one [[sim.scsi_array.lu]]", t.name,
                                             array.name));
  }
  return array;
}

Result<SimNvmeSubsystem> Parser::ParseSubsystem(const Table& t) const {
  MPATH_TRY(CheckKeys(t, kSubsystemKeys));
  SimNvmeSubsystem subsystem;
  subsystem.name = MPATH_TRY(RequiredName(t, "name"));
  subsystem.nqn = fmt::format("nqn.2026-11.io.mpath.sim:{}", subsystem.name);
  if (auto nqn = MPATH_TRY(String(t, "nqn"))) {
    if (!IsQualifiedName(*nqn, {"nqn."})) {
      return Fail(*t.node.get("nqn"), t.Key("nqn"),
                  fmt::format("'{}' is not an NQN ({}, at most {} characters)", Shown(*nqn), kNqnForm, kMaxNqnLength));
    }
    subsystem.nqn = std::move(*nqn);
  }
  if (auto ports = MPATH_TRY(IntegerArray(t, "ports", 1, 0xFFFF))) {
    if (ports->empty()) return Fail(*t.node.get("ports"), t.Key("ports"), "a subsystem needs at least one port");
    subsystem.ports.clear();
    const toml::array& nodes = *t.node.get("ports")->as_array();
    for (std::size_t i = 0; i < ports->size(); ++i) {
      const auto port = static_cast<std::uint16_t>((*ports)[i]);
      if (std::find(subsystem.ports.begin(), subsystem.ports.end(), port) != subsystem.ports.end()) {
        return Fail(nodes[i], fmt::format("{}[{}]", t.Key("ports"), i),
                    fmt::format("port {} is listed twice in subsystem '{}'", port, subsystem.name));
      }
      subsystem.ports.push_back(port);
    }
  }
  if (auto secs = MPATH_TRY(Integer(t, "anatt_secs", 0, 255))) subsystem.anatt_secs = static_cast<std::uint8_t>(*secs);

  for (const Table& n : MPATH_TRY(TableArray(t, "namespace"))) {
    MPATH_TRY(CheckKeys(n, kNamespaceKeys));
    SimNamespace ns;
    if (auto nsid = MPATH_TRY(Integer(n, "nsid", 1, kMaxNsid))) ns.nsid = static_cast<std::uint32_t>(*nsid);
    for (const SimNamespace& other : subsystem.namespaces) {
      if (other.nsid == ns.nsid) {
        return Fail(n.SourceOf("nsid"),
                    fmt::format("{}: NSID {} is used twice in subsystem '{}'", n.Key("nsid"), ns.nsid,
                                subsystem.name));
      }
    }
    if (auto size = MPATH_TRY(Integer(n, "size_mib", 1, kMaxSizeMib))) ns.size_mib = static_cast<std::uint64_t>(*size);
    if (auto block = MPATH_TRY(BlockSize(n))) ns.block_size = *block;
    auto nguid = MPATH_TRY(Hex16(n, "nguid", "6d706174000000000000000000000001"));
    if (!nguid) {
      return Fail(n.node.source(), fmt::format("{}: missing key 'nguid' (the namespace's identity: 32 hex digits)",
                                               n.name));
    }
    for (const SimNamespace& other : subsystem.namespaces) {
      if (other.nguid == *nguid) {
        return Fail(*n.node.get("nguid"), n.Key("nguid"),
                    fmt::format("NGUID {} is already used by NSID {} in subsystem '{}'", Hex(*nguid), other.nsid,
                                subsystem.name));
      }
    }
    ns.nguid = *nguid;
    if (auto group = MPATH_TRY(Integer(n, "ana_group", 1, kMaxAnaGroup))) {
      ns.ana_group = static_cast<std::uint32_t>(*group);
    }
    subsystem.namespaces.push_back(ns);
  }
  if (subsystem.namespaces.empty()) {
    return Fail(t.node.source(), fmt::format("{}: subsystem '{}' needs at least one [[sim.nvme_subsystem.namespace]]",
                                             t.name, subsystem.name));
  }

  for (const Table& a : MPATH_TRY(TableArray(t, "ana"))) {
    MPATH_TRY(CheckKeys(a, kAnaKeys));
    SimAnaState ana;
    if (auto port = MPATH_TRY(Integer(a, "port", 1, 0xFFFF))) ana.port = static_cast<std::uint16_t>(*port);
    if (std::find(subsystem.ports.begin(), subsystem.ports.end(), ana.port) == subsystem.ports.end()) {
      return Fail(a.SourceOf("port"),
                  fmt::format("{}: subsystem '{}' has no port {} (its ports: {})", a.Key("port"), subsystem.name,
                              ana.port, fmt::join(subsystem.ports, ", ")));
    }
    if (auto group = MPATH_TRY(Integer(a, "group", 1, kMaxAnaGroup))) ana.group = static_cast<std::uint32_t>(*group);
    for (const SimAnaState& other : subsystem.ana) {
      if (other.port == ana.port && other.group == ana.group) {
        return Fail(a.node.source(), fmt::format("{}: the state of ANA group {} on port {} is given twice", a.name,
                                                 ana.group, ana.port));
      }
    }
    if (auto state = MPATH_TRY(Choice(a, "state", kAnaStates))) ana.state = std::string(kAnaStates[*state]);
    subsystem.ana.push_back(std::move(ana));
  }
  return subsystem;
}

Result<SimPath> Parser::ParsePath(const Table& t) const {
  MPATH_TRY(CheckKeys(t, kPathKeys));
  SimPath path;
  path.source = Line(t.node.source());
  path.name = MPATH_TRY(RequiredName(t, "name"));
  path.target = MPATH_TRY(RequiredName(t, "target"));
  if (auto port = MPATH_TRY(Integer(t, "port", 1, 0xFFFF))) path.port = static_cast<std::uint16_t>(*port);
  if (auto latency = MPATH_TRY(Number(t, "latency_ms"))) {
    if (*latency < 0 || *latency > kMaxLatencyMs) {
      return Fail(*t.node.get("latency_ms"), t.Key("latency_ms"),
                  fmt::format("must be between 0 and {} ms (got {})", kMaxLatencyMs, *latency));
    }
    path.latency_ms = *latency;
  }
  return path;
}

Result<void> Parser::ParseSim(const Table& t, SimFabric& sim) const {
  MPATH_TRY(CheckKeys(t, kSimKeys));
  if (auto seed = MPATH_TRY(Integer(t, "seed", 0, std::numeric_limits<std::int64_t>::max()))) {
    sim.seed = static_cast<std::uint64_t>(*seed);
  }

  // Paths name arrays and subsystems alike, so the two share one space of names.
  std::map<std::string, std::string, std::less<>> target_source;
  std::map<std::string, std::string, std::less<>> naa_owner;
  std::map<std::string, std::string, std::less<>> nqn_owner;
  for (const Table& a : MPATH_TRY(TableArray(t, "scsi_array"))) {
    SimScsiArray array = MPATH_TRY(ParseArray(a, naa_owner));
    if (auto [it, inserted] = target_source.emplace(array.name, Line(a.node.source())); !inserted) {
      return Fail(*a.node.get("name"), a.Key("name"),
                  fmt::format("target name '{}' is already used at {}", array.name, it->second));
    }
    sim.scsi_arrays.push_back(std::move(array));
  }
  for (const Table& s : MPATH_TRY(TableArray(t, "nvme_subsystem"))) {
    SimNvmeSubsystem subsystem = MPATH_TRY(ParseSubsystem(s));
    if (auto [it, inserted] = target_source.emplace(subsystem.name, Line(s.node.source())); !inserted) {
      return Fail(*s.node.get("name"), s.Key("name"),
                  fmt::format("target name '{}' is already used at {}", subsystem.name, it->second));
    }
    // Namespace identities are scoped by the subsystem NQN: two subsystems with one NQN would merge.
    if (auto [it, inserted] = nqn_owner.emplace(subsystem.nqn, subsystem.name); !inserted) {
      return Fail(s.SourceOf("nqn"), fmt::format("{}: NQN '{}' is already used by subsystem '{}'", s.Key("nqn"),
                                                 subsystem.nqn, it->second));
    }
    sim.nvme_subsystems.push_back(std::move(subsystem));
  }

  std::map<std::string, std::string, std::less<>> path_source;
  for (const Table& p : MPATH_TRY(TableArray(t, "path"))) {
    SimPath path = MPATH_TRY(ParsePath(p));
    if (auto [it, inserted] = path_source.emplace(path.name, path.source); !inserted) {
      return Fail(*p.node.get("name"), p.Key("name"),
                  fmt::format("path name '{}' is already used at {}", path.name, it->second));
    }
    std::vector<std::uint16_t> ports;
    std::string kind;
    if (auto array = std::find_if(sim.scsi_arrays.begin(), sim.scsi_arrays.end(),
                                  [&](const SimScsiArray& a) { return a.name == path.target; });
        array != sim.scsi_arrays.end()) {
      kind = "array";
      for (const SimPortGroup& group : array->port_groups) {
        ports.insert(ports.end(), group.ports.begin(), group.ports.end());
      }
    } else if (auto subsystem = std::find_if(sim.nvme_subsystems.begin(), sim.nvme_subsystems.end(),
                                             [&](const SimNvmeSubsystem& s) { return s.name == path.target; });
               subsystem != sim.nvme_subsystems.end()) {
      kind = "subsystem";
      ports = subsystem->ports;
    } else {
      std::vector<std::string_view> names;
      for (const auto& [name, source] : target_source) names.push_back(name);
      return Fail(*p.node.get("target"), p.Key("target"),
                  fmt::format("no array or subsystem is named '{}' (targets: {})", path.target,
                              names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "))));
    }
    if (std::find(ports.begin(), ports.end(), path.port) == ports.end()) {
      std::sort(ports.begin(), ports.end());
      return Fail(p.SourceOf("port"),
                  fmt::format("{}: {} '{}' has no port {} (its ports: {})", p.Key("port"), kind, path.target,
                              path.port, fmt::join(ports, ", ")));
    }
    sim.paths.push_back(std::move(path));
  }
  return {};
}

Result<Config> Parser::Parse(const toml::table& root, std::span<const std::string_view> foreign_tables) {
  const Table top{root, "", ""};
  MPATH_TRY(CheckKeys(top, kTopLevelKeys, foreign_tables));
  Config config;
  config.file = file_;
  if (auto defaults = MPATH_TRY(SubTable(top, "defaults"))) MPATH_TRY(ParseDefaults(*defaults, config));
  // Checked by ParseDefaults already; a [[device]] is checked over it.
  const HeadOptions head_defaults = MPATH_TRY(config.defaults.ApplyTo(HeadOptions{}));

  std::map<std::string, std::string, std::less<>> match_source;
  std::map<std::string, std::string, std::less<>> alias_source;
  for (const Table& d : MPATH_TRY(TableArray(top, "device"))) {
    DeviceSettings device = MPATH_TRY(ParseDevice(d));
    if (auto [it, inserted] = match_source.emplace(device.match, device.source); !inserted) {
      return Fail(*d.node.get("match"), d.Key("match"),
                  fmt::format("'{}' is already matched by the [[device]] at {}; the first would always win",
                              device.match, it->second));
    }
    if (!device.alias.empty()) {
      if (auto [it, inserted] = alias_source.emplace(device.alias, device.source); !inserted) {
        return Fail(*d.node.get("alias"), d.Key("alias"),
                    fmt::format("alias '{}' is already given by the [[device]] at {}", device.alias, it->second));
      }
    }
    if (auto options = device.head.ApplyTo(head_defaults); !options) {
      return Fail(d.node.source(), fmt::format("{}: {}", d.name, options.error().message()));
    }
    config.devices.push_back(std::move(device));
  }
  if (auto host = MPATH_TRY(SubTable(top, "host"))) MPATH_TRY(ParseHost(*host, config.host));
  if (auto nbd = MPATH_TRY(SubTable(top, "export"))) MPATH_TRY(ParseExport(*nbd, config.nbd_export));
  if (auto sim = MPATH_TRY(SubTable(top, "sim"))) MPATH_TRY(ParseSim(*sim, config.sim));
  return config;
}

}  // namespace

Result<Config> ParseConfig(std::string_view text, std::string_view file_name,
                           std::span<const std::string_view> foreign_tables) {
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(file_name));
  } catch (const toml::parse_error& e) {
    return MakeError(Errc::kInvalidArgument, fmt::format("{}:{}:{}: {}", file_name, e.source().begin.line,
                                                         e.source().begin.column, e.description()));
  }
  return Parser(file_name).Parse(root, foreign_tables);
}

Result<Config> LoadConfig(const std::string& path) {
  const std::string text = MPATH_TRY(ReadTextFile(path, "config file"));
  return ParseConfig(text, path);
}

}  // namespace mpath::daemon
