#!/usr/bin/env bash
# Check the Prometheus configuration and alert rules with promtool; exits
# non-zero on the first failure. Called from CI (infra/dev/test.sh).
# promtool comes with Debian's `prometheus` package; as root it is installed
# when missing.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v promtool >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[prometheus] installing promtool (apt-get install prometheus)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
  else
    echo "[prometheus] FAILED: promtool not found (apt-get install prometheus)" >&2
    exit 1
  fi
fi

promtool check config prometheus.yml   # also checks the rule files it loads
promtool check rules alerts.yml
promtool test rules alerts_test.yml
