#!/usr/bin/env bash
# Swarm lab benchmark (issue 7): shaped namespaces, N hosts pull one blob at once, through
# direct HTTP, aria2c+opentracker and Shoal (tracker, seeder, one shim per host) in one run.
# Usage: sudo scripts/bench-swarm.sh [--hosts 16 --rate-mbit 100 --size-mib 128 --stagger 0
#                                     --scenarios direct,aria2,shoal --json-out FILE]
# Sweep + plot: python3 bench/swarm/sweep.py (see its --help; needs python3-matplotlib).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release --bin shoal
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
exec timeout 3600 python3 bench/swarm/lab.py --shoal target/release/shoal "$@"
