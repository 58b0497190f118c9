#!/usr/bin/env bash
# `make test`: start the services the suite needs (RabbitMQ, Postgres, the
# Docker engine, a local registry), build the sample processor images, then
# lint, check configs and run every test. Services this script started are
# stopped at the end unless KEEP_SERVICES=1.
set -euo pipefail
# shellcheck source=infra/dev/common.sh
source "$(dirname "$0")/common.sh"
with_services docker rabbitmq postgres registry
export TEST_PROCESSORS_MANIFEST="$ROOT/.dockyard/test-processors.yaml"
infra/processors/build.sh "$TEST_PROCESSORS_MANIFEST"

echo "== lint"
ruff format --check .
ruff check .

echo "== configs"
command -v docker-compose >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
docker-compose -f docker-compose.yml config -q
if [ -x infra/prometheus/check.sh ]; then infra/prometheus/check.sh; fi

echo "== tests"
python -m pytest tests "$@"
