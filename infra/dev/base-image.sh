#!/usr/bin/env bash
# Build a base image for infra/Dockerfile without pulling anything: Debian
# bookworm (minbase) with its Python 3.11 and venv, made by debootstrap from
# Debian's mirror and loaded with `docker import`. infra/Dockerfile's default
# base, python:3.11-slim-bookworm, comes from Docker Hub; where Docker Hub is out of
# reach (CI here), build the image with this one:
#
#   infra/dev/base-image.sh                       # -> dockyard/python-base:3.11-bookworm
#   docker build -f infra/Dockerfile --build-arg BASE_IMAGE=dockyard/python-base:3.11-bookworm .
#
# An image already there under TAG is kept (it is rebuilt after `docker rmi`).
#   BASE_TAG=...  DEBIAN_MIRROR=http://deb.debian.org/debian  infra/dev/base-image.sh
# Needs root (debootstrap) and a running Docker engine.
set -euo pipefail

TAG=${BASE_TAG:-dockyard/python-base:3.11-bookworm}
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

say() { echo "[base-image] $*" >&2; }
if docker image inspect "$TAG" >/dev/null 2>&1; then
  say "$TAG is there"
  exit 0
fi
[ "$(id -u)" = 0 ] || { say "debootstrap needs root"; exit 1; }
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
fi

root=$(mktemp -d /tmp/dockyard-base.XXXXXX)
cleanup() {
  # NOTE: debootstrap mounts /proc and /sys inside the root while it works, and may leave them on failure:
  # unmount whatever is under it before removing, and never cross into another filesystem.
  local mounted
  mounted=$(awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r)
  [ -z "$mounted" ] || umount -l $mounted 2>/dev/null || true
  rm -rf --one-file-system "$root" "$root.log"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
started=$(date +%s)
say "debootstrap $SUITE from $MIRROR"
if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1; then
  tail -n 20 "$root.log" >&2
  say "debootstrap failed (log above)"
  exit 1
fi
# What an image never needs: downloaded packages, package lists, docs, man pages, translations.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/usr/share/info/*
# Leave the host's DNS settings behind; the engine gives each container its own.
: > "$root/etc/resolv.conf"
tar --numeric-owner -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --change "LABEL org.opencontainers.image.description=\"Debian $SUITE minbase with python3 and python3-venv (infra/dev/base-image.sh)\"" \
  - "$TAG" >/dev/null
say "built $TAG in $(($(date +%s) - started)) s: $(docker image inspect --format '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}')"
