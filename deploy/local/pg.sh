#!/usr/bin/env bash
# Prints the URL of a PostgreSQL server for the local stack:
# $CUTOVER_PG_URL when set, else a throwaway cluster in $CUTOVER_PG_DIR or
# under .data/pg started from the installed binaries (as user postgres when
# run as root, since initdb refuses root; then under /tmp/cutover-pg-<hash>
# if postgres cannot reach the checkout, see server_dir in env.sh).
# `pg.sh stop` stops that cluster; `pg.sh clean` also removes one in /tmp.
set -euo pipefail
. "$(dirname "$0")/env.sh"
port="${CUTOVER_PG_PORT:-55432}"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
as=()
if [ "$(id -u)" = 0 ]; then as=(runuser -u postgres --); fi

case "${1:-}" in stop|clean)
  # Both places: whether postgres can reach .data may have changed since.
  dirs=("${CUTOVER_PG_DIR:-$root/.data/pg}")
  [ -n "${CUTOVER_PG_DIR:-}" ] || dirs+=("$(away_dir pg)")
  for d in "${dirs[@]}"; do
    [ -d "$d/data" ] && "${as[@]}" "$bin/pg_ctl" -D "$d/data" -m fast -w stop >/dev/null 2>&1 || true
  done
  if [ "$1" = clean ] && ((${#dirs[@]} > 1)); then rm -rf "${dirs[1]}"; fi
  exit 0 ;;
esac
if [ -n "${CUTOVER_PG_URL:-}" ]; then echo "$CUTOVER_PG_URL"; exit 0; fi
[ -n "$bin" ] || { echo "no PostgreSQL binaries under /usr/lib/postgresql; run make deps" >&2; exit 1; }

dir="${CUTOVER_PG_DIR:-}"
[ -n "$dir" ] || dir="$(server_dir postgres pg)"
mkdir -p "$dir"
if ((${#as[@]})); then chown postgres "$dir"; fi
# Run from there: postgres's commands warn when they cannot change back to
# our directory (a checkout in /root).
dir="$(cd "$dir" && pwd)"; cd "$dir"
if [ ! -f "$dir/data/PG_VERSION" ]; then
  "${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
fi
# The port this cluster got the first time it started; another checkout's
# cluster may hold the default one.
if [ -z "${CUTOVER_PG_PORT:-}" ] && [ -f "$dir/port" ]; then port="$(cat "$dir/port")"; fi
free_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || return 0
    port=$((port + 1))
  done
}
if ! "${as[@]}" "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
  # A port found free can be taken before postgres binds it (tests start
  # servers in parallel), so a start that fails on the bind tries the next
  # free port; a port the caller chose is tried once.
  tries=1
  if [ -z "${CUTOVER_PG_PORT:-}" ]; then tries=5; free_port; fi
  for try in $(seq 1 "$tries"); do
    if "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null 2>&1; then
      break
    fi
    if ((try == tries)) || ! tail -5 "$dir/log" | grep -q "Address already in use"; then
      tail -20 "$dir/log" >&2; exit 1
    fi
    port=$((port + 1)); free_port
  done
  echo "$port" >"$dir/port"
fi
echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
