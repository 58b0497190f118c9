#!/usr/bin/env bash
# `make bench`: start the services, build the sample processors, run the
# benchmarks under bench/ (they print figures; nothing here passes or fails
# on a number). Services this script started are stopped at the end.
# Pass options through: make bench SUBMIT_ARGS="--rate 600" OVERHEAD_ARGS="--runs 100"
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"
SERVICES="$ROOT/infra/dev/services.sh"

started=$("$SERVICES" up docker rabbitmq postgres registry)
cleanup() {
  # shellcheck disable=SC2086
  if [ -n "$started" ]; then "$SERVICES" down $started || true; fi
}
trap cleanup EXIT
eval "$("$SERVICES" env)"
export BENCH_PROCESSORS_MANIFEST="$ROOT/.dockyard/bench-processors.yaml"
infra/processors/build.sh "$BENCH_PROCESSORS_MANIFEST"

echo "== bench/submit.py ${SUBMIT_ARGS:-}"
# shellcheck disable=SC2086
python -m bench.submit ${SUBMIT_ARGS:-}
echo
echo "== bench/container_overhead.py ${OVERHEAD_ARGS:-}"
# shellcheck disable=SC2086
python -m bench.container_overhead ${OVERHEAD_ARGS:-}
