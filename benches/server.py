"""Server overhead: one `svc-lbaas serve` against a standalone `svc-lbaas sim`
(another process, so the RSS measured is the server's own), loaded by
oha (a load generator from crates.io) with `POST /v1/plan?offline=true` (a
2-port Service with 3 endpoints) and with `GET /healthz`, interleaved in one
run (ROUNDS rounds of each, alternating); then its idle RSS and the time from
exec to its first `/healthz` answer. Loopback only; every load run is bounded
(DURATION seconds, 16 connections).

Usage: python3 benches/server.py path/to/svc-lbaas [--oha path/to/oha] [--rounds N] [--duration S]
Without --oha it uses ~/.cache/svc-lbaas/tools/bin/oha, installing it there
with `cargo install oha --locked` the first time (a few minutes of build).
Prints requests/s and p99 of each, their ratio, idle RSS and start time.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

BIN = sys.argv[1]
ARGS = sys.argv[2:]
ROUNDS = int(ARGS[ARGS.index("--rounds") + 1]) if "--rounds" in ARGS else 3
DURATION = ARGS[ARGS.index("--duration") + 1] if "--duration" in ARGS else "10"
TOOLS = os.path.expanduser("~/.cache/svc-lbaas/tools")
OHA = ARGS[ARGS.index("--oha") + 1] if "--oha" in ARGS else os.path.join(TOOLS, "bin", "oha")

SERVICE = {"service": {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "bench"},
                       "spec": {"type": "LoadBalancer", "clusterIP": "10.2.0.42", "ports": [
                           {"name": "http", "port": 80, "targetPort": 8080},
                           {"name": "https", "port": 443, "targetPort": 8443}]}},
           "endpoints": {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web", "namespace": "bench"},
                         "subsets": [{"addresses": [{"ip": ip} for ip in ("10.1.0.5", "10.1.0.6", "10.1.0.7")],
                                      "ports": [{"name": "http", "port": 8080}, {"name": "https", "port": 8443}]}]}}


def ensure_oha():
    if not os.path.exists(OHA):
        subprocess.run(["cargo", "install", "oha", "--locked", "--root", TOOLS], check=True)


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def lines_of(proc, until):
    found = {}
    while until not in found:
        line = proc.stdout.readline().decode()
        if not line:
            raise RuntimeError("the process exited")
        key, _, value = line.strip().partition("=")
        found[key] = value
    return found


def simulator():
    proc = subprocess.Popen([BIN, "sim", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    env = lines_of(proc, "PUBLIC_SUBNET")
    serve_env = {k: v for k, v in env.items() if k.startswith("OS_")}
    serve_env.update({"SVC_LBAAS_SERVICE_SUBNET": env["SERVICE_SUBNET"], "SVC_LBAAS_POD_SUBNET": env["POD_SUBNET"],
                      "SVC_LBAAS_EXTERNAL_SVC_SUBNET": env["PUBLIC_SUBNET"], "SVC_LBAAS_LOG": "warn"})
    return proc, serve_env


def start(serve_env):
    began = time.monotonic()
    proc = subprocess.Popen([BIN, "serve", "--rest-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={k: v for k, v in os.environ.items() if not k.startswith("OS_")} | serve_env)
    url = None
    while url is None:
        line = proc.stdout.readline().decode()
        if not line:
            raise RuntimeError("svc-lbaas serve exited")
        if line.startswith("REST_ADDR="):
            url = "http://" + line.strip().partition("=")[2]
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.005)
    return proc, url, time.monotonic() - began


def load(url, path, body=None):
    cmd = [OHA, "-z", f"{DURATION}s", "-c", "16", "--no-tui", "--output-format", "json"]
    if body is not None:
        cmd += ["-m", "POST", "-T", "application/json", "-D", body]
    out = subprocess.run(cmd + [url + path], check=True, capture_output=True, text=True).stdout
    summary = json.loads(out)
    ok = summary.get("statusCodeDistribution", {})
    return summary["summary"]["requestsPerSec"], summary["latencyPercentiles"]["p99"], ok


def main():
    ensure_oha()
    sim, serve_env = simulator()
    try:
        run(serve_env)
    finally:
        sim.terminate()
        sim.wait(timeout=10)


def run(serve_env):
    starts = []
    for _ in range(3):
        proc, url, took = start(serve_env)
        starts.append(took)
        proc.terminate()
        proc.wait(timeout=10)
    proc, url, _ = start(serve_env)
    try:
        time.sleep(2)
        idle = rss_kib(proc.pid)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(SERVICE, f)
            body = f.name
        runs = {"plan": [], "healthz": []}
        for r in range(ROUNDS):
            order = [("plan", "/v1/plan?offline=true", body), ("healthz", "/healthz", None)]
            if r % 2:
                order.reverse()
            for name, path, b in order:
                rps, p99, codes = load(url, path, b)
                assert set(codes) <= {"200"}, f"{name}: {codes}"
                runs[name].append((rps, p99))
        peak = rss_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for k, v in runs.items()}
    lines = [f"one `svc-lbaas serve` (a standalone simulator as its cloud), oha -c 16 -z {DURATION}s, {ROUNDS} rounds interleaved, medians",
             "", "| route | requests/s | p99 |", "|---|---|---|"]
    for name, label in (("plan", "POST /v1/plan?offline=true (2 ports, 3 endpoints)"), ("healthz", "GET /healthz")):
        rps, p99 = med[name]
        lines.append(f"| {label} | {rps:.0f} | {p99 * 1000:.2f} ms |")
    lines += ["", f"plan / healthz requests/s: {med['plan'][0] / med['healthz'][0]:.2f}x",
              f"idle RSS: {idle / 1024:.1f} MiB (after the load: {peak / 1024:.1f} MiB)",
              f"exec to first /healthz 200: {statistics.median(starts) * 1000:.0f} ms (median of 3)"]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
