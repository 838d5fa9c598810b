#!/usr/bin/env bash
# The browsers for the web viewer's tests (tests/web): Chromium and Firefox.
# `make test` runs this. Installs Debian's chromium and firefox-esr with apt when
# one is missing and we may (root, apt); otherwise says what to do. The tests
# themselves fail, naming the reason, if a browser is still missing: they never skip.
set -uo pipefail
missing=()
if [ -z "${EMDASH_FB_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1 \
    && ! command -v chromium-browser >/dev/null 2>&1; then
    missing+=(chromium)
fi
if [ -z "${EMDASH_FB_FIREFOX:-}" ] && ! command -v firefox-esr >/dev/null 2>&1 \
    && ! command -v firefox >/dev/null 2>&1; then
    missing+=(firefox-esr)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} for the web viewer's tests (apt-get)..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; } \
        || echo "warning: apt-get could not install ${missing[*]}; tests/web will fail saying so"
else
    echo "note: tests/web need ${missing[*]}: sudo apt-get install ${missing[*]}" \
        "(or set EMDASH_FB_CHROMIUM / EMDASH_FB_FIREFOX to the browsers' binaries)"
fi
exit 0
