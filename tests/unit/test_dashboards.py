"""The Grafana dashboards in infra/grafana: written by telemetry/dashboards.py, and well formed (ids, grid,
datasources, variables) for the provisioning beside them. Their queries are evaluated on a real Prometheus
in tests/e2e/test_dashboards.py."""

from __future__ import annotations

import itertools
import json
import pathlib
import re

import pytest
import yaml

from telemetry import dashboards

ROOT = pathlib.Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "infra" / "grafana"
FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
BUILTINS = {"__rate_interval", "__interval", "__range"}


def panels_of(board: dict) -> list[dict]:
    out = []
    for panel in board["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # a collapsed row keeps its panels inside
    return out


def test_the_committed_dashboards_are_what_the_code_writes(capsys):
    assert dashboards.main(["--check"]) == 0, capsys.readouterr().err
    assert {f.stem for f in FILES} == set(dashboards.DASHBOARDS) == {"overview", "processors", "api", "scheduler", "rabbitmq"}


def test_check_reports_a_stale_file(tmp_path, capsys):
    dashboards.main(["--out", str(tmp_path)])
    (tmp_path / "api.json").write_text("{}")
    assert dashboards.main(["--check", "--out", str(tmp_path)]) == 1
    assert "api.json" in capsys.readouterr().err


def test_uids_and_titles_are_unique():
    boards = [json.loads(f.read_text()) for f in FILES]
    assert len({b["uid"] for b in boards}) == len({b["title"] for b in boards}) == len(FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_dashboard_is_well_formed(path):
    board = json.loads(path.read_text())
    panels = panels_of(board)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"

    for panel in panels:
        pos = panel["gridPos"]
        assert pos["w"] > 0 and pos["h"] > 0 and pos["x"] >= 0 and pos["y"] >= 0 and pos["x"] + pos["w"] <= 24, (panel["title"], pos)
        if panel["type"] == "row":
            assert pos["w"] == 24 and pos["x"] == 0, panel["title"]
    for a, b in itertools.combinations(panels, 2):
        pa, pb = a["gridPos"], b["gridPos"]
        overlap = (
            pa["x"] < pb["x"] + pb["w"] and pb["x"] < pa["x"] + pa["w"] and pa["y"] < pb["y"] + pb["h"] and pb["y"] < pa["y"] + pa["h"]
        )
        assert not overlap, f"{a['title']!r} and {b['title']!r} overlap"

    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["datasource"]["current"]["value"] == provisioned_datasource()["uid"]

    def resolves(ref: dict) -> bool:
        return ref["type"] == "prometheus" and (ref["uid"] == "${datasource}" or ref["uid"] == provisioned_datasource()["uid"])

    queries = 0
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["title"] and resolves(panel["datasource"]), panel["title"]
        assert panel["targets"], f"{panel['title']!r} has no query"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert resolves(target["datasource"]) and target["expr"].strip(), panel["title"]
            used = set(re.findall(r"\$\{?(\w+)", target["expr"] + panel["title"]))
            assert used <= set(variables) | BUILTINS, f"{panel['title']!r} uses undefined variables {used - set(variables) - BUILTINS}"
            queries += 1
    for variable in variables.values():
        if variable["type"] == "query":
            assert resolves(variable["datasource"]) and variable["query"].startswith("label_values(")
    assert queries >= 6


def provisioned_datasource() -> dict:
    config = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = config["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == dashboards.DATASOURCE_UID
    return source


def test_compose_mounts_the_provisioning_where_it_says():
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "dockyard.yml").read_text())["providers"][0]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana_volumes = compose["services"]["grafana"]["volumes"]
    assert f"./infra/grafana/dashboards:{provider['options']['path']}:ro" in grafana_volumes
    assert "./infra/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana_volumes
    host = provisioned_datasource()["url"].split("//")[1].split(":")[0]
    assert host in compose["services"], f"the datasource points at {host}, which docker-compose.yml does not run"
