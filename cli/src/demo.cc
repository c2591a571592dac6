#include "demo.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "mpath/daemon/render.h"
#include "mpath/daemon/scenario.h"

namespace mpath::cli {
namespace {

using daemon::HeadStats;
using daemon::ScenarioEvent;
using daemon::ScenarioResult;

constexpr double kMaxSeconds = 24 * 3600;
constexpr std::size_t kEventsOnScreen = 8;
constexpr std::size_t kErrorsInJson = 100;

double Secs(Nanos d) { return std::chrono::duration<double>(d).count(); }

std::string EventLine(const ScenarioEvent& event) {
  return fmt::format("[{:7.2f}s] {}{}", Secs(event.at), event.ok ? "" : "FAILED: ", event.what);
}

std::string Rate(double per_second) {
  if (per_second >= 1e6) return fmt::format("{:.1f}M/s", per_second / 1e6);
  if (per_second >= 1e4) return fmt::format("{:.0f}k/s", per_second / 1e3);
  if (per_second >= 1e3) return fmt::format("{:.1f}k/s", per_second / 1e3);
  return fmt::format("{:.0f}/s", per_second);
}

std::string Millis(Nanos d) { return fmt::format("{:.0f} ms", Secs(d) * 1000); }

std::string HeadLabel(const HeadStats& head) {
  return head.alias.empty() ? head.name : fmt::format("{} ({})", head.name, head.alias);
}

// The live screen: the topology with each path's access state and I/O rate, and a progress bar; redrawn in place
// about four times a second. Threading: runs on the scenario runner's thread only.
class LiveScreen {
 public:
  explicit LiveScreen(std::string title) : title_(std::move(title)) {}

  void Event(const ScenarioEvent& event) {
    events_.push_back(EventLine(event));
    if (events_.size() > kEventsOnScreen) events_.pop_front();
  }

  void Draw(Nanos elapsed, Nanos total, daemon::Fabric& fabric, const std::vector<HeadStats>& stats) {
    const double dt = Secs(elapsed - last_draw_);
    last_draw_ = elapsed;
    const double fraction = total > Nanos(0) ? std::min(1.0, Secs(elapsed) / Secs(total)) : 1.0;
    constexpr int kBar = 40;
    const int filled = static_cast<int>(fraction * kBar);
    std::string screen = "\x1b[H";  // home; every line clears its own rest, the end clears what is below
    const auto line = [&screen](const std::string& text) { screen += text + "\x1b[K\n"; };
    line(title_);
    line(fmt::format("[{}{}] {:5.1f} s / {:.1f} s", std::string(static_cast<std::size_t>(filled), '#'),
                     std::string(static_cast<std::size_t>(kBar - filled), '.'), Secs(elapsed), Secs(total)));
    line("");
    std::map<std::string, const HeadStats*> by_identity;
    for (const HeadStats& s : stats) by_identity[s.identity] = &s;
    std::map<std::string, std::uint64_t> path_ios;
    for (const daemon::HeadView& head : fabric.Heads()) {
      const HeadStats* s = by_identity.count(head.identity) ? by_identity[head.identity] : nullptr;
      std::string figures;
      if (s != nullptr) {
        const std::uint64_t before = head_ios_.count(head.identity) ? head_ios_[head.identity] : 0;
        figures = fmt::format("  {}  verified {}  failovers {}  longest pause {}  errors {}",
                              dt > 0 ? Rate(static_cast<double>(s->ios - std::min(s->ios, before)) / dt) : "-",
                              daemon::FormatSize(s->verified_bytes), s->failovers, Millis(s->max_pause),
                              s->errors_surfaced + s->data_errors);
        head_ios_[head.identity] = s->ios;
      }
      line(fmt::format("{}{}  {}  {}  {}{}", head.name, head.alias.empty() ? "" : " (" + head.alias + ")",
                       head.protocol, Name(head.policy), Name(head.state), figures));
      for (const daemon::PathView& path : head.paths) {
        const std::string key = head.identity + "/" + path.name;
        const std::uint64_t before = path_ios_.count(key) ? path_ios_[key] : path.counters.ios;
        const double rate = dt > 0 ? static_cast<double>(path.counters.ios - std::min(path.counters.ios, before)) / dt
                                   : 0.0;
        path_ios[key] = path.counters.ios;
        std::string marks;
        if (path.marginal != MarginalReason::kNone) marks += fmt::format("  MARGINAL ({})", Name(path.marginal));
        if (!path.usable) marks += "  unusable";
        line(fmt::format("  {:<14} {:<15} {:<10} {:>9}{}", path.name, Name(path.access), Name(path.state),
                         Rate(rate), marks));
      }
    }
    path_ios_ = std::move(path_ios);
    line("");
    line("events:");
    for (const std::string& event : events_) line("  " + event);
    screen += "\x1b[J";
    std::fputs(screen.c_str(), stdout);
    std::fflush(stdout);
  }

  void Clear() {
    std::fputs("\x1b[H\x1b[2J", stdout);
    std::fflush(stdout);
  }

 private:
  const std::string title_;
  Nanos last_draw_{0};
  std::deque<std::string> events_;
  std::map<std::string, std::uint64_t> head_ios_;  // by identity, at the last draw
  std::map<std::string, std::uint64_t> path_ios_;  // by identity/path, at the last draw
};

std::string SummaryText(const ScenarioResult& result) {
  std::string out = fmt::format("\nscenario {}: {} in {:.1f} s\n\n", result.name, result.passed() ? "passed" : "FAILED",
                                Secs(result.elapsed));
  // Columns sized to their widest cell.
  std::vector<std::vector<std::string>> rows = {
      {"head", "protocol", "I/Os", "verified", "failovers", "longest pause", "errors", "data errors"}};
  for (const HeadStats& h : result.heads) {
    rows.push_back({HeadLabel(h), h.protocol, std::to_string(h.ios), daemon::FormatSize(h.verified_bytes),
                    std::to_string(h.failovers), Millis(h.max_pause), std::to_string(h.errors_surfaced),
                    std::to_string(h.data_errors)});
  }
  std::vector<std::size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      // Names left-aligned, figures right-aligned.
      line += i < 2 ? fmt::format("{:<{}}  ", row[i], widths[i]) : fmt::format("{:>{}}  ", row[i], widths[i]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  if (!result.errors.empty()) {
    out += "\nerrors:\n";
    constexpr std::size_t kShown = 10;
    for (std::size_t i = 0; i < result.errors.size() && i < kShown; ++i) {
      const auto& e = result.errors[i];
      out += fmt::format("  [{:7.2f}s] {}: {}: {}\n", Secs(e.at), e.head, ErrcName(e.code), e.context);
    }
    if (result.errors.size() > kShown) out += fmt::format("  ... and {} more\n", result.errors.size() - kShown);
  }
  if (!result.assertions.empty()) {
    out += "\nassertions:\n";
    for (const auto& a : result.assertions) out += fmt::format("  {}  {}\n", a.passed ? "PASS" : "FAIL", a.description);
  }
  std::size_t held = 0;
  for (const auto& a : result.assertions) held += a.passed ? 1 : 0;
  out += fmt::format("\nresult: {} ({} data errors, {} unexpected errors, {}/{} assertions held)\n",
                     result.passed() ? "PASS" : "FAIL", result.data_errors, result.unexpected_errors, held,
                     result.assertions.size());
  return out;
}

nlohmann::json SummaryJson(const daemon::Scenario& scenario, const ScenarioResult& result) {
  using nlohmann::json;
  json heads = json::array();
  for (const HeadStats& h : result.heads) {
    heads.push_back({{"name", h.name},
                     {"alias", h.alias},
                     {"id", h.identity},
                     {"protocol", h.protocol},
                     {"ios", h.ios},
                     {"verified_bytes", h.verified_bytes},
                     {"failovers", h.failovers},
                     {"max_pause_us", std::chrono::duration_cast<std::chrono::microseconds>(h.max_pause).count()},
                     {"errors_surfaced", h.errors_surfaced},
                     {"data_errors", h.data_errors},
                     {"ios_per_second", h.ios_per_second}});
  }
  json assertions = json::array();
  for (const auto& a : result.assertions) assertions.push_back({{"description", a.description}, {"passed", a.passed}});
  json events = json::array();
  for (const auto& e : result.events) events.push_back({{"at_secs", Secs(e.at)}, {"what", e.what}, {"ok", e.ok}});
  json errors = json::array();
  for (std::size_t i = 0; i < result.errors.size() && i < kErrorsInJson; ++i) {
    const auto& e = result.errors[i];
    errors.push_back({{"at_secs", Secs(e.at)}, {"head", e.head}, {"code", ErrcName(e.code)}, {"context", e.context}});
  }
  return {{"scenario", result.name},
          {"description", scenario.description},
          {"elapsed_secs", Secs(result.elapsed)},
          {"passed", result.passed()},
          {"data_errors", result.data_errors},
          {"unexpected_errors", result.unexpected_errors},
          {"heads", std::move(heads)},
          {"assertions", std::move(assertions)},
          {"events", std::move(events)},
          {"errors", std::move(errors)}};
}

// The process exit code of one scenario run (demo.h): 0 passed, 1 ran and failed, 2 could not run.
int Run(std::string_view command, Result<daemon::Scenario> scenario, std::optional<double> seconds, bool json) {
  const auto cannot_run = [&](const std::string& message) {
    fmt::print(stderr, "{}: {}\n", command, message);
    if (json) fmt::print("{}\n", nlohmann::json{{"passed", false}, {"error", message}}.dump());
    return 2;
  };
  if (seconds && !(std::isfinite(*seconds) && *seconds > 0 && *seconds <= kMaxSeconds)) {
    return cannot_run(fmt::format("--seconds must be more than 0 and at most {} (got {})", kMaxSeconds, *seconds));
  }
  if (!scenario) return cannot_run(scenario.error().ToString());

  const bool live = !json && isatty(STDOUT_FILENO) == 1;
  LiveScreen screen(fmt::format("mpath {} — {}{}", command.substr(command.find(' ') + 1), scenario->name,
                                scenario->description.empty() ? "" : ": " + scenario->description));
  daemon::RunOptions options;
  options.duration_secs = seconds;
  if (live) {
    screen.Clear();
    options.on_tick = [&screen](Nanos elapsed, Nanos total, daemon::Fabric& fabric,
                                const std::vector<HeadStats>& stats) { screen.Draw(elapsed, total, fabric, stats); };
    options.on_event = [&screen](const ScenarioEvent& event) { screen.Event(event); };
  } else if (!json) {
    options.on_event = [](const ScenarioEvent& event) {
      fmt::print("{}\n", EventLine(event));
      std::fflush(stdout);
    };
  }
  auto result = daemon::RunScenario(*scenario, options);
  if (!result) return cannot_run(result.error().ToString());
  if (json) {
    fmt::print("{}\n", SummaryJson(*scenario, *result).dump(2));
  } else {
    fmt::print("{}", SummaryText(*result));
  }
  std::fflush(stdout);
  return result->passed() ? 0 : 1;
}

}  // namespace

int RunDemo(const DemoOptions& options) {
  return Run("mpath demo", daemon::DemoScenario(), options.seconds, options.json);
}

int RunScenarioCommand(const ScenarioCommandOptions& options) {
  return Run("mpath scenario run", daemon::LoadScenario(options.file), options.seconds, options.json);
}

}  // namespace mpath::cli
