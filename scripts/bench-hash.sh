#!/usr/bin/env bash
# Benchmark: Shoal's one-pass SHA-256 + SHA-1 pieces of 1 GiB vs mktorrent -t 2 and openssl.
# Usage: scripts/bench-hash.sh   (SHOAL_BENCH_FILE=/path to hash an existing file instead)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v mktorrent >/dev/null || { echo "mktorrent missing: bash .ci/install-deps" >&2; exit 1; }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench -q -p shoal-torrents --bench hash_1gib
