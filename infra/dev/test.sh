#!/usr/bin/env bash
# `make test`: start the services the suite needs (RabbitMQ, Postgres, the
# Docker engine, a local registry), build the sample processor images, then
# lint, check configs and run every test. Services this script started are
# stopped at the end unless KEEP_SERVICES=1.
set -euo pipefail
# shellcheck source=infra/dev/common.sh
source "$(dirname "$0")/common.sh"
with_services docker rabbitmq postgres registry
# tests/e2e/test_image.py builds the app image; its base cannot be pulled here, so one is built from
# Debian's packages (infra/dev/base-image.sh, about 45 s) while the rest gets ready. Should that fail,
# that test is skipped with the reason and this log says why.
base_log=$(mktemp); base_pid=""
stop_base_image() {  # should this script end early: stop the build (its own trap cleans up) and drop its log
  if [ -n "$base_pid" ]; then kill -TERM -- "-$base_pid" 2>/dev/null || true; wait "$base_pid" 2>/dev/null || true; fi
  rm -f "$base_log"
}
trap 'stop_base_image; stop_started_services' EXIT
if docker image inspect python:3.11-slim-bookworm >/dev/null 2>&1; then
  echo "[base-image] python:3.11-slim-bookworm is here" >"$base_log"
else
  setsid infra/dev/base-image.sh >"$base_log" 2>&1 &
  base_pid=$!
fi
export TEST_PROCESSORS_MANIFEST="$ROOT/.dockyard/test-processors.yaml"
infra/processors/build.sh "$TEST_PROCESSORS_MANIFEST"

echo "== lint"
ruff format --check .
ruff check .

echo "== configs"
docker-compose -f docker-compose.yml config -q
if [ -x infra/prometheus/check.sh ]; then infra/prometheus/check.sh; fi

if [ -n "$base_pid" ] && ! wait "$base_pid"; then echo "base image not built: tests/e2e/test_image.py will be skipped" >>"$base_log"; fi
base_pid=""
cat "$base_log"

echo "== tests"
python -m pytest tests "$@"
