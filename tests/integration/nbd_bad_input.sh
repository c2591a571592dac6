#!/usr/bin/env bash
# Bad input on the NBD export: tests/integration/nbd/bad_client.py speaks raw bytes to `mpath daemon`'s NBD socket
# (garbage flags, bad magics, unknown and over-long options, unknown exports, requests past the end, misaligned or
# unknown, oversize writes, requests cut in half, one connection too many) and checks each answer the protocol asks
# for; after every case a fresh client must still write and read back, and the daemon must still run. Then the daemon
# still answers its control socket and stops cleanly.
# Usage: nbd_bad_input.sh MPATH_BINARY SOURCE_TREE SCRATCH_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
init_test "$@"

start_daemon daemon "$src/tests/integration/nbd/fabric.toml" --io-threads 2

# Every case bounds its own socket operations (5 s each); the whole run is bounded too.
# The fabric sets [export] max_connections = 32.
timeout 300 python3 "$src/tests/integration/nbd/bad_client.py" "$nbd_sock" vol0 --daemon-pid "$daemon_pid" \
  --max-connections 32 ||
  fail "bad_client.py"

kill -0 "$daemon_pid" 2>/dev/null || fail "the daemon died"
client list >/dev/null || fail "the control socket stopped answering"
stop_daemon
echo "nbd_bad_input: ok"
