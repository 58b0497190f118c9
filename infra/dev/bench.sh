#!/usr/bin/env bash
# `make bench`: start the services, build the sample processors, run the
# benchmarks under bench/ (they print figures; nothing here passes or fails
# on a number). Services this script started are stopped at the end.
# Pass options through: make bench SUBMIT_ARGS="--rate 600" OVERHEAD_ARGS="--runs 100" CRON_ARGS="--fires 5000"
set -euo pipefail
# shellcheck source=infra/dev/common.sh
source "$(dirname "$0")/common.sh"
with_services docker rabbitmq postgres registry
export BENCH_PROCESSORS_MANIFEST="$ROOT/.dockyard/bench-processors.yaml"
infra/processors/build.sh "$BENCH_PROCESSORS_MANIFEST"

echo "== bench/submit.py ${SUBMIT_ARGS:-}"
# shellcheck disable=SC2086
python -m bench.submit ${SUBMIT_ARGS:-}
echo
echo "== bench/container_overhead.py ${OVERHEAD_ARGS:-}"
# shellcheck disable=SC2086
python -m bench.container_overhead ${OVERHEAD_ARGS:-}
echo
echo "== bench/cron_catchup.py ${CRON_ARGS:-}"
# shellcheck disable=SC2086
python -m bench.cron_catchup ${CRON_ARGS:-}
echo
echo "== bench/trace_cost.py ${TRACE_ARGS:-}"
# shellcheck disable=SC2086
python -m bench.trace_cost ${TRACE_ARGS:-}
