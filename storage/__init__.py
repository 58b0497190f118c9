"""Persistence: Peewee models, migrations, the run state machine and queries."""
