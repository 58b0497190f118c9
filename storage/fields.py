"""Column types shared by the models."""

import json

import peewee


class JSONField(peewee.TextField):
    """Any JSON value, stored as compact text (portable across SQLite and Postgres)."""

    def db_value(self, value):
        if value is None:
            return None
        return json.dumps(value, separators=(",", ":"), sort_keys=True)

    def python_value(self, value):
        if value is None:
            return None
        return json.loads(value)
