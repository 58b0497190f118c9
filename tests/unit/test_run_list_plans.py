"""On SQLite (`make run`'s database) too, every run list searches an index that holds its filters, in order.

The same lists as tests/integration/test_run_list_plans.py (Postgres), read
through `EXPLAIN QUERY PLAN`: a SEARCH of one of migration 12's indexes
with the filters in its condition, and no temporary b-tree for the order.
"""

import pytest

from storage.runs import runs_query
from tests.run_list_cases import LISTS

EXPECTED = {
    "newest": "runs_tenant_created (tenant_id=?)",
    "by state": "runs_tenant_state (tenant_id=? AND state=?)",
    "by processor": "runs_tenant_processor (tenant_id=? AND processor=?)",
    "by schedule": "runs_tenant_schedule (tenant_id=? AND schedule_id=?)",
    "a time range": "runs_tenant_created (tenant_id=? AND created_at>? AND created_at<?)",
    "a later page": "runs_tenant_created (tenant_id=? AND (created_at,id)<(?,?))",
    "a later page by state": "runs_tenant_state (tenant_id=? AND state=? AND (created_at,id)<(?,?))",
    "a later page by processor": "runs_tenant_processor (tenant_id=? AND processor=? AND (created_at,id)<(?,?))",
}


@pytest.mark.parametrize("name", LISTS)
def test_each_run_list_searches_its_index_on_sqlite(sqlite_db, name):
    sql, params = runs_query(tenant_id="default", **LISTS[name]).limit(51).sql()
    plan = [row[-1] for row in sqlite_db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()]
    assert plan == [f"SEARCH t1 USING INDEX {EXPECTED[name]}"], plan
