#!/usr/bin/env bash
# Seeder restart with 1,000 stored blobs (1 MiB each by default): time to ready and to all-live.
# SHOAL_BENCH_BLOBS / SHOAL_BENCH_BLOB_KIB override the count and size.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p shoal-seeder --bench restart_1000
