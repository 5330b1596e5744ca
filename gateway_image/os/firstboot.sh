#!/bin/bash
# First boot of a gateway card, run once by cloud-init (runcmd) or firstrun.sh.
#
# 1. Trust: the release manifest's Ed25519 signature is checked with openssl against the
#    fleet's release key on the card, and every wheel against the manifest's SHA-256, before
#    any Python from the artifact runs. 2. Install: the update agent, installed from those
#    wheels into a throwaway environment, verifies the artifact again with the one verifier
#    all tiers share and installs it offline into slot A. 3. Identity, config, data partition, watchdog, NTP, services.
#
# FACTORY_ROOT puts everything under another root (tests run it in a scratch folder; on the
# Pi it is empty). Safe to run again: each step checks what is already there.
set -euo pipefail

PAYLOAD="${FACTORY_PAYLOAD:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
ROOT="${FACTORY_ROOT:-}"
PYTHON="${FACTORY_PYTHON:-/usr/bin/python3}"
ETC="$ROOT/etc/factory-gateway"
PKI="$ETC/pki"  # the gateway config's mqtt.tls points here (fleet provision writes it so)
OPT="$ROOT/opt/factory-gateway"
DATA="$ROOT/var/lib/factory-gateway"
SERVICE_USER=factory-gw

log() { printf 'factory firstboot: %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

# shellcheck source=/dev/null
[ -f "$PAYLOAD/settings.env" ] && . "$PAYLOAD/settings.env"
: "${GATEWAY_ID:?settings.env names no GATEWAY_ID}"

artifact=$(find "$PAYLOAD" -maxdepth 1 -name '*.release.tar' | sort | tail -n 1)
[ -n "$artifact" ] || fail "no *.release.tar on the card: rebuild it with fleet image build"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

verify_manifest() {
    tar -xf "$artifact" -C "$work" manifest.json manifest.sig
    openssl pkeyutl -verify -pubin -inkey "$PAYLOAD/release.pub" -rawin \
        -in "$work/manifest.json" -sigfile "$work/manifest.sig" >/dev/null \
        || fail "the release's signature does not match the fleet's release key: refusing it"
}

# Take every wheel out of the artifact, each checked against the signed manifest (Python's
# standard library only), into a private folder; pip then picks the ones for this Pi.
extract_wheels() {
    "$PYTHON" - "$artifact" "$work/manifest.json" "$work/wheels" <<'PY'
import hashlib, json, pathlib, sys, tarfile
artifact, manifest_path, folder = sys.argv[1:4]
manifest = json.load(open(manifest_path))
pathlib.Path(folder).mkdir(parents=True, exist_ok=True)
with tarfile.open(artifact) as tar:
    for member in tar.getmembers():
        if not member.name.endswith(".whl"):
            continue
        data = tar.extractfile(member).read()
        entry = manifest["files"].get(member.name)
        if entry is None or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            sys.exit(f"factory firstboot: {member.name} does not match the signed manifest")
        pathlib.Path(folder, pathlib.PurePosixPath(member.name).name).write_bytes(data)
print(manifest["requirement"])
PY
}

# The update agent, from those checked wheels, in a throwaway environment: it verifies the
# artifact again with the verifier every tier shares, and installs slot A.
install_release() {
    if [ -e "$OPT/state.json" ]; then
        log "slot A already installed"
        return
    fi
    local requirement
    requirement=$(extract_wheels) || fail "the release's files do not match its manifest"
    "$PYTHON" -m venv "$work/agent"
    "$work/agent/bin/pip" install --quiet --no-index --find-links "$work/wheels" "$requirement" \
        || fail "the release has no packages for this Pi's Python and processor"
    install -d -m 0755 "$OPT"
    "$work/agent/bin/gateway-agent" install-first \
        --root "$OPT" --data-dir "$DATA" --artifact "$artifact" \
        --config "$PAYLOAD/gateway.yaml" --release-key "$PAYLOAD/release.pub" \
        || fail "installing the release into slot A failed (see above)"
}

install_identity() {
    install -d -m 0750 "$ETC" "$PKI"
    install -m 0644 "$PAYLOAD/gateway.crt" "$PKI/gateway.crt"
    install -m 0644 "$PAYLOAD/ca.crt" "$PKI/ca.crt"
    install -m 0600 "$PAYLOAD/gateway.key" "$PKI/gateway.key"
    # Anyone holding the card can read its FAT partition: the key leaves it now.
    rm -f "$PAYLOAD/gateway.key"
}

system_setup() {
    install -d "$ROOT/etc/systemd/system.conf.d" "$ROOT/etc/systemd/timesyncd.conf.d"
    if [ "${WATCHDOG:-1}" = 1 ]; then
        # The Pi's BCM2835 watchdog counts at most 15 s; systemd pets it while PID 1 lives.
        printf '[Manager]\nRuntimeWatchdogSec=15s\nRebootWatchdogSec=2min\n' \
            >"$ROOT/etc/systemd/system.conf.d/factory-watchdog.conf"
    fi
    if [ -n "${NTP_SERVERS:-}" ]; then
        printf '[Time]\nNTP=%s\n' "$NTP_SERVERS" >"$ROOT/etc/systemd/timesyncd.conf.d/factory.conf"
    fi
    install -d "$DATA"
    if command -v blkid >/dev/null && [ -z "$ROOT" ] && blkid -L gwdata >/dev/null 2>&1; then
        grep -q 'LABEL=gwdata' /etc/fstab \
            || echo 'LABEL=gwdata /var/lib/factory-gateway ext4 defaults,noatime,commit=30 0 2' >>/etc/fstab
        mountpoint -q "$DATA" || mount "$DATA"
    fi
    if [ -z "$ROOT" ] && ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/factory-gateway --shell /usr/sbin/nologin \
            --groups dialout,gpio "$SERVICE_USER" || useradd --system "$SERVICE_USER"
    fi
    [ -z "$ROOT" ] && chown -R "$SERVICE_USER:" "$DATA" "$ETC"
    install -d "$ROOT/etc/systemd/system"
    cp "$OPT/current/lib/"python3*/site-packages/gateway_image/os/systemd/*.service \
        "$ROOT/etc/systemd/system/"
}

start_services() {
    if [ -n "$ROOT" ] || ! command -v systemctl >/dev/null; then
        log "not the running system: services installed, not started"
        return
    fi
    systemctl daemon-reload
    systemctl enable --now factory-gateway-agent.service factory-gateway.service
    if [ "${READONLY_ROOT:-0}" = 1 ] && command -v raspi-config >/dev/null; then
        # The overlay takes effect at the next boot; the buffer stays on the data partition.
        raspi-config nonint do_overlayfs 0
    fi
}

log "gateway $GATEWAY_ID: verifying the release"
verify_manifest
log "installing the release into slot A (offline)"
install_release
install_identity
system_setup
start_services
date -u +%FT%TZ >"$DATA/.firstboot-done"
log "gateway $GATEWAY_ID installed; it announces itself to the fleet once it reaches the broker"
