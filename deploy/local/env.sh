# Sourced by the local scripts: where the services listen and keep state,
# and where the throwaway PostgreSQL and MariaDB keep theirs.
# CUTOVER_PORT_BASE=N puts the five gRPC services on N+1..N+5 and the
# gateway on N+80; unset, the documented 7001..7005 and 8080 are used.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export CUTOVER_LOCAL_DIR="${CUTOVER_LOCAL_DIR:-$root/.data/local}"
export CUTOVER_BIN="${CUTOVER_BIN:-$root/bin}"
if [ -n "${CUTOVER_PORT_BASE:-}" ]; then
  b=$CUTOVER_PORT_BASE
  export CUTOVER_EXTRACTOR_ADDR="127.0.0.1:$((b+1))" CUTOVER_TRANSFORMER_ADDR="127.0.0.1:$((b+2))" \
    CUTOVER_VALIDATOR_ADDR="127.0.0.1:$((b+3))" CUTOVER_LOADER_ADDR="127.0.0.1:$((b+4))" \
    CUTOVER_ORCHESTRATOR_ADDR="127.0.0.1:$((b+5))" CUTOVER_GATEWAY_ADDR="127.0.0.1:$((b+80))"
fi
export CUTOVER_EXTRACTOR_ADDR="${CUTOVER_EXTRACTOR_ADDR:-127.0.0.1:7001}"
export CUTOVER_TRANSFORMER_ADDR="${CUTOVER_TRANSFORMER_ADDR:-127.0.0.1:7002}"
export CUTOVER_VALIDATOR_ADDR="${CUTOVER_VALIDATOR_ADDR:-127.0.0.1:7003}"
export CUTOVER_LOADER_ADDR="${CUTOVER_LOADER_ADDR:-127.0.0.1:7004}"
export CUTOVER_ORCHESTRATOR_ADDR="${CUTOVER_ORCHESTRATOR_ADDR:-127.0.0.1:7005}"
export CUTOVER_GATEWAY_ADDR="${CUTOVER_GATEWAY_ADDR:-127.0.0.1:8080}"
export CUTOVER_TRACE_FILE="${CUTOVER_TRACE_FILE:-$CUTOVER_LOCAL_DIR/traces.jsonl}"
# Every link is mTLS: the development CA, certificates and admin token live
# here, made by `cutover certs` on first use (start.sh). Clients: curl
# --cacert "$CUTOVER_TLS_DIR/ca.pem" -H "Authorization: Bearer $(cat
# "$CUTOVER_TLS_DIR/admin.token")"; cutoverctl reads both from CUTOVER_TLS_DIR.
export CUTOVER_TLS_DIR="${CUTOVER_TLS_DIR:-$root/.data/tls}"
ALL_SERVICES="extractor transformer validator loader orchestrator gateway"

addr_of() {
  local v="CUTOVER_$(echo "$1" | tr a-z A-Z)_ADDR"
  echo "${!v}"
}

# server_dir USER NAME: the data directory of a throwaway server (pg,
# mariadb). Started by root, the server runs as USER (postgres, mysql),
# which cannot reach .data/NAME when the checkout sits in a mode-700 home
# such as /root; it then gets away_dir NAME, a directory of this
# checkout's own under /tmp ($TMPDIR and $XDG_RUNTIME_DIR may be private
# too), USER's alone. /tmp is shared: one that someone else made is refused.
away_dir() { echo "/tmp/cutover-$1-$(printf %s "$root" | sha256sum | cut -c1-12)"; }
server_dir() {
  local d="$root/.data/$2"
  if [ "$(id -u)" = 0 ]; then
    mkdir -p "$root/.data"
    if ! runuser -u "$1" -- test -x "$root/.data"; then
      d="$(away_dir "$2")"
      [ -e "$d" ] || { mkdir -m 700 "$d" && chown "$1" "$d"; }
      [ "$(stat -c %U:%a "$d")" = "$1:700" ] \
        || { echo "$d is not $1's own mode-700 directory: remove it" >&2; return 1; }
    fi
  fi
  echo "$d"
}
