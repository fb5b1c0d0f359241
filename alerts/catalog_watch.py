"""Notice when the catalog file or the overrides change, and load them without stopping.

Polling the file's mtime and size (every FLOODWATCH_CATALOG_POLL_S) works on every
filesystem, bind mounts and config maps included, where inotify does not. A file that
fails validation is refused once, with the reason, and the last good catalog stays in
force until the file changes again.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from alerts.metrics import AlertMetrics
from alerts.store import AlertStore
from alerts.thresholds import effective_catalog
from floodwatch.catalog import Catalog, load_catalog
from floodwatch.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FileStamp:
    mtime_ns: int
    size: int
    inode: int  # editors and config maps replace the file rather than rewrite it


def stamp(path: Path) -> FileStamp | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return FileStamp(info.st_mtime_ns, info.st_size, info.st_ino)


@dataclass(frozen=True, slots=True)
class Reload:
    """The outcome of a check: a new catalog, or the reason the file was refused."""

    catalog: Catalog | None = None
    error: str | None = None


class CatalogWatch:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: FileStamp | None = None
        self.error: str | None = None  # why the file on disk is refused, while it is

    def load(self) -> Catalog:
        """The first load, at start-up: an invalid catalog stops the service."""
        self._seen = stamp(self.path)
        return load_catalog(self.path)

    async def check(self) -> Reload | None:
        """None while the file is unchanged; else the new catalog or why it was refused."""
        current = stamp(self.path)
        if current == self._seen:
            return None
        self._seen = current
        try:
            catalog = await asyncio.to_thread(load_catalog, self.path)
        except ConfigError as exc:
            self.error = str(exc)
            log.error("catalog change refused, the last good catalog stays in force: %s", exc)
            return Reload(error=self.error)
        self.error = None
        log.info("catalog %s reloaded: %d stations", self.path, len(catalog))
        return Reload(catalog=catalog)


class CatalogInForce:
    """The catalog the engine decides with: the file (reloaded when it changes) with the
    hydrologists' overrides from the state store applied on top."""

    def __init__(self, path: Path, store: AlertStore, metrics: AlertMetrics) -> None:
        self.watch = CatalogWatch(path)
        self.store = store
        self.metrics = metrics
        self.base = self.watch.load()  # the file as it is; invalid stops start-up
        self.catalog = self.base
        self.problems: list[str] = []  # overrides that no longer fit the file
        self._version = -1

    async def update(self, *, force: bool = False) -> Catalog | None:
        """Reload what changed (the file, or the overrides in any process); the catalog
        that was in force before, or None if nothing changed."""
        reload = await self.watch.check()
        if reload is not None:
            self.metrics.catalog_reloads.labels("refused" if reload.error else "applied").inc()
            if reload.catalog is not None:
                self.base = reload.catalog
        file_changed = reload is not None and reload.catalog is not None
        if not (force or file_changed) and await self.store.changes_version() == self._version:
            return None
        overrides, self._version = await self.store.snapshot()
        catalog, problems = effective_catalog(self.base, overrides)
        if problems != self.problems:
            for problem in problems:
                log.error("threshold override refused: %s", problem)
            self.metrics.override_problems.inc(len(problems))
        self.problems = problems
        previous, self.catalog = self.catalog, catalog
        return previous
