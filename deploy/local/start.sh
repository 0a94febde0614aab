#!/usr/bin/env bash
# Starts services as separate processes on loopback (all six by default):
#   deploy/local/start.sh [service...]
# The orchestrator needs CUTOVER_CONTROL_URL (and usually CUTOVER_TARGET_URL).
# Logs and pid files go to $CUTOVER_LOCAL_DIR (default .data/local).
set -euo pipefail
. "$(dirname "$0")/env.sh"
mkdir -p "$CUTOVER_LOCAL_DIR"
services="${*:-$ALL_SERVICES}"
# Certificates, tokens and the secret key: made when missing, kept otherwise.
if [ -x "$CUTOVER_BIN/cutover" ]; then
  "$CUTOVER_BIN/cutover" certs --dir "$CUTOVER_TLS_DIR" >/dev/null
elif [ ! -f "$CUTOVER_TLS_DIR/ca.pem" ]; then
  echo "missing $CUTOVER_BIN/cutover (it makes the certificates): run make build" >&2; exit 1
fi
for s in $services; do
  [ -x "$CUTOVER_BIN/$s" ] || { echo "missing $CUTOVER_BIN/$s: run make build" >&2; exit 1; }
  pidf="$CUTOVER_LOCAL_DIR/$s.pid"
  if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
    echo "$s already running (pid $(cat "$pidf"))" >&2; continue
  fi
  # CUTOVER_PPROF_BASE=N serves each service's profiler on N+<its port offset>.
  pprof=""
  if [ -n "${CUTOVER_PPROF_BASE:-}" ]; then a="$(addr_of "$s")"; pprof="127.0.0.1:$((CUTOVER_PPROF_BASE + ${a##*:} % 100))"; fi
  # CUTOVER_METRICS_BASE=N serves each one's Prometheus /metrics on N+<its port offset>.
  metrics=""
  if [ -n "${CUTOVER_METRICS_BASE:-}" ]; then a="$(addr_of "$s")"; metrics="127.0.0.1:$((CUTOVER_METRICS_BASE + ${a##*:} % 100))"; fi
  CUTOVER_PPROF_ADDR="$pprof" CUTOVER_METRICS_ADDR="$metrics" OTEL_BSP_SCHEDULE_DELAY="${OTEL_BSP_SCHEDULE_DELAY:-500}" \
    "$CUTOVER_BIN/$s" >>"$CUTOVER_LOCAL_DIR/$s.log" 2>&1 &
  echo $! >"$pidf"
done
# Wait until every started service accepts connections.
for s in $services; do
  a="$(addr_of "$s")"; host="${a%:*}"; port="${a##*:}"
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then break; fi
    if ! kill -0 "$(cat "$CUTOVER_LOCAL_DIR/$s.pid")" 2>/dev/null; then
      echo "$s exited; its log:" >&2; tail -20 "$CUTOVER_LOCAL_DIR/$s.log" >&2; exit 1
    fi
    sleep 0.1
  done
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null || { echo "$s did not listen on $a" >&2; exit 1; }
  echo "$s listening on $a (pid $(cat "$CUTOVER_LOCAL_DIR/$s.pid"))"
done
