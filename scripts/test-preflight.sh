#!/usr/bin/env bash
# test-preflight.sh — what `make test` checks before anything else: the Debian packages it needs
# (Chromium for the browser tests; PostgreSQL's server and Redis unless DATABASE_URL /
# CELERY_BROKER_URL point to running ones). Missing ones are installed later with apt, which
# needs root: say so now, before minutes of setup, rather than fail halfway.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ -z "${DATABASE_URL:-}" ] \
  && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if [ -z "${CELERY_BROKER_URL:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
  missing+=(redis-server)
fi

if [ ${#missing[@]} -eq 0 ] || [ "$(id -u)" = 0 ]; then
  exit 0
fi
cat >&2 <<EOF
make test needs Debian packages that are missing: ${missing[*]}.
Installing them needs root. Run once:

    sudo apt-get install -y ${missing[*]}

then make test again (or run make test as root, and it installs them itself).
EOF
exit 1
