#!/usr/bin/env bash
# `make bench`: start the services, build the sample processors, run the
# benchmarks under bench/ (they print figures; nothing here passes or fails
# on a number). Services this script started are stopped at the end.
# Pass options through: make bench SUBMIT_ARGS="--rate 600" OVERHEAD_ARGS="--runs 100" CRON_ARGS="--fires 5000"
# HISTORY_ARGS="--runs 1000000" (default 100,000 runs, a few minutes; a million takes about 15)
set -euo pipefail
# shellcheck source=infra/dev/common.sh
source "$(dirname "$0")/common.sh"
with_services docker rabbitmq postgres postgres-durable registry
export BENCH_PROCESSORS_MANIFEST="$ROOT/.dockyard/bench-processors.yaml"
infra/processors/build.sh "$BENCH_PROCESSORS_MANIFEST"

echo "== bench/submit.py ${SUBMIT_ARGS:-}"
# shellcheck disable=SC2086
python -m bench.submit ${SUBMIT_ARGS:-}
echo
echo "== bench/submit.py --durable ${SUBMIT_ARGS:-}"
# shellcheck disable=SC2086
python -m bench.submit --durable ${SUBMIT_ARGS:-}
echo
echo "== bench/bare_submit.py --durable"
python -m bench.bare_submit --durable
echo
echo "== bench/history.py ${HISTORY_ARGS:---runs 100000}"
# shellcheck disable=SC2086
python -m bench.history ${HISTORY_ARGS:---runs 100000}
echo
echo "== bench/container_overhead.py --defaults"
python -m bench.container_overhead --defaults
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
