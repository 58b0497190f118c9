#!/usr/bin/env bash
# How long the README's quickstart takes a newcomer: a fresh Debian 12 root
# (debootstrap, with only git and make added), a clean clone of this
# repository, `make run`, then the README's first run. Prints the time to
# each step, from `make run` on.
#
#   bench/quickstart.sh            # as root; takes the ports make run uses
#
# The fresh root is a chroot on this machine (same kernel and network), so
# Dockyard's services must not already run here: stop them first
# (infra/dev/services.sh down). Everything is downloaded as a new machine
# would: Debian packages from the mirror, Python packages from PyPI (this
# machine's local wheel caches are not visible in the chroot).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEADLINE_SECONDS=${DEADLINE_SECONDS:-900}
say() { echo "[quickstart] $*" >&2; }
[ "$(id -u)" = 0 ] || { say "needs root (debootstrap, chroot)"; exit 1; }
for port in 5672 5000 8000; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then say "port $port is in use: stop Dockyard's services first (infra/dev/services.sh down)"; exit 1; fi
done
if [ -S /var/run/docker.sock ] && docker info >/dev/null 2>&1; then say "a Docker engine runs here: stop it first (its docker0 bridge is shared)"; exit 1; fi
command -v debootstrap >/dev/null || { say "needs debootstrap (apt-get install debootstrap)"; exit 1; }

fresh=$(mktemp -d /var/tmp/dockyard-fresh.XXXXXX)
# A clean environment; pip and Python use the system's CAs (with this machine's added ones, copied in below).
bundle=/etc/ssl/certs/ca-certificates.crt
ENV_INSIDE=(env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb LANG=C.UTF-8
  PIP_CERT=$bundle REQUESTS_CA_BUNDLE=$bundle SSL_CERT_FILE=$bundle)
inside() { chroot "$fresh" "${ENV_INSIDE[@]}" "$@"; }
make_pid=""
cleanup() {
  if [ -n "$make_pid" ] && kill -0 "$make_pid" 2>/dev/null; then
    # Ctrl-C as a terminal sends it, to make run's whole process group: its own trap stops what it started.
    kill -INT -- "-$make_pid" 2>/dev/null || true
    for _ in $(seq 60); do pgrep -g "$make_pid" >/dev/null || break; sleep 1; done
  fi
  # The services make run started in the chroot, should its trap not have run.
  # Whatever still runs inside the chroot (epmd outlives its RabbitMQ node): found by its root directory.
  local pid left=()
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$fresh" ] && left+=("$pid")
  done
  if [ ${#left[@]} -gt 0 ]; then kill "${left[@]}" 2>/dev/null || true; sleep 5; kill -9 "${left[@]}" 2>/dev/null || true; fi
  # NOTE: unmount everything before removing: /dev and /sys are the host's, bound in.
  umount -R "$fresh/run" "$fresh/dev" "$fresh/sys" "$fresh/proc" 2>/dev/null || umount -lR "$fresh/dev" "$fresh/sys" 2>/dev/null || true
  umount -R "$fresh" 2>/dev/null || true
  if mount | grep -q " $fresh"; then say "still mounted under $fresh: left in place"; return; fi
  rm -rf --one-file-system "$fresh"
}
trap cleanup EXIT

say "debootstrap bookworm (minbase + git, make) into $fresh"
debootstrap --variant=minbase --include=ca-certificates,git,make bookworm "$fresh" "$MIRROR" >"$fresh.log" 2>&1 || { tail "$fresh.log" >&2; rm -f "$fresh.log"; exit 1; }
rm -f "$fresh.log"
# A mount point of its own, so the chroot's dockerd can remount its root when it unpacks images.
mount --bind "$fresh" "$fresh"
mount -t proc proc "$fresh/proc"
mount --rbind /sys "$fresh/sys" && mount --make-rslave "$fresh/sys"
mount --rbind /dev "$fresh/dev" && mount --make-rslave "$fresh/dev"
mount -t tmpfs tmpfs "$fresh/run"
cp /etc/resolv.conf "$fresh/etc/resolv.conf"
# This machine's own trust anchors (a TLS-inspecting proxy's, if any), as its new machines would have them.
cp /usr/local/share/ca-certificates/*.crt "$fresh/usr/local/share/ca-certificates/" 2>/dev/null && inside update-ca-certificates >/dev/null 2>&1 || true
git clone -q "$ROOT" "$fresh/root/dockyard"

log="$fresh/root/make-run.log"
started=$(date +%s.%N)
elapsed() { awk -v s="$started" -v n="$(date +%s.%N)" 'BEGIN { printf "%.0f", n - s }'; }
# A process group of its own (setsid), to be stopped as Ctrl-C stops it.
setsid chroot "$fresh" "${ENV_INSIDE[@]}" bash -c 'cd /root/dockyard && exec make run' >"$log" 2>&1 &
make_pid=$!
wait_for() {  # wait_for WHAT COMMAND...: until COMMAND succeeds, within the deadline, while make run lives
  local what=$1; shift
  until "$@" >/dev/null 2>&1; do
    kill -0 "$make_pid" 2>/dev/null || { tail -n 30 "$log" >&2; say "make run ended before $what"; exit 1; }
    (( $(elapsed) < DEADLINE_SECONDS )) || { tail -n 30 "$log" >&2; say "no $what within ${DEADLINE_SECONDS}s"; exit 1; }
    sleep 0.5
  done
  printf '%-34s %4s s\n' "$what" "$(elapsed)"
}
echo "from \`make run\` in a clean clone on a fresh Debian 12 root:"
wait_for "Python packages installed" test -f "$fresh/root/dockyard/.venv/.installed"
wait_for "services started" grep -q "registry ready" "$log"
wait_for "make run printed the key" grep -q "Dockyard is starting" "$log"
wait_for "API ready (/readyz 200)" curl -fs http://127.0.0.1:8000/readyz
key=$(cat "$fresh/root/dockyard/.dockyard/admin.key")
run=$(curl -fs -X POST http://127.0.0.1:8000/v1/runs -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -d '{"processor": "echo", "payload": {"hello": "dockyard"}}' | sed -E 's/.*"id": *"([^"]+)".*/\1/')
succeeded() { curl -fs -H "Authorization: Bearer $key" "http://127.0.0.1:8000/v1/runs/$run" | grep -Eq '"state": *"succeeded"'; }
wait_for "the first run succeeded" succeeded
