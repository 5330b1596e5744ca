#!/usr/bin/env bash
# Make this clone ready to run and test: Debian packages (when root), .venv, the project.
#
# Python packages come from uv.lock (exact versions and hashes, the same set CI and the
# Dockerfile install); `make lock` regenerates it after a change to pyproject.toml, and this
# script refuses a lock that disagrees with pyproject.toml.
#
# Idempotent and quick: the install step is skipped while pyproject.toml, uv.lock and the
# extras are unchanged (a stamp in .venv keyed on their hash). Environment:
#   PYTHON=python3.12   interpreter to build .venv with (default: newest python3.x >= 3.11)
#   EXTRAS=gateway,edge,export,fleet,sim,dev   extras to install
#   CI=true             a missing Debian package is an error instead of a hint
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages the line and the tests use. Extend this list (and say why) when you
# add a test that needs a binary: mosquitto (the broker), socat (pty pairs for serial
# tests), chromium + chromium-driver (the edge web page tests; chromium also prints
# the wiring sheet to PDF in tests/integration/test_wiring_print.py).
APT_PACKAGES=(
    python3-venv
    mosquitto
    mosquitto-clients
    # The shipped broker config loads deploy/mosquitto/clientid-binding, a C plugin the
    # secured-broker tests compile: a compiler, Mosquitto's plugin headers and OpenSSL's.
    gcc
    make
    libc6-dev
    mosquitto-dev
    libmosquitto-dev
    libssl-dev
    socat
    chromium
    chromium-driver
    mariadb-server  # the cloud database: shared on :3306 for tests, private mariadbd per outage test
    fdisk           # sfdisk: the SD-image tests build Raspberry Pi OS-shaped disk images
    dosfstools      # mkfs.vfat / fsck.vfat: the images' FAT boot partition, and checking it
    mtools          # reads and writes FAT inside an image without mounting (fleet image build)
    poppler-utils   # pdfinfo, pdftotext, pdftoppm: the wiring sheet's printed PDF, read in a test
    e2fsprogs       # mkfs.ext4 / e2fsck: the root and data partitions
    xz-utils        # .img.xz base images, as Raspberry Pi OS ships them
    cloud-init      # `cloud-init schema` validates the user-data an image carries
    openssh-server  # fleet SSH backend tests start their own sshd on loopback (no system sshd)
    nodejs          # runs node-opcua, an OPC UA server this project did not write, for tests
)
EXTRAS="${EXTRAS:-gateway,edge,export,fleet,sim,dev}"
VENV=".venv"
STAMP="$VENV/.bootstrap-stamp"

say() { printf 'bootstrap: %s\n' "$*"; }

missing_debian_packages() {
    local pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            printf '%s\n' "$pkg"
        fi
    done
}

install_debian_packages() {
    command -v dpkg-query >/dev/null 2>&1 || return 0 # not Debian/Ubuntu: nothing to do
    local missing=()
    mapfile -t missing < <(missing_debian_packages)
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        say "missing Debian packages: ${missing[*]}"
        say "install them with: sudo apt-get install -y ${missing[*]}"
        say "(or run: sudo ./scripts/bootstrap.sh); tests needing them are skipped until then"
        if [ "${CI:-}" = "true" ]; then
            say "CI=true: failing because tests would fail without them"
            exit 1
        fi
        return 0
    fi
    say "installing Debian packages: ${missing[*]}"
    # Wait for another apt run (unattended upgrades, a colleague) instead of failing at once.
    local wait_lock=(-o DPkg::Lock::Timeout=300)
    apt-get "${wait_lock[@]}" update -qq
    local available=() pkg
    for pkg in "${missing[@]}"; do
        # Ubuntu ships chromium only as a snap: skip what this release does not have.
        if apt-cache show "$pkg" >/dev/null 2>&1; then
            available+=("$pkg")
        else
            say "warning: no package '$pkg' in this distribution's archive; skipping it"
        fi
    done
    if [ "${#available[@]}" -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get "${wait_lock[@]}" install -y -qq --no-install-recommends \
            "${available[@]}"
    fi
}

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    say "error: Python 3.11 or newer is needed (found: $(python3 --version 2>&1 || echo none))"
    say "on Debian 12 / Ubuntu 22.04+: sudo apt-get install -y python3 python3-venv"
    exit 1
}

make_venv() {
    [ -x "$VENV/bin/python" ] && return 0
    local python
    python="$(find_python)"
    say "creating $VENV with $python"
    if ! "$python" -m venv "$VENV"; then
        say "error: could not create $VENV: sudo apt-get install -y python3-venv, then retry"
        rm -rf "$VENV"
        exit 1
    fi
}

locked_version() { # the version uv.lock pins for one package
    awk -v want="name = \"$1\"" '$0 == want { getline; gsub(/"/, "", $3); print $3; exit }' uv.lock
}

install_uv() {
    local version
    version="$(locked_version uv)"
    [ -n "$version" ] || { say "error: uv.lock pins no uv (is uv in the dev extra?)"; exit 1; }
    if [ "$("$VENV/bin/uv" --version 2>/dev/null | cut -d' ' -f2)" != "$version" ]; then
        say "installing uv $version (it reads uv.lock)"
        "$VENV/bin/python" -m pip install -q "uv==$version"
    fi
}

install_project() {
    local want requirements extras=() extra names=()
    want="$(cat pyproject.toml uv.lock <(printf '%s' "$EXTRAS") | sha256sum | cut -d' ' -f1)"
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
        return 0
    fi
    install_uv
    IFS=, read -ra names <<<"$EXTRAS"
    for extra in "${names[@]}"; do extras+=(--extra "$extra"); done
    requirements="$VENV/requirements.lock.txt"
    # --locked: fail when pyproject.toml changed without `make lock`, instead of installing a
    # set nobody resolved.
    if ! "$VENV/bin/uv" export --quiet --locked --no-emit-project --format requirements-txt \
        "${extras[@]}" -o "$requirements"; then
        say "error: uv.lock does not match pyproject.toml: run \`make lock\` and commit uv.lock"
        exit 1
    fi
    say "installing the locked packages for [$EXTRAS] into $VENV (first run takes a minute)"
    "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" --require-hashes \
        -r "$requirements"
    "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" --no-deps -e .
    printf '%s\n' "$want" >"$STAMP"
}

# node-opcua for the OPC UA security tests, exactly as tests/opcua_server/package-lock.json
# pins it; skipped (with the tests it serves) where npm is missing, an error in CI.
install_test_servers() {
    local dir=tests/opcua_server stamp=tests/opcua_server/node_modules/.bootstrap-stamp want
    if ! command -v npm >/dev/null 2>&1; then
        say "npm not found: the OPC UA security tests need it (Debian: apt-get install npm)"
        [ "${CI:-}" = "true" ] && exit 1
        return 0
    fi
    want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    say "installing node-opcua for the OPC UA tests (npm ci in $dir)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    printf '%s\n' "$want" >"$stamp"
}

install_debian_packages
make_venv
install_project
install_test_servers
