"""The fault suite: `svc-lbaas serve` processes against a standalone
`svc-lbaas sim` with its fault injection, each scenario ending with a leak
check (per Service one load balancer; floating IPs exactly those the
Pool-method Services need; no VIP port without its load balancer).
Loopback only; every scenario is bounded in count and time.

Usage: python run.py path/to/svc-lbaas [--markdown FILE] [--real OPENRC]
With --real (the openrc of tests/openstack/up.sh), the scenarios that need no
fault injection run on the real cloud instead (the race, SIGKILL, 50 Services
at once, GC), each starting from a cloud emptied of load balancers and
floating IPs.
Prints one line per scenario, then `faults: P passed, F failed`.
"""
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

BIN = sys.argv[1]
MARKDOWN = sys.argv[sys.argv.index("--markdown") + 1] if "--markdown" in sys.argv else None
REAL = sys.argv[sys.argv.index("--real") + 1] if "--real" in sys.argv else None
# A step of the SIGKILL scenario: the simulator's calls take 150 ms (latency
# injected), the real cloud's take what they take.
STEP = 0.4 if REAL else 0.15
ADMIN = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
    "name": "admin", "domain": {"name": "Default"}, "password": "admin"}}},
    "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}


def http(method, url, body=None, headers=None, timeout=60):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read().decode()
            return r.status, (json.loads(text) if text.strip() else None)
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        return 0, str(e)


def start(args, env=None):
    proc = subprocess.Popen([BIN] + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, "SVC_LBAAS_LOG": "warn", **(env or {})})
    lines = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode()
        if not line:
            break
        key, _, value = line.strip().partition("=")
        lines[key] = value
        if key in ("REST_ADDR", "ROUTER"):
            break
    return proc, lines


class Cloud:
    """A standalone simulator and what an admin sees of it."""

    def __init__(self, delay_ms=100):
        self.proc, self.env = start(["sim", "--listen", "127.0.0.1:0", "--provisioning-delay-ms", str(delay_ms)])
        self.base = self.env["OS_AUTH_URL"].rsplit("/v3", 1)[0]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)

    def serve_env(self):
        env = {k: v for k, v in self.env.items() if k.startswith("OS_")}
        env.update({"SVC_LBAAS_SERVICE_SUBNET": self.env["SERVICE_SUBNET"],
                    "SVC_LBAAS_POD_SUBNET": self.env["POD_SUBNET"],
                    "SVC_LBAAS_EXTERNAL_SVC_SUBNET": self.env["PUBLIC_SUBNET"],
                    "SVC_LBAAS_ORPHAN_GRACE_S": "0"})
        return env

    def token(self):
        req = urllib.request.Request(self.env["OS_AUTH_URL"] + "/auth/tokens", data=json.dumps(ADMIN).encode(),
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.headers["x-subject-token"]

    def get(self, path):
        status, body = http("GET", self.base + path, headers={"x-auth-token": self.token()})
        assert status == 200, (path, status, body)
        return body

    def fault(self, **fault):
        status, body = http("POST", self.base + "/sim/faults", fault)
        assert status == 201, (status, body)
        return body["id"]

    def clear_faults(self):
        http("DELETE", self.base + "/sim/faults")

    def leaks(self, pool_services):
        """What is wrong in the cloud: a list of problems (empty: no leak)."""
        lbs = [lb for lb in self.get("/load-balancer/v2/lbaas/loadbalancers")["loadbalancers"]
               if lb["provisioning_status"] != "PENDING_DELETE"]
        fips = self.get("/network/v2.0/floatingips")["floatingips"]
        ports = self.get("/network/v2.0/ports")["ports"]
        problems = []
        names = [lb["name"] for lb in lbs]
        for name in sorted(set(names)):
            if names.count(name) != 1:
                problems.append(f"{names.count(name)} load balancers named {name}")
        wanted = set(pool_services)
        missing = wanted - set(names)
        if missing:
            problems.append(f"no load balancer for {sorted(missing)}")
        extra = set(names) - wanted - set(EXPECTED_OTHERS)
        if extra:
            problems.append(f"load balancers of no Service: {sorted(extra)}")
        owned = [f for f in fips if "svc-lbaas-cluster:" in (f.get("description") or "")]
        if len(owned) != len(wanted):
            problems.append(f"{len(owned)} floating IPs for {len(wanted)} Pool-method Services")
        vip_ports = {lb["vip_port_id"] for lb in lbs}
        bound = [f for f in owned if f.get("port_id") not in vip_ports]
        if bound:
            problems.append(f"{len(bound)} floating IPs not on a VIP port")
        all_lbs = {lb["id"] for lb in self.get("/load-balancer/v2/lbaas/loadbalancers")["loadbalancers"]}
        orphans = [p for p in ports if p["device_owner"] == "Octavia"
                   and p["device_id"].removeprefix("lb-") not in all_lbs]
        if orphans:
            problems.append(f"{len(orphans)} VIP ports without a load balancer")
        return problems


EXPECTED_OTHERS = []


class RealCloud(Cloud):
    """The loopback OpenStack of tests/openstack/up.sh, emptied first."""

    def __init__(self, delay_ms=None):
        self.env = {}
        for line in open(REAL):
            if line.startswith("export ") and "=" in line:
                k, _, v = line[len("export "):].strip().partition("=")
                self.env[k] = v.strip("'\"")
        self.base = None
        self.empty()

    def stop(self):
        pass

    def serve_env(self):
        env = {k: v for k, v in self.env.items() if k.startswith("OS_")}
        env.update({"SVC_LBAAS_SERVICE_SUBNET": self.env["SERVICE_SUBNET_ID"],
                    "SVC_LBAAS_POD_SUBNET": self.env["POD_SUBNET_ID"],
                    "SVC_LBAAS_EXTERNAL_SVC_SUBNET": self.env["PUBLIC_SUBNET_ID"],
                    "SVC_LBAAS_ORPHAN_GRACE_S": "0"})
        return env

    def token(self):
        body = json.loads(json.dumps(ADMIN))
        body["auth"]["identity"]["password"]["user"]["password"] = self.env["OS_PASSWORD"]
        req = urllib.request.Request(self.env["OS_AUTH_URL"] + "/auth/tokens", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.headers["x-subject-token"]

    def url(self, path):
        if path.startswith("/load-balancer"):
            return "http://127.0.0.1:9876" + path[len("/load-balancer"):]
        return "http://127.0.0.1:9696" + path[len("/network"):]

    def get(self, path):
        status, body = http("GET", self.url(path), headers={"x-auth-token": self.token()})
        assert status == 200, (path, status, body)
        return body

    def fault(self, **fault):
        return None  # no fault injection on the real cloud: its calls are slow enough

    def clear_faults(self):
        pass

    def empty(self):
        token = self.token()
        for fip in self.get("/network/v2.0/floatingips")["floatingips"]:
            http("DELETE", self.url(f"/network/v2.0/floatingips/{fip['id']}"), headers={"x-auth-token": token})
        for _ in range(300):
            lbs = self.get("/load-balancer/v2/lbaas/loadbalancers")["loadbalancers"]
            if not lbs:
                return
            # A delete is refused while a load balancer is PENDING_*: ask again.
            for lb in lbs:
                if lb["provisioning_status"] in ("ACTIVE", "ERROR"):
                    http("DELETE", self.url(f"/load-balancer/v2/lbaas/loadbalancers/{lb['id']}?cascade=true"),
                         headers={"x-auth-token": token})
            time.sleep(1)
        raise AssertionError("the real cloud could not be emptied")


class Server:
    def __init__(self, cloud):
        self.proc, lines = start(["serve", "--rest-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"],
                                 cloud.serve_env())
        self.url = "http://" + lines["REST_ADDR"]

    def apply(self, body, query=""):
        # Past the server's own deadline (timeout_s, 300 s by default).
        return http("POST", f"{self.url}/v1/apply{query}", body, timeout=330)

    def delete(self, ns, name):
        return http("DELETE", f"{self.url}/v1/services/{ns}/{name}", timeout=120)

    def sync(self, body):
        return http("POST", f"{self.url}/v1/sync", body, timeout=300)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def service(name, ports=2, ip=None, kind="LoadBalancer"):
    spec = {"type": kind, "ports": [{"name": f"p{i}", "port": 80 + i, "targetPort": 8080 + i} for i in range(ports)]}
    if ip:
        spec["clusterIP"] = ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "shop"}, "spec": spec}


def request(name, ip=None, endpoints=("10.1.0.5", "10.1.0.6")):
    return {"service": service(name, ip=ip),
            "endpoints": {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": "shop"},
                          "subsets": [{"addresses": [{"ip": a} for a in endpoints],
                                       "ports": [{"name": f"p{i}", "port": 8080 + i} for i in range(2)]}]}}


def converge(server, name, ip=None, endpoints=("10.1.0.5", "10.1.0.6"), tries=5):
    for _ in range(tries):
        status, body = server.apply(request(name, ip, endpoints))
        if status == 200:
            return body
        time.sleep(0.3)
    raise AssertionError(f"{name} did not converge: {status} {body}")


RESULTS = []


def scenario(name, command, real=False):
    def wrap(fn):
        def run():
            if REAL and not real:
                return
            started = time.monotonic()
            cloud = RealCloud() if REAL else Cloud()
            runs = failures = leaked = 0
            answers = {}
            note = ""
            try:
                runs, failures, leaked, answers, note = fn(cloud)
            except Exception as e:  # noqa: BLE001 - a scenario that breaks is a failure, reported
                failures += 1
                note = f"{type(e).__name__}: {e}"[:300]
            finally:
                cloud.stop()
            took = time.monotonic() - started
            ok = failures == 0 and leaked == 0
            RESULTS.append({"scenario": name, "runs": runs, "failures": failures, "answers": answers,
                            "leaked": leaked, "seconds": round(took, 1), "command": command, "note": note, "ok": ok})
            print(f"{'ok  ' if ok else 'FAIL'} {name}: {runs} runs, {failures} failures, {leaked} leaked, "
                  f"answers {answers}, {took:.1f}s {note}", flush=True)
        SCENARIOS.append((name, run))
        return run
    return wrap


SCENARIOS = []


def count(answers, status):
    answers[str(status)] = answers.get(str(status), 0) + 1


@scenario("409 storms while PENDING", "faults/run.py: 409 storms")
def storms(cloud):
    server = Server(cloud)
    answers, runs, failures = {}, 0, 0
    try:
        for i in range(4):
            name = f"storm-{i}"
            converge(server, name)
            cloud.fault(method="PUT", path="*/members", error_rate=1.0, status=409, times=2)
            status, body = server.apply(request(name, endpoints=("10.1.0.7",)))
            runs += 1
            count(answers, status)
            if status != 200:
                failures += 1
        problems = cloud.leaks([f"shop/storm-{i}" for i in range(4)])
        return runs, failures, len(problems), answers, "; ".join(problems)
    finally:
        server.stop()


def each_call(cloud, server, name, action):
    """Fails each distinct call of `action` in turn (500, then a dropped
    connection), re-applies until converged; answers (runs, failures, answers)."""
    http("DELETE", cloud.base + "/sim/stats")
    action()
    calls = http("GET", cloud.base + "/sim/stats")[1]["calls"]
    answers, runs, failures = {}, 0, 0
    for call in sorted(calls):
        method, path = call.split(" ", 1)
        if path.startswith("/v3"):
            continue
        pattern = path.replace("{id}", "*")
        for fault in ({"error_rate": 1.0, "status": 500}, {"drop_connection": True}):
            cloud.fault(method=method, path=pattern, times=1, **fault)
            status, _ = action()
            runs += 1
            count(answers, status)
            cloud.clear_faults()
            if status >= 500 or status == 0:
                # The answer said it failed: a re-apply must converge.
                if action()[0] != 200:
                    failures += 1
    return runs, failures, answers


@scenario("5xx and dropped connections on each call of a create, an endpoint change and a delete",
          "faults/run.py: each call")
def each_call_scenario(cloud):
    server = Server(cloud)
    try:
        total = [0, 0, {}]
        names = iter(range(1000))

        def create():
            # A new Service each time: what fails is a create's call.
            create.last = f"c-{next(names)}"
            return server.apply(request(create.last))
        create.last = None

        def retry_create():
            return server.apply(request(create.last))

        # Create: fail each call of a create, then converge the same Service.
        http("DELETE", cloud.base + "/sim/stats")
        create()
        calls = http("GET", cloud.base + "/sim/stats")[1]["calls"]
        for call in sorted(calls):
            method, path = call.split(" ", 1)
            if path.startswith("/v3"):
                continue
            for fault in ({"error_rate": 1.0, "status": 500}, {"drop_connection": True}):
                cloud.fault(method=method, path=path.replace("{id}", "*"), times=1, **fault)
                status, _ = create()
                cloud.clear_faults()
                total[0] += 1
                count(total[2], status)
                if status != 200 and retry_create()[0] != 200:
                    total[1] += 1
        converge(server, "ep")
        flip = [("10.1.0.5",), ("10.1.0.6",)]
        state = {"i": 0}

        def change():
            state["i"] += 1
            return server.apply(request("ep", endpoints=flip[state["i"] % 2]))
        r, f, a = each_call(cloud, server, "ep", change)
        total[0] += r
        total[1] += f
        for k, v in a.items():
            total[2][k] = total[2].get(k, 0) + v
        # Delete: fail each call of a delete of a fresh Service, then delete again.
        http("DELETE", cloud.base + "/sim/stats")
        converge(server, "d-probe")
        server.delete("shop", "d-probe")
        calls = http("GET", cloud.base + "/sim/stats")[1]["calls"]
        deletes = [c for c in sorted(calls) if not c.split(" ", 1)[1].startswith("/v3")]
        for i, call in enumerate(deletes):
            method, path = call.split(" ", 1)
            for j, fault in enumerate(({"error_rate": 1.0, "status": 500}, {"drop_connection": True})):
                name = f"d-{i}-{j}"
                converge(server, name)
                cloud.fault(method=method, path=path.replace("{id}", "*"), times=1, **fault)
                status, _ = server.delete("shop", name)
                cloud.clear_faults()
                total[0] += 1
                count(total[2], status)
                if status != 200 and server.delete("shop", name)[0] != 200:
                    total[1] += 1
        # Everything created above and not deleted must be there once.
        lbs = {lb["name"] for lb in cloud.get("/load-balancer/v2/lbaas/loadbalancers")["loadbalancers"]}
        wanted = sorted(n for n in lbs if not n.startswith("shop/d-"))
        problems = cloud.leaks(wanted)
        return total[0], total[1], len(problems), total[2], "; ".join(problems)
    finally:
        server.stop()


@scenario("provisioning slower than timeout_s", "faults/run.py: slow provisioning")
def slow(cloud):
    cloud.stop()
    cloud.__init__(delay_ms=3000)
    server = Server(cloud)
    answers, runs, failures = {}, 0, 0
    try:
        for i in range(2):
            status, body = server.apply(request(f"slow-{i}"), "?timeout_s=1")
            runs += 1
            count(answers, status)
            if status not in (202, 504):
                failures += 1
        time.sleep(4)
        for i in range(2):
            if server.apply(request(f"slow-{i}"), "?timeout_s=30")[0] != 200:
                failures += 1
        problems = cloud.leaks([f"shop/slow-{i}" for i in range(2)])
        return runs, failures, len(problems), answers, "; ".join(problems)
    finally:
        server.stop()


@scenario("tokens expiring mid-apply", "faults/run.py: token expiry")
def tokens(cloud):
    server = Server(cloud)
    answers, runs, failures = {}, 0, 0
    try:
        for i in range(3):
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                future = pool.submit(server.apply, request(f"tok-{i}"))
                time.sleep(0.05)
                http("POST", cloud.base + "/sim/faults/expire-tokens")
                status, _ = future.result()
            runs += 1
            count(answers, status)
            if status != 200:
                failures += 1
        problems = cloud.leaks([f"shop/tok-{i}" for i in range(3)])
        return runs, failures, len(problems), answers, "; ".join(problems)
    finally:
        server.stop()


@scenario("a load balancer going to ERROR in PENDING_CREATE and when ACTIVE", "faults/run.py: ERROR")
def errors(cloud):
    server = Server(cloud)
    answers, runs, failures = {}, 0, 0
    try:
        # ACTIVE -> ERROR: the next apply replaces it.
        body = converge(server, "err-active")
        http("POST", cloud.base + f"/sim/faults/loadbalancers/{body['loadBalancer']['id']}/error")
        status, _ = server.apply(request("err-active"))
        runs += 1
        count(answers, status)
        failures += status != 200
        # PENDING_CREATE -> ERROR: the apply fails (502), the next replaces it.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            future = pool.submit(server.apply, request("err-pending"))
            lb = None
            for _ in range(100):
                lbs = [x for x in cloud.get("/load-balancer/v2/lbaas/loadbalancers")["loadbalancers"]
                       if x["name"] == "shop/err-pending"]
                if lbs:
                    lb = lbs[0]
                    break
                time.sleep(0.01)
            if lb:
                http("POST", cloud.base + f"/sim/faults/loadbalancers/{lb['id']}/error")
            status, _ = future.result()
        runs += 1
        count(answers, status)
        if status != 200 and server.apply(request("err-pending"))[0] != 200:
            failures += 1
        time.sleep(0.5)
        problems = cloud.leaks(["shop/err-active", "shop/err-pending"])
        return runs, failures, len(problems), answers, "; ".join(problems)
    finally:
        server.stop()


@scenario("SIGKILL of the server at each step of a create and a delete, then restart and re-apply",
          "faults/run.py: SIGKILL", real=True)
def sigkill(cloud):
    answers, runs, failures = {}, 0, 0
    # Each call takes 150 ms, so a kill after k x 150 ms lands at the k-th step.
    cloud.fault(path="/load-balancer/*", latency_ms=150)
    cloud.fault(path="/network/*", latency_ms=150)
    for step in range(8):
        name = f"kill-{step}"
        server = Server(cloud)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(server.apply, request(name))
            time.sleep(0.08 + STEP * step)
            server.kill()
        server = Server(cloud)
        status, _ = server.apply(request(name))
        runs += 1
        count(answers, status)
        failures += status != 200
        # And a delete killed at the same step, then done again.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(server.delete, "shop", name)
            time.sleep(0.08 + STEP * min(step, 3))
            server.kill()
        server = Server(cloud)
        status, _ = server.delete("shop", name)
        runs += 1
        count(answers, status)
        failures += status != 200
        server.stop()
    cloud.clear_faults()
    time.sleep(1)
    problems = cloud.leaks([])
    return runs, failures, len(problems), answers, "; ".join(problems)


def race(cloud, with_cluster_ip):
    a, b = Server(cloud), Server(cloud)
    answers, runs, failures = {}, 0, 0
    try:
        names = [f"race-{i}" for i in range(20)]
        detail = []
        ip = (lambda i: f"10.2.3.{i + 10}") if with_cluster_ip else (lambda i: None)
        with concurrent.futures.ThreadPoolExecutor(40) as pool:
            futures = [(n, pool.submit(s.apply, request(n, ip(i)))) for i, n in enumerate(names) for s in (a, b)]
            got = {}
            for n, f in futures:
                status, body = f.result()
                runs += 1
                count(answers, status)
                if status != 200:
                    failures += 1
                    detail.append(str(body)[:400])
                    continue
                ingress = body["status"]["loadBalancer"].get("ingress", [{}])[0].get("ip")
                if got.setdefault(n, ingress) != ingress:
                    failures += 1
        problems = cloud.leaks([f"shop/{n}" for n in names])
        return runs, failures, len(problems), answers, "; ".join(problems + detail)
    finally:
        a.stop()
        b.stop()


@scenario("two server processes applying the same 20 Services at once, without clusterIP", "faults/run.py: race", real=True)
def race_no_ip(cloud):
    return race(cloud, False)


@scenario("two server processes applying the same 20 Services at once, with clusterIP", "faults/run.py: race", real=True)
def race_ip(cloud):
    return race(cloud, True)


@scenario("200 concurrent applies of different Services through one process (50 on the real cloud)",
          "faults/run.py: 200 at once", real=True)
def many(cloud):
    server = Server(cloud)
    answers, runs, failures = {}, 0, 0
    n = 50 if REAL else 200
    try:
        names = [f"many-{i}" for i in range(n)]
        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            for status, _ in pool.map(lambda n: server.apply(request(n)), names):
                runs += 1
                count(answers, status)
                failures += status != 200
        problems = cloud.leaks([f"shop/{n}" for n in names])
        return runs, failures, len(problems), answers, "; ".join(problems)
    finally:
        server.stop()


@scenario("a sync that misses a Service (GC) and one that adds it back", "faults/run.py: sync", real=True)
def sync(cloud):
    server = Server(cloud)
    answers, runs, failures = {}, 0, 0
    try:
        listed = lambda names: {"apiVersion": "v1", "kind": "List", "items": [service(n) for n in names]}  # noqa: E731
        for names in (["s-a", "s-b", "s-c"], ["s-a", "s-c"], ["s-a", "s-b", "s-c"]):
            status, body = server.sync(listed(names))
            runs += 1
            count(answers, status)
            failures += status != 200
            time.sleep(0.5)
            problems = cloud.leaks([f"shop/{n}" for n in names])
            if problems:
                return runs, failures, len(problems), answers, "; ".join(problems)
        return runs, failures, 0, answers, ""
    finally:
        server.stop()


ONLY = os.environ.get("FAULTS_ONLY")
for name, run in SCENARIOS:
    if not ONLY or ONLY in name:
        run()
passed = sum(r["ok"] for r in RESULTS)
failed = len(RESULTS) - passed
if MARKDOWN:
    with open(MARKDOWN, "w") as f:
        f.write("| scenario | runs | failed | answers (HTTP status: count) | leaked | seconds |\n|---|---|---|---|---|---|\n")
        for r in RESULTS:
            answers = ", ".join(f"{k}: {v}" for k, v in sorted(r["answers"].items()))
            f.write(f"| {r['scenario']} | {r['runs']} | {r['failures']} | {answers} | {r['leaked']} | {r['seconds']} |\n")
print(f"faults: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
