"""The run lists the API and the console ask for, as `storage.runs.runs_query` filters (the plan tests share them)."""

import datetime as dt

AFTER = (dt.datetime(2026, 11, 2), "8" * 32)  # a cursor's key part way down the history

LISTS = {
    "newest": {},
    "by state": {"state": "failed"},
    "by processor": {"processor": "p3"},
    "by schedule": {"schedule_id": "s5"},
    "a time range": {"created_since": dt.datetime(2026, 11, 1, 12), "created_before": dt.datetime(2026, 11, 2)},
    "a later page": {"after": AFTER},
    "a later page by state": {"state": "queued", "after": AFTER},
    "a later page by processor": {"processor": "p1", "after": AFTER},
}
