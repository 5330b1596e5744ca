# The two commands a newcomer needs, and a few for developers. Each target calls a script in
# scripts/, so a machine without `make` runs the same thing: ./scripts/run-line.sh, ./scripts/test.sh
.PHONY: run test lint bootstrap deps lock clean

# Extra arguments: make run ARGS="--http-port 9000"   make test ARGS="tests/unit -x"
ARGS ?=

run:
	./scripts/run-line.sh $(ARGS)

test:
	./scripts/test.sh $(ARGS)

bootstrap deps:
	./scripts/bootstrap.sh

# After editing dependencies in pyproject.toml: re-resolve uv.lock and install it.
# make lock ARGS="--upgrade-package fastapi" moves one package to its newest allowed version.
lock:
	./scripts/lock.sh $(ARGS)

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/hadolint Dockerfile
	.venv/bin/shellcheck scripts/*.sh .ci/run

clean:
	rm -rf var/line build dist
