"""What bounds a run of benches/real_cloud.py, from its --trace: per phase,
the wire requests to Octavia and Neutron, how busy each API was (the share
of the phase with at least one request of it in flight; this cloud's Octavia
API is one worker), the most requests in flight at once, reads a second, and
the load balancer POSTs' times (sent to answered).

Usage: python3 benches/trace_summary.py TRACE.jsonl [PHASE-PREFIX]
"""
import json
import statistics
import sys


def busy(spans):
    """Seconds with at least one of `spans` (start, end) in flight."""
    total, end = 0.0, None
    for s, e in sorted(spans):
        if end is None or s > end:
            total += e - s
            end = e
        elif e > end:
            total += e - end
            end = e
    return total


def most_at_once(spans):
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    now = peak = 0
    for _, d in events:
        now += d
        peak = max(peak, now)
    return peak


def main():
    rows = [json.loads(line) for line in open(sys.argv[1])]
    prefix = sys.argv[2] if len(sys.argv) > 2 else ""
    phases = []
    for r in rows:
        if r["phase"].startswith(prefix) and r["phase"] not in phases and r["phase"] not in ("between", "warm-up"):
            phases.append(r["phase"])
    print("| phase | length | Octavia reads/writes | Octavia busy | Octavia in flight (max) "
          "| Neutron reads/writes | Neutron busy | reads a second | LB POSTs answered after (p50 / max) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for phase in phases:
        rs = [r for r in rows if r["phase"] == phase and r["service"] != "keystone"]
        if not rs:
            continue
        length = max(r["start"] + r["took"] for r in rs)
        out = []
        for svc in ("octavia", "neutron"):
            mine = [r for r in rs if r["service"] == svc]
            spans = [(r["start"], r["start"] + r["took"]) for r in mine]
            reads = sum(1 for r in mine if r["method"] == "GET")
            out.append((reads, len(mine) - reads, busy(spans) / length if length else 0, most_at_once(spans)))
        posts = [r["took"] for r in rs if r["method"] == "POST" and r["path"].rstrip("/").endswith("lbaas/loadbalancers")]
        reads = sum(1 for r in rs if r["method"] == "GET")
        post = f"{statistics.median(posts):.1f} / {max(posts):.1f} s" if posts else "-"
        (orr, ow, ob, om), (nr, nw, nb, _) = out
        print(f"| {phase} | {length:.1f} s | {orr}/{ow} | {ob:.0%} | {om} | {nr}/{nw} | {nb:.0%} | "
              f"{reads / length:.1f} | {post} |")


if __name__ == "__main__":
    main()
