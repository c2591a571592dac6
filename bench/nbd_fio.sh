#!/usr/bin/env bash
# The NBD export against nbdkit: fio's nbd engine, 4 KiB random writes then random reads at iodepth 32 (one job),
# time based, on `mpath daemon` (one 1 GiB SCSI LU over two simulated paths with no added latency) and on
# `nbdkit memory 1G`, both over unix sockets. Prints IOPS per workload and the ratio mpath/nbdkit (goal: >= 1.0), and
# writes them as JSON. Builds nothing (bench/run builds the release preset first).
# Usage: bench/nbd_fio.sh [MPATH_BINARY]   (default build/release/cli/mpath)
# Environment: NBD_FIO_SECONDS (10) per workload and target, NBD_FIO_OUT (build/release/bench/nbd_fio.json).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mpath=${1:-$root/build/release/cli/mpath}
seconds=${NBD_FIO_SECONDS:-10}
out=${NBD_FIO_OUT:-$root/build/release/bench/nbd_fio.json}

for tool in fio nbdkit python3; do
  command -v "$tool" >/dev/null || { echo "nbd_fio: $tool is not installed (scripts/install-deps)" >&2; exit 1; }
done
[[ -x $mpath ]] || { echo "nbd_fio: no mpath binary at $mpath" >&2; exit 1; }
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "nbd_fio: NBD_FIO_SECONDS must be a whole number of seconds" >&2; exit 1; }

work=$(mktemp -d /tmp/mpath-nbd-fio.XXXXXX)
daemon_pid=
cleanup() {
  if [[ -n $daemon_pid ]] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  if [[ -f $work/nbdkit.pid ]]; then
    kill -TERM "$(cat "$work/nbdkit.pid")" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
die() {
  echo "nbd_fio: $*" >&2
  for log in "$work"/*.err; do [[ -s $log ]] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }; done
  exit 1
}

cat >"$work/bench.toml" <<'EOF'
# One 1 GiB LU of a simulated ALUA array, over two paths with no added latency.
[defaults]
iopolicy = "round-robin"

[[device]]
match = "naa.60014050bec40000000000000000000a"
alias = "bench"

[[sim.scsi_array]]
name = "array0"

  [[sim.scsi_array.port_group]]
  id = 1
  ports = [1, 2]

  [[sim.scsi_array.lu]]
  size_mib = 1024
  naa = "60014050bec40000000000000000000a"

[[sim.path]]
name = "p1"
target = "array0"
port = 1

[[sim.path]]
name = "p2"
target = "array0"
port = 2

[export]
queue_depth = 128
EOF

"$mpath" daemon --config "$work/bench.toml" --control "$work/ctl.sock" --nbd "$work/mpath.sock" \
  >"$work/daemon.out" 2>"$work/daemon.err" &
daemon_pid=$!
# nbdkit forks once its socket is ready and writes its pid then.
nbdkit --unix "$work/nbdkit.sock" --pidfile "$work/nbdkit.pid" memory 1G 2>"$work/nbdkit.err" ||
  die "nbdkit did not start"
deadline=$((SECONDS + 30))
until [[ -S $work/mpath.sock ]]; do
  kill -0 "$daemon_pid" 2>/dev/null || die "mpath daemon exited before serving"
  ((SECONDS < deadline)) || die "mpath daemon: no NBD socket after 30 s"
  sleep 0.1
done

declare -A uris=([mpath]="nbd+unix:///bench?socket=$work/mpath.sock" [nbdkit]="nbd+unix:///?socket=$work/nbdkit.sock")
# Writes first, so that the reads find data on both targets.
for rw in randwrite randread; do
  for target in mpath nbdkit; do
    echo "nbd_fio: $rw on $target, $seconds s" >&2
    timeout $((seconds + 60)) fio --name="$rw-$target" --ioengine=nbd --uri="${uris[$target]}" --rw="$rw" --bs=4k \
      --iodepth=32 --numjobs=1 --size=1G --time_based --runtime="$seconds" --norandommap --randrepeat=0 \
      --output-format=json --output="$work/$rw-$target.json" >"$work/$rw-$target.out" 2>"$work/$rw-$target.err" ||
      die "fio $rw on $target failed: $(cat "$work/$rw-$target.out")"
  done
done

mkdir -p "$(dirname "$out")"
python3 - "$work" "$out" "$seconds" <<'EOF'
import json, os, sys
work, out, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
results = []
for rw, direction in (("randread", "read"), ("randwrite", "write")):
    iops = {}
    for target in ("mpath", "nbdkit"):
        job = json.load(open(os.path.join(work, f"{rw}-{target}.json")))["jobs"][0]
        if job["error"] != 0:
            sys.exit(f"nbd_fio: fio {rw} on {target}: error {job['error']}")
        iops[target] = job[direction]["iops"]
    results.append({"workload": f"4k {rw} qd32", "mpath_iops": round(iops["mpath"]),
                    "nbdkit_iops": round(iops["nbdkit"]), "ratio": round(iops["mpath"] / iops["nbdkit"], 3)})
json.dump({"seconds_per_run": seconds, "cpus": os.cpu_count(), "results": results}, open(out, "w"), indent=1)
print(f"{'workload':<20} {'mpath IOPS':>12} {'nbdkit IOPS':>12} {'ratio':>7}")
for r in results:
    print(f"{r['workload']:<20} {r['mpath_iops']:>12} {r['nbdkit_iops']:>12} {r['ratio']:>7.2f}")
print("goal: ratio >= 1.0 (mpath's export at least as fast as nbdkit's memory plugin); raw figures: " + out)
EOF
