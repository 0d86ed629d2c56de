#!/usr/bin/env bash
# The thin cluster watcher: watches Services and EndpointSlices in all
# namespaces, posts each change to svc-lbaas's /v1/events, and patches the
# answered status onto services/status. On every (re)list it posts the full
# list to /v1/sync, which also removes the load balancers of Services deleted
# while it was away. State lives in OpenStack, so a restart (or a reconnect,
# which re-lists: `kubectl get --watch` starts with every object) is always safe.
#
# Needs kubectl, curl and jq. Settings (environment):
#   SVC_LBAAS_URL       svc-lbaas REST address (default http://127.0.0.1:8080)
#   SVC_LBAAS_TOKEN     bearer token, if svc-lbaas has a tokens file
#   SVC_LBAAS_CACERT    CA bundle for an https SVC_LBAAS_URL
#   KUBECTL             kubectl command (default kubectl)
#   WATCHER_BACKOFF_MAX longest pause between retries, seconds (default 60)
#   WATCHER_RETRIES     attempts per event before it is logged and skipped (default 5)
#   WATCHER_ONCE        set: stop when the watch streams end (tests)
set -uo pipefail

URL=${SVC_LBAAS_URL:-http://127.0.0.1:8080}
KUBECTL=${KUBECTL:-kubectl}
BACKOFF_MAX=${WATCHER_BACKOFF_MAX:-60}
RETRIES=${WATCHER_RETRIES:-5}

log() { printf '%s watcher: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

# POSTs a JSON body (stdin) to /v1/events (or the path given); prints the
# answer. Retries with backoff on transport errors and 5xx; a 4xx is final
# (the object is wrong).
post_event() {
  local path=${1:-/v1/events} body answer code attempt=1 pause=1
  body=$(cat)
  local args=(-sS -X POST "$URL$path" -H 'content-type: application/json' --data-binary @- -w '\n%{http_code}')
  [ -n "${SVC_LBAAS_TOKEN:-}" ] && args+=(-H "Authorization: Bearer $SVC_LBAAS_TOKEN")
  [ -n "${SVC_LBAAS_CACERT:-}" ] && args+=(--cacert "$SVC_LBAAS_CACERT")
  while :; do
    answer=$(curl "${args[@]}" <<<"$body") && code=${answer##*$'\n'} || code=000
    answer=${answer%$'\n'*}
    case "$code" in
      2??) printf '%s' "$answer"; return 0 ;;
      4??) log "svc-lbaas refused the event ($code): $answer"; return 1 ;;
    esac
    if [ "$attempt" -ge "$RETRIES" ]; then
      log "giving up on an event after $attempt attempts (last: $code $answer)"
      return 1
    fi
    log "svc-lbaas answered $code; retrying in ${pause}s"
    sleep "$pause"
    attempt=$((attempt + 1))
    pause=$((pause * 2 > BACKOFF_MAX ? BACKOFF_MAX : pause * 2))
  done
}

# Writes the status svc-lbaas answered onto the Service.
patch_status() {
  local ns=$1 name=$2 status=$3
  if ! $KUBECTL -n "$ns" patch service "$name" --subresource=status --type=merge \
      -p "{\"status\": $status}" >/dev/null; then
    log "could not patch the status of $ns/$name"
  fi
}

# Posts all current EndpointSlices of a Service together (svc-lbaas needs them
# all: one slice alone would drop the others' members).
post_slices() {
  local ns=$1 service=$2 list
  list=$($KUBECTL -n "$ns" get endpointslices -l "kubernetes.io/service-name=$service" -o json) || {
    log "could not list the EndpointSlices of $ns/$service"
    return 1
  }
  if [ "$(jq '.items | length' <<<"$list")" -eq 0 ]; then
    return 0
  fi
  post_event <<<"$list" >/dev/null
}

handle_service() {
  local event=$1 type ns name answer status
  type=$(jq -r '.type' <<<"$event")
  ns=$(jq -r '.object.metadata.namespace // "default"' <<<"$event")
  name=$(jq -r '.object.metadata.name' <<<"$event")
  [ "$type" = BOOKMARK ] && return 0
  answer=$(post_event <<<"$event") || return 0
  log "Service $ns/$name $type: $(jq -r '.result.action // .result.pending // .result.ignored // "?"' <<<"$answer")"
  [ "$type" = DELETED ] && return 0
  status=$(jq -c '.result.status // empty' <<<"$answer")
  [ -n "$status" ] && patch_status "$ns" "$name" "$status"
  # The Service's members may have been posted before it had a load balancer.
  post_slices "$ns" "$name"
}

handle_slice() {
  local event=$1 type ns service
  type=$(jq -r '.type' <<<"$event")
  [ "$type" = BOOKMARK ] && return 0
  ns=$(jq -r '.object.metadata.namespace // "default"' <<<"$event")
  service=$(jq -r '.object.metadata.labels["kubernetes.io/service-name"] // empty' <<<"$event")
  [ -z "$service" ] && return 0
  post_slices "$ns" "$service" && log "EndpointSlices of $ns/$service posted"
}

# The cluster's Services and EndpointSlices, listed now, posted to /v1/sync:
# every Service applied (its status patched), orphans removed.
sync_all() {
  local services slices answer
  services=$($KUBECTL get services --all-namespaces -o json) \
    && slices=$($KUBECTL get endpointslices.discovery.k8s.io --all-namespaces -o json) || {
    log "could not list Services and EndpointSlices for a sync"
    return 1
  }
  answer=$(jq -c -n --argjson s "$services" --argjson e "$slices" \
    '{apiVersion: "v1", kind: "List", items: (($s.items | map(. + {apiVersion: "v1", kind: "Service"})) + ($e.items | map(. + {apiVersion: "discovery.k8s.io/v1", kind: "EndpointSlice"})))}' \
    | post_event /v1/sync) || return 1
  log "synced: $(jq -c '{services: (.services | length), orphans: [.orphans[] | .service + " " + .action]}' <<<"$answer")"
  jq -c '.services[] | select(.result.status) | [.service, .result.status]' <<<"$answer" \
    | while IFS= read -r row; do
        local service ns name
        service=$(jq -r '.[0]' <<<"$row")
        ns=${service%%/*} name=${service#*/}
        patch_status "$ns" "$name" "$(jq -c '.[1]' <<<"$row")"
      done
}

# Watches one resource forever (or once), re-listing on every reconnect
# (Services: after a sync of the whole list).
watch() {
  local resource=$1 handler=$2 pause=1
  while :; do
    [ "$resource" = services ] && sync_all
    $KUBECTL get "$resource" --all-namespaces --watch --output-watch-events -o json \
      | jq -c --unbuffered . \
      | while IFS= read -r event; do "$handler" "$event"; done
    [ -n "${WATCHER_ONCE:-}" ] && return 0
    log "the $resource watch ended; re-listing in ${pause}s"
    sleep "$pause"
    pause=$((pause * 2 > BACKOFF_MAX ? BACKOFF_MAX : pause * 2))
  done
}

for tool in "$KUBECTL" curl jq; do
  command -v "${tool%% *}" >/dev/null || { log "$tool is required"; exit 2; }
done
log "feeding $URL"
watch services handle_service &
services=$!
watch endpointslices.discovery.k8s.io handle_slice &
slices=$!
trap 'kill $services $slices 2>/dev/null' INT TERM
wait $services $slices
