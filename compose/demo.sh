#!/usr/bin/env bash
# The compose lab's end-to-end proof: bring the lab up (or reuse it), push a test image of random
# layers into the lab registry with skopeo, pull it through host1's shim, then through hosts 2 and 3
# at once, fetch a layer by magnet with aria2c and with qbittorrent-nox, and print from every
# component's /metrics where the bytes came from. Exits non-zero when any check fails:
#   - every blob each host pulled has the SHA-256 of its digest (and the manifest its digest);
#   - the shims uploaded bytes to each other over BitTorrent (P2P between hosts happened);
#   - aria2c's and qBittorrent's files have the layer's SHA-256;
#   - no shim saw a verification failure.
# Needs: docker (a reachable daemon), docker compose or docker-compose, skopeo, curl, python3.
# Env: KEEP=1 leaves the lab running; DEMO_TIMEOUT (s, default 600) bounds the whole run;
#      LAYERS_MIB (default "4 8 16"); SHOAL_LAB_* ports as in docker-compose.yml.
set -euo pipefail
cd "$(dirname "$0")"

DEMO_TIMEOUT=${DEMO_TIMEOUT:-600}
LAYERS_MIB=${LAYERS_MIB:-4 8 16}
REGISTRY_PORT=${SHOAL_LAB_REGISTRY_PORT:-5500}
SEEDER_PORT=${SHOAL_LAB_SEEDER_PORT:-7000}
TRACKER_PORT=${SHOAL_LAB_TRACKER_PORT:-6969}
PROMETHEUS_PORT=${SHOAL_LAB_PROMETHEUS_PORT:-9090}
HOST_PORTS=("${SHOAL_LAB_HOST1_PORT:-5001}" "${SHOAL_LAB_HOST2_PORT:-5002}" "${SHOAL_LAB_HOST3_PORT:-5003}")
REPO=demo/app
TAG=v1
IMAGE="registry:5000/$REPO:$TAG" # as the seeder and the shims name it inside the lab network
ACCEPT='application/vnd.oci.image.manifest.v1+json'

for tool in docker skopeo curl python3; do
  command -v "$tool" >/dev/null || { echo "demo: $tool is required and missing" >&2; exit 1; }
done
. ./find-compose.sh
find_compose || { echo "demo: neither 'docker compose' nor 'docker-compose' is available" >&2; exit 1; }

WORK=$(mktemp -d /tmp/shoal-demo.XXXXXX)
DEMO=demo
. ./demo-lib.sh
# in_lab SERVICE CMD...: runs CMD in SERVICE's container (plain `docker exec`: compose v1's own
# exec takes about 3 s to start).
declare -A CONTAINER
in_lab() {
  local service=$1; shift
  [ -n "${CONTAINER[$service]:-}" ] || CONTAINER[$service]=$("${COMPOSE[@]}" ps -q "$service")
  timeout 300 docker exec -i "${CONTAINER[$service]}" "$@"
}

step "lab up (${COMPOSE[*]})"
"${COMPOSE[@]}" up -d
wait_for "registry" 60 curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/"
wait_for "seeder" 60 curl -fsS "http://127.0.0.1:$SEEDER_PORT/healthz"
wait_for "tracker" 60 curl -fsS "http://127.0.0.1:$TRACKER_PORT/metrics"
for i in 0 1 2; do
  wait_for "host$((i + 1))'s shim" 60 curl -fsS "http://127.0.0.1:${HOST_PORTS[$i]}/v2/"
done
wait_for "prometheus" 60 curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"
wait_for "qbittorrent-nox WebUI" 60 in_lab qbittorrent curl -fsS http://127.0.0.1:8080/api/v2/app/version
ok "registry, tracker, seeder, host1-3, aria2, qbittorrent, prometheus are up"
# Counters at the start, so that a lab left up by an earlier run (KEEP=1) counts only this run.
shim_metric() { metric "http://127.0.0.1:${HOST_PORTS[$1]}" "$2"; }
SHIM_COUNTERS=(shoal_shim_bittorrent_uploaded_bytes_total 'shoal_shim_blob_bytes_total{source="peers"}'
  'shoal_shim_blob_bytes_total{source="webseed"}' 'shoal_shim_blob_bytes_total{source="upstream"}'
  shoal_shim_verification_failures_total)
SEEDER_COUNTERS=(shoal_seeder_bittorrent_uploaded_bytes_total shoal_seeder_webseed_uploaded_bytes_total
  shoal_seeder_upstream_fetches_total)
declare -A BASE
for i in 0 1 2; do
  for m in "${SHIM_COUNTERS[@]}"; do BASE["$i $m"]=$(shim_metric "$i" "$m"); done
done
for m in "${SEEDER_COUNTERS[@]}"; do BASE["seeder $m"]=$(metric "http://127.0.0.1:$SEEDER_PORT" "$m"); done
# shim_delta I NAME / seeder_delta NAME: a counter's growth during this run.
shim_delta() { echo $(($(shim_metric "$1" "$2") - ${BASE["$1 $2"]})); }
seeder_delta() { echo $(($(metric "http://127.0.0.1:$SEEDER_PORT" "$1") - ${BASE["seeder $1"]})); }

step "push a test image of random layers ($LAYERS_MIB MiB) into the lab registry"
# shellcheck disable=SC2086
python3 make-test-image.py "$WORK/layout" "$TAG" $LAYERS_MIB > "$WORK/pushed.txt"
skopeo copy --quiet --dest-tls-verify=false "oci:$WORK/layout:$TAG" \
  "docker://127.0.0.1:$REGISTRY_PORT/$REPO:$TAG"
MANIFEST_DIGEST=$(awk '$1 == "manifest" {print $2}' "$WORK/pushed.txt")
sed 's/^/  pushed /' "$WORK/pushed.txt"

step "the seeder mirrors $IMAGE (POST /v1/images) and hands out magnets"
curl -fsS -X POST -H 'content-type: application/json' -d "{\"image\": \"$IMAGE\"}" \
  "http://127.0.0.1:$SEEDER_PORT/v1/images" > "$WORK/image.json"
[ "$(json "$WORK/image.json" 'd["digest"]')" = "$MANIFEST_DIGEST" ] \
  || fail "the seeder mirrored manifest $(json "$WORK/image.json" 'd["digest"]'), pushed $MANIFEST_DIGEST"
# The largest layer, for aria2c and qBittorrent.
json "$WORK/image.json" '"\n".join(" ".join((l["digest"], str(l["size"]), l["info_hash"], l["magnet"])) for l in sorted(d["manifests"][0]["layers"], key=lambda l: -l["size"]))' \
  > "$WORK/layers.txt"
read -r BIG_DIGEST BIG_SIZE BIG_INFOHASH BIG_MAGNET < "$WORK/layers.txt"
ok "$(wc -l < "$WORK/layers.txt") layers torrented; largest $BIG_DIGEST ($BIG_SIZE bytes)"
echo "  magnet: $BIG_MAGNET"

# pull HOST: the manifest, then every blob, through HOST's shim, from inside HOST's container;
# writes HOST.result lines "<digest> <sha256 of what arrived> <milliseconds>".
pull() {
  local host=$1 out="$WORK/$1.result"
  : > "$out"
  in_lab "$host" curl -fsS -H "Accept: $ACCEPT" "http://127.0.0.1:5000/v2/$REPO/manifests/$TAG" > "$WORK/$host.manifest"
  echo "manifest:$MANIFEST_DIGEST sha256:$(sha256sum < "$WORK/$host.manifest" | cut -c1-64) 0" >> "$out"
  local digest start got
  for digest in $(json "$WORK/$host.manifest" '" ".join([d["config"]["digest"]] + [l["digest"] for l in d["layers"]])'); do
    start=$(date +%s%N)
    got=$(in_lab "$host" sh -c "curl -fsS http://127.0.0.1:5000/v2/$REPO/blobs/$digest | sha256sum" | cut -c1-64) || got=error
    echo "$digest sha256:$got $(( ($(date +%s%N) - start) / 1000000 ))" >> "$out"
  done
}
check_pull() {
  local host=$1 digest got secs n=0
  while read -r digest got secs; do
    if [ "${digest#manifest:}" != "$digest" ]; then
      [ "${digest#manifest:}" = "$got" ] || { fail "$host: manifest arrived as $got, pushed ${digest#manifest:}"; continue; }
    elif [ "$digest" != "$got" ]; then
      fail "$host: blob $digest arrived with $got"; continue
    fi
    n=$((n + 1))
  done < "$WORK/$host.result"
  ok "$host: manifest and $((n - 1)) blobs verified by SHA-256; seconds per blob: $(awk 'NR > 1 {printf "%.2f ", $3 / 1000}' "$WORK/$host.result")"
}

step "host1 pulls through its shim (from the seeder: nobody else has the layers yet)"
pull host1
check_pull host1

step "hosts 2 and 3 pull at the same time (host1 now seeds every layer too)"
pull host2 & p2=$!
pull host3 & p3=$!
wait "$p2" || fail "host2's pull broke"
wait "$p3" || fail "host3's pull broke"
check_pull host2
check_pull host3

# Before aria2c and qBittorrent join, the shims' only BitTorrent leechers are each other: any byte
# a shim uploaded so far went to another shim.
step "P2P between hosts: BitTorrent bytes each shim uploaded (only shims were leeching)"
shim_uploaded=0
for i in 0 1 2; do
  up=$(shim_delta "$i" shoal_shim_bittorrent_uploaded_bytes_total)
  echo "  host$((i + 1)) uploaded $up bytes to other hosts"
  shim_uploaded=$((shim_uploaded + up))
done
echo "  seeder uploaded $(seeder_delta shoal_seeder_bittorrent_uploaded_bytes_total) bytes over BitTorrent and" \
  "$(seeder_delta shoal_seeder_webseed_uploaded_bytes_total) over webseed to the hosts"
if [ "$shim_uploaded" -gt 0 ]; then
  ok "hosts received $shim_uploaded bytes from other hosts' shims"
else
  fail "no shim uploaded a byte to another shim"
fi

step "aria2c fetches the largest layer by magnet"
in_lab aria2 timeout 180 aria2c --dir=/downloads --seed-time=0 --enable-dht=false --enable-dht6=false \
  --bt-enable-lpd=false --enable-peer-exchange=false --summary-interval=0 --console-log-level=warn \
  --bt-stop-timeout=120 "$BIG_MAGNET" > "$WORK/aria2.log" 2>&1 || { cat "$WORK/aria2.log" >&2; fail "aria2c did not finish"; }
got=$(in_lab aria2 sha256sum "/downloads/sha256-${BIG_DIGEST#sha256:}" | cut -c1-64) || got=missing
if [ "sha256:$got" = "$BIG_DIGEST" ]; then ok "aria2c: $BIG_SIZE bytes, sha256:$got"; else fail "aria2c's file has sha256 $got, want $BIG_DIGEST"; fi

step "qbittorrent-nox fetches the largest layer by magnet (WebUI API)"
in_lab qbittorrent curl -fsS --data-urlencode "urls=$BIG_MAGNET" --data-urlencode savepath=/downloads \
  http://127.0.0.1:8080/api/v2/torrents/add > /dev/null
qbit_done() {
  in_lab qbittorrent curl -fsS "http://127.0.0.1:8080/api/v2/torrents/info?hashes=$BIG_INFOHASH" > "$WORK/qbit.json" \
    && [ "$(json "$WORK/qbit.json" 'd[0]["progress"] if d else 0')" = "1" ]
}
wait_for "qBittorrent to complete the layer" 180 qbit_done
got=$(in_lab qbittorrent sha256sum "/downloads/sha256-${BIG_DIGEST#sha256:}" | cut -c1-64) || got=missing
if [ "sha256:$got" = "$BIG_DIGEST" ]; then ok "qBittorrent: $BIG_SIZE bytes, sha256:$got"; else fail "qBittorrent's file has sha256 $got, want $BIG_DIGEST"; fi

step "where the bytes came from during this run (each component's /metrics)"
printf '  %-6s %14s %14s %14s %16s\n' "" "from peers" "from webseed" "from upstream" "uploaded (BT)"
shims_up=0
for i in 0 1 2; do
  fails=$(shim_delta "$i" shoal_shim_verification_failures_total)
  [ "$fails" -eq 0 ] || fail "host$((i + 1)) counted $fails verification failures"
  up=$(shim_delta "$i" shoal_shim_bittorrent_uploaded_bytes_total)
  shims_up=$((shims_up + up))
  printf '  %-6s %14d %14d %14d %16d\n' "host$((i + 1))" \
    "$(shim_delta "$i" 'shoal_shim_blob_bytes_total{source="peers"}')" \
    "$(shim_delta "$i" 'shoal_shim_blob_bytes_total{source="webseed"}')" \
    "$(shim_delta "$i" 'shoal_shim_blob_bytes_total{source="upstream"}')" "$up"
done
seeder_bt=$(seeder_delta shoal_seeder_bittorrent_uploaded_bytes_total)
seeder_ws=$(seeder_delta shoal_seeder_webseed_uploaded_bytes_total)
printf '  %-6s %14s %14s %14s %16d   (webseed served: %d bytes; blobs fetched from the registry: %d)\n' \
  seeder - - - "$seeder_bt" "$seeder_ws" "$(seeder_delta shoal_seeder_upstream_fetches_total)"
tracker="http://127.0.0.1:$TRACKER_PORT"
echo "  tracker: $(metric "$tracker" shoal_tracker_swarms) swarms, $(metric "$tracker" shoal_tracker_seeders) seeders," \
  "$(metric "$tracker" shoal_tracker_leechers) leechers"
echo "  => the hosts' shims uploaded $shims_up bytes to peers (other hosts, aria2c, qBittorrent);" \
  "the seeder $seeder_bt over BitTorrent + $seeder_ws over webseed"

step "Prometheus scrapes every target of prometheus.yml"
prom="http://127.0.0.1:$PROMETHEUS_PORT"
want_targets=$(grep -c -- '- targets:' prometheus.yml)
# Targets become up after their first scrape (scrape_interval 5 s).
targets_up() {
  curl -fsS "$prom/api/v1/targets" > "$WORK/targets.json" \
    && [ "$(json "$WORK/targets.json" 'sum(t["health"] == "up" for t in d["data"]["activeTargets"])')" -eq "$want_targets" ]
}
if (wait_for "all $want_targets Prometheus targets to be up" 60 targets_up); then
  json "$WORK/targets.json" '"\n".join("  up: " + t["scrapeUrl"] for t in d["data"]["activeTargets"])'
else
  json "$WORK/targets.json" '"\n".join("  %s: %s %s" % (t["health"], t["scrapeUrl"], t["lastError"]) for t in d["data"]["activeTargets"])' || true
  fail "Prometheus does not see every target of prometheus.yml up"
fi
# Prometheus' view must agree with the shims' own /metrics once it has scraped them again.
peers_total=0
for i in 0 1 2; do peers_total=$((peers_total + $(shim_metric "$i" 'shoal_shim_blob_bytes_total{source="peers"}'))); done
prom_peers() {
  curl -fsS "$prom/api/v1/query" --data-urlencode 'query=sum(shoal_shim_blob_bytes_total{source="peers"})' > "$WORK/q.json" \
    && [ "$(json "$WORK/q.json" 'd["data"]["result"][0]["value"][1]')" = "$peers_total" ]
}
if (wait_for "Prometheus to scrape the shims' final counters" 30 prom_peers); then
  ok "PromQL sum(shoal_shim_blob_bytes_total{source=\"peers\"}) = $peers_total, as the shims report"
else
  fail "Prometheus reports $(cat "$WORK/q.json"), the shims $peers_total"
fi

echo
# The plain closing line CI reads: checks passed and failed.
echo "demo: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
