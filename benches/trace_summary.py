"""What bounds a run of benches/real_cloud.py, from its --trace: per phase,
the wire requests to Octavia and Neutron, how busy each API was (the share
of the phase with at least one request of it in flight; this cloud's Octavia
API is one worker), the most requests in flight at once, reads a second, and
the load balancer POSTs' times (sent to answered).

Usage: python3 benches/trace_summary.py TRACE.jsonl [PHASE-PREFIX]
       python3 benches/trace_summary.py TRACE.jsonl --creates
--creates breaks each round's create down (a run without --scale): where
each tool's time went, Octavia's (its POST, then provisioning until a status
read saw ACTIVE) and the rest (observation, the floating IP POST after
ACTIVE, the answer's reads).
"""
import json
import re
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


def ends(rs):
    return max(r["start"] + r["took"] for r in rs)


def creates(rows):
    print("| round | tool | total | before the POST | load balancer POST | POST answered to ACTIVE seen "
          "| floating IP POST | after ACTIVE | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    rounds = sorted({int(r["phase"].rsplit(" ", 1)[1]) for r in rows if r["phase"].startswith("svc-lbaas create ")})
    for i in rounds:
        totals = {}
        lines = []
        for tool in ("minimum", "svc-lbaas"):
            rs = sorted((r for r in rows if r["phase"] == f"{tool} create {i}"), key=lambda r: r["start"])
            if not rs:
                continue
            post = next(r for r in rs if r["method"] == "POST" and "loadbalancers" in r["path"])
            fip = next((r for r in rs if r["method"] == "POST" and "floatingips" in r["path"]), None)
            answered = post["start"] + post["took"]
            # The status reads of one load balancer after its POST: the last
            # one saw ACTIVE.
            polls = [r for r in rs if r["method"] == "GET" and r["start"] >= answered
                     and re.search(r"/loadbalancers/[0-9a-f-]{36}$", r["path"].split("?")[0])]
            seen = ends(polls[-1:]) if polls else answered
            total = ends(rs)
            totals[tool] = total
            fip_text = "-"
            if fip:
                when = "during provisioning" if fip["start"] < seen else "after ACTIVE"
                fip_text = f"{fip['took'] * 1000:.0f} ms ({when})"
            after = total - max(seen, (fip["start"] + fip["took"]) if fip and fip["start"] < seen else 0)
            if fip and fip["start"] >= seen:
                after = total - (fip["start"] + fip["took"])
            lines.append(f"| {i} | {tool} | {total:.2f} s | {post['start'] * 1000:.0f} ms | {post['took'] * 1000:.0f} ms "
                         f"| {seen - answered:.2f} s ({len(polls)} reads) | {fip_text} | {after * 1000:.0f} ms |")
        ratio = totals["svc-lbaas"] / totals["minimum"] if len(totals) == 2 else float("nan")
        for line in lines:
            print(line + (f" {ratio:.2f}x |" if "svc-lbaas" in line else " |"))


if __name__ == "__main__":
    if "--creates" in sys.argv:
        creates([json.loads(line) for line in open(sys.argv[1])])
    else:
        main()
