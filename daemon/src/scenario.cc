#include "mpath/daemon/scenario.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <span>
#include <limits>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <toml++/toml.h>

#include "text_file.h"

namespace mpath::daemon {
namespace {

using namespace std::chrono_literals;
using KeyList = std::span<const std::string_view>;

constexpr std::array<std::string_view, 3> kScenarioTables = {"scenario", "step", "assert"};
constexpr std::string_view kScenarioKeys[] = {"name", "description", "duration_secs", "workload"};
constexpr std::string_view kStepKeys[] = {"at_secs", "action", "note"};  // besides the action's own
constexpr std::string_view kAssertKeys[] = {"kind"};                      // besides the kind's own
constexpr double kMaxDurationSecs = 24 * 3600;

// How a key's value is read; every value is kept as text in the step's or assertion's `args`.
enum class ValueKind : std::uint8_t {
  kString,
  kNumber,    // integer or floating point
  kCount,     // a non-negative integer
  kKey,       // a reservation key: a non-negative integer, or a string in any base strtoull takes ("0x...")
  kBoolean,
  kArgs,      // inject's `args = { key = value }`: strings, numbers and booleans, merged into the step's args
};

struct KeySpec {
  std::string_view key;
  ValueKind kind;
  bool required;
};

// One action of a step or one kind of an assertion: the keys it takes besides the common ones.
struct Form {
  std::string_view name;
  std::vector<KeySpec> keys;
};

const std::vector<Form>& Actions() {
  static const std::vector<Form> actions = {
      {"inject", {{"target", ValueKind::kString, true}, {"fault", ValueKind::kString, true},
                  {"args", ValueKind::kArgs, false}}},
      {"set-policy", {{"head", ValueKind::kString, true}, {"policy", ValueKind::kString, true}}},
      {"fail-path", {{"path", ValueKind::kString, true}}},
      {"reinstate-path", {{"path", ValueKind::kString, true}}},
      {"pr", {{"head", ValueKind::kString, true}, {"pr_action", ValueKind::kString, true},
              {"key", ValueKind::kKey, false}, {"service_key", ValueKind::kKey, false},
              {"type", ValueKind::kString, false}, {"ignore_existing", ValueKind::kBoolean, false},
              {"persist", ValueKind::kBoolean, false}}},
  };
  return actions;
}

const std::vector<Form>& AssertionKinds() {
  static const std::vector<Form> kinds = {
      {"no-errors-surfaced", {{"head", ValueKind::kString, false}}},
      {"no-data-errors", {{"head", ValueKind::kString, false}}},
      {"max-pause-ms", {{"head", ValueKind::kString, false}, {"max", ValueKind::kNumber, true}}},
      {"path-share-below", {{"path", ValueKind::kString, true}, {"percent", ValueKind::kNumber, true},
                            {"from_secs", ValueKind::kNumber, true}, {"to_secs", ValueKind::kNumber, true}}},
      {"rtpg-count-max", {{"target", ValueKind::kString, true}, {"max", ValueKind::kCount, true}}},
      {"ana-log-reads-max", {{"target", ValueKind::kString, true}, {"max", ValueKind::kCount, true}}},
      {"min-ios", {{"head", ValueKind::kString, false}, {"min", ValueKind::kCount, true}}},
      {"path-marginal", {{"path", ValueKind::kString, true}, {"from_secs", ValueKind::kNumber, true},
                         {"to_secs", ValueKind::kNumber, true}}},
  };
  return kinds;
}

// The faults Fabric::Inject knows, by what they are aimed at (fabric.h); their arguments the fabric checks itself.
constexpr std::string_view kLinkFaults[] = {"link-down", "link-up", "hang", "unhang", "latency",
                                 "fail-io",   "heal",    "flap", "drop",   "clear"};
constexpr std::string_view kArrayFaults[] = {"alua",  "preferred",       "unit-attention", "remap",
                                  "resize", "foreign-preempt", "power-cycle"};
constexpr std::string_view kSubsystemFaults[] = {"ana", "remap", "resize", "foreign-preempt"};
constexpr std::string_view kPrActions[] = {"register", "unregister", "reserve", "release", "preempt",
                                "preempt-abort", "clear", "read-keys", "read-reservation"};
constexpr std::string_view kPrTypes[] = {"write-exclusive", "exclusive-access", "write-exclusive-registrants-only",
                              "exclusive-access-registrants-only", "write-exclusive-all-registrants",
                              "exclusive-access-all-registrants"};

bool Contains(KeyList list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

std::string Join(KeyList list) { return fmt::format("{}", fmt::join(list, ", ")); }

std::string_view TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    default: return "a date or time";
  }
}

std::string NumberText(double value) { return fmt::format("{}", value); }

std::optional<double> ParseNumber(std::string_view text) {
  double value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<std::uint64_t> ParseKey(const std::string& text) {
  if (text.empty() || text[0] == '-' || text[0] == '+') return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text.c_str(), &end, 0);
  if (errno != 0 || end != text.c_str() + text.size()) return std::nullopt;
  return value;
}

double NumberArg(const std::map<std::string, std::string>& args, const std::string& key, double fallback = 0) {
  auto it = args.find(key);
  if (it == args.end()) return fallback;
  return ParseNumber(it->second).value_or(fallback);
}

std::string Arg(const std::map<std::string, std::string>& args, const std::string& key) {
  auto it = args.find(key);
  return it == args.end() ? std::string() : it->second;
}

// Reads the scenario's own tables. Every failure is "<file>:<line>:<column>: <key>: <what>", as in the config file.
// Threading: one parse on one thread.
class ScenarioParser {
 public:
  ScenarioParser(std::string_view file, const Config& fabric) : file_(file), fabric_(fabric) {}

  Result<void> Parse(const toml::table& root, Scenario& scenario) const;

 private:
  [[nodiscard]] std::unexpected<Error> Fail(const toml::source_region& at, std::string_view what) const {
    return std::unexpected(Error(Errc::kInvalidArgument,
                                 fmt::format("{}:{}:{}: {}", file_, at.begin.line, at.begin.column, what)));
  }
  [[nodiscard]] std::string Line(const toml::source_region& at) const {
    return fmt::format("{}:{}", file_, at.begin.line);
  }

  Result<void> ParseHeader(const toml::table& table, Scenario& scenario) const;
  Result<void> ParseWorkload(const toml::table& table, WorkloadOptions& options) const;
  Result<ScenarioStep> ParseStep(const toml::table& table, const std::string& name, double duration) const;
  Result<ScenarioAssertion> ParseAssertion(const toml::table& table, const std::string& name, double duration) const;
  // Reads every key of `table` but `common` by `form`, into `args`.
  Result<void> ReadForm(const toml::table& table, const std::string& name, const Form& form, KeyList common,
                        std::string_view what, std::map<std::string, std::string>& args) const;
  Result<std::string> ReadValue(const toml::node& node, const std::string& key, ValueKind kind) const;
  Result<void> CheckUnknownKeys(const toml::table& table, const std::string& header,
                                const std::vector<std::string_view>& allowed) const;
  Result<double> Seconds(const toml::table& table, const std::string& name, std::string_view key, double duration,
                         bool required) const;
  Result<void> CheckInject(const toml::table& table, const std::string& name, const ScenarioStep& step) const;
  [[nodiscard]] bool IsLinkOrHeadPath(std::string_view name) const;
  Result<void> CheckAssertion(const toml::table& table, const std::string& name, ScenarioAssertion& assertion,
                              double duration) const;

  const std::string file_;
  const Config& fabric_;
};

Result<void> ScenarioParser::CheckUnknownKeys(const toml::table& table, const std::string& header,
                                              const std::vector<std::string_view>& allowed) const {
  const toml::key* first = nullptr;  // toml++ keeps keys sorted: report the first unknown one in file order
  for (auto&& [key, value] : table) {
    if (std::find(allowed.begin(), allowed.end(), key.str()) != allowed.end()) continue;
    const auto& at = key.source().begin;
    if (first == nullptr || at.line < first->source().begin.line ||
        (at.line == first->source().begin.line && at.column < first->source().begin.column)) {
      first = &key;
    }
  }
  if (first == nullptr) return {};
  return Fail(first->source(), fmt::format("unknown key '{}' in {}; allowed keys: {}", first->str(), header,
                                           fmt::join(allowed, ", ")));
}

Result<std::string> ScenarioParser::ReadValue(const toml::node& node, const std::string& key, ValueKind kind) const {
  switch (kind) {
    case ValueKind::kString:
      if (!node.is_string()) return Fail(node.source(), fmt::format("{}: expected a string, got {}", key, TypeName(node)));
      if (node.as_string()->get().empty()) return Fail(node.source(), fmt::format("{}: must not be empty", key));
      return node.as_string()->get();
    case ValueKind::kNumber: {
      double value = 0;
      if (node.is_integer()) {
        value = static_cast<double>(node.as_integer()->get());
      } else if (node.is_floating_point()) {
        value = node.as_floating_point()->get();
      } else {
        return Fail(node.source(), fmt::format("{}: expected a number, got {}", key, TypeName(node)));
      }
      if (!std::isfinite(value)) return Fail(node.source(), fmt::format("{}: must be a finite number", key));
      return NumberText(value);
    }
    case ValueKind::kCount:
      if (!node.is_integer()) return Fail(node.source(), fmt::format("{}: expected an integer, got {}", key, TypeName(node)));
      if (node.as_integer()->get() < 0) {
        return Fail(node.source(), fmt::format("{}: must not be negative (got {})", key, node.as_integer()->get()));
      }
      return std::to_string(node.as_integer()->get());
    case ValueKind::kKey:
      if (node.is_integer()) {
        if (node.as_integer()->get() < 0) return Fail(node.source(), fmt::format("{}: must not be negative", key));
        return std::to_string(node.as_integer()->get());
      }
      if (node.is_string()) {
        if (!ParseKey(node.as_string()->get())) {
          return Fail(node.source(), fmt::format("{}: '{}' is not a 64-bit key (e.g. 0x1234)", key,
                                                 node.as_string()->get()));
        }
        return std::to_string(*ParseKey(node.as_string()->get()));
      }
      return Fail(node.source(), fmt::format("{}: expected an integer or a string, got {}", key, TypeName(node)));
    case ValueKind::kBoolean:
      if (!node.is_boolean()) {
        return Fail(node.source(), fmt::format("{}: expected a boolean (true or false), got {}", key, TypeName(node)));
      }
      return std::string(node.as_boolean()->get() ? "true" : "false");
    case ValueKind::kArgs:
    default:
      return Fail(node.source(), fmt::format("{}: internal: not a single value", key));
  }
}

Result<void> ScenarioParser::ReadForm(const toml::table& table, const std::string& name, const Form& form,
                                      KeyList common, std::string_view what,
                                      std::map<std::string, std::string>& args) const {
  std::vector<std::string_view> allowed(common.begin(), common.end());
  for (const KeySpec& spec : form.keys) allowed.push_back(spec.key);
  MPATH_TRY(CheckUnknownKeys(table, fmt::format("{} '{}'", what, form.name), allowed));
  for (const KeySpec& spec : form.keys) {
    const toml::node* node = table.get(spec.key);
    const std::string key = fmt::format("{}.{}", name, spec.key);
    if (node == nullptr) {
      if (spec.required) {
        return Fail(table.source(), fmt::format("{}: {} '{}' needs key '{}'", name, what, form.name, spec.key));
      }
      continue;
    }
    if (spec.kind != ValueKind::kArgs) {
      args[std::string(spec.key)] = MPATH_TRY(ReadValue(*node, key, spec.kind));
      continue;
    }
    if (!node->is_table()) {
      return Fail(node->source(), fmt::format("{}: expected a table (args = {{ key = value }}), got {}", key,
                                              TypeName(*node)));
    }
    for (auto&& [arg, value] : *node->as_table()) {
      const std::string arg_key = fmt::format("{}.{}", key, arg.str());
      if (args.contains(std::string(arg.str())) || arg.str() == "note") {
        return Fail(arg.source(), fmt::format("{}: '{}' is a key of the step itself", arg_key, arg.str()));
      }
      std::string text;
      if (value.is_string()) {
        text = value.as_string()->get();
      } else if (value.is_integer()) {
        text = std::to_string(value.as_integer()->get());
      } else if (value.is_floating_point() && std::isfinite(value.as_floating_point()->get())) {
        text = NumberText(value.as_floating_point()->get());
      } else if (value.is_boolean()) {
        text = value.as_boolean()->get() ? "true" : "false";
      } else {
        return Fail(value.source(), fmt::format("{}: expected a string, number or boolean, got {}", arg_key,
                                                TypeName(value)));
      }
      args[std::string(arg.str())] = std::move(text);
    }
  }
  return {};
}

Result<double> ScenarioParser::Seconds(const toml::table& table, const std::string& name, std::string_view key,
                                       double duration, bool required) const {
  const toml::node* node = table.get(key);
  if (node == nullptr) {
    if (required) return Fail(table.source(), fmt::format("{}: missing key '{}'", name, key));
    return 0.0;
  }
  const std::string text = MPATH_TRY(ReadValue(*node, fmt::format("{}.{}", name, key), ValueKind::kNumber));
  const double value = *ParseNumber(text);
  if (value < 0 || value > duration) {
    return Fail(node->source(), fmt::format("{}.{}: must be within the scenario's duration, 0 to {} s (got {})", name,
                                            key, duration, value));
  }
  return value;
}

Result<void> ScenarioParser::ParseWorkload(const toml::table& table, WorkloadOptions& options) const {
  MPATH_TRY(CheckUnknownKeys(table, "[scenario.workload]",
                             {"slots_per_head", "io_bytes", "blocks_per_slot", "flush_every", "trim_every"}));
  const auto integer = [&](std::string_view key, std::int64_t min, std::int64_t max,
                           auto& out) -> Result<void> {
    const toml::node* node = table.get(key);
    if (node == nullptr) return {};
    const std::string name = fmt::format("scenario.workload.{}", key);
    if (!node->is_integer()) {
      return Fail(node->source(), fmt::format("{}: expected an integer, got {}", name, TypeName(*node)));
    }
    const std::int64_t value = node->as_integer()->get();
    if (value < min || value > max) {
      return Fail(node->source(), fmt::format("{}: must be between {} and {} (got {})", name, min, max, value));
    }
    out = static_cast<std::remove_reference_t<decltype(out)>>(value);
    return {};
  };
  MPATH_TRY(integer("slots_per_head", 1, 4096, options.slots_per_head));
  MPATH_TRY(integer("io_bytes", 512, 1 << 20, options.io_bytes));
  if (options.io_bytes % 512 != 0) {
    return Fail(table.get("io_bytes")->source(),
                fmt::format("scenario.workload.io_bytes: must be a multiple of 512 (got {})", options.io_bytes));
  }
  MPATH_TRY(integer("blocks_per_slot", 1, std::int64_t{1} << 32, options.blocks_per_slot));
  MPATH_TRY(integer("flush_every", 0, 1 << 20, options.flush_every));
  MPATH_TRY(integer("trim_every", 0, 1 << 20, options.trim_every));
  return {};
}

Result<void> ScenarioParser::ParseHeader(const toml::table& table, Scenario& scenario) const {
  MPATH_TRY(CheckUnknownKeys(table, "[scenario]", std::vector<std::string_view>(std::begin(kScenarioKeys), std::end(kScenarioKeys))));
  if (const toml::node* node = table.get("name")) scenario.name = MPATH_TRY(ReadValue(*node, "scenario.name", ValueKind::kString));
  if (const toml::node* node = table.get("description")) {
    if (!node->is_string()) {
      return Fail(node->source(), fmt::format("scenario.description: expected a string, got {}", TypeName(*node)));
    }
    scenario.description = node->as_string()->get();
  }
  if (const toml::node* node = table.get("duration_secs")) {
    const double value = *ParseNumber(MPATH_TRY(ReadValue(*node, "scenario.duration_secs", ValueKind::kNumber)));
    if (!(value > 0) || value > kMaxDurationSecs) {
      return Fail(node->source(), fmt::format("scenario.duration_secs: must be more than 0 and at most {} (got {})",
                                              kMaxDurationSecs, value));
    }
    scenario.duration_secs = value;
  }
  if (const toml::node* node = table.get("workload")) {
    if (!node->is_table()) {
      return Fail(node->source(), fmt::format("scenario.workload: expected a table ([scenario.workload]), got {}",
                                              TypeName(*node)));
    }
    MPATH_TRY(ParseWorkload(*node->as_table(), scenario.workload));
  }
  return {};
}

// A configured path, or one of the head paths it carries ("<path>:lun<N>" for SCSI, "<path>n<nsid>" for NVMe).
bool ScenarioParser::IsLinkOrHeadPath(std::string_view name) const {
  const auto& sim = fabric_.sim;
  for (const SimPath& path : sim.paths) {
    if (path.name == name) return true;
    for (const SimScsiArray& array : sim.scsi_arrays) {
      if (array.name != path.target) continue;
      for (const SimLogicalUnit& lu : array.lus) {
        if (name == fmt::format("{}:lun{}", path.name, lu.lun)) return true;
      }
    }
    for (const SimNvmeSubsystem& subsystem : sim.nvme_subsystems) {
      if (subsystem.name != path.target) continue;
      for (const SimNamespace& ns : subsystem.namespaces) {
        if (name == fmt::format("{}n{}", path.name, ns.nsid)) return true;
      }
    }
  }
  return false;
}

Result<void> ScenarioParser::CheckInject(const toml::table& table, const std::string& name,
                                         const ScenarioStep& step) const {
  const std::string target = Arg(step.args, "target");
  const std::string fault = Arg(step.args, "fault");
  const toml::node& target_node = *table.get("target");
  const toml::node& fault_node = *table.get("fault");
  const auto& sim = fabric_.sim;
  KeyList faults;
  std::string_view kind;
  if (IsLinkOrHeadPath(target)) {
    faults = kLinkFaults;
    kind = "path";
  } else if (std::any_of(sim.scsi_arrays.begin(), sim.scsi_arrays.end(),
                         [&](const SimScsiArray& a) { return a.name == target; })) {
    faults = kArrayFaults;
    kind = "array";
  } else if (std::any_of(sim.nvme_subsystems.begin(), sim.nvme_subsystems.end(),
                         [&](const SimNvmeSubsystem& s) { return s.name == target; })) {
    faults = kSubsystemFaults;
    kind = "subsystem";
  } else {
    return Fail(target_node.source(), fmt::format("{}.target: no path, array or subsystem of the fabric is named '{}'",
                                                  name, target));
  }
  if (!Contains(faults, fault)) {
    return Fail(fault_node.source(), fmt::format("{}.fault: unknown fault '{}' for {} '{}'; expected one of: {}", name,
                                                 fault, kind, target, Join(faults)));
  }
  return {};
}

Result<ScenarioStep> ScenarioParser::ParseStep(const toml::table& table, const std::string& name,
                                               double duration) const {
  ScenarioStep step;
  step.source = Line(table.source());
  step.at_secs = MPATH_TRY(Seconds(table, name, "at_secs", duration, true));
  const toml::node* action = table.get("action");
  if (action == nullptr) return Fail(table.source(), fmt::format("{}: missing key 'action'", name));
  step.action = MPATH_TRY(ReadValue(*action, name + ".action", ValueKind::kString));
  const auto& actions = Actions();
  const auto form = std::find_if(actions.begin(), actions.end(), [&](const Form& f) { return f.name == step.action; });
  if (form == actions.end()) {
    std::vector<std::string_view> names;
    for (const Form& f : actions) names.push_back(f.name);
    return Fail(action->source(), fmt::format("{}.action: unknown action '{}'; expected one of: {}", name,
                                              step.action, fmt::join(names, ", ")));
  }
  if (const toml::node* note = table.get("note")) step.note = MPATH_TRY(ReadValue(*note, name + ".note", ValueKind::kString));
  MPATH_TRY(ReadForm(table, name, *form, kStepKeys, "action", step.args));

  if (step.action == "inject") {
    MPATH_TRY(CheckInject(table, name, step));
  } else if (step.action == "set-policy") {
    if (auto policy = ParseIoPolicy(step.args["policy"]); !policy) {
      return Fail(table.get("policy")->source(), fmt::format("{}.policy: {}", name, policy.error().message()));
    }
  } else if (step.action == "pr") {
    if (!Contains(kPrActions, step.args["pr_action"])) {
      return Fail(table.get("pr_action")->source(),
                  fmt::format("{}.pr_action: unknown '{}'; expected one of: {}", name, step.args["pr_action"],
                              Join(kPrActions)));
    }
    if (step.args.contains("type") && !Contains(kPrTypes, step.args["type"])) {
      return Fail(table.get("type")->source(), fmt::format("{}.type: unknown reservation type '{}'; expected one of: {}",
                                                           name, step.args["type"], Join(kPrTypes)));
    }
  }
  return step;
}

Result<void> ScenarioParser::CheckAssertion(const toml::table& table, const std::string& name,
                                            ScenarioAssertion& assertion, double duration) const {
  auto& args = assertion.args;
  const std::string& kind = assertion.kind;
  if (kind == "max-pause-ms" && *ParseNumber(args["max"]) <= 0) {
    return Fail(table.get("max")->source(), fmt::format("{}.max: must be more than 0 ms (got {})", name, args["max"]));
  }
  if (kind == "path-share-below") {
    const double percent = *ParseNumber(args["percent"]);
    if (!(percent > 0 && percent <= 100)) {
      return Fail(table.get("percent")->source(),
                  fmt::format("{}.percent: must be more than 0 and at most 100 (got {})", name, args["percent"]));
    }
  }
  if (kind == "path-share-below" || kind == "path-marginal") {
    const double from = MPATH_TRY(Seconds(table, name, "from_secs", duration, true));
    const double to = MPATH_TRY(Seconds(table, name, "to_secs", duration, true));
    if (to <= from) {
      return Fail(table.get("to_secs")->source(),
                  fmt::format("{}.to_secs: must be after from_secs ({} s; got {} s)", name, from, to));
    }
  }
  if (kind == "rtpg-count-max" || kind == "ana-log-reads-max") {
    const bool scsi = kind == "rtpg-count-max";
    const std::string& target = args["target"];
    const bool found =
        scsi ? std::any_of(fabric_.sim.scsi_arrays.begin(), fabric_.sim.scsi_arrays.end(),
                           [&](const SimScsiArray& a) { return a.name == target; })
             : std::any_of(fabric_.sim.nvme_subsystems.begin(), fabric_.sim.nvme_subsystems.end(),
                           [&](const SimNvmeSubsystem& s) { return s.name == target; });
    if (!found) {
      return Fail(table.get("target")->source(), fmt::format("{}.target: the fabric has no {} named '{}'", name,
                                                             scsi ? "SCSI array" : "NVMe subsystem", target));
    }
  }
  return {};
}

Result<ScenarioAssertion> ScenarioParser::ParseAssertion(const toml::table& table, const std::string& name,
                                                         double duration) const {
  ScenarioAssertion assertion;
  assertion.source = Line(table.source());
  const toml::node* kind = table.get("kind");
  if (kind == nullptr) return Fail(table.source(), fmt::format("{}: missing key 'kind'", name));
  assertion.kind = MPATH_TRY(ReadValue(*kind, name + ".kind", ValueKind::kString));
  const auto& kinds = AssertionKinds();
  const auto form = std::find_if(kinds.begin(), kinds.end(), [&](const Form& f) { return f.name == assertion.kind; });
  if (form == kinds.end()) {
    std::vector<std::string_view> names;
    for (const Form& f : kinds) names.push_back(f.name);
    return Fail(kind->source(), fmt::format("{}.kind: unknown assertion kind '{}'; expected one of: {}", name,
                                            assertion.kind, fmt::join(names, ", ")));
  }
  MPATH_TRY(ReadForm(table, name, *form, kAssertKeys, "assertion", assertion.args));
  MPATH_TRY(CheckAssertion(table, name, assertion, duration));
  return assertion;
}

Result<void> ScenarioParser::Parse(const toml::table& root, Scenario& scenario) const {
  if (const toml::node* header = root.get("scenario")) {
    if (!header->is_table()) {
      return Fail(header->source(), fmt::format("scenario: expected a table ([scenario]), got {}", TypeName(*header)));
    }
    MPATH_TRY(ParseHeader(*header->as_table(), scenario));
  }
  const auto tables = [&](std::string_view key) -> Result<std::vector<const toml::table*>> {
    std::vector<const toml::table*> out;
    const toml::node* node = root.get(key);
    if (node == nullptr) return out;
    if (!node->is_array_of_tables()) {
      return Fail(node->source(), fmt::format("{}: expected an array of tables ([[{}]]), got {}", key, key,
                                              TypeName(*node)));
    }
    for (const toml::node& element : *node->as_array()) out.push_back(element.as_table());
    return out;
  };
  const auto steps = MPATH_TRY(tables("step"));
  for (std::size_t i = 0; i < steps.size(); ++i) {
    scenario.steps.push_back(MPATH_TRY(ParseStep(*steps[i], fmt::format("step[{}]", i), scenario.duration_secs)));
  }
  // Steps play in time order; steps at the same time keep the file's order.
  std::stable_sort(scenario.steps.begin(), scenario.steps.end(),
                   [](const ScenarioStep& a, const ScenarioStep& b) { return a.at_secs < b.at_secs; });
  const auto assertions = MPATH_TRY(tables("assert"));
  for (std::size_t i = 0; i < assertions.size(); ++i) {
    scenario.assertions.push_back(
        MPATH_TRY(ParseAssertion(*assertions[i], fmt::format("assert[{}]", i), scenario.duration_secs)));
  }
  return {};
}

std::string DefaultName(std::string_view file) {
  const auto slash = file.find_last_of('/');
  std::string_view base = slash == std::string_view::npos ? file : file.substr(slash + 1);
  if (base.ends_with(".toml")) base.remove_suffix(5);
  return base.empty() ? std::string("scenario") : std::string(base);
}

}  // namespace

Result<Scenario> ParseScenario(std::string_view text, std::string_view file_name) {
  Scenario scenario;
  scenario.fabric = MPATH_TRY(ParseConfig(text, file_name, kScenarioTables));
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(file_name));
  } catch (const toml::parse_error& e) {  // ParseConfig has read it already; kept for safety
    return MakeError(Errc::kInvalidArgument, fmt::format("{}:{}:{}: {}", file_name, e.source().begin.line,
                                                         e.source().begin.column, e.description()));
  }
  MPATH_TRY(ScenarioParser(file_name, scenario.fabric).Parse(root, scenario));
  if (scenario.name.empty()) scenario.name = DefaultName(file_name);
  return scenario;
}

Result<Scenario> LoadScenario(const std::string& path) {
  const std::string text = MPATH_TRY(ReadTextFile(path, "scenario file"));
  return ParseScenario(text, path);
}

bool ScenarioResult::passed() const {
  return data_errors == 0 && unexpected_errors == 0 &&
         std::all_of(assertions.begin(), assertions.end(), [](const AssertionResult& a) { return a.passed; });
}

namespace {

double Secs(Nanos d) { return std::chrono::duration<double>(d).count(); }
Nanos FromSecs(double s) { return std::chrono::duration_cast<Nanos>(std::chrono::duration<double>(s)); }

std::string DescribeStep(const ScenarioStep& step) {
  std::string text = step.action;
  const auto add = [&](const char* key) {
    if (auto it = step.args.find(key); it != step.args.end()) text += " " + it->second;
  };
  if (step.action == "inject") {
    add("target");
    add("fault");
    for (const auto& [key, value] : step.args) {
      if (key != "target" && key != "fault") text += fmt::format(" {}={}", key, value);
    }
  } else if (step.action == "set-policy") {
    add("head");
    add("policy");
  } else if (step.action == "fail-path" || step.action == "reinstate-path") {
    add("path");
  } else {
    add("head");
    add("pr_action");
  }
  if (!step.note.empty()) text += fmt::format(" ({})", step.note);
  return text;
}

// One run of a scenario: the fabric, the workload, the clock of the timeline and what was observed on the way.
// Threading: thread-confined to the thread that calls RunScenario.
class Runner {
 public:
  Runner(const Scenario& scenario, const RunOptions& options, double scale)
      : scenario_(scenario), options_(options), scale_(scale) {}

  Result<ScenarioResult> Run();

 private:
  // A sample of one head's and one path's completed I/Os, for path-share-below.
  struct ShareSample {
    bool taken = false;
    bool found = false;
    std::uint64_t path_ios = 0;
    std::uint64_t head_ios = 0;
  };
  struct ShareWatch {
    const ScenarioAssertion* assertion;
    Nanos from, to;
    ShareSample at_from, at_to;
  };
  struct MarginalWatch {
    const ScenarioAssertion* assertion;
    Nanos from, to;
    bool seen = false;
    std::uint64_t samples = 0;
  };

  void Emit(Nanos at, std::string what, bool ok);
  void PlayStep(const ScenarioStep& step, Nanos at);
  Result<std::string> Perform(const ScenarioStep& step);
  std::shared_ptr<Path> FindPath(const std::string& name, std::shared_ptr<Head>* head = nullptr) const;
  ShareSample SampleShare(const std::string& path) const;
  void Observe(Nanos elapsed);
  void Evaluate();
  // The stats of the head a scenario names (name, alias or identity); nullptr when there is none.
  const HeadStats* StatsOf(const std::string& head) const;
  std::vector<const HeadStats*> Selected(const ScenarioAssertion& assertion, std::string& label,
                                         std::string& problem) const;

  const Scenario& scenario_;
  const RunOptions& options_;
  const double scale_;
  std::unique_ptr<Fabric> fabric_;
  std::unique_ptr<Workload> workload_;
  ScenarioResult result_;
  std::vector<ShareWatch> shares_;
  std::vector<MarginalWatch> marginals_;
  std::map<std::string, std::uint64_t> rtpg_at_start_, ana_reads_at_start_;
  std::map<std::string, std::string> identity_of_;  // head name, alias and identity -> identity, kept after the run
};

void Runner::Emit(Nanos at, std::string what, bool ok) {
  result_.events.push_back({at, std::move(what), ok});
  if (!ok) ++result_.unexpected_errors;
  if (options_.on_event) options_.on_event(result_.events.back());
}

Result<std::string> Runner::Perform(const ScenarioStep& step) {
  const auto& args = step.args;
  if (step.action == "inject") {
    FaultRequest request;
    request.target = Arg(args, "target");
    request.fault = Arg(args, "fault");
    for (const auto& [key, value] : args) {
      if (key != "target" && key != "fault") request.args[key] = value;
    }
    return fabric_->Inject(request);
  }
  if (step.action == "set-policy") {
    const IoPolicyKind policy = MPATH_TRY(ParseIoPolicy(Arg(args, "policy")));
    MPATH_TRY(fabric_->SetPolicy(Arg(args, "head"), policy));
    return fmt::format("iopolicy of {} is now {}", Arg(args, "head"), Name(policy));
  }
  if (step.action == "fail-path") {
    MPATH_TRY(fabric_->FailPath(Arg(args, "path")));
    return fmt::format("{} failed by the operator", Arg(args, "path"));
  }
  if (step.action == "reinstate-path") {
    MPATH_TRY(fabric_->ReinstatePath(Arg(args, "path")));
    return fmt::format("{} reinstated", Arg(args, "path"));
  }
  PrRequest request;
  request.head = Arg(args, "head");
  request.action = Arg(args, "pr_action");
  if (args.contains("key")) request.key = ParseKey(Arg(args, "key")).value_or(0);
  if (args.contains("service_key")) request.service_key = ParseKey(Arg(args, "service_key")).value_or(0);
  if (args.contains("type")) request.type = Arg(args, "type");
  request.ignore_existing = Arg(args, "ignore_existing") == "true";
  request.persist = Arg(args, "persist") == "true";
  const PrReport report = MPATH_TRY(fabric_->Reservation(request));
  return report.message;
}

void Runner::PlayStep(const ScenarioStep& step, Nanos at) {
  auto done = Perform(step);
  std::string what = DescribeStep(step);
  if (done) {
    Emit(at, std::move(what), true);
  } else {
    Emit(at, fmt::format("{}: failed: {} [{}]", what, done.error().ToString(), step.source), false);
  }
}

std::shared_ptr<Path> Runner::FindPath(const std::string& name, std::shared_ptr<Head>* head_out) const {
  for (const auto& head : fabric_->AllHeads()) {
    if (auto path = head->FindPath(name)) {
      if (head_out != nullptr) *head_out = head;
      return path;
    }
  }
  return nullptr;
}

Runner::ShareSample Runner::SampleShare(const std::string& path_name) const {
  ShareSample sample;
  sample.taken = true;
  std::shared_ptr<Head> head;
  if (auto path = FindPath(path_name, &head)) {
    sample.found = true;
    sample.path_ios = path->Counters().ios;
    sample.head_ios = head->Counters().ios;
  }
  return sample;
}

void Runner::Observe(Nanos elapsed) {
  for (ShareWatch& watch : shares_) {
    if (!watch.at_from.taken && elapsed >= watch.from) watch.at_from = SampleShare(watch.assertion->args.at("path"));
    if (!watch.at_to.taken && elapsed >= watch.to) watch.at_to = SampleShare(watch.assertion->args.at("path"));
  }
  for (MarginalWatch& watch : marginals_) {
    if (elapsed < watch.from || elapsed > watch.to || watch.seen) continue;
    ++watch.samples;
    if (auto path = FindPath(watch.assertion->args.at("path")); path && path->marginal()) watch.seen = true;
  }
}

const HeadStats* Runner::StatsOf(const std::string& head) const {
  auto it = identity_of_.find(head);
  if (it == identity_of_.end()) return nullptr;
  for (const HeadStats& stats : result_.heads) {
    if (stats.identity == it->second) return &stats;
  }
  return nullptr;
}

std::vector<const HeadStats*> Runner::Selected(const ScenarioAssertion& assertion, std::string& label,
                                               std::string& problem) const {
  std::vector<const HeadStats*> out;
  auto it = assertion.args.find("head");
  if (it == assertion.args.end()) {
    label = "every head";
    for (const HeadStats& stats : result_.heads) out.push_back(&stats);
    return out;
  }
  label = it->second;
  if (const HeadStats* stats = StatsOf(it->second)) {
    out.push_back(stats);
  } else {
    problem = fmt::format("no head is named '{}'", it->second);
  }
  return out;
}

void Runner::Evaluate() {
  for (const ScenarioAssertion& assertion : scenario_.assertions) {
    const auto& args = assertion.args;
    const std::string& kind = assertion.kind;
    AssertionResult out;
    std::string label, problem;
    if (kind == "no-errors-surfaced" || kind == "no-data-errors" || kind == "max-pause-ms" || kind == "min-ios") {
      const auto heads = Selected(assertion, label, problem);
      if (!problem.empty()) {
        out.description = fmt::format("{} ({}): {}", kind, assertion.source, problem);
        result_.assertions.push_back(std::move(out));
        continue;
      }
      out.passed = true;
      std::string worst;
      if (kind == "no-errors-surfaced" || kind == "no-data-errors") {
        const bool data = kind == "no-data-errors";
        std::uint64_t total = 0;
        for (const HeadStats* h : heads) {
          const std::uint64_t n = data ? h->data_errors : h->errors_surfaced;
          total += n;
          if (n != 0) worst += fmt::format("{}{} on {}", worst.empty() ? "" : ", ", n, h->name);
        }
        out.passed = total == 0;
        out.description = fmt::format("no {} on {}: {}", data ? "data errors" : "errors surfaced", label,
                                      total == 0 ? std::string("none") : worst);
      } else if (kind == "max-pause-ms") {
        const double max_ms = NumberArg(args, "max");
        Nanos longest{0};
        std::string where = "no head";
        for (const HeadStats* h : heads) {
          if (h->max_pause >= longest) {
            longest = h->max_pause;
            where = h->name;
          }
          if (Secs(h->max_pause) * 1000 > max_ms) out.passed = false;
        }
        out.description = fmt::format("max pause of {} <= {} ms: {:.0f} ms ({})", label, max_ms,
                                      Secs(longest) * 1000, where);
      } else {
        // A minimum of I/Os is written for the scenario's own duration; a shorter or longer run scales it.
        const auto min = static_cast<std::uint64_t>(std::ceil(NumberArg(args, "min") * scale_));
        std::uint64_t fewest = std::numeric_limits<std::uint64_t>::max();
        std::string where = "no head";
        for (const HeadStats* h : heads) {
          if (h->ios <= fewest) {
            fewest = h->ios;
            where = h->name;
          }
          if (h->ios < min) out.passed = false;
        }
        if (heads.empty()) fewest = 0;
        out.description = fmt::format("at least {} I/Os on {}: fewest {} ({})", min, label, fewest, where);
      }
    } else if (kind == "path-share-below") {
      const ShareWatch& w = *std::find_if(shares_.begin(), shares_.end(),
                                          [&](const ShareWatch& s) { return s.assertion == &assertion; });
      const std::string& path = args.at("path");
      const double percent = NumberArg(args, "percent");
      const std::string window = fmt::format("{:.1f}-{:.1f} s", Secs(w.from), Secs(w.to));
      if (!w.at_from.found || !w.at_to.found) {
        out.description = fmt::format("share of I/O on {} below {}% over {}: path {} at {}", path, percent, window,
                                      "not found", w.at_from.found ? "the end" : "the start");
      } else {
        // A path that left and came back starts its counters anew.
        const std::uint64_t path_ios = w.at_to.path_ios >= w.at_from.path_ios ? w.at_to.path_ios - w.at_from.path_ios
                                                                              : w.at_to.path_ios;
        const std::uint64_t head_ios = w.at_to.head_ios - std::min(w.at_to.head_ios, w.at_from.head_ios);
        if (head_ios == 0) {
          out.description = fmt::format("share of I/O on {} below {}% over {}: its head completed no I/O", path,
                                        percent, window);
        } else {
          const double share = 100.0 * static_cast<double>(path_ios) / static_cast<double>(head_ios);
          out.passed = share < percent;
          out.description = fmt::format("share of I/O on {} below {}% over {}: {:.1f}% ({} of {})", path, percent,
                                        window, share, path_ios, head_ios);
        }
      }
    } else if (kind == "path-marginal") {
      const MarginalWatch& w = *std::find_if(marginals_.begin(), marginals_.end(),
                                             [&](const MarginalWatch& m) { return m.assertion == &assertion; });
      out.passed = w.seen;
      out.description = fmt::format("{} marked marginal between {:.1f} and {:.1f} s: {}", args.at("path"),
                                    Secs(w.from), Secs(w.to),
                                    w.seen ? "yes" : fmt::format("no ({} samples)", w.samples));
    } else if (kind == "rtpg-count-max" || kind == "ana-log-reads-max") {
      const bool scsi = kind == "rtpg-count-max";
      const std::string& target = args.at("target");
      const auto max = static_cast<std::uint64_t>(NumberArg(args, "max"));
      auto now = scsi ? fabric_->RtpgCount(target) : fabric_->AnaLogReads(target);
      const auto& start = scsi ? rtpg_at_start_ : ana_reads_at_start_;
      const std::string what = scsi ? "REPORT TARGET PORT GROUPS commands" : "ANA log reads";
      if (!now) {
        out.description = fmt::format("{} to {} <= {}: {}", what, target, max, now.error().ToString());
      } else {
        const std::uint64_t count = *now - std::min(*now, start.count(target) ? start.at(target) : 0);
        out.passed = count <= max;
        out.description = fmt::format("{} to {} during the run <= {}: {}", what, target, max, count);
      }
    } else {
      out.description = fmt::format("{}: unknown assertion kind", kind);
    }
    result_.assertions.push_back(std::move(out));
  }
}

Result<ScenarioResult> Runner::Run() {
  result_.name = scenario_.name;
  fabric_ = MPATH_TRY(Fabric::Create(scenario_.fabric, options_.fabric));
  const Clock& clock = fabric_->control_loop().clock();
  const BuildReport report = MPATH_TRY(fabric_->Build());
  for (const auto& path : report.paths) {
    if (!path.attached) Emit(Nanos(0), fmt::format("path {} did not attach: {}", path.path, path.message), false);
  }
  auto heads = fabric_->AllHeads();
  if (heads.empty()) {
    return MakeError(Errc::kNotFound,
                     fmt::format("scenario {}: no multipath head came up from the fabric ({} paths configured)",
                                 scenario_.name, scenario_.fabric.sim.paths.size()));
  }
  for (const HeadView& view : fabric_->Heads()) {
    identity_of_[view.name] = view.identity;
    identity_of_[view.identity] = view.identity;
    if (!view.alias.empty()) identity_of_[view.alias] = view.identity;
  }
  workload_ = MPATH_TRY(Workload::Create(*fabric_, std::move(heads), scenario_.workload));
  heads.clear();  // heads must not outlive the fabric, whose control loop their timers run on

  for (const ScenarioAssertion& assertion : scenario_.assertions) {
    const auto at = [&](const char* key) { return FromSecs(NumberArg(assertion.args, key) * scale_); };
    if (assertion.kind == "path-share-below") shares_.push_back({&assertion, at("from_secs"), at("to_secs"), {}, {}});
    if (assertion.kind == "path-marginal") marginals_.push_back({&assertion, at("from_secs"), at("to_secs")});
    if (assertion.kind == "rtpg-count-max") {
      if (auto n = fabric_->RtpgCount(assertion.args.at("target"))) rtpg_at_start_[assertion.args.at("target")] = *n;
    }
    if (assertion.kind == "ana-log-reads-max") {
      if (auto n = fabric_->AnaLogReads(assertion.args.at("target"))) {
        ana_reads_at_start_[assertion.args.at("target")] = *n;
      }
    }
  }

  const Nanos total = FromSecs(scenario_.duration_secs * scale_);
  constexpr Nanos kTick = 250ms;
  constexpr Nanos kGranularity = 50ms;  // how often marginal states are sampled, and the latest a step can be late
  const TimePoint start = clock.Now();
  workload_->Start();
  std::size_t next_step = 0;
  Nanos next_tick{0};
  for (;;) {
    const Nanos elapsed = clock.Now() - start;
    while (next_step < scenario_.steps.size() && FromSecs(scenario_.steps[next_step].at_secs * scale_) <= elapsed) {
      PlayStep(scenario_.steps[next_step], clock.Now() - start);
      ++next_step;
    }
    Observe(clock.Now() - start);
    if (elapsed >= total) break;
    if (elapsed >= next_tick) {
      if (options_.on_tick) options_.on_tick(elapsed, total, *fabric_, workload_->Stats());
      next_tick = elapsed + kTick;
    }
    Nanos wake = std::min({next_tick, total, elapsed + kGranularity});
    if (next_step < scenario_.steps.size()) wake = std::min(wake, FromSecs(scenario_.steps[next_step].at_secs * scale_));
    for (const ShareWatch& watch : shares_) {
      if (!watch.at_from.taken) wake = std::min(wake, watch.from);
      if (!watch.at_to.taken) wake = std::min(wake, watch.to);
    }
    std::this_thread::sleep_for(std::max(wake - elapsed, Nanos(1ms)));
  }
  // Steps at the very end (at_secs == duration) have played above; anything the loop left behind plays now.
  while (next_step < scenario_.steps.size()) PlayStep(scenario_.steps[next_step++], clock.Now() - start);
  Observe(total);

  if (auto stopped = workload_->Stop(); !stopped) Emit(clock.Now() - start, stopped.error().ToString(), false);
  result_.elapsed = clock.Now() - start;
  result_.heads = workload_->Stats();
  result_.errors = workload_->Errors();
  if (options_.on_tick) options_.on_tick(result_.elapsed, total, *fabric_, result_.heads);
  for (const HeadStats& head : result_.heads) {
    result_.data_errors += head.data_errors;
    result_.unexpected_errors += head.errors_surfaced;
  }
  Evaluate();
  workload_.reset();
  fabric_.reset();
  return std::move(result_);
}

}  // namespace

Result<ScenarioResult> RunScenario(const Scenario& scenario, const RunOptions& options) {
  double scale = 1;
  if (options.duration_secs) {
    const double seconds = *options.duration_secs;
    if (!std::isfinite(seconds) || seconds <= 0 || seconds > kMaxDurationSecs) {
      return MakeError(Errc::kInvalidArgument,
                       fmt::format("the run's duration must be more than 0 and at most {} s (got {})",
                                   kMaxDurationSecs, seconds));
    }
    scale = seconds / scenario.duration_secs;
  }
  return Runner(scenario, options, scale).Run();
}

}  // namespace mpath::daemon
