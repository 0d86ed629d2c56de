#!/usr/bin/env bash
# The hostile-input suite's CI stage (bounded, loopback only):
#  - 300 stalled connections against a server started with a soft open-files
#    limit of 256: /healthz answers within 1 s, all closed within 30 s;
#  - peak RSS per 1 MiB request of the costliest shapes: under 50 MiB each;
#  - schemathesis from the server's own openapi.json: no 5xx, no answer
#    slower than 10 s, and no panic in the server's log.
# (The proptest properties over decoding and translation run in `cargo test`.)
# Usage: tests/hostile/run.sh path/to/svc-lbaas
set -uo pipefail
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
venv=$("$here/venv.sh") || exit 1
rc=0
python3 "$here/stalled.py" "$bin" || rc=1
python3 "$here/memory.py" "$bin" || rc=1

log=$(mktemp)
out=$(mktemp)
SVC_LBAAS_SIM_PROVISIONING_DELAY_MS=20 "$bin" serve --rest-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 >"$out" 2>"$log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$log" "$out"' EXIT
addr=
for _ in $(seq 1 100); do
  addr=$(sed -n 's/^REST_ADDR=//p' "$out")
  [ -n "$addr" ] && break
  sleep 0.1
done
passed=0 failed=0
if [ -z "$addr" ]; then
  echo "FAIL the server did not start"; failed=$((failed + 1))
else
  if timeout 600 "$venv/bin/schemathesis" run "http://$addr/openapi.json" \
      --checks not_a_server_error --max-response-time 10 --request-timeout 15 \
      --max-examples 25 --seed 42 --max-time 90 --no-color; then
    echo "ok   schemathesis: no 5xx, no answer over 10 s"; passed=$((passed + 1))
  else
    echo "FAIL schemathesis"; failed=$((failed + 1))
  fi
  if kill -0 "$server" 2>/dev/null && ! grep -q panicked "$log"; then
    echo "ok   the server is up and logged no panic"; passed=$((passed + 1))
  else
    echo "FAIL the server died or panicked:"; grep -m5 panicked "$log"; failed=$((failed + 1))
  fi
fi
echo "schemathesis: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || rc=1
exit $rc
