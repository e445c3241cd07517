#!/bin/sh
# NATS container entrypoint: render the nats-server config from the environment
# (NATS_STORE_DIR, NATS_MAX_FILE_STORE, NATS_MAX_MEM_STORE, NATS_APPEND_CONFIG
# (base64), NATS_ROUTES or DNS routes, NATS_GATEWAYS, FLY_* …; see docs/deploy.md),
# write it atomically, validate it with `nats-server -t`, then become nats-server.
# A node alone behind its DNS name is rendered standalone so it turns healthy.
set -eu

CONF="${NATS_CONFIG_FILE:-/etc/nats/nats.conf}"
CONFAB_CLI="${CONFAB_CLI:-node /app/dist/cli/confab.js}"
NATS_SERVER="${NATS_SERVER:-nats-server}"

mkdir -p "$(dirname "$CONF")" "${NATS_STORE_DIR:-/nats-store}"
# shellcheck disable=SC2086 # CONFAB_CLI is a command with arguments
$CONFAB_CLI nats-config --out "$CONF" --check
echo "nats-entrypoint: starting $NATS_SERVER with $CONF" >&2
exec "$NATS_SERVER" -c "$CONF" "$@"
