#!/usr/bin/env bash
# Runs every fuzz target (proptest, stable: cargo-fuzz needs nightly) longer than `cargo test`
# does: CASES inputs per target (default 100000; `cargo test` runs 256). A failure prints the
# shrunk input and proptest saves it under <crate>/proptest-regressions/ (commit that file: it
# is the corpus every later run starts with). Results go in docs/reliability.md.
#   scripts/fuzz.sh            # 100,000 cases per target
#   CASES=1000000 scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${CASES:-100000}
started=$(date +%s)
PROPTEST_CASES=$cases cargo test \
  -p shoal-torrents -p shoal-tracker -p shoal-registry-shim -p shoal-seeder -p shoal-upstream -p shoal-node \
  --lib fuzz:: 2>&1 | tee /tmp/shoal-fuzz.log | grep -E "^test |test result|panicked|minimal failing input" || true
targets=$(grep -cE "^test fuzz::.* ok$" /tmp/shoal-fuzz.log || true)
failed=$(grep -cE "^test fuzz::.* FAILED$" /tmp/shoal-fuzz.log || true)
echo "fuzz: $targets targets passed, $failed failed, $cases cases per proptest target, $(( $(date +%s) - started )) s"
[ "$failed" -eq 0 ]
