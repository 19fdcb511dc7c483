#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine with the Swift toolchain.
# Installs nginx (forward-auth test), chromium and python3-websocket (browser check) from Debian's packages;
# everything else runs in-process on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v swift >/dev/null 2>&1; then
    echo "swift is not on PATH; install the Swift 6 toolchain first" >&2
    exit 1
fi

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "installing nginx for the forward-auth test"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq nginx-light >/dev/null 2>&1 || apt-get install -y -qq nginx >/dev/null
    # The package may start a default server on port 80; the tests start their own on other ports, so it
    # is left alone (stopping nginx by name would stop other people's servers too).
fi
export GATEHOUSE_REQUIRE_NGINX=1

swift build --build-tests
swift test
# A short libFuzzer pass over every target in Fuzz/ (the toolchain ships the fuzzer and ASan runtimes);
# any crash, leak or timeout fails the run. Longer: scripts/fuzz 600.
./scripts/fuzz "${GATEHOUSE_FUZZ_SECONDS:-10}"
# The CLI contract: the shipped example config must validate.
swift run -q gatehouse check-config --config config/gatehouse.example.yaml >/dev/null
echo "check-config on config/gatehouse.example.yaml: ok"
# The browser flow (sign-in, a returning user's handshake, 403) in headless Chromium.
GATEHOUSE_BROWSER_PORT=18480 ./scripts/browser-check.sh
