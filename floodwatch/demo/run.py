"""`floodwatch demo`: set up, play, stop in order, write the report.

Ctrl-C (SIGINT) or SIGTERM ends the play after the step in hand: the services stop in
reverse start order (the bot, the alert engine, the forecaster, the collector, then the
broker), the report is written for what was played, and the exit code is 130 for SIGINT
and 143 for SIGTERM. A second Ctrl-C while stopping is ignored: the report is on its way.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Coroutine, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from alerts.backtest import Run
from alerts.component import AlertComponent
from collector.service import Collector
from floodwatch.catalog import Catalog, load_catalog
from floodwatch.demo import scenario as scenarios
from floodwatch.demo.clock import SimClock
from floodwatch.demo.player import Player
from floodwatch.demo.printer import CHANNEL, Printer
from floodwatch.demo.recorder import Recorder, as_run
from floodwatch.demo.report import Meta, write
from floodwatch.embedded_broker import EmbeddedBroker
from floodwatch.models import Reading, utc_now
from floodwatch.net import free_port
from floodwatch.replay import gauge_publisher
from floodwatch.replay_csv import ReplayRow
from floodwatch.settings import Settings
from floodwatch.storage.sqlite import SQLiteStore
from floodwatch.wiring import Service, wire_services
from forecasting.service import Forecaster

log = logging.getLogger(__name__)
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
TELEGRAM_WAIT_S = 120.0
_STATE_FILES = ("readings.sqlite", "spool.sqlite", "state.sqlite")


def fresh_report_dir(out_dir: Path) -> None:
    """Each run starts from empty stores and an empty report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in _STATE_FILES:
        for suffix in ("", "-wal", "-shm"):
            (out_dir / f"{name}{suffix}").unlink(missing_ok=True)
    for old in (*out_dir.glob("*.png"), out_dir / "summary.json", out_dir / "summary.md"):
        old.unlink(missing_ok=True)
    (out_dir / "messages.txt").unlink(missing_ok=True)


def demo_settings(
    settings: Settings, out_dir: Path, broker: EmbeddedBroker, catalog: Path, max_age_s: float
) -> Settings:
    return settings.model_copy(
        update={
            "mqtt_url": SecretStr(broker.url),
            "influx_url": None,
            "stations": catalog,
            "readings_path": out_dir / "readings.sqlite",
            "spool_path": out_dir / "spool.sqlite",
            "state_path": out_dir / "state.sqlite",
            "mqtt_client_id": "floodwatch-demo-collector",
            "forecast_client_id": "floodwatch-demo-forecaster",
            "alert_client_id": "floodwatch-demo-alerts",
            # The embedded broker has no shared subscriptions: a $share filter that a
            # production .env sets would match nothing here.
            "mqtt_shared_group": None,
            "http_port": 0,
            # Each simulated step waits for its readings to be stored: keep batches short.
            "flush_interval_s": 0.005,
            "max_age_s": max(settings.max_age_s, max_age_s),
        }
    )


class Signals:
    """SIGINT/SIGTERM set `stop`; the first one decides the exit code."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.received: signal.Signals | None = None
        loop = asyncio.get_running_loop()
        for sig in SIGNAL_EXIT:
            loop.add_signal_handler(sig, self._on, sig)

    def _on(self, sig: signal.Signals) -> None:
        if self.received is None:
            self.received = sig
            print(f"\n{sig.name}: stopping after this step and writing the report…", flush=True)
        self.stop.set()

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in SIGNAL_EXIT:
            loop.remove_signal_handler(sig)


async def seed(path: Path, rows: Sequence[ReplayRow]) -> None:
    """The history the gauges sent before the demo starts, straight into the store."""
    if not rows:
        return
    store = SQLiteStore(path)
    await store.open()
    try:
        await store.write([Reading(r.station_id, r.ts, r.level) for r in rows])
    finally:
        await store.close()


async def subscribe_chats(bot: Service, catalog: Catalog, chats: Sequence[int], lang: str) -> None:
    from telegram_bot.component import BotComponent

    assert isinstance(bot, BotComponent)
    store = bot.delivery.store
    for chat_id in chats:
        kind = (
            "private"
            if chat_id > 0
            else "supergroup"
            if str(chat_id).startswith("-100")
            else "group"
        )
        await store.upsert_chat(chat_id, kind, lang)
        for station_id in catalog:
            await store.subscribe(chat_id, station_id=station_id, min_severity="watch")


async def wait_telegram(bot: Service, stop: asyncio.Event) -> None:
    from telegram_bot.component import BotComponent

    assert isinstance(bot, BotComponent)
    deadline = time.monotonic() + TELEGRAM_WAIT_S
    shown = False
    while time.monotonic() < deadline and not stop.is_set():
        counts = await bot.delivery.store.delivery_counts()
        waiting = sum(n for status, n in counts.items() if status not in ("sent", "failed"))
        if not waiting:
            return
        if not shown:
            print(f"\nsending {waiting} messages to Telegram (at most one a second per chat)…")
            shown = True
        await asyncio.sleep(0.2)


async def run_demo(
    settings: Settings,
    *,
    replay_file: Path | None,
    out_dir: Path,
    speed: float | None,
    language: str = "en",
    telegram_chats: Sequence[int] = (),
) -> int:
    began = time.monotonic()
    signals = Signals()
    try:
        return await _run(
            settings, replay_file, out_dir, speed, language, telegram_chats, signals, began
        )
    finally:
        signals.close()


async def _run(
    settings: Settings,
    replay_file: Path | None,
    out_dir: Path,
    speed: float | None,
    language: str,
    telegram_chats: Sequence[int],
    signals: Signals,
    began: float,
) -> int:
    if replay_file is None:
        scenario = scenarios.synthetic(utc_now())
    else:
        explicit = "stations" in settings.model_fields_set
        scenario = scenarios.replay(replay_file, settings, explicit)
    await asyncio.to_thread(fresh_report_dir, out_dir)
    catalog = load_catalog(scenario.catalog)
    broker = EmbeddedBroker(port=free_port())
    span = (utc_now() - scenario.start).total_seconds() + 86400
    config = demo_settings(settings, out_dir, broker, scenario.catalog, span)
    await seed(config.readings_path, scenario.history)
    clock = SimClock(scenario.start)
    components = ["collector", "forecaster", "alerts"]
    if config.telegram_token is not None:
        components.append("bot")
    wiring = wire_services(config, catalog, components, clock=clock, scheduled=False)
    services = wiring.services
    collector, forecaster, alerts = (
        services["collector"],
        services["forecaster"],
        services["alerts"],
    )
    assert isinstance(collector, Collector)
    assert isinstance(forecaster, Forecaster)
    assert isinstance(alerts, AlertComponent)
    engine = alerts.engine
    ids = [sid for sid in scenario.station_ids if sid in catalog]
    recorder = Recorder(catalog, ids)
    printer = Printer(
        engine.store, catalog, recorder, language=language, default_zone=config.timezone
    )
    print(
        f"Floodwatch demo: {scenario.title}, {scenario.readings} readings from {len(ids)} gauges "
        f"of {scenario.catalog.name}, through an embedded MQTT broker, the collector, the "
        f"forecaster and the alert engine; report in {out_dir}/",
        flush=True,
    )
    started: list[Service] = []
    player: Player | None = None
    await broker.start()
    try:
        learn_began = time.monotonic()
        for service in services.values():
            await service.start()
            started.append(service)
        await collector.wait_subscribed()
        await forecaster.wait_subscribed()
        await engine.wait_subscribed()
        await engine.store.register_channel(CHANNEL)
        await _first_of(forecaster.models_ready.wait(), signals.stop.wait())
        if scenario.history:
            print(
                f"learned the forecast models from {len(scenario.history)} readings of the "
                f"{(scenario.start - scenario.history[0].ts).days} days before "
                f"({time.monotonic() - learn_began:.1f} s): "
                + ", ".join(_model_text(forecaster, sid) for sid in ids),
                flush=True,
            )
        if "bot" in services and telegram_chats:
            await subscribe_chats(services["bot"], catalog, telegram_chats, language)
        async with gauge_publisher(broker.endpoint, "floodwatch-demo-gauges") as publisher:
            player = Player(
                scenario,
                clock,
                publisher,
                collector,
                forecaster,
                engine,
                recorder,
                printer,
                speed,
                config.forecast_relearn_after,
            )
            await player.play(signals.stop)
            await printer.drain()
            if "bot" in services:
                await wait_telegram(services["bot"], signals.stop)
        run = await _gauge_runs(config, recorder, printer, forecaster, scenario)
    finally:
        for service in reversed(started):
            await service.stop()
        await broker.stop()
    interrupted = signals.received is not None
    played = player.published if player else 0
    meta = Meta(
        scenario.title,
        scenario.catalog.name,
        language,
        scenario.step / timedelta(minutes=1),
        played,
        interrupted,
        time.monotonic() - began,
    )
    data = await asyncio.to_thread(write, out_dir, meta, run, printer.messages)
    _print_table(data, out_dir, time.monotonic() - began)
    if signals.received is not None:
        return SIGNAL_EXIT[signals.received]
    return 0


async def _first_of(*waits: Coroutine[Any, Any, object]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def _model_text(forecaster: Forecaster, station_id: str) -> str:
    model = forecaster.models.models.get(station_id)
    if model is None:
        return f"{station_id} trend"
    links = ", ".join(
        f"{link.station_id} +{link.lag_steps * model.step_s / 3600:g} h" for link in model.upstream
    )
    return f"{station_id} {model.method}" + (f" ({links})" if links else "")


async def _gauge_runs(
    config: Settings,
    recorder: Recorder,
    printer: Printer,
    forecaster: Forecaster,
    scenario: scenarios.Scenario,
) -> Run:
    store = SQLiteStore(config.readings_path)
    await store.open()
    try:
        end = scenario.end + timedelta(seconds=1)
        readings = {sid: await store.query(sid, scenario.start, end) for sid in recorder.logs}
    finally:
        await store.close()
    played = {sid: [r for r in rows if r.ts > scenario.start] for sid, rows in readings.items()}
    runs = recorder.gauge_runs(
        played, printer.events, dict(forecaster.models.models), scenario.step.total_seconds()
    )
    last = max(
        (log_.played[-1][0] for log_ in recorder.logs.values() if log_.played),
        default=scenario.start,
    )
    return as_run(
        runs,
        scenario.catalog,
        config.readings_path.parent,
        scenario.start.timestamp(),
        max(last, scenario.start).timestamp(),
    )


def _print_table(data: dict[str, Any], out_dir: Path, elapsed: float) -> None:
    from floodwatch.demo.report import markdown

    print()
    print(markdown(data))
    print(
        f"report written to {out_dir}/ (summary.json, summary.md, messages.txt, PNGs); "
        f"{elapsed:.1f} s",
        flush=True,
    )
