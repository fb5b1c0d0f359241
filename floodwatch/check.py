"""`floodwatch check`: is the configuration valid, and can we reach the broker and the store?"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from floodwatch import mqtt as fw_mqtt
from floodwatch.catalog import load_catalog
from floodwatch.errors import FloodwatchError
from floodwatch.settings import Settings
from floodwatch.storage import open_store


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


async def _catalog(settings: Settings) -> str:
    catalog = load_catalog(settings.stations)
    levels = sum(len(station.levels) for station in catalog.values())
    return f"{settings.stations}: {len(catalog)} stations, {levels} threshold levels"


async def _broker(settings: Settings) -> str:
    endpoint = settings.mqtt
    client = fw_mqtt.make_client(endpoint, f"{settings.mqtt_client_id}-check")
    await fw_mqtt.connect(client, endpoint, wait_s=5.0)
    client.disconnect()
    client.loop_stop()
    return f"connected to {endpoint.display()}"


async def _store(settings: Settings) -> str:
    store = open_store(settings)
    try:
        await store.open()
        await store.ping()
    finally:
        await store.close()
    return f"reachable: {store.description}"


CHECKS: tuple[tuple[str, Callable[[Settings], Awaitable[str]]], ...] = (
    ("station catalog", _catalog),
    ("MQTT broker", _broker),
    ("readings store", _store),
)


async def run_checks(settings: Settings) -> list[CheckResult]:
    results = []
    for name, check in CHECKS:
        try:
            detail = await check(settings)
        except FloodwatchError as exc:
            results.append(CheckResult(name, False, str(exc)))
        except OSError as exc:
            results.append(CheckResult(name, False, f"{type(exc).__name__}: {exc}"))
        else:
            results.append(CheckResult(name, True, detail))
    return results
