#!/usr/bin/env bash
# Run the web server and a Celery worker together on the embedded defaults;
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${DERMCURATE_PORT:-8000}
mkdir -p var

.venv/bin/celery -A config worker -Q default,training --concurrency 2 --loglevel INFO \
  --without-gossip --without-mingle --logfile var/worker.log &
worker=$!
.venv/bin/python manage.py runserver "127.0.0.1:$port" --noreload &
web=$!

stop() {
  trap - INT TERM EXIT
  echo
  echo "Stopping the web server and the worker ..."
  kill -TERM "$web" "$worker" 2>/dev/null || true
  wait "$web" "$worker" 2>/dev/null || true
  echo "Stopped."
}
trap stop INT TERM EXIT

sleep 2
echo
echo "DermCurate runs at http://127.0.0.1:$port/  (worker log: var/worker.log; Ctrl-C stops both)"
echo
wait -n "$web" "$worker"
