#!/usr/bin/env bash
# Stops local services gracefully (SIGTERM, then SIGKILL after 15 s):
#   deploy/local/stop.sh [service...]
set -euo pipefail
. "$(dirname "$0")/env.sh"
services="${*:-$ALL_SERVICES}"
for s in $services; do
  pidf="$CUTOVER_LOCAL_DIR/$s.pid"
  [ -f "$pidf" ] || continue
  pid="$(cat "$pidf")"
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidf"
done
