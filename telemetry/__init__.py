"""What every Dockyard process shares to be observed: its log format and context, its tracer, its /metrics.

Entry points configure it once (`process.observe_process`; the worker's
parent and the CLI call `logs.configure_logging` alone); the rest of the
code only labels what it does (`log_context`, spans).
It imports nothing of Dockyard's but settings.
"""
