"""A real Prometheus (Debian's) checks the shipped rules and scrapes svc-lbaas.

    python tests/prometheus/live.py BIN

1. `promtool check rules` and `promtool test rules` on docker/prometheus/ (every
   alert fires in one fixture and stays quiet in another); the PrometheusRule in
   docker/k8s/prometheus-rules.yaml holds the same groups as the plain file.
2. `svc-lbaas serve` (embedded simulator) and `svc-lbaas watch` (its Kubernetes
   API unreachable: a candidate that never leads) on loopback, scraped every
   second by a Prometheus on loopback that evaluates the shipped rules, while a
   bounded load of applies, re-applies and deletes runs (20 Services, 4 at once).
   Checked: both targets up, the histograms have observations, the apply
   duration's p99 is a number, every rule evaluates without error, and the
   watcher-without-leader alert is pending (the watcher holds no Lease).

Prints `prometheus: N passed, M failed`. Everything it starts listens on
127.0.0.1 and is stopped at the end; the whole run is bounded (about 1 min).
"""

import json
import math
import re
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
RULES = os.path.join(ROOT, "docker", "prometheus", "svc-lbaas.rules.yaml")
RULE_TESTS = os.path.join(ROOT, "docker", "prometheus", "svc-lbaas.rules.test.yaml")
OPERATOR_RULES = os.path.join(ROOT, "docker", "k8s", "prometheus-rules.yaml")
SERVICES = 20
AT_ONCE = 4

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name}: {detail}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def started(cmd, marker, env):
    """Starts cmd and returns it with the address it prints after `marker=`."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"{cmd[0]} {cmd[1]} exited early")
        if line.startswith(marker + "="):
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, line.strip().split("=", 1)[1]
    raise SystemExit(f"{cmd[1]} printed no {marker}")


def http(method, url, body=None, timeout=60):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        return 0, str(e).encode()


def service(i):
    name = f"web-{i}"
    return {
        "service": {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "load"},
            "spec": {"type": "LoadBalancer", "clusterIP": f"10.2.0.{10 + i}",
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
        },
        "endpoints": {
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": name, "namespace": "load"},
            "subsets": [{"addresses": [{"ip": f"10.1.0.{10 + i}"}], "ports": [{"name": "http", "port": 8080}]}],
        },
    }


def load(rest):
    """Creates, re-applies and deletes SERVICES Services, AT_ONCE at a time."""
    statuses = []
    lock = threading.Lock()

    def one(i):
        for method, path, body in (
            ("POST", "/v1/apply?wait=true&timeout_s=60", service(i)),
            ("POST", "/v1/apply?wait=true&timeout_s=60", service(i)),
            ("DELETE", f"/v1/services/load/web-{i}?wait=true&timeout_s=60", None),
        ):
            status, _ = http(method, f"http://{rest}{path}", body)
            with lock:
                statuses.append(status)

    pending = list(range(SERVICES))
    while pending:
        batch, pending = pending[:AT_ONCE], pending[AT_ONCE:]
        threads = [threading.Thread(target=one, args=(i,)) for i in batch]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    # One malformed request: a refused outcome.
    status, _ = http("POST", f"http://{rest}/v1/apply", {"service": {"kind": "Service"}})
    return statuses, status


def query(prom, expr):
    url = f"http://{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    status, body = http("GET", url, timeout=10)
    if status != 200:
        return None
    return json.loads(body)["data"]["result"]


def value(prom, expr):
    result = query(prom, expr) or []
    return float(result[0]["value"][1]) if result else None


def rules_checks():
    for args in (["check", "rules", RULES], ["test", "rules", RULE_TESTS]):
        r = subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120)
        check(f"promtool {' '.join(args[:2])}", r.returncode == 0, r.stdout + r.stderr)
    with open(RULES) as f:
        plain = yaml.safe_load(f)
    with open(OPERATOR_RULES) as f:
        operator = yaml.safe_load(f)
    check("the PrometheusRule holds the plain file's groups",
          operator.get("kind") == "PrometheusRule" and operator["spec"]["groups"] == plain["groups"],
          "docker/k8s/prometheus-rules.yaml and docker/prometheus/svc-lbaas.rules.yaml differ")
    alerts = [r["alert"] for g in plain["groups"] for r in g["rules"] if "alert" in r]
    with open(RULE_TESTS) as f:
        tests = yaml.safe_load(f)
    fired = {a["alertname"] for t in tests["tests"] for c in t.get("alert_rule_test", [])
             for a in [c] if c.get("exp_alerts")}
    quiet = {c["alertname"] for t in tests["tests"] for c in t.get("alert_rule_test", []) if not c.get("exp_alerts")}
    check("every alert has a case where it fires and one where it does not",
          set(alerts) <= fired and set(alerts) <= quiet,
          f"fires untested: {set(alerts) - fired}, quiet untested: {set(alerts) - quiet}")
    return alerts


def main():
    binary = sys.argv[1]
    alerts = rules_checks()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["SVC_LBAAS_SIM_PROVISIONING_DELAY_MS"] = "200"
    env["RUST_LOG"] = "warn"
    procs = []
    work = tempfile.mkdtemp(prefix="svc-lbaas-prometheus-")
    try:
        serve, rest = started([binary, "serve", "--rest-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"],
                              "REST_ADDR", env)
        procs.append(serve)
        # A Kubernetes API nobody answers: the watcher stays a candidate.
        kubeconfig = os.path.join(work, "kubeconfig")
        with open(kubeconfig, "w") as f:
            yaml.safe_dump({
                "apiVersion": "v1", "kind": "Config", "current-context": "none",
                "clusters": [{"name": "none", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}],
                "users": [{"name": "none", "user": {"token": "none"}}],
                "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
            }, f)
        watch_env = dict(env, KUBECONFIG=kubeconfig)
        watch, health = started([binary, "watch", "--server", f"http://{rest}", "--health-addr", "127.0.0.1:0",
                                 ], "HEALTH_ADDR", watch_env)
        procs.append(watch)
        prom = f"127.0.0.1:{free_port()}"
        config = os.path.join(work, "prometheus.yml")
        with open(config, "w") as f:
            yaml.safe_dump({
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [RULES],
                "scrape_configs": [
                    {"job_name": "svc-lbaas", "static_configs": [{"targets": [rest]}]},
                    {"job_name": "svc-lbaas-watcher", "static_configs": [{"targets": [health]}]},
                ],
            }, f)
        prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={work}/data",
             f"--web.listen-address={prom}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(prometheus)
        deadline = time.time() + 30
        while time.time() < deadline and value(prom, 'sum(up{job=~"svc-lbaas|svc-lbaas-watcher"})') != 2:
            time.sleep(0.5)
        check("Prometheus scrapes serve and watch (both up)",
              value(prom, 'sum(up{job=~"svc-lbaas|svc-lbaas-watcher"})') == 2,
              query(prom, "up"))
        started_at = time.time()
        statuses, refused = load(rest)
        took = time.time() - started_at
        check(f"the load ran: {len(statuses)} applies and deletes in {took:.1f} s, all 200",
              len(statuses) == 3 * SERVICES and set(statuses) == {200}, statuses)
        check("the malformed apply is refused (400)", refused == 400, refused)
        # Every apply and delete observed, once Prometheus scraped after the load.
        expected = 2 * SERVICES + 1
        deadline = time.time() + 20
        while time.time() < deadline and value(prom, "sum(svc_lbaas_apply_duration_seconds_count)") != expected:
            time.sleep(0.5)
        time.sleep(2)
        applies = value(prom, "sum(svc_lbaas_apply_duration_seconds_count)")
        check(f"the apply histogram observed every apply ({expected})", applies == expected, applies)
        created = value(prom, 'sum(svc_lbaas_apply_duration_seconds_count{kind="service",action="created",outcome="ok"})')
        check(f"{SERVICES} creates, by action and outcome", created == SERVICES, created)
        refusals = value(prom, 'sum(svc_lbaas_apply_duration_seconds_count{outcome="refused"})')
        check("the refused apply, by outcome", refusals == 1, refusals)
        deletes = value(prom, 'sum(svc_lbaas_delete_duration_seconds_count{action="deleted",outcome="ok"})')
        check(f"{SERVICES} deletes observed", deletes == SERVICES, deletes)
        waits = value(prom, 'sum(svc_lbaas_wait_duration_seconds_count{kind="create",outcome="settled"})')
        check("the wait histogram observed the creates' waits", waits is not None and waits >= SERVICES, waits)
        calls = value(prom, 'sum(svc_lbaas_openstack_call_duration_seconds_count{service="load-balancer"})')
        check("the OpenStack call histogram observed calls", calls is not None and calls > 0, calls)
        p99 = value(prom, "histogram_quantile(0.99, sum by (le) (rate(svc_lbaas_apply_duration_seconds_bucket[1m])))")
        check(f"the apply duration's p99 is a number ({p99} s)",
              p99 is not None and math.isfinite(p99) and p99 > 0, p99)
        in_flight = value(prom, "svc_lbaas_applies_in_flight")
        check("nothing in flight after the load", in_flight == 0, in_flight)
        lease = value(prom, "svc_lbaas_watch_lease_held")
        check("the watcher holds no Lease", lease == 0, lease)
        status, body = http("GET", f"http://{prom}/api/v1/rules", timeout=10)
        groups = json.loads(body)["data"]["groups"] if status == 200 else []
        loaded = [r for g in groups for r in g["rules"]]
        bad = [(r["name"], r.get("lastError")) for r in loaded if r.get("health") not in ("ok",)]
        check(f"Prometheus loaded the shipped rules ({len(loaded)}) and each evaluates",
              {r["name"] for r in loaded if r["type"] == "alerting"} == set(alerts) and not bad, bad or loaded)
        # Every series a rule reads exists: a misspelt name would evaluate
        # "ok" to nothing forever. The two the leader alone writes cannot
        # exist here (this watcher never leads): their names are checked
        # against the code's own tests instead (src/watch/metrics.rs).
        with open(RULES) as f:
            exprs = [r["expr"] for g in yaml.safe_load(f)["groups"] for r in g["rules"]]
        read = sorted({n for e in exprs for n in re.findall(r"(?<![:\w])svc_lbaas_[a-z_]+(?![:\w])", e)})
        leader_only = {"svc_lbaas_watch_load_balancers", "svc_lbaas_watch_reconciles_total"}
        missing = [n for n in read if n not in leader_only
                   and not value(prom, f'count({{__name__="{n}"}})')]
        check(f"every series the rules read is scraped ({len(read) - len(leader_only)} names)",
              not missing and leader_only <= set(read), missing)
        status, body = http("GET", f"http://{prom}/api/v1/alerts", timeout=10)
        active = json.loads(body)["data"]["alerts"] if status == 200 else []
        names = {a["labels"]["alertname"] for a in active}
        check("the watcher-without-leader alert is active (pending or firing)",
              "SvcLbaasWatcherNoLeader" in names, active)
        quiet = {"SvcLbaasApplyFailures", "SvcLbaasOpenStackUnreachable", "SvcLbaasWaitsTimingOut"}
        check("alerts of a healthy server stay quiet", not (names & quiet), names & quiet)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["rm", "-rf", work])
    print(f"prometheus: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
