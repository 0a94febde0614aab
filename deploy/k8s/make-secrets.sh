#!/usr/bin/env bash
# Makes the Secrets base/operator-secrets.yaml lists, for a development
# cluster: a development CA and a certificate per service (`cutover certs`:
# each names its service, which is how the peers dial it), the token file
# with an admin token, the sealing key, and the database URLs.
#   deploy/k8s/make-secrets.sh [namespace]      (default cutover-dev)
# needs bin/cutover (make build), kubectl, and CUTOVER_CONTROL_URL (and
# optionally CUTOVER_TARGET_URL) as the pods reach the databases. Extra
# certificate names (the gateway's public host): CUTOVER_CERT_HOSTS=a,b.
# In production use your CA (cert-manager: a Certificate per service with
# secretName <service>-tls, dnsNames [<service>], uris
# [cutover:service/<service>], usages server auth and client auth).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
ns=${1:-cutover-dev}
dir=${CUTOVER_K8S_TLS_DIR:-$root/.data/k8s-tls}
: "${CUTOVER_CONTROL_URL:?set CUTOVER_CONTROL_URL to the control database URL as the pods reach it}"
"$root/bin/cutover" certs --dir "$dir" --hosts "${CUTOVER_CERT_HOSTS:-}" >/dev/null
apply() { kubectl -n "$ns" create secret "$@" --dry-run=client -o yaml | kubectl -n "$ns" apply -f -; }
for s in extractor transformer validator loader orchestrator gateway; do
  apply generic "$s-tls" --from-file=ca.crt="$dir/ca.pem" --from-file=tls.crt="$dir/$s.pem" --from-file=tls.key="$dir/$s-key.pem"
done
apply generic orchestrator-tokens --from-file=tokens="$dir/tokens"
apply generic cutover-secret-key --from-file=secret.key="$dir/secret.key"
apply generic cutover-db --from-literal=control-url="$CUTOVER_CONTROL_URL" --from-literal=target-url="${CUTOVER_TARGET_URL:-}"
echo "secrets in namespace $ns; admin token: $dir/admin.token, CA: $dir/ca.pem"
