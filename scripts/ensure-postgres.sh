#!/bin/sh
# Makes sure PostgreSQL 15 (Debian's postgresql-15) is installed for the server suite, installing it
# as root with apt-get when missing. The suite itself runs initdb in a temporary folder as the
# `postgres` system user (PostgreSQL refuses to run as root); the package creates that user.
# Exit 1, saying why, when it is missing and cannot be installed.
set -eu
BIN=/usr/lib/postgresql/15/bin
if [ -x "$BIN/initdb" ] && [ -x "$BIN/pg_ctl" ] && [ -x "$BIN/psql" ]; then
    if [ "$(id -u)" != 0 ] || id postgres >/dev/null 2>&1; then
        exit 0
    fi
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's postgresql-15 for the server suite" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # The package's own cluster is not needed (the tests make their own): do not start it.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-client-15 >/dev/null
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/false postgres
    [ -x "$BIN/initdb" ] && exit 0
fi
echo "the server suite needs PostgreSQL 15 ($BIN/initdb): install Debian's postgresql-15 (as root: scripts/ensure-postgres.sh)" >&2
exit 1
