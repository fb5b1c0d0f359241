"""The files in grafana/ are what Grafana 11.6 (the version compose pins) loads: dashboards
checked against Grafana's own 11.6 models (grafana-foundation-sdk), provisioning files
with the keys Grafana requires, and every reference pointing at the provisioned datasource.
Their InfluxQL runs against a real influxd in tests/integration/test_grafana_queries.py."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from grafana_foundation_sdk.cog import runtime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from tests.harness.grafana import (
    DATASOURCE_UID,
    Query,
    alert_rule_queries,
    dashboard_queries,
    fill_macros,
    interval_text,
    load_dashboards,
    panels,
    provisioning_files,
)

# Dashboard JSON version of Grafana 11.6 (the SDK's 11.6 build defaults to it).
SCHEMA_VERSION = 41
# Environment variables compose gives Grafana; provisioning may use no other.
GRAFANA_ENV = {
    "INFLUX_URL",
    "INFLUX_DATABASE",
    "INFLUX_READER_USER",
    "INFLUX_READER_PASSWORD",
    "INFLUX_TOKEN",
    "DISPATCH_TELEGRAM_BOT_TOKEN",
    "DISPATCH_TELEGRAM_CHAT_ID",
}
# The InfluxDB annotation's own keys (query and column mapping), which Grafana's InfluxDB
# annotation editor reads and writes at the annotation's top level. Grafana's dashboard
# schema leaves datasource-specific annotation keys open, so its 11.6 models drop them.
LEGACY_ANNOTATION_KEYS = {"query", "titleColumn", "textColumn", "tagsColumn"}

register_default_plugins()
DASHBOARDS = load_dashboards()
PROVISIONING = provisioning_files()


def test_the_three_dashboards_exist_with_fixed_unique_uids() -> None:
    uids = {name: board["uid"] for name, board in DASHBOARDS.items()}
    assert uids == {
        "gauge.json": "floodwatch-gauge",
        "network.json": "floodwatch-network",
        "overview.json": "floodwatch-overview",
    }


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_basics(name: str) -> None:
    board = DASHBOARDS[name]
    assert board["schemaVersion"] == SCHEMA_VERSION
    assert board["title"].startswith("Floodwatch")
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(board):
        assert panel["title"]
        assert runtime.panelcfg_config(panel["type"]) is not None, (
            f"{panel['type']} is not a Grafana 11.6 core panel"
        )
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs))
        assert all(t["rawQuery"] is True and t["query"] for t in panel["targets"])


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_key_is_in_grafanas_11_6_dashboard_model(name: str) -> None:
    """Grafana's generated 11.6 models keep every key they know and drop the rest: a key
    lost on the way through them is misspelt, misplaced or not in 11.6's schema."""
    board = DASHBOARDS[name]
    back = json.loads(json.dumps(Dashboard.from_json(board), cls=JSONEncoder))
    lost = set(_paths(board)) - set(_paths(back))
    legacy = {
        p
        for p in lost
        if p[:2] == ("annotations", "list") and p[3:] and p[3] in LEGACY_ANNOTATION_KEYS
    }
    assert lost - legacy == set()


def _datasource_refs(node: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield where, value
            yield from _datasource_refs(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _datasource_refs(value, f"{where}[{index}]")


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_datasource_reference_is_the_provisioned_influxdb(name: str) -> None:
    refs = list(_datasource_refs(DASHBOARDS[name]))
    assert refs
    for where, ref in refs:
        if ref == {"type": "grafana", "uid": "-- Grafana --"}:
            continue  # Grafana's built-in annotations
        assert ref == {"type": "influxdb", "uid": DATASOURCE_UID}, where


def test_the_alert_annotation_maps_title_text_and_tags() -> None:
    (annotation,) = [a for a in DASHBOARDS["gauge.json"]["annotations"]["list"] if "query" in a]
    columns = {key: annotation[key] for key in LEGACY_ANNOTATION_KEYS - {"query"}}
    assert columns == {"titleColumn": "title", "textColumn": "text", "tagsColumn": "kind,severity"}
    assert 'SELECT "title", "text", "kind", "severity" FROM "alert"' in annotation["query"]


def test_the_gauge_dashboard_has_its_gauge_variable() -> None:
    variables = {v["name"]: v for v in DASHBOARDS["gauge.json"]["templating"]["list"]}
    assert variables["gauge"]["query"] == 'SHOW TAG VALUES FROM "water_level" WITH KEY = "station"'


# --- provisioning ------------------------------------------------------------------------


def _env_vars(node: Any) -> set[str]:
    text = json.dumps(node)
    return set(re.findall(r"(?<!\$)\$\{?([A-Z][A-Z0-9_]*)\}?", text))


def test_provisioning_files_are_the_expected_ones() -> None:
    assert set(PROVISIONING) == {
        "provisioning/datasources/influxdb.yml",
        "provisioning/dashboards/floodwatch.yml",
        "provisioning/alerting/rules.yml",
        "provisioning/alerting/contact-points.yml",
        "provisioning/alerting/policies.yml",
        "variants/influxdb2-token.yml",
    }
    for name, document in PROVISIONING.items():
        assert document["apiVersion"] == 1, name
        assert _env_vars(document) <= GRAFANA_ENV, name


@pytest.mark.parametrize(
    "name", ["provisioning/datasources/influxdb.yml", "variants/influxdb2-token.yml"]
)
def test_datasources(name: str) -> None:
    (source,) = PROVISIONING[name]["datasources"]
    assert source["uid"] == DATASOURCE_UID
    assert (source["type"], source["access"]) == ("influxdb", "proxy")
    assert source["url"] == "${INFLUX_URL}"
    assert source["jsonData"]["dbName"] == "${INFLUX_DATABASE}"
    assert "version" not in source["jsonData"]  # InfluxQL is the default query language
    if name.startswith("variants/"):
        assert source["jsonData"]["httpHeaderName1"] == "Authorization"
        assert source["secureJsonData"] == {"httpHeaderValue1": "Token ${INFLUX_TOKEN}"}
        assert "user" not in source
    else:
        assert source["user"] == "${INFLUX_READER_USER}"
        assert source["secureJsonData"] == {"password": "${INFLUX_READER_PASSWORD}"}


def test_dashboard_provider_reads_the_mounted_folder() -> None:
    (provider,) = PROVISIONING["provisioning/dashboards/floodwatch.yml"]["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


RULES = PROVISIONING["provisioning/alerting/rules.yml"]["groups"]


def test_alert_rules_have_what_grafana_requires() -> None:
    uids = []
    for group in RULES:
        assert {"orgId", "name", "folder", "interval", "rules"} <= set(group)
        for rule in group["rules"]:
            uids.append(rule["uid"])
            assert {"uid", "title", "condition", "data", "for"} <= set(rule)
            assert rule["noDataState"] in {"NoData", "Alerting", "OK"}
            assert rule["execErrState"] in {"Error", "Alerting", "OK"}
            refs = {item["refId"] for item in rule["data"]}
            assert rule["condition"] in refs
            for item in rule["data"]:
                assert item["model"]["refId"] == item["refId"]
                if item["datasourceUid"] == "__expr__":
                    assert item["model"]["expression"] in refs
                else:
                    assert item["datasourceUid"] == DATASOURCE_UID
                    assert item["model"]["datasource"]["uid"] == DATASOURCE_UID
                    assert item["relativeTimeRange"]["from"] > item["relativeTimeRange"]["to"]
            # Grafana expands environment variables in labels: none may hold a $.
            assert "$" not in json.dumps(rule.get("labels", {}))
    assert len(uids) == len(set(uids)) >= 4


def test_the_telegram_contact_point_receives_every_alert() -> None:
    (point,) = PROVISIONING["provisioning/alerting/contact-points.yml"]["contactPoints"]
    (receiver,) = point["receivers"]
    assert receiver["type"] == "telegram"
    assert receiver["settings"]["bottoken"] == "${DISPATCH_TELEGRAM_BOT_TOKEN}"
    assert receiver["settings"]["chatid"] == "${DISPATCH_TELEGRAM_CHAT_ID}"
    (policy,) = PROVISIONING["provisioning/alerting/policies.yml"]["policies"]
    assert policy["receiver"] == point["name"]


def test_every_query_is_found() -> None:
    queries = [q for n, b in DASHBOARDS.items() for q in dashboard_queries(n, b)]
    queries += list(alert_rule_queries())
    assert len(queries) >= 25
    assert all(isinstance(q, Query) and q.text for q in queries)


# --- Grafana's macros --------------------------------------------------------------------

WINDOW = {"start_ms": 1000, "end_ms": 2000, "interval_s": 60.0}


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [
        ("WHERE $timeFilter", {}, "WHERE time >= 1000ms and time <= 2000ms"),
        ("GROUP BY time($__interval)", {}, "GROUP BY time(1m)"),
        ("x * 1000 / $__interval_ms", {}, "x * 1000 / 60000"),
        ("'$gauge' '${gauge}' '[[gauge]]'", {"gauge": "g-1"}, "'g-1' 'g-1' 'g-1'"),
        # Inside a regex literal a value is escaped, as Grafana does for InfluxDB.
        ('"s" =~ /^$gauge$/', {"gauge": "a.b"}, '"s" =~ /^a\\.b$/'),
        ('"s" !~ /^${gauge}$/', {"gauge": "a(b"}, '"s" !~ /^a\\(b$/'),
        ("'${gauge:regex}'", {"gauge": "a.b"}, "'a\\.b'"),
        ("'$gauge' AND \"s\" =~ /^$gauge$/", {"gauge": "a.b"}, "'a.b' AND \"s\" =~ /^a\\.b$/"),
        ("> $silent_after", {"silent_after": "3600"}, "> 3600"),
    ],
)
def test_fill_macros(query: str, variables: dict[str, str], expected: str) -> None:
    assert fill_macros(query, variables=variables, **WINDOW) == expected  # type: ignore[arg-type]


def test_an_unknown_variable_is_an_error() -> None:
    with pytest.raises(KeyError, match="gauge"):
        fill_macros("'$gauge'", **WINDOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(60, "1m"), (30, "30s"), (3600, "1h"), (86400, "1d"), (0.5, "500ms"), (90, "90s")],
)
def test_interval_text(seconds: float, text: str) -> None:
    assert interval_text(seconds) == text
