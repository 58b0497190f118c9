"""Setting a process up to be observed: the one call each entry point makes after reading its settings."""

from __future__ import annotations

import prometheus_client

from settings import Settings, SettingsError
from telemetry.logs import configure_logging
from telemetry.tracing import TracingError, configure_tracing


def observe_process(settings: Settings, service: str) -> None:
    """Log lines in the configured format, and a tracer provider named dockyard-`service` (OTEL_* variables
    may rename it and choose its exporter). A bad OTEL_* value raises SettingsError naming it."""
    configure_logging(settings.log_level, settings.log_format)
    # A _created series per counter and histogram doubles what is scraped, and no dashboard reads them.
    prometheus_client.disable_created_metrics()
    try:
        configure_tracing(f"dockyard-{service}")
    except TracingError as exc:
        raise SettingsError(str(exc)) from None
