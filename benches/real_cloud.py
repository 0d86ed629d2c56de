"""svc-lbaas against the API's minimum, side by side on the real cloud that
tests/openstack/up.sh brings up (loopback only).

The minimum is a plain openstacksdk script doing what the API needs at
least: one fully populated create, polls every 0.5 s, then one floating IP
POST; one batch member PUT per pool, each waited for; a floating IP DELETE
and a cascade delete, waited for. svc-lbaas does the same through its REST
API (create, one endpoint replaced, delete) plus a no-op re-apply. Both run
interleaved, alternating which goes first, for ROUNDS rounds, and both reach
the cloud through one counting proxy (Keystone's catalog is rewritten to
point at it), so every wire request is counted the same way for both, not
self-reported.

Usage (the harness's venv has openstacksdk):
  $OS_VENV/bin/python benches/real_cloud.py path/to/svc-lbaas OPENRC [--rounds N] [--markdown FILE] [--trace FILE]
  $OS_VENV/bin/python benches/real_cloud.py path/to/svc-lbaas OPENRC --scale N [--rounds R]
  add --minimum-fip-during-provisioning (a diagnostic, not the baseline) to have
  the minimum make its floating IP right after its load balancer POST, as
  svc-lbaas does, instead of after ACTIVE; --minimum-fip-delete-beside-cascade
  (also a diagnostic) to have it send its floating IP DELETE beside its cascade
  DELETE, as svc-lbaas does, instead of before it.
Prints a table of medians and the ratio svc-lbaas / minimum. --scale N instead
creates N Services at once (svc-lbaas: N concurrent REST applies; the minimum:
N scripts in parallel, one thread each, authenticated beforehand), then deletes
them at once, each tool's create and delete in turn, alternating which goes
first, R rounds (default 1): total and p50 times, wire requests; every apply
must answer 200 (created, converged) and, after each tool's deletes, no load
balancer and no floating IP may be left. --trace writes
every proxied request as a JSON line (phase, start and duration in seconds
from the phase's start, service, method, path, status).
"""
import http.client
import http.server
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import openstack

BIN, OPENRC = sys.argv[1], sys.argv[2]
ROUNDS = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 3
MARKDOWN = sys.argv[sys.argv.index("--markdown") + 1] if "--markdown" in sys.argv else None
TRACE = sys.argv[sys.argv.index("--trace") + 1] if "--trace" in sys.argv else None
SCALE = int(sys.argv[sys.argv.index("--scale") + 1]) if "--scale" in sys.argv else 0
POLL = 0.5
# Diagnostic: the minimum makes its floating IP right after its load
# balancer POST is answered, during provisioning, as svc-lbaas does (its
# default is after ACTIVE): shows what that POST costs Octavia on this host.
EARLY_FIP = "--minimum-fip-during-provisioning" in sys.argv
# Diagnostic: the minimum sends its floating IP DELETE beside its cascade
# DELETE, as svc-lbaas does (its default is before it): shows what that
# DELETE costs Octavia's cascade on this host.
LATE_FIP_DELETE = "--minimum-fip-delete-beside-cascade" in sys.argv
IPS = ["10.1.0.5", "10.1.0.6", "10.1.0.7"]
CHANGED = ["10.1.0.5", "10.1.0.6", "10.1.0.8"]
PORTS = [(80, 8080), (443, 8443)]


def openrc(path):
    env = {}
    for line in open(path):
        if line.startswith("export ") and "=" in line:
            k, _, v = line[len("export "):].strip().partition("=")
            env[k] = v
    return env


ENV = openrc(OPENRC)

# ------------------------------------------------------------ counting proxy

COUNTS = {}
COUNTS_LOCK = threading.Lock()
PHASE = ["warm-up"]
PHASE_STARTED = [time.monotonic()]
TRACED = []


class Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # Many clients connect at once at scale: none should wait on the backlog.
    request_queue_size = 1024

    def __init__(self, service, upstream):
        self.service, self.upstream = service, urllib.parse.urlsplit(upstream)
        self.rewrites = []
        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # The answer goes out as two writes (head, then body): without
        # TCP_NODELAY the body waits for the client's delayed ACK of the
        # head (up to 40 ms on Linux), which the trace would not see and
        # both tools would pay.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def forward(self):
        server = self.server
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else None
        began = time.monotonic()
        with COUNTS_LOCK:
            # The phase and its start as the request began (the next phase
            # may have begun by the time it is answered).
            phase, phase_started = PHASE[0], PHASE_STARTED[0]
            key = (phase, server.service, "read" if self.command == "GET" else "write")
            COUNTS[key] = COUNTS.get(key, 0) + 1
        # No tighter deadline than the clients' own: under load (one Octavia API
        # worker here) a call may queue for minutes.
        conn = http.client.HTTPConnection(server.upstream.hostname, server.upstream.port, timeout=1800)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "connection", "content-length", "accept-encoding")}
        conn.request(self.command, self.path, body=body, headers=headers)
        res = conn.getresponse()
        data = res.read()
        data = rewrite(server.rewrites, data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
        self.send_response(res.status, res.reason)
        for k, v in res.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length", "content-encoding"):
                self.send_header(k, rewrite(server.rewrites, v))
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()
        if TRACE:
            with COUNTS_LOCK:
                TRACED.append({"phase": phase, "start": round(began - phase_started, 3),
                               "took": round(time.monotonic() - began, 3), "service": server.service,
                               "method": self.command, "path": self.path, "status": res.status})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = forward


def rewrite(rewrites, text):
    """Real base URLs to the proxies' (a port followed by no further digit)."""
    for old, new in rewrites:
        text = re.sub(re.escape(old) + r"(?!\d)", new, text)
    return text


def catalog():
    """The real endpoints of Keystone, Neutron and Octavia."""
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": ENV["OS_USERNAME"], "domain": {"name": ENV["OS_USER_DOMAIN_NAME"]},
        "password": ENV["OS_PASSWORD"]}}},
        "scope": {"project": {"name": ENV["OS_PROJECT_NAME"], "domain": {"name": ENV["OS_PROJECT_DOMAIN_NAME"]}}}}}
    req = urllib.request.Request(ENV["OS_AUTH_URL"].rstrip("/") + "/auth/tokens", json.dumps(body).encode(),
                                 {"content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        token = json.load(r)["token"]
    found = {}
    for entry in token["catalog"]:
        for ep in entry["endpoints"]:
            if ep["interface"] == "public":
                u = urllib.parse.urlsplit(ep["url"])
                found[entry["type"]] = f"{u.scheme}://{u.netloc}"
    return found


def start_proxies():
    real = catalog()
    keystone = urllib.parse.urlsplit(ENV["OS_AUTH_URL"])
    proxies = {"identity": Proxy("keystone", f"{keystone.scheme}://{keystone.netloc}"),
               "network": Proxy("neutron", real["network"]),
               "load-balancer": Proxy("octavia", real["load-balancer"])}
    base = {"identity": f"{keystone.scheme}://{keystone.netloc}", **real}
    rewrites = [(base[k], p.url) for k, p in proxies.items() if k in base]
    proxies["identity"].rewrites = rewrites
    auth_url = ENV["OS_AUTH_URL"].replace(base["identity"], proxies["identity"].url)
    return auth_url


def begin(phase):
    """Starts a phase; the trace keeps its wall-clock start, to line it up
    with Octavia's logs (trace_summary.py --worker-log)."""
    with COUNTS_LOCK:
        PHASE_STARTED[0] = time.monotonic()
        PHASE[0] = phase
        if TRACE:
            TRACED.append({"phase": phase, "wall": time.time()})
        return PHASE_STARTED[0]


def counted(phase, fn):
    started = begin(phase)
    fn()
    took = time.monotonic() - started
    PHASE[0] = "between"
    return took


def calls(phase):
    with COUNTS_LOCK:
        c = {k[1:]: v for k, v in COUNTS.items() if k[0] == phase}
    reads = sum(v for (svc, kind), v in c.items() if kind == "read" and svc != "keystone")
    writes = sum(v for (svc, kind), v in c.items() if kind == "write" and svc != "keystone")
    keystone = sum(v for (svc, _), v in c.items() if svc == "keystone")
    return reads, writes, keystone

# ------------------------------------------------------------ the minimum


class Minimum:
    def __init__(self, auth_url):
        self.conn = openstack.connect(auth_url=auth_url, username=ENV["OS_USERNAME"], password=ENV["OS_PASSWORD"],
                                      project_name=ENV["OS_PROJECT_NAME"],
                                      user_domain_name=ENV["OS_USER_DOMAIN_NAME"],
                                      project_domain_name=ENV["OS_PROJECT_DOMAIN_NAME"],
                                      region_name=ENV.get("OS_REGION_NAME"), interface="public")
        self.octavia = self.conn.load_balancer.get_endpoint().rstrip("/")
        if self.octavia.endswith("/v2.0") or self.octavia.endswith("/v2"):
            self.octavia = self.octavia.rsplit("/", 1)[0]
        list(self.conn.load_balancer.load_balancers())  # version discovery, once
        list(self.conn.network.ips(port_id="none"))

    def wait(self, lb_id, gone=False):
        while True:
            try:
                lb = self.conn.load_balancer.get_load_balancer(lb_id)
            except openstack.exceptions.NotFoundException:
                if gone:
                    return
                raise
            if not gone and lb.provisioning_status == "ACTIVE":
                return
            if lb.provisioning_status == "ERROR":
                raise RuntimeError(f"{lb_id} ERROR")
            time.sleep(POLL)

    def create(self, name):
        listeners = [{"name": f"{name}:{port}", "protocol": "TCP", "protocol_port": port, "default_pool": {
            "name": f"{name}:{port}", "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN",
            "members": [{"address": ip, "protocol_port": target, "subnet_id": ENV["POD_SUBNET_ID"]} for ip in IPS]}}
            for port, target in PORTS]
        lb = self.conn.load_balancer.create_load_balancer(name=name, vip_subnet_id=ENV["SERVICE_SUBNET_ID"],
                                                          listeners=listeners)
        self.lb = lb.id
        self.pools = [(l["default_pool_id"], l["protocol_port"]) for l in lb.listeners]
        if EARLY_FIP:
            self.fip = self.conn.network.create_ip(floating_network_id=ENV["PUBLIC_NET_ID"], port_id=lb.vip_port_id).id
        self.wait(lb.id)
        if not EARLY_FIP:
            self.fip = self.conn.network.create_ip(floating_network_id=ENV["PUBLIC_NET_ID"], port_id=lb.vip_port_id).id

    def replace_one(self):
        target = dict(PORTS)
        for pool, port in self.pools:
            members = [{"address": ip, "protocol_port": target[port], "subnet_id": ENV["POD_SUBNET_ID"]}
                       for ip in CHANGED]
            self.conn.session.put(f"{self.octavia}/v2/lbaas/pools/{pool}/members", json={"members": members})
            self.wait(self.lb)

    def delete(self):
        if LATE_FIP_DELETE:
            fip = threading.Thread(target=self.conn.network.delete_ip, args=(self.fip,))
            fip.start()
            self.conn.load_balancer.delete_load_balancer(self.lb, cascade=True)
            self.wait(self.lb, gone=True)
            fip.join()
            return
        self.conn.network.delete_ip(self.fip)
        self.conn.load_balancer.delete_load_balancer(self.lb, cascade=True)
        self.wait(self.lb, gone=True)

# ------------------------------------------------------------ svc-lbaas


class SvcLbaas:
    def __init__(self, auth_url):
        env = {**os.environ, **ENV, "OS_AUTH_URL": auth_url, "SVC_LBAAS_LOG": "warn",
               "SVC_LBAAS_SERVICE_SUBNET": ENV["SERVICE_SUBNET_ID"], "SVC_LBAAS_POD_SUBNET": ENV["POD_SUBNET_ID"],
               "SVC_LBAAS_EXTERNAL_SVC_SUBNET": ENV["PUBLIC_SUBNET_ID"], "SVC_LBAAS_VIP_FROM_CLUSTER_IP": "false"}
        self.proc = subprocess.Popen([BIN, "serve", "--rest-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self.url = None
        while self.url is None:
            line = self.proc.stdout.readline().decode()
            if not line:
                raise RuntimeError("svc-lbaas serve exited")
            if line.startswith("REST_ADDR="):
                self.url = "http://" + line.strip().partition("=")[2]
        self.http("GET", "/readyz")  # Keystone token and catalog, once

    def http(self, method, path, body=None):
        req = urllib.request.Request(self.url + path, None if body is None else json.dumps(body).encode(),
                                     {"content-type": "application/json"}, method=method)
        with urllib.request.urlopen(req, timeout=330) as r:
            text = r.read().decode()
            return json.loads(text) if text.strip() else None

    def request(self, ips, name="web"):
        return {"service": {"apiVersion": "v1", "kind": "Service",
                            "metadata": {"name": name, "namespace": "bench"},
                            "spec": {"type": "LoadBalancer", "ports": [
                                {"name": f"p{port}", "port": port, "targetPort": target} for port, target in PORTS]}},
                "endpoints": {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": "bench"},
                              "subsets": [{"addresses": [{"ip": ip} for ip in ips],
                                           "ports": [{"name": f"p{port}", "port": target} for port, target in PORTS]}]}}

    def apply(self, ips, expect, name="web"):
        a = self.http("POST", "/v1/apply", self.request(ips, name))
        assert a["action"] == expect and a["converged"], a

    def delete(self, name="web"):
        self.http("DELETE", f"/v1/services/bench/{name}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def main():
    auth_url = start_proxies()
    minimum, ours = Minimum(auth_url), SvcLbaas(auth_url)
    empty_cloud(minimum.conn)
    times = {}

    def run(tool, step, fn):
        phase = f"{tool} {step} {len(times.get((tool, step), []))}"
        took = counted(phase, fn)
        times.setdefault((tool, step), []).append((took, calls(phase)))

    try:
        for r in range(ROUNDS):
            name = f"minimum-{r}"
            pairs = [
                ("create", lambda: minimum.create(name), lambda: ours.apply(IPS, "created")),
                ("no-op", None, lambda: ours.apply(IPS, "unchanged")),
                ("one endpoint replaced", minimum.replace_one, lambda: ours.apply(CHANGED, "updated")),
                ("delete", minimum.delete, ours.delete),
            ]
            for step, theirs, mine in pairs:
                order = [("minimum", theirs), ("svc-lbaas", mine)]
                if r % 2:
                    order.reverse()
                for tool, fn in order:
                    if fn is not None:
                        run(tool, step, fn)
    finally:
        ours.stop()
    lines = [f"svc-lbaas and the API's minimum on the real cloud, {ROUNDS} rounds interleaved "
             f"(medians; wire requests counted by one proxy: reads/writes to Neutron and Octavia, + Keystone)"
             + (" (diagnostic: the minimum's floating IP during provisioning)" if EARLY_FIP else "")
             + (" (diagnostic: the minimum's floating IP DELETE beside its cascade)" if LATE_FIP_DELETE else ""), "",
             "| step | minimum | svc-lbaas | ratio | minimum calls | svc-lbaas calls |",
             "|---|---|---|---|---|---|"]
    for step in ["create", "one endpoint replaced", "delete", "no-op"]:
        def median(tool):
            runs = times.get((tool, step))
            if not runs:
                return None, "-"
            t = statistics.median(x[0] for x in runs)
            c = [x[1] for x in runs]
            reads, writes, ks = (statistics.median(x[i] for x in c) for i in range(3))
            return t, f"{reads:g} reads, {writes:g} writes, {ks:g} Keystone"
        (tm, cm), (ts, cs) = median("minimum"), median("svc-lbaas")
        ratio = f"{ts / tm:.2f}x" if tm else "-"
        lines.append(f"| {step} | {f'{tm:.2f} s' if tm else '-'} | {ts:.2f} s | {ratio} | {cm} | {cs} |")
    report(lines)


def report(lines):
    """The table on stdout (and --markdown); the trace to --trace."""
    print("\n".join(lines))
    if MARKDOWN:
        with open(MARKDOWN, "w") as f:
            f.write("\n".join(lines) + "\n")
    if TRACE:
        with open(TRACE, "w") as f:
            f.writelines(json.dumps(t) + "\n" for t in TRACED)


def at_once(fns):
    """Runs every fn in a thread of its own, all started together: the total
    time and each one's time; raises the first failure."""
    took, failures = [None] * len(fns), []
    started = time.monotonic()

    def one(i, fn):
        t = time.monotonic()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - reported below
            failures.append(e)
        took[i] = time.monotonic() - t
    threads = [threading.Thread(target=one, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    return time.monotonic() - started, statistics.median(took)


def empty_cloud(conn):
    """Starts from an empty project (the loopback cloud is the bench's): what
    an earlier run or test left is deleted and waited for."""
    for f in conn.network.ips():
        conn.network.delete_ip(f.id)
    for lb in conn.load_balancer.load_balancers():
        if lb.provisioning_status != "PENDING_DELETE":
            conn.load_balancer.delete_load_balancer(lb.id, cascade=True)
    deadline = time.monotonic() + 300
    while list(conn.load_balancer.load_balancers()):
        if time.monotonic() > deadline:
            raise RuntimeError("load balancers left from before would not go")
        time.sleep(1)


def scale_main():
    auth_url = start_proxies()
    ours = SvcLbaas(auth_url)
    minimums = [Minimum(auth_url) for _ in range(SCALE)]
    empty_cloud(minimums[0].conn)
    rounds = ROUNDS if "--rounds" in sys.argv else 1
    times = {}

    def run(tool, step, fns):
        phase = f"{tool} {step} {len(times.get((tool, step), []))}"
        begin(phase)
        total, p50 = at_once(fns)
        PHASE[0] = "between"
        times.setdefault((tool, step), []).append((total, p50, calls(phase)))

    def nothing_left(tool):
        """After a tool's deletes: no load balancer and no floating IP left."""
        conn = minimums[0].conn
        lbs = [lb.name for lb in conn.load_balancer.load_balancers()]
        fips = [f.floating_ip_address for f in conn.network.ips()]
        if lbs or fips:
            raise RuntimeError(f"{tool} left {len(lbs)} load balancers and {len(fips)} floating IPs: "
                               f"{lbs[:5]} {fips[:5]}")

    names = [f"web-{i}" for i in range(SCALE)]
    blocks = {
        "minimum": [("create", [lambda m=m, i=i: m.create(f"minimum-{i}") for i, m in enumerate(minimums)]),
                    ("delete", [m.delete for m in minimums])],
        "svc-lbaas": [("create", [lambda n=n: ours.apply(IPS, "created", n) for n in names]),
                      ("delete", [lambda n=n: ours.delete(n) for n in names])],
    }
    try:
        for r in range(rounds):
            order = ["minimum", "svc-lbaas"] if r % 2 == 0 else ["svc-lbaas", "minimum"]
            for tool in order:
                for step, fns in blocks[tool]:
                    run(tool, step, fns)
                nothing_left(tool)
    finally:
        ours.stop()
    lines = [f"{SCALE} Services at once, svc-lbaas against {SCALE} minimum scripts in parallel on the real cloud, "
             f"{rounds} round(s) (medians over rounds; wire requests counted by one proxy)", "",
             "| step | minimum total (p50) | svc-lbaas total (p50) | ratio of totals | minimum calls | svc-lbaas calls |",
             "|---|---|---|---|---|---|"]
    for step in ["create", "delete"]:
        def median(tool):
            runs = times[(tool, step)]
            t = statistics.median(x[0] for x in runs)
            p = statistics.median(x[1] for x in runs)
            reads, writes, ks = (statistics.median(x[2][i] for x in runs) for i in range(3))
            return t, p, f"{reads:g} reads, {writes:g} writes, {ks:g} Keystone"
        (tm, pm, cm), (ts, ps, cs) = median("minimum"), median("svc-lbaas")
        lines.append(f"| {step} | {tm:.1f} s ({pm:.1f} s) | {ts:.1f} s ({ps:.1f} s) | {ts / tm:.2f}x | {cm} | {cs} |")
    report(lines)


if __name__ == "__main__":
    scale_main() if SCALE else main()
