"""Every run list the API and the console ask for walks an index, in order, on Postgres.

A history of 30,000 runs (two tenants, five processors, some scheduled) is
analysed, and each list query, as `storage.runs.runs_query` builds it, is
explained: the plan reads `runs` through an index that holds every filter
as its condition (nothing is filtered row by row) and needs no sort, so a
page costs the same at a million runs as at a thousand (bench/history.py
measures it there).
"""

import json

import pytest

from storage.database import open_database
from storage.migrations import migrate
from storage.runs import decode_cursor, list_runs, runs_query
from tests.integration.conftest import fresh_postgres_database
from tests.run_list_cases import LISTS

SEED = """
INSERT INTO processors (name, image, command, timeout_seconds, cpus, memory_mb, pids, network, env, queue,
                        concurrency, retry, enabled, created_at, updated_at)
SELECT 'p' || n, 'img', NULL, 60, 0.5, 64, 32, 'none', '{}', 'runs', NULL, '{}', TRUE, now(), now()
FROM generate_series(0, 4) n;
INSERT INTO runs (id, tenant_id, processor, queue, state, priority, labels, attempts, max_attempts, timeout_seconds,
                  schedule_id, scheduled_for, created_at, updated_at)
SELECT md5(g::text), CASE WHEN mod(g, 10) = 0 THEN 'other' ELSE 'default' END, 'p' || mod(g * 7, 5), 'runs',
       (ARRAY['succeeded', 'succeeded', 'succeeded', 'failed', 'queued', 'cancelled', 'dead_letter'])[1 + mod(g * 13, 7)],
       (ARRAY['low', 'normal', 'normal', 'high', 'critical'])[1 + mod(g * 3, 5)], '{}', 1, 3, 60,
       CASE WHEN mod(g, 5) = 0 THEN 's' || mod(g, 40) END, CASE WHEN mod(g, 5) = 0 THEN timestamp '2026-01-01' + g * interval '1 s' END,
       timestamp '2026-11-01' + g * interval '7 s', timestamp '2026-11-01' + g * interval '7 s'
FROM generate_series(1, 30000) g;
ANALYZE runs
"""


def plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


@pytest.fixture(scope="module")
def history():
    with fresh_postgres_database() as url:
        db = open_database(url, pool_size=2)
        migrate(db)
        for statement in SEED.split(";"):
            db.execute_sql(statement)
        yield db
        db.close_all()


@pytest.mark.parametrize("filters", LISTS.values(), ids=LISTS.keys())
def test_each_run_list_reads_runs_through_an_index_in_order(history, filters):
    sql, params = runs_query(tenant_id="default", **filters).limit(51).sql()
    (raw,) = history.execute_sql("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()
    nodes = list(plan_nodes((raw if isinstance(raw, list) else json.loads(raw))[0]["Plan"]))
    kinds = [(node["Node Type"], node.get("Index Name")) for node in nodes]
    reads = [node for node in nodes if node.get("Relation Name") == "runs"]
    assert reads and all(node["Node Type"] in ("Index Scan", "Index Only Scan") for node in reads), kinds
    assert not any(node["Node Type"] in ("Sort", "Incremental Sort") for node in nodes), kinds
    # Every filter is a condition of the index, none is checked row by row: the walk reads only the page.
    assert all("Filter" not in node for node in reads), [(node.get("Index Name"), node.get("Filter")) for node in reads]
    # The row-value key is part of the index condition: the walk starts at the cursor.
    if "after" in filters:
        assert "created_at" in reads[0].get("Index Cond", ""), reads[0]


def test_cursor_pages_walk_the_whole_filtered_history_once(history):
    seen, cursor, pages = [], None, 0
    while True:
        page, cursor = list_runs(tenant_id="default", state="queued", limit=200, cursor=cursor)
        seen += [run.id for run in page]
        pages += 1
        if cursor is None:
            break
        assert decode_cursor(cursor)[1] == page[-1].id
    expected = history.execute_sql("SELECT count(*) FROM runs WHERE tenant_id = 'default' AND state = 'queued'").fetchone()[0]
    assert len(seen) == len(set(seen)) == expected and pages == -(-expected // 200)
