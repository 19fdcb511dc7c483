#!/usr/bin/env bash
# Runs Gatehouse on a fresh machine with nothing external: `gatehouse demo` starts the gateway with the
# example routes, a small demo app behind it, and a local DEVELOPMENT issuer (sign-in page, JWKS, tokens).
# Open the printed URL; Ctrl-C stops it. Ports: 8080 (gateway) and 9090 (admin); override with
#   ./scripts/run.sh --port 8081 --admin-port 9091
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/build-deps.sh
swift build -q --product gatehouse
exec "$(swift build --show-bin-path)/gatehouse" demo "$@"
