#!/usr/bin/env bash
# Make sure the servers the test suite starts for itself are installed (PostgreSQL and
# Redis, the fleet's state store and queue), and
# Debian's Chromium for the messages page's browser tests (Playwright launches it by path).
# The tests start and stop their own throwaway instances on 127.0.0.1; this only installs.
set -euo pipefail

apt_install() {
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    elif command -v sudo >/dev/null 2>&1; then
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    else
        echo "error: install $* (Debian/Ubuntu: apt-get install $*) and re-run" >&2
        exit 1
    fi
}

if ! command -v chromium >/dev/null 2>&1; then
    echo "Chromium not found: installing it (the messages page is tested in a real browser)"
    apt_install chromium
    command -v chromium >/dev/null
fi

have_postgres() {
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1
}

if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
    echo "Redis server not found: installing it (the fleet's queue is tested on a real server)"
    apt_install redis-server
    command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]
fi

if have_postgres; then
    exit 0
fi

echo "PostgreSQL server not found: installing it (the state-store tests run on a real server)"
apt_install postgresql
have_postgres
