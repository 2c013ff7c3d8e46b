#!/usr/bin/env bash
# Runs every test in the workspace. Tests that need Redis start their own redis-server
# processes on free loopback ports, and the demo's browser tests start chromedriver and
# headless Chromium, so those binaries must be installed; this installs the Debian packages
# that are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests run: redis-server (Redis and Sentinel tests), chromium and
# chromium-driver (the demo's browser tests).
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages the tests need: ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
redis-server --version
chromedriver --version

cargo test --workspace "$@"
