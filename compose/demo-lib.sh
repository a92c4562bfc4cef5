#!/usr/bin/env bash
# Sourced by demo.sh and demo-ring.sh once they have set DEMO (their name in messages), COMPOSE,
# WORK and DEMO_TIMEOUT: the pass/fail counters, the exit cleanup (the lab's last logs on failure,
# `down -v` unless KEEP=1), the watchdog that bounds the run, and the helpers both demos use.
FAILED=0
PASSED=0
cleanup() {
  local rc=$?
  [ -n "${WATCHDOG:-}" ] && kill "$WATCHDOG" 2>/dev/null || true
  if [ "$rc" -ne 0 ]; then
    echo "$DEMO: FAILED (exit $rc); last lab logs:" >&2
    "${COMPOSE[@]}" logs --tail=25 --no-color >&2 2>&1 || true
  fi
  if [ "${KEEP:-0}" = 1 ]; then
    echo "$DEMO: KEEP=1, the lab stays up ('${COMPOSE[*]} down -v' in compose/ removes it)"
  else
    "${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
# Bounded in time whatever hangs: the watchdog ends the script and its children (bash runs the TERM
# trap only once the foreground command returns), and cleanup still runs. Killed itself, it takes
# its sleep along, so nothing holds the script's output open.
(
  trap 'kill "$nap" 2>/dev/null; exit 0' TERM
  sleep "$DEMO_TIMEOUT" & nap=$!
  wait "$nap"
  echo "$DEMO: gave up after ${DEMO_TIMEOUT}s" >&2
  kill -TERM $$
  pkill -TERM -P $$
) &
WATCHDOG=$!
trap 'exit 124' TERM

step() { printf '\n== [%3ds] %s\n' "$SECONDS" "$*"; }
fail() { echo "$DEMO: FAIL: $*" >&2; FAILED=$((FAILED + 1)); }
ok() { echo "  ok: $*"; PASSED=$((PASSED + 1)); }
# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || { echo "$DEMO: timed out after ${secs}s waiting for $what" >&2; exit 1; }
    sleep 0.5
  done
}
# metric URL NAME: the value of one sample line (NAME may carry labels), 0 when absent.
metric() {
  curl -fsS -m 10 "$1/metrics" | awk -v n="$2" '$1 == n { v = $2 } END { printf "%d\n", v + 0 }'
}
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
