#!/usr/bin/env bash
# Runs the headless-Chromium end-to-end tests of the Menshen demo.
#
#   tests/e2e/run.sh                 # uses target/debug/menshen and target/debug/hipki-standin
#                                    # (build them first: cargo build -p menshen -p menshen-tests --bins)
#   MENSHEN_BIN=target/release/menshen tests/e2e/run.sh
#
# Screenshots go to $MENSHEN_TEST_OUTPUT/e2e/<test>/ (default <repo>/test-output/e2e/). Needs Node 20+ and
# Debian's chromium at /usr/bin/chromium (or CHROMIUM=...); no browser is downloaded.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# A relative MENSHEN_BIN is taken from the caller's directory, not from this one.
if [[ -n "${MENSHEN_BIN:-}" && "${MENSHEN_BIN}" != /* ]]; then
  MENSHEN_BIN="${OLDPWD}/${MENSHEN_BIN}"
  export MENSHEN_BIN
fi

if [[ ! -d node_modules || package-lock.json -nt node_modules ]]; then
  npm ci --no-audit --no-fund
  touch node_modules
fi

shopt -s nullglob
tests=(*.test.mjs)
if (( ${#tests[@]} == 0 )); then
  echo "no *.test.mjs files in $(pwd)" >&2
  exit 1
fi
exec node --test --test-reporter=spec "${tests[@]}"
