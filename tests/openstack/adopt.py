"""Adoption on real Keystone + Neutron + Octavia (tests/openstack/up.sh).

For each tool, a load balancer is built with openstacksdk the way that tool
builds it, object by object (OCCM: gophercloud's calls; kuryr-kubernetes:
openstacksdk's), and left as the tool leaves it, with its floating IP; then
`svc-lbaas serve` (with `[adoption] from = occm,kuryr`) applies the Service
annotated `svc-lbaas.io/adopt: "true"`, and the cloud is checked: the same
load balancer id, VIP and floating IP; members are the pods; a re-apply
changes nothing; deleting the Service leaves nothing behind.

Usage: python adopt.py PATH/TO/svc-lbaas   (the openrc sourced in the env)
Ends with "adoption: N passed, M failed".
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

import openstack

ENV = os.environ
BIN = sys.argv[1]
OCCM_CLUSTER = "kubernetes"  # OCCM's --cluster-name; svc-lbaas's own [cluster] name is "ci"
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {name}")
    else:
        failed += 1
        print(f"FAIL  {name} {detail}")


def connect():
    return openstack.connect(auth_url=ENV["OS_AUTH_URL"], username=ENV["OS_USERNAME"],
                             password=ENV["OS_PASSWORD"], project_name=ENV["OS_PROJECT_NAME"],
                             user_domain_name=ENV["OS_USER_DOMAIN_NAME"],
                             project_domain_name=ENV["OS_PROJECT_DOMAIN_NAME"],
                             region_name=ENV.get("OS_REGION_NAME"), interface="public")


def active(conn, lb_id, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lb = conn.load_balancer.get_load_balancer(lb_id)
        if lb.provisioning_status == "ACTIVE":
            return lb
        if lb.provisioning_status == "ERROR":
            raise RuntimeError(f"{lb_id} went to ERROR")
        time.sleep(0.5)
    raise RuntimeError(f"{lb_id} not ACTIVE within {timeout}s")


def occm_shape(conn, ns, name):
    """OCCM (pkg/openstack/loadbalancer.go): kube_service_<cluster>_<ns>_<name>
    tagged with that name, listener_<i>_/pool_<i>_/monitor_<i>_ children,
    the nodes' InternalIP:nodePort as members named after the nodes, and a
    floating IP created on the VIP port with OCCM's description."""
    lb_name = f"kube_service_{OCCM_CLUSTER}_{ns}_{name}"
    lb = conn.load_balancer.create_load_balancer(
        name=lb_name, vip_subnet_id=ENV["SERVICE_SUBNET_ID"], tags=[lb_name],
        description=f"Kubernetes external service {ns}/{name} from cluster {OCCM_CLUSTER}")
    active(conn, lb.id)
    listener = conn.load_balancer.create_listener(
        name=f"listener_0_{lb_name}", protocol="TCP", protocol_port=80,
        load_balancer_id=lb.id, tags=[lb_name])
    active(conn, lb.id)
    pool = conn.load_balancer.create_pool(
        name=f"pool_0_{lb_name}", protocol="TCP", lb_algorithm="ROUND_ROBIN",
        listener_id=listener.id, tags=[lb_name])
    active(conn, lb.id)
    for i, node in enumerate(["10.1.0.20", "10.1.0.21"]):
        conn.load_balancer.create_member(pool, name=f"node-{i}", address=node, protocol_port=30080,
                                         subnet_id=ENV["POD_SUBNET_ID"], tags=[lb_name])
        active(conn, lb.id)
    conn.load_balancer.create_health_monitor(
        name=f"monitor_0_{lb_name}", pool_id=pool.id, type="TCP", delay=5, timeout=3, max_retries=1,
        max_retries_down=3, tags=[lb_name])
    lb = active(conn, lb.id)
    fip = conn.network.create_ip(
        floating_network_id=ENV["PUBLIC_NET_ID"], port_id=lb.vip_port_id,
        description=f"Floating IP for Kubernetes external service {ns}/{name} from cluster {OCCM_CLUSTER}")
    return lb, fip


def kuryr_shape(conn, ns, name, cluster_ip):
    """kuryr-kubernetes (controller/drivers/lbaasv2.py, openstacksdk): ns/name
    on the clusterIP, ns/name:PROTOCOL:port listener and pool, the pods as
    members named ns/pod:port, its resource tags, no monitor; a floating IP
    allocated with description kuryr_lb, then associated to the VIP port."""
    tags = ["kuryr-ci"]
    lb = conn.load_balancer.create_load_balancer(
        name=f"{ns}/{name}", vip_subnet_id=ENV["SERVICE_SUBNET_ID"], vip_address=cluster_ip, tags=tags)
    active(conn, lb.id)
    listener = conn.load_balancer.create_listener(
        name=f"{ns}/{name}:TCP:80", protocol="TCP", protocol_port=80, load_balancer_id=lb.id, tags=tags)
    active(conn, lb.id)
    pool = conn.load_balancer.create_pool(
        name=f"{ns}/{name}:TCP:80", protocol="TCP", lb_algorithm="ROUND_ROBIN",
        listener_id=listener.id, tags=tags)
    active(conn, lb.id)
    conn.load_balancer.create_member(pool, name=f"{ns}/{name}-pod-1:8080", address="10.1.0.5",
                                     protocol_port=8080, subnet_id=ENV["POD_SUBNET_ID"], tags=tags)
    lb = active(conn, lb.id)
    fip = conn.network.create_ip(floating_network_id=ENV["PUBLIC_NET_ID"], description="kuryr_lb")
    fip = conn.network.update_ip(fip, port_id=lb.vip_port_id)
    return lb, fip


def serve():
    env = dict(ENV, SVC_LBAAS_POD_SUBNET=ENV["POD_SUBNET_ID"], SVC_LBAAS_SERVICE_SUBNET=ENV["SERVICE_SUBNET_ID"],
               SVC_LBAAS_EXTERNAL_SVC_SUBNET=ENV["PUBLIC_SUBNET_ID"], SVC_LBAAS_CLUSTER_NAME="ci",
               SVC_LBAAS_ADOPT_FROM="occm,kuryr", SVC_LBAAS_ADOPTION_OCCM_CLUSTER_NAME=OCCM_CLUSTER,
               SVC_LBAAS_LOG="warn")
    proc = subprocess.Popen([BIN, "serve", "--rest-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if line.startswith("REST_ADDR="):
            return proc, "http://" + line.strip().split("=", 1)[1]
    raise RuntimeError("svc-lbaas serve did not start")


def call(api, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(api + path, data=data, method=method,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def request(ns, name, cluster_ip):
    return {
        "service": {"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": name, "namespace": ns, "annotations": {"svc-lbaas.io/adopt": "true"}},
                    "spec": {"type": "LoadBalancer", "clusterIP": cluster_ip,
                             "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}]}},
        "endpoints": {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns},
                      "subsets": [{"addresses": [{"ip": "10.1.0.5"}, {"ip": "10.1.0.6"}],
                                   "ports": [{"name": "http", "port": 8080}]}]},
    }


def adopted(conn, api, tool, ns, name, cluster_ip, lb, fip):
    body = request(ns, name, cluster_ip)
    status, plan = call(api, "POST", "/v1/plan", body)
    steps = [f"{o['op']} {o['resource']}" for o in (plan or {}).get("operations", [])]
    print(f"--- {tool}: plan {steps}")
    check(f"{tool}: the plan adopts first and creates nothing",
          status == 200 and steps[:1] == ["adopt loadbalancer"]
          and "create loadbalancer" not in steps and "create floatingip" not in steps, plan)
    status, answer = call(api, "POST", "/v1/apply?timeout_s=300", body)
    check(f"{tool}: apply converges", status == 200 and answer.get("converged"), answer)
    check(f"{tool}: the same load balancer", answer.get("loadBalancer", {}).get("id") == lb.id, answer)
    ingress = (answer.get("status", {}).get("loadBalancer", {}).get("ingress") or [{}])[0].get("ip")
    check(f"{tool}: the ingress IP is the old floating IP", ingress == fip.floating_ip_address, answer)
    now = conn.load_balancer.get_load_balancer(lb.id)
    check(f"{tool}: Octavia: the VIP is unchanged", now.vip_address == lb.vip_address,
          f"{now.vip_address} != {lb.vip_address}")
    check(f"{tool}: Octavia: renamed {ns}/{name}, tagged ours",
          now.name == f"{ns}/{name}" and "svc-lbaas" in now.tags and f"svc-lbaas-adopted:{tool}" in now.tags,
          f"{now.name} {now.tags}")
    fips = list(conn.network.ips())
    check(f"{tool}: Neutron: one floating IP, the same, on the VIP port",
          len(fips) == 1 and fips[0].id == fip.id and fips[0].port_id == lb.vip_port_id,
          [(f.id, f.floating_ip_address, f.port_id) for f in fips])
    pools = list(conn.load_balancer.pools(loadbalancer_id=lb.id))
    members = sorted((m.address, m.protocol_port) for p in pools for m in conn.load_balancer.members(p.id))
    check(f"{tool}: Octavia: the members are the pods",
          members == [("10.1.0.5", 8080), ("10.1.0.6", 8080)], members)
    listeners = [l.name for l in conn.load_balancer.listeners(loadbalancer_id=lb.id)]
    check(f"{tool}: Octavia: one listener, ours", listeners == [f"{ns}/{name}:TCP:80"], listeners)
    status, again = call(api, "POST", "/v1/apply?timeout_s=300", body)
    check(f"{tool}: a re-apply changes nothing", status == 200 and again.get("action") == "unchanged"
          and again.get("openstackCalls", {}).get("writes") == 0, again)
    status, gone = call(api, "DELETE", f"/v1/services/{ns}/{name}?timeout_s=300")
    check(f"{tool}: delete converges", status == 200 and gone.get("converged"), gone)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and list(conn.load_balancer.load_balancers()):
        time.sleep(0.5)
    check(f"{tool}: nothing left behind",
          not list(conn.load_balancer.load_balancers()) and not list(conn.network.ips()))


def main():
    conn = connect()
    proc, api = serve()
    try:
        t0 = time.monotonic()
        lb, fip = occm_shape(conn, "shop", "web")
        print(f"--- occm: built {lb.name} ({lb.id}) VIP {lb.vip_address}, floating IP "
              f"{fip.floating_ip_address} ({time.monotonic() - t0:.0f}s)")
        adopted(conn, api, "occm", "shop", "web", "10.2.0.42", lb, fip)
        t0 = time.monotonic()
        lb, fip = kuryr_shape(conn, "shop", "api", "10.2.0.43")
        print(f"--- kuryr: built {lb.name} ({lb.id}) VIP {lb.vip_address}, floating IP "
              f"{fip.floating_ip_address} ({time.monotonic() - t0:.0f}s)")
        adopted(conn, api, "kuryr", "shop", "api", "10.2.0.43", lb, fip)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        # Whatever a failure left: the next stage starts empty.
        for lb in conn.load_balancer.load_balancers():
            conn.load_balancer.delete_load_balancer(lb, cascade=True, ignore_missing=True)
        for f in conn.network.ips():
            conn.network.delete_ip(f, ignore_missing=True)
    print(f"adoption: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
