#!/usr/bin/env bash
# docker/watcher.sh against a recorded watch stream: a fake kubectl replays
# Services and EndpointSlices; a real `svc-lbaas serve` on its embedded
# simulated cloud answers; the status patches and the load balancer are checked.
# Usage: test.sh PATH/TO/svc-lbaas. Closes with "watcher: N passed, M failed".
# (jq checks slurp their input: an empty one is a failure, not a silent pass.)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$1
work=$(mktemp -d)
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
passed=0 failed=0
check() { # name, then a command that must succeed
  local name=$1; shift
  if "$@" >/dev/null; then passed=$((passed + 1)); echo "ok    $name"; else failed=$((failed + 1)); echo "FAIL  $name"; fi
}

env -u OS_CLOUD -u OS_AUTH_URL SVC_LBAAS_SIM_PROVISIONING_DELAY_MS=50 SVC_LBAAS_ORPHAN_GRACE_S=0 \
  "$bin" serve --rest-addr 127.0.0.1:0 > "$work/serve.out" 2> "$work/serve.err" &
server=$!
for _ in $(seq 50); do grep -q REST_ADDR "$work/serve.out" && break; sleep 0.1; done
addr=$(sed -n 's/^REST_ADDR=//p' "$work/serve.out")
[ -n "$addr" ] || { cat "$work/serve.err"; echo "watcher: 0 passed, 1 failed"; exit 1; }

# A Service deleted while the watcher was away: its load balancer is in the
# cloud, the cluster no longer has it. The watcher's first sync removes it.
curl -s -X POST "http://$addr/v1/apply" -H 'content-type: application/json' \
  -d '{"service": {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gone", "namespace": "shop"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}}' > "$work/gone.json"

export FAKE_KUBECTL_LOG="$work/patches" KUBECTL="$here/fake-kubectl" SVC_LBAAS_URL="http://$addr" WATCHER_ONCE=1
touch "$FAKE_KUBECTL_LOG"
timeout 120 bash "$here/../../docker/watcher.sh" 2> "$work/watcher.err"
rc=$?

grep '^shop web ' "$FAKE_KUBECTL_LOG" | tail -1 | cut -d' ' -f3- > "$work/web-patch.json"
service=$(curl -s "http://$addr/v1/services/shop/web")
members() { jq '[.loadBalancer.listeners[].pool.members | length] | add' <<<"$service"; }

check "the watcher ends cleanly on a finished stream" test "$rc" -eq 0
check "the ingress IP is patched onto shop/web" jq -es 'length == 1 and (.[0].status.loadBalancer.ingress[0].ip | startswith("172.24.4."))' "$work/web-patch.json"
check "the patch is a merge of the status only" jq -es 'length == 1 and (.[0] | keys == ["status"])' "$work/web-patch.json"
check "the headless shop/db gets an empty status" grep -qxF 'shop db {"status": {"loadBalancer":{}}}' "$FAKE_KUBECTL_LOG"
check "both slices' ready endpoints are members of both pools (3 x 2)" test "$(members)" = 6
check "the Service deleted while the watcher was away was created first" jq -es '.[0].action == "created"' "$work/gone.json"
check "the watcher's sync removed its load balancer" grep -q 'shop/gone deleted' "$work/watcher.err"
check "and GET answers 404 for it" test "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/v1/services/shop/gone")" = 404
check "the MODIFIED Service was applied (session affinity)" jq -es 'length == 1 and .[0].loadBalancer.listeners[0].pool.sessionPersistence == "SOURCE_IP"' <<<"$service"
if [ "$failed" -gt 0 ]; then
  echo "--- watcher log"; cat "$work/watcher.err"; echo "--- patches"; cat "$FAKE_KUBECTL_LOG"; echo "--- service"; echo "$service"
fi
echo "watcher: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
