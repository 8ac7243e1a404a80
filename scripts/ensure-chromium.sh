#!/bin/sh
# Makes sure Debian's Chromium and chromedriver are installed for the console's browser suite,
# installing them as root with apt-get when missing. Exit 1, saying why, when that is not possible.
set -eu
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium and chromium-driver for the console's browser suite" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
    command -v chromedriver >/dev/null 2>&1 && exit 0
fi
echo "the console's browser suite needs chromium and chromedriver on PATH: install Debian's chromium and chromium-driver (as root: scripts/ensure-chromium.sh)" >&2
exit 1
