#!/usr/bin/env bash
# Build Dockyard's image from infra/Dockerfile and say its size (`make image`).
#
#   infra/dev/image.sh [TAG]          # default dockyard:latest
#
# The base: $BASE_IMAGE when set; else python:3.11-slim-bookworm when the engine has it
# or can pull it; else the image infra/dev/base-image.sh builds from Debian's
# packages (nothing pulled from Docker Hub). Certificates added to this host's
# trust store (/usr/local/share/ca-certificates, e.g. a TLS-inspecting proxy's)
# go to the build stage so pip trusts them too, with any PEM text in $EXTRA_CA_CERTS.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TAG=${1:-dockyard:latest}
DEBIAN_BASE=${BASE_TAG:-dockyard/python-base:3.11-bookworm}
say() { echo "[image] $*" >&2; }

base=${BASE_IMAGE:-}
if [ -z "$base" ]; then
  if docker image inspect python:3.11-slim-bookworm >/dev/null 2>&1 || timeout 120 docker pull -q python:3.11-slim-bookworm >/dev/null 2>&1; then
    base=python:3.11-slim-bookworm
  else
    say "python:3.11-slim-bookworm is not here and cannot be pulled: using $DEBIAN_BASE (infra/dev/base-image.sh)"
    BASE_TAG=$DEBIAN_BASE "$ROOT/infra/dev/base-image.sh"
    base=$DEBIAN_BASE
  fi
fi

extra_ca=${EXTRA_CA_CERTS:+$EXTRA_CA_CERTS$'\n'}  # more PEM certificates, given in the environment
for crt in /usr/local/share/ca-certificates/*.crt; do
  [ -f "$crt" ] && extra_ca+="$(cat "$crt")"$'\n'
done
# Without the buildx plugin, the docker command refuses BuildKit builds; the engine's own builder does this one.
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0

started=$(date +%s)
say "building $TAG on $base"
docker build -q -f "$ROOT/infra/Dockerfile" --build-arg "BASE_IMAGE=$base" --build-arg "EXTRA_CA_CERTS=$extra_ca" -t "$TAG" "$ROOT" >/dev/null
size=$(docker image inspect --format '{{.Size}}' "$TAG")
say "built $TAG in $(($(date +%s) - started)) s: $((size / 1000000)) MB ($base is $(($(docker image inspect --format '{{.Size}}' "$base") / 1000000)) MB of it)"
