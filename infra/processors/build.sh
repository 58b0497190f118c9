#!/usr/bin/env bash
# Build the sample processor images from busybox (no public registry needed),
# push them to the local registry so their digests are real, and write
# .dockyard/processors.yaml with every image pinned by digest.
#
# An image whose inputs (busybox, its applets, the sample's run script, the
# image's settings) have not changed since it was last built and pushed is
# reused, digest and all: `make run` started again pins the same images, so
# nothing changes in the processors or the audit log.
#
#   REGISTRY=127.0.0.1:5000 infra/processors/build.sh [OUT_MANIFEST]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REGISTRY=${REGISTRY:-127.0.0.1:5000}
OUT=${1:-$ROOT/.dockyard/processors.yaml}
BUSYBOX=${BUSYBOX:-/bin/busybox}
APPLETS="sh cat echo sed sleep head tail mkfifo env true false printf id touch grep ls od tr date wget timeout"
[ -x "$BUSYBOX" ] || { echo "build.sh: $BUSYBOX missing (apt-get install busybox-static)" >&2; exit 1; }

# The image settings below, as one line: they are part of what an image is made of.
CHANGES_ID='ENTRYPOINT ["/bin/sh", "/app/run"]|USER 65534:65534|WORKDIR /tmp|LABEL dockyard.sample'

in_registry() {  # in_registry NAME DIGEST: the registry still serves this manifest
  curl -fsS -o /dev/null -I \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REGISTRY/v2/dockyard/$1/manifests/$2"
}

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$OUT")"
cp "$ROOT/infra/processors/manifest.template.yaml" "$work/manifest.yaml"

for dir in "$ROOT"/infra/processors/*/; do
  name=$(basename "$dir")
  [ -f "$dir/run" ] || continue
  repo="$REGISTRY/dockyard/$name"
  # What the image is made of; its hash tags the image, so unchanged inputs find the image already built.
  source_id=$( { sha256sum "$BUSYBOX" "$dir/run" "$ROOT/infra/processors/build.sh" | cut -d' ' -f1; echo "$APPLETS"; echo "$CHANGES_ID"; } | sha256sum | cut -c1-16)
  ref="$repo:src-$source_id"
  pinned=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$ref" 2>/dev/null | grep "^$repo@" | head -n 1 || true)
  if [ -n "$pinned" ] && in_registry "$name" "${pinned#*@}"; then
    upper=$(echo "$name" | tr '[:lower:]' '[:upper:]')
    sed -i "s|@IMAGE_${upper}@|$pinned|" "$work/manifest.yaml"
    echo "unchanged $pinned" >&2
    continue
  fi
  rootfs="$work/$name"
  mkdir -p "$rootfs/bin" "$rootfs/app" "$rootfs/tmp" "$rootfs/etc"
  cp "$BUSYBOX" "$rootfs/bin/busybox"
  for applet in $APPLETS; do ln -s busybox "$rootfs/bin/$applet"; done
  install -m 0755 "$dir/run" "$rootfs/app/run"
  printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$rootfs/etc/group"
  chmod 1777 "$rootfs/tmp"
  tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -c . | docker import \
    --change 'ENTRYPOINT ["/bin/sh", "/app/run"]' \
    --change 'USER 65534:65534' \
    --change 'WORKDIR /tmp' \
    --change "LABEL dockyard.sample=$name" \
    - "$ref" >/dev/null
  docker tag "$ref" "$repo:latest"
  docker push -q "$ref" >/dev/null
  pinned=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$ref" | grep "^$repo@" | head -n 1)
  [ -n "$pinned" ] || { echo "build.sh: no digest for $ref after push" >&2; exit 1; }
  upper=$(echo "$name" | tr '[:lower:]' '[:upper:]')
  sed -i "s|@IMAGE_${upper}@|$pinned|" "$work/manifest.yaml"
  echo "built $pinned" >&2
done
if grep -q '@IMAGE_' "$work/manifest.yaml"; then
  echo "build.sh: manifest names an image that has no directory: $(grep -o '@IMAGE_[A-Z_]*@' "$work/manifest.yaml" | tr '\n' ' ')" >&2
  exit 1
fi
mv "$work/manifest.yaml" "$OUT"
echo "wrote $OUT" >&2
