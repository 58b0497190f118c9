"""What every Dockyard process shares to be observed: its log format and context, its tracer, its /metrics.

Entry points configure it once (`configure_logging`, `configure_tracing`);
the rest of the code only labels what it does (`log_context`, spans).
It imports nothing of Dockyard's but settings.
"""
