#!/usr/bin/env bash
# The ring lab's end-to-end proof (docker-compose.ring.yml, issue 19): 3 trackers, 3 seeders on a
# rendezvous ring with 2 owners per blob, 4 hosts each running a shim told every seeder and
# tracker. It starts the lab fresh, pushes a test image of random layers into the lab registry,
# mirrors it through seeder1, shows which seeder holds which blob, then pulls the image on all 4
# hosts at once and, as they start together on the largest layer (after the manifest), SIGKILLs
# (`docker kill`) that layer's primary owner seeder and the owner tracker of its swarm. Exits
# non-zero when any check fails:
#   - each blob's torrent names the owners the rendezvous order gives (computed here too,
#     torrent-owners.py), and each blob is stored at exactly its 2 owners;
#   - upstream (the registry's access log) served each blob at most twice in the whole run;
#   - every blob each host pulled has the SHA-256 of its digest (and the manifest its digest),
#     and at least one host did not have the largest layer yet when the kill returned;
#   - no host took a byte from upstream, no shim counted a verification failure;
#   - `shoal magnets`, given the dead seeder first, lists every blob's magnet through a survivor;
#   - each surviving seeder owns every blob it stores (shoal_seeder_ring_owned_blobs).
# Needs: docker (a reachable daemon), docker compose or docker-compose, skopeo, curl, python3.
# Env: KEEP=1 leaves the lab running; DEMO_TIMEOUT (s, default 300) bounds the whole run;
#      LAYERS_MIB (default "2 3 8"); KILL_DELAY_MS (default 0): kill that long after the hosts
#      start on the largest layer; KILL_ON=bytes: once a host got its first bytes from peers;
#      SHOAL_RING_* ports as in docker-compose.ring.yml;
#      SHOAL_RING_PROJECT (compose project name, default shoal-ring).
set -euo pipefail
cd "$(dirname "$0")"

DEMO_TIMEOUT=${DEMO_TIMEOUT:-300}
LAYERS_MIB=${LAYERS_MIB:-2 3 8}
KILL_DELAY_MS=${KILL_DELAY_MS:-0}
KILL_ON=${KILL_ON:-start}
REGISTRY_PORT=${SHOAL_RING_REGISTRY_PORT:-5600}
SEEDER_PORTS=("${SHOAL_RING_SEEDER1_PORT:-7101}" "${SHOAL_RING_SEEDER2_PORT:-7102}" "${SHOAL_RING_SEEDER3_PORT:-7103}")
TRACKER_PORTS=("${SHOAL_RING_TRACKER1_PORT:-6971}" "${SHOAL_RING_TRACKER2_PORT:-6972}" "${SHOAL_RING_TRACKER3_PORT:-6973}")
HOST_PORTS=("${SHOAL_RING_HOST1_PORT:-5611}" "${SHOAL_RING_HOST2_PORT:-5612}" "${SHOAL_RING_HOST3_PORT:-5613}"
  "${SHOAL_RING_HOST4_PORT:-5614}")
# The members as the lab configures them (docker-compose.ring.yml).
SEEDERS=http://seeder1:7000,http://seeder2:7000,http://seeder3:7000
TRACKERS=http://tracker1:6969/announce,http://tracker2:6969/announce,http://tracker3:6969/announce
REPLICAS=2
REPO=demo/ring
TAG=v1
IMAGE="registry:5000/$REPO:$TAG" # as the seeders and the shims name it inside the lab network
ACCEPT='application/vnd.oci.image.manifest.v1+json'

for tool in docker skopeo curl python3; do
  command -v "$tool" >/dev/null || { echo "demo-ring: $tool is required and missing" >&2; exit 1; }
done
. ./find-compose.sh
find_compose || { echo "demo-ring: neither 'docker compose' nor 'docker-compose' is available" >&2; exit 1; }
# Its own project: the main lab (docker-compose.yml, project "compose") is never touched.
COMPOSE+=(-p "${SHOAL_RING_PROJECT:-shoal-ring}" -f docker-compose.ring.yml)

WORK=$(mktemp -d /tmp/shoal-demo-ring.XXXXXX)
DEMO=demo-ring
. ./demo-lib.sh
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# in_lab SERVICE CMD...: runs CMD in SERVICE's container (plain `docker exec`). Container ids are
# looked up once, before any kill, so that the pulls running in the background share them.
declare -A CONTAINER
container_ids() {
  local s
  for s in registry tracker1 tracker2 tracker3 seeder1 seeder2 seeder3 host1 host2 host3 host4; do
    CONTAINER[$s]=$("${COMPOSE[@]}" ps -q "$s")
    [ -n "${CONTAINER[$s]}" ] || { echo "demo-ring: no container for $s" >&2; exit 1; }
  done
}
in_lab() {
  local service=$1; shift
  timeout 120 docker exec "${CONTAINER[$service]}" "$@"
}
seeder_url() { echo "http://127.0.0.1:${SEEDER_PORTS[$1 - 1]}"; }  # seeder N, from this machine
host_url() { echo "http://127.0.0.1:${HOST_PORTS[$1 - 1]}"; }
# upstream_gets DIGEST: how often the registry served the blob (GET, 200 or 206: oci-client asks
# with a Range header and the registry answers 206), from its access log.
upstream_gets() {
  grep -c "\"GET /v2/$REPO/blobs/$1 HTTP/1.1\" 20[06] " "$WORK/registry.log" || true
}

step "a fresh ring lab up (${COMPOSE[*]})"
"${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
"${COMPOSE[@]}" up -d
wait_for "registry" 60 curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/"
for n in 1 2 3; do
  wait_for "tracker$n" 60 curl -fsS "http://127.0.0.1:${TRACKER_PORTS[$n - 1]}/metrics"
  wait_for "seeder$n" 60 curl -fsS "$(seeder_url "$n")/healthz"
done
for n in 1 2 3 4; do wait_for "host$n's shim" 60 curl -fsS "$(host_url "$n")/v2/"; done
container_ids
for n in 1 2 3; do
  members=$(metric "$(seeder_url "$n")" shoal_seeder_ring_members)
  [ "$members" -eq 3 ] || fail "seeder$n counts $members ring members, want 3"
done
ok "registry, tracker1-3, seeder1-3 (each sees 3 ring members), host1-4 are up"

step "push a test image of random layers ($LAYERS_MIB MiB) into the lab registry"
# shellcheck disable=SC2086
python3 make-test-image.py "$WORK/layout" "$TAG" $LAYERS_MIB > "$WORK/pushed.txt"
skopeo copy --quiet --dest-tls-verify=false "oci:$WORK/layout:$TAG" \
  "docker://127.0.0.1:$REGISTRY_PORT/$REPO:$TAG"
MANIFEST_DIGEST=$(awk '$1 == "manifest" {print $2}' "$WORK/pushed.txt")
# Every blob ("<digest> <size>"), the largest layer first.
awk '$1 == "config" || $1 == "layer" {print $2, $3}' "$WORK/pushed.txt" | sort -k2,2nr > "$WORK/blobs.txt"
read -r BIG_DIGEST BIG_SIZE < <(awk '$1 == "layer" {print $2, $3}' "$WORK/pushed.txt" | sort -k2,2nr | head -1)
BLOBS=$(wc -l < "$WORK/blobs.txt")
sed 's/^/  pushed /' "$WORK/pushed.txt"

step "seeder1 mirrors $IMAGE (POST /v1/images): each blob goes to its 2 owners only"
curl -fsS -m 120 -X POST -H 'content-type: application/json' -d "{\"image\": \"$IMAGE\"}" \
  "$(seeder_url 1)/v1/images" > "$WORK/image.json"
[ "$(json "$WORK/image.json" 'd["digest"]')" = "$MANIFEST_DIGEST" ] \
  || fail "seeder1 mirrored manifest $(json "$WORK/image.json" 'd["digest"]'), pushed $MANIFEST_DIGEST"
listed=$(json "$WORK/image.json" 'sum(1 for b in [d["manifests"][0]["config"]] + d["manifests"][0]["layers"] if b["magnet"].startswith("magnet:?"))')
[ "$listed" -eq "$BLOBS" ] && ok "seeder1 lists a magnet for each of the $BLOBS blobs" \
  || fail "seeder1 lists $listed magnets, want $BLOBS"

# owners DIGEST: reads the blob's torrent from seeder1 (its owners' or its own) and sets OWNERS
# (service names, primary first), OWNER_TRACKERS (the announce-list, service names, owner
# first) and INFOHASH; with CHECK, checks both lists against the rendezvous order computed here.
owners() {
  local d=$1 check=${2:-} key rest
  curl -fsS -m 10 "$(seeder_url 1)/v1/blobs/$d/torrent" -o "$WORK/t.torrent" || { [ -z "$check" ] || fail "no torrent for $d"; return 1; }
  python3 torrent-owners.py "$WORK/t.torrent" "$d" "$SEEDERS" "$TRACKERS" > "$WORK/t.txt"
  declare -A got
  while read -r key rest; do got[$key]=$rest; done < "$WORK/t.txt"
  INFOHASH=${got[infohash]}
  # http://seeder2:7000/webseed/ -> seeder2; http://tracker1:6969/announce -> tracker1
  OWNERS=$(sed -E 's#http://([a-z0-9]+):[0-9]+/webseed/#\1#g' <<< "${got[webseeds]}")
  OWNER_TRACKERS=$(sed -E 's#http://([a-z0-9]+):[0-9]+/announce#\1#g' <<< "${got[trackers]}")
  local want_owners want_trackers
  want_owners=$(tr ' ' '\n' <<< "${got[ring-seeders]}" | head -$REPLICAS | sed -E 's#http://([a-z0-9]+):.*#\1#' | paste -sd' ')
  want_trackers=$(sed -E 's#http://([a-z0-9]+):[0-9]+/announce#\1#g' <<< "${got[ring-trackers]}")
  [ -n "$check" ] || return 0
  [ "$OWNERS" = "$want_owners" ] || fail "$d: the torrent's url-list names $OWNERS, the ring order $want_owners"
  [ "$OWNER_TRACKERS" = "$want_trackers" ] || fail "$d: the announce-list is $OWNER_TRACKERS, the ring order $want_trackers"
}

# stored_at DIGEST: the seeders whose store holds the blob.
stored_at() {
  local n where=""
  for n in 1 2 3; do
    in_lab "seeder$n" test -f "/data/blobs/sha256/${1#sha256:}" && where="$where seeder$n"
  done
  echo "${where# }"
}
# The second owner gets the blob from the first (replication) just after the mirror answers.
all_at_owners() {
  local d size
  while read -r d size; do
    owners "$d" || return 1
    local s
    for s in $OWNERS; do in_lab "$s" test -f "/data/blobs/sha256/${d#sha256:}" || return 1; done
  done < "$WORK/blobs.txt"
}
wait_for "every blob at both of its owners" 60 all_at_owners

printf '  %-73s %9s  %-17s  %-17s  %s\n' blob bytes "owners (primary)" "stored at" "owner trackers (tiers)"
exact=0
while read -r d size; do
  owners "$d" check
  where=$(stored_at "$d")
  [ "$d" = "$BIG_DIGEST" ] && { BIG_OWNERS=$OWNERS; BIG_TRACKERS=$OWNER_TRACKERS; BIG_INFOHASH=$INFOHASH; }
  printf '  %-73s %9d  %-17s  %-17s  %s\n' "$d" "$size" "$OWNERS" "$where" "$OWNER_TRACKERS"
  if [ "$(tr ' ' '\n' <<< "$where" | sort | paste -sd' ')" = "$(tr ' ' '\n' <<< "$OWNERS" | sort | paste -sd' ')" ]; then
    exact=$((exact + 1))
  else
    fail "$d is stored at '$where', its owners are '$OWNERS'"
  fi
done < "$WORK/blobs.txt"
[ "$exact" -eq "$BLOBS" ] && ok "each of the $BLOBS blobs is stored at exactly its $REPLICAS owners, as the rendezvous order names them"

stored_total=0
for n in 1 2 3; do
  u=$(seeder_url "$n")
  stored=$(metric "$u" shoal_seeder_blobs)
  stored_total=$((stored_total + stored))
  echo "  seeder$n /metrics: blobs $stored, upstream_fetches $(metric "$u" shoal_seeder_upstream_fetches_total)," \
    "ring_forwarded{answered} $(metric "$u" 'shoal_seeder_ring_forwarded_total{outcome="answered"}')," \
    "ring_replications{held} $(metric "$u" 'shoal_seeder_ring_replications_total{outcome="held"}')," \
    "ring_replications{fetching} $(metric "$u" 'shoal_seeder_ring_replications_total{outcome="fetching"}')"
done
if [ "$stored_total" -eq $((REPLICAS * BLOBS)) ]; then
  ok "the seeders' shoal_seeder_blobs add up to $REPLICAS x $BLOBS"
else
  fail "the seeders' shoal_seeder_blobs add up to $stored_total, want $((REPLICAS * BLOBS))"
fi

# check_upstream WHEN: upstream served each blob at most REPLICAS times so far.
check_upstream() {
  docker logs "${CONTAINER[registry]}" > "$WORK/registry.log" 2>&1
  local d size n counts="" worst=0
  while read -r d size; do
    n=$(upstream_gets "$d")
    counts="$counts $n"
    [ "$n" -le "$REPLICAS" ] || fail "upstream served $d $n times $1"
    [ "$n" -le "$worst" ] || worst=$n
  done < "$WORK/blobs.txt"
  if [ "$worst" -le "$REPLICAS" ]; then
    ok "upstream served each blob at most $REPLICAS times $1 (per blob, largest first:$counts)"
  fi
}
check_upstream "while mirroring (registry access log)"

VICTIM=${BIG_OWNERS%% *}
DOOMED_TRACKER=${BIG_TRACKERS%% *}
SURVIVOR=${BIG_OWNERS##* }
echo "  largest layer $BIG_DIGEST (infohash $BIG_INFOHASH): primary owner $VICTIM," \
  "replica $SURVIVOR, owner tracker $DOOMED_TRACKER"

# Counters before the burst (the lab is fresh, but the mirror has counted some already).
SHIM_COUNTERS=(shoal_shim_bittorrent_uploaded_bytes_total 'shoal_shim_blob_bytes_total{source="peers"}'
  'shoal_shim_blob_bytes_total{source="webseed"}' 'shoal_shim_blob_bytes_total{source="upstream"}'
  shoal_shim_verification_failures_total)
declare -A BASE
for n in 1 2 3 4; do
  for m in "${SHIM_COUNTERS[@]}"; do BASE["$n $m"]=$(metric "$(host_url "$n")" "$m"); done
done
shim_delta() { echo $(($(metric "$(host_url "$1")" "$2") - ${BASE["$1 $2"]})); }

# pull HOST: the manifest, then every blob (the largest layer first), through HOST's shim, from
# inside HOST's container; writes HOST.result lines "<digest> <sha256 of what arrived> <start ms>
# <end ms>". Between the manifest and the blobs it waits for the others (HOST.ready, then go), so
# that the 4 hosts start on the largest layer together and the kill lands while they fetch it.
pull() {
  local host=$1 out="$WORK/$1.result"
  : > "$out"
  in_lab "$host" curl -fsS -H "Accept: $ACCEPT" "http://127.0.0.1:5000/v2/$REPO/manifests/$TAG" > "$WORK/$host.manifest"
  echo "manifest:$MANIFEST_DIGEST sha256:$(sha256sum < "$WORK/$host.manifest" | cut -c1-64) 0 0" >> "$out"
  touch "$WORK/$host.ready"
  local end=$((SECONDS + 60))
  until [ -e "$WORK/go" ] || [ "$SECONDS" -ge "$end" ]; do sleep 0.01; done
  local digest start got
  for digest in $(json "$WORK/$host.manifest" '" ".join([l["digest"] for l in sorted(d["layers"], key=lambda l: -l["size"])] + [d["config"]["digest"]])'); do
    start=$(now_ms)
    got=$(in_lab "$host" sh -c "curl -fsS http://127.0.0.1:5000/v2/$REPO/blobs/$digest | sha256sum" | cut -c1-64) || got=error
    echo "$digest sha256:$got $start $(now_ms)" >> "$out"
  done
}
check_pull() {
  local host=$1 digest got start end n=0
  while read -r digest got start end; do
    if [ "${digest#manifest:}" != "$digest" ]; then
      [ "${digest#manifest:}" = "$got" ] || { fail "$host: manifest arrived as $got, pushed ${digest#manifest:}"; continue; }
    elif [ "$digest" != "$got" ]; then
      fail "$host: blob $digest arrived with $got"; continue
    fi
    n=$((n + 1))
  done < "$WORK/$host.result"
  [ "$n" -eq $((BLOBS + 1)) ] && ok "$host: manifest and $((n - 1)) blobs verified by SHA-256" \
    || fail "$host: $((n - 1)) of $BLOBS blobs verified"
}
# failovers HOST DIGEST: how often HOST's shim, asking for DIGEST's torrent, found a seeder
# unreachable and asked the next (its log; the shim counts this in no metric).
failovers() {
  docker logs "${CONTAINER[$1]}" 2>&1 | grep 'seeder unreachable; asking the next' | grep -c "digest=$2 " || true
}

step "hosts 1-4 pull at once; as they start on the largest layer, kill $VICTIM and $DOOMED_TRACKER (SIGKILL)"
pids=()
for n in 1 2 3 4; do pull "host$n" & pids+=($!); done
all_ready() { [ "$(compgen -G "$WORK/host*.ready" | wc -l)" -eq 4 ]; }
wait_for "the 4 hosts to have the manifest" 60 all_ready
GO_MS=$(now_ms)
touch "$WORK/go"
# KILL_DELAY_MS later, or (KILL_ON=bytes) once a host's shim got its first bytes from peers: to
# aim the kill at the hosts' downloads rather than at their torrent requests.
[ "$KILL_DELAY_MS" -eq 0 ] || sleep "$(awk -v ms="$KILL_DELAY_MS" 'BEGIN { print ms / 1000 }')"
first_bytes() {
  local n
  for n in 1 2 3 4; do [ "$(shim_delta "$n" 'shoal_shim_blob_bytes_total{source="peers"}')" -eq 0 ] || return 0; done
  return 1
}
if [ "$KILL_ON" = bytes ]; then
  end=$((SECONDS + 30))
  until first_bytes || [ "$SECONDS" -ge "$end" ]; do :; done
fi
docker kill "${CONTAINER[$VICTIM]}" "${CONTAINER[$DOOMED_TRACKER]}" > /dev/null
KILLED_MS=$(now_ms)
sources=""
for n in 1 2 3 4; do
  sources="$sources host$n $(shim_delta "$n" 'shoal_shim_blob_bytes_total{source="peers"}')/$(shim_delta "$n" 'shoal_shim_blob_bytes_total{source="webseed"}')/$(shim_delta "$n" 'shoal_shim_blob_bytes_total{source="upstream"}');"
done
echo "  docker kill returned $((KILLED_MS - GO_MS)) ms after the hosts were released;" \
  "bytes by then (peers/webseed/upstream):$sources"
for i in "${!pids[@]}"; do wait "${pids[$i]}" || fail "host$((i + 1))'s pull broke"; done
echo "  the largest layer on each host, in ms after the release (the kill returned at $((KILLED_MS - GO_MS))):"
lacking=0
for n in 1 2 3 4; do
  read -r _ _ start end < <(grep "^$BIG_DIGEST " "$WORK/host$n.result" || echo "- - $GO_MS $GO_MS")
  [ "$end" -le "$KILLED_MS" ] || lacking=$((lacking + 1))
  echo "    host$n: asked at $((start - GO_MS)), complete at $((end - GO_MS));" \
    "its shim found $VICTIM unreachable for it $(failovers "host$n" "$BIG_DIGEST") time(s) and asked the next"
done
for n in 1 2 3 4; do check_pull "host$n"; done
if [ "$lacking" -gt 0 ]; then
  ok "the kill landed mid-burst: $lacking of 4 hosts did not have the largest layer yet when it returned"
else
  fail "every host had the largest layer before the kill returned: no failover was needed for it"
fi

step "after the failover"
up_total=0
for n in 1 2 3 4; do
  up=$(shim_delta "$n" 'shoal_shim_blob_bytes_total{source="upstream"}')
  up_total=$((up_total + up))
  fails=$(shim_delta "$n" shoal_shim_verification_failures_total)
  [ "$fails" -eq 0 ] || fail "host$n counted $fails verification failures"
done
[ "$up_total" -eq 0 ] && ok "no host took a byte from upstream (shoal_shim_blob_bytes_total{source=\"upstream\"} 0 on all 4)" \
  || fail "the hosts took $up_total bytes from upstream"
check_upstream "in the whole run"
# `shoal magnets` as an operator runs it, from host1's container, the dead seeder named first.
if in_lab host1 shoal magnets --seeder "http://$VICTIM:7000,http://$SURVIVOR:7000" "$IMAGE" > "$WORK/magnets.txt" 2> "$WORK/magnets.err"; then
  n=$(grep -o 'magnet:?' "$WORK/magnets.txt" | wc -l)
  [ "$n" -eq "$BLOBS" ] && ok "shoal magnets --seeder $VICTIM(dead),$SURVIVOR lists all $BLOBS magnets" \
    || { cat "$WORK/magnets.txt"; fail "shoal magnets listed $n magnets, want $BLOBS"; }
else
  cat "$WORK/magnets.txt" "$WORK/magnets.err" >&2
  fail "shoal magnets --seeder $VICTIM,$SURVIVOR failed"
fi

# shoal_seeder_ring_owned_blobs is recounted every 10 s: by now it covers the mirror.
owns_all() {
  local n u
  for n in 1 2 3; do
    [ "seeder$n" != "$VICTIM" ] || continue
    u=$(seeder_url "$n")
    [ "$(metric "$u" shoal_seeder_ring_owned_blobs)" -eq "$(metric "$u" shoal_seeder_blobs)" ] || return 1
  done
}
if (wait_for "the survivors' shoal_seeder_ring_owned_blobs" 15 owns_all); then
  ok "each surviving seeder owns every blob it stores (shoal_seeder_ring_owned_blobs = shoal_seeder_blobs)"
else
  fail "a surviving seeder stores blobs it does not own"
fi

step "where the bytes came from during the burst (each component's /metrics)"
printf '  %-8s %12s %12s %14s %16s\n' "" "from peers" "from webseed" "from upstream" "uploaded (BT)"
for n in 1 2 3 4; do
  printf '  %-8s %12d %12d %14d %16d\n' "host$n" \
    "$(shim_delta "$n" 'shoal_shim_blob_bytes_total{source="peers"}')" \
    "$(shim_delta "$n" 'shoal_shim_blob_bytes_total{source="webseed"}')" \
    "$(shim_delta "$n" 'shoal_shim_blob_bytes_total{source="upstream"}')" \
    "$(shim_delta "$n" shoal_shim_bittorrent_uploaded_bytes_total)"
done
for n in 1 2 3; do
  if [ "seeder$n" = "$VICTIM" ]; then echo "  seeder$n  (killed)"; continue; fi
  u=$(seeder_url "$n")
  echo "  seeder$n  uploaded $(metric "$u" shoal_seeder_bittorrent_uploaded_bytes_total) bytes over BitTorrent," \
    "$(metric "$u" shoal_seeder_webseed_uploaded_bytes_total) over webseed (whole run)"
done
for n in 1 2 3; do
  if [ "tracker$n" = "$DOOMED_TRACKER" ]; then echo "  tracker$n (killed)"; continue; fi
  u="http://127.0.0.1:${TRACKER_PORTS[$n - 1]}"
  echo "  tracker$n announces served as owner $(metric "$u" 'shoal_tracker_announces_by_role_total{role="owner"}')," \
    "as failover $(metric "$u" 'shoal_tracker_announces_by_role_total{role="failover"}'); $(metric "$u" shoal_tracker_swarms) swarms"
done

echo
echo "demo-ring: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
