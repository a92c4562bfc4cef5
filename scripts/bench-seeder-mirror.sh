#!/usr/bin/env bash
# Benchmark: `shoal seeder` mirroring a 1 GiB single-layer image from a loopback docker-registry
# (fetch + verify + SHA-1 pieces + store, i.e. including making the torrent) vs `skopeo copy` of
# the same image to a local directory, alternating, best of $RUNS (default 3).
# Usage: scripts/bench-seeder-mirror.sh   (SHOAL_BIN=... to use an existing release binary;
#        SHOAL_BENCH_MIB=1024 for the layer size)
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in docker-registry skopeo curl gzip; do
    command -v "$tool" >/dev/null || { echo "$tool missing: bash .ci/install-deps" >&2; exit 1; }
done
RUNS=${RUNS:-3}
MIB=${SHOAL_BENCH_MIB:-1024}
if [ -z "${SHOAL_BIN:-}" ]; then
    cargo build -q --release --bin shoal
    SHOAL_BIN=target/release/shoal
fi
W=$(mktemp -d /var/tmp/shoal-bench-mirror.XXXXXX)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# An OCI layout with one gzip layer of $MIB MiB (gzip -1 of random bytes: incompressible).
mkdir -p "$W/layout/blobs/sha256"
head -c $((MIB << 20)) /dev/urandom | gzip -1 -n > "$W/layer.gz"
put() { local d; d=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" "$W/layout/blobs/sha256/$d"; echo "$d"; }
LSIZE=$(stat -c %s "$W/layer.gz"); LD=$(put "$W/layer.gz")
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' > "$W/config"
CSIZE=$(stat -c %s "$W/config"); CD=$(put "$W/config")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
    "$CD" "$CSIZE" "$LD" "$LSIZE" > "$W/manifest"
MSIZE=$(stat -c %s "$W/manifest"); MD=$(put "$W/manifest")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"1"}}]}' \
    "$MD" "$MSIZE" > "$W/layout/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$W/layout/oci-layout"

RPORT=$(port)
printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$W/registry" "$RPORT" > "$W/registry.yml"
docker-registry serve "$W/registry.yml" >/dev/null 2>&1 &
until curl -sf "http://127.0.0.1:$RPORT/v2/" >/dev/null; do sleep 0.1; done
skopeo copy -q --dest-tls-verify=false "oci:$W/layout:1" "docker://127.0.0.1:$RPORT/bench/big:1"
IMAGE="127.0.0.1:$RPORT/bench/big:1"
echo "layer: $((LSIZE >> 20)) MiB sha256:$LD"

now() { date +%s.%N; }
best_skopeo=999999; best_shoal=999999
for run in $(seq "$RUNS"); do
    rm -rf "$W/skopeo-out"; sync
    echo "load before run $run: $(cut -d' ' -f1-3 /proc/loadavg)"
    t0=$(now)
    skopeo copy -q --src-tls-verify=false "docker://$IMAGE" "dir:$W/skopeo-out"
    t1=$(now); s=$(echo "$t1 - $t0" | bc)

    rm -rf "$W/seeder" "$W/seeder.out"; sync
    "$SHOAL_BIN" seeder --data-dir "$W/seeder" --listen 127.0.0.1:0 --bt-listen "127.0.0.1:$(port)" \
        > "$W/seeder.out" 2> "$W/seeder.log" &
    SPID=$!
    until grep -q "listening on" "$W/seeder.out" 2>/dev/null; do sleep 0.05; done
    BASE=$(sed -n 's/^shoal seeder: listening on //p' "$W/seeder.out")
    t0=$(now)
    curl -sf -X POST -H 'content-type: application/json' -d "{\"image\":\"$IMAGE\"}" "$BASE/v1/images" >/dev/null
    t1=$(now); m=$(echo "$t1 - $t0" | bc)
    kill "$SPID"; wait "$SPID" 2>/dev/null || true
    test "$(sha256sum "$W/seeder/blobs/sha256/$LD" | cut -d' ' -f1)" = "$LD"

    echo "run $run: skopeo copy ${s}s, shoal seeder mirror (incl. torrent) ${m}s"
    best_skopeo=$(echo "if ($s < $best_skopeo) $s else $best_skopeo" | bc)
    best_shoal=$(echo "if ($m < $best_shoal) $m else $best_shoal" | bc)
done
echo "best: skopeo ${best_skopeo}s, shoal ${best_shoal}s, ratio $(echo "scale=2; $best_shoal / $best_skopeo" | bc) (target <= 1.2)"
