#!/usr/bin/env bash
# Sourced by the scripts that build Gatehouse: installs the Debian -dev packages its system library targets
# link (libpcre2-dev for route patterns, libssl-dev for the data plane's OpenSSL TLS) when they are missing.
# As root it runs apt-get; otherwise it says what to install and stops, rather than letting `swift build` fail
# with a missing header.
missing_build_deps=()
[ -f /usr/include/pcre2.h ] || missing_build_deps+=(libpcre2-dev)
[ -f /usr/include/openssl/ssl.h ] || missing_build_deps+=(libssl-dev)
if [ ${#missing_build_deps[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "installing ${missing_build_deps[*]} (needed to build Gatehouse)"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_build_deps[@]}" >/dev/null
    else
        echo "Gatehouse needs ${missing_build_deps[*]} to build: sudo apt-get install ${missing_build_deps[*]}" >&2
        exit 1
    fi
fi
unset missing_build_deps
