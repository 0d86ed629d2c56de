#!/usr/bin/env bash
# Installs Prometheus and promtool from Debian's packages (not a download),
# without starting the packaged service: the tests run their own Prometheus
# on loopback and stop it.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
# policy-rc.d 101: no service is started by the package's scripts.
policy=/usr/sbin/policy-rc.d
had_policy=0
if [ -e "$policy" ]; then had_policy=1; fi
if [ "$had_policy" -eq 0 ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
fi
trap 'if [ "$had_policy" -eq 0 ]; then $sudo rm -f "$policy"; fi' EXIT
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
prometheus --version 2>&1 | head -1
