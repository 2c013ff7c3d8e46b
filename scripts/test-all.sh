#!/usr/bin/env bash
# Runs every test in the workspace. Tests that need Redis start their own redis-server
# processes on free loopback ports (the TLS tests with certificates made by `openssl`), and
# the demo's browser tests start chromedriver and headless Chromium, so those binaries must be
# installed; this installs the Debian packages that are missing.
#
# Arguments go to the main `cargo nextest run` / `cargo test` (filters, `-p`, …). Without
# arguments the TLS tests run too, in a second run of just their binaries: they need the
# `tls` feature of session-redis and session-sentinel, which the default build leaves off.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests run: redis-server (Redis and Sentinel tests), redis-tools (its
# redis-cli joins the Redis Cluster tests' nodes), openssl (the TLS tests' certificates),
# chromium and chromium-driver (the demo's browser tests).
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
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
redis-cli --version
chromedriver --version

# Every test runs even when some fail, and the summary at the end lists the failures.
# cargo-nextest (on this project's machines) runs the test binaries side by side, each test in
# its own process; without it, `cargo test --no-fail-fast` runs the same tests one binary at a
# time. Either way `cargo test` without `--workspace` covers the default members: everything
# but the benchmark tool (see Cargo.toml). Doc tests run through `cargo test --doc`.
start=$SECONDS
status=0
summary=""
tls_summary=""
# The TLS test binaries (tests/tls.rs, `required-features = ["tls"]`), with that feature.
tls_run=(-p session-redis -p session-sentinel --features tls --test tls)
if cargo nextest --version >/dev/null 2>&1; then
  log="$(mktemp -t test-all.XXXXXX)"
  tls_log="$(mktemp -t test-tls.XXXXXX)"
  doc_log="$(mktemp -t test-doc.XXXXXX)"
  trap 'rm -f "$log" "$tls_log" "$doc_log"' EXIT
  cargo nextest run --no-fail-fast "$@" 2>&1 | tee "$log" || status=1
  if [ $# -eq 0 ]; then
    cargo nextest run --no-fail-fast "${tls_run[@]}" 2>&1 | tee "$tls_log" || status=1
  fi
  summary="$(grep -E '^ +Summary ' "$log" | tail -1)"
  tls_summary="$(grep -E '^ +Summary ' "$tls_log" | tail -1 || true)"
  passed=0
  failed=0
  for line in "$summary" "$tls_summary"; do
    passed=$(( passed + $(echo "$line" | sed -nE 's/.* ([0-9]+) passed.*/\1/p' | grep . || echo 0) ))
    failed=$(( failed + $(echo "$line" | sed -nE 's/.* ([0-9]+) failed.*/\1/p' | grep . || echo 0) ))
  done
  failures="$(cat "$log" "$tls_log" | grep -E '^ +(FAIL|TIMEOUT|SIGSEGV|SIGABRT) \[' | sort -u || true)"
  cargo test --doc --no-fail-fast "$@" 2>&1 | tee "$doc_log" || status=1
else
  echo "cargo-nextest not found: running the test binaries one at a time with cargo test" >&2
  doc_log="$(mktemp -t test-all.XXXXXX)"
  trap 'rm -f "$doc_log"' EXIT
  cargo test --no-fail-fast "$@" 2>&1 | tee "$doc_log" || status=1
  if [ $# -eq 0 ]; then
    cargo test --no-fail-fast "${tls_run[@]}" 2>&1 | tee -a "$doc_log" || status=1
  fi
  passed=0
  failed=0
  failures=""
fi
[ $# -eq 0 ] || echo "arguments given: the TLS tests did not run (see the top of this script)" >&2
# cargo test's own result lines (doc tests, or everything without nextest).
read -r doc_passed doc_failed < <(awk '/^test result: /{
    for (i = 1; i <= NF; i++) {
      if ($(i + 1) ~ /^passed/) p += $i
      if ($(i + 1) ~ /^failed/) f += $i
    }
  } END { print p + 0, f + 0 }' "$doc_log")
failures="$failures$(grep -E '^test .* \.\.\. FAILED$' "$doc_log" | sed 's/^/        FAIL (cargo test) /' || true)"
passed=$(( ${passed:-0} + doc_passed ))
failed=$(( ${failed:-0} + doc_failed ))

echo
echo "== test summary ($((SECONDS - start)) s) =="
[ -n "$summary" ] && echo "nextest:$summary"
[ -n "$tls_summary" ] && echo "nextest (tls):$tls_summary"
[ -n "$failures" ] && echo "$failures"
echo "total: $passed passed, $failed failed"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then
  echo "test-all: FAILED" >&2
  exit 1
fi
echo "test-all: all passed"
