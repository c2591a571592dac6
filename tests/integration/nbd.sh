#!/usr/bin/env bash
# The NBD export with real clients: `mpath daemon` serves the heads of tests/integration/nbd/fabric.toml (SCSI and
# NVMe) on a unix socket and on TCP loopback, and
#   - nbdinfo --list shows one export per head, named and sized as `mpath list` says;
#   - qemu-io writes patterns at several offsets of every export and reads them back verified (a wrong pattern fails);
#   - nbdcopy moves 32 MiB of random bytes in and out, over one connection and over four (multi-conn);
#   - fio's nbd engine runs a crc32c-verified random-write workload;
#   - the same fio workload, time based, on a SCSI and an NVMe head at once while links drop, ALUA and ANA states
#     swap and paths are failed and reinstated underneath: no error reaches fio, every block verifies, and the heads'
#     counters show that I/O did fail over;
#   - nbdinfo and qemu-io work over TCP;
#   - SIGTERM stops the daemon cleanly and removes the socket.
# Every client call is bounded by `timeout`. FAULT_SECONDS (default 20) sets the length of the run under faults.
# Usage: nbd.sh MPATH_BINARY SOURCE_TREE SCRATCH_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
init_test "$@"
cd "$scratch"  # fio writes its verify state files (local-*-verify.state) to the working directory
config=$scratch/fabric.toml
fault_seconds=${FAULT_SECONDS:-20}
fault_pid=
fio_pids=()
fail_logs+=(faults.log)

# Run by the shared cleanup before it kills the daemon: the fault loop and the fio clients go first.
cleanup_hook() {
  touch "$scratch/faults.stop" 2>/dev/null || true
  # shellcheck disable=SC2086 # no word when no fault loop runs
  kill_and_reap "${fio_pids[@]}" $fault_pid
}

for tool in nbdinfo nbdcopy qemu-io fio python3 cmp; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/install-deps installs it)"
done

# The nbd+unix URI of an export; names (NVMe identities hold '@', ':' and '/') are percent-encoded.
uri() {
  python3 -c 'import sys, urllib.parse
print("nbd+unix:///" + urllib.parse.quote(sys.argv[1], safe="") + "?socket=" + sys.argv[2])' "$1" "$nbd_sock"
}
tcp_open() {
  python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1"
}

# The fabric, plus TCP on a free loopback port ([export] is the file's last table).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cp "$src/tests/integration/nbd/fabric.toml" "$config"
printf 'tcp_port = %d\ntcp_address = "127.0.0.1"\n' "$port" >>"$config"

start_daemon daemon "$config" --io-threads 2
wait_until 10 tcp_open "$port" || fail "nothing listens on 127.0.0.1:$port"
mode=$(stat -c %a "$nbd_sock")
[[ $mode == 600 ]] || fail "NBD socket mode is $mode, not 600"

# The heads as `mpath list` sees them: export name (alias, else identity), head name, size, block size.
client list -o json >"$scratch/list.json" || fail "mpath list"
python3 - "$scratch/list.json" >"$scratch/heads.tsv" <<'EOF'
import json, sys
for h in json.load(open(sys.argv[1]))["heads"]:
    print(h["alias"] or h["identity"], h["name"], h["protocol"], h["size_bytes"], h["block_size"], sep="\t")
EOF
(($(wc -l <"$scratch/heads.tsv") == 4)) || fail "expected 4 heads: $(cat "$scratch/heads.tsv")"
export_of() { awk -F'\t' -v p="$1" -v b="$2" '$3 == p && $5 == b { print $1; exit }' "$scratch/heads.tsv"; }
scsi=vol0
scsi_head=$(awk -F'\t' '$1 == "vol0" { print $2 }' "$scratch/heads.tsv")
nvme512=$(export_of nvme 512)
nvme4k=$(export_of nvme 4096)
[[ -n $scsi_head && -n $nvme512 && -n $nvme4k ]] || fail "heads not as configured: $(cat "$scratch/heads.tsv")"

# --- nbdinfo --list: every head, by name and size (and block size, when the server states it).
timeout 30 nbdinfo --list --json "nbd+unix:///?socket=$nbd_sock" >"$scratch/exports.json" || fail "nbdinfo --list"
python3 - "$scratch/exports.json" "$scratch/heads.tsv" <<'EOF' || fail "nbdinfo --list does not match mpath list"
import json, sys
exports = {e["export-name"]: e for e in json.load(open(sys.argv[1]))["exports"]}
heads = [line.rstrip("\n").split("\t") for line in open(sys.argv[2])]
want = {h[0]: (int(h[3]), int(h[4])) for h in heads}
assert set(exports) == set(want), (sorted(exports), sorted(want))
for name, (size, block) in want.items():
    e = exports[name]
    assert e["export-size"] == size, (name, e["export-size"], size)
    assert e.get("block_size_minimum", block) == block, (name, e)
    assert e["is_read_only"] is False and e["can_flush"] and e["can_multi_conn"], (name, e)
print(f"nbdinfo --list: {len(exports)} exports match mpath list")
EOF

# --- qemu-io: distinct patterns at several offsets of every export, written first, then read back everywhere (so an
# export that wrote into another would show). Offsets are 4 KiB aligned: one namespace has 4 KiB blocks. The 512 KiB
# requests are within the advertised maximum payload (32 MiB) but above the simulated NVMe controllers' MDTS (128 KiB):
# the export must split what its head cannot take in one command.
declare -A pattern
index=0
while IFS=$'\t' read -r name _ _ size _; do
  p=$((0x21 + 3 * index))
  pattern[$name]=$p
  index=$((index + 1))
  timeout 30 qemu-io -f raw -c "write -P $p 0 512k" -c "write -P $((p + 1)) 1M 4k" \
    -c "write -P $((p + 2)) $((size - 65536)) 64k" "$(uri "$name")" >"$scratch/qemu-write.out" 2>&1 ||
    fail "qemu-io write to $name: $(cat "$scratch/qemu-write.out")"
done <"$scratch/heads.tsv"
while IFS=$'\t' read -r name _ _ size _; do
  p=${pattern[$name]}
  timeout 30 qemu-io -f raw -c "read -P $p 0 512k" -c "read -P $((p + 1)) 1M 4k" \
    -c "read -P $((p + 2)) $((size - 65536)) 64k" -c "read -P 0 2M 4k" "$(uri "$name")" \
    >"$scratch/qemu-read.out" 2>&1 || fail "qemu-io read-back of $name: $(cat "$scratch/qemu-read.out")"
  ! grep -q 'verification failed' "$scratch/qemu-read.out" || fail "qemu-io: $(cat "$scratch/qemu-read.out")"
done <"$scratch/heads.tsv"
# The check can fail: the wrong pattern is refused.
rc=0
timeout 30 qemu-io -f raw -c "read -P $((pattern[vol0] + 1)) 0 4k" "$(uri vol0)" >"$scratch/qemu-wrong.out" 2>&1 ||
  rc=$?
if ((rc != 1)) || ! grep -q 'Pattern verification failed' "$scratch/qemu-wrong.out"; then
  fail "qemu-io accepted a wrong pattern (exit $rc): $(cat "$scratch/qemu-wrong.out")"
fi
# The head's own name reaches the same volume as its alias.
timeout 30 qemu-io -f raw -r -c "read -P ${pattern[vol0]} 0 64k" "$(uri "$scsi_head")" >/dev/null 2>&1 ||
  fail "qemu-io by head name $scsi_head"
echo "qemu-io: patterns verified on 4 exports"

# --- nbdcopy: 32 MiB of random bytes in and back out, over one connection, then over four (multi-conn).
dd if=/dev/urandom of="$scratch/random.bin" bs=1M count=32 status=none
for copy in "$scsi 1" "$nvme512 4"; do
  read -r name connections <<<"$copy"
  rm -f "$scratch/out.bin"
  timeout 60 nbdcopy --connections="$connections" "$scratch/random.bin" "$(uri "$name")" ||
    fail "nbdcopy into $name ($connections connections)"
  timeout 60 nbdcopy --connections="$connections" "$(uri "$name")" "$scratch/out.bin" ||
    fail "nbdcopy out of $name ($connections connections)"
  cmp -n $((32 << 20)) "$scratch/random.bin" "$scratch/out.bin" ||
    fail "nbdcopy round trip through $name ($connections connections) changed the data"
done
echo "nbdcopy: 32 MiB round trips verified (1 and 4 connections)"

# --- fio: a crc32c-verified random-write workload; then a block overwritten behind fio's back must fail its
# verify-only pass, so the check is known to bite.
# (fio takes an engine's options, --uri here, only after --ioengine.)
fio_common=(--ioengine=nbd --rw=randwrite --bs=4k --iodepth=16 --size=32M --verify=crc32c --verify_fatal=1
            --output-format=json)
# Checks fio's JSON: no error, and at least $2 writes and $3 verifying reads.
check_fio() {
  python3 - "$@" <<'EOF'
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
writes, reads = job["write"]["total_ios"], job["read"]["total_ios"]
assert job["error"] == 0, f"fio error {job['error']}"
assert writes >= int(sys.argv[2]) and reads >= int(sys.argv[3]), (writes, reads)
print(f"{writes} writes, {reads} verified reads", end="")
EOF
}
timeout 120 fio --name=verify "${fio_common[@]}" --uri="$(uri "$nvme4k")" --do_verify=1 \
  --output="$scratch/fio.json" >"$scratch/fio.out" 2>&1 || fail "fio verify on $nvme4k: $(cat "$scratch/fio.out")"
result=$(check_fio "$scratch/fio.json" 8192 8192) || fail "fio verify on $nvme4k: $result"
echo "fio verify ($nvme4k): $result"
timeout 30 qemu-io -f raw -c "write -P 0x5a 1M 4k" "$(uri "$nvme4k")" >/dev/null 2>&1 || fail "qemu-io overwrite"
rc=0
timeout 120 fio --name=verify "${fio_common[@]}" --uri="$(uri "$nvme4k")" --verify_only \
  --output="$scratch/fio-corrupt.json" >"$scratch/fio-corrupt.out" 2>&1 || rc=$?
((rc != 0)) || fail "fio's verify did not notice an overwritten block"

# --- fio under faults: both workloads time based, verifying as they go, while the fault loop runs.
faults() {
  # Each tick is one or more control commands separated by '|'; a fault tick is always followed by its undo, and the
  # loop stops only after an undo, so the fabric ends as configured. Outages stay far below delayed_removal_secs.
  # The swaps: ALUA port group 2 becomes optimized and group 1 goes non-optimized through a transition; ANA group 1
  # moves from port 1 to port 2. Then back.
  local swap="inject array0 alua group=1 state=active/non-optimized transition_ms=500"
  swap+="|inject array0 alua group=2 state=active/optimized"
  swap+="|inject subsys0 ana port=1 group=1 state=non-optimized|inject subsys0 ana port=2 group=1 state=optimized"
  local swap_back="inject array0 alua group=2 state=active/non-optimized"
  swap_back+="|inject array0 alua group=1 state=active/optimized transition_ms=500"
  swap_back+="|inject subsys0 ana port=2 group=1 state=non-optimized|inject subsys0 ana port=1 group=1 state=optimized"
  local ticks=(
    "inject s0-p1 link-down|inject s0-p2 link-down|inject a0-tp1 link-down|inject a0-tp2 link-down"
    "inject s0-p1 link-up|inject s0-p2 link-up|inject a0-tp1 link-up|inject a0-tp2 link-up"
    "$swap"
    "$swap_back"
    "path fail a0-tp3:lun0|path fail a0-tp1:lun0|path fail s0-p1n1"
    "path reinstate a0-tp3:lun0|path reinstate a0-tp1:lun0|path reinstate s0-p1n1"
    "inject a0-tp1 link-down|inject s0-p1 link-down"
    "inject a0-tp1 link-up|inject s0-p1 link-up"
    "inject subsys0 ana port=1 group=1 state=inaccessible|inject a0-tp3 link-down|path fail a0-tp2:lun0"
    "inject subsys0 ana port=1 group=1 state=optimized|inject a0-tp3 link-up|path reinstate a0-tp2:lun0"
  )
  local i=0 tick command
  while true; do
    tick=${ticks[i % ${#ticks[@]}]}
    IFS='|' read -ra commands <<<"$tick"
    for command in "${commands[@]}"; do
      echo "$(date +%T.%N | cut -c1-12) $command" >>"$scratch/faults.log"
      # shellcheck disable=SC2086 # the command's words are meant to split
      client $command >>"$scratch/faults.log" 2>&1 || { echo "FAILED: $command" >>"$scratch/faults.log"; return 1; }
    done
    i=$((i + 1))
    ((i % 2 == 0)) && [[ -e $scratch/faults.stop ]] && return 0
    sleep 1
  done
}
# Completed I/Os of the heads of $scsi and $nvme512, summed.
workload_ios() {
  client list -o json | python3 -c 'import json, sys
heads = json.load(sys.stdin)["heads"]
print(sum(h["counters"]["ios"] for h in heads if (h["alias"] or h["identity"]) in sys.argv[1:]))' \
    "$scsi" "$nvme512"
}
ios_before=$(workload_ios)
declare -A under_faults=([scsi]=$scsi [nvme]=$nvme512)
for kind in scsi nvme; do
  timeout $((fault_seconds + 90)) fio --name=faults "${fio_common[@]}" --uri="$(uri "${under_faults[$kind]}")" \
    --time_based --runtime="$fault_seconds" --verify_backlog=256 --output="$scratch/fio-faults-$kind.json" \
    >"$scratch/fio-faults-$kind.out" 2>&1 &
  fio_pids+=($!)
done
# The first fault lands only once fio's I/O flows, so that it hits requests in flight.
io_flows() { (($(workload_ios) > ios_before + 2000)); }
wait_until 30 io_flows || fail "fio's I/O does not reach the heads"
faults &
fault_pid=$!
fio_failed=0
for pid in "${fio_pids[@]}"; do wait "$pid" || fio_failed=1; done
fio_pids=()
touch "$scratch/faults.stop"
rc=0
wait "$fault_pid" || rc=$?
fault_pid=
((rc == 0)) || fail "the fault loop failed"
((fio_failed == 0)) || fail "fio under faults: $(cat "$scratch"/fio-faults-*.out)"
for kind in scsi nvme; do
  result=$(check_fio "$scratch/fio-faults-$kind.json" 1000 1000) ||
    fail "fio under faults on ${under_faults[$kind]}: $result"
  echo "fio under faults (${under_faults[$kind]}): $result"
done
echo "fault loop: $(grep -c '^[0-9][0-9]:' "$scratch/faults.log") control commands"
# The faults landed: both heads moved I/O off failed paths, and none of it surfaced as an error.
client list -o json | check_json "
all(h['counters']['failovers'] > 0 and h['counters']['errors'] == 0 and h['counters']['no_path_failures'] == 0
    for h in d['heads'] if (h['alias'] or h['identity']) in ('$scsi', '$nvme512'))" ||
  fail "the faults did not fail I/O over, or an error surfaced"
client list -o json | python3 -c 'import json, sys
for h in json.load(sys.stdin)["heads"]:
    c = h["counters"]
    print("  %s (%s): ios=%d failovers=%d requeues=%d errors=%d" % (
        h["name"], h["alias"] or h["identity"], c["ios"], c["failovers"], c["requeues"], c["errors"]))'

# --- TCP: the same exports on 127.0.0.1.
timeout 30 nbdinfo --json "nbd://127.0.0.1:$port/vol0" | check_json 'd["exports"][0]["export-size"] == 64 << 20' ||
  fail "nbdinfo over TCP"
# The last 64 KiB of vol0 still hold qemu-io's pattern: nbdcopy and fio wrote only the first 32 MiB.
timeout 30 qemu-io -f raw -r -c "read -P $((pattern[vol0] + 2)) $(((64 << 20) - 65536)) 64k" \
  "nbd://127.0.0.1:$port/vol0" >"$scratch/qemu-tcp.out" 2>&1 || fail "qemu-io over TCP: $(cat "$scratch/qemu-tcp.out")"
echo "TCP: nbd://127.0.0.1:$port/vol0 served"

# --- A clean stop.
stop_daemon
echo "nbd: ok (${SECONDS} s)"
