#!/usr/bin/env bash
# Run the test suite (arguments go to pytest). Same as `make test`; .ci/run calls it too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/bootstrap.sh
# Types first ([tool.mypy] in pyproject.toml): a type error fails the run before any test.
echo "test: mypy $(.venv/bin/mypy --version | cut -d' ' -f2) over the packages"
if ! .venv/bin/mypy; then
    echo "test: mypy found type errors (above): failing" >&2
    exit 1
fi
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    # pytest's "no tests collected" must not pass for a green run.
    echo "test: pytest collected no tests: treating that as a failure" >&2
    exit 1
fi
exit "$status"
