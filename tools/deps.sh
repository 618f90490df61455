#!/bin/sh
# Installs the Debian packages frontdesk needs to build and test, when they
# are missing.  As root it runs apt-get; otherwise it prints the exact line.
set -eu

pkgs="build-essential pkg-config libwebsockets-dev libcurl4-openssl-dev
libcjson-dev liblua5.4-dev libsqlite3-dev libssl-dev libinih-dev libjemalloc-dev
python3 curl chromium wrk valgrind"

# Node.js runs the Telegram Bot API emulator in the end-to-end test; a Node
# that did not come from Debian's nodejs package counts as well.
command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"

missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "frontdesk needs these packages; run as root:" >&2
    echo "  apt-get install -y$missing" >&2
    exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
