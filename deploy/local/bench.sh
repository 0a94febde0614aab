#!/usr/bin/env bash
# make bench: 1,000,000 orders (about 100 bytes a row) loaded through the six
# services running as separate processes (a cast on every column and one
# rule), and the same file loaded by `psql \copy` into the same table shape,
# three times each, alternating. Prints both medians and, last,
# `ratio_vs_copy X.XX` = cutover rows/s / COPY rows/s. A benchmark, not a test.
# In the same run, each a median of 3 unless said otherwise:
# The CSV job reads BENCH_CSV_PARTITIONS byte ranges of the file at once
# (default 2, one per core here: the parallelism a user would set), the
# reference is the one \copy a user would otherwise type.
#   mysql_ratio_vs_pipe        the same rows from a MariaDB/MySQL table
#                              (BENCH_MYSQL_PARTITIONS key ranges, default 4)
#                              against `mysql -B --raw | psql \copy`
#   pgloader_{csv,mysql}_vs_cutover  pgloader time / cutover time (>1: cutover
#                              is faster), when pgloader is or can be installed
#   reconcile_independent_vs_load  the independent reconcile of the MariaDB
#                              job (both databases hash their own rows) /
#                              its load, a median each
#   reconcile_floor_vs_load    both databases only computing md5 of every
#                              row's plain text / the load: the least any
#                              such reconcile can take here
#   tracing_cost_pct           the services' least CPU per load with 100%
#                              sampling against none (the stacks take turns): on a machine whose cores the load
#                              fills, CPU is throughput, and it is steadier
#                              than wall time, which moves by more than
#                              tracing costs when anything else runs
#   tracing_cost_wall_pct      the same from the wall-time medians
#   orchestrator_cpu_s_per_1m  the orchestrator's CPU over a CSV load
#   rss_mib                    peak RSS (VmHWM) of each service after one load
#                              of 1M and, on fresh processes, of 10M rows (one
#                              run; CUTOVER_BENCH_10M=0 skips it)
# BENCH_PGLOADER=0 leaves pgloader out, BENCH_PARTITION_ROWS=0 the
# partition check (both take minutes).
# CUTOVER_BIN=dir runs the services from dir instead of bin/; CUTOVER_SRC=dir
# runs the partition check's Go test from that checkout instead of this one.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
ROWS="${BENCH_ROWS:-1000000}"
RUNS="${BENCH_RUNS:-3}"
BIG_ROWS=$((ROWS * 10))
MYSQL_PARTS="${BENCH_MYSQL_PARTITIONS:-4}"
CSV_PARTS="${BENCH_CSV_PARTITIONS:-2}"
export CUTOVER_PORT_BASE="${CUTOVER_PORT_BASE:-17000}"
export CUTOVER_LOCAL_DIR="$root/.data/bench/local"
. deploy/local/env.sh
pg="$(deploy/local/pg.sh)"
base="${pg%%\?*}"; base="${base%/*}"
query="${pg#*\?}"; [ "$query" = "$pg" ] && query="" || query="?$query"
data="$root/.data/bench"; mkdir -p "$data"
gen_csv() { # rows file
  [ -s "$2" ] && return
  echo "generating $2" >&2
  awk -v n="$1" 'BEGIN {
    print "id,customer_id,order_no,status,amount,currency,created_at,note"
    split("new paid shipped done cancelled", st, " "); split("CNY USD EUR", cur, " ")
    for (i = 1; i <= n; i++) {
      s = (i * 7919) % 1000003
      printf "%d,%d,ORD-%08d,%s,%d.%02d,%s,2023-%02d-%02d %02d:%02d:%02d+00,order note %d for customer %d\n",
        i, 1 + s % 50000, i, st[1 + s % 5], s % 100000, s % 100, cur[1 + s % 3],
        1 + s % 12, 1 + s % 28, s % 24, s % 60, (s * 3) % 60, s, 1 + s % 50000
    }
  }' >"$2.tmp" && mv "$2.tmp" "$2"
}
csv="$data/orders-$ROWS.csv"
gen_csv "$ROWS" "$csv"
bytes=$(stat -c %s "$csv")
echo "input: $ROWS rows, $bytes bytes ($((bytes / ROWS)) bytes/row)" >&2
# Other work on the machine skews every figure: say how busy it was.
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
for db in cutover_bench cutover_bench_control; do
  psql_q "$pg" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
done
target="$base/cutover_bench$query"
export CUTOVER_CONTROL_URL="$base/cutover_bench_control$query" CUTOVER_TARGET_URL="$target"
export CUTOVER_TRACE_FILE="$data/traces.jsonl"
rm -f "$CUTOVER_TRACE_FILE"
table_ddl="DROP TABLE IF EXISTS bench_orders;
CREATE TABLE bench_orders (id bigint PRIMARY KEY, customer_id bigint, order_no text, status text,
  amount numeric(12,2), currency text, created_at timestamptz, note text);"
# Every timed load starts on a new empty table after a checkpoint, so no
# run pays for the dirty pages of the one before (best effort: needs superuser).
fresh_table() {
  psql_q "$target" -c "$table_ddl"
  psql -X -q "$target" -c CHECKPOINT >/dev/null 2>&1 || true
}
count_rows() { psql -X -At "$target" -c "SELECT count(*) FROM bench_orders"; }

# The source table of the MySQL bench: the same rows, typed the way a legacy
# order table would be, in a throwaway database on the server mariadb.sh finds.
mdsn="$(deploy/local/mariadb.sh)"
mparams=""; case "$mdsn" in *\?*) mparams="?${mdsn#*\?}"; mdsn="${mdsn%%\?*}" ;; esac
mre='^([^:@]*)(:([^@]*))?@tcp\(([^:)]+):([0-9]+)\)/.*$'
[[ "$mdsn" =~ $mre ]] || { echo "cannot read the MariaDB DSN (want user[:pass]@tcp(host:port)/)" >&2; exit 1; }
muser="${BASH_REMATCH[1]}" mpass="${BASH_REMATCH[3]}" mhost="${BASH_REMATCH[4]}" mport="${BASH_REMATCH[5]}"
mclient="$(command -v mariadb || command -v mysql)"
mysql_q() { MYSQL_PWD="$mpass" "$mclient" --protocol=TCP -h "$mhost" -P "$mport" -u "$muser" "$@"; }
msrc=cutover_bench_src
mysql_q -e "DROP DATABASE IF EXISTS $msrc; CREATE DATABASE $msrc CHARACTER SET utf8mb4"
mysql_q "$msrc" -e "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, order_no varchar(16),
  status varchar(12), amount decimal(12,2), currency char(3), created_at datetime, note varchar(64)) ENGINE=InnoDB"
t0=$(date +%s)
# created_at without the CSV's "+00": DATETIME holds wall time (UTC here).
mysql_q --local-infile=1 "$msrc" -e "LOAD DATA LOCAL INFILE '$csv' INTO TABLE orders
  FIELDS TERMINATED BY ',' IGNORE 1 LINES (id, customer_id, order_no, status, amount, currency, @at, note)
  SET created_at = LEFT(@at, 19)"
echo "mysql source: $(mysql_q -N "$msrc" -e 'SELECT count(*) FROM orders') rows in $msrc ($(($(date +%s) - t0))s)" >&2

# pgloader where it is installed or installable (one apt-get attempt).
pgloader_ok=1
if [ "${BENCH_PGLOADER:-1}" = 0 ]; then
  pgloader_ok=0
elif ! command -v pgloader >/dev/null 2>&1; then
  echo "installing pgloader with apt-get" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq pgloader; } >"$data/pgloader-install.log" 2>&1 || true
  command -v pgloader >/dev/null 2>&1 || { pgloader_ok=0; echo "pgloader could not be installed (see $data/pgloader-install.log)" >&2; }
fi
pg_pgloader="$base/cutover_bench$query"
my_pgloader="mysql://$muser${mpass:+:$mpass}@$mhost:$mport/$msrc"
cat >"$data/pgloader-csv.load" <<LOAD
LOAD CSV FROM '$csv' (id, customer_id, order_no, status, amount, currency, created_at, note)
  INTO $pg_pgloader TARGET TABLE bench_orders
  WITH skip header = 1, fields terminated by ',';
LOAD
cat >"$data/pgloader-mysql.load" <<LOAD
LOAD DATABASE FROM $my_pgloader INTO $pg_pgloader
  WITH data only, create no tables, create no indexes, no foreign keys, reset no sequences
  INCLUDING ONLY TABLE NAMES MATCHING 'orders'
  ALTER TABLE NAMES MATCHING 'orders' RENAME TO 'bench_orders'
  ALTER SCHEMA '$msrc' RENAME TO 'public';
LOAD

# Two stacks: the default one, tracing every batch (always_on makes the
# default's effect explicit), and one that samples nothing on its own ports
# and control database, so tracing-on and -off loads alternate on warm
# processes and drift on a shared machine hits both alike.
off_base=$((CUTOVER_PORT_BASE + 200)) off_dir="$data/local-off"
psql_q "$pg" -c "DROP DATABASE IF EXISTS cutover_bench_control_off WITH (FORCE)" -c "CREATE DATABASE cutover_bench_control_off"
off_control="$base/cutover_bench_control_off$query"
stop_all() {
  deploy/local/stop.sh >/dev/null 2>&1 || true
  CUTOVER_PORT_BASE=$off_base CUTOVER_LOCAL_DIR="$off_dir" deploy/local/stop.sh >/dev/null 2>&1 || true
}
trap stop_all EXIT
stop_all
# start_on: fresh processes for the default stack.
export CUTOVER_FILE_ROOTS="$data"
start_on() {
  deploy/local/stop.sh >/dev/null 2>&1 || true
  rm -f "$CUTOVER_LOCAL_DIR"/*.log
  OTEL_TRACES_SAMPLER=always_on deploy/local/start.sh >/dev/null
}
start_on
mkdir -p "$off_dir"; rm -f "$off_dir"/*.log
CUTOVER_PORT_BASE=$off_base CUTOVER_LOCAL_DIR="$off_dir" CUTOVER_CONTROL_URL="$off_control" \
  OTEL_TRACES_SAMPLER=always_off deploy/local/start.sh >/dev/null
gw="https://$CUTOVER_GATEWAY_ADDR" gw_off="https://127.0.0.1:$((off_base + 80))"
# The gateway speaks HTTPS with the development CA and wants a token.
api() { curl -sS --cacert "$CUTOVER_TLS_DIR/ca.pem" -H "Authorization: Bearer $(cat "$CUTOVER_TLS_DIR/admin.token")" "$@"; }
columns='"columns":[{"target":"id","source":"id"},{"target":"customer_id","source":"customer_id"},
  {"target":"order_no","source":"order_no"},{"target":"status","source":"status"},
  {"target":"amount","source":"amount"},{"target":"currency","source":"currency"},
  {"target":"created_at","source":"created_at"},{"target":"note","source":"note"}],
 "rules":[{"column":"status","one_of":{"values":["new","paid","shipped","done","cancelled"]}}]'
csv_spec() { # file
  echo "{\"name\":\"bench\",\"batch_size\":${BENCH_BATCH:-10000},\"parallelism\":$CSV_PARTS,\"tables\":[{\"name\":\"orders\",
 \"source\":{\"csv\":{\"path\":\"$1\"}},\"target_table\":\"bench_orders\",\"partitions\":$CSV_PARTS, $columns}]}"
}
spec=$(csv_spec "$csv")
mysql_spec="{\"name\":\"bench-mysql\",\"batch_size\":${BENCH_BATCH:-10000},\"parallelism\":$MYSQL_PARTS,\"tables\":[{\"name\":\"orders\",
 \"source\":{\"mysql\":{\"dsn\":\"${mdsn%/*}/$msrc$mparams\",\"table\":\"orders\"}},\"target_table\":\"bench_orders\",
 \"partitions\":$MYSQL_PARTS, $columns}]}"
now() { date +%s.%N; }
secs() { echo "$1 $2" | awk '{ printf "%.3f", $2 - $1 }'; }
pid_of() { cat "${ldir:-$CUTOVER_LOCAL_DIR}/$1.pid"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$(pid_of "$1")/stat"; }
all_ticks() { local s t=0; for s in $ALL_SERVICES; do t=$((t + $(cpu_ticks "$s"))); done; echo "$t"; }
# JSON from the gateway may have a space after a colon or a comma
# (protojson varies its output on purpose): the patterns allow for it.
# run_cutover [spec [rows]]: one job over REST, timed from create to
# succeeded; leaves the job id and the CPU ticks of the orchestrator and of
# all six services in $data.
# gw=… ldir=… run_cutover runs it on the tracing-off stack.
run_cutover() {
  local sp="${1:-$spec}" n="${2:-$ROWS}"
  fresh_table
  local t0 c0 a0 id state body
  c0=$(cpu_ticks orchestrator) a0=$(all_ticks)
  t0=$(now)
  body=$(api -X POST "$gw/v1/jobs" -H 'Content-Type: application/json' -d "$sp")
  id=$(echo "$body" | sed -n 's/.*"id":[[:space:]]*"\(job-[^"]*\)".*/\1/p')
  [ -n "$id" ] || { echo "create job failed: $body" >&2; exit 1; }
  # One watch stream until the job ends: polling with a curl every 50 ms
  # took a tenth of this 2-core machine from the load it was timing.
  api -N "$gw/v1/jobs/$id:watch" >"$data/last_watch" || true
  local t1; t1=$(now)
  state=$(api "$gw/v1/jobs/$id" | sed -n 's/.*"state":[[:space:]]*"\(JOB_STATE_[A-Z]*\)".*/\1/p')
  [ "$state" = JOB_STATE_SUCCEEDED ] || { echo "job $id: $state" >&2; api "$gw/v1/jobs/$id/report" >&2; exit 1; }
  echo "$(($(cpu_ticks orchestrator) - c0)) $(($(all_ticks) - a0))" >"$data/last_cpu"
  local loaded; loaded=$(count_rows)
  [ "$loaded" = "$n" ] || { echo "cutover loaded $loaded of $n rows" >&2; exit 1; }
  echo "$id" >"$data/last_job"
  secs "$t0" "$t1"
}
# Reconcile of the job just loaded, over REST, at the server's default
# level (independent; a CSV job is replayed): it must pass.
run_reconcile() {
  local id t0 t1 body; id=$(cat "$data/last_job")
  t0=$(now)
  body=$(api -X POST "$gw/v1/jobs/$id:reconcile" -H 'Content-Type: application/json' -d '{}')
  t1=$(now)
  echo "$body" | grep -q '"reconciliation":[[:space:]]*{[[:space:]]*"job_\?[iI]d":[[:space:]]*"[^"]*",[[:space:]]*"ok":[[:space:]]*true' || { echo "reconcile $id failed: $body" >&2; exit 1; }
  secs "$t0" "$t1"
}
# Then 10 scattered differences (4 changed amounts, 3 deleted rows, 3 new
# dates): the reconcile must find exactly these 10 keys.
run_reconcile_damaged() {
  local id body found; id=$(cat "$data/last_job")
  psql_q "$target" -c "UPDATE bench_orders SET amount = amount + 0.01 WHERE id IN (17, 250003, 499999, 999983)" \
    -c "DELETE FROM bench_orders WHERE id IN (101, 333333, 777777)" \
    -c "UPDATE bench_orders SET created_at = created_at + interval '1 day' WHERE id IN (42, 600001, 888888)"
  body=$(api -X POST "$gw/v1/jobs/$id:reconcile" -H 'Content-Type: application/json' -d '{"max_differences": 50}')
  found=$(echo "$body" | grep -o '"kind":[[:space:]]*"[a-z]*"' | wc -l)
  # protojson leaves out ok when it is false.
  if echo "$body" | grep -q '"reconciliation":[[:space:]]*{[[:space:]]*"job_\?[iI]d":[[:space:]]*"[^"]*",[[:space:]]*"ok":[[:space:]]*true'; then echo "reconcile of a damaged target passed: $body" >&2; exit 1; fi
  [ "$found" = 10 ] || { echo "reconcile found $found differences, want 10: $body" >&2; exit 1; }
  echo "$found"
}
run_copy() {
  fresh_table
  local t0 t1; t0=$(now)
  psql_q "$target" -c "\\copy bench_orders FROM '$csv' WITH (FORMAT csv, HEADER true)"
  t1=$(now)
  secs "$t0" "$t1"
}
# The raw pipe a DBA would type: rows as tab-separated text straight into COPY.
# --quick streams instead of buffering the result; PGTZ=UTC reads DATETIME
# wall time as UTC, as cutover does.
run_pipe() {
  fresh_table
  local t0 t1; t0=$(now)
  mysql_q -B --raw -N --quick "$msrc" -e "SELECT id, customer_id, order_no, status, amount, currency, created_at, note FROM orders" \
    | PGTZ=UTC psql_q "$target" -c "\\copy bench_orders FROM STDIN"
  t1=$(now)
  local loaded; loaded=$(count_rows)
  [ "$loaded" = "$ROWS" ] || { echo "mysql | psql loaded $loaded of $ROWS rows" >&2; exit 1; }
  secs "$t0" "$t1"
}
run_pgloader() { # csv|mysql
  fresh_table
  local t0 t1 log="$data/pgloader-$1.log"; t0=$(now)
  pgloader --no-ssl-cert-verification "$data/pgloader-$1.load" >"$log" 2>&1 || { echo "pgloader $1 failed:" >&2; tail -20 "$log" >&2; exit 1; }
  t1=$(now)
  local loaded; loaded=$(count_rows)
  [ "$loaded" = "$ROWS" ] || { echo "pgloader $1 loaded $loaded of $ROWS rows:" >&2; tail -20 "$log" >&2; exit 1; }
  secs "$t0" "$t1"
}
rss_mib() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$(pid_of "$1")/status"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
rate() { awk -v r="$1" -v t="$2" 'BEGIN { printf "%.0f", r / t }'; }

# Partition independence at scale (issue 3): the same MariaDB table with
# 1 and with 16 partitions must give identical targets. Skip: BENCH_PARTITION_ROWS=0.
prows="${BENCH_PARTITION_ROWS:-5000000}"
if [ "$prows" != 0 ]; then
  echo "partition check: $prows MariaDB rows, 1 vs 16 partitions" >&2
  (cd "${CUTOVER_SRC:-$root}/services/cutover" && CI=true CUTOVER_PARTITION_ROWS="$prows" go test -count=1 -timeout 60m -v -run '^TestMariaDBPartitionCount$' ./stack/ 2>&1 \
    | grep -E '^(---|ok|FAIL)|partitions_test' >&2)
fi
# CSV: cutover with tracing on and off, \copy and pgloader alternating. Peak
# RSS at 1M rows is read after the first load, when each process has seen one.
cut=(); off=(); cp=(); pgl_csv=(); ocpu=(); acpu=(); acpu_off=(); declare -A rss1 rss10
run_off() {
  local c a o
  c=$(gw=$gw_off ldir=$off_dir run_cutover); off+=("$c"); read -r o a <"$data/last_cpu"; acpu_off+=("$a")
  echo "run $i: cutover, tracing off ${c}s" >&2
}
for i in $(seq 1 "$RUNS"); do
  # Tracing on and off take turns going first, so whatever the run before
  # left behind (pgloader's, say) weighs on both alike.
  if [ $((i % 2)) = 0 ]; then run_off; fi
  c=$(run_cutover); cut+=("$c"); read -r o a <"$data/last_cpu"; ocpu+=("$o"); acpu+=("$a")
  echo "run $i: cutover ${c}s" >&2
  if [ "$i" = 1 ]; then for s in $ALL_SERVICES; do rss1[$s]=$(rss_mib "$s"); done; fi
  if [ "$i" = "$RUNS" ]; then
    rec=$(run_reconcile); rec_load=$c; echo "run $i: reconcile ${rec}s" >&2
    found=$(run_reconcile_damaged); echo "run $i: reconcile after 10 scattered changes found $found" >&2
  fi
  if [ $((i % 2)) = 1 ]; then run_off; fi
  p=$(run_copy); cp+=("$p"); echo "run $i: psql \\copy ${p}s" >&2
  if [ "$pgloader_ok" = 1 ]; then p=$(run_pgloader csv); pgl_csv+=("$p"); echo "run $i: pgloader csv ${p}s" >&2; fi
done
# Where the CPU went: seconds of CPU per service over the CSV runs.
for s in $ALL_SERVICES; do
  awk -v s="$s" -v hz="$(getconf CLK_TCK)" '{ printf "cpu %-12s %6.2fs\n", s, ($14 + $15) / hz }' "/proc/$(pid_of "$s")/stat" >&2
done
# The tracing-off stack is done; it would only add noise from here on.
CUTOVER_PORT_BASE=$off_base CUTOVER_LOCAL_DIR="$off_dir" deploy/local/stop.sh >/dev/null 2>&1 || true
# MySQL/MariaDB on the same processes: cutover, the raw pipe and pgloader.
mcut=(); pipe=(); pgl_my=(); mrec=()
for i in $(seq 1 "$RUNS"); do
  c=$(run_cutover "$mysql_spec"); mcut+=("$c"); echo "run $i: cutover mysql ${c}s" >&2
  # The independent level (issue 12): MariaDB and PostgreSQL each hash
  # their own rows; a file source has no database, so this is the one.
  # Every run, so that the ratio is of two medians, not of two samples.
  r=$(run_reconcile); mrec+=("$r"); echo "run $i: reconcile mysql (independent) ${r}s" >&2
  p=$(run_pipe); pipe+=("$p"); echo "run $i: mysql | psql \\copy ${p}s" >&2
  if [ "$pgloader_ok" = 1 ]; then p=$(run_pgloader mysql); pgl_my+=("$p"); echo "run $i: pgloader mysql ${p}s" >&2; fi
done
# The floor under any reconcile that has both databases hash every row:
# each computes md5 of every row's plain text (no canonical forms, no
# buckets), in 4 key ranges at once, as the independent level runs. The
# target still holds the last run's rows.
run_floor() {
  local t0 t1 r lo hi w=$(((ROWS + 3) / 4))
  t0=$(now)
  for r in 0 1 2 3; do
    lo=$((r * w + 1)); hi=$(((r + 1) * w + 1))
    mysql_q -N "$msrc" -e "SELECT count(MD5(CONCAT_WS(',', id, customer_id, order_no, status, amount, currency, created_at, note))) FROM orders WHERE id >= $lo AND id < $hi" >/dev/null &
    PGOPTIONS="-c max_parallel_workers_per_gather=0" psql_q -At "$target" -c "SELECT count(md5(concat_ws(',', id, customer_id, order_no, status, amount, currency, created_at, note))) FROM bench_orders WHERE id >= $lo AND id < $hi" >/dev/null &
  done
  wait
  t1=$(now)
  secs "$t0" "$t1"
}
floor=(); for i in $(seq 1 "$RUNS"); do f=$(run_floor); floor+=("$f"); echo "run $i: md5 of every row on both sides ${f}s" >&2; done
# 10x the rows, one run on fresh processes, for peak RSS only.
if [ "${CUTOVER_BENCH_10M:-1}" != 0 ]; then
  big="$data/orders-$BIG_ROWS.csv"
  gen_csv "$BIG_ROWS" "$big"
  start_on
  c=$(run_cutover "$(csv_spec "$big")" "$BIG_ROWS"); echo "cutover $BIG_ROWS rows ${c}s ($(rate "$BIG_ROWS" "$c") rows/s)" >&2
  for s in $ALL_SERVICES; do rss10[$s]=$(rss_mib "$s"); done
  psql_q "$target" -c "DROP TABLE bench_orders"
fi

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
mc=$(median "${cut[@]}"); mp=$(median "${cp[@]}")
mmc=$(median "${mcut[@]}"); mpp=$(median "${pipe[@]}"); moff=$(median "${off[@]}")
# med LABEL SECONDS: one "median" line, aligned.
med() { printf '%-36s median %ss, %s rows/s\n' "$1:" "$2" "$(rate "$ROWS" "$2")"; }
med "cutover ($CSV_PARTS partitions, 6 processes)" "$mc"
med "psql \\copy" "$mp"
echo "reconcile $ROWS rows: $(printf '%.2f' "$rec")s (load $(printf '%.2f' "$rec_load")s)"
echo "reconcile with 10 scattered differences: found $found"
med "cutover mysql ($MYSQL_PARTS partitions)" "$mmc"
med "mysql -B --raw | psql \\copy" "$mpp"
awk -v a="$mmc" -v b="$mpp" 'BEGIN { printf "mysql_ratio_vs_pipe %.2f\n", b / a }'
mrecm=$(median "${mrec[@]}")
echo "reconcile mysql $ROWS rows, independent level: median $(printf '%.2f' "$mrecm")s (load median $(printf '%.2f' "$mmc")s)"
awk -v r="$mrecm" -v l="$mmc" 'BEGIN { printf "reconcile_independent_vs_load %.2f\n", r / l }'
# What the ratio cannot go under on this machine: both databases only
# hashing their rows' plain text.
awk -v r="$(median "${floor[@]}")" -v l="$mmc" 'BEGIN { printf "reconcile_floor_vs_load %.2f\n", r / l }'
if [ "$pgloader_ok" = 1 ]; then
  mgc=$(median "${pgl_csv[@]}"); mgm=$(median "${pgl_my[@]}")
  med "pgloader csv" "$mgc"
  med "pgloader mysql" "$mgm"
  awk -v p="$mgc" -v c="$mc" 'BEGIN { printf "pgloader_csv_vs_cutover %.2f\n", p / c }'
  awk -v p="$mgm" -v c="$mmc" 'BEGIN { printf "pgloader_mysql_vs_cutover %.2f\n", p / c }'
else
  echo "pgloader: left out (BENCH_PGLOADER=0) or not installable; pgloader_*_vs_cutover skipped"
fi
med "cutover, tracing off" "$moff"
# The services' CPU per load, to read beside the wall-time figure (on a
# busy machine both move by more than tracing costs).
# The least CPU of each: noise only ever adds (a span costs microseconds,
# a load writes about 650 of them).
minimum() { printf '%s\n' "$@" | sort -g | head -1; }
awk -v on="$(minimum "${acpu[@]}")" -v off="$(minimum "${acpu_off[@]}")" -v hz="$(getconf CLK_TCK)" \
  'BEGIN { printf "services CPU per load (least of the runs): tracing on %.2fs, off %.2fs\ntracing_cost_pct %.1f\n", on / hz, off / hz, 100 * (1 - off / on) }'
awk -v on="$mc" -v off="$moff" 'BEGIN { printf "tracing_cost_wall_pct %.1f\n", 100 * (1 - off / on) }'
awk -v t="$(median "${ocpu[@]}")" -v hz="$(getconf CLK_TCK)" -v r="$ROWS" 'BEGIN { printf "orchestrator_cpu_s_per_1m %.2f\n", t / hz * 1000000 / r }'
for s in $ALL_SERVICES; do
  echo "rss_mib service=$s rows=$ROWS ${rss1[$s]}"
  if [ -n "${rss10[$s]:-}" ]; then
    echo "rss_mib service=$s rows=$BIG_ROWS ${rss10[$s]}"
    awk -v s="$s" -v a="${rss1[$s]}" -v b="${rss10[$s]}" 'BEGIN { printf "rss_ratio_10m_vs_1m service=%s %.2f\n", s, b / a }'
  fi
done
[ "${CUTOVER_BENCH_10M:-1}" != 0 ] || echo "rss at $BIG_ROWS rows: skipped (CUTOVER_BENCH_10M=0)"
awk -v a="$mc" -v b="$mp" 'BEGIN { printf "ratio_vs_copy %.2f\n", b / a }'
