#!/usr/bin/env bash
# The demo migration of `make run`: a CSV export and a legacy PostgreSQL
# table into a new schema, on the embedded stack, then a look at the target.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
pg="$(deploy/local/pg.sh)"
base="${pg%%\?*}"; base="${base%/*}"
query="${pg#*\?}"; [ "$query" = "$pg" ] && query="" || query="?$query"
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
for db in cutover_demo cutover_demo_legacy; do
  psql_q "$pg" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
done
export CUTOVER_LEGACY_URL="$base/cutover_demo_legacy$query"
export CUTOVER_TARGET_URL="$base/cutover_demo$query"
export CUTOVER_CONTROL_URL="$CUTOVER_TARGET_URL"
export CUTOVER_TRACE_FILE="${CUTOVER_TRACE_FILE:-$root/.data/demo-traces.jsonl}"
psql_q "$CUTOVER_LEGACY_URL" -f examples/demo/legacy.sql
psql_q "$CUTOVER_TARGET_URL" -f examples/demo/target.sql
echo "== cutover run --spec examples/demo/spec.json"
set +e
bin/cutover run --spec examples/demo/spec.json
code=$?
set -e
echo "== the target (psql $(echo "$CUTOVER_TARGET_URL" | sed 's#://[^@]*@#://#'))"
psql -X "$CUTOVER_TARGET_URL" -c "SELECT 'shop.customers' AS table, count(*) FROM shop.customers UNION ALL SELECT 'shop.orders', count(*) FROM shop.orders"
psql -X "$CUTOVER_TARGET_URL" -c "SELECT table_name, source_ref, stage, rule, column_name, reason FROM cutover.quarantine ORDER BY table_name, id"
exit $code
