#!/usr/bin/env bash
# `make run`: services, database, sample processors, then web + worker +
# scheduler from the Procfile (honcho). Ctrl-C stops what this started.
#
# Started again, it keeps what is registered: the samples are added or
# updated (their images are rebuilt only when their sources changed), and
# processors registered otherwise stay as they are. RUN_STATE_DIR (default
# .dockyard) holds the samples' manifest and the admin key.
set -euo pipefail
# shellcheck source=infra/dev/common.sh
source "$(dirname "$0")/common.sh"
export PORT=${PORT:-8000}
STATE_DIR=${RUN_STATE_DIR:-$ROOT/.dockyard}
mkdir -p "$STATE_DIR"
with_services docker rabbitmq registry

dockyard migrate
# A queue left by an older version with other arguments is replaced if empty.
dockyard queue declare --recreate-if-empty
infra/processors/build.sh "$STATE_DIR/processors.yaml"
# --no-prune: the samples join what is registered; `dockyard processors apply` without it is the allowlist.
dockyard processors apply --no-prune "$STATE_DIR/processors.yaml"

# The first admin key of the tenant "default": made once, kept (owner-only) in
# $STATE_DIR/admin.key, and made again if this database does not know it.
KEY_FILE="$STATE_DIR/admin.key"
if [ ! -s "$KEY_FILE" ] || ! dockyard keys list --tenant default | grep -Eq "^$(cut -d_ -f2 "$KEY_FILE") +default +active "; then
  (umask 077; dockyard keys create --tenant default --scopes admin --name "make run" --quiet > "$KEY_FILE")
fi
DOCKYARD_API_KEY=$(cat "$KEY_FILE")
export DOCKYARD_API_KEY

cat <<MSG

Dockyard is starting on http://127.0.0.1:$PORT  (RabbitMQ UI: http://127.0.0.1:15672, guest/guest)

Admin API key of the tenant "default" (also in $KEY_FILE; keep it secret):

  export DOCKYARD_API_KEY=$DOCKYARD_API_KEY

Submit a run:

  curl -s -X POST http://127.0.0.1:$PORT/v1/runs -H "Authorization: Bearer \$DOCKYARD_API_KEY" \\
       -H 'Content-Type: application/json' -d '{"processor": "echo", "payload": {"hello": "dockyard"}}'

Then: curl -s -H "Authorization: Bearer \$DOCKYARD_API_KEY" http://127.0.0.1:$PORT/v1/runs/<id>   (and .../logs),
or:   .venv/bin/dockyard runs submit echo --payload '{"hello": "cli"}' --wait
Watch runs in the web console: http://127.0.0.1:$PORT/console  (sign in with the key above)
Ctrl-C stops web, worker, scheduler and the services this command started.

MSG
# honcho pipes the processes' output, so they would log JSON; at a terminal, text reads better.
if [ -t 1 ]; then export DOCKYARD_LOG_FORMAT="${DOCKYARD_LOG_FORMAT:-text}"; fi
honcho start web worker scheduler
