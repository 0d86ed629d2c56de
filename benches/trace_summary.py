"""What bounds a run of benches/real_cloud.py, from its --trace: per phase,
the wire requests to Octavia and Neutron, how busy each API was (the share
of the phase with at least one request of it in flight; this cloud's Octavia
API is one worker), the most requests in flight at once, reads a second, and
the load balancer POSTs' times (sent to answered).

Usage: python3 benches/trace_summary.py TRACE.jsonl [PHASE-PREFIX] [--worker-log LOG]
       python3 benches/trace_summary.py TRACE.jsonl --creates [--worker-log LOG]
       python3 benches/trace_summary.py TRACE.jsonl --deletes [--worker-log LOG]
--creates breaks each round's create down (a run without --scale): where
each tool's time went, Octavia's (its POST, then provisioning until a status
read saw ACTIVE) and the rest (observation, the floating IP POST after
ACTIVE, the answer's reads).
--worker-log (Octavia's worker log, $OS_STATE/log/octavia-worker.log of the
same run) adds when Octavia's worker took each create and marked it ACTIVE
in its database: with --creates, how late each tool saw that, and each
tool's own time apart from Octavia's (whose provisioning varies from round
to round by more than the tools differ); without, per create phase, how many
creates the worker had under way at once and how long each took in it.
--deletes does the same for each round's delete: what each tool did before
its cascade DELETE, and (with --worker-log) how long the cascade took in the
worker, until it marked the row DELETED (logged at DEBUG: tests/openstack/
up.sh turns that on; in an older log, until its last step logged at INFO,
the VIP's security group deleted), and how long after it each tool saw the
404. Without --creates or --deletes, a --scale trace's delete phases get the
same: how many deletes the worker took, when it marked them DELETED.
"""
import datetime
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


def worker_creates(path):
    """Octavia's worker log: load balancer id -> (when the worker took its
    create, when it marked it ACTIVE or None), as epoch seconds."""
    return worker_flows(path)[0]


def worker_flows(path):
    """Octavia's worker log, as epoch seconds: creates (load balancer id ->
    (taken, marked ACTIVE or None)) and deletes (id -> (taken, its security
    group deleted or None, marked DELETED or None)). The group is the flow's
    last step logged at INFO; the row marked DELETED (from then on the API
    answers 404) is logged at DEBUG, which tests/openstack/up.sh turns on
    for the worker's database tasks alone."""
    began, active, deleting, group_gone, deleted = {}, {}, {}, {}, {}
    last_delete = None
    line_re = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) \d+ (?:INFO|DEBUG) \S+ \[[^\]]*\] (.*)")
    for line in open(path, errors="replace"):
        m = line_re.match(line)
        if not m:
            continue
        # The log's local time, read back as local time.
        t = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        if c := re.match(r"Creating load balancer '([0-9a-f-]{36})'", m.group(2)):
            began.setdefault(c.group(1), t)
        elif a := re.match(r"Mark ACTIVE in DB for load balancer id: ([0-9a-f-]{36})", m.group(2)):
            active.setdefault(a.group(1), t)
        elif d := re.match(r"Deleting load balancer '([0-9a-f-]{36})'", m.group(2)):
            deleting.setdefault(d.group(1), t)
            last_delete = d.group(1)
        elif g := re.match(r"Mark DELETED in DB for load balancer id: ([0-9a-f-]{36})", m.group(2)):
            deleted.setdefault(g.group(1), t)
        elif m.group(2).startswith("Deleted security group") and last_delete:
            # The worker runs one flow at a time here (a single Service's
            # delete): the group is the last delete's.
            group_gone.setdefault(last_delete, t)
    return ({k: (b, active.get(k)) for k, b in began.items()},
            {k: (b, group_gone.get(k), deleted.get(k)) for k, b in deleting.items()})


def in_phase(flows, wall, length):
    """The worker's creates taken during a phase: (began, active) relative
    to the phase's start."""
    return sorted((b - wall, a - wall if a else None) for b, a in flows.values() if wall <= b <= wall + length)


def load(path):
    """The traced requests, and each phase's wall-clock start."""
    rows, walls = [], {}
    for line in open(path):
        r = json.loads(line)
        if "wall" in r:
            walls[r["phase"]] = r["wall"]
        else:
            rows.append(r)
    return rows, walls


def worker_table(rows, walls, flows, step, mark):
    """Per `step` phase (create or delete) of a --scale trace: the flows
    Octavia's worker took, when it marked them `mark` (ACTIVE or DELETED),
    how many ran at once, and the phase's end after the last mark."""
    print()
    print(f"| phase | {step}s the worker took (first / last) | marked {mark} (first / p50 / last) "
          f"| under way at once (max) | phase ended after the last mark | in the worker, took to {mark} (p50 / max) |")
    print("|---|---|---|---|---|---|")
    for phase, wall in walls.items():
        if f" {step} " not in phase:
            continue
        rs = [r for r in rows if r["phase"] == phase]
        if not rs:
            continue
        mine = in_phase(flows, wall, ends(rs))
        done = sorted(a for _, a in mine if a is not None)
        if not done:
            continue
        took = sorted(a - b for b, a in mine if a is not None)
        print(f"| {phase} | {len(mine)} ({mine[0][0]:.1f} / {mine[-1][0]:.1f} s) "
              f"| {done[0]:.1f} / {statistics.median(done):.1f} / {done[-1]:.1f} s "
              f"| {most_at_once([(b, a) for b, a in mine if a is not None])} | {ends(rs) - done[-1]:.2f} s "
              f"| {statistics.median(took):.1f} / {took[-1]:.1f} s |")


def main(rows, walls, flows, removals, prefix):
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
    mine = {p: w for p, w in walls.items() if p.startswith(prefix)}
    if flows:
        worker_table(rows, mine, flows, "create", "ACTIVE")
    if removals:
        worker_table(rows, mine, {k: (b, d) for k, (b, _, d) in removals.items()}, "delete", "DELETED")


def ends(rs):
    return max(r["start"] + r["took"] for r in rs)


def print_round(lines, totals):
    """A round's lines, svc-lbaas's with the ratio of the two totals."""
    ratio = totals["svc-lbaas"] / totals["minimum"] if len(totals) == 2 else float("nan")
    for line in lines:
        print(line + (f" {ratio:.2f}x |" if "svc-lbaas" in line else " |"))


def split(octavia, own):
    """Octavia's median time over both tools, and each tool's own median
    (minimum, svc-lbaas)."""
    both = statistics.median(octavia["minimum"] + octavia["svc-lbaas"])
    return both, statistics.median(own["minimum"]), statistics.median(own["svc-lbaas"])


def creates(rows, walls, flows):
    worker = "| Octavia marked ACTIVE / seen after " if flows else ""
    print("| round | tool | total | before the POST | load balancer POST | POST answered to ACTIVE seen "
          f"{worker}| floating IP POST | after ACTIVE | ratio |")
    print("|---|---|---|---|---|---|---|---|---|" + ("---|" if flows else ""))
    rounds = sorted({int(r["phase"].rsplit(" ", 1)[1]) for r in rows if r["phase"].startswith("svc-lbaas create ")})
    # Per tool, per round: Octavia's time (its POST, then its worker's
    # provisioning until it marked ACTIVE) and the tool's own (the rest).
    octavia, own = {}, {}
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
            # Sent before the read that saw ACTIVE was answered (times are
            # rounded to the millisecond: one sent right after is not).
            during = fip is not None and fip["start"] < seen - 0.002
            if fip:
                when = "during provisioning" if during else "after ACTIVE"
                fip_text = f"{fip['took'] * 1000:.0f} ms ({when})"
            after = total - max(seen, (fip["start"] + fip["took"]) if during else 0)
            if fip and not during:
                after = total - (fip["start"] + fip["took"])
            marked = ""
            if flows:
                mine = in_phase(flows, walls.get(f"{tool} create {i}", float("inf")), total)
                active = mine[0][1] if len(mine) == 1 else None
                marked = (f"| {active - answered:.2f} s after the POST / {(seen - active) * 1000:.0f} ms "
                          if active is not None else "| - ")
                if active is not None:
                    theirs = post["took"] + active - answered
                    octavia.setdefault(tool, []).append(theirs)
                    own.setdefault(tool, []).append(total - theirs)
            lines.append(f"| {i} | {tool} | {total:.2f} s | {post['start'] * 1000:.0f} ms | {post['took'] * 1000:.0f} ms "
                         f"| {seen - answered:.2f} s ({len(polls)} reads) {marked}| {fip_text} | {after * 1000:.0f} ms |")
        print_round(lines, totals)
    if len(octavia) == 2:
        both, m, o = split(octavia, own)
        print()
        print("Medians over the rounds. Octavia's time (its POST, then its worker until it marked the load "
              f"balancer ACTIVE): minimum {statistics.median(octavia['minimum']):.2f} s, svc-lbaas "
              f"{statistics.median(octavia['svc-lbaas']):.2f} s. Each tool's own (the rest: observation, "
              "noticing ACTIVE, a floating IP POST made after it, the answer): "
              f"minimum {m * 1000:.0f} ms, svc-lbaas {o * 1000:.0f} ms. With Octavia's time the same for "
              f"both ({both:.2f} s, the median over both tools): svc-lbaas / minimum = "
              f"{(both + o) / (both + m):.2f}x.")


def deletes(rows, walls, flows):
    """Each round's delete: each tool's observation or floating IP DELETE
    before the cascade DELETE, the cascade in Octavia's worker (from the
    DELETE's answer until the worker marked the row DELETED or, in a log
    without it, logged the flow's last INFO step), and when the tool saw the
    404 after that."""
    worker = ("| worker took it / its security group deleted / marked DELETED (from the DELETE's answer) "
              "/ 404 seen after the mark " if flows else "")
    print("| round | tool | total | before the cascade DELETE | floating IP DELETE | cascade DELETE "
          f"{worker}| ratio |")
    print("|---|---|---|---|---|---|" + ("---|" if flows else ""))
    rounds = sorted({int(r["phase"].rsplit(" ", 1)[1]) for r in rows if r["phase"].startswith("svc-lbaas delete ")})
    octavia, own = {}, {}
    for i in rounds:
        totals, lines = {}, []
        for tool in ("minimum", "svc-lbaas"):
            rs = sorted((r for r in rows if r["phase"] == f"{tool} delete {i}"), key=lambda r: r["start"])
            cascade = next((r for r in rs if r["method"] == "DELETE" and "loadbalancers" in r["path"]), None)
            if cascade is None:
                continue
            fip = next((r for r in rs if r["method"] == "DELETE" and "floatingips" in r["path"]), None)
            lb = re.search(r"loadbalancers/([0-9a-f-]{36})", cascade["path"]).group(1)
            total = ends(rs)
            totals[tool] = total
            answered = cascade["start"] + cascade["took"]
            fip_text = "-"
            if fip:
                when = "before" if fip["start"] + fip["took"] <= cascade["start"] + 0.002 else "beside it"
                fip_text = f"{fip['took'] * 1000:.0f} ms ({when})"
            marked = ""
            if flows and lb in flows and f"{tool} delete {i}" in walls:
                took, group, gone = (t - walls[f"{tool} delete {i}"] if t else None for t in flows[lb])
                marked = "| - "
                # Octavia's part ends when the row is marked DELETED (the
                # API answers 404 from then on); in an older log without the
                # mark, at the last INFO step (its unlogged tail then counts
                # as the tool's).
                last = gone if gone is not None else group
                if last is not None:
                    marked = (f"| {(took - answered) * 1000:.0f} ms / "
                              + (f"{group - answered:.2f} s" if group is not None else "-") + " / "
                              + (f"{gone - answered:.2f} s" if gone is not None else "-")
                              + f" / {(total - last) * 1000:.0f} ms ")
                    theirs = last - cascade["start"]
                    octavia.setdefault(tool, []).append(theirs)
                    own.setdefault(tool, []).append(total - theirs)
            lines.append(f"| {i} | {tool} | {total:.2f} s | {cascade['start'] * 1000:.0f} ms | {fip_text} "
                         f"| {cascade['took'] * 1000:.0f} ms {marked}|")
        print_round(lines, totals)
    if len(octavia) == 2:
        both, m, o = split(octavia, own)
        print()
        print("Medians over the rounds. Octavia's time (its cascade DELETE, then its worker until it marked "
              f"the row DELETED): minimum {statistics.median(octavia['minimum']):.2f} s, svc-lbaas "
              f"{statistics.median(octavia['svc-lbaas']):.2f} s; in a log without that mark, until its last INFO "
              "step. Each tool's own (the rest: what it did before the DELETE, noticing the 404, the answer): "
              f"minimum {m * 1000:.0f} ms, svc-lbaas {o * 1000:.0f} ms. With Octavia's time the same for "
              f"both ({both:.2f} s): svc-lbaas / minimum = {(both + o) / (both + m):.2f}x.")


if __name__ == "__main__":
    args = sys.argv[1:]
    flows, removals = {}, {}
    if "--worker-log" in args:
        i = args.index("--worker-log")
        flows, removals = worker_flows(args[i + 1])
        del args[i:i + 2]
    rows, walls = load(args[0])
    if "--creates" in args:
        creates(rows, walls, flows)
    elif "--deletes" in args:
        deletes(rows, walls, removals)
    else:
        main(rows, walls, flows, removals, args[1] if len(args) > 1 else "")
