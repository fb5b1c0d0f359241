"""The lock-step player: simulated time moves one step at a time, and only once the
services have dealt with the step before.

Each step: move the clock to the step's end, publish its readings as the gauges would
(QoS 1 through the broker), wait until the collector has stored them and the forecaster
and the alert engine have taken every clean one, relearn the models if a simulated
FORECAST_RELEARN_H has passed, run the forecaster's pass (its scheduled pass, in simulated
time), wait until the engine has decided the forecasts, then note the gauges' alert
states and print the new messages. So every forecast is issued from exactly the readings
known at its simulated time, as live, however fast the play runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry

from alerts.engine import AlertEngine
from collector.service import Collector
from floodwatch import topics
from floodwatch.demo.clock import SimClock
from floodwatch.demo.printer import Printer
from floodwatch.demo.recorder import Recorder
from floodwatch.demo.scenario import Scenario, Step
from floodwatch.replay import WindowedPublisher, gauge_payload
from forecasting.service import Forecaster

log = logging.getLogger(__name__)
WAIT_S = 30.0  # a service that has not caught up after this long is reported, not awaited
PROGRESS_EVERY = timedelta(hours=6)


def counter(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """A counter's value summed over the labels not given."""
    total = 0.0
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == f"{name}_total" and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                total += sample.value
    return total


async def until(condition: Callable[[], bool], what: str) -> bool:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            log.warning("demo: %s did not happen within %g s; going on", what, WAIT_S)
            return False
        await asyncio.sleep(0.002)
    return True


@dataclass
class Player:
    scenario: Scenario
    clock: SimClock
    publisher: WindowedPublisher
    collector: Collector
    forecaster: Forecaster
    engine: AlertEngine
    recorder: Recorder
    printer: Printer
    speed: float | None  # simulated seconds per second; None: as fast as it goes
    relearn_every: timedelta
    published: int = 0
    steps_done: int = 0

    async def play(self, stop: asyncio.Event) -> None:
        started = time.monotonic()
        next_relearn = self.scenario.start + self.relearn_every
        next_progress = self.scenario.start + PROGRESS_EVERY
        for step in self.scenario.steps:
            if stop.is_set():
                return
            if self.speed is not None:
                due = started + (step.at - self.scenario.start).total_seconds() / self.speed
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            await self._readings(step)
            if step.at >= next_relearn:
                await self.forecaster.relearn()
                next_relearn += self.relearn_every
            await self._forecasts(step.at)
            self._note(step)
            await self.printer.drain()
            self.steps_done += 1
            if step.at >= next_progress:
                self._progress(step.at)
                next_progress += PROGRESS_EVERY

    async def _readings(self, step: Step) -> None:
        self.clock.advance_to(step.at)
        for row in step.rows:
            await self.publisher.publish(
                topics.gauge_level(row.station_id), gauge_payload(row.ts, row.level)
            )
            self.recorder.reading(row.station_id, row.ts, row.level)
        self.published += len(step.rows)
        metrics = self.collector.metrics

        def stored() -> bool:
            accepted = metrics.total("floodwatch_readings_accepted")
            handled = accepted + metrics.total("floodwatch_readings_rejected")
            durable = metrics.total("floodwatch_readings_written") + metrics.total(
                "floodwatch_readings_spooled"
            )
            return handled >= self.published and durable >= accepted

        await until(stored, "storing the readings")
        # A reading with two QC flags counts twice here: then this waits for a little less.
        clean = metrics.total("floodwatch_readings_accepted") - metrics.total(
            "floodwatch_readings_flagged"
        )
        fc, alerts = self.forecaster.metrics.registry, self.engine.metrics.registry
        await until(
            lambda: (
                counter(fc, "floodwatch_forecast_readings_received") >= clean
                and counter(alerts, "floodwatch_alert_inputs", kind="reading") >= clean
            ),
            "the forecaster and the alert engine taking the readings",
        )
        await self.engine.idle()

    async def _forecasts(self, at: datetime) -> None:
        alerts = self.engine.metrics.registry

        def taken() -> float:
            return counter(alerts, "floodwatch_alert_inputs", kind="forecast") + counter(
                alerts, "floodwatch_alert_inputs_ignored"
            )

        before = taken()
        await self.forecaster.run_pass()
        issued = [f for f in self.forecaster.last.values() if f.issued_at == at.timestamp()]
        await until(lambda: taken() >= before + len(issued), "deciding the forecasts")
        await self.engine.idle()
        for forecast in issued:
            self.recorder.forecast(forecast)

    def _note(self, step: Step) -> None:
        last: dict[str, datetime] = {}
        for row in step.rows:
            last[row.station_id] = row.ts
        for station_id, at in last.items():
            self.recorder.state(station_id, at, self.engine.states.get(station_id))

    def _progress(self, at: datetime) -> None:
        levels = []
        for station_id, log_ in self.recorder.logs.items():
            if log_.played:
                unit = self.recorder.catalog[station_id].unit
                levels.append(f"{station_id} {log_.played[-1][1]:g} {unit}")
        print(f"\n· {at:%Y-%m-%d %H:%M} UTC  {', '.join(levels)}", flush=True)


def station_rows(steps: Iterable[Step]) -> set[str]:
    return {row.station_id for step in steps for row in step.rows}
