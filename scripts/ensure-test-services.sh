#!/usr/bin/env bash
# Make sure the servers the test suite starts for itself are installed (PostgreSQL).
# The tests start and stop their own throwaway instances on 127.0.0.1; this only installs.
set -euo pipefail

have_postgres() {
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1
}

if have_postgres; then
    exit 0
fi

echo "PostgreSQL server not found: installing it (the state-store tests run on a real server)"
if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
else
    echo "error: install PostgreSQL (Debian/Ubuntu: apt-get install postgresql) and re-run" >&2
    exit 1
fi
have_postgres
