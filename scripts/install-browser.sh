#!/usr/bin/env bash
# Chromium for the web viewer's browser tests (tests/web). `make test` runs this.
# Installs Debian's chromium with apt when it is missing and we may (root, apt);
# otherwise says what to do. The tests themselves fail, naming the reason, if
# there is still no browser: they never skip.
set -uo pipefail
if [ -n "${EMDASH_FB_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 \
    || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium for the web viewer's tests (apt-get)..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } \
        || echo "warning: apt-get could not install chromium; tests/web will fail saying so"
else
    echo "note: Chromium is not installed; tests/web need it:" \
        "sudo apt-get install chromium (or set EMDASH_FB_CHROMIUM to a Chromium binary)"
fi
exit 0
