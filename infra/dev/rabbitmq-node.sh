#!/usr/bin/env bash
# Start one RabbitMQ node in the background, with its own name, ports, configuration and data directory;
# services.sh (the dev node) and cluster.sh (three clustered nodes) start theirs with it.
#
#   infra/dev/rabbitmq-node.sh NODE_NAME AMQP_PORT CONFIG_FILE DATA_DIR LOG_FILE [ERL_ARGS]
#
# The distribution port is AMQP_PORT + 20000; DATA_DIR holds mnesia/, log/ and the pid file. Every node runs
# as root with HOME=/root, so all share /root/.erlang.cookie (the /usr/sbin wrapper would switch to the
# rabbitmq user). Returns at once: the caller waits for the node to answer.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 5 ] || { echo "usage: $0 NODE_NAME AMQP_PORT CONFIG_FILE DATA_DIR LOG_FILE [ERL_ARGS]" >&2; exit 2; }
name=$1 port=$2 config=$3 dir=$4 log=$5 erl_args=${6:-}
mkdir -p "$dir"
env HOME=/root \
  RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="$erl_args" \
  RABBITMQ_NODENAME="$name" \
  RABBITMQ_NODE_PORT="$port" \
  RABBITMQ_DIST_PORT=$(( port + 20000 )) \
  RABBITMQ_CONFIG_FILE="$config" \
  RABBITMQ_ENABLED_PLUGINS_FILE="$ROOT/infra/rabbitmq/enabled_plugins" \
  RABBITMQ_MNESIA_BASE="$dir/mnesia" \
  RABBITMQ_LOG_BASE="$dir/log" \
  RABBITMQ_PID_FILE="$dir/pid" \
  nohup /usr/lib/rabbitmq/bin/rabbitmq-server >"$log" 2>&1 &
