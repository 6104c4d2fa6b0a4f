#!/usr/bin/env bash
# apt-ensure.sh COMMAND PACKAGE... — install Debian packages unless COMMAND already exists.
set -euo pipefail
command_name=$1; shift
if command -v "$command_name" >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "$command_name is missing; install it with: sudo apt-get install -y $*" >&2
  exit 1
fi
echo "Installing $* (for $command_name) ..."
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1 \
  || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "$@" >/dev/null; }
