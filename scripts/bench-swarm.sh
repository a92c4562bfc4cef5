#!/usr/bin/env bash
# Swarm lab benchmark (issue 7): shaped namespaces, N hosts pull one blob at once.
# Usage: sudo scripts/bench-swarm.sh [--hosts 16 --rate-mbit 100 --size-mib 128 --stagger 0 --scenarios direct,aria2]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p shoal
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
exec timeout 1800 python3 bench/swarm/lab.py --shoal target/release/shoal "$@"
