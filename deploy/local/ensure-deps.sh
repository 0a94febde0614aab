#!/usr/bin/env bash
# Installs what the local stack needs from Debian when it is missing:
# PostgreSQL server binaries (for throwaway clusters) and psql, MariaDB, curl,
# and Chromium (the dashboard test drives it headless).
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
command -v curl >/dev/null 2>&1 || need+=(curl)
[ -x /usr/sbin/mariadbd ] || command -v mariadbd >/dev/null 2>&1 || need+=(mariadb-server)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v go >/dev/null 2>&1 || { echo "Go is required (https://go.dev/dl); install it first" >&2; exit 1; }
if ((${#need[@]})); then
  echo "installing ${need[*]} with apt-get" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
