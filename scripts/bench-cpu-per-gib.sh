#!/usr/bin/env bash
# Benchmark of CPU per delivered byte (issue 18): one blob (1 GiB) over loopback, three ways, the
# CPU seconds (user + system, from /proc/<pid>/stat and wait4) of every process involved:
#   shoal:  seeder -> fresh shim -> `curl -o /dev/null`     (shim + seeder; curl's shown apart)
#   aria2c: aria2c downloads the same torrent from the same seeder (aria2c + seeder)
#   direct: docker-registry -> `curl -o /dev/null`          (docker-registry + curl)
# Each rep runs all three, in an order that rotates per rep; it prints CPU-seconds per GiB for
# each, their medians and the ratios, and (full runs) appends rows to docs/benchmarks.md.
# The seeder holds the blob before the first rep (`shoal magnets`), so every shim and aria2c
# download is BitTorrent from it; the run fails if a shim took any byte from its webseed or
# upstream, or a download's SHA-256 is wrong.
#
# Usage: scripts/bench-cpu-per-gib.sh [--smoke] [--reps N] [--mib M] [--no-record]
#        [--baseline-shoal BIN] [--keep-logs DIR]
#   --smoke   64 MiB, 1 rep, no docs row: a CI check that it produces its figures (< 1 min)
#   --baseline-shoal BIN  each rep also runs the shoal way with BIN's seeder and shim (its own
#             seeder process over the same data), order rotating with the others: A/B of a change
#   SHOAL_BIN=path uses an existing binary instead of `cargo build --release --bin shoal`.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO_ROOT=$PWD

SMOKE=0 REPS=5 MIB=1024 RECORD=1 BASELINE="" KEEP_LOGS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) SMOKE=1 ;;
        --reps) REPS=$2; shift ;;
        --mib) MIB=$2; shift ;;
        --no-record) RECORD=0 ;;
        --baseline-shoal) BASELINE=$2; shift ;;
        --keep-logs) KEEP_LOGS=$2; shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
[ -z "$BASELINE" ] || [ -x "$BASELINE" ] || { echo "--baseline-shoal $BASELINE: not an executable" >&2; exit 2; }
[ "$SMOKE" = 0 ] || { MIB=64 REPS=1 RECORD=0; }
[ "$MIB" = 1024 ] || RECORD=0

. scripts/bench-lib.sh
bench_prepare cpu docker-registry skopeo aria2c curl python3 timeout sha256sum
HELPER="python3 $REPO_ROOT/bench/shim/benchlib.py"

# CPU of a started process once it has gone quiet: a download's last bytes are verified, renamed
# and announced just after the client's last byte, and that work is part of the byte's cost.
settled_cpu() {
    local a b
    b=$(cpu "$1")
    for _ in $(seq 50); do
        sleep 0.2
        a=$b b=$(cpu "$1")
        [ "$a" != "$b" ] || break
    done
    echo "$b"
}
per_gib() { calc "$1 * 1073741824 / $BYTES"; }

# --- the blob and the upstream ---------------------------------------------------------------
bench_blob cpu "$MIB" bench/cpu
log "blob $DIGEST, $((BYTES >> 20)) MiB (cached under $LAYOUT); $BIN_NOTE"

start_tracker

start_seeder() { # start_seeder BIN: a seeder over $W/seeder (kept between binaries)
    stop seeder
    local sp; sp=$(port)
    SEEDER=http://127.0.0.1:$sp
    start seeder env RUST_LOG=info,librqbit=warn "$1" seeder --data-dir "$W/seeder" \
        --listen "127.0.0.1:$sp" --bt-listen "127.0.0.1:$(port)" --tracker "$TRACKER" --upstream "$REG"
    wait_for "shoal seeder" 60 curl -sf --max-time 2 "$SEEDER/healthz"
    SEEDER_BIN=$1
}
start_seeder "$W/shoal"
timeout 600 "$W/shoal" magnets "$REG/bench/cpu:1" --seeder "$SEEDER" > "$W/logs/magnets.txt"
# aria2c gets the seeder's torrent without its url-list (same info dictionary, same infohash),
# so every byte it downloads is BitTorrent, like the shim's.
timeout 600 "$W/shoal" torrent "$LAYOUT/blobs/sha256/$HEX" --tracker "$TRACKER" -o "$W/blob.torrent" > /dev/null
grep -q "$("$W/shoal" magnet "$W/blob.torrent" | sed 's/.*btih:\([0-9a-f]*\).*/\1/')" "$W/logs/magnets.txt" ||
    die "the torrent aria2c gets does not have the seeder's infohash"
log "the seeder holds the blob; registry $REG, seeder $SEEDER"

# --- the three ways --------------------------------------------------------------------------
curl_blob() { # curl_blob URL: "CPU WALL" of curl -o /dev/null; checks the size (the stored copies' SHA-256 are checked apart)
    local out
    out=$($HELPER cpu curl -sf --max-time 600 -o /dev/null -w '%{size_download}\n' "$1" 2>&1) || die "curl $1: $out"
    [ "$(head -1 <<<"$out")" = "$BYTES" ] || die "curl $1: $(head -1 <<<"$out") bytes, want $BYTES"
    tail -1 <<<"$out"
}
run_direct() {
    local r0 c wall
    r0=$(settled_cpu registry)
    read -r c wall <<<"$(curl_blob "http://$REG/v2/bench/cpu/blobs/$DIGEST")"
    R_SERVER=$(calc "$(settled_cpu registry) - $r0") R_CLIENT=$c R_WALL=$wall
}
run_shoal() { # run_shoal BIN: a fresh shim of BIN (and BIN's seeder) -> curl
    local bin=$1 hp s0 h0 c wall
    [ "$SEEDER_BIN" = "$bin" ] || start_seeder "$bin"
    stop shim; rm -rf "$W/shim"
    hp=$(port)
    start shim env RUST_LOG=info,librqbit=warn "$bin" shim --listen "127.0.0.1:$hp" --data-dir "$W/shim" \
        --upstream "$REG" --seeder "$SEEDER" --tracker "$TRACKER" --bt-listen "127.0.0.1:$(port)"
    wait_for "shoal shim" 60 curl -sf --max-time 2 "http://127.0.0.1:$hp/v2/"
    s0=$(settled_cpu seeder) h0=$(settled_cpu shim)
    read -r c wall <<<"$(curl_blob "http://127.0.0.1:$hp/v2/bench/cpu/blobs/$DIGEST")"
    # The client's last byte leaves once the SHA-256 matched; the store's fsync and rename
    # come after (the fsync waits on the disk, so "settled" alone could come before it).
    wait_for "the shim's stored blob" 60 test -s "$W/shim/blobs/sha256/$HEX"
    S_SHIM=$(calc "$(settled_cpu shim) - $h0") S_SEEDER=$(calc "$(settled_cpu seeder) - $s0") S_CLIENT=$c S_WALL=$wall
    local metrics; metrics=$(curl -sf --max-time 5 "http://127.0.0.1:$hp/metrics")
    for src in webseed upstream; do
        grep -q "^shoal_shim_blob_bytes_total{source=\"$src\"} [1-9]" <<<"$metrics" &&
            die "the shim took bytes from its $src: $(grep '^shoal_shim_blob_bytes_total' <<<"$metrics" | tr '\n' ' ')"
    done
    grep -q "^shoal_shim_blob_bytes_total{source=\"peers\"} $BYTES\$" <<<"$metrics" ||
        die "the shim did not take the whole blob from peers: $(grep '^shoal_shim_blob_bytes_total' <<<"$metrics" | tr '\n' ' ')"
    [ "$(sha256sum < "$W/shim/blobs/sha256/$HEX" | cut -d' ' -f1)" = "$HEX" ] || die "the shim's stored blob is wrong"
    stop shim
}
run_aria2() {
    local s0 c wall out
    [ "$SEEDER_BIN" = "$W/shoal" ] || start_seeder "$W/shoal"
    rm -rf "$W/aria2"
    s0=$(settled_cpu seeder)
    out=$($HELPER cpu timeout 600 aria2c -q --seed-time=0 --enable-dht=false --enable-dht6=false \
        --bt-enable-lpd=false --enable-peer-exchange=false --file-allocation=none --bt-stop-timeout=120 \
        --listen-port="$(port)" -d "$W/aria2" "$W/blob.torrent" 2>&1) || die "aria2c failed: $out"
    read -r c wall <<<"$(tail -1 <<<"$out")"
    A_SEEDER=$(calc "$(settled_cpu seeder) - $s0") A_CLIENT=$c A_WALL=$wall
    [ "$(sha256sum < "$W/aria2/sha256-$HEX" | cut -d' ' -f1)" = "$HEX" ] || die "aria2c's download is wrong"
    rm -rf "$W/aria2"
}

# One uncounted shim download first: the first new page-cache pages after the setup cost this
# VM a host fault each (docs/benchmarks.md, "where a cold pull's time goes"), and the first rep
# of every way ran 1.5-2.5x the CPU of the next ones whichever binary it was.
run_shoal "$W/shoal"
log "warm-up (not counted): shim CPU $S_SHIM s, seeder $S_SEEDER s"
WAYS=(shoal aria2 direct)
[ -z "$BASELINE" ] || WAYS+=(baseline)
declare -A FIG=() # FIG[way,rep] = CPU seconds per GiB (the way's pair of processes)
LOADS=()
for rep in $(seq "$REPS"); do
    n=${#WAYS[@]}
    for i in $(seq 0 $((n - 1))); do
        way=${WAYS[$(( (i + rep - 1) % n ))]}
        LOADS+=("$(load)")
        case $way in
        shoal|baseline)
            [ "$way" = shoal ] && bin=$W/shoal || bin=$W/baseline
            run_shoal "$bin"
            FIG[$way,$rep]=$(per_gib "$(calc "$S_SHIM + $S_SEEDER")")
            log "rep $rep $way: ${S_WALL}s; CPU shim $S_SHIM s + seeder $S_SEEDER s = ${FIG[$way,$rep]} s/GiB (curl $S_CLIENT s)" ;;
        aria2)
            run_aria2
            FIG[$way,$rep]=$(per_gib "$(calc "$A_CLIENT + $A_SEEDER")")
            log "rep $rep aria2c: ${A_WALL}s; CPU aria2c $A_CLIENT s + seeder $A_SEEDER s = ${FIG[$way,$rep]} s/GiB" ;;
        direct)
            run_direct
            FIG[$way,$rep]=$(per_gib "$(calc "$R_SERVER + $R_CLIENT")")
            log "rep $rep direct: ${R_WALL}s; CPU docker-registry $R_SERVER s + curl $R_CLIENT s = ${FIG[$way,$rep]} s/GiB" ;;
        esac
    done
done

# --- report ----------------------------------------------------------------------------------
col() { local w=$1 r; for r in $(seq "$REPS"); do printf '%s ' "${FIG[$w,$r]}"; done; }
med() { # shellcheck disable=SC2046
    $HELPER median $(col "$1"); }
ratio() { printf '%.2f' "$(calc "$1 / $2")"; }
met() { if [ "$(calc "$1")" = 1 ]; then echo met; else echo "NOT met"; fi; }
SH=$(med shoal) AR=$(med aria2) DI=$(med direct)
R_DI=$(ratio "$SH" "$DI") R_AR=$(ratio "$SH" "$AR")
LOAD_RANGE="$(printf '%s\n' "${LOADS[@]}" | sort -g | head -1)-$(printf '%s\n' "${LOADS[@]}" | sort -g | tail -1)"
echo
echo "CPU per GiB, $((BYTES >> 20)) MiB blob over loopback, median of $REPS; 1-min load $LOAD_RANGE before the runs; $BIN_NOTE"
[ "$SMOKE" = 0 ] || echo "SMOKE RUN: a small blob; the figures check that it works, not how fast"
fmt='%-46s %-12s %s\n'
printf "$fmt" "way (processes counted)" "CPU s/GiB" "each rep"
printf "$fmt" "shoal (shim + seeder)" "$SH" "$(col shoal)"
[ -z "$BASELINE" ] || printf "$fmt" "baseline shoal (shim + seeder)" "$(med baseline)" "$(col baseline)"
printf "$fmt" "aria2c (aria2c + seeder)" "$AR" "$(col aria2)"
printf "$fmt" "direct (docker-registry + curl)" "$DI" "$(col direct)"
echo "shoal / direct $R_DI (target <= 1.5: $(met "$R_DI <= 1.5")); shoal / aria2c $R_AR (target <= 1.0: $(met "$R_AR <= 1.0"))"
[ -z "$BASELINE" ] || echo "shoal / baseline $(ratio "$SH" "$(med baseline)")"

if [ "$RECORD" = 1 ]; then
    DOC=$REPO_ROOT/docs/benchmarks.md
    md() { local v; v=$(met "$1"); [ "$v" = met ] && echo met || echo "**not met**"; }
    [ -z "$(tail -c1 "$DOC")" ] || echo >> "$DOC"
    cat >> "$DOC" <<EOF
| $(date '+%Y-%m-%d %H:%M') (load $LOAD_RANGE) | CPU per GiB on the swarm path: seeder -> fresh shim -> curl, shim + seeder CPU, median of $REPS ($BIN_NOTE) | \`scripts/bench-cpu-per-gib.sh\` | $SH s/GiB (reps: $(col shoal)) | docker-registry + curl $DI s/GiB ($(col direct)); aria2c + seeder $AR s/GiB ($(col aria2)) | vs direct $R_DI; vs aria2c $R_AR | <= 1.5x direct: $(md "$R_DI <= 1.5"); <= aria2c: $(md "$R_AR <= 1.0") |
EOF
    log "appended a row to docs/benchmarks.md"
fi
