#!/usr/bin/env bash
# Checks the `gatehouse demo` flow in a real browser (headless Chromium from Debian's packages).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
python3 -c "import websocket" 2>/dev/null || pip install -q websocket-client
swift build -q --product gatehouse
bin="$(swift build --show-bin-path)/gatehouse"
"$bin" demo --port 8080 --admin-port 9090 2>/tmp/gatehouse-demo.log &
demo=$!
trap 'kill $demo 2>/dev/null; wait $demo 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:8080/ && break; sleep 0.1; done
python3 scripts/browser-check.py
