#!/bin/bash
# Every shipped scenario (examples/scenarios/*.toml) runs with `mpath scenario run FILE --json --seconds 6` (12 for the dense demo) and
# passes; a scenario file that cannot run (missing, malformed, an unknown key) exits 2 naming what is wrong.
# Arguments: the mpath binary, the source tree, a scratch directory.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
init_test "$@"

count=0
for file in "$src"/examples/scenarios/*.toml; do
  name=$(basename "$file" .toml)
  count=$((count + 1))
  # The demo's timeline is dense (a fault every second or two at 30 s): squeezed below 12 s, its windows (the failing
  # path must be caught as marginal before it heals) get too short for a loaded sanitizer build.
  seconds=6
  [ "$name" = demo ] && seconds=12
  rc=0
  timeout 120 "$mpath" scenario run "$file" --json --seconds "$seconds" >"$scratch/$name.json" 2>"$scratch/$name.err" ||
    rc=$?
  if ((rc != 0)); then
    # What went wrong, from the summary: the assertions, the first errors, the refusal.
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); [print(" ", a) for a in d.get("assertions", [])]; [print(" ", e) for e in d.get("errors", [])[:10]]; print(" ", d.get("error", ""))' "$scratch/$name.json" >"$scratch/$name.why" 2>&1 || head -c 4000 "$scratch/$name.json" >"$scratch/$name.why"
    fail "scenario $name exited $rc" "$scratch/$name.err" "$scratch/$name.why"
  fi
  python3 - "$scratch/$name.json" "$name" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
assert summary["passed"] is True and summary["data_errors"] == 0 and summary["unexpected_errors"] == 0, summary
assert summary["scenario"] == sys.argv[2], summary["scenario"]
assert summary["assertions"] and all(a["passed"] for a in summary["assertions"])
print(f"scenario {sys.argv[2]}: passed ({len(summary['assertions'])} assertions, "
      f"{sum(h['ios'] for h in summary['heads'])} I/Os on {len(summary['heads'])} heads)")
PY
done
((count >= 4)) || fail "only $count shipped scenarios"

# Refusals: exit 2 and the message, quoted verbatim, on stderr.
expect_seconds=20
refused() { expect 2 "$(regex_quote "$1")" -- "$mpath" "${@:2}"; }
refused "$scratch/no-such.toml" scenario run "$scratch/no-such.toml"
printf '[scenario]\nname = "x"\nduraton_secs = 3\n' >"$scratch/typo.toml"
refused "$scratch/typo.toml:3:1: unknown key 'duraton_secs' in [scenario]" scenario run "$scratch/typo.toml"
printf '[[step]]\nat_secs = 1\naction = "explode"\n' >"$scratch/action.toml"
refused "$scratch/action.toml:3:10: step[0].action: unknown action 'explode'" scenario run "$scratch/action.toml"
printf '[scenario]\nname = "x\n' >"$scratch/syntax.toml"
refused "$scratch/syntax.toml:2:" scenario run "$scratch/syntax.toml"
refused "--seconds must be more than 0" scenario run "$src/examples/scenarios/demo.toml" --seconds -1
# In JSON mode the refusal is still one JSON object on stdout.
refused "no-such.toml" scenario run "$scratch/no-such.toml" --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["passed"] is False and "no-such.toml" in d["error"], d' \
  "$scratch/stdout.txt" || note_failure "the JSON refusal is not one JSON object naming the file"
expect_no_failures
echo "PASS: $count scenarios, and the refusals"
