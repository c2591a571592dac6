# Scaffolding shared by the integration scripts (tests/integration/*.sh). Sourced, never run: the name does not end in
# .sh, so tests/CMakeLists.txt does not make a test of it. A script starts with
#   set -euo pipefail
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
#   init_test "$@"
# and then has $mpath, $src, $scratch, the cleanup trap and the helpers below. The helpers expect errexit and nounset.
# shellcheck shell=bash

# Arguments as ctest passes them (MPATH_BINARY SOURCE_TREE SCRATCH_DIR): sets $mpath, $src and $scratch, starts from an
# empty scratch directory, names the daemon's sockets in it, and installs the cleanup trap. $test_name (the script's
# name without .sh) prefixes summaries.
# shellcheck disable=SC2034 # the variables are for the scripts
init_test() {
  test_name=$(basename "$0" .sh)
  if (($# != 3)); then
    echo "usage: $0 MPATH_BINARY SOURCE_TREE SCRATCH_DIR" >&2
    exit 2
  fi
  # Absolute, so that a script may change directory (bad_input.sh works in $scratch) whatever it was given.
  mpath=$(realpath -ms -- "$1")
  src=$(realpath -ms -- "$2")
  scratch=$(realpath -ms -- "$3")
  rm -rf "$scratch"
  mkdir -p "$scratch"
  # In the scratch directory, not the config's /run/mpath paths, which another daemon may be serving.
  ctl_sock=$scratch/ctl.sock
  nbd_sock=$scratch/nbd.sock
  daemon_pid=
  trap run_cleanup EXIT
}

# --- Cleanup. Whatever happens, nothing the test started outlives it. A script that starts background processes of its
# own defines cleanup_hook, which runs first (typically `kill_and_reap` on its pids); the daemon, which those talk to,
# is killed last.
kill_and_reap() {
  local pid
  for pid in "$@"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
run_cleanup() {
  if declare -F cleanup_hook >/dev/null; then cleanup_hook; fi
  if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then kill_and_reap "$daemon_pid"; fi
}

# --- Failing. `fail MESSAGE [FILE...]` ends the test: the message, then each FILE in full (the output of the command
# that failed), then the last 30 lines of each log the test keeps. fail_logs holds those logs as glob patterns
# relative to $scratch, matched when the test fails; a script appends its own (nbd.sh: the fault loop's log).
fail_logs=('daemon*.out' 'daemon*.err')
fail() {
  local message=$1 file pattern
  shift
  echo "FAIL: $message" >&2
  for file in "$@"; do
    [[ -f $file ]] && { echo "--- $file" >&2; cat "$file" >&2; }
  done
  for pattern in "${fail_logs[@]}"; do
    for file in "$scratch"/$pattern; do
      [[ -f $file ]] && { echo "--- $file" >&2; tail -n 30 "$file" >&2; }
    done
  done
  exit 1
}

# --- Expected refusals. `expect EXIT_CODE PATTERN -- COMMAND...`: COMMAND, bounded by $expect_seconds (default 30),
# must exit with EXIT_CODE ("any" for any code in 1..127; never 0, a signal or the timeout) and print something
# matching the extended regular expression PATTERN on stderr. A miss is counted, not fatal, so one run reports every
# refusal that went wrong; end with `expect_no_failures`. The command's output stays in $scratch/stdout.txt and
# $scratch/stderr.txt until the next expect.
failures=0
expect_seconds=30
expect() {
  local want=$1 pattern=$2
  shift 3
  local rc=0
  timeout "$expect_seconds" "$@" >"$scratch/stdout.txt" 2>"$scratch/stderr.txt" </dev/null || rc=$?
  local problem=
  if ((rc == 124)); then
    problem="timed out"
  elif ((rc == 0 || rc >= 128)); then
    problem="exit code $rc"
  elif [[ $want != any ]] && ((rc != want)); then
    problem="exit code $rc, not $want"
  elif ! grep -Eq -- "$pattern" "$scratch/stderr.txt"; then
    problem="stderr does not match /$pattern/"
  fi
  if [[ -n $problem ]]; then
    note_failure "$* -> $problem"
    sed 's/^/  stderr: /' "$scratch/stderr.txt" >&2
  else
    echo "ok: $* -> $rc: $(head -n 1 "$scratch/stderr.txt")"
  fi
}
# Counts a failed check without ending the test, like a failed expect.
note_failure() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
# Ends the test if any expect or note_failure failed.
expect_no_failures() {
  if ((failures > 0)); then
    echo "$test_name: $failures failure(s)" >&2
    exit 1
  fi
}
# STRING as an extended regular expression that matches exactly it, for expecting a message quoted verbatim.
regex_quote() {
  # shellcheck disable=SC2001 # one sed expression reads better than a parameter expansion per metacharacter
  sed 's/[][\.*^$+?(){}|]/\\&/g' <<<"$1"
}

# --- Waiting, always on a condition with a deadline. `wait_until SECONDS COMMAND...` runs COMMAND (quietly) until it
# succeeds; returns 1 if it still fails after SECONDS.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# --- The daemon. `start_daemon LOG CONFIG [ARG...]` starts `mpath daemon` on CONFIG with the control socket at
# $ctl_sock and the NBD export at $nbd_sock (ARGs are added), logging to $scratch/LOG.out and LOG.err, and returns once
# both sockets are there and the daemon has announced the export ("nbd: serving", printed once it listens). Within
# 30 s, or the test fails.
start_daemon() {
  local log=$1 config=$2
  shift 2
  "$mpath" daemon --config "$config" --control "$ctl_sock" --nbd "$nbd_sock" "$@" \
    >"$scratch/$log.out" 2>"$scratch/$log.err" &
  daemon_pid=$!
  local deadline=$((SECONDS + 30))
  until [[ -S $ctl_sock && -S $nbd_sock ]] && grep -q '^nbd: serving' "$scratch/$log.out"; do
    kill -0 "$daemon_pid" 2>/dev/null || fail "the daemon exited before serving"
    ((SECONDS < deadline)) || fail "no control or NBD socket after 30 s"
    sleep 0.1
  done
}
daemon_stopped() { ! kill -0 "$daemon_pid" 2>/dev/null; }
# Waits up to 20 s for the daemon, asked to stop, to exit; checks exit 0 and that both socket files are gone.
expect_clean_exit() {
  wait_until 20 daemon_stopped || fail "the daemon did not stop within 20 s"
  local rc=0
  wait "$daemon_pid" || rc=$?
  daemon_pid=
  ((rc == 0)) || fail "the daemon exited with $rc"
  [[ ! -e $ctl_sock ]] || fail "the socket file was left behind"
  [[ ! -e $nbd_sock ]] || fail "the NBD socket file was left behind"
}
# SIGTERM, then expect_clean_exit.
stop_daemon() {
  kill -TERM "$daemon_pid"
  expect_clean_exit
}

# --- Talking to the daemon. `client COMMAND...`: an mpath client command on $ctl_sock, bounded; its stdout is the
# result.
client() { timeout 20 "$mpath" "$@" --control "$ctl_sock"; }
# Reads JSON on stdin and evaluates a Python expression over it as `d`; fails (with the JSON) when it is false.
check_json() {
  python3 -c 'import json, sys
d = json.load(sys.stdin)
if not eval("(" + sys.argv[1] + "\n)"):
    sys.exit("JSON check failed: " + sys.argv[1] + "\n" + json.dumps(d, indent=1)[:4000])' "$1"
}
