#!/usr/bin/env bash
# What fresh memory costs on this machine, which sets how much a 1 GiB write costs:
#   1. touching 1 GiB of never-touched anonymous memory, then touching it again;
#   2. writing a new 1 GiB file (the page cache takes fresh pages), then overwriting it in place.
# On the 2-core Firecracker VMs this project runs on, free page reporting hands freed memory back
# to the host at once (/sys/module/page_reporting/parameters/), so the first touch of a page
# costs a host fault each time: 1 and 2 show it as the gap between the two figures.
# Usage: scripts/probe-first-touch.sh [REPS] [DIR]   (DIR: where the test file goes, default /tmp)
set -euo pipefail
REPS=${1:-3} DIR=${2:-/tmp}
F=$(mktemp "$DIR/shoal-first-touch.XXXXXX")
trap 'rm -f "$F"' EXIT
for _ in $(seq "$REPS"); do
    python3 - <<'PY'
import mmap, time
m = mmap.mmap(-1, 1 << 30)
t = time.perf_counter()
for i in range(0, 1 << 30, 4096):
    m[i] = 1
first = time.perf_counter() - t
t = time.perf_counter()
for i in range(0, 1 << 30, 4096):
    m[i] = 2
print(f"anonymous 1 GiB: first touch {first:.2f} s, second {time.perf_counter() - t:.2f} s")
PY
    rm -f "$F"
    new=$( { dd if=/dev/zero of="$F" bs=1M count=1024 2>&1; } | awk '/copied/ { print $(NF-3) }')
    again=$( { dd if=/dev/zero of="$F" bs=1M count=1024 conv=notrunc 2>&1; } | awk '/copied/ { print $(NF-3) }')
    echo "file 1 GiB: new ${new} s, overwritten in place ${again} s"
done
for p in /sys/module/page_reporting/parameters/*; do
    [ -r "$p" ] && echo "$(basename "$p") = $(cat "$p")"
done
exit 0
