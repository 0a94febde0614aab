#!/usr/bin/env bash
# Builds the six services as static binaries (CGO_ENABLED=0) and one image
# each from deploy/docker/Dockerfile (FROM scratch).
#   REGISTRY  image name prefix (default cutover: cutover/loader:dev)
#   TAG       image tag (default dev)
#   GOARCH    target architecture (default: this machine's)
#   PUSH=1    push after building; DOCKER=podman to use podman
#   KIND=name load the images into that kind cluster
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
registry=${REGISTRY:-cutover} tag=${TAG:-dev} docker=${DOCKER:-docker}
cacerts=/etc/ssl/certs/ca-certificates.crt
[[ -r $cacerts ]] || { echo "build.sh: no $cacerts: install ca-certificates" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for s in extractor transformer validator loader orchestrator gateway; do
  # One small context per service: its binary, the CA roots, an empty tmp.
  mkdir -p "$work/$s/tmp"
  cp "$cacerts" "$work/$s/ca-certificates.crt"
  (cd "$root/services/$s" && CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags='-s -w' -o "$work/$s/$s" "./cmd/$s")
done
for s in extractor transformer validator loader orchestrator gateway; do
  img="$registry/$s:$tag"
  "$docker" build -f "$root/deploy/docker/Dockerfile" --build-arg "SERVICE=$s" -t "$img" "$work/$s"
  if [[ ${PUSH:-} == 1 ]]; then "$docker" push "$img"; fi
  if [[ -n ${KIND:-} ]]; then kind load docker-image --name "$KIND" "$img"; fi
done
