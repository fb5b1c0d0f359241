"""The channels' pure parts: payloads, the current picture, annotation records, PUBACKs."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest

from alerts.channels import current
from alerts.channels.influx import to_record
from alerts.channels.mqtt import MqttChannel, event_payload
from alerts.channels.texts import EventTexts, one_line
from alerts.events import EventKind
from alerts.gauge_state import GaugeState, Prewarning
from floodwatch.catalog import Catalog, load_catalog
from floodwatch.settings import MqttEndpoint
from tests.harness.alert_events import DANGER, T0, event
from tests.harness.gauges import write_catalog


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    path = tmp_path / "stations.yaml"
    write_catalog(path, 2)
    return load_catalog(path)


def test_event_payload_adds_severity_audience_and_texts(catalog: Catalog) -> None:
    texts = EventTexts(lambda: catalog)
    escalation = event()

    body = orjson.loads(event_payload(escalation, texts.plain(escalation)))

    assert body["event_id"] == escalation.event_id
    assert body["kind"] == "escalation"
    assert body["severity"] == "watch"
    assert body["operator_only"] is False
    assert body["threshold"]["key"] == "watch"
    assert body["at"] == T0.isoformat()
    assert set(body["text"]) == {"en", "ru"}
    assert "Gauge gauge-000" in body["text"]["en"]


def test_texts_of_a_station_gone_from_the_catalog_fall_back(catalog: Catalog) -> None:
    texts = EventTexts(lambda: catalog)
    orphan = event("gone-gauge", EventKind.ALL_CLEAR, threshold=None)

    assert texts.plain(orphan) == {}
    assert texts.title(orphan) == "gone-gauge: all clear"


def test_annotation_record_is_one_line_with_the_rung(catalog: Catalog) -> None:
    texts = EventTexts(lambda: catalog)

    record = to_record(event(threshold=DANGER, level=612.5), texts)
    health = to_record(event(kind=EventKind.OFFLINE, threshold=None, level=None), texts)

    assert record.severity == "danger"
    assert record.threshold == 600.0
    assert record.threshold_key == "danger"
    assert record.level == 612.5
    assert "\n" not in record.text
    assert record.title
    assert health.severity is None
    assert health.threshold is None


def test_one_line_joins_the_lines_of_a_message() -> None:
    assert one_line("Flood watch\n\nLevel: 4 m.\n  Keep away. ") == (
        "Flood watch · Level: 4 m. · Keep away."
    )


def test_current_picture_from_state_and_catalog(catalog: Catalog) -> None:
    station = catalog["gauge-000"]
    state = GaugeState(
        active="danger",
        since=T0,
        prewarning=Prewarning("gone-rung", T0 + timedelta(hours=3), T0),
        offline=True,
    )

    picture = current.picture("gauge-000", state, station, T0)

    assert picture["level"] == {
        "key": "danger",
        "severity": "danger",
        "short": "D",
        "value": 600.0,
        "since": T0.isoformat(),
    }
    # A rung the catalog no longer has keeps its key only.
    assert picture["prewarning"]["key"] == "gone-rung"
    assert picture["prewarning"]["severity"] is None
    assert picture["prewarning"]["expected_at"] == (T0 + timedelta(hours=3)).isoformat()
    assert picture["offline"] is True
    assert picture["faulty"] is False
    nothing = current.picture("gauge-001", None, None, T0)
    assert nothing["level"] is None
    assert nothing["offline"] is False


def test_current_picture_parses_back_and_refuses_garbage(catalog: Catalog) -> None:
    state = GaugeState(active="watch", since=T0)
    body = current.payload(current.picture("gauge-000", state, catalog["gauge-000"], T0))

    parsed = current.parse(body)

    assert parsed is not None
    assert parsed.updated_at == T0
    assert parsed.level is not None
    assert parsed.level["key"] == "watch"
    assert parsed.offline is False
    for garbage in (
        b"not json",
        b"[]",
        b'{"updated_at": "2026-01-01T00:00:00"}',  # naive
        b'{"updated_at": "2026-01-01T00:00:00+00:00", "level": "watch"}',
        b'{"level": null}',
    ):
        assert current.parse(garbage) is None, garbage


async def test_a_message_queued_while_disconnected_counts_once_acknowledged(
    catalog: Catalog,
) -> None:
    # paho reports a publish made as the connection drops with rc NO_CONN, sends it after
    # the reconnect, and its MQTTMessageInfo never says so: the PUBACK's packet id does.
    channel = MqttChannel(
        MqttEndpoint.parse("mqtt://127.0.0.1:1"),
        "unused",
        texts=EventTexts(lambda: catalog),
        catalog_source=lambda: catalog,
        states=lambda: asyncio.sleep(0, {}),
    )
    channel._loop = asyncio.get_running_loop()
    info = mqtt.MQTTMessageInfo(42)
    info.rc = mqtt.MQTT_ERR_NO_CONN
    channel._inflight["e"] = info
    channel._tracked_mids.add(42)

    assert not channel._is_confirmed(info)
    channel._on_publish(None, None, 42, None, None)  # type: ignore[arg-type]
    assert channel._is_confirmed(info)
    channel._forget("e")
    assert channel._tracked_mids == set()
