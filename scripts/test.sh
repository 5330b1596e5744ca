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
# Tests run on several workers (pytest-xdist): most of the suite's time is waiting on real
# processes, brokers and outages, not CPU. A file's tests stay on one worker, so its
# module fixtures (an edge process, a browser) start once. `-n 0` runs them in this process.
# TEST_WORKERS sets how many; the default is the CPU count, at least 2 and at most 4.
cpus="$(nproc 2>/dev/null || echo 2)"
workers="${TEST_WORKERS:-$(( cpus < 2 ? 2 : (cpus > 4 ? 4 : cpus) ))}"
status=0
.venv/bin/python -m pytest -n "$workers" --dist loadfile "$@" || status=$?
if [ "$status" -eq 5 ]; then
    # pytest's "no tests collected" must not pass for a green run.
    echo "test: pytest collected no tests: treating that as a failure" >&2
    exit 1
fi
exit "$status"
