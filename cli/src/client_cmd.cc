// The clients of the control socket: each command is one request and one response (docs/control.md). Arguments are
// checked here first, so that a bad key or policy is a usage error (exit 2) that never reaches the daemon.
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mpath/core/types.h"
#include "mpath/daemon/control.h"
#include "mpath/daemon/render.h"

namespace mpath::cli {
namespace {

using nlohmann::json;

int Usage(std::string_view command, std::string_view message) {
  fmt::print(stderr, "mpath {}: {}\n", command, message);
  return kExitUsage;
}

int Failed(std::string_view command, const Error& error) {
  fmt::print(stderr, "mpath {}: {}\n", command, error.message());
  return kExitFailed;
}

// Sends one request; prints the reason and yields nothing when it fails.
std::optional<json> Send(std::string_view command, const ClientOptions& options, const json& request,
                         int& exit_code) {
  auto client = daemon::ControlClient::Connect(options.control);
  if (!client) {
    exit_code = Failed(command, client.error());
    return std::nullopt;
  }
  auto response = (*client)->Request(request);
  if (!response) {
    exit_code = Failed(command, response.error());
    return std::nullopt;
  }
  response->erase("ok");
  return std::move(*response);
}

void PrintJson(const json& value) { fmt::print("{}\n", value.dump(2, ' ', false, json::error_handler_t::replace)); }

// Commands whose answer is a message.
int RunMessageCommand(std::string_view command, const ClientOptions& options, const json& request) {
  int exit_code = kExitOk;
  auto response = Send(command, options, request, exit_code);
  if (!response) return exit_code;
  if (options.json) {
    PrintJson(*response);
  } else if (auto it = response->find("message"); it != response->end() && it->is_string()) {
    fmt::print("{}\n", it->get<std::string>());
  }
  return kExitOk;
}

}  // namespace

std::string DefaultControlPath() {
  const char* env = std::getenv("MPATH_CONTROL");
  return env != nullptr && *env != '\0' ? env : "/run/mpath/control.sock";
}

int RunList(const ClientOptions& options) {
  int exit_code = kExitOk;
  auto response = Send("list", options, json{{"cmd", "list"}}, exit_code);
  if (!response) return exit_code;
  if (options.json) {
    PrintJson(*response);
    return kExitOk;
  }
  auto heads = daemon::HeadsFromJson(*response);
  if (!heads) return Failed("list", Error(Errc::kInternal, "unexpected answer: " + heads.error().message()));
  fmt::print("{}", daemon::RenderList(*heads));
  return kExitOk;
}

int RunShow(const ClientOptions& options, const std::string& head) {
  int exit_code = kExitOk;
  auto response = Send("show", options, json{{"cmd", "show"}, {"head", head}}, exit_code);
  if (!response) return exit_code;
  const json& view = (*response)["head"];
  if (options.json) {
    PrintJson(view);
    return kExitOk;
  }
  auto parsed = daemon::HeadFromJson(view);
  if (!parsed) return Failed("show", Error(Errc::kInternal, "unexpected answer: " + parsed.error().message()));
  fmt::print("{}", daemon::RenderShow(*parsed));
  return kExitOk;
}

int RunSetPolicy(const ClientOptions& options, const std::string& head, const std::string& policy) {
  auto parsed = ParseIoPolicy(policy);
  if (!parsed) return Usage("set-policy", parsed.error().message());
  return RunMessageCommand("set-policy", options,
                           json{{"cmd", "set-policy"}, {"head", head}, {"policy", std::string(Name(*parsed))}});
}

int RunPath(const ClientOptions& options, const std::string& action, const std::string& path) {
  if (action != "fail" && action != "reinstate") {
    return Usage("path", fmt::format("unknown action '{}' (expected fail or reinstate)", action));
  }
  return RunMessageCommand("path " + action, options, json{{"cmd", "path-" + action}, {"path", path}});
}

int RunPr(const ClientOptions& options, const PrOptions& pr) {
  const std::string command = "pr " + pr.action;
  json request = {{"cmd", "pr"}, {"head", pr.head}, {"action", pr.action}};
  struct KeyOption {
    const char* flag;
    const char* field;
    const std::optional<std::string>& text;
  };
  for (const KeyOption& option : {KeyOption{"--key", "key", pr.key}, KeyOption{"--sa-key", "sa_key", pr.sa_key}}) {
    if (!option.text) continue;
    auto key = daemon::ParseKey(*option.text);
    if (!key) return Usage(command, fmt::format("{}: {}", option.flag, key.error().message()));
    request[option.field] = daemon::FormatKey(*key);
  }
  if (pr.type) request["type"] = *pr.type;
  if (pr.ignore_existing) request["ignore_existing"] = true;
  if (pr.aptpl) request["aptpl"] = true;

  int exit_code = kExitOk;
  auto response = Send(command, options, request, exit_code);
  if (!response) return exit_code;
  if (options.json) {
    PrintJson(*response);
    return kExitOk;
  }
  auto report = daemon::PrReportFromJson(*response);
  if (!report) return Failed(command, Error(Errc::kInternal, "unexpected answer: " + report.error().message()));
  fmt::print("{}", daemon::RenderPrReport(pr.head, pr.action, *report));
  return kExitOk;
}

int RunInject(const ClientOptions& options, const std::string& target, const std::string& fault,
              const std::vector<std::string>& args) {
  json fields = json::object();
  for (const std::string& arg : args) {
    auto equals = arg.find('=');
    if (equals == std::string::npos || equals == 0) {
      return Usage("inject", fmt::format("argument '{}' is not key=value", arg));
    }
    fields[arg.substr(0, equals)] = arg.substr(equals + 1);
  }
  return RunMessageCommand("inject", options,
                           json{{"cmd", "inject"}, {"target", target}, {"fault", fault}, {"args", fields}});
}

}  // namespace mpath::cli
