"""300 stalled connections against `svc-lbaas serve` started with a soft
open-files limit of 256 and the default listener limits: /healthz must keep
answering within 1 s, and the server must close every stalled connection
within 30 s. Loopback only; bounded (about 25 s); prints `stalled: P passed,
F failed` for .ci/run.

Usage: python stalled.py path/to/svc-lbaas
"""
import os
import resource
import socket
import subprocess
import sys
import time

BIN = sys.argv[1]
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def healthz(host, port, timeout=1.0):
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.startswith(b"HTTP/1.1 200"), time.monotonic() - started


def main():
    # This client needs more than 300 descriptors for itself.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    server = subprocess.Popen(
        [BIN, "serve", "--rest-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, preexec_fn=low_limit,
        env={**os.environ, "SVC_LBAAS_LOG": "warn"},
    )
    try:
        port = None
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            line = server.stdout.readline().decode()
            if line.startswith("REST_ADDR="):
                port = int(line.strip().rsplit(":", 1)[1])
        check("server started", port is not None)
        if port is None:
            return
        with open(f"/proc/{server.pid}/limits") as f:
            limit = next(l for l in f if l.startswith("Max open files")).split()
        check("server raised its soft open-files limit above 256", int(limit[3]) > 256, str(limit))

        stalled = []
        for i in range(300):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if i % 3 == 1:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            elif i % 3 == 2:
                s.sendall(b"POST /v1/plan HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            stalled.append(s)
        opened = time.monotonic()
        slow = []
        for _ in range(10):
            try:
                ok, took = healthz("127.0.0.1", port)
                if not ok or took > 1.0:
                    slow.append(took)
            except OSError as e:
                slow.append(str(e))
            time.sleep(0.2)
        check("healthz answers within 1 s with 300 stalled connections", not slow, str(slow))

        open_left = set(range(len(stalled)))
        for s in stalled:
            s.setblocking(False)
        while open_left and time.monotonic() - opened < 30:
            for i in list(open_left):
                try:
                    if stalled[i].recv(4096) == b"":
                        open_left.discard(i)
                except BlockingIOError:
                    pass
                except OSError:
                    open_left.discard(i)
            time.sleep(0.1)
        took = time.monotonic() - opened
        check("the server closed all 300 within 30 s", not open_left,
              f"{len(open_left)} still open after {took:.1f}s")
        print(f"closed all in {took:.1f}s")
        for s in stalled:
            s.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


main()
print(f"stalled: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
