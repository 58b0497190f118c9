#!/usr/bin/env bash
# A Dockyard cluster on this one machine, as real parts, for the chaos tests
# and the benchmarks: three RabbitMQ nodes clustered together, and two extra
# Docker engines standing for two worker hosts (infra/dev/engine.sh). The
# database and the image registry are the ones of infra/dev/services.sh.
#
#   infra/dev/cluster.sh up            start what is not running; wait until the
#                                      three nodes run as one cluster and both engines answer
#   infra/dev/cluster.sh down          stop it all and remove its data
#   infra/dev/cluster.sh env           print the variables to export (DOCKYARD_BROKER_URL lists the three nodes)
#   infra/dev/cluster.sh kill-node N   SIGKILL RabbitMQ node N (1-3)
#   infra/dev/cluster.sh start-node N  start node N again; it rejoins the cluster
#
# Ports (override in the environment): CLUSTER_AMQP_PORT=5681 (node N on
# 5680+N; its distribution port is that + 20000), CLUSTER_MGMT_PORT=15681,
# CLUSTER_PROMETHEUS_PORT=15781. Engines: dyw1 and dyw2 (bridges 10.231.1.0/24
# and 10.231.2.0/24). Every node runs as root with HOME=/root, so all share
# /root/.erlang.cookie (infra/dev/rabbitmq-node.sh starts each).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STATE=${CLUSTER_STATE_DIR:-/var/tmp/dockyard-cluster}
AMQP_BASE=$(( ${CLUSTER_AMQP_PORT:-5681} - 1 ))
MGMT_BASE=$(( ${CLUSTER_MGMT_PORT:-15681} - 1 ))
PROMETHEUS_BASE=$(( ${CLUSTER_PROMETHEUS_PORT:-15781} - 1 ))
DEADLINE_SECONDS=${SERVICE_DEADLINE_SECONDS:-120}
NODES=(1 2 3)
ENGINES=(dyw1 dyw2)

say() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] FAILED: %s\n' "$*" >&2; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

node_name() { echo "dyrabbit$1@localhost"; }
amqp_port() { echo $(( AMQP_BASE + $1 )); }

ctl() {  # ctl N ARGS...: rabbitmqctl against node N
  local n=$1; shift
  timeout "${RABBITMQCTL_TIMEOUT:-60}" env HOME=/root RABBITMQ_NODENAME="$(node_name "$n")" \
    /usr/lib/rabbitmq/bin/rabbitmqctl -n "$(node_name "$n")" "$@"
}

wait_for() {  # wait_for WHAT COMMAND...
  local what=$1; shift
  local start=$SECONDS
  until "$@" >/dev/null 2>&1; do
    (( SECONDS - start < DEADLINE_SECONDS )) || die "$what not ready within ${DEADLINE_SECONDS}s (logs: $STATE)"
    sleep 0.5
  done
}

start_node() {
  local n=$1 dir="$STATE/node$1"
  if port_open "$(amqp_port "$n")"; then say "node $n already listens on $(amqp_port "$n")"; return; fi
  mkdir -p "$dir"
  # The house configuration, with this node's own management and Prometheus ports.
  sed -e "s/^management.tcp.port = .*/management.tcp.port = $(( MGMT_BASE + n ))/" \
      -e "s/^prometheus.tcp.port = .*/prometheus.tcp.port = $(( PROMETHEUS_BASE + n ))/" \
      "$ROOT/infra/rabbitmq/rabbitmq.conf" >"$dir/rabbitmq.conf"
  wait_for "node $n's previous distribution port" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$(( $(amqp_port "$n") + 20000 )))"
  say "starting $(node_name "$n") (AMQP $(amqp_port "$n"), management $(( MGMT_BASE + n )))"
  "$ROOT/infra/dev/rabbitmq-node.sh" "$(node_name "$n")" "$(amqp_port "$n")" "$dir/rabbitmq.conf" "$dir" "$dir/server.log"
  wait_for "node $n" port_open "$(amqp_port "$n")"
  wait_for "node $n" ctl "$n" await_startup
}

running_nodes() {  # how many nodes node 1 sees running in its cluster
  ctl 1 cluster_status --formatter json 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["running_nodes"]))'
}

join() {
  local n=$1
  if ctl "$n" cluster_status --formatter json 2>/dev/null | grep -q "$(node_name 1)"; then return; fi
  say "joining node $n to $(node_name 1)"
  ctl "$n" stop_app >/dev/null
  ctl "$n" join_cluster "$(node_name 1)" >/dev/null
  ctl "$n" start_app >/dev/null
}

up() {
  command -v rabbitmq-server >/dev/null || "$ROOT/infra/dev/services.sh" install
  for n in "${NODES[@]}"; do start_node "$n"; done
  for n in 2 3; do join "$n"; done
  wait_for "a cluster of three running nodes" bash -c "[ \"\$(\"$0\" running-nodes)\" = 3 ]"
  say "RabbitMQ cluster of 3 nodes ready"
  local i=1
  for engine in "${ENGINES[@]}"; do
    "$ROOT/infra/dev/engine.sh" up "$engine" "10.231.$i.0/24"
    i=$(( i + 1 ))
  done
}

kill_node() {
  local n=${1:?usage: $0 kill-node N} pid
  pid=$(cat "$STATE/node$n/pid" 2>/dev/null || true)
  [ -n "$pid" ] || die "node $n has no pid file"
  kill -KILL "$pid"
  say "killed node $n (pid $pid)"
}

down() {
  for engine in "${ENGINES[@]}"; do "$ROOT/infra/dev/engine.sh" down "$engine" || true; done
  for n in "${NODES[@]}"; do
    local pid; pid=$(cat "$STATE/node$n/pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      RABBITMQCTL_TIMEOUT=60 ctl "$n" stop "$STATE/node$n/pid" >/dev/null 2>&1 || kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$STATE"
  say "cluster removed"
}

env_vars() {
  local urls=() n
  for n in "${NODES[@]}"; do urls+=("amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/%2F"); done
  echo "export CLUSTER_BROKER_URL='$(IFS=';'; echo "${urls[*]}")'"
  echo "export CLUSTER_NODES='$(for n in "${NODES[@]}"; do printf '%s ' "$(node_name "$n")"; done)'"
  echo "export CLUSTER_AMQP_PORTS='$(for n in "${NODES[@]}"; do printf '%s ' "$(amqp_port "$n")"; done)'"
  echo "export CLUSTER_ENGINES='${ENGINES[*]}'"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) env_vars ;;
  kill-node) kill_node "${2:-}" ;;
  start-node) start_node "${2:?usage: $0 start-node N}" ;;
  running-nodes) running_nodes ;;
  *) die "usage: $0 up|down|env|kill-node N|start-node N" ;;
esac
