#!/usr/bin/env python3
"""Turns core_bench's Google Benchmark JSON into a markdown table of the figures the issue sets goals for.

Usage: summarize.py core_bench.json   (from --benchmark_out=..., or --benchmark_format=json on stdout; "-" reads stdin)

With repetitions, the median of each benchmark is used; without, the single run. Every benchmark reports one item
per I/O, so ns/IO = 1e9 / items_per_second (CPU time, which a busy machine disturbs less than wall time).
"""

import json
import sys

POLICIES = ["numa", "round-robin", "queue-depth", "service-time"]
PATH_COUNTS = [1, 2, 4, 8, 16]
GOAL_PATHS = 8
# Selection goals (ns per I/O at GOAL_PATHS paths), judged on head ns - direct ns.
SELECTION_GOAL_NS = {"numa": 5.0, "round-robin": 10.0, "queue-depth": 20.0}
HEAD_RATIO_GOAL = 0.95     # direct_ns / head_ns
HEAD_MIOPS_GOAL = 5.0      # M IOPS per core through the head
BYPASS_RATIO_GOAL = 0.99   # direct_ns / bypass_ns


def load(path):
    text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    return json.loads(text)


def pick(doc):
    """Maps run name -> the entry to use: the median aggregate when there is one, else the (first) iteration run."""
    medians, singles = {}, {}
    for b in doc.get("benchmarks", []):
        if b.get("error_occurred"):
            singles.setdefault(b.get("run_name", b["name"]), {"error": b.get("error_message", "error")})
            continue
        name = b.get("run_name", b["name"])
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                medians[name] = b
        else:
            singles.setdefault(name, b)
    singles.update(medians)
    return singles


def ns_per_io(entry):
    if entry is None or "error" in entry:
        return None
    ips = entry.get("items_per_second")
    if ips:
        return 1e9 / ips
    scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[entry.get("time_unit", "ns")]
    return entry["cpu_time"] * scale


def fmt(x, digits=1):
    return "n/a" if x is None else f"{x:.{digits}f}"


def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "missed")


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    doc = load(argv[1])
    runs = pick(doc)
    ns = {name: ns_per_io(e) for name, e in runs.items()}
    out = []
    ctx = doc.get("context", {})
    reps_seen = {b.get("repetitions", 1) for b in doc.get("benchmarks", []) if b.get("run_type") == "aggregate"}
    reps = "median of {} repetitions".format(max(reps_seen)) if reps_seen else "single run"
    out.append(f"core_bench on {ctx.get('host_name', '?')}: {ctx.get('num_cpus', '?')} CPUs at "
               f"{ctx.get('mhz_per_cpu', '?')} MHz, {ctx.get('library_build_type', '?')} libbenchmark; "
               f"{reps}; ns/IO from CPU time.")
    out.append("")

    direct = ns.get("BM_DirectIo")
    clock = ns.get("BM_SteadyClockNow")
    out.append(f"Direct submit to one null path (`BM_DirectIo`): **{fmt(direct, 2)} ns/IO** "
               f"({fmt(1e3 / direct if direct else None)} M IOPS). One steady-clock read (`BM_SteadyClockNow`): "
               f"{fmt(clock, 2)} ns; the head takes two on the I/Os it samples for latency (every I/O of a new path, then 1 in 16).")
    out.append("")

    # 1. Per policy and path count, inline completion.
    out.append("### 1. Per-I/O cost through a head, inline null paths (queue depth 1)")
    out.append("")
    out.append("Overhead = head ns - direct ns: path selection plus all per-I/O bookkeeping (sampled timestamps, "
               "counters, completion routing), an upper bound on selection cost. Δ numa = head ns - numa ns at the "
               "same path count: what the policy's choice costs beyond numa's cached path.")
    out.append("")
    out.append("| policy | paths | head ns/IO | overhead ns | Δ numa ns | M IOPS | direct/head | goal (overhead) | verdict |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for policy in POLICIES:
        for n in PATH_COUNTS:
            head = ns.get(f"BM_HeadIo/{policy}/{n}")
            if head is None and f"BM_HeadIo/{policy}/{n}" not in runs:
                continue
            numa = ns.get(f"BM_HeadIo/numa/{n}")
            over = head - direct if head is not None and direct is not None else None
            dnuma = head - numa if head is not None and numa is not None else None
            goal, ok = "", None
            if n == GOAL_PATHS and policy in SELECTION_GOAL_NS:
                goal = f"≤ {SELECTION_GOAL_NS[policy]:g} ns"
                ok = over is not None and over <= SELECTION_GOAL_NS[policy]
            out.append(f"| {policy} | {n} | {fmt(head)} | {fmt(over)} | {fmt(dnuma)} | "
                       f"{fmt(1e3 / head if head else None)} | {fmt(direct / head if head and direct else None, 3)} | "
                       f"{goal} | {verdict(ok) if goal else ''} |")
    out.append("")

    # Decomposition: the same head with a clock that costs one atomic load.
    rows = [(p, ns.get(f"BM_HeadIoManualClock/{p}/{GOAL_PATHS}"), ns.get(f"BM_HeadIo/{p}/{GOAL_PATHS}"))
            for p in POLICIES if f"BM_HeadIoManualClock/{p}/{GOAL_PATHS}" in runs]
    if rows:
        out.append(f"Where the overhead goes at {GOAL_PATHS} paths: the same head with a manual clock (one atomic "
                   "load per Now()) instead of the steady clock.")
        out.append("")
        out.append("| policy | head ns (steady) | head ns (manual clock) | timestamps ns | overhead without timestamps ns "
                   "| goal | verdict without timestamps |")
        out.append("|---|---:|---:|---:|---:|---|---|")
        for p, manual, steady in rows:
            ts = steady - manual if steady is not None and manual is not None else None
            rest = manual - direct if manual is not None and direct is not None else None
            goal = SELECTION_GOAL_NS.get(p)
            ok = None if goal is None or rest is None else rest <= goal
            out.append(f"| {p} | {fmt(steady)} | {fmt(manual)} | {fmt(ts)} | {fmt(rest)} | "
                       f"{'≤ %g ns' % goal if goal else ''} | {verdict(ok) if goal else ''} |")
        out.append("")

    # 1b. Deferred completion.
    direct_qd = ns.get("BM_DirectIoQd")
    if direct_qd is not None:
        out.append("### 1b. Same, 32 I/Os in flight (deferred completion; queue-depth and service-time compare real "
                   "in-flight counts)")
        out.append("")
        out.append(f"Direct (`BM_DirectIoQd`): {fmt(direct_qd, 2)} ns/IO.")
        out.append("")
        out.append("| policy | " + " | ".join(f"{n} path{'s' if n > 1 else ''}" for n in PATH_COUNTS) + " | Δ numa at 8 ns |")
        out.append("|---|" + "---:|" * (len(PATH_COUNTS) + 1))
        for policy in POLICIES:
            cells = []
            for n in PATH_COUNTS:
                h = ns.get(f"BM_HeadIoQd/{policy}/{n}")
                cells.append(f"{fmt(h)} (+{fmt(h - direct_qd)})" if h is not None else "n/a")
            h8, n8 = ns.get(f"BM_HeadIoQd/{policy}/8"), ns.get("BM_HeadIoQd/numa/8")
            d = h8 - n8 if h8 is not None and n8 is not None else None
            out.append(f"| {policy} | " + " | ".join(cells) + f" | {fmt(d)} |")
        out.append("")
        out.append("Cells: head ns/IO (+ overhead over direct).")
        out.append("")

    # 2 and 3: goal summary.
    out.append("### 2-3. Head and bypass against direct")
    out.append("")
    out.append("| measure | value | goal | verdict |")
    out.append("|---|---:|---|---|")
    for policy in POLICIES:
        head = ns.get(f"BM_HeadIo/{policy}/{GOAL_PATHS}")
        if head is None or direct is None:
            continue
        ratio = direct / head
        miops = 1e3 / head
        out.append(f"| direct/head, {policy}, {GOAL_PATHS} paths | {ratio:.3f} | ≥ {HEAD_RATIO_GOAL} | "
                   f"{verdict(ratio >= HEAD_RATIO_GOAL)} |")
        out.append(f"| M IOPS per core through the head, {policy}, {GOAL_PATHS} paths | {miops:.1f} | "
                   f"≥ {HEAD_MIOPS_GOAL:g} | {verdict(miops >= HEAD_MIOPS_GOAL)} |")
    bypass = ns.get("BM_BypassIo")
    if bypass is not None and direct is not None:
        ratio = direct / bypass
        out.append(f"| direct/bypass (DirectDevice, multipath off) | {ratio:.3f} ({fmt(bypass, 2)} vs "
                   f"{fmt(direct, 2)} ns) | ≥ {BYPASS_RATIO_GOAL} | {verdict(ratio >= BYPASS_RATIO_GOAL)} |")
    out.append("")

    errors = [f"{name}: {e['error']}" for name, e in runs.items() if "error" in e]
    if errors:
        out.append("Benchmarks that reported an error: " + "; ".join(errors))
        out.append("")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
