#!/usr/bin/env bash
# Shared helpers of the loopback benchmarks (bench-shim-pull.sh, bench-cpu-per-gib.sh): processes
# started in the background and stopped on exit, free ports, readiness polls, CPU seconds from
# /proc. Source it after setting W (a scratch dir with W/logs); it keeps PIDS, a name -> pid map.
declare -A PIDS=()
log() { echo "[$(date +%H:%M:%S)] $*"; }
die() { echo "error: $*" >&2; exit 1; }
load() { cut -d' ' -f1 /proc/loadavg; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
calc() { awk "BEGIN { print $1 }"; } # calc EXPR: floating point (comparisons give 1 or 0)
since() { calc "$(now) - $1"; }
json() { python3 -c 'import json, sys; print(eval(sys.argv[1], {}, {"j": json.load(sys.stdin)}))' "$1"; }
wait_for() { # wait_for WHAT SECONDS CMD...: poll CMD until it succeeds
    local what=$1 secs=$2; shift 2
    local end=$(( $(date +%s) + secs ))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || die "$what not ready after ${secs}s"
        sleep 0.1
    done
}
start() { # start NAME CMD...: in the background, output to logs/NAME.log
    local name=$1; shift
    "$@" >> "$W/logs/$name.log" 2>&1 &
    PIDS[$name]=$!
}
stop() { # stop NAME: TERM, then KILL after 20 s; only the process this script started
    local name=$1 pid=${PIDS[$1]:-}
    [ -n "$pid" ] || return 0
    unset "PIDS[$name]"
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cpu() { # CPU seconds (user+system) used so far by a started process
    local pid=${PIDS[$1]:-}
    [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || { echo 0; return; }
    awk -v t="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / t }' "/proc/$pid/stat"
}
