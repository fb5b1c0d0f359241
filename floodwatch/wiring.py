"""The services of one process, wired together: what `floodwatch run` and `floodwatch demo`
both start.

One place decides how the collector, the forecaster, the alert engine and the bot share
the catalog, the alert store and the delivery wake-ups, so the demo runs exactly what
production runs. `clock` is "now" for the forecaster and the alert engine (the demo's
compressed time); the collector and the bot always use the wall clock, because they face
gauges and Telegram, which live in real time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from floodwatch.catalog import Catalog
from floodwatch.models import utc_now
from floodwatch.settings import Settings

if TYPE_CHECKING:
    from aiohttp import web

    from floodwatch.http import HealthCheck


class Service(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def health(self) -> tuple[bool, dict[str, Any]]: ...
    def failure(self) -> str | None:
        """Why the service can no longer work without a restart (floodwatch.watchdog)."""
        ...


@dataclass(frozen=True)
class Wiring:
    """The services in start order (stop in reverse) and their shared health/metrics app."""

    services: dict[str, Service]
    app: web.Application


def combined_health(services: dict[str, Service]) -> HealthCheck:
    """One /healthz for the components of this process: healthy when all of them are.

    The collector's fields stay at the top level, where existing probes look; each other
    component reports under its own name (a forecaster running alone at the top level).
    """

    def health() -> tuple[bool, dict[str, Any]]:
        healthy, details = True, {}
        for index, (name, service) in enumerate(services.items()):
            ok, own = service.health()
            failure = service.failure()
            if failure is not None:
                ok, own = False, {**own, "status": "failing", "failure": failure}
            healthy = healthy and ok
            if index == 0:
                details.update(own)
            else:
                details[name] = own
        return healthy, details

    return health


def wire_services(
    settings: Settings,
    catalog: Catalog,
    components: Sequence[str],
    *,
    clock: Callable[[], datetime] = utc_now,
    scheduled: bool = True,
) -> Wiring:
    """Build (not start) the chosen components. `scheduled=False`: the forecaster runs no
    timed passes nor prompt runs; its caller drives it (see Forecaster)."""
    from collector.service import Collector
    from floodwatch.http import health_app
    from floodwatch.storage import open_store

    services: dict[str, Service] = {}
    renderers: list[Callable[[], bytes]] = []
    if "collector" in components:
        collector = Collector(settings, catalog, open_store(settings))
        services["collector"] = collector
        renderers.append(collector.metrics.render)
    if "forecaster" in components:
        from forecasting.service import Forecaster

        forecaster = Forecaster(
            settings, catalog, open_store(settings), clock=clock, scheduled=scheduled
        )
        services["forecaster"] = forecaster
        renderers.append(forecaster.metrics.render)
    app = health_app(combined_health(services), lambda: b"".join(r() for r in renderers))
    if "alerts" in components:
        from alerts.component import AlertComponent

        alerts = AlertComponent(settings, clock=clock)  # engine, delivery channels, HTTP API
        alerts.add_routes(app)
        services["alerts"] = alerts
        renderers.append(alerts.render)
    if "bot" in components:
        from telegram_bot.component import BotComponent

        if "alerts" in services:
            # One process: share the engine's catalog in force, its outbox store and its
            # delivery metrics, and fan out right after each commit.
            bot = BotComponent(
                settings,
                catalog_source=lambda: alerts.engine.catalog,
                file_catalog=lambda: alerts.engine.base_catalog,
                alert_store=alerts.engine.store,
                dispatch_metrics=alerts.delivery_metrics,
            )
            alerts.engine.on_committed.append(bot.wake)
        else:  # the engine runs elsewhere: the outbox is polled every second
            bot = BotComponent(
                settings, catalog_source=lambda: catalog, file_catalog=lambda: catalog
            )
        services["bot"] = bot
        renderers.append(bot.render)
    return Wiring(services, app)
