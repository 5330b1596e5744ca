#!/usr/bin/env bash
# Re-resolve uv.lock after a change to pyproject.toml's dependencies, then install the result.
# Same as `make lock`. Versions already in the lock stay unless pyproject.toml rules them out;
# arguments go to `uv lock`, e.g. ./scripts/lock.sh --upgrade-package fastapi
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=".venv"
if [ ! -x "$VENV/bin/uv" ]; then
    # The bootstrap refuses a stale lock, so fetch uv directly: the version the lock pins.
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    version="$(awk '$0 == "name = \"uv\"" { getline; gsub(/"/, "", $3); print $3; exit }' uv.lock)"
    "$VENV/bin/python" -m pip install -q "uv${version:+==$version}"
fi
# Universal: one lock for every platform, so a Raspberry Pi (linux aarch64) installs exactly
# the versions CI tested on x86_64.
"$VENV/bin/uv" lock "$@"
./scripts/bootstrap.sh
echo "lock: uv.lock updated; commit it together with pyproject.toml"
