#!/usr/bin/env bash
# `mpath daemon` on the example config: start it, drive every control command through its socket with the client
# subcommands (text and JSON), stop it with SIGTERM and check a clean exit and the socket gone; then once more,
# stopped by a "shutdown" request sent over the socket by hand (the protocol of docs/control.md).
# Usage: daemon.sh MPATH_BINARY SOURCE_TREE SCRATCH_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.bash"
init_test "$@"
config=$src/examples/mpath.toml

# Whether `show $1 -o json` satisfies the Python expression $2.
show_satisfies() { client show "$1" -o json | check_json "$2"; }
# Waits up to $1 seconds for `show $2 -o json` to satisfy the Python expression $3.
wait_show() {
  wait_until "$1" show_satisfies "$2" "$3" || show_satisfies "$2" "$3" || fail "show $2 never satisfied: $3"
}

[[ -f $config ]] || fail "missing $config"
start_daemon daemon "$config" --io-threads 1
grep -q "attached to" "$scratch/daemon.out" || fail "the daemon did not report its attached paths"
grep -q "^serving $ctl_sock" "$scratch/daemon.out" || fail "the daemon did not say where it serves"
grep -q "^nbd: serving 6 exports on $nbd_sock " "$scratch/daemon.out" || fail "the daemon did not say where it serves NBD"
[[ -S $nbd_sock ]] || fail "no NBD socket"
mode=$(stat -c %a "$ctl_sock")
[[ $mode == 600 ]] || fail "socket mode is $mode, not 600"

# list, text: a head line per head and the paths grouped by access state.
list=$(client list)
grep -q '^mpath[0-9]* (db0) naa.60014050abcd0000000000000000000a MPATHSIM,ALUA-ARRAY$' <<<"$list" ||
  fail "list has no db0 head line: $list"
grep -q 'protocol=nvme' <<<"$list" || fail "list shows no NVMe head"
grep -q '^|-+- optimized:$' <<<"$list" || fail "list shows no optimized group"
grep -q 'non-optimized:$' <<<"$list" || fail "list shows no non-optimized group"

# list, JSON: the documented schema.
client list -o json | check_json '
len(d["heads"]) == 6
and sorted(h["protocol"] for h in d["heads"]).count("scsi") == 4
and all(isinstance(h[k], str) for h in d["heads"] for k in
        ("name", "alias", "identity", "protocol", "vendor", "product", "policy", "state"))
and all(isinstance(h["size_bytes"], int) and isinstance(h["block_size"], int) for h in d["heads"])
and all(set(p) >= {"name", "address", "state", "access", "preferred", "marginal", "usable", "in_flight",
                   "counters", "latency_us"} for h in d["heads"] for p in h["paths"])
and [h for h in d["heads"] if h["alias"] == "db0"][0]["size_bytes"] == 64 << 20
and len([h for h in d["heads"] if h["alias"] == "db0"][0]["paths"]) == 4' || fail "list -o json"
nvme=$(client list -o json | python3 -c 'import json, sys
print([h["name"] for h in json.load(sys.stdin)["heads"] if h["protocol"] == "nvme"][0])')

# show, text and JSON.
show=$(client show db0)
grep -q '^  alias: *db0$' <<<"$show" || fail "show db0: no alias line"
grep -q '^    latency: ' <<<"$show" || fail "show db0: no latency lines"
client show db0 -o json | check_json 'd["alias"] == "db0" and len(d["paths"]) == 4' || fail "show db0 -o json"
client show "$nvme" -o json | check_json 'd["protocol"] == "nvme" and len(d["paths"]) == 2' || fail "show $nvme"

# set-policy.
client set-policy db0 queue-depth >/dev/null || fail "set-policy"
client show db0 -o json | check_json 'd["policy"] == "queue-depth"' || fail "policy not changed"

# path fail / reinstate.
client path fail a0-tp1:lun0 >/dev/null || fail "path fail"
client show db0 -o json | check_json '
[p for p in d["paths"] if p["name"] == "a0-tp1:lun0"][0]["state"] == "failed"' || fail "path not failed"
client path reinstate a0-tp1:lun0 >/dev/null || fail "path reinstate"
client show db0 -o json | check_json '
[p for p in d["paths"] if p["name"] == "a0-tp1:lun0"][0]["state"] == "live"' || fail "path not reinstated"

# inject: link faults on a path, an ALUA transition on the array (followed by the listing).
client inject a0-tp2 link-down | grep -q 'link down' || fail "inject link-down"
client inject a0-tp2 link-up | grep -q 'link up' || fail "inject link-up"
client inject array0 alua group=1 state=standby transition_ms=200 >/dev/null || fail "inject alua"
wait_show 10 db0 'all(p["access"] == "standby" for p in d["paths"] if p["address"].startswith("sim array0 tpg1/"))'
client inject array0 alua group=1 state=active/optimized >/dev/null || fail "inject alua back"
wait_show 10 db0 'all(p["access"] == "optimized" for p in d["paths"] if p["address"].startswith("sim array0 tpg1/"))'

# Persistent reservations on a SCSI head and an NVMe head.
for head in db0 "$nvme"; do
  client pr register "$head" --sa-key 0xabc >/dev/null || fail "pr register $head"
  client pr read-keys "$head" | grep -q '^  0xabc$' || fail "pr read-keys $head"
  client pr reserve "$head" --key 0xabc --type write-exclusive >/dev/null || fail "pr reserve $head"
  client pr read-reservation "$head" | grep -q 'held by key 0xabc, type write-exclusive' ||
    fail "pr read-reservation $head"
  client pr read-reservation "$head" -o json | check_json 'd["holder_key"] == "0xabc"' || fail "pr json $head"
  client pr release "$head" --key 2748 --type write-exclusive >/dev/null || fail "pr release $head"
  client pr read-reservation "$head" | grep -q 'no reservation' || fail "reservation not released on $head"
  client pr clear "$head" --key 0xabc >/dev/null || fail "pr clear $head"
  client pr read-keys "$head" | grep -q 'no registered keys' || fail "keys not cleared on $head"
done

# A refusal from the daemon: exit 1 and its reason.
rc=0
err=$(client show nosuch 2>&1 >/dev/null) || rc=$?
((rc == 1)) || fail "show nosuch exited $rc"
grep -q "no head 'nosuch'" <<<"$err" || fail "show nosuch said: $err"

stop_daemon
grep -q 'SIGTERM: shutting down' "$scratch/daemon.out" || fail "no shutdown message"

# Again, stopped by a request written on the socket by hand.
start_daemon daemon2 "$config" --io-threads 1
answer=$(timeout 20 python3 - "$ctl_sock" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
f.write('{"cmd":"list"}\nnot json\n{"cmd":"shutdown"}\n')
f.flush()
listed = json.loads(f.readline())
refused = json.loads(f.readline())
stopping = json.loads(f.readline())
assert listed["ok"] and len(listed["heads"]) == 6, listed
assert refused == {"ok": False, "code": "invalid argument", "error": "malformed request: not valid JSON"}, refused
print(stopping["message"])
EOF
) || fail "the hand-written session failed"
[[ $answer == "shutting down" ]] || fail "shutdown answered: $answer"
expect_clean_exit
grep -q 'a shutdown request: shutting down' "$scratch/daemon2.out" || fail "no shutdown message"

echo "daemon: ok"
