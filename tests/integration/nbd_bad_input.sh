#!/usr/bin/env bash
# Bad input on the NBD export: tests/integration/nbd/bad_client.py speaks raw bytes to `mpath daemon`'s NBD socket
# (garbage flags, bad magics, unknown and over-long options, unknown exports, requests past the end, misaligned or
# unknown, oversize writes, requests cut in half, one connection too many) and checks each answer the protocol asks
# for; after every case a fresh client must still write and read back, and the daemon must still run. Then the daemon
# still answers its control socket and stops cleanly.
# Usage: nbd_bad_input.sh MPATH_BINARY SOURCE_TREE SCRATCH_DIR
set -euo pipefail

mpath=$1
src=$2
scratch=$3
rm -rf "$scratch"
mkdir -p "$scratch"
ctl=$scratch/ctl.sock
nbd=$scratch/nbd.sock
daemon_pid=

cleanup() {
  if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -KILL "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for log in "$scratch"/daemon.out "$scratch"/daemon.err; do
    [[ -f $log ]] && { echo "--- $log" >&2; tail -n 30 "$log" >&2; }
  done
  exit 1
}

"$mpath" daemon --config "$src/tests/integration/nbd/fabric.toml" --control "$ctl" --nbd "$nbd" --io-threads 2 \
  >"$scratch/daemon.out" 2>"$scratch/daemon.err" &
daemon_pid=$!
deadline=$((SECONDS + 30))
until [[ -S $ctl && -S $nbd ]]; do
  kill -0 "$daemon_pid" 2>/dev/null || fail "the daemon exited before serving"
  ((SECONDS < deadline)) || fail "no control or NBD socket after 30 s"
  sleep 0.1
done

# Every case bounds its own socket operations (5 s each); the whole run is bounded too.
# The fabric sets [export] max_connections = 32.
timeout 300 python3 "$src/tests/integration/nbd/bad_client.py" "$nbd" vol0 --daemon-pid "$daemon_pid" \
  --max-connections 32 ||
  fail "bad_client.py"

kill -0 "$daemon_pid" 2>/dev/null || fail "the daemon died"
timeout 20 "$mpath" list --control "$ctl" >/dev/null || fail "the control socket stopped answering"
kill -TERM "$daemon_pid"
deadline=$((SECONDS + 20))
while kill -0 "$daemon_pid" 2>/dev/null; do
  ((SECONDS < deadline)) || fail "the daemon did not stop within 20 s"
  sleep 0.1
done
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=
((rc == 0)) || fail "the daemon exited with $rc"
[[ ! -e $nbd ]] || fail "the NBD socket file was left behind"
echo "nbd_bad_input: ok"
