#!/usr/bin/env bash
# Prints the go-sql-driver DSN (no database) of a MariaDB/MySQL server for
# the local demo: $CUTOVER_MYSQL_DSN when set, else root on 127.0.0.1:3306
# when it answers, else a throwaway MariaDB in $CUTOVER_MYSQL_DIR or under
# .data/mariadb started from the installed binaries (as user mysql when run
# as root; then under /tmp/cutover-mariadb-<hash> if mysql cannot reach the
# checkout, see server_dir in env.sh).
# `mariadb.sh stop` stops that throwaway server; `mariadb.sh clean` also
# removes one in /tmp.
set -euo pipefail
. "$(dirname "$0")/env.sh"
port="${CUTOVER_MYSQL_PORT:-53306}"
client="$(command -v mariadb || command -v mysql || true)"
as=()
if [ "$(id -u)" = 0 ]; then as=(--user=mysql); fi

answers() { # host port
  [ -n "$client" ] && timeout 5 "$client" --protocol=TCP -h "$1" -P "$2" -u root -e 'SELECT 1' >/dev/null 2>&1
}

case "${1:-}" in stop|clean)
  # Both places: whether mysql can reach .data may have changed since.
  dirs=("${CUTOVER_MYSQL_DIR:-$root/.data/mariadb}")
  [ -n "${CUTOVER_MYSQL_DIR:-}" ] || dirs+=("$(away_dir mariadb)")
  for d in "${dirs[@]}"; do
    [ -f "$d/mariadbd.pid" ] || continue
    pid="$(cat "$d/mariadbd.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  if [ "$1" = clean ] && ((${#dirs[@]} > 1)); then rm -rf "${dirs[1]}"; fi
  exit 0 ;;
esac
if [ -n "${CUTOVER_MYSQL_DSN:-}" ]; then echo "$CUTOVER_MYSQL_DSN"; exit 0; fi
if answers 127.0.0.1 3306; then echo "root@tcp(127.0.0.1:3306)/"; exit 0; fi
[ -n "$client" ] || { echo "no mariadb/mysql client: run make deps or set CUTOVER_MYSQL_DSN" >&2; exit 1; }
if ! answers 127.0.0.1 "$port"; then
  bin="$(command -v mariadbd || true)"; [ -n "$bin" ] || bin=/usr/sbin/mariadbd
  [ -x "$bin" ] && command -v mariadb-install-db >/dev/null \
    || { echo "no MariaDB server on 127.0.0.1:3306 and no mariadbd to start one: set CUTOVER_MYSQL_DSN" >&2; exit 1; }
  dir="${CUTOVER_MYSQL_DIR:-}"
  [ -n "$dir" ] || dir="$(server_dir mysql mariadb)"
  mkdir -p "$dir/data"
  if ((${#as[@]})); then chown -R mysql "$dir"; fi
  if [ ! -d "$dir/data/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal \
      --skip-test-db "${as[@]}" >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; exit 1; }
  fi
  # setsid: the server outlives this script, like pg.sh's cluster.
  setsid "$bin" --no-defaults --datadir="$dir/data" --bind-address=127.0.0.1 --port="$port" \
    --socket="$dir/mariadbd.sock" --pid-file="$dir/mariadbd.pid" --skip-log-bin \
    --innodb-flush-log-at-trx-commit=2 --log-error="$dir/error.log" "${as[@]}" </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 300); do answers 127.0.0.1 "$port" && break; sleep 0.1; done
  answers 127.0.0.1 "$port" || { echo "mariadbd did not answer on port $port:" >&2; tail -20 "$dir/error.log" >&2; exit 1; }
fi
echo "root@tcp(127.0.0.1:$port)/"
