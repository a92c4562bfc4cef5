#!/usr/bin/env bash
# Benchmark of the registry shim (issue 5), one run on loopback, against the upstream
# docker-registry it fronts:
#   1. cold `docker pull` of a 3-layer ~1 GiB image through the shim (empty shim data dir, image
#      not in the daemon, the seeder already holds the blobs: they arrive over BitTorrent) vs
#      `docker pull` of the same image straight from docker-registry   (target <= 1.25x);
#   2. warm pull (shim cache hit, image removed from the daemon again)  (target <= 1.0x);
#   3. time to first byte of a 1 GiB blob the shim lacks, (a) the seeder holds it (< 500 ms),
#      (b) no one holds it yet: fresh seeder and shim data (< 1 s).
# It starts its own dockerd, docker-registry, shoal tracker/seeder/shim on free ports, prints a
# table, and (full runs) appends rows to docs/benchmarks.md. Everything it starts is stopped and
# its temporary files removed on exit.
#
# Usage: scripts/bench-shim-pull.sh [--smoke] [--reps N] [--cache DIR] [--no-record]
#        [--storage-driver overlay2|vfs] [--keep-logs DIR] [--pull-only [--baseline-shoal BIN]]
#   --smoke   ~30 MiB image, 64 MiB TTFB blob, 1 repetition, no docs row: a CI check (< 1 min)
#   --pull-only  parts 1 and 2 only (no TTFB probes, no docs rows): for A/B runs of a change
#   --baseline-shoal BIN  with --pull-only: each rep also pulls cold and warm through BIN's seeder
#             and shim, after this binary's in odd reps and before it in even ones, and prints
#             both against the same direct pulls
#   --cache   where the generated OCI layouts are kept between runs
#             [default: /var/tmp/shoal-bench-shim-cache]
#   SHOAL_BIN=path uses an existing binary instead of `cargo build --release --bin shoal`.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO_ROOT=$PWD

SMOKE=0 REPS=3 CACHE=/var/tmp/shoal-bench-shim-cache RECORD=1 DRIVER="" KEEP_LOGS="" PULL_ONLY=0 BASELINE=""
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) SMOKE=1 ;;
        --reps) REPS=$2; shift ;;
        --cache) CACHE=$2; shift ;;
        --no-record) RECORD=0 ;;
        --storage-driver) DRIVER=$2; shift ;;
        --keep-logs) KEEP_LOGS=$2; shift ;;
        --pull-only) PULL_ONLY=1 RECORD=0 ;;
        --baseline-shoal) BASELINE=$2; shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
[ -z "$BASELINE" ] || [ "$PULL_ONLY" = 1 ] || { echo "--baseline-shoal needs --pull-only" >&2; exit 2; }
[ -z "$BASELINE" ] || [ -x "$BASELINE" ] || { echo "--baseline-shoal $BASELINE: not an executable" >&2; exit 2; }
if [ "$SMOKE" = 1 ]; then
    PULL_MIB=10,10,10 TTFB_MIB=64 REPS=1 RECORD=0
else
    PULL_MIB=342,341,341 TTFB_MIB=1024
fi

[ "$(id -u)" = 0 ] || { echo "run as root (it starts its own dockerd)" >&2; exit 1; }
. scripts/bench-lib.sh
bench_prepare shim dockerd docker docker-registry skopeo curl python3 timeout
HELPER="python3 $REPO_ROOT/bench/shim/benchlib.py"
SHOAL_BIN=$W/shoal
RUN_BIN=$SHOAL_BIN # the binary start_seeder and start_fresh_shim run

switches() { # context switches so far of a started process's live threads (exited ones drop out)
    local pid=${PIDS[$1]:-}
    cat /proc/"$pid"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { n += $2 } END { print n + 0 }'
}
written() { # bytes a started process has written to storage so far
    local pid=${PIDS[$1]:-}
    awk '/^write_bytes/ { print $2 }' "/proc/$pid/io" 2>/dev/null || echo 0
}
median() { $HELPER median "$@"; }

# --- the images, generated once into the cache ---------------------------------------------
mkdir -p "$CACHE"
PULL_DIR="$CACHE/pull-${PULL_MIB//,/-}"
TTFB_DIR="$CACHE/ttfb-$TTFB_MIB"
log "OCI layouts under $CACHE (generated on first use)"
PULL_SUMMARY=$(timeout 600 $HELPER layout "$PULL_DIR" --tag 1 --mib "$PULL_MIB")
TTFB_SUMMARY=$(timeout 600 $HELPER layout "$TTFB_DIR" --tag 1 --mib "$TTFB_MIB")
PULL_BYTES=$(json 'j["layer_bytes"]' <<<"$PULL_SUMMARY")
PULL_CONFIG=$(json 'j["config"]' <<<"$PULL_SUMMARY")
TTFB_DIGEST=$(json 'j["layers"][0]["digest"]' <<<"$TTFB_SUMMARY")
TTFB_BYTES=$(json 'j["layer_bytes"]' <<<"$TTFB_SUMMARY")
log "pull image: 3 layers, $((PULL_BYTES >> 20)) MiB, config $PULL_CONFIG"
log "ttfb blob: $((TTFB_BYTES >> 20)) MiB $TTFB_DIGEST"

# --- upstream: docker-registry ---------------------------------------------------------------
start_registry
t0=$(now)
timeout 600 skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$PULL_DIR:1" "docker://$REG/bench/pull:1"
[ "$PULL_ONLY" = 1 ] ||
    timeout 600 skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$TTFB_DIR:1" "docker://$REG/bench/ttfb:1"
log "pushed both images to docker-registry $REG in $(since "$t0") s"

# --- our own Docker daemon -------------------------------------------------------------------
DK=$W/docker
export DOCKER_HOST=unix://$DK/docker.sock DOCKER_CONFIG=$W/docker-config
start_dockerd() {
    mkdir -p "$DK"
    start dockerd dockerd --storage-driver="$1" --iptables=false --bridge=none \
        --data-root="$DK/root" --exec-root="$DK/exec" -H "$DOCKER_HOST" --pidfile "$DK/pid"
    local end=$(( $(date +%s) + 60 ))
    until timeout 10 docker info >/dev/null 2>&1; do
        kill -0 "${PIDS[dockerd]}" 2>/dev/null && [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.2
    done
}
if [ -n "$DRIVER" ]; then
    start_dockerd "$DRIVER" || die "dockerd with $DRIVER did not start"
elif start_dockerd overlay2; then
    DRIVER=overlay2
else
    log "dockerd with overlay2 did not start; using vfs"
    stop dockerd; rm -rf "$DK"
    start_dockerd vfs || die "dockerd with vfs did not start"
    DRIVER=vfs
fi
log "dockerd ready, storage driver $(docker info -f '{{.Driver}}')"

# Removes every image and layer from the daemon, and checks that the layers are gone.
docker_empty() {
    docker image ls -aq | sort -u | xargs -r timeout 120 docker rmi -f >/dev/null
    timeout 120 docker image prune -af >/dev/null
    [ -z "$(docker image ls -aq)" ] || die "images left in the daemon"
    local layers=0 layerdb=$DK/root/image/$DRIVER/layerdb/sha256
    [ ! -d "$layerdb" ] || layers=$(find "$layerdb" -mindepth 1 -maxdepth 1 | wc -l)
    [ "$layers" = 0 ] || die "$layers layers left in the daemon"
    sync
}
# docker_pull IMAGE: prints the seconds `docker pull` took; checks the image's ID (its config).
docker_pull() {
    local t0 t
    t0=$(now)
    timeout 900 docker pull -q "$1" >/dev/null || die "docker pull $1 failed"
    t=$(since "$t0")
    [ "$(docker image inspect -f '{{.Id}}' "$1")" = "$PULL_CONFIG" ] || die "docker pull $1: wrong image"
    echo "$t"
}

# --- Shoal: tracker, seeder, shim as separate processes --------------------------------------
start_tracker

SEEDERS=0
start_seeder() { # a seeder over $W/seeder (kept as it is)
    SEEDERS=$((SEEDERS + 1))
    local sp; sp=$(port)
    SEEDER=http://127.0.0.1:$sp
    start seeder env RUST_LOG=info,librqbit=warn "$RUN_BIN" seeder --data-dir "$W/seeder" \
        --listen "127.0.0.1:$sp" --bt-listen "127.0.0.1:$(port)" --tracker "$TRACKER" --upstream "$REG"
    wait_for "shoal seeder" 60 curl -sf --max-time 2 "$SEEDER/healthz"
}
SHIMS=0
start_fresh_shim() { # a shim over an empty data dir
    stop shim
    rm -rf "$W/shim"
    SHIMS=$((SHIMS + 1))
    local hp; hp=$(port)
    SHIM=127.0.0.1:$hp
    start shim env RUST_LOG=info,librqbit=warn "$RUN_BIN" shim --listen "$SHIM" --data-dir "$W/shim" \
        --upstream "$REG" --seeder "$SEEDER" --tracker "$TRACKER" --bt-listen "127.0.0.1:$(port)"
    wait_for "shoal shim" 60 curl -sf --max-time 2 "http://$SHIM/v2/"
}
shim_bytes() { # shim_bytes SOURCE: blob bytes the shim has fetched from peers|webseed|upstream
    curl -sf --max-time 5 "http://$SHIM/metrics" |
        awk -v s="$1" '$1 == "shoal_shim_blob_bytes_total{source=\"" s "\"}" { v = $2 } END { printf "%d\n", v + 0 }'
}

start_seeder
t0=$(now)
timeout 600 "$SHOAL_BIN" magnets "$REG/bench/pull:1" --seeder "$SEEDER" > "$W/logs/magnets-pull.txt"
[ "$PULL_ONLY" = 1 ] ||
    timeout 600 "$SHOAL_BIN" magnets "$REG/bench/ttfb:1" --seeder "$SEEDER" > "$W/logs/magnets-ttfb.txt"
log "seeder pre-mirrored both images in $(since "$t0") s (shoal magnets)"

# --- 1 and 2: docker pull, direct / cold through the shim / warm through the shim -----------
# cold_and_warm COLD_ARRAY WARM_ARRAY [LABEL]: a cold pull through a fresh shim, then a warm one
cold_and_warm() {
    local -n cold=$1 warm=$2
    local label=${3:+ ($3)} c0 s0 w0 x0 t
    start_fresh_shim
    docker_empty
    LOADS+=("$(load)")
    c0=$(cpu shim) s0=$(cpu seeder) w0=$(written shim) x0=$(switches seeder)
    t=$(docker_pull "$SHIM/bench/pull:1"); cold+=("$t")
    peers=$(shim_bytes peers) webseed=$(shim_bytes webseed) upstream=$(shim_bytes upstream)
    log "rep $rep cold through the shim$label: ${t}s (load $(load); bytes peers $peers, webseed $webseed," \
        "upstream $upstream; shim CPU $(calc "$(cpu shim) - $c0") s, seeder CPU" \
        "$(calc "$(cpu seeder) - $s0") s, $(( $(switches seeder) - x0 )) context switches; shim wrote $(( ($(written shim) - w0) >> 20 )) MiB)"
    [ "$upstream" = 0 ] || die "the cold pull took $upstream bytes from upstream, not the swarm"
    [ $((peers + webseed)) -ge "$PULL_BYTES" ] || die "the cold pull's layers did not come through the swarm"
    [ "$peers" -gt 0 ] || die "the cold pull got nothing over BitTorrent (all from the webseed)"
    [ "$webseed" = 0 ] || log "note: $webseed bytes came from the seeder's webseed (HTTP fallback), not BitTorrent"
    [ -n "$label" ] || COLD_SPLIT+=("$((peers >> 20))/$((webseed >> 20))")
    if [ -n "$label" ]; then SHIM_CPU_B+=("$(calc "$(cpu shim) - $c0")"); else SHIM_CPU+=("$(calc "$(cpu shim) - $c0")"); fi

    docker_empty
    LOADS+=("$(load)")
    c0=$(cpu shim)
    t=$(docker_pull "$SHIM/bench/pull:1"); warm+=("$t")
    [ "$(shim_bytes peers)" = "$peers" ] && [ "$(shim_bytes webseed)" = "$webseed" ] &&
        [ "$(shim_bytes upstream)" = 0 ] || die "the warm pull fetched blob bytes again"
    log "rep $rep warm through the shim$label: ${t}s (load $(load); shim CPU $(calc "$(cpu shim) - $c0") s)"
}
DIRECT=() COLD=() WARM=() COLD_B=() WARM_B=() LOADS=() COLD_SPLIT=() SHIM_CPU=() SHIM_CPU_B=()
# A fresh dockerd's first pull runs 2-3 s slower than the next ones, whichever registry it
# comes from: one uncounted direct pull first, so rep 1 measures what the others do.
docker_empty
log "warm-up direct pull (not counted): $(docker_pull "$REG/bench/pull:1")s"
for rep in $(seq "$REPS"); do
    docker_empty
    LOADS+=("$(load)")
    c0=$(cpu registry)
    t=$(docker_pull "$REG/bench/pull:1"); DIRECT+=("$t")
    log "rep $rep direct: ${t}s (load $(load); docker-registry CPU $(calc "$(cpu registry) - $c0") s)"

    if [ -z "$BASELINE" ]; then
        cold_and_warm COLD WARM
    else # each binary with its own seeder, restarted over the same data; the order alternates
        for which in $( ((rep % 2)) && echo "new baseline" || echo "baseline new"); do
            if [ "$which" = new ]; then
                RUN_BIN=$SHOAL_BIN; stop seeder; start_seeder
                cold_and_warm COLD WARM
            else
                RUN_BIN=$W/baseline; stop seeder; start_seeder
                cold_and_warm COLD_B WARM_B baseline
            fi
        done
    fi
done
docker_empty
if [ "$PULL_ONLY" = 1 ]; then
    echo "pull only, median of $REPS ($BIN_NOTE): direct ${DIRECT[*]}; cold ${COLD[*]}; warm ${WARM[*]}"
    D=$(median "${DIRECT[@]}")
    echo "cold/direct $(awk "BEGIN { printf \"%.2f\", $(median "${COLD[@]}") / $D }")" \
        "warm/direct $(awk "BEGIN { printf \"%.2f\", $(median "${WARM[@]}") / $D }")"
    if [ -n "$BASELINE" ]; then
        echo "baseline: cold ${COLD_B[*]}; warm ${WARM_B[*]}"
        echo "baseline cold/direct $(awk "BEGIN { printf \"%.2f\", $(median "${COLD_B[@]}") / $D }")" \
            "warm/direct $(awk "BEGIN { printf \"%.2f\", $(median "${WARM_B[@]}") / $D }")"
        echo "shim CPU per cold pull: new ${SHIM_CPU[*]} (median $(median "${SHIM_CPU[@]}") s);" \
            "baseline ${SHIM_CPU_B[*]} (median $(median "${SHIM_CPU_B[@]}") s)"
    fi
    exit 0
fi

# --- 3: time to first byte of a blob the shim lacks ------------------------------------------
# Each probe gets a shim with an empty data dir. curl's %{time_starttransfer} is when the
# response starts (headers); the helper also times the first body byte and checks the digest.
curl_probe() { # curl_probe BASE: "ttfb_s total_s"
    local out
    out=$(curl -sf --max-time 300 -o /dev/null -w '%{time_starttransfer} %{time_total} %{size_download}' \
        "http://$1/v2/bench/ttfb/blobs/$TTFB_DIGEST") || die "GET blob from $1 failed"
    [ "${out##* }" = "$TTFB_BYTES" ] || die "GET blob from $1: ${out##* } bytes, want $TTFB_BYTES"
    echo "${out% *}"
}
helper_probe() { # helper_probe BASE: "first_body_byte_s total_s"
    local out
    out=$(timeout 300 $HELPER ttfb "http://$1/v2/bench/ttfb/blobs/$TTFB_DIGEST" --digest "$TTFB_DIGEST") ||
        die "GET blob from $1: $out"
    json '"%s %s" % (j["first_byte_s"], j["total_s"])' <<<"$out"
}
TTFB_DIRECT=() TTFB_DIRECT_BODY=() TTFB_A=() TTFB_A_BODY=() TTFB_B=() TTFB_B_BODY=()
for rep in $(seq "$REPS"); do
    probe=$(curl_probe "$REG"); read -r t total <<<"$probe"; TTFB_DIRECT+=("$t")
    probe=$(helper_probe "$REG"); read -r b _ <<<"$probe"; TTFB_DIRECT_BODY+=("$b")
    log "rep $rep direct from docker-registry: TTFB ${t}s (first body byte ${b}s), whole blob ${total}s"
done
for rep in $(seq "$REPS"); do
    start_fresh_shim
    LOADS+=("$(load)")
    c0=$(cpu shim) s0=$(cpu seeder)
    probe=$(curl_probe "$SHIM"); read -r t total <<<"$probe"; TTFB_A+=("$t")
    cpu_note="shim CPU $(calc "$(cpu shim) - $c0") s, seeder CPU $(calc "$(cpu seeder) - $s0") s"
    start_fresh_shim
    probe=$(helper_probe "$SHIM"); read -r b btotal <<<"$probe"; TTFB_A_BODY+=("$b")
    [ "$(shim_bytes upstream)" = 0 ] || die "(a): the shim went upstream although the seeder holds the blob"
    log "rep $rep (a) seeder holds it: TTFB ${t}s (first body byte ${b}s), whole blob ${total}s / ${btotal}s" \
        "(bytes peers $(shim_bytes peers), webseed $(shim_bytes webseed), upstream $(shim_bytes upstream); curl's: $cpu_note)"
done
fresh_seeder_and_shim() {
    stop seeder
    rm -rf "$W/seeder"
    start_seeder
    start_fresh_shim
}
for rep in $(seq "$REPS"); do
    fresh_seeder_and_shim
    LOADS+=("$(load)")
    probe=$(curl_probe "$SHIM"); read -r t total <<<"$probe"; TTFB_B+=("$t")
    fresh_seeder_and_shim
    probe=$(helper_probe "$SHIM"); read -r b btotal <<<"$probe"; TTFB_B_BODY+=("$b")
    # The point of (b): the seeder mirrors meanwhile, so the next host gets it from the swarm.
    hex=${TTFB_DIGEST#sha256:}
    wait_for "the seeder to hold the blob after (b)" 120 test -s "$W/seeder/blobs/sha256/$hex"
    log "rep $rep (b) no one holds it: TTFB ${t}s (first body byte ${b}s), whole blob ${total}s / ${btotal}s" \
        "(bytes peers $(shim_bytes peers), webseed $(shim_bytes webseed), upstream $(shim_bytes upstream));" \
        "the seeder holds it now"
done

# --- report ----------------------------------------------------------------------------------
m() { median "$@"; }
ratio() { printf '%.2f' "$(calc "$1 / $2")"; }
ms() { printf '%.0f' "$(calc "$1 * 1000")"; }
met() { if [ "$(calc "$1")" = 1 ]; then echo met; else echo "NOT met"; fi; }
met_md() { local v; v=$(met "$1"); [ "$v" = met ] && echo met || echo "**not met**"; }
D=$(printf '%.2f' "$(m "${DIRECT[@]}")") C=$(printf '%.2f' "$(m "${COLD[@]}")") H=$(printf '%.2f' "$(m "${WARM[@]}")")
TD=$(m "${TTFB_DIRECT[@]}") TDB=$(m "${TTFB_DIRECT_BODY[@]}")
TA=$(m "${TTFB_A[@]}") TAB=$(m "${TTFB_A_BODY[@]}") TB=$(m "${TTFB_B[@]}") TBB=$(m "${TTFB_B_BODY[@]}")
RC=$(ratio "$C" "$D") RH=$(ratio "$H" "$D")
LOAD_RANGE="$(printf '%s\n' "${LOADS[@]}" | sort -g | head -1)-$(printf '%s\n' "${LOADS[@]}" | sort -g | tail -1)"
UPTIME=$(uptime)
WORST_A=$(printf '%s\n' "${TTFB_A[@]}" "${TTFB_A_BODY[@]}" | sort -g | tail -1)
WORST_B=$(printf '%s\n' "${TTFB_B[@]}" "${TTFB_B_BODY[@]}" | sort -g | tail -1)

echo
echo "shim benchmark: image $((PULL_BYTES >> 20)) MiB in 3 layers, TTFB blob $((TTFB_BYTES >> 20)) MiB," \
    "median of $REPS, dockerd $DRIVER, 1-min load $LOAD_RANGE during the measurements"
echo "cold pull MiB per rep, peers/webseed (upstream 0): ${COLD_SPLIT[*]}"
echo "uptime at the end: $UPTIME"
echo "$BIN_NOTE"
[ "$SMOKE" = 1 ] && echo "SMOKE RUN: small sizes; the figures check that it works, not how fast"
fmt='%-44s %-22s %-22s %-7s %-10s %s\n'
printf "$fmt" what shoal direct ratio target met?
printf "$fmt" "docker pull, cold (BitTorrent from seeder)" "${C} s" "${D} s" "$RC" "<= 1.25" "$(met "$RC <= 1.25")"
printf "$fmt" "docker pull, warm (shim cache hit)" "${H} s" "${D} s" "$RH" "<= 1.0" "$(met "$RH <= 1.0")"
printf "$fmt" "TTFB, seeder holds the blob (curl)" "$(ms "$TA") ms" "$(ms "$TD") ms" "$(ratio "$TA" "$TD")" "< 500 ms" "$(met "$TA < 0.5")"
printf "$fmt" "  first body byte" "$(ms "$TAB") ms" "$(ms "$TDB") ms" "$(ratio "$TAB" "$TDB")" "< 500 ms" "$(met "$TAB < 0.5")"
printf "$fmt" "TTFB, no one holds the blob (curl)" "$(ms "$TB") ms" "$(ms "$TD") ms" "$(ratio "$TB" "$TD")" "< 1 s" "$(met "$TB < 1")"
printf "$fmt" "  first body byte" "$(ms "$TBB") ms" "$(ms "$TDB") ms" "$(ratio "$TBB" "$TDB")" "< 1 s" "$(met "$TBB < 1")"
echo "all runs: direct ${DIRECT[*]}; cold ${COLD[*]}; warm ${WARM[*]}; TTFB direct ${TTFB_DIRECT[*]};" \
    "(a) ${TTFB_A[*]} / body ${TTFB_A_BODY[*]}; (b) ${TTFB_B[*]} / body ${TTFB_B_BODY[*]}"

if [ "$RECORD" = 1 ]; then
    DOC=$REPO_ROOT/docs/benchmarks.md
    WHEN="$(date '+%Y-%m-%d %H:%M') (load $LOAD_RANGE)"
    CMD='`scripts/bench-shim-pull.sh`'
    # Append only: others append to the same file; make sure it ends in a newline first.
    [ -z "$(tail -c1 "$DOC")" ] || echo >> "$DOC"
    cat >> "$DOC" <<EOF
| $WHEN | shim: \`docker pull\` of a 3-layer $((PULL_BYTES >> 20)) MiB image (uncompressed tar layers), cold: empty shim, blobs from the seeder (MiB over BitTorrent/webseed per rep: ${COLD_SPLIT[*]}; upstream 0; $BIN_NOTE), dockerd $DRIVER, median of $REPS | $CMD | $C s | \`docker pull\` from docker-registry $D s | $RC | <= 1.25: $(met_md "$RC <= 1.25") |
| $WHEN | shim: same pull, warm (shim cache hit, image removed from the daemon) | same run | $H s | $D s | $RH | <= 1.0: $(met_md "$RH <= 1.0") |
| $WHEN | shim: time to first byte of a $((TTFB_BYTES >> 20)) MiB blob the shim lacks, the seeder holds it (curl %{time_starttransfer}; first body byte) | same run | $(ms "$TA") ms; $(ms "$TAB") ms | docker-registry $(ms "$TD") ms; $(ms "$TDB") ms | $(ratio "$TA" "$TD") | < 500 ms: $(met_md "$TA < 0.5 && $TAB < 0.5") (worst of $REPS: $(ms "$WORST_A") ms) |
| $WHEN | shim: time to first byte of that blob when no one holds it (fresh seeder and shim data; curl; first body byte) | same run | $(ms "$TB") ms; $(ms "$TBB") ms | docker-registry $(ms "$TD") ms; $(ms "$TDB") ms | $(ratio "$TB" "$TD") | < 1 s: $(met_md "$TB < 1 && $TBB < 1") (worst of $REPS: $(ms "$WORST_B") ms) |
EOF
    log "appended 4 rows to docs/benchmarks.md"
fi
