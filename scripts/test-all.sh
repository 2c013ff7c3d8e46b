#!/usr/bin/env bash
# Runs every test in the workspace. Tests that need Redis start their own redis-server
# processes on free loopback ports, so the binary must be installed; this installs Debian's
# redis-server package when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server not found: installing Debian's redis-server package" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
redis-server --version

cargo test --workspace "$@"
