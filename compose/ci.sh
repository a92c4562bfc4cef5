#!/usr/bin/env bash
# CI for the compose lab (.ci/test runs it after the cargo tests): uses the Docker daemon that
# answers, or starts one of its own (flags of ../shared/FIELD-NOTES.md, state under /tmp, stopped
# at the end); builds the release `shoal`, the base image offline (build-base.sh), the lab images,
# and runs demo.sh, then demo-ring.sh (the ring lab of docker-compose.ring.yml, on the same images),
# end to end on free loopback ports, then deploy/kubernetes's pods in the lab image
# (deploy/kubernetes/test/run_pods.py). Prints how long each phase took.
# Env: SHOAL_BIN=path uses that binary instead of building a release one (.ci/test passes the
#      debug build the cargo tests just made); SHOAL_LAB_CACHE (see build-base.sh);
#      SHOAL_LAB_DOCKERD_DRIVERS: storage drivers to try for our own dockerd (default "overlay2 vfs");
#      SHOAL_LAB_DOCKERD_DIR: our own dockerd's state directory (default a new /tmp/shoal-lab-dockerd.*;
#      removed at the end either way), SHOAL_LAB_DOCKERD_ARGS: more dockerd flags (e.g.
#      "--default-address-pool base=10.219.0.0/16,size=24" beside another engineer's daemon);
#      SHOAL_LAB_DEMOS: which demos to run (default "demo.sh demo-ring.sh").
set -euo pipefail
[ -z "${SHOAL_BIN:-}" ] || SHOAL_BIN=$(realpath "$SHOAL_BIN")
cd "$(dirname "$0")"

missing=()
for tool in docker dockerd debootstrap skopeo curl python3 cargo; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
. ./find-compose.sh
find_compose || missing+=(docker-compose)
[ ${#missing[@]} -eq 0 ] || { echo "compose/ci.sh: missing tools: ${missing[*]} (.ci/install-deps installs them)" >&2; exit 1; }

timings=()
phase_start=$SECONDS
phase() { timings+=("$(printf '%-22s %4ds' "$1" $((SECONDS - phase_start)))"); phase_start=$SECONDS; }

DOCKERD_PID=
DOCKERD_DIR=
DEMO_LOGS=()
stop_dockerd() {
  if [ -n "$DOCKERD_PID" ]; then
    kill "$DOCKERD_PID" 2>/dev/null || true
    wait "$DOCKERD_PID" 2>/dev/null || true
    DOCKERD_PID=
  fi
}
finish() {
  local rc=$?
  set +e # clean up as much as possible, and exit with the run's status
  stop_dockerd
  if [ -n "$DOCKERD_DIR" ]; then
    # A dockerd that failed to start leaves its data root bind-mounted on itself.
    awk -v d="$DOCKERD_DIR/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l
    rm -rf "$DOCKERD_DIR" || echo "compose/ci.sh: could not remove $DOCKERD_DIR" >&2
  fi
  echo "compose/ci.sh timings:"; printf '  %s\n' "${timings[@]}"
  # Each demo's "N passed, N failed" stays among the last lines.
  local log
  for log in "${DEMO_LOGS[@]}"; do
    grep -E '^demo(-ring)?: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -1
    rm -f "$log"
  done
  exit "$rc"
}
trap finish EXIT

# start_dockerd DRIVER: a daemon of our own; fails when it exits or does not answer in 60 s.
start_dockerd() {
  local dir=$DOCKERD_DIR/$1
  mkdir -p "$dir"
  # shellcheck disable=SC2086
  dockerd --storage-driver="$1" --iptables=false --bridge=none ${SHOAL_LAB_DOCKERD_ARGS:-} \
    --data-root="$dir/root" --exec-root="$dir/exec" \
    -H "unix://$dir/docker.sock" --pidfile "$dir/docker.pid" \
    > "$DOCKERD_DIR/dockerd-$1.log" 2>&1 &
  DOCKERD_PID=$!
  export DOCKER_HOST="unix://$dir/docker.sock"
  local end=$((SECONDS + 60))
  until docker info >/dev/null 2>&1; do
    if ! kill -0 "$DOCKERD_PID" 2>/dev/null || [ "$SECONDS" -ge "$end" ]; then
      stop_dockerd
      return 1
    fi
    sleep 0.5
  done
}
if docker info >/dev/null 2>&1; then
  echo "compose/ci.sh: using the Docker daemon at ${DOCKER_HOST:-the default socket}"
else
  if [ -n "${SHOAL_LAB_DOCKERD_DIR:-}" ]; then
    DOCKERD_DIR=$SHOAL_LAB_DOCKERD_DIR
    mkdir -p "$DOCKERD_DIR"
  else
    DOCKERD_DIR=$(mktemp -d /tmp/shoal-lab-dockerd.XXXXXX)
  fi
  # overlay2 builds and starts the lab several times faster than vfs; vfs works everywhere.
  started=
  for driver in ${SHOAL_LAB_DOCKERD_DRIVERS:-overlay2 vfs}; do
    if start_dockerd "$driver"; then started=$driver; break; fi
  done
  if [ -z "$started" ]; then
    tail -20 "$DOCKERD_DIR"/dockerd-*.log >&2
    echo "compose/ci.sh: could not start dockerd" >&2
    exit 1
  fi
  echo "compose/ci.sh: started dockerd ($started) in $DOCKERD_DIR"
fi
phase "docker daemon"

if [ -n "${SHOAL_BIN:-}" ]; then
  bin=$SHOAL_BIN
else
  (cd .. && cargo build --release --bin shoal)
  bin=${CARGO_TARGET_DIR:-../target}/release/shoal
fi
mkdir -p bin
# Stripped: the image needs no debug info (112 MB -> about 21 MB).
strip -o bin/shoal "$bin" 2>/dev/null || cp "$bin" bin/shoal
phase "shoal binary"

export SHOAL_LAB_BASE=shoal-lab-base:bookworm
./build-base.sh "$SHOAL_LAB_BASE"
phase "base image (offline)"

"${COMPOSE[@]}" build -q 2>/dev/null || "${COMPOSE[@]}" build
phase "lab images"

# Free loopback ports for everything the lab publishes, so CI never collides with a local service.
read -r SHOAL_LAB_REGISTRY_PORT SHOAL_LAB_TRACKER_PORT SHOAL_LAB_SEEDER_PORT SHOAL_LAB_HOST1_PORT \
  SHOAL_LAB_HOST2_PORT SHOAL_LAB_HOST3_PORT SHOAL_LAB_QBITTORRENT_PORT SHOAL_LAB_PROMETHEUS_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(8)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')
export SHOAL_LAB_REGISTRY_PORT SHOAL_LAB_TRACKER_PORT SHOAL_LAB_SEEDER_PORT SHOAL_LAB_HOST1_PORT \
  SHOAL_LAB_HOST2_PORT SHOAL_LAB_HOST3_PORT SHOAL_LAB_QBITTORRENT_PORT SHOAL_LAB_PROMETHEUS_PORT

# The ring lab's (docker-compose.ring.yml) own free ports: it runs after the main lab is down, but
# a lab left up by someone else must not collide either.
read -r SHOAL_RING_REGISTRY_PORT SHOAL_RING_TRACKER1_PORT SHOAL_RING_TRACKER2_PORT SHOAL_RING_TRACKER3_PORT \
  SHOAL_RING_SEEDER1_PORT SHOAL_RING_SEEDER2_PORT SHOAL_RING_SEEDER3_PORT SHOAL_RING_HOST1_PORT \
  SHOAL_RING_HOST2_PORT SHOAL_RING_HOST3_PORT SHOAL_RING_HOST4_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(11)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')
export SHOAL_RING_REGISTRY_PORT SHOAL_RING_TRACKER1_PORT SHOAL_RING_TRACKER2_PORT SHOAL_RING_TRACKER3_PORT \
  SHOAL_RING_SEEDER1_PORT SHOAL_RING_SEEDER2_PORT SHOAL_RING_SEEDER3_PORT SHOAL_RING_HOST1_PORT \
  SHOAL_RING_HOST2_PORT SHOAL_RING_HOST3_PORT SHOAL_RING_HOST4_PORT

# One after the other on the same daemon and images; the first that fails stops the run.
for demo in ${SHOAL_LAB_DEMOS:-demo.sh demo-ring.sh}; do
  DEMO_LOGS+=("$(mktemp /tmp/shoal-lab-demo.XXXXXX.log)")
  DEMO_TIMEOUT=${DEMO_TIMEOUT:-900} "./$demo" 2>&1 | tee "${DEMO_LOGS[-1]}"
  phase "$demo"
done

# deploy/kubernetes's pods (overlays/single) in the lab's image: each container with its pod's env,
# user, read-only root and dropped capabilities starts and answers its readiness probe; the shim's
# init container (`shoal node install`) and preStop (`shoal node uninstall`) on a fake host tree.
python3 ../deploy/kubernetes/test/run_pods.py shoal-lab/shoal:dev
phase "kubernetes pods"
