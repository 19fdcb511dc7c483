#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine with Swift installed.
# Unit tests need nothing else: keys are generated in the tests and nothing touches the network.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v swift >/dev/null 2>&1; then
    echo "swift is not on PATH; install the Swift 6 toolchain first" >&2
    exit 1
fi

swift build --build-tests
swift test
# The CLI contract: the shipped example config must validate.
swift run -q gatehouse check-config --config config/gatehouse.example.yaml >/dev/null
echo "check-config on config/gatehouse.example.yaml: ok"
