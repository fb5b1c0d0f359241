"""The small HTTP server every Floodwatch service exposes: /healthz and /metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]
MetricsRenderer = Callable[[], bytes]

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def health_app(health: HealthCheck, metrics: MetricsRenderer) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        healthy, details = health()
        return web.json_response(details, status=200 if healthy else 503)

    async def prometheus(_request: web.Request) -> web.Response:
        response = web.Response(body=metrics())
        response.headers["Content-Type"] = PROMETHEUS_CONTENT_TYPE
        return response

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", prometheus)
    return app


class HttpServer:
    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._runner = web.AppRunner(app, access_log=None)
        self._host = host
        self._port = port
        self.port = port

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        # Port 0 asks the OS for a free port (tests, several collectors on one host).
        sockets = getattr(site._server, "sockets", None)
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        await self._runner.cleanup()
