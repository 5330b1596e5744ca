#!/usr/bin/env bash
# Bring up the simulated anodizing line (simulator, broker, gateway, edge node) and print
# the URL to open. Arguments go to `factory-line run` (try --help). Same as `make run`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/bootstrap.sh
exec .venv/bin/factory-line run "$@"
