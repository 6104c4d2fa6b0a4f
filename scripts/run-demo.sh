#!/usr/bin/env bash
# Run the web server and a Celery worker together on the embedded defaults
# (SQLite and the filesystem broker under var/); Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${DERMCURATE_PORT:-8000}
var_dir=${DERMCURATE_VAR_DIR:-var}
mkdir -p "$var_dir"
# The demo machine may have no route to Google's storage: train from scratch unless told otherwise.
export ML_BASE_WEIGHTS=${ML_BASE_WEIGHTS:-none}

.venv/bin/celery -A config worker -Q default,training --concurrency 2 --loglevel INFO \
  --without-gossip --without-mingle --logfile "$var_dir/worker.log" &
worker=$!
# Celery beat: fails jobs whose worker stopped beating (see DERMCURATE_JOB_STALE_SECONDS).
.venv/bin/celery -A config beat --loglevel INFO --logfile "$var_dir/beat.log" --schedule "$var_dir/celerybeat-schedule" &
beat=$!
.venv/bin/python manage.py runserver "127.0.0.1:$port" --noreload &
web=$!

stop() {
  trap - INT TERM EXIT
  echo
  echo "Stopping the web server, the worker and beat ..."
  kill -TERM "$web" "$worker" "$beat" 2>/dev/null || true
  wait "$web" "$worker" "$beat" 2>/dev/null || true
  echo "Stopped."
}
trap stop INT TERM EXIT

for _ in $(seq 100); do
  .venv/bin/python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/healthz', timeout=1)" \
    2>/dev/null && break
  kill -0 "$web" 2>/dev/null || break
  sleep 0.2
done
echo
echo "DermCurate runs at http://127.0.0.1:$port/  (worker log: $var_dir/worker.log; Ctrl-C stops both)"
echo
wait -n "$web" "$worker" "$beat"
