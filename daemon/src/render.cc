#include "mpath/daemon/render.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>

#include "mpath/core/path.h"

namespace mpath::daemon {
namespace {

using nlohmann::json;

// The order groups are listed in: the states I/O prefers first, then the ones it cannot use.
constexpr std::array kAccessOrder = {AccessState::kOptimized,   AccessState::kNonOptimized,
                                     AccessState::kTransitioning, AccessState::kStandby,
                                     AccessState::kUnavailable, AccessState::kPersistentLoss};
constexpr std::array kPathStates = {PathState::kConnecting, PathState::kLive, PathState::kFailed,
                                    PathState::kRemoving};
constexpr std::array kHeadStates = {HeadState::kLive, HeadState::kQueueing, HeadState::kFailing,
                                    HeadState::kRemoved};
constexpr std::array kMarginalReasons = {MarginalReason::kNone, MarginalReason::kErrors, MarginalReason::kLatency};
constexpr std::array kPolicies = {IoPolicyKind::kNuma, IoPolicyKind::kRoundRobin, IoPolicyKind::kQueueDepth,
                                  IoPolicyKind::kServiceTime};

// Paths of a head in listing order: by access group (kAccessOrder), keeping the view's order within a group.
std::vector<std::vector<const PathView*>> GroupByAccess(const HeadView& head) {
  std::vector<std::vector<const PathView*>> groups;
  for (AccessState access : kAccessOrder) {
    std::vector<const PathView*> group;
    for (const PathView& path : head.paths) {
      if (path.access == access) group.push_back(&path);
    }
    if (!group.empty()) groups.push_back(std::move(group));
  }
  return groups;
}

// Rows of cells printed as aligned columns. A column empty in every row is left out, so optional marks (preferred,
// marginal) take no room in a head that has none.
class Columns {
 public:
  void AddRow(std::string prefix, std::vector<std::string> cells) {
    rows_.push_back({std::move(prefix), std::move(cells)});
  }
  void AddLine(std::string text) { rows_.push_back({std::move(text), {}}); }

  void AppendTo(std::string& out) const {
    std::vector<std::size_t> widths;
    for (const Row& row : rows_) {
      if (widths.size() < row.cells.size()) widths.resize(row.cells.size(), 0);
      for (std::size_t i = 0; i < row.cells.size(); ++i) widths[i] = std::max(widths[i], row.cells[i].size());
    }
    for (const Row& row : rows_) {
      std::string line = row.prefix;
      bool first = true;
      for (std::size_t i = 0; i < row.cells.size(); ++i) {
        if (widths[i] == 0) continue;
        if (!first) line += "  ";
        first = false;
        line += row.cells[i];
        line.append(widths[i] - row.cells[i].size(), ' ');
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line;
      out += '\n';
    }
  }

 private:
  struct Row {
    std::string prefix;
    std::vector<std::string> cells;
  };
  std::vector<Row> rows_;
};

std::string CountersText(const IoCounters& c) {
  return fmt::format("ios={} bytes={} errors={} failovers={} requeues={} no_path_failures={} retries={}", c.ios,
                     c.bytes, c.errors, c.failovers, c.requeues, c.no_path_failures, c.retries);
}

std::string HeadTitle(const HeadView& head) {
  std::string title = head.name;
  if (!head.alias.empty()) title += fmt::format(" ({})", head.alias);
  if (!head.identity.empty()) title += " " + head.identity;
  if (!head.vendor.empty() || !head.product.empty()) title += fmt::format(" {},{}", head.vendor, head.product);
  return title;
}

std::string Geometry(const HeadView& head) {
  if (head.block_size == 0) return fmt::format("size={}", FormatSize(head.capacity_bytes));
  return fmt::format("size={} blocks={}x{}", FormatSize(head.capacity_bytes), head.capacity_bytes / head.block_size,
                     head.block_size);
}

// --- JSON readers: each names the field that is missing or mistyped. ---

Result<const json*> Field(const json& object, std::string_view where, const char* key) {
  if (!object.is_object()) return MakeError(Errc::kInvalidArgument, fmt::format("{}: not a JSON object", where));
  auto it = object.find(key);
  if (it == object.end()) return MakeError(Errc::kInvalidArgument, fmt::format("{}: missing field '{}'", where, key));
  return &*it;
}

Result<std::string> GetString(const json& object, std::string_view where, const char* key) {
  const json* value = MPATH_TRY(Field(object, where, key));
  if (!value->is_string()) {
    return MakeError(Errc::kInvalidArgument,
                     fmt::format("{}: field '{}' must be a string, not {}", where, key, value->type_name()));
  }
  return value->get<std::string>();
}

Result<std::uint64_t> GetUint(const json& object, std::string_view where, const char* key) {
  const json* value = MPATH_TRY(Field(object, where, key));
  if (!value->is_number_unsigned()) {
    return MakeError(Errc::kInvalidArgument,
                     fmt::format("{}: field '{}' must be a non-negative integer", where, key));
  }
  return value->get<std::uint64_t>();
}

Result<double> GetNumber(const json& object, std::string_view where, const char* key) {
  const json* value = MPATH_TRY(Field(object, where, key));
  if (!value->is_number()) {
    return MakeError(Errc::kInvalidArgument, fmt::format("{}: field '{}' must be a number", where, key));
  }
  return value->get<double>();
}

Result<bool> GetBool(const json& object, std::string_view where, const char* key) {
  const json* value = MPATH_TRY(Field(object, where, key));
  if (!value->is_boolean()) {
    return MakeError(Errc::kInvalidArgument, fmt::format("{}: field '{}' must be true or false", where, key));
  }
  return value->get<bool>();
}

template <typename E, std::size_t N>
Result<E> GetEnum(const json& object, std::string_view where, const char* key, const std::array<E, N>& all) {
  std::string text = MPATH_TRY(GetString(object, where, key));
  for (E value : all) {
    if (Name(value) == text) return value;
  }
  return MakeError(Errc::kInvalidArgument, fmt::format("{}: field '{}' has unknown value '{}'", where, key, text));
}

Result<IoCounters> CountersFromJson(const json& object, std::string_view where) {
  const json* c = MPATH_TRY(Field(object, where, "counters"));
  std::string at = fmt::format("{}.counters", where);
  IoCounters counters;
  counters.ios = MPATH_TRY(GetUint(*c, at, "ios"));
  counters.bytes = MPATH_TRY(GetUint(*c, at, "bytes"));
  counters.errors = MPATH_TRY(GetUint(*c, at, "errors"));
  counters.failovers = MPATH_TRY(GetUint(*c, at, "failovers"));
  counters.requeues = MPATH_TRY(GetUint(*c, at, "requeues"));
  counters.no_path_failures = MPATH_TRY(GetUint(*c, at, "no_path_failures"));
  counters.retries = MPATH_TRY(GetUint(*c, at, "retries"));
  return counters;
}

Result<PathView> PathFromJson(const json& object, std::string_view where) {
  PathView path;
  path.name = MPATH_TRY(GetString(object, where, "name"));
  path.protocol = MPATH_TRY(GetString(object, where, "protocol"));
  path.transport = MPATH_TRY(GetString(object, where, "transport"));
  path.address = MPATH_TRY(GetString(object, where, "address"));
  path.state = MPATH_TRY(GetEnum(object, where, "state", kPathStates));
  path.access = MPATH_TRY(GetEnum(object, where, "access", kAccessOrder));
  path.preferred = MPATH_TRY(GetBool(object, where, "preferred"));
  path.marginal = MPATH_TRY(GetEnum(object, where, "marginal", kMarginalReasons));
  path.usable = MPATH_TRY(GetBool(object, where, "usable"));
  path.in_flight = MPATH_TRY(GetUint(object, where, "in_flight"));
  path.counters = MPATH_TRY(CountersFromJson(object, where));
  const json* latency = MPATH_TRY(Field(object, where, "latency_us"));
  std::string at = fmt::format("{}.latency_us", where);
  path.latency_p50_us = MPATH_TRY(GetNumber(*latency, at, "p50"));
  path.latency_p99_us = MPATH_TRY(GetNumber(*latency, at, "p99"));
  path.latency_max_us = MPATH_TRY(GetNumber(*latency, at, "max"));
  return path;
}

Result<HeadView> HeadFromJsonAt(const json& object, std::string_view where) {
  HeadView head;
  head.name = MPATH_TRY(GetString(object, where, "name"));
  head.alias = MPATH_TRY(GetString(object, where, "alias"));
  head.identity = MPATH_TRY(GetString(object, where, "identity"));
  head.protocol = MPATH_TRY(GetString(object, where, "protocol"));
  head.vendor = MPATH_TRY(GetString(object, where, "vendor"));
  head.product = MPATH_TRY(GetString(object, where, "product"));
  head.capacity_bytes = MPATH_TRY(GetUint(object, where, "size_bytes"));
  std::uint64_t block_size = MPATH_TRY(GetUint(object, where, "block_size"));
  if (block_size > std::numeric_limits<std::uint32_t>::max()) {
    return MakeError(Errc::kInvalidArgument, fmt::format("{}: field 'block_size' is out of range", where));
  }
  head.block_size = static_cast<std::uint32_t>(block_size);
  head.policy = MPATH_TRY(GetEnum(object, where, "policy", kPolicies));
  head.state = MPATH_TRY(GetEnum(object, where, "state", kHeadStates));
  head.counters = MPATH_TRY(CountersFromJson(object, where));
  const json* paths = MPATH_TRY(Field(object, where, "paths"));
  if (!paths->is_array()) {
    return MakeError(Errc::kInvalidArgument, fmt::format("{}: field 'paths' must be an array", where));
  }
  for (std::size_t i = 0; i < paths->size(); ++i) {
    head.paths.push_back(MPATH_TRY(PathFromJson((*paths)[i], fmt::format("{}.paths[{}]", where, i))));
  }
  return head;
}

}  // namespace

std::string FormatSize(std::uint64_t bytes) {
  static constexpr std::array<const char*, 7> kUnits = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  std::size_t unit = 0;
  while (unit + 1 < kUnits.size() && bytes >= (std::uint64_t{1} << (10 * (unit + 1)))) ++unit;
  std::uint64_t scale = std::uint64_t{1} << (10 * unit);
  if (bytes % scale == 0) return fmt::format("{}{}", bytes / scale, kUnits[unit]);
  double value = static_cast<double>(bytes) / static_cast<double>(scale);
  // One decimal could round up to 1024.0 of a unit; that reads better as 1.0 of the next one.
  if (value >= 1023.95 && unit + 1 < kUnits.size()) return fmt::format("1.0{}", kUnits[unit + 1]);
  return fmt::format("{:.1f}{}", value, kUnits[unit]);
}

std::string FormatMicros(double micros) {
  if (micros < 1.0) return fmt::format("{:.0f}ns", micros * 1000.0);
  if (micros < 1000.0) return fmt::format("{:.1f}us", micros);
  if (micros < 1e6) return fmt::format("{:.2f}ms", micros / 1000.0);
  return fmt::format("{:.2f}s", micros / 1e6);
}

std::string FormatKey(std::uint64_t key) { return fmt::format("0x{:x}", key); }

Result<std::uint64_t> ParseKey(std::string_view text) {
  std::string_view digits = text;
  int base = 10;
  if (digits.starts_with("0x") || digits.starts_with("0X")) {
    digits.remove_prefix(2);
    base = 16;
  }
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    std::string_view why = ec == std::errc::result_out_of_range ? "larger than 64 bits"
                                                                : "expected decimal digits or 0x and hex digits";
    return MakeError(Errc::kInvalidArgument, fmt::format("invalid key '{}': {}", text, why));
  }
  return value;
}

std::string RenderList(std::span<const HeadView> heads) {
  if (heads.empty()) return "No heads.\n";
  std::string out;
  for (const HeadView& head : heads) {
    out += HeadTitle(head) + "\n";
    out += fmt::format("{} protocol={} policy={} state={}\n", Geometry(head), head.protocol, Name(head.policy),
                       Name(head.state));
    auto groups = GroupByAccess(head);
    if (groups.empty()) {
      out += "`-+- (no paths)\n";
      continue;
    }
    Columns columns;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      bool last_group = g + 1 == groups.size();
      columns.AddLine(fmt::format("{}{}:", last_group ? "`-+- " : "|-+- ", Name(groups[g].front()->access)));
      for (std::size_t p = 0; p < groups[g].size(); ++p) {
        const PathView& path = *groups[g][p];
        bool last_path = p + 1 == groups[g].size();
        std::string prefix = std::string(last_group ? "  " : "| ") + (last_path ? "`- " : "|- ");
        columns.AddRow(std::move(prefix),
                       {path.name, path.address, std::string(Name(path.state)), std::string(Name(path.access)),
                        path.preferred ? "preferred" : "",
                        path.marginal == MarginalReason::kNone ? ""
                                                               : fmt::format("marginal={}", Name(path.marginal)),
                        fmt::format("inflight={}", path.in_flight), fmt::format("ios={}", path.counters.ios),
                        fmt::format("errors={}", path.counters.errors),
                        fmt::format("failovers={}", path.counters.failovers)});
      }
    }
    columns.AppendTo(out);
  }
  return out;
}

std::string RenderShow(const HeadView& head) {
  std::size_t usable = 0;
  for (const PathView& path : head.paths) usable += path.usable ? 1 : 0;

  std::string out = head.name + "\n";
  Columns attributes;
  auto attribute = [&](std::string_view label, std::string value) {
    attributes.AddRow("  ", {fmt::format("{}:", label), std::move(value)});
  };
  if (!head.alias.empty()) attribute("alias", head.alias);
  attribute("identity", head.identity);
  attribute("protocol", head.protocol);
  attribute("vendor", head.vendor);
  attribute("product", head.product);
  attribute("size", head.block_size == 0
                        ? FormatSize(head.capacity_bytes)
                        : fmt::format("{} ({} bytes, {} blocks of {})", FormatSize(head.capacity_bytes),
                                      head.capacity_bytes, head.capacity_bytes / head.block_size, head.block_size));
  attribute("policy", std::string(Name(head.policy)));
  attribute("state", std::string(Name(head.state)));
  attribute("counters", CountersText(head.counters));
  attribute("paths", fmt::format("{} ({} usable)", head.paths.size(), usable));
  attributes.AppendTo(out);

  for (const auto& group : GroupByAccess(head)) {
    for (const PathView* path : group) {
      out += fmt::format("\n  path {}\n", path->name);
      Columns fields;
      auto field = [&](std::string_view label, std::string value) {
        fields.AddRow("    ", {fmt::format("{}:", label), std::move(value)});
      };
      field("address", path->address);
      field("transport", path->transport);
      field("state", std::string(Name(path->state)));
      field("access", std::string(Name(path->access)));
      field("preferred", path->preferred ? "yes" : "no");
      field("marginal", path->marginal == MarginalReason::kNone ? "no" : std::string(Name(path->marginal)));
      field("usable", path->usable ? "yes" : "no");
      field("in-flight", std::to_string(path->in_flight));
      field("counters", CountersText(path->counters));
      bool sampled = path->latency_max_us > 0 || path->latency_p99_us > 0 || path->latency_p50_us > 0;
      field("latency", sampled ? fmt::format("p50={} p99={} max={}", FormatMicros(path->latency_p50_us),
                                             FormatMicros(path->latency_p99_us), FormatMicros(path->latency_max_us))
                               : "- (no I/O sampled)");
      fields.AppendTo(out);
    }
  }
  return out;
}

std::string RenderPrReport(std::string_view head, std::string_view action, const PrReport& report) {
  if (action == "read-keys") {
    if (report.keys.empty()) return fmt::format("{}: generation {}, no registered keys\n", head, report.generation);
    std::string out = fmt::format("{}: generation {}, {} registered key{}:\n", head, report.generation,
                                  report.keys.size(), report.keys.size() == 1 ? "" : "s");
    for (std::uint64_t key : report.keys) out += fmt::format("  {}\n", FormatKey(key));
    return out;
  }
  if (action == "read-reservation") {
    if (!report.holder_key) return fmt::format("{}: generation {}, no reservation\n", head, report.generation);
    return fmt::format("{}: generation {}, reservation held by key {}, type {}\n", head, report.generation,
                       FormatKey(*report.holder_key), report.type);
  }
  if (!report.message.empty()) return report.message + "\n";
  return fmt::format("{}: {} done\n", head, action);
}

json CountersToJson(const IoCounters& c) {
  return json{{"ios", c.ios},           {"bytes", c.bytes},
              {"errors", c.errors},     {"failovers", c.failovers},
              {"requeues", c.requeues}, {"no_path_failures", c.no_path_failures},
              {"retries", c.retries}};
}

json PathToJson(const PathView& path) {
  return json{{"name", path.name},
              {"protocol", path.protocol},
              {"transport", path.transport},
              {"address", path.address},
              {"state", Name(path.state)},
              {"access", Name(path.access)},
              {"preferred", path.preferred},
              {"marginal", Name(path.marginal)},
              {"usable", path.usable},
              {"in_flight", path.in_flight},
              {"counters", CountersToJson(path.counters)},
              {"latency_us",
               json{{"p50", path.latency_p50_us}, {"p99", path.latency_p99_us}, {"max", path.latency_max_us}}}};
}

json HeadToJson(const HeadView& head) {
  json paths = json::array();
  for (const PathView& path : head.paths) paths.push_back(PathToJson(path));
  return json{{"name", head.name},
              {"alias", head.alias},
              {"identity", head.identity},
              {"protocol", head.protocol},
              {"size_bytes", head.capacity_bytes},
              {"block_size", head.block_size},
              {"vendor", head.vendor},
              {"product", head.product},
              {"policy", Name(head.policy)},
              {"state", Name(head.state)},
              {"counters", CountersToJson(head.counters)},
              {"paths", std::move(paths)}};
}

json HeadsToJson(std::span<const HeadView> heads) {
  json list = json::array();
  for (const HeadView& head : heads) list.push_back(HeadToJson(head));
  return json{{"heads", std::move(list)}};
}

json PrReportToJson(const PrReport& report) {
  json keys = json::array();
  for (std::uint64_t key : report.keys) keys.push_back(FormatKey(key));
  return json{{"generation", report.generation},
              {"keys", std::move(keys)},
              {"holder_key", report.holder_key ? json(FormatKey(*report.holder_key)) : json(nullptr)},
              {"type", report.type},
              {"message", report.message}};
}

Result<HeadView> HeadFromJson(const json& object) { return HeadFromJsonAt(object, "head"); }

Result<std::vector<HeadView>> HeadsFromJson(const json& object) {
  const json* heads = MPATH_TRY(Field(object, "list", "heads"));
  if (!heads->is_array()) return MakeError(Errc::kInvalidArgument, "list: field 'heads' must be an array");
  std::vector<HeadView> views;
  for (std::size_t i = 0; i < heads->size(); ++i) {
    views.push_back(MPATH_TRY(HeadFromJsonAt((*heads)[i], fmt::format("heads[{}]", i))));
  }
  return views;
}

Result<PrReport> PrReportFromJson(const json& object) {
  constexpr std::string_view kWhere = "pr";
  PrReport report;
  std::uint64_t generation = MPATH_TRY(GetUint(object, kWhere, "generation"));
  if (generation > std::numeric_limits<std::uint32_t>::max()) {
    return MakeError(Errc::kInvalidArgument, "pr: field 'generation' is out of range");
  }
  report.generation = static_cast<std::uint32_t>(generation);
  const json* keys = MPATH_TRY(Field(object, kWhere, "keys"));
  if (!keys->is_array()) return MakeError(Errc::kInvalidArgument, "pr: field 'keys' must be an array");
  for (const json& key : *keys) {
    if (!key.is_string()) return MakeError(Errc::kInvalidArgument, "pr: field 'keys' must hold strings");
    report.keys.push_back(MPATH_TRY(ParseKey(key.get<std::string>())));
  }
  const json* holder = MPATH_TRY(Field(object, kWhere, "holder_key"));
  if (holder->is_string()) {
    report.holder_key = MPATH_TRY(ParseKey(holder->get<std::string>()));
  } else if (!holder->is_null()) {
    return MakeError(Errc::kInvalidArgument, "pr: field 'holder_key' must be a string or null");
  }
  report.type = MPATH_TRY(GetString(object, kWhere, "type"));
  report.message = MPATH_TRY(GetString(object, kWhere, "message"));
  return report;
}

}  // namespace mpath::daemon
