// How the topology looks to people and to scripts: the text of `mpath list` (in the spirit of `multipath -ll`) and
// `mpath show`, and the JSON forms that the control socket carries and `-o json` prints. The JSON schema is documented
// in docs/control.md and is stable: fields may be added, never renamed, retyped or removed.
//
// The daemon turns views into JSON; the client turns that JSON back into views and renders the text itself, so the
// text a user reads and the JSON a script reads always come from the same data.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mpath/core/counters.h"
#include "mpath/core/error.h"
#include "mpath/daemon/fabric.h"

namespace mpath::daemon {

// --- Text ---

// Every head, each as a head line, a line of geometry/policy/state, and its paths in a tree grouped by access state:
//   mpath0 (db0) naa.60014050abcd0000000000000000000a MPATHSIM,ALUA-ARRAY
//   size=64MiB blocks=131072x512 protocol=scsi policy=numa state=live
//   |-+- optimized:
//   | `- a0-tp1  sim array0 tpg1/port1 lun0  live  optimized  preferred  inflight=0  ios=10  errors=0  failovers=0
//   `-+- non-optimized:
//     `- a0-tp3  ...
// Columns are aligned within a head. "No heads." when there are none.
[[nodiscard]] std::string RenderList(std::span<const HeadView> heads);
// One head in depth: every attribute and counter of the head, then each path with its counters and latency
// percentiles, in the same order as RenderList.
[[nodiscard]] std::string RenderShow(const HeadView& head);
// The result of a persistent reservation command, as `mpath pr ACTION` prints it.
[[nodiscard]] std::string RenderPrReport(std::string_view head, std::string_view action, const PrReport& report);

// "512B", "64MiB", "1.5GiB": binary units, one decimal unless whole.
[[nodiscard]] std::string FormatSize(std::uint64_t bytes);
// "850ns", "12.3us", "4.56ms", "1.20s".
[[nodiscard]] std::string FormatMicros(double micros);

// Reservation keys are written "0x" + lower-case hex (JSON carries them as such strings: a 64-bit key does not survive
// a double). ParseKey takes that form or plain decimal; anything else, or a value above 2^64-1, is refused with a
// message naming the text.
[[nodiscard]] std::string FormatKey(std::uint64_t key);
[[nodiscard]] Result<std::uint64_t> ParseKey(std::string_view text);

// --- JSON (schema in docs/control.md) ---

[[nodiscard]] nlohmann::json CountersToJson(const IoCounters& counters);
[[nodiscard]] nlohmann::json PathToJson(const PathView& path);
[[nodiscard]] nlohmann::json HeadToJson(const HeadView& head);
// {"heads": [HeadToJson...]}
[[nodiscard]] nlohmann::json HeadsToJson(std::span<const HeadView> heads);
// {"generation": N, "keys": ["0x.."], "holder_key": "0x.." | null, "type": "..", "message": ".."}
[[nodiscard]] nlohmann::json PrReportToJson(const PrReport& report);

// The inverses, for the client. Strict: a missing field or one of the wrong type fails naming it. The latency
// histogram does not travel (only its percentiles do), so a head's counters come back with an empty one.
[[nodiscard]] Result<HeadView> HeadFromJson(const nlohmann::json& json);
// Takes {"heads": [...]}.
[[nodiscard]] Result<std::vector<HeadView>> HeadsFromJson(const nlohmann::json& json);
[[nodiscard]] Result<PrReport> PrReportFromJson(const nlohmann::json& json);

}  // namespace mpath::daemon
