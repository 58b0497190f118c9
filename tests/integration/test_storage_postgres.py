"""The storage cases on Postgres (the same cases run on SQLite in tests/unit)."""

import pytest

from tests.storage_cases import CASES


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_storage_on_postgres(case, pg_db):
    case(pg_db)
