"""An in-process MQTT 3.1.1 broker (amqtt) for the embedded default and the demo.

Good enough for one machine with no servers; it keeps no offline messages for persistent
sessions and ignores $share, so production and the durability tests use Mosquitto.
"""

from __future__ import annotations

import logging
from typing import Any

from amqtt.broker import Broker

from floodwatch.settings import MqttEndpoint


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        config: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        self._config = config
        self._broker: Broker | None = None

    @property
    def endpoint(self) -> MqttEndpoint:
        return MqttEndpoint(self.host, self.port, tls=False, username=None, password=None)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        # amqtt logs every connection at INFO; the demo's output is for people.
        for noisy in ("amqtt", "transitions"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self._broker = Broker(self._config)
        await self._broker.start()

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
