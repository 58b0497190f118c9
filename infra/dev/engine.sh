#!/usr/bin/env bash
# An extra Docker engine on this machine: a dockerd with its own data root,
# exec root, pid file, unix socket and bridge, beside the host's own engine.
# Used by infra/dev/cluster.sh (worker hosts) and the tests (a TLS engine).
#
#   infra/dev/engine.sh up NAME SUBNET [TLS_DIR TCP_PORT]
#       start engine NAME (a few letters: it names the bridge NAMEbr0 and
#       /run/NAME) with its containers on SUBNET (10.231.1.0/24); with
#       TLS_DIR (ca.pem, server.pem, server-key.pem) it also listens on
#       tcp://127.0.0.1:TCP_PORT with --tlsverify. Waits until it answers.
#       Its data stays in /var/tmp/NAME-data across restarts.
#   infra/dev/engine.sh kill NAME     SIGKILL its dockerd and containerd, as a host that dies
#                                     (containers are left as they were)
#   infra/dev/engine.sh down NAME     stop it and remove its containers, data and bridge
#   infra/dev/engine.sh url NAME      print its socket URL
#
# NOTE: never --bridge=none on a shared host: such a dockerd deletes the
# host's docker0, and the host's own engine then fails every bridged
# container. Each engine gets a bridge of its own.
set -euo pipefail

DEADLINE_SECONDS=${SERVICE_DEADLINE_SECONDS:-120}
say() { printf '[engine] %s\n' "$*" >&2; }
die() { printf '[engine] FAILED: %s\n' "$*" >&2; exit 1; }

name=${2:-}
[ -n "$name" ] || die "usage: $0 up|kill|down|url NAME ..."
[ ${#name} -le 10 ] || die "engine name $name: at most 10 characters (it names a network bridge)"
RUN=/run/$name
DATA=/var/tmp/$name-data
BRIDGE=${name}br0
SOCKET=unix://$RUN/docker.sock

answers() { DOCKER_HOST=$SOCKET timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

pids() {  # dockerd and the containerd it started, by their pid files
  for f in "$RUN/docker.pid" "$RUN/exec/containerd/containerd.pid"; do
    [ -f "$f" ] && cat "$f"
  done 2>/dev/null || true
}

up() {
  local subnet=${3:?usage: $0 up NAME SUBNET [TLS_DIR TCP_PORT]} tls=${4:-} port=${5:-}
  if answers; then say "$name already answers on $SOCKET"; return; fi
  mkdir -p "$RUN" "$DATA"
  echo '{}' >"$RUN/daemon.json"
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "${subnet%.*/*}.1/${subnet#*/}" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
  local args=(--host "$SOCKET" --data-root "$DATA" --exec-root "$RUN/exec" --pidfile "$RUN/docker.pid"
    --config-file "$RUN/daemon.json" --bridge "$BRIDGE" --iptables=false --ip-masq=false)
  if [ -n "$tls" ]; then
    [ -n "$port" ] || die "a TLS engine needs a TCP port"
    args+=(--host "tcp://127.0.0.1:$port" --tlsverify --tlscacert "$tls/ca.pem" --tlscert "$tls/server.pem" --tlskey "$tls/server-key.pem")
  fi
  rm -f "$RUN/docker.pid"
  say "starting $name (socket $SOCKET${tls:+, TLS on 127.0.0.1:$port})"
  nohup dockerd "${args[@]}" >"$RUN/dockerd.log" 2>&1 &
  local start=$SECONDS
  until answers; do
    (( SECONDS - start < DEADLINE_SECONDS )) || { tail -n 30 "$RUN/dockerd.log" >&2; die "$name did not answer within ${DEADLINE_SECONDS}s"; }
    sleep 0.5
  done
  say "$name ready after $(( SECONDS - start ))s"
}

kill_engine() {
  local p
  for p in $(pids); do kill -KILL "$p" 2>/dev/null || true; done
  say "killed $name"
}

down() {
  if answers; then
    DOCKER_HOST=$SOCKET docker ps -aq | xargs -r env DOCKER_HOST="$SOCKET" docker rm -f >/dev/null 2>&1 || true
    local p; p=$(cat "$RUN/docker.pid" 2>/dev/null || true)
    if [ -n "$p" ]; then
      kill -TERM "$p" 2>/dev/null || true
      for _ in $(seq 60); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
    fi
  fi
  kill_engine >/dev/null 2>&1
  # Shims of containers a killed engine left behind.
  pkill -KILL -f "containerd-shim.*$RUN/exec" 2>/dev/null || true
  grep -o "[^ ]*$DATA[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  grep -o "[^ ]*$RUN[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  ip link del "$BRIDGE" 2>/dev/null || true
  rm -rf "$RUN" "$DATA"
  say "removed $name"
}

case "${1:-}" in
  up) up "$@" ;;
  kill) kill_engine ;;
  down) down ;;
  url) echo "$SOCKET" ;;
  *) die "usage: $0 up|kill|down|url NAME ..." ;;
esac
