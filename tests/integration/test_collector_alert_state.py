"""The retained station state carries the alert engine's current picture (real Mosquitto)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from alerts.channels import current
from alerts.channels.mqtt import MqttChannel
from alerts.channels.texts import EventTexts
from alerts.dispatch import Dispatcher
from alerts.events import EventKind
from alerts.store import AlertStore
from floodwatch import topics
from floodwatch.catalog import load_catalog
from floodwatch.models import utc_now
from floodwatch.settings import MqttEndpoint
from tests.harness.alert_events import DANGER, commit, event
from tests.harness.gauges import publish, stream, write_catalog
from tests.harness.inprocess import collector_settings, publish_raw, running_collector
from tests.harness.listener import Listener, Message
from tests.harness.mosquitto import MosquittoServer

pytestmark = pytest.mark.integration

STATES = "floodwatch/stations/+/state"


def _states(messages: list[Message], station_id: str) -> list[dict[str, Any]]:
    return [m.json() for m in messages if m.topic == topics.station_state(station_id)]


async def test_station_state_shows_the_alert_level_prewarning_and_offline(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    catalog_path = tmp_path / "stations.yaml"
    write_catalog(catalog_path, 3)
    catalog = load_catalog(catalog_path)
    endpoint = MqttEndpoint.parse(mosquitto.url)
    store = AlertStore(tmp_path / "state.sqlite")
    await store.open()
    await commit(
        store,
        event("gauge-000", EventKind.ESCALATION),
        event("gauge-000", EventKind.PREWARNING, 1, threshold=DANGER, expected_in_h=4),
        event("gauge-001", EventKind.OFFLINE, threshold=None, level=None),
    )
    channel = MqttChannel(
        endpoint,
        "alerts-out",
        texts=EventTexts(lambda: catalog),
        catalog_source=lambda: catalog,
        states=store.load_states,
    )
    dispatcher = Dispatcher(store, [channel])
    # The pictures are retained before the collector starts: it must pick them up.
    await dispatcher.start()
    settings = collector_settings(tmp_path, mosquitto.url, catalog_path, name="collector-alerts")
    try:
        async with (
            Listener(endpoint, STATES, client_id="dashboard") as live,
            running_collector(settings),
        ):
            await publish(endpoint, stream(["gauge-000", "gauge-001", "gauge-002"], 3))

            def merged(ms: list[Message]) -> bool:
                return (
                    any(s["alert_level"] for s in _states(ms, "gauge-000"))
                    and any(s["offline"] for s in _states(ms, "gauge-001"))
                    # False, not None: gauge-002's picture (nothing active) is merged too.
                    and any(s["offline"] is False for s in _states(ms, "gauge-002"))
                )

            messages = await live.wait_for(merged, 20, "alert pictures in the station state")
            state = _states(messages, "gauge-000")[-1]
            assert state["alert_level"]["key"] == "watch"
            assert state["alert_level"]["severity"] == "watch"
            assert state["alert_level"]["short"] == "W"
            assert state["prewarning"]["key"] == "danger"
            assert state["offline"] is False
            assert _states(messages, "gauge-002")[-1]["alert_level"] is None
            assert _states(messages, "gauge-002")[-1]["prewarning"] is None

            # An all-clear changes the picture, and the state follows without a new reading.
            await commit(store, event("gauge-000", EventKind.ALL_CLEAR, 30, threshold=None))
            dispatcher.wake()
            await live.wait_for(
                lambda ms: _states(ms, "gauge-000")[-1]["alert_level"] is None,
                20,
                "the all-clear in the station state",
            )

            # An older picture (a stale retained copy) and garbage change nothing.
            stale = current.picture("gauge-001", None, catalog["gauge-001"], utc_now())
            stale["updated_at"] = "2000-01-01T00:00:00+00:00"
            await publish_raw(
                endpoint,
                [
                    (topics.alert_current("gauge-001"), orjson.dumps(stale)),
                    (topics.alert_current("gauge-002"), b"not json"),
                ],
                client_id="stale-publisher",
            )
            await publish(endpoint, stream(["gauge-001"], 1))
            await live.wait_for(
                lambda ms: len(_states(ms, "gauge-001")) >= 2, 20, "a new gauge-001 state"
            )
            assert _states(live.messages, "gauge-001")[-1]["offline"] is True
    finally:
        await dispatcher.stop()
        await store.close()
