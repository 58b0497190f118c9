#!/usr/bin/env bash
# Build the sample processor images from busybox (no public registry needed),
# push them to the local registry so their digests are real, and write
# .dockyard/processors.yaml with every image pinned by digest.
#
#   REGISTRY=127.0.0.1:5000 infra/processors/build.sh [OUT_MANIFEST]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REGISTRY=${REGISTRY:-127.0.0.1:5000}
OUT=${1:-$ROOT/.dockyard/processors.yaml}
BUSYBOX=${BUSYBOX:-/bin/busybox}
APPLETS="sh cat echo sed sleep head tail mkfifo env true false printf id touch grep ls od tr date wget timeout"
[ -x "$BUSYBOX" ] || { echo "build.sh: $BUSYBOX missing (apt-get install busybox-static)" >&2; exit 1; }

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$OUT")"
cp "$ROOT/infra/processors/manifest.template.yaml" "$work/manifest.yaml"

for dir in "$ROOT"/infra/processors/*/; do
  name=$(basename "$dir")
  [ -f "$dir/run" ] || continue
  rootfs="$work/$name"
  mkdir -p "$rootfs/bin" "$rootfs/app" "$rootfs/tmp" "$rootfs/etc"
  cp "$BUSYBOX" "$rootfs/bin/busybox"
  for applet in $APPLETS; do ln -s busybox "$rootfs/bin/$applet"; done
  install -m 0755 "$dir/run" "$rootfs/app/run"
  printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$rootfs/etc/group"
  chmod 1777 "$rootfs/tmp"
  ref="$REGISTRY/dockyard/$name:latest"
  tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -c . | docker import \
    --change 'ENTRYPOINT ["/bin/sh", "/app/run"]' \
    --change 'USER 65534:65534' \
    --change 'WORKDIR /tmp' \
    --change "LABEL dockyard.sample=$name" \
    - "$ref" >/dev/null
  docker push -q "$ref" >/dev/null
  pinned=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$ref" | grep "^$REGISTRY/dockyard/$name@" | head -n 1)
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
