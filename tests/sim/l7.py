#!/usr/bin/env python3
"""Octavia's L7 policy and rule API, the same checks against the simulator and
against the loopback real cloud (Octavia 19), so that the simulator is held to
the real thing. Raw HTTP through openstacksdk's session, statuses and messages
asserted.

Usage: l7.py sim PATH/TO/svc-lbaas    (starts `svc-lbaas sim`)
       l7.py real                     (OS_* and SERVICE_SUBNET_ID from tests/openstack's openrc)
Prints one line per check and closes with "l7: N passed, M failed".
"""
import os
import subprocess
import sys
import time

import openstack

checks = {"passed": 0, "failed": 0}
OTHER = "5a2ef0b4-8d3e-4b5a-9c1e-111111111111"


def check(name, ok, detail=""):
    checks["passed" if ok else "failed"] += 1
    print(("ok    " if ok else "FAIL  ") + name + ("" if ok else f": {detail}"), flush=True)
    return ok


class Cloud:
    def __init__(self, env):
        self.env = env
        self.conn = openstack.connect(
            auth_url=env["OS_AUTH_URL"], username=env["OS_USERNAME"], password=env["OS_PASSWORD"],
            project_name=env["OS_PROJECT_NAME"], user_domain_name=env["OS_USER_DOMAIN_NAME"],
            project_domain_name=env["OS_PROJECT_DOMAIN_NAME"], region_name=env.get("OS_REGION_NAME"),
            interface="public")

    def call(self, method, path, body=None):
        kw = {"raise_exc": False}
        if body is not None:
            kw["json"] = body
        r = getattr(self.conn.load_balancer, method)(path, **kw)
        try:
            data = r.json()
        except ValueError:
            data = r.text
        return r.status_code, data

    def fault(self, data):
        """The error text, whichever of Octavia's shapes carries it."""
        if isinstance(data, dict):
            return data.get("faultstring") or data.get("description") or str(data)
        return str(data)

    def wait(self, lb, limit=120):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            _, j = self.call("get", f"/lbaas/loadbalancers/{lb}")
            status = j["loadbalancer"]["provisioning_status"]
            if status in ("ACTIVE", "ERROR"):
                return status
            time.sleep(0.3)
        return "timeout"


def run(c):
    s, j = c.call("post", "/lbaas/loadbalancers",
                  {"loadbalancer": {"name": "l7-fidelity", "vip_subnet_id": c.env["SERVICE_SUBNET_ID"]}})
    if not check("load balancer created", s == 201, j):
        return
    lb = j["loadbalancer"]["id"]
    try:
        run_on(c, lb)
    finally:
        c.wait(lb)
        s, _ = c.call("delete", f"/lbaas/loadbalancers/{lb}?cascade=true")
        check("cascade delete takes the policies with the load balancer", s == 204, s)


def create(c, lb, path, body, key):
    s, j = c.call("post", path, body)
    c.wait(lb)
    return s, (j.get(key, {}) if isinstance(j, dict) else {})


def run_on(c, lb):
    check("the load balancer goes ACTIVE", c.wait(lb) == "ACTIVE")
    _, l = create(c, lb, "/lbaas/listeners", {"listener": {"loadbalancer_id": lb, "protocol": "HTTP", "protocol_port": 80}}, "listener")
    _, t = create(c, lb, "/lbaas/listeners", {"listener": {"loadbalancer_id": lb, "protocol": "TCP", "protocol_port": 81}}, "listener")
    _, p = create(c, lb, "/lbaas/pools", {"pool": {"loadbalancer_id": lb, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "name": "p1"}}, "pool")
    _, pt = create(c, lb, "/lbaas/pools", {"pool": {"loadbalancer_id": lb, "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}}, "pool")
    L, T, P, PT = l["id"], t["id"], p["id"], pt["id"]
    policy = lambda **kw: {"l7policy": dict({"listener_id": L}, **kw)}

    s, j = c.call("post", "/lbaas/l7policies", policy(listener_id=T, action="REJECT"))
    check("a policy on a TCP listener: 501 from the amphora provider",
          s == 501 and "TCP protocol listeners do not support L7 policies" in c.fault(j), (s, j))
    s, j = c.call("post", "/lbaas/l7policies", policy(action="REDIRECT_TO_POOL", redirect_pool_id=PT))
    check("a TCP pool behind an HTTP listener's policy: 400",
          s == 400 and "The pool protocol 'TCP' is invalid while the listener protocol is 'HTTP'" in c.fault(j), (s, j))
    s, j = c.call("post", "/lbaas/l7policies", policy(action="REDIRECT_TO_URL"))
    check("REDIRECT_TO_URL without a URL: 400", s == 400 and "redirect_url must not be None" in c.fault(j), (s, j))
    s, j = c.call("post", "/lbaas/l7policies", policy(action="REDIRECT_TO_URL", redirect_url="http://a.example/", redirect_http_code=304))
    check("a redirect code outside 301/302/303/307/308: 400", s == 400 and "301, 302, 303, 307, 308" in c.fault(j), (s, j))
    s, j = c.call("post", "/lbaas/l7policies", policy(action="REDIRECT_TO_URL", redirect_url="nope"))
    check("a redirect URL without scheme and host: 400", s == 400 and "Value must be a valid URL string" in c.fault(j), (s, j))
    s, j = c.call("post", "/lbaas/l7policies", policy(listener_id=OTHER, action="REJECT"))
    check("an unknown listener: 404", s == 404 and f"Listener {OTHER} not found." in c.fault(j), (s, j))
    s, j = c.call("post", "/lbaas/l7policies", policy(action="REJECT", foo=1))
    check("an unknown attribute: 400", s == 400 and "Unknown attribute for argument" in c.fault(j), (s, j))
    s, j = c.call("post", "/lbaas/l7policies", policy(action="REDIRECT_TO_POOL", redirect_pool_id=P,
                                                        rules=[{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/a"}]))
    check("a policy with its rules inline: Octavia 19 answers 500 and keeps nothing", s == 500, (s, j))
    _, pols = c.call("get", f"/lbaas/l7policies?listener_id={L}")
    check("... nothing kept", pols.get("l7policies") == [], pols)

    s, a = create(c, lb, "/lbaas/l7policies", policy(action="REJECT", name="A"), "l7policy")
    check("a REJECT policy: 201, position 1, no redirect code",
          s == 201 and a.get("position") == 1 and a.get("redirect_http_code") is None, (s, a))
    s, b = create(c, lb, "/lbaas/l7policies", policy(action="REDIRECT_TO_URL", redirect_url="https://b.example/x", name="B"), "l7policy")
    check("a URL redirect: appended at position 2, code 302 by default",
          s == 201 and b.get("position") == 2 and b.get("redirect_http_code") == 302, (s, b))
    s, cc = create(c, lb, "/lbaas/l7policies", policy(action="REDIRECT_PREFIX", redirect_prefix="https://c.example",
                                                       redirect_http_code=301, position=1, name="C"), "l7policy")
    check("a prefix redirect asked at position 1 with code 301", s == 201 and cc.get("position") == 1
          and cc.get("redirect_http_code") == 301, (s, cc))
    _, pols = c.call("get", f"/lbaas/l7policies?listener_id={L}")
    positions = {x["name"]: x["position"] for x in pols["l7policies"]}
    check("positions shift: C 1, A 2, B 3", positions == {"C": 1, "A": 2, "B": 3}, positions)
    _, lj = c.call("get", f"/lbaas/listeners/{L}")
    check("the listener names its policies in position order",
          [x["id"] for x in lj["listener"]["l7policies"]] == [cc["id"], a["id"], b["id"]], lj["listener"]["l7policies"])
    _, st = c.call("get", f"/lbaas/loadbalancers/{lb}/status")
    http = [x for x in st["statuses"]["loadbalancer"]["listeners"] if x["id"] == L][0]
    check("the status tree shows no policies", "l7policies" not in http and http["pools"] == [], http)

    B = b["id"]
    rule = lambda **kw: {"rule": kw}
    s, j = c.call("post", f"/lbaas/l7policies/{B}/rules", rule(type="PATH", compare_type="REGEX", value="bad\\"))
    check("a rule with a bad regular expression: 400", s == 400 and "Unable to parse regular expression" in c.fault(j), (s, j))
    s, j = c.call("post", f"/lbaas/l7policies/{B}/rules", rule(type="HEADER", compare_type="EQUAL_TO", value="x"))
    check("a HEADER rule without a key: 400", s == 400 and "L7 rule type requires a key" in c.fault(j), (s, j))
    s, j = c.call("post", f"/lbaas/l7policies/{B}/rules", rule(type="PATH", compare_type="EQUAL_TO", value="/a b"))
    check("a comparison value with a space: 400", s == 400 and "Invalid characters in comparison value" in c.fault(j), (s, j))
    s, j = c.call("post", f"/lbaas/l7policies/{B}/rules", rule(type="QUERY", compare_type="EQUAL_TO", value="x"))
    check("an unknown rule type: 400", s == 400 and "Value should be one of" in c.fault(j), (s, j))
    s, j = c.call("post", f"/lbaas/l7policies/{B}/rules", rule(type="HOST_NAME", compare_type="REGEX", value="^(?i)a$"))
    check("a REGEX with global flags after the start: 400 (Python's re)",
          s == 400 and "global flags not at the start" in c.fault(j), (s, j))
    s, j = c.call("post", f"/lbaas/l7policies/{OTHER}/rules", rule(type="PATH", compare_type="EQUAL_TO", value="/a"))
    check("a rule under an unknown policy: 404", s == 404 and f"L7Policy {OTHER} not found." in c.fault(j), (s, j))
    s, j = c.call("post", f"/lbaas/l7policies/{B}/rules",
                  rule(type="HOST_NAME", compare_type="REGEX", value="^a\\.example(:[0-9]+)?$"))
    check("a HOST_NAME REGEX rule with an optional :port: 201", s == 201, (s, j))
    R = j.get("rule", {}).get("id")
    s, j = c.call("post", f"/lbaas/l7policies/{B}/rules", rule(type="PATH", compare_type="EQUAL_TO", value="/a"))
    check("a second rule while the policy is PENDING_UPDATE: 409",
          s == 409 and f"L7Policy {B} is immutable" in c.fault(j), (s, j))
    c.wait(lb)
    s, j = create(c, lb, f"/lbaas/l7policies/{B}/rules", rule(type="HEADER", compare_type="EQUAL_TO", key="X-Env", value="canary"), "rule")
    check("a HEADER EQUAL_TO rule with a key keeps its key", s == 201 and j.get("key") == "X-Env", (s, j))
    s, j = create(c, lb, f"/lbaas/l7policies/{B}/rules", rule(type="PATH", compare_type="STARTS_WITH", value="/api", invert=True), "rule")
    check("an inverted PATH STARTS_WITH rule", s == 201 and j.get("invert") is True, (s, j))
    _, j = c.call("get", f"/lbaas/l7policies/{B}/rules/{R}")
    check("a rule goes ACTIVE", j.get("rule", {}).get("provisioning_status") == "ACTIVE", j)
    _, j = c.call("get", f"/lbaas/l7policies/{B}/rules")
    check("the policy's rules are listed", len(j.get("rules", [])) == 3, j)
    s, j = c.call("put", f"/lbaas/l7policies/{B}/rules/{R}", rule(invert=True))
    check("a rule updated in place: 200", s == 200 and j["rule"]["invert"] is True, (s, j))
    c.wait(lb)

    s, j = c.call("put", f"/lbaas/l7policies/{B}", {"l7policy": {"position": 1}})
    check("a policy moved to position 1: 200", s == 200 and j["l7policy"]["position"] == 1, (s, j))
    c.wait(lb)
    _, pols = c.call("get", f"/lbaas/l7policies?listener_id={L}")
    positions = {x["name"]: x["position"] for x in pols["l7policies"]}
    check("... B 1, C 2, A 3", positions == {"B": 1, "C": 2, "A": 3}, positions)
    s, j = c.call("put", f"/lbaas/l7policies/{B}", {"l7policy": {"redirect_pool_id": P}})
    check("a pool alone turns a URL redirect into REDIRECT_TO_POOL, url and code cleared",
          s == 200 and j["l7policy"]["action"] == "REDIRECT_TO_POOL" and j["l7policy"]["redirect_url"] is None
          and j["l7policy"]["redirect_http_code"] is None, (s, j))
    c.wait(lb)
    s, j = c.call("put", f"/lbaas/l7policies/{B}", {"l7policy": {}})
    check("an empty update: 400", s == 400 and "Invalid update options" in c.fault(j), (s, j))
    _, st = c.call("get", f"/lbaas/loadbalancers/{lb}/status")
    http = [x for x in st["statuses"]["loadbalancer"]["listeners"] if x["id"] == L][0]
    check("the status tree shows the pool a policy with rules sends to",
          [x["id"] for x in http["pools"]] == [P], http)
    _, pj = c.call("get", f"/lbaas/pools/{P}")
    check("the pool names the listener its policy serves", [x["id"] for x in pj["pool"]["listeners"]] == [L], pj)
    s, j = c.call("delete", f"/lbaas/pools/{P}")
    check("a pool a policy sends to cannot be deleted: 409",
          s == 409 and f"Pool {P} is in use by L7 policy {B}" in c.fault(j), (s, j))

    s, _ = c.call("delete", f"/lbaas/l7policies/{cc['id']}")
    check("a policy deleted: 204", s == 204, s)
    _, j = c.call("get", f"/lbaas/l7policies/{cc['id']}")
    check("... PENDING_DELETE until the worker is done",
          j.get("l7policy", {}).get("provisioning_status") == "PENDING_DELETE", j)
    c.wait(lb)
    s, j = c.call("get", f"/lbaas/l7policies/{cc['id']}")
    check("... then 404", s == 404 and "L7 Policy" in c.fault(j) and "not found" in c.fault(j), (s, j))
    _, pols = c.call("get", f"/lbaas/l7policies?listener_id={L}")
    positions = {x["name"]: x["position"] for x in pols["l7policies"]}
    check("... and the others renumbered: B 1, A 2", positions == {"B": 1, "A": 2}, positions)

    s, _ = c.call("delete", f"/lbaas/listeners/{L}")
    c.wait(lb)
    s, j = c.call("get", f"/lbaas/l7policies/{B}")
    check("a listener deleted takes its policies", s == 404, (s, j))
    s, _ = c.call("delete", f"/lbaas/pools/{P}")
    check("... and frees the pool they sent to", s == 204, s)
    prometheus(c, lb, T)


def prometheus(c, lb, tcp):
    """A PROMETHEUS listener (Octavia API 2.25): no children, a TCP port."""
    c.wait(lb)
    s, m = create(c, lb, "/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb, "protocol": "PROMETHEUS", "protocol_port": 9100,
        "allowed_cidrs": ["10.9.0.0/24"], "name": "metrics"}}, "listener")
    check("a PROMETHEUS listener: 201, its allowed_cidrs kept, no pool",
          s == 201 and m.get("allowed_cidrs") == ["10.9.0.0/24"] and m.get("default_pool_id") is None, (s, m))
    no_children = "Protocol PROMETHEUS listeners cannot have child objects."
    s, j = c.call("post", "/lbaas/pools", {"pool": {"listener_id": m.get("id"), "protocol": "TCP",
                                                      "lb_algorithm": "ROUND_ROBIN"}})
    check("a pool under it: 400", s == 400 and no_children in c.fault(j), (s, j))
    s, j = c.call("post", "/lbaas/l7policies", {"l7policy": {"listener_id": m.get("id"), "action": "REJECT"}})
    check("a policy on it: 400", s == 400 and no_children in c.fault(j), (s, j))
    c.wait(lb)
    s, j = c.call("post", "/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb, "protocol": "PROMETHEUS", "protocol_port": 9101,
        "default_pool_id": OTHER}})
    check("one created with a default pool: 400 before the pool is looked up",
          s == 400 and no_children in c.fault(j), (s, j))
    s, j = c.call("post", "/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb, "protocol": "PROMETHEUS", "protocol_port": 9102,
        "insert_headers": {"X-Forwarded-For": "true"}}})
    check("one with inserted headers: 400", s == 400
          and "insert-headers is not a valid option for a PROMETHEUS protocol listener." in c.fault(j), (s, j))
    s, j = c.call("post", "/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb, "protocol": "HTTP", "protocol_port": 9100}})
    check("an HTTP listener on its port: 409 naming it", s == 409
          and "already using protocol PROMETHEUS and protocol_port 9100" in c.fault(j), (s, j))
    s, j = c.call("post", "/lbaas/listeners", {"listener": {
        "loadbalancer_id": lb, "protocol": "PROMETHEUS", "protocol_port": 81}})
    check("one on a TCP listener's port: 409 naming that one", s == 409
          and "already using protocol TCP and protocol_port 81" in c.fault(j), (s, j))


def start_sim(binary):
    proc = subprocess.Popen([binary, "sim", "--listen", "127.0.0.1:0", "--provisioning-delay-ms", "400"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    env = {}
    while "ROUTER" not in env:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("svc-lbaas sim exited before printing its environment")
        key, _, value = line.strip().partition("=")
        env[key] = value
    env["SERVICE_SUBNET_ID"] = env["SERVICE_SUBNET"]
    return proc, env


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "sim":
        proc, env = start_sim(sys.argv[2])
        try:
            run(Cloud(env))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    elif len(sys.argv) == 2 and sys.argv[1] == "real":
        run(Cloud(dict(os.environ)))
    else:
        raise SystemExit(__doc__)
    print(f"l7: {checks['passed']} passed, {checks['failed']} failed")
    return 1 if checks["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
