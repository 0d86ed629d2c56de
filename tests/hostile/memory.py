"""Peak memory of `svc-lbaas serve` (embedded simulator) per 1 MiB request:
extra peak RSS (VmHWM after the request minus VmRSS before it) for the
request shapes that cost the most, each close to the 1 MiB body limit.
Loopback only; bounded. Prints one line per shape, then `memory: P passed,
F failed` (a shape passes under 50 MiB, answered 200, or 400 where it is refused). Usage: python memory.py path/to/svc-lbaas
"""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

BIN = sys.argv[1]
LIMIT_MIB = 50
BODY_LIMIT = 1024 * 1024


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def reset_peak(pid):
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def post(port, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


SERIAL = iter(range(1, 250))


def service(ports, annotations=None, name="big"):
    # Each its own name and VIP: the simulated cloud is shared by all shapes.
    n = next(SERIAL)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"{name}-{n}", "namespace": "shop", "annotations": annotations or {}},
            "spec": {"type": "ClusterIP", "clusterIP": f"10.2.1.{n}", "ports": ports}}


def pad_to_limit(doc, key="padding"):
    """Adds a string field so the body ends just under the 1 MiB limit."""
    body = json.dumps(doc)
    doc[key] = "x" * max(0, BODY_LIMIT - len(body) - 64)
    return json.dumps(doc).encode()


def shapes():
    ports = [{"name": f"p{i}", "port": 1000 + i} for i in range(1000)]
    many = [{"name": f"p{i}", "port": i % 65535 + 1} for i in range(30000)]
    yield "30,000 ports, refused", "/v1/apply", json.dumps({"service": service(many)}).encode()
    yield "1,000 ports (the most), offline plan", "/v1/plan?offline=true", pad_to_limit({"service": service(ports)})
    ten = [{"name": f"p{i}", "port": 80 + i, "targetPort": 8080 + i} for i in range(10)]

    def endpoints(n, ports):
        addresses = [{"ip": f"10.1.{i // 250}.{i % 250 + 1}"} for i in range(n)]
        return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "big", "namespace": "shop"},
                "subsets": [{"addresses": addresses,
                             "ports": [{"name": f"p{i}", "port": 8080 + i} for i in range(ports)]}]}
    # The limits: 5,000 endpoint addresses, 10,000 members (ports x addresses).
    yield "2 ports x 5,000 endpoints (10,000 members), offline plan", "/v1/plan?offline=true", pad_to_limit({"service": service(ten[:2]), "endpoints": endpoints(5000, 2)})
    yield "2 ports x 5,000 endpoints (10,000 members), apply", "/v1/apply", pad_to_limit({"service": service(ten[:2]), "endpoints": endpoints(5000, 2)})
    yield "10 ports x 1,000 endpoints (10,000 members), apply", "/v1/apply", pad_to_limit({"service": service(ten), "endpoints": endpoints(1000, 10)})
    yield "10 ports x 20,000 endpoints, refused", "/v1/apply", json.dumps({"service": service(ten), "endpoints": endpoints(20000, 10)}).encode()
    junk = json.dumps({"service": service(ten[:1], name="junk"), "junk": []})
    n = (BODY_LIMIT - len(junk) - 16) // 2
    yield "1 MiB of tiny JSON values", "/v1/plan?offline=true", (junk[:-2] + ",".join(["0"] * n) + "]}").encode()
    keys = {f"k{i}": 0 for i in range(70000)}
    yield "an object of 70,000 keys", "/v1/plan?offline=true", pad_to_limit({"service": service(ten[:1], name="keys"), "junk": keys})
    yield "a 1 MiB annotation", "/v1/plan?offline=true", pad_to_limit({"service": service(ten[:1], {"x": ""}, name="ann")})


def start(args, env):
    proc = subprocess.Popen([BIN] + args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, "SVC_LBAAS_LOG": "warn", **env})
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


def main():
    # The simulated cloud in a process of its own, so that only svc-lbaas is measured.
    sim, cloud = start(["sim", "--listen", "127.0.0.1:0", "--provisioning-delay-ms", "50"], {})
    env = {k: cloud[k] for k in cloud if k.startswith("OS_")}
    env.update({"SVC_LBAAS_SERVICE_SUBNET": cloud["SERVICE_SUBNET"],
                "SVC_LBAAS_POD_SUBNET": cloud["POD_SUBNET"],
                "SVC_LBAAS_EXTERNAL_SVC_SUBNET": cloud["PUBLIC_SUBNET"]})
    passed = failed = 0
    try:
        for label, path, body in shapes():
            assert len(body) <= BODY_LIMIT, (label, len(body))
            # A fresh server each time: memory a request frees stays with the
            # allocator, and would hide the next request's peak.
            server, lines = start(["serve", "--rest-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"], env)
            try:
                port = int(lines["REST_ADDR"].rsplit(":", 1)[1])
                # Warm up: the first apply allocates what every later one reuses.
                post(port, "/v1/apply", json.dumps({"service": service([{"name": "a", "port": 80}], name="warm")}).encode())
                time.sleep(0.2)
                before = status_kib(server.pid, "VmRSS")
                reset_peak(server.pid)
                status, answer = post(port, path, body)
                peak = status_kib(server.pid, "VmHWM")
            finally:
                server.terminate()
                server.wait(timeout=10)
            extra = (peak - before) / 1024
            ok = extra < LIMIT_MIB and (status == 400 if "refused" in label else status == 200)
            passed += ok
            failed += not ok
            detail = "" if status < 400 else " " + answer[:200].decode(errors="replace")
            print(f"{'ok  ' if ok else 'FAIL'} {label}: {len(body) / 1024:.0f} KiB -> HTTP {status}, "
                  f"extra peak RSS {extra:.1f} MiB (before {before / 1024:.1f} MiB){detail}")
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    print(f"memory: {passed} passed, {failed} failed")
    return failed


sys.exit(1 if main() else 0)
