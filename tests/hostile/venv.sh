#!/usr/bin/env bash
# Installs schemathesis (requirements.txt, pinned) into a venv outside the
# clone, reused while requirements.txt is unchanged. Prints the venv's path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="${SVC_LBAAS_HOSTILE_VENV:-$HOME/.cache/svc-lbaas/venv-hostile}"
stamp="$venv/.requirements.txt"
if [ -x "$venv/bin/schemathesis" ] && cmp -s "$here/requirements.txt" "$stamp"; then
  echo "$venv"
  exit 0
fi
rm -rf "$venv"
python3 -m venv "$venv" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
cp "$here/requirements.txt" "$stamp"
echo "$venv"
