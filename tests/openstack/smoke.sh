#!/usr/bin/env bash
# svc-lbaas against real Keystone + Neutron + Octavia on loopback (up.sh):
# a type: LoadBalancer Service with Endpoints is applied, re-applied, changed
# and deleted through the REST API, and the cloud is checked with the real
# openstack CLI after each step. Usage: smoke.sh PATH/TO/svc-lbaas OPENRC
# Closes with "real-cloud: N passed, M failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$1
# shellcheck disable=SC1090
. "$2"
osc="${OS_VENV:-/tmp/os/venv}/bin/openstack"
work=$(mktemp -d)
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
passed=0 failed=0
check() { local name=$1; shift; if "$@" >/dev/null 2>&1; then passed=$((passed + 1)); echo "ok    $name"; else failed=$((failed + 1)); echo "FAIL  $name"; fi; }
t0=$(date +%s)
step() { echo "--- $1 ($(( $(date +%s) - t0 ))s)"; }

export SVC_LBAAS_POD_SUBNET=$POD_SUBNET_ID SVC_LBAAS_SERVICE_SUBNET=$SERVICE_SUBNET_ID \
  SVC_LBAAS_EXTERNAL_SVC_SUBNET=$PUBLIC_SUBNET_ID SVC_LBAAS_CLUSTER_NAME=ci
"$bin" serve --rest-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 > "$work/serve.out" 2> "$work/serve.err" &
server=$!
for _ in $(seq 100); do grep -q REST_ADDR "$work/serve.out" && break; sleep 0.1; done
api="http://$(sed -n 's/^REST_ADDR=//p' "$work/serve.out")"
check "readyz: svc-lbaas authenticates to the real Keystone" curl -sf "$api/readyz"

request() { # endpoint IPs...
  local ips; ips=$(printf '{"ip": "%s"},' "$@"); ips="[${ips%,}]"
  jq --argjson a "$ips" '.endpoints.subsets[0].addresses = $a' "$here/../../docker/examples/web.json"
}
apply() { request "$@" | curl -s -H 'content-type: application/json' --data-binary @- "$api/v1/apply?timeout_s=300"; }

step "create"
apply 10.1.0.5 10.1.0.6 10.1.0.7 > "$work/create.json"
check "apply creates: converged, 2 writes, 1 wait" jq -e '.converged and .action == "created" and .openstackCalls.writes == 2 and .openstackCalls.waits == 1' "$work/create.json"
fip=$(jq -r '.status.loadBalancer.ingress[0].ip // ""' "$work/create.json")
check "the ingress IP is a floating IP of the public subnet" test "${fip#172.24.4.}" != "$fip"
"$osc" loadbalancer show shop/web -f json > "$work/lb.json"
check "Octavia: the load balancer is ACTIVE on the clusterIP" jq -e '.provisioning_status == "ACTIVE" and .vip_address == "10.2.0.42"' "$work/lb.json"
"$osc" loadbalancer member list shop/web:TCP:80 -f json > "$work/members.json"
check "Octavia: the pool has the 3 endpoints on 8080" jq -e 'length == 3 and all(.[]; .protocol_port == 8080)' "$work/members.json"
"$osc" floating ip show "$fip" -f json > "$work/fip.json"
check "Neutron: the floating IP is bound to the VIP port" jq -e --arg p "$(jq -r .vip_port_id "$work/lb.json")" '.port_id == $p' "$work/fip.json"

step "unchanged"
apply 10.1.0.5 10.1.0.6 10.1.0.7 > "$work/again.json"
check "re-apply: unchanged, 0 writes" jq -e '.action == "unchanged" and .openstackCalls.writes == 0' "$work/again.json"

step "one endpoint replaced"
apply 10.1.0.5 10.1.0.6 10.1.0.8 > "$work/change.json"
check "one endpoint replaced: 1 write per pool" jq -e '.action == "updated" and .openstackCalls.writes == 2 and .converged' "$work/change.json"
"$osc" loadbalancer member list shop/web:TCP:443 -f json > "$work/members2.json"
check "Octavia: the new member is there, the old one gone" jq -e '[.[].address] | sort == ["10.1.0.5", "10.1.0.6", "10.1.0.8"]' "$work/members2.json"

step "delete"
curl -s -X DELETE "$api/v1/services/shop/web?timeout_s=300" > "$work/delete.json"
check "delete: converged" jq -e '.converged and .action == "deleted"' "$work/delete.json"
check "Octavia: no load balancer left" bash -c "[ \"\$('$osc' loadbalancer list -f value -c id | wc -l)\" -eq 0 ]"
check "Neutron: no floating IP left" bash -c "[ \"\$('$osc' floating ip list -f value -c ID | wc -l)\" -eq 0 ]"
step "done"
if [ "$failed" -gt 0 ]; then
  for f in "$work"/*.json; do echo "--- $f"; cat "$f"; echo; done
  tail -30 "$work/serve.err"
fi
echo "real-cloud: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
