#!/usr/bin/env bash
# Load benchmark: `shoal tracker` vs opentracker on loopback, same run, same wrk settings.
# Each tracker is pinned to core 0 (taskset -c 0), wrk to core 1, with
# scripts/announce.lua (a copy of ../shared/bench/announce.lua; or $ANNOUNCE_LUA) over a pool of infohashes; keep-alive and
# `Connection: close`. Prints announces/s, p50/p99 latency, the tracker's CPU µs per announce
# (from /proc/<pid>/stat utime+stime), the on-wire size of a 50-peer compact reply, and the
# shoal/opentracker ratios. Then the memory bench (1,000,000 peers over 100,000 swarms).
#
# Usage: scripts/bench-tracker.sh        env: DURATION=10s CONNS=64 HASHES=1000 SKIP_BUILD=1 SKIP_MEMORY=1 MEMBERS=N
#        SHOAL_BIN=path: that binary, no build (for A/B runs of two builds)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
HASHES=${HASHES:-1000}
LUA=${ANNOUNCE_LUA:-$ROOT/scripts/announce.lua}
for tool in wrk opentracker taskset curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool missing: bash .ci/install-deps" >&2; exit 1; }
done
[ -f "$LUA" ] || { echo "announce.lua not found (set ANNOUNCE_LUA)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "needs 2 cores (tracker on 0, wrk on 1)" >&2; exit 1; }

if [ -n "${SHOAL_BIN:-}" ]; then
  SHOAL=$SHOAL_BIN
else
  if [ -z "${SKIP_BUILD:-}" ]; then cargo build -q --release -p shoal; fi
  SHOAL=$ROOT/target/release/shoal
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

chmod 755 "$WORK"
python3 -c "import os; [print(os.urandom(20).hex()) for _ in range($HASHES)]" > "$WORK/hashes.txt"
cp "$WORK/hashes.txt" "$WORK/whitelist"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() { # port
  for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.05; done
  echo "nothing listening on $1" >&2; exit 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# run_wrk NAME PID PORT MODE -> prints one row and records figures in $WORK/NAME.MODE
run_wrk() {
  local name=$1 pid=$2 port=$3 mode=$4 hdr=()
  [ "$mode" = close ] && hdr=(-H "Connection: close")
  local t0; t0=$(cpu_ticks "$pid")
  taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" --latency "${hdr[@]}" -s "$LUA" \
    "http://127.0.0.1:$port" -- "$WORK/hashes.txt" 50 /announce > "$WORK/wrk.out" 2>&1
  local t1; t1=$(cpu_ticks "$pid")
  local reqs rps p50 p99 errs
  reqs=$(sed -n 's/^RESULT requests=\([0-9]*\).*/\1/p' "$WORK/wrk.out")
  rps=$(sed -n 's/^RESULT requests=.* rps=\([0-9]*\).*/\1/p' "$WORK/wrk.out")
  errs=$(sed -n 's/^RESULT requests=.* errors[^=]*=\([0-9/]*\).*/\1/p' "$WORK/wrk.out")
  p50=$(sed -n 's/^RESULT latency_ms p50=\([0-9.]*\).*/\1/p' "$WORK/wrk.out")
  p99=$(sed -n 's/^RESULT latency_ms .*p99=\([0-9.]*\) p99.9.*/\1/p' "$WORK/wrk.out")
  local secs cpu_us busy
  secs=$(sed -n 's/^RESULT requests=.* duration_s=\([0-9.]*\).*/\1/p' "$WORK/wrk.out")
  cpu_us=$(python3 -c "print(f'{($t1 - $t0) * $TICK_US / max($reqs, 1):.1f}')")
  # Below ~95% the tracker was not the bottleneck (wrk or other load on the machine was).
  busy=$(python3 -c "print(f'{($t1 - $t0) * $TICK_US / 1e4 / $secs:.0f}')")
  echo "$rps $p50 $p99 $cpu_us" > "$WORK/$name.$mode"
  printf '%-12s %-10s %10s %9s %9s %12s %8s%%   errors %s\n' "$name" "$mode" "$rps" "$p50" "$p99" "$cpu_us" "$busy" "$errs"
}

# wire_bytes PORT -> headers + body of one 50-peer compact announce reply, after 60 other
# peers joined that infohash (so the reply really carries 50 peers)
wire_bytes() {
  local hash urls=() i
  hash=$(head -1 "$WORK/hashes.txt" | sed 's/../%&/g')
  for i in $(seq 1 60); do
    urls+=("http://127.0.0.1:$1/announce?info_hash=$hash&peer_id=-BE0001-$(printf %012d "$i")&port=$((2000 + i))&left=1&numwant=0&compact=1")
  done
  curl -s "${urls[@]}" > /dev/null
  curl -s -o "$WORK/reply.bin" -w '%{size_header} %{size_download}' \
    "http://127.0.0.1:$1/announce?info_hash=$hash&peer_id=-BE0001-000000000000&port=1&left=1&numwant=50&compact=1&no_peer_id=1" |
    awk '{print $1 + $2}'
}

bench() { # NAME PID PORT
  local name=$1 pid=$2 port=$3
  # Warm-up fills the swarms (about 80 peers per infohash) so replies carry 50 peers.
  taskset -c 1 wrk -t1 -c"$CONNS" -d2s -s "$LUA" "http://127.0.0.1:$port" -- "$WORK/hashes.txt" 50 /announce >/dev/null 2>&1
  echo "$(wire_bytes "$port")" > "$WORK/$name.wire"
  run_wrk "$name" "$pid" "$port" keepalive
  run_wrk "$name" "$pid" "$port" close
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)   wrk: -t1 -c$CONNS -d$DURATION, $HASHES infohashes, numwant=50"
printf '%-12s %-10s %10s %9s %9s %12s %9s\n' tracker mode "req/s" "p50_ms" "p99_ms" "cpu_us/req" "core_busy"

SP=$(free_port)
# MEMBERS=N: the tracker is one of N members (itself and N-1 others that need not exist), so
# every announce also computes its role (owner, failover, outside; issue 19).
MEMBER_ARGS=()
if [ -n "${MEMBERS:-}" ]; then
  self="http://127.0.0.1:$SP/announce" list="http://127.0.0.1:$SP/announce"
  for i in $(seq 2 "$MEMBERS"); do list="$list,http://tracker-$i.invalid:6969/announce"; done
  MEMBER_ARGS=(--member "$list" --self-url "$self")
  echo "shoal tracker as one of $MEMBERS members"
fi
taskset -c 0 "$SHOAL" tracker --listen "127.0.0.1:$SP" --allow-list "$WORK/whitelist" "${MEMBER_ARGS[@]}" >"$WORK/shoal.log" 2>&1 &
PIDS+=($!); SHOAL_PID=$!
wait_http "$SP"
bench shoal "$SHOAL_PID" "$SP"
SHOAL_RSS=$(awk '/VmRSS/{print $2}' "/proc/$SHOAL_PID/status")
kill "$SHOAL_PID"

OP=$(free_port)
taskset -c 0 opentracker -i 127.0.0.1 -p "$OP" -P "$(free_port)" -d "$WORK" -w whitelist >"$WORK/ot.log" 2>&1 &
PIDS+=($!); OT_PID=$!
wait_http "$OP"
bench opentracker "$OT_PID" "$OP"
kill "$OT_PID"

echo
echo "50-peer compact reply on the wire (headers + body): shoal $(cat "$WORK/shoal.wire") B, opentracker $(cat "$WORK/opentracker.wire") B (target < 450)"
echo "shoal RSS after the run: ${SHOAL_RSS} kB"
for mode in keepalive close; do
  read -r s_rps s_p50 s_p99 s_cpu < "$WORK/shoal.$mode"
  read -r o_rps o_p50 o_p99 o_cpu < "$WORK/opentracker.$mode"
  python3 - "$mode" "$s_rps" "$o_rps" "$s_p99" "$o_p99" "$s_cpu" "$o_cpu" <<'EOF'
import sys
mode, s_rps, o_rps, s_p99, o_p99, s_cpu, o_cpu = sys.argv[1], *map(float, sys.argv[2:])
print(f"RATIO {mode:9s} req/s shoal/opentracker = {s_rps / max(o_rps, 1):.2f}   "
      f"p99 = {s_p99 / max(o_p99, 1e-9):.2f}   cpu_us/req = {s_cpu / max(o_cpu, 1e-9):.2f}")
EOF
done
echo "targets: keep-alive >= 35000 req/s with p99 < 3 ms; close >= opentracker; <= 30 us CPU per announce"

if [ -z "${SKIP_MEMORY:-}" ]; then
  echo
  cargo bench -q -p shoal-tracker --bench swarm_memory
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
