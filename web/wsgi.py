"""gunicorn entry point: `gunicorn web.wsgi:app`."""

from __future__ import annotations

from actors.dispatch import create_dispatcher
from settings import Settings
from storage.database import open_database
from telemetry.process import observe_process
from web.app import create_app

PROCESSOR_CACHE_SECONDS = 1.0

settings = Settings.from_env()
observe_process(settings, "web")
db = open_database(settings.database_url, pool_size=settings.database_pool_size)
# Processors are read at most 1 s ago on the submit path (a PUT through this process: at once).
app = create_app(
    settings, db=db, dispatcher=create_dispatcher(settings, processor_cache_seconds=PROCESSOR_CACHE_SECONDS, group_commit=True)
)
