#!/bin/bash
# `mpath demo`, as the README's first command runs it: the embedded scenario on the simulated SAN, in JSON mode (one
# object on stdout with the documented keys, zero data and unexpected errors, a head per LU and namespace) and in
# text mode with stdout not a terminal (the step events, one line each, then the summary table).
# Arguments: the mpath binary, the source tree, a scratch directory.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
init_test "$@"

timeout 120 "$mpath" demo --seconds 12 --json >"$scratch/demo.json" 2>"$scratch/demo.err" ||
  fail "mpath demo --seconds 12 --json did not exit 0" "$scratch/demo.err" "$scratch/demo.json"
python3 - "$scratch/demo.json" <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    text = f.read()
summary = json.loads(text)  # exactly one object: trailing text would make this fail
assert isinstance(summary, dict), "the summary is not a JSON object"
for key in ("data_errors", "unexpected_errors", "passed", "heads", "assertions", "events"):
    assert key in summary, f"missing key {key!r}"
assert summary["data_errors"] == 0, summary["data_errors"]
assert summary["unexpected_errors"] == 0, summary["unexpected_errors"]
assert summary["passed"] is True
heads = summary["heads"]
assert len(heads) >= 6, f"{len(heads)} heads"
for head in heads:
    for key in ("name", "id", "protocol", "ios", "verified_bytes", "failovers", "max_pause_us", "errors_surfaced"):
        assert key in head, f"head lacks {key!r}: {head}"
    assert head["ios"] > 0 and head["verified_bytes"] > 0, head
    assert head["errors_surfaced"] == 0, head
assert {h["protocol"] for h in heads} == {"scsi", "nvme"}, [h["protocol"] for h in heads]
assert len({h["id"] for h in heads}) == len(heads), "two heads share an identity"
assert summary["assertions"] and all(a["passed"] for a in summary["assertions"]), summary["assertions"]
assert len(summary["events"]) >= 10 and all(e["ok"] for e in summary["events"]), summary["events"]
print(f"demo JSON: {len(heads)} heads, {sum(h['ios'] for h in heads)} I/Os, "
      f"{len(summary['assertions'])} assertions held")
PY

# Text mode, stdout a file: no screen drawing, the events as they happen, then the table and the verdict.
timeout 120 "$mpath" demo --seconds 12 >"$scratch/demo.txt" 2>"$scratch/demo-text.err" ||
  fail "mpath demo --seconds 12 did not exit 0" "$scratch/demo-text.err" "$scratch/demo.txt"
! grep -q $'\x1b' "$scratch/demo.txt" || fail "terminal escapes written to a file"
grep -q '^\[ *[0-9.]*s\] inject array0 alua' "$scratch/demo.txt" || fail "no step event line" "$scratch/demo.txt"
grep -q '^head .*I/Os .*verified .*failovers .*longest pause .*errors' "$scratch/demo.txt" ||
  fail "no summary table" "$scratch/demo.txt"
grep -q '^result: PASS' "$scratch/demo.txt" || fail "no PASS verdict" "$scratch/demo.txt"

# A duration that cannot be run is refused before anything starts.
expect_seconds=20
expect 2 '--seconds must be more than 0' -- "$mpath" demo --seconds 0
expect_no_failures
echo "PASS: mpath demo"
