#!/usr/bin/env bash
# Stock seeders benchmark (issue #25): runs interop-tests/tests/stock_seeders.rs RUNS times
# (default 3), one test at a time so the clients do not share the CPU, and tabulates the lines
# it prints: per stock client, the shim's time to pull the 20 MiB layer with that client as the
# only seeding peer, aria2c's time from the same client, and their ratio. Target: ratio <= 2.0.
# Exits 1 when a test failed or a client's worst ratio is over the target.
# Usage: [RUNS=3] [TARGET=2.0] bench/stock-seeders.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
TARGET=${TARGET:-2.0}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

cargo test -q -p shoal-interop-tests --test stock_seeders --no-run
failed=0
for run in $(seq 1 "$RUNS"); do
  echo "run $run of $RUNS" >&2
  # A failed test still prints its line (bytes by source) before it asserts: keep going.
  if ! cargo test -q -p shoal-interop-tests --test stock_seeders -- --nocapture --test-threads=1 >"$log.run" 2>&1; then
    failed=1
    grep -E '^test .* FAILED|panicked' "$log.run" >&2 || true
  fi
  # `cargo test -q` prints a dot per passed test without a newline, so a line may start mid-line.
  grep -o 'stock seeder .*' "$log.run" | tee -a "$log" >&2
done
rm -f "$log.run"

# Lines: stock seeder NAME: shim T s, aria2c T s, ratio R, peers bytes N of SIZE
awk -v target="$TARGET" '
  /^stock seeder / {
    c = $3; sub(":", "", c); r = $11; sub(",", "", r)
    if (!(c in n)) order[++k] = c
    n[c]++; shim[c] += $5; aria[c] += $8; ratio[c] += r
    if (r + 0 > worst[c] + 0) worst[c] = r
    if ($14 == $16) allpeers[c]++
  }
  END {
    printf "%-13s %5s %9s %10s %11s %11s %11s\n", "client", "runs", "shim s", "aria2c s", "ratio", "worst", "all peers"
    bad = 0
    for (i = 1; i <= k; i++) {
      c = order[i]
      flag = (worst[c] + 0 <= target + 0) ? "" : "  over target"
      if (flag != "") bad = 1
      printf "%-13s %5d %9.2f %10.2f %11.2f %11.2f %8d/%-2d%s\n", c, n[c], shim[c] / n[c], aria[c] / n[c],
        ratio[c] / n[c], worst[c], allpeers[c], n[c], flag
    }
    printf "target: ratio <= %s (means over runs; worst is the highest single run)\n", target
    exit bad
  }' "$log" || failed=1
exit "$failed"
