#!/usr/bin/env bash
# Shared helpers of the loopback benchmarks (bench-shim-pull.sh, bench-cpu-per-gib.sh): processes
# started in the background and stopped on exit, free ports, readiness polls, CPU seconds from
# /proc. Source it from the repository's root with REPO_ROOT set, then call bench_prepare; it
# keeps PIDS, a name -> pid map, and on exit stops every process it started (dockerd last),
# copies the logs to KEEP_LOGS (if set), prints their tails if the run failed and removes W.
declare -A PIDS=()
W=""
# bench_prepare NAME TOOL...: checks the tools, builds shoal unless SHOAL_BIN names one, makes the
# scratch dir W (/tmp/shoal-bench-NAME.*, with W/logs), copies the binary to W/shoal and BASELINE
# (if set) to W/baseline, so a build meanwhile cannot change the run, and sets BIN_NOTE.
bench_prepare() {
    local name=$1 tool; shift
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "$tool missing: bash .ci/install-deps" >&2; exit 1; }
    done
    if [ -z "${SHOAL_BIN:-}" ]; then
        timeout 1800 cargo build -q --release --bin shoal
        SHOAL_BIN=$REPO_ROOT/target/release/shoal
    fi
    W=$(mktemp -d "/tmp/shoal-bench-$name.XXXXXX")
    mkdir -p "$W/logs"
    cp "$SHOAL_BIN" "$W/shoal"
    BIN_NOTE="shoal built $(date -r "$SHOAL_BIN" '+%H:%M'), tree at $(git -C "$REPO_ROOT" rev-parse --short HEAD)"
    if [ -n "${BASELINE:-}" ]; then
        cp "$BASELINE" "$W/baseline"
        BIN_NOTE="$BIN_NOTE; baseline $BASELINE built $(date -r "$BASELINE" '+%H:%M')"
    fi
}
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
# start_registry: docker-registry on a free loopback port, storing under W/registry; sets REG.
start_registry() {
    REG=127.0.0.1:$(port)
    printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
        "$W/registry" "$REG" > "$W/registry.yml"
    start registry docker-registry serve "$W/registry.yml"
    wait_for docker-registry 30 curl -sf --max-time 2 "http://$REG/v2/"
}
# bench_blob NAME MIB REPO: a one-layer image of MIB MiB (cached under /var/tmp/shoal-bench-NAME-cache
# between runs) in a fresh docker-registry (start_registry) as REPO:1; sets LAYOUT, DIGEST, BYTES
# (the layer's size) and HEX.
bench_blob() {
    local cache=/var/tmp/shoal-bench-$1-cache summary
    LAYOUT=$cache/blob-$2
    summary=$(timeout 600 python3 "$REPO_ROOT/bench/shim/benchlib.py" layout "$LAYOUT" --tag 1 --mib "$2")
    DIGEST=$(json 'j["layers"][0]["digest"]' <<<"$summary")
    BYTES=$(json 'j["layer_bytes"]' <<<"$summary")
    HEX=${DIGEST#sha256:}
    start_registry
    timeout 600 skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$LAYOUT:1" "docker://$REG/$3:1"
}
# start_tracker: `shoal tracker` (W/shoal) on a free loopback port; sets TRACKER (its announce URL).
start_tracker() {
    local tp; tp=$(port)
    TRACKER=http://127.0.0.1:$tp/announce
    start tracker env RUST_LOG=warn "$W/shoal" tracker --listen "127.0.0.1:$tp"
    wait_for "shoal tracker" 30 curl -sf --max-time 2 "http://127.0.0.1:$tp/healthz"
}
bench_cleanup() {
    local rc=$?
    for name in "${!PIDS[@]}"; do [ "$name" = dockerd ] || stop "$name"; done
    stop dockerd
    if [ -n "${KEEP_LOGS:-}" ] && [ -n "$W" ]; then mkdir -p "$KEEP_LOGS" && cp -r "$W/logs/." "$KEEP_LOGS/" || true; fi
    if [ "$rc" != 0 ]; then
        echo "FAILED (exit $rc); last lines of the logs:" >&2
        for f in "$W"/logs/*.log; do [ -s "$f" ] && { echo "== $f" >&2; tail -n 15 "$f" >&2; }; done
    fi
    [ -z "$W" ] || rm -rf "$W"
    exit "$rc"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM
