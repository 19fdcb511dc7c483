#!/usr/bin/env bash
# Checks the `gatehouse demo` flow in a real browser (headless Chromium from Debian's packages), including a
# returning user's handshake. Ports: GATEHOUSE_BROWSER_PORT (default 8080) and the next one for admin.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's interpreter, where apt installs python3-websocket: the python3 first on PATH may be another one
# (pyenv, a virtualenv) that lacks it.
python=/usr/bin/python3
need=()
[ -x "$python" ] || need+=(python3)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v curl >/dev/null 2>&1 || need+=(curl)
{ [ -x "$python" ] && "$python" -c "import websocket" 2>/dev/null; } || need+=(python3-websocket)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]} for the browser check"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
port="${GATEHOUSE_BROWSER_PORT:-8080}"
source scripts/build-deps.sh
swift build -q --product gatehouse
bin="$(swift build --show-bin-path)/gatehouse"
"$bin" demo --port "$port" --admin-port "$((port + 1))" >/tmp/gatehouse-demo.log 2>&1 &
demo=$!
trap 'kill $demo 2>/dev/null; wait $demo 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
GATEHOUSE_URL="http://127.0.0.1:$port" "$python" scripts/browser-check.py
