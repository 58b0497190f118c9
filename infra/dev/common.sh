# Sourced by run.sh, test.sh and bench.sh: the repository root, the
# virtualenv on PATH, and services started for the caller's lifetime.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"
SERVICES="$ROOT/infra/dev/services.sh"

# with_services NAME...: start the services (reusing any already running),
# stop on exit those this script started (unless KEEP_SERVICES=1), and
# export their URLs.
with_services() {
  started=$("$SERVICES" up "$@")
  trap stop_started_services EXIT
  eval "$("$SERVICES" env)"
}

stop_started_services() {
  # shellcheck disable=SC2086
  if [ -n "${started:-}" ] && [ "${KEEP_SERVICES:-0}" != 1 ]; then "$SERVICES" down $started || true; fi
}
