"""The InfluxQL in grafana/: found in the dashboards and alert rules, with Grafana's macros
filled in as Grafana would, so the tests can run it against a real influxd."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

GRAFANA = Path(__file__).resolve().parents[2] / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
PROVISIONING = GRAFANA / "provisioning"
DATASOURCE_UID = "floodwatch-influx"


@dataclass(frozen=True)
class Query:
    where: str  # e.g. "gauge.json panel 'Water level' C"
    text: str
    relative_s: tuple[int, int] | None = None  # an alert rule's time range (from, to)


def load_dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def provisioning_files() -> dict[str, Any]:
    files = sorted(PROVISIONING.rglob("*.yml")) + sorted((GRAFANA / "variants").glob("*.yml"))
    return {str(path.relative_to(GRAFANA)): yaml.safe_load(path.read_text()) for path in files}


def panels(board: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # panels inside a collapsed row


def dashboard_queries(name: str, board: Mapping[str, Any]) -> Iterator[Query]:
    for panel in panels(board):
        for target in panel.get("targets", []):
            where = f"{name} panel {panel['title']!r} {target['refId']}"
            yield Query(where, target["query"])
    for annotation in board.get("annotations", {}).get("list", []):
        if annotation.get("builtIn"):
            continue
        text = annotation.get("target", {}).get("query") or annotation.get("query")
        yield Query(f"{name} annotation {annotation['name']!r}", text)
    for variable in board.get("templating", {}).get("list", []):
        if variable["type"] == "query":
            yield Query(f"{name} variable {variable['name']!r}", variable["query"])


def alert_rule_queries() -> Iterator[Query]:
    for path in sorted((PROVISIONING / "alerting").glob("*.yml")):
        for group in yaml.safe_load(path.read_text()).get("groups", []):
            for rule in group["rules"]:
                for item in rule["data"]:
                    if item["datasourceUid"] == DATASOURCE_UID:
                        span = item["relativeTimeRange"]
                        yield Query(
                            f"alert rule {rule['uid']} {item['refId']}",
                            item["model"]["query"],
                            (span["from"], span["to"]),
                        )


# --- Grafana's macros -------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)\]\]|\$(\w+)")
# Regex literals after =~ or !~: a variable inside one is regex-escaped, as Grafana does.
_REGEX_LITERAL = re.compile(r"[=!]~\s*/((?:\\.|[^/\\])*)/")
_REGEX_SPECIAL = re.compile(r"([\\^$*+?.()|\[\]{}/])")


def interval_text(seconds: float) -> str:
    """Grafana's $__interval for a whole number of ms: 1m, 30s, 1h, 500ms."""
    ms = round(seconds * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def fill_macros(
    query: str,
    *,
    start_ms: int,
    end_ms: int,
    interval_s: float,
    variables: Mapping[str, str] | None = None,
) -> str:
    """`query` as Grafana sends it to InfluxDB; KeyError for an unknown variable."""
    builtins = {
        "timeFilter": f"time >= {start_ms}ms and time <= {end_ms}ms",
        "__timeFilter": f"time >= {start_ms}ms and time <= {end_ms}ms",
        "__interval": interval_text(interval_s),
        "interval": interval_text(interval_s),
        "__interval_ms": str(round(interval_s * 1000)),
        "__from": str(start_ms),
        "__to": str(end_ms),
    }
    values = {**builtins, **(variables or {})}
    regex_spans = [match.span(1) for match in _REGEX_LITERAL.finditer(query)]

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3) or match.group(4)
        if name not in values:
            raise KeyError(f"unknown Grafana variable ${name} in {query!r}")
        value = values[name]
        in_regex = match.group(2) == "regex" or any(
            start <= match.start() < end for start, end in regex_spans
        )
        return (
            _REGEX_SPECIAL.sub(r"\\\1", value) if in_regex and name in (variables or {}) else value
        )

    return _VARIABLE.sub(replace, query)
