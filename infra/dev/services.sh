#!/usr/bin/env bash
# Install (Debian/Ubuntu, as root) and start the services Dockyard needs on
# this machine, waiting until each answers. Used by `make run` and `make test`.
#
#   infra/dev/services.sh install [run]      apt-get what is missing: for make test and make bench,
#                                            or with `run` only what make run needs
#   infra/dev/services.sh up [NAME...]       start docker rabbitmq postgres registry;
#                                            prints the names it started itself
#                                            (postgres-durable, for benchmarks, only when named)
#   infra/dev/services.sh down [NAME...]     stop what this script started
#   infra/dev/services.sh env                print the URLs to export
#
# Ports (override in the environment): AMQP_PORT=5672, PG_PORT=5433,
# PG_DURABLE_PORT=5434, REGISTRY_PORT=5000, MGMT_PORT=15672 (RabbitMQ
# management). A service already answering on its port is reused.
#
# `postgres` is a test server (fsync off: faster, not crash-safe);
# `postgres-durable` is a second cluster with Postgres' production defaults
# (fsync, synchronous_commit, full_page_writes on) for the benchmarks.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STATE=${SERVICES_STATE_DIR:-/var/tmp/dockyard-services}
AMQP_PORT=${AMQP_PORT:-5672}
PG_PORT=${PG_PORT:-5433}
PG_DURABLE_PORT=${PG_DURABLE_PORT:-5434}
REGISTRY_PORT=${REGISTRY_PORT:-5000}
MGMT_PORT=${MGMT_PORT:-15672}
DEADLINE_SECONDS=${SERVICE_DEADLINE_SECONDS:-120}
RABBIT_NODE=${RABBIT_NODE:-dockyard@localhost}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)

say() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] FAILED: %s\n' "$*" >&2; exit 1; }

# wait_for NAME COMMAND...: poll until COMMAND succeeds or the deadline passes.
wait_for() {
  local name=$1; shift
  local start=$SECONDS
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS - start > DEADLINE_SECONDS )); then
      die "$name did not become ready within ${DEADLINE_SECONDS}s (see $STATE/$name.log)"
    fi
    sleep 0.5
  done
  say "$name ready after $(( SECONDS - start ))s"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_free() { ! port_open "$1"; }

install() {
  local missing=() for=${1:-all}
  # make run: the engine, the broker, the registry, and what the sample images are made of.
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v curl >/dev/null || missing+=(curl ca-certificates)
  # The sample images need a static busybox (nothing else is in them).
  { [ -x /bin/busybox ] && { ldd /bin/busybox 2>&1 || true; } | grep -q "not a dynamic" && /bin/busybox --list | grep -qx mkfifo; } || missing+=(busybox-static)
  if [ "$for" != run ]; then
    [ -n "$PG_BIN" ] || missing+=(postgresql)
    # promtool checks the alert rules; the server runs in the dashboard and alert tests.
    command -v prometheus >/dev/null || missing+=(prometheus)
    # A real headless browser for the console's tests (Selenium drives it through chromedriver).
    command -v chromium >/dev/null || missing+=(chromium)
    command -v chromedriver >/dev/null || missing+=(chromium-driver)
    # docker-compose.yml is checked by `make test`; the app image's base is built from Debian's packages.
    command -v docker-compose >/dev/null || missing+=(docker-compose)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
  fi
  if [ ${#missing[@]} -eq 0 ]; then say "system packages present"; return; fi
  [ "$(id -u)" = 0 ] || die "need root to apt-get install ${missing[*]}"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # NOTE: policy-rc.d keeps the packages from starting their own daemons on
  # the default ports; this script starts them with Dockyard's config.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || { rm -f /usr/sbin/policy-rc.d; die "apt-get install failed"; }
  rm -f /usr/sbin/policy-rc.d
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
}

docker_up() {
  if docker info >/dev/null 2>&1; then say "docker engine already running"; return; fi
  mkdir -p "$STATE"
  say "starting dockerd"
  nohup dockerd >"$STATE/docker.log" 2>&1 &
  echo $! > "$STATE/docker.pid"
  wait_for docker docker info
  echo docker
}

rabbitmq_ctl() {
  # RABBITMQCTL_TIMEOUT (seconds): give up after it rather than wait on a node that never answers.
  timeout "${RABBITMQCTL_TIMEOUT:-0}" env RABBITMQ_NODENAME="$RABBIT_NODE" HOME=/root /usr/lib/rabbitmq/bin/rabbitmqctl -n "$RABBIT_NODE" "$@"
}

rabbitmq_up() {
  if port_open "$AMQP_PORT"; then say "something already listens on AMQP port $AMQP_PORT; reusing it"; return; fi
  mkdir -p "$STATE/rabbitmq"
  # A node stopped a moment ago may still hold its distribution port.
  wait_for "rabbitmq's previous node" port_free $(( AMQP_PORT + 20000 ))
  say "starting rabbitmq ($RABBIT_NODE, AMQP $AMQP_PORT, management $MGMT_PORT)"
  local extra=""
  # rabbitmq.conf says 15672; another port comes from the command line.
  [ "$MGMT_PORT" = 15672 ] || extra="-rabbitmq_management tcp_config [{port,$MGMT_PORT}]"
  "$ROOT/infra/dev/rabbitmq-node.sh" "$RABBIT_NODE" "$AMQP_PORT" "$ROOT/infra/rabbitmq/rabbitmq.conf" "$STATE/rabbitmq" "$STATE/rabbitmq.log" "$extra"
  wait_for rabbitmq port_open "$AMQP_PORT"
  wait_for rabbitmq rabbitmq_ctl await_startup
  echo rabbitmq
}

pg() { su postgres -s /bin/sh -c "$*"; }

postgres_cluster_up() {  # name port extra-options
  local name=$1 port=$2 options=$3
  if port_open "$port"; then say "something already listens on $name port $port; reusing it"; return; fi
  local data="$STATE/$name"
  mkdir -p "$STATE"; chmod 755 "$STATE"
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"; chown postgres:postgres "$data"
    pg "$PG_BIN/initdb -D $data -A trust -U postgres >/dev/null"
  fi
  say "starting $name on port $port"
  touch "$STATE/$name.log"; chown postgres "$STATE/$name.log"
  pg "$PG_BIN/pg_ctl -D $data -l $STATE/$name.log -o '-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200 $options' start >/dev/null"
  wait_for "$name" "$PG_BIN/pg_isready" -h 127.0.0.1 -p "$port"
  echo "$name"
}

postgres_up() { postgres_cluster_up postgres "$PG_PORT" "-c fsync=off"; }
postgres-durable_up() { postgres_cluster_up postgres-durable "$PG_DURABLE_PORT" "-c fsync=on -c synchronous_commit=on"; }

registry_up() {
  if port_open "$REGISTRY_PORT"; then say "something already listens on registry port $REGISTRY_PORT; reusing it"; return; fi
  mkdir -p "$STATE/registry"
  cat > "$STATE/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
log:
  level: warn
YML
  say "starting local registry on 127.0.0.1:$REGISTRY_PORT"
  nohup docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 &
  echo $! > "$STATE/registry.pid"
  wait_for registry curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/"
  echo registry
}

stop_pidfile() {
  local f="$STATE/$1.pid"
  [ -f "$f" ] || return 0
  kill "$(cat "$f")" 2>/dev/null || true
  rm -f "$f"
}

down() {
  local names=("$@"); [ ${#names[@]} -gt 0 ] || names=(registry postgres rabbitmq)
  for name in "${names[@]}"; do
    case $name in
      registry) stop_pidfile registry ;;
      postgres|postgres-durable) [ -f "$STATE/$name/postmaster.pid" ] && pg "$PG_BIN/pg_ctl -D $STATE/$name stop -m fast >/dev/null" || true ;;
      # With the pid file, rabbitmqctl waits until the node's process has exited.
      # NOTE: only with a pid file (without one, `stop <pid file>` waits for it
      # to appear: forever when the node is already down), and bounded.
      rabbitmq) [ ! -f "$STATE/rabbitmq/pid" ] || RABBITMQCTL_TIMEOUT=60 rabbitmq_ctl stop "$STATE/rabbitmq/pid" >/dev/null 2>&1 || true ;;
      docker) stop_pidfile docker ;;
    esac
  done
}

cmd=${1:-up}; shift || true
case $cmd in
  install) install "$@" ;;
  up)
    names=("$@"); [ ${#names[@]} -gt 0 ] || names=(docker rabbitmq postgres registry)
    for name in "${names[@]}"; do "${name}_up"; done ;;
  down) down "$@" ;;
  env)
    echo "export DOCKYARD_BROKER_URL=amqp://guest:guest@127.0.0.1:$AMQP_PORT/%2F"
    echo "export TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
    echo "export BENCH_DURABLE_POSTGRES_URL=postgresql://postgres@127.0.0.1:$PG_DURABLE_PORT/postgres"
    echo "export REGISTRY=127.0.0.1:$REGISTRY_PORT"
    echo "export TEST_RABBITMQ_MANAGEMENT_URL=http://127.0.0.1:$MGMT_PORT"
    echo "export TEST_RABBITMQ_NODE=$RABBIT_NODE"
    # rabbitmq.conf fixes the prometheus plugin's port.
    echo "export TEST_RABBITMQ_PROMETHEUS_URL=http://127.0.0.1:15692" ;;
  *) die "unknown command $cmd (install | up | down | env)" ;;
esac
