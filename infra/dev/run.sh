#!/usr/bin/env bash
# `make run`: services, database, sample processors, then web + worker +
# scheduler from the Procfile (honcho). Ctrl-C stops what this started.
set -euo pipefail
# shellcheck source=infra/dev/common.sh
source "$(dirname "$0")/common.sh"
export PORT=${PORT:-8000}
with_services docker rabbitmq registry

dockyard migrate
# A queue left by an older version with other arguments is replaced if empty.
dockyard queue declare --recreate-if-empty
infra/processors/build.sh "$ROOT/.dockyard/processors.yaml"
dockyard processors apply "$ROOT/.dockyard/processors.yaml"

cat <<MSG

Dockyard is starting on http://127.0.0.1:$PORT  (RabbitMQ UI: http://127.0.0.1:15672, guest/guest)
Submit a run:

  curl -s -X POST http://127.0.0.1:$PORT/v1/runs -H 'Content-Type: application/json' \\
       -d '{"processor": "echo", "payload": {"hello": "dockyard"}}'

Then: curl -s http://127.0.0.1:$PORT/v1/runs/<id>   and   curl -s http://127.0.0.1:$PORT/v1/runs/<id>/logs
Ctrl-C stops web, worker, scheduler and the services this command started.

MSG
honcho start web worker scheduler
