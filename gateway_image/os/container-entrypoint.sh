#!/bin/sh
# Container entry for balena fleets: the gateway's identity and config arrive as device
# environment variables (set by `fleet` through the balena backend), are written to files
# only this container can read, and the gateway runs with them. Elsewhere the config is
# mounted at /etc/factory/gateway.yaml and these variables are unset.
#   FACTORY_GATEWAY_CONFIG_B64  the gateway config YAML, base64
#   FACTORY_GATEWAY_CERT, FACTORY_GATEWAY_KEY, FACTORY_CA_CERT  PEM text
set -eu

dir="${FACTORY_IDENTITY_DIR:-/var/lib/factory/identity}"
umask 077
mkdir -p "$dir"

write_pem() {
    # $1: variable value, $2: file name; an unset variable leaves no file behind.
    if [ -n "$1" ]; then
        printf '%s\n' "$1" >"$dir/$2"
    fi
}

write_pem "${FACTORY_GATEWAY_CERT:-}" gateway.crt
write_pem "${FACTORY_GATEWAY_KEY:-}" gateway.key
write_pem "${FACTORY_CA_CERT:-}" ca.crt

config=/etc/factory/gateway.yaml
if [ -n "${FACTORY_GATEWAY_CONFIG_B64:-}" ]; then
    config="$dir/gateway.yaml"
    printf '%s' "$FACTORY_GATEWAY_CONFIG_B64" | base64 -d >"$config"
fi
if [ ! -f "$config" ]; then
    echo "factory gateway: no config: set FACTORY_GATEWAY_CONFIG_B64 (fleet does) or mount $config" >&2
    exit 2
fi

exec gateway run "$config" "$@"
