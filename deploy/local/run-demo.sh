#!/usr/bin/env bash
# The demo of `make run`, on the embedded stack, then a look at the target:
#   run-demo.sh [merge]  two systems merged into one shop (examples/merge):
#                        a GBK member CSV and MariaDB orders (pos-a), an XLSX
#                        customer sheet and JSON Lines orders (shop-b)
#   run-demo.sh basic    a CSV export and a legacy PostgreSQL table
#                        (examples/demo)
# The demo databases are dropped and recreated on each run.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
demo="${1:-merge}"
case "$demo" in merge|basic) ;; *) echo "usage: $0 [merge|basic]" >&2; exit 2 ;; esac
pg="$(deploy/local/pg.sh)"
base="${pg%%\?*}"; base="${base%/*}"
query="${pg#*\?}"; [ "$query" = "$pg" ] && query="" || query="?$query"
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
redact() { echo "$1" | sed 's#://[^@]*@#://#'; }
export CUTOVER_TRACE_FILE="${CUTOVER_TRACE_FILE:-$root/.data/demo-traces.jsonl}"
mkdir -p "$root/.data"

basic() {
  for db in cutover_demo cutover_demo_legacy; do
    psql_q "$pg" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
  done
  export CUTOVER_LEGACY_URL="$base/cutover_demo_legacy$query"
  export CUTOVER_TARGET_URL="$base/cutover_demo$query"
  export CUTOVER_CONTROL_URL="$CUTOVER_TARGET_URL"
  psql_q "$CUTOVER_LEGACY_URL" -f examples/demo/legacy.sql
  psql_q "$CUTOVER_TARGET_URL" -f examples/demo/target.sql
  echo "== cutover run --spec examples/demo/spec.json"
  set +e
  bin/cutover run --spec examples/demo/spec.json
  code=$?
  set -e
  echo "== the target (psql $(redact "$CUTOVER_TARGET_URL"))"
  psql -X "$CUTOVER_TARGET_URL" -c "SELECT 'shop.customers' AS table, count(*) FROM shop.customers UNION ALL SELECT 'shop.orders', count(*) FROM shop.orders"
  psql -X "$CUTOVER_TARGET_URL" -c "SELECT table_name, source_ref, stage, rule, column_name, reason FROM cutover.quarantine ORDER BY table_name, id"
  return $code
}

merge() {
  # pos-a's order database: MariaDB, from system_a.sql.
  local mdsn mparams mre muser mpass mhost mport client
  mdsn="$(deploy/local/mariadb.sh)"
  mparams=""; case "$mdsn" in *\?*) mparams="?${mdsn#*\?}"; mdsn="${mdsn%%\?*}" ;; esac
  mre='^([^:@]*)(:([^@]*))?@tcp\(([^:)]+):([0-9]+)\)/.*$'
  [[ "$mdsn" =~ $mre ]] || { echo "cannot read the MariaDB DSN (want user[:pass]@tcp(host:port)/)" >&2; return 1; }
  muser="${BASH_REMATCH[1]}" mpass="${BASH_REMATCH[3]}" mhost="${BASH_REMATCH[4]}" mport="${BASH_REMATCH[5]}"
  client="$(command -v mariadb || command -v mysql)"
  mysql_q() { MYSQL_PWD="$mpass" "$client" --protocol=TCP -h "$mhost" -P "$mport" -u "$muser" "$@"; }
  mysql_q -e "DROP DATABASE IF EXISTS cutover_merge_pos_a; CREATE DATABASE cutover_merge_pos_a CHARACTER SET utf8mb4"
  mysql_q cutover_merge_pos_a <examples/merge/system_a.sql
  export CUTOVER_SOURCE_A_DSN="${mdsn%/*}/cutover_merge_pos_a$mparams"

  psql_q "$pg" -c "DROP DATABASE IF EXISTS cutover_merge WITH (FORCE)" -c "CREATE DATABASE cutover_merge"
  export CUTOVER_TARGET_URL="$base/cutover_merge$query"
  export CUTOVER_CONTROL_URL="$CUTOVER_TARGET_URL"
  psql_q "$CUTOVER_TARGET_URL" -f examples/merge/target.sql
  echo "== cutover run --spec examples/merge/spec.yaml"
  set +e
  # From the spec's directory: its file paths are relative to it.
  (cd examples/merge && "$root/bin/cutover" run --spec spec.yaml)
  code=$?
  set -e
  local t="$CUTOVER_TARGET_URL"
  echo "== the target (psql $(redact "$t")), to compare with examples/merge/expected.md"
  psql -X "$t" -c "SELECT 'customers' AS table, source_system, count(*) FROM shop_v2.customers GROUP BY source_system
    UNION ALL SELECT 'orders', source_system, count(*) FROM shop_v2.orders GROUP BY source_system
    UNION ALL SELECT 'order_items', source_system, count(*) FROM shop_v2.order_items GROUP BY source_system ORDER BY 1, 2"
  echo "-- one person in both systems: the shop-b record survived, the POS member filled level and address"
  psql -X "$t" -c "SELECT c.id, c.name, c.phone, c.email, c.level, c.city, c.district, c.source_system,
      count(o.id) AS orders, string_agg(DISTINCT o.source_system, '+') AS from_systems
    FROM shop_v2.customers c LEFT JOIN shop_v2.orders o ON o.customer_id = c.id
    WHERE c.phone = '+8613896522600' GROUP BY c.id"
  echo "-- order numbers taken in both systems"
  psql -X "$t" -c "SELECT order_number, source_system, total FROM shop_v2.orders WHERE order_number LIKE '%-%' ORDER BY order_number"
  echo "-- quarantine by rule"
  psql -X "$t" -c "SELECT table_name, rule, count(*) FROM cutover.quarantine GROUP BY table_name, rule ORDER BY 1, 2"
  psql -X "$t" -c "SELECT table_name, source_ref, rule, column_name, left(reason, 90) AS reason FROM cutover.quarantine ORDER BY table_name, id"
  return $code
}

"$demo"
