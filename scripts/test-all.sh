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

# Every test binary runs even when one fails (--no-fail-fast); the summary below says which
# failed. `cargo test` without `--workspace` covers the default members: everything but the
# benchmark tool (see Cargo.toml).
log="$(mktemp -t test-all.XXXXXX)"
trap 'rm -f "$log"' EXIT
start=$SECONDS
set +e
cargo test --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

echo
echo "== test summary ($((SECONDS - start)) s) =="
awk '
  /^     Running / { binary = $2 }
  /^   Doc-tests / { binary = "doc-tests " $2 }
  /^test .* \.\.\. FAILED$/ { failed_tests[++nf] = binary ": " $2 }
  /^test result: / {
    for (i = 1; i <= NF; i++) {
      if ($(i + 1) ~ /^passed/) passed += $i
      if ($(i + 1) ~ /^failed/) { failed += $i; if ($i > 0) failed_bins[++nb] = binary }
      if ($(i + 1) ~ /^ignored/) ignored += $i
    }
    binaries++
  }
  /^error: (could not compile|test failed)/ { errors[++ne] = $0 }
  END {
    for (i = 1; i <= nf; i++) print "FAILED  " failed_tests[i]
    for (i = 1; i <= ne; i++) print "ERROR   " errors[i]
    printf "%d test binaries run, %d ignored\n", binaries, ignored
    printf "%d passed, %d failed\n", passed, failed
  }' "$log"
if [ "$status" -ne 0 ]; then
  echo "test-all: FAILED (cargo test exited $status)" >&2
else
  echo "test-all: all passed"
fi
exit "$status"
