#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine with the Swift toolchain.
# Installs libpcre2-dev (route patterns), libssl-dev (GatehouseTLS), nginx and caddy (forward-auth tests), chromium and python3-websocket
# (browser check), python3-h11 (HTTP/1.1 differential tests) from Debian's packages;
# everything else runs in-process on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v swift >/dev/null 2>&1; then
    echo "swift is not on PATH; install the Swift 6 toolchain first" >&2
    exit 1
fi

# Route patterns compile to PCRE2 (GatehouseCore links libpcre2-16 through the CPCRE2 system library);
# GatehouseTLS links OpenSSL 3 (libssl, libcrypto) through the COpenSSL system library.
source scripts/build-deps.sh

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "installing nginx for the forward-auth test"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq nginx-light >/dev/null 2>&1 || apt-get install -y -qq nginx >/dev/null
    # The package may start a default server on port 80; the tests start their own on other ports, so it
    # is left alone (stopping nginx by name would stop other people's servers too).
fi
export GATEHOUSE_REQUIRE_NGINX=1

# openssl makes the TLS upstream tests' certificates; PyJWT (python3-jwt, python3-cryptography) signs the
# third-party JWT vectors. Both are run at test time from Debian's packages.
if [ ! -x /usr/bin/openssl ] || ! /usr/bin/python3 -c "import jwt, cryptography" >/dev/null 2>&1; then
    echo "installing openssl, python3-jwt and python3-cryptography for the TLS and JWT-vector tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq openssl python3-jwt python3-cryptography >/dev/null
fi

# h11 (python3-h11) is a differential peer of Gatehouse's HTTP/1.1 parser (Tests/GatehouseTests/HTTP1).
if ! /usr/bin/python3 -c "import h11" >/dev/null 2>&1; then
    echo "installing python3-h11 for the HTTP/1.1 differential tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-h11 >/dev/null
fi

# Identity assertions are verified with PyJWT from PyPI (pinned), in a venv of Debian's python3, so the
# verifier is the one apps install; python3-venv provides the venv. Without PyPI (an offline mirror) the
# tests fall back to Debian's python3-jwt, and say which one verified ("verified by PyJWT …").
if ! /usr/bin/python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
    echo "installing python3-venv for the identity-assertion tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-venv >/dev/null
fi
PYJWT_VENV="${GATEHOUSE_PYJWT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/gatehouse-pyjwt-venv}"
if [ ! -x "$PYJWT_VENV/bin/python" ] || ! "$PYJWT_VENV/bin/python" -c "import jwt, cryptography" >/dev/null 2>&1; then
    /usr/bin/python3 -m venv "$PYJWT_VENV" && "$PYJWT_VENV/bin/pip" install -q "PyJWT==2.15.1" "cryptography>=42" \
        || echo "PyPI unreachable: identity assertions are verified with Debian's python3-jwt instead"
fi
if "$PYJWT_VENV/bin/python" -c "import jwt, cryptography" >/dev/null 2>&1; then
    export GATEHOUSE_PYJWT_PYTHON="$PYJWT_VENV/bin/python"
fi

if [ ! -x /usr/bin/caddy ]; then
    echo "installing caddy for the forward-auth test"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq caddy >/dev/null
    # Like nginx, the package may start its own server on port 80; the tests run theirs on other ports.
fi
export GATEHOUSE_REQUIRE_CADDY=1
# The daemon run as uid/gid 65534 with setpriv (util-linux), as the shipped unit, image and manifest run it.
export GATEHOUSE_REQUIRE_UNPRIVILEGED=1

swift build --build-tests
swift test
# A short libFuzzer pass over every target in Fuzz/ (the toolchain ships the fuzzer and ASan runtimes);
# any crash, leak or timeout fails the run. Longer: scripts/fuzz 600.
FUZZ_SEED="${FUZZ_SEED:-1}" ./scripts/fuzz "${GATEHOUSE_FUZZ_SECONDS:-10}"
# The CLI contract: the shipped example config must validate.
swift run -q gatehouse check-config --config config/gatehouse.example.yaml >/dev/null
echo "check-config on config/gatehouse.example.yaml: ok"
# The systemd unit: `systemd-analyze verify` and a security exposure of at most 2.0, offline.
./scripts/check-systemd "$(swift build --show-bin-path)/gatehouse"
# The container: a FROM scratch image of the debug binary built and run with podman (installed if missing),
# requested through its public listener, stopped with SIGTERM. The registry Dockerfile's config must validate.
swift run -q gatehouse check-config --config deploy/docker/gatehouse.yaml >/dev/null
./scripts/container-smoke "$(swift build --show-bin-path)/gatehouse"
# The Kubernetes manifest: schemas (kubernetes-validate from PyPI, in a venv under .build), policy, config.
./scripts/check-kubernetes "$(swift build --show-bin-path)/gatehouse"
# A short soak with faults (upstream restarts, key rotation, a broken reload, aborted uploads, slowloris,
# half-closed clients, big refusals) against the debug binary: no crash, hang, fd or memory leak. Longer:
# scripts/soak (100 s, release).
GATEHOUSE_BIN="$(swift build --show-bin-path)/gatehouse" DURATION="${GATEHOUSE_SOAK_SECONDS:-20}" ./scripts/soak
# The browser flow (sign-in, a returning user's handshake, 403) in headless Chromium.
GATEHOUSE_BROWSER_PORT=18480 ./scripts/browser-check.sh
