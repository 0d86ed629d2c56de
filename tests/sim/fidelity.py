#!/usr/bin/env python3
"""Fidelity of the simulated OpenStack, judged by real clients nobody here wrote:
python-openstackclient and python-octaviaclient (tests/sim/requirements.txt)
drive `svc-lbaas sim` and what they print is asserted.

Usage: fidelity.py PATH/TO/svc-lbaas   (run with the venv's python, see venv.sh)
Prints one line per check and closes with "N passed, M failed".
"""
import json
import os
import subprocess
import sys
import time

DELAY_S = 4.0  # the provisioning delay: longer than one openstack command (~1.5 s)

checks = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    checks["passed" if ok else "failed"] += 1
    print(("ok    " if ok else "FAIL  ") + name + ("" if ok else f": {detail}"), flush=True)
    return ok


def start_sim(binary):
    proc = subprocess.Popen(
        [binary, "sim", "--listen", "127.0.0.1:0", "--provisioning-delay-ms", str(int(DELAY_S * 1000))],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    env = {}
    while "ROUTER" not in env:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("svc-lbaas sim exited before printing its environment")
        key, _, value = line.strip().partition("=")
        env[key] = value
    return proc, env


def osc(env, *args, expect_ok=True):
    """Runs `openstack ARGS`; returns (exit code, parsed JSON or text, stderr)."""
    bin_dir = os.path.dirname(sys.executable)
    full_env = dict(os.environ, **env)
    full_env.pop("OS_CLOUD", None)
    res = subprocess.run([os.path.join(bin_dir, "openstack"), *args], env=full_env,
                         capture_output=True, text=True, timeout=120)
    out = res.stdout
    if "-f" in args and "json" in args and res.returncode == 0 and out.strip():
        out = json.loads(out)
    if expect_ok and res.returncode != 0:
        print(f"      openstack {' '.join(args)} failed: {res.stderr.strip()}", flush=True)
    return res.returncode, out, res.stderr


def wait_active(env, lb, limit=30):
    deadline = time.monotonic() + limit
    seen = []
    while time.monotonic() < deadline:
        _, out, _ = osc(env, "loadbalancer", "show", lb, "-f", "json")
        status = out["provisioning_status"] if isinstance(out, dict) else "?"
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "ACTIVE":
            return seen
        time.sleep(0.2)
    return seen


def main():
    proc, env = start_sim(sys.argv[1])
    try:
        run(env)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"fidelity: {checks['passed']} passed, {checks['failed']} failed")
    return 1 if checks["failed"] else 0


def run(env):
    rc, lb, _ = osc(env, "loadbalancer", "create", "--name", "lb1", "--vip-subnet-id", env["SERVICE_SUBNET"],
                    "--vip-address", "10.2.0.10", "-f", "json")
    check("loadbalancer create answers PENDING_CREATE with the requested VIP",
          rc == 0 and lb["provisioning_status"] == "PENDING_CREATE" and lb["vip_address"] == "10.2.0.10", lb)

    rc, _, err = osc(env, "loadbalancer", "listener", "create", "--name", "l1", "--protocol", "TCP",
                     "--protocol-port", "80", "lb1", expect_ok=False)
    check("a write while PENDING_* fails with 409 'immutable'", rc != 0 and "409" in err and "immutable" in err, err)

    rc, vip_port, _ = osc(env, "port", "show", lb["vip_port_id"], "-f", "json")
    check("the VIP is a real Neutron port with the VIP address",
          rc == 0 and any(ip["ip_address"] == "10.2.0.10" for ip in vip_port["fixed_ips"]), vip_port)

    seen = wait_active(env, "lb1")
    check("the load balancer goes from PENDING_CREATE to ACTIVE", seen[-1:] == ["ACTIVE"], seen)

    rc, dup, err = osc(env, "loadbalancer", "create", "--name", "lb-dup", "--vip-subnet-id", env["SERVICE_SUBNET"],
                       "--vip-address", "10.2.0.10", expect_ok=False)
    check("a VIP address already in use is a 409", rc != 0 and "409" in err, err)

    rc, listener, _ = osc(env, "loadbalancer", "listener", "create", "--name", "l1", "--protocol", "TCP",
                          "--protocol-port", "80", "lb1", "-f", "json")
    check("listener create", rc == 0 and listener["protocol_port"] == 80 and listener["provisioning_status"] == "PENDING_CREATE", listener)
    wait_active(env, "lb1")

    rc, pool, _ = osc(env, "loadbalancer", "pool", "create", "--name", "p1", "--listener", "l1", "--protocol", "TCP",
                      "--lb-algorithm", "ROUND_ROBIN", "-f", "json")
    check("pool create", rc == 0 and pool["lb_algorithm"] == "ROUND_ROBIN", pool)
    wait_active(env, "lb1")

    rc, member, _ = osc(env, "loadbalancer", "member", "create", "--address", "10.1.0.5", "--protocol-port", "8080",
                        "--subnet-id", env["POD_SUBNET"], "p1", "-f", "json")
    check("member create", rc == 0 and member["address"] == "10.1.0.5" and member["protocol_port"] == 8080, member)
    wait_active(env, "lb1")

    rc, members, _ = osc(env, "loadbalancer", "member", "list", "p1", "-f", "json")
    check("member list shows the member ACTIVE",
          rc == 0 and len(members) == 1 and members[0]["provisioning_status"] == "ACTIVE", members)

    rc, lbs, _ = osc(env, "loadbalancer", "list", "-f", "json")
    check("loadbalancer list", rc == 0 and [l["name"] for l in lbs] == ["lb1"], lbs)

    rc, status, _ = osc(env, "loadbalancer", "status", "show", "lb1")
    tree = json.loads(status) if rc == 0 else {}
    try:
        m = tree["loadbalancer"]["listeners"][0]["pools"][0]["members"][0]
        ok = m["address"] == "10.1.0.5" and tree["loadbalancer"]["provisioning_status"] == "ACTIVE"
    except (KeyError, IndexError, TypeError):
        ok = False
    check("loadbalancer status show returns the whole tree", ok, status)

    rc, fip, _ = osc(env, "floating", "ip", "create", "--port", lb["vip_port_id"], "public", "-f", "json")
    check("floating ip create on the VIP port",
          rc == 0 and fip["port_id"] == lb["vip_port_id"] and fip["fixed_ip_address"] == "10.2.0.10"
          and fip["floating_ip_address"].startswith("172.24.4."), fip)
    address = fip.get("floating_ip_address", "") if isinstance(fip, dict) else ""

    rc, _, _ = osc(env, "floating", "ip", "unset", "--port", address)
    _, shown, _ = osc(env, "floating", "ip", "show", address, "-f", "json")
    check("floating ip unset --port disassociates", rc == 0 and shown["port_id"] is None, shown)

    rc, _, _ = osc(env, "floating", "ip", "set", "--port", lb["vip_port_id"], address)
    _, shown, _ = osc(env, "floating", "ip", "show", address, "-f", "json")
    check("floating ip set --port associates the VIP port", rc == 0 and shown["port_id"] == lb["vip_port_id"], shown)

    rc, _, err = osc(env, "loadbalancer", "delete", "lb1", expect_ok=False)
    check("delete without --cascade refuses a load balancer with children", rc != 0 and "400" in err, err)

    rc, _, _ = osc(env, "loadbalancer", "delete", "--cascade", "lb1")
    _, shown, _ = osc(env, "loadbalancer", "show", "lb1", "-f", "json", expect_ok=False)
    check("cascade delete starts with PENDING_DELETE",
          rc == 0 and isinstance(shown, dict) and shown.get("provisioning_status") == "PENDING_DELETE", shown)
    time.sleep(DELAY_S + 0.3)
    rc, _, err = osc(env, "loadbalancer", "show", "lb1", expect_ok=False)
    check("then the load balancer is gone", rc != 0, err)
    rc, _, err = osc(env, "port", "show", lb["vip_port_id"], expect_ok=False)
    check("and its VIP port with it", rc != 0, err)
    _, shown, _ = osc(env, "floating", "ip", "show", address, "-f", "json")
    check("the floating IP survives, disassociated", shown["port_id"] is None, shown)

    rc, _, _ = osc(env, "floating", "ip", "delete", address)
    _, fips, _ = osc(env, "floating", "ip", "list", "-f", "json")
    check("floating ip delete", rc == 0 and fips == [], fips)


if __name__ == "__main__":
    sys.exit(main())
