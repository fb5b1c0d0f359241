"""The `floodwatch` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from floodwatch.errors import FloodwatchError
from floodwatch.settings import Settings, load_settings

COMPONENTS = ("collector", "forecaster", "alerts", "bot")
# `bot` needs FLOODWATCH_TELEGRAM_TOKEN, so it is part of the default only when one is set.
SERVER_COMPONENTS = ("collector", "forecaster", "alerts")
log = logging.getLogger("floodwatch")
# After a failure, how long each service may take to stop before the process exits anyway.
FAILED_STOP_WAIT_S = 15.0

if TYPE_CHECKING:
    from floodwatch.wiring import Service


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )
    if level != "DEBUG":
        # APScheduler logs every job run at INFO: two lines per forecast pass.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _aware(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{value!r} needs a UTC offset, e.g. 2018-01-01T00:00+01:00"
        )
    return parsed


def _speed(value: str) -> float | None:
    if value == "max":
        return None
    speed = float(value)
    if speed <= 0:
        raise argparse.ArgumentTypeError("speed must be positive, or 'max'")
    return speed


def _stop_event() -> asyncio.Event:
    """An event set by Ctrl-C or SIGTERM, so services finish their batch before exiting."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _run(settings: Settings, components: Sequence[str]) -> int:
    from floodwatch.catalog import load_catalog
    from floodwatch.http import HttpServer
    from floodwatch.watchdog import EXIT_FAILED, watch
    from floodwatch.wiring import wire_services

    catalog = load_catalog(settings.stations)
    stop = _stop_event()
    wiring = wire_services(settings, catalog, components)
    http = HttpServer(wiring.app, settings.http_host, settings.http_port)
    await http.start()
    log.info("health and metrics on http://%s:%d/", settings.http_host, http.port)
    started: list[Service] = []
    failure: str | None = None
    try:
        for service in wiring.services.values():
            await service.start()
            started.append(service)
        failure = await watch(wiring.services, stop)
    finally:
        for service in reversed(started):
            await _stop_service(service, failing=failure is not None)
        await http.stop()
    return 0 if failure is None else EXIT_FAILED


async def _stop_service(service: Service, *, failing: bool) -> None:
    """Stop one service; after a failure, one that cannot stop cleanly must not keep the
    process from exiting (the supervisor restarts it; the broker redelivers the rest)."""
    if not failing:
        await service.stop()
        return
    try:
        await asyncio.wait_for(service.stop(), FAILED_STOP_WAIT_S)
    except Exception as exc:  # incl. TimeoutError: the exit matters more now
        log.error("%s did not stop cleanly after the failure: %r", type(service).__name__, exc)


async def _thresholds(settings: Settings, args: argparse.Namespace) -> int:
    from alerts import thresholds_cli as cli

    by = getattr(args, "by", None) or _os_user()
    if args.command == "maintenance":
        return await cli.set_one(settings, args.station, "maintenance", args.state, by)
    action = args.thresholds_command
    if action == "show":
        return await cli.show(settings, args.station)
    if action == "set":
        return await cli.set_values(settings, args.assignments, by)
    if action == "margin":
        return await cli.set_one(settings, args.station, "clear_margin", args.value, by)
    if action == "reset":
        return await cli.reset(settings, args.station, args.keys, by)
    return await cli.audit(settings, args.station, args.limit)


def _os_user() -> str:
    from alerts.thresholds import default_author

    return default_author()


async def _forecast_models(settings: Settings, station_ids: Sequence[str]) -> int:
    from floodwatch.catalog import load_catalog
    from floodwatch.models import utc_now
    from forecasting.model_report import report
    from forecasting.model_store import ModelStore

    catalog = load_catalog(settings.stations)
    records = []
    if settings.state_path.exists():  # a look must not create the state file
        store = ModelStore(settings.state_path)
        await store.open()
        try:
            records = await store.load_all(station_ids)
        finally:
            await store.close()
    now = utc_now()
    for record in records:
        station = catalog.get(record.station_id)
        print("\n".join(report(record, station, now, settings.forecast_relearn_after)))
    missing = sorted(set(station_ids) - {record.station_id for record in records})
    for station_id in missing:
        known = "no model stored yet" if station_id in catalog else "not in the catalog"
        print(f"{station_id}: {known}")
    if not records and not station_ids:
        print(f"no models stored in {settings.state_path} yet (the forecaster learns them)")
    return 1 if missing else 0


async def _check(settings: Settings) -> int:
    from floodwatch.check import run_checks

    results = await run_checks(settings)
    for result in results:
        mark = "ok  " if result.ok else "FAIL"
        print(f"[{mark}] {result.name}: {result.detail}")
    return 0 if all(result.ok for result in results) else 1


async def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from floodwatch.replay import replay
    from floodwatch.replay_csv import read_replay, rebase_shift

    shift = rebase_shift(args.file) if args.rebase else timedelta(0)
    stats = await replay(read_replay(args.file), settings.mqtt, speed=args.speed, shift=shift)
    rate = stats.published / stats.seconds if stats.seconds else 0.0
    print(f"published {stats.published} readings in {stats.seconds:.1f} s ({rate:.0f}/s)")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from floodwatch.recordings import convert_files

    count = convert_files(args.sources, args.out, args.start, args.end, args.station_id)
    print(f"wrote {count} rows to {args.out}")
    return 0


def _backtest(settings: Settings, args: argparse.Namespace) -> int:
    from alerts.backtest import Options, backtest
    from alerts.engine import rules_from

    options = Options(
        catalog=args.stations or settings.stations,
        data=args.data,
        out=args.out,
        sets=args.set,
        margins=args.margin,
        start=args.start,
        until=args.until,
        learn_until=args.learn_until,
        issue_every_min=args.issue_every_min,
        gauges=args.gauges,
        rules=rules_from(settings),
        plots=not args.no_plots,
    )
    return backtest(options)


def _minutes(value: str) -> float:
    minutes = float(value)
    if not minutes > 0:
        raise argparse.ArgumentTypeError("must be a positive number of minutes")
    return minutes


async def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from pydantic import SecretStr

    from floodwatch.demo import run_demo

    if args.telegram_token:
        settings = settings.model_copy(update={"telegram_token": SecretStr(args.telegram_token)})
    return await run_demo(
        settings,
        replay_file=args.replay,
        out_dir=args.out,
        speed=args.speed,
        language=args.lang,
        telegram_chats=args.telegram_chat,
    )


def _threshold_commands(sub: Any) -> None:
    """Hydrologists' edits, stored with who and when; a running engine applies them."""
    by = argparse.ArgumentParser(add_help=False)
    by.add_argument("--by", default=None, help="who makes the change (default: the OS user)")
    thresholds = sub.add_parser(
        "thresholds", help="show or change a gauge's thresholds (kept with an audit trail)"
    )
    th_sub = thresholds.add_subparsers(dest="thresholds_command", required=True)
    show = th_sub.add_parser("show", help="the ladder in force: catalog values and changes")
    show.add_argument("station")
    set_ = th_sub.add_parser(
        "set", parents=[by], help="set rung values: STATION.KEY=VALUE ... (checked together)"
    )
    set_.add_argument("assignments", nargs="+", metavar="STATION.KEY=VALUE")
    margin = th_sub.add_parser("margin", parents=[by], help="set the clear margin (hysteresis)")
    margin.add_argument("station")
    margin.add_argument("value", type=float)
    reset = th_sub.add_parser(
        "reset", parents=[by], help="back to the catalog file's values (default: every change)"
    )
    reset.add_argument("station")
    reset.add_argument("keys", nargs="*", metavar="KEY", help="level keys, margin, maintenance")
    audit = th_sub.add_parser("audit", help="who changed what, when (newest first)")
    audit.add_argument("station", nargs="?", default=None)
    audit.add_argument("--limit", type=int, default=100)
    maintenance = sub.add_parser(
        "maintenance", parents=[by], help="switch a gauge's maintenance mode (no resident alerts)"
    )
    maintenance.add_argument("station")
    maintenance.add_argument("state", choices=("on", "off"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="floodwatch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run services against the configured broker and store")
    run.add_argument(
        "--components",
        nargs="+",
        choices=COMPONENTS,
        default=None,
        help="default: all (bot only with FLOODWATCH_TELEGRAM_TOKEN set); together they "
        "share one /healthz and /metrics",
    )

    sub.add_parser("check", help="validate the configuration and reach the broker and the store")

    forecast = sub.add_parser("forecast", help="inspect the forecaster")
    forecast_sub = forecast.add_subparsers(dest="forecast_command", required=True)
    models = forecast_sub.add_parser(
        "models", help="print the stored learned models (travel times, skill, period)"
    )
    models.add_argument("stations", nargs="*", metavar="STATION", help="default: every station")

    _threshold_commands(sub)

    rep = sub.add_parser("replay", help="publish a replay CSV through MQTT as gauges would")
    rep.add_argument("file", type=Path)
    rep.add_argument(
        "--speed",
        type=_speed,
        default=None,
        help="times real time, or 'max' (default) for as fast as the broker takes",
    )
    rep.add_argument(
        "--rebase",
        action="store_true",
        help="shift timestamps so the recording ends now (keeps its spacing)",
    )

    conv = sub.add_parser("convert", help="turn shared-data recordings into a replay CSV")
    conv.add_argument("sources", type=Path, nargs="+")
    conv.add_argument("--out", type=Path, required=True)
    conv.add_argument("--start", type=_aware, default=None)
    conv.add_argument("--end", type=_aware, default=None)
    conv.add_argument("--station-id", default=None, help="override the id (one source only)")

    bt = sub.add_parser("backtest", help="replay a recording through forecasts and alerts")
    bt.add_argument("--stations", type=Path, default=None, help="catalog (FLOODWATCH_STATIONS)")
    bt.add_argument("--data", type=Path, required=True, help="replay CSV (plain or .gz)")
    bt.add_argument("--out", type=Path, required=True, help="folder for the report")
    bt.add_argument("--set", action="append", default=[], metavar="STATION.LEVEL=VALUE")
    bt.add_argument("--margin", action="append", default=[], metavar="STATION=VALUE")
    bt.add_argument("--from", dest="start", type=_aware, default=None, help="evaluation start")
    bt.add_argument("--until", type=_aware, default=None, help="evaluation end")
    bt.add_argument("--learn-until", type=_aware, default=None, help="default: --from")
    bt.add_argument("--issue-every-min", type=_minutes, default=None, metavar="N")
    bt.add_argument(
        "--gauges", nargs="+", default=[], metavar="STATION", help="default: all in the data"
    )
    bt.add_argument("--no-plots", action="store_true", help="skip the PNG hydrographs")

    demo = sub.add_parser(
        "demo",
        help="everything embedded: broker, store, collector, forecaster, alerts, a flood",
    )
    demo.add_argument("--replay", type=Path, default=None, help="play this replay CSV instead")
    demo.add_argument("--out", type=Path, default=Path("demo-report"), help="report folder")
    demo.add_argument(
        "--speed",
        type=_speed,
        default=None,
        help="simulated seconds per second, or 'max' (default: as fast as it goes)",
    )
    demo.add_argument(
        "--lang", default="en", help="language of the messages (en, ru; others get English)"
    )
    demo.add_argument(
        "--telegram-token",
        default=None,
        help="also send the messages with this bot (default: FLOODWATCH_TELEGRAM_TOKEN)",
    )
    demo.add_argument(
        "--telegram-chat",
        type=int,
        action="append",
        default=[],
        metavar="ID",
        help="subscribe this chat to every demo gauge (watch and up); repeatable",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "convert":
            _setup_logging("INFO")
            return _convert(args)
        settings = load_settings()
        # Output for people: service logs only when asked for.
        quiet = (
            args.command in ("demo", "thresholds", "maintenance")
            and "log_level" not in settings.model_fields_set
        )
        _setup_logging("WARNING" if quiet else settings.log_level)
        if args.command == "run":
            components = args.components or [
                *SERVER_COMPONENTS,
                *(["bot"] if settings.telegram_token is not None else []),
            ]
            return asyncio.run(_run(settings, components))
        if args.command == "check":
            return asyncio.run(_check(settings))
        if args.command == "forecast":
            return asyncio.run(_forecast_models(settings, args.stations))
        if args.command in ("thresholds", "maintenance"):
            return asyncio.run(_thresholds(settings, args))
        if args.command == "replay":
            return asyncio.run(_replay(settings, args))
        if args.command == "backtest":
            return _backtest(settings, args)
        return asyncio.run(_demo(settings, args))
    except FloodwatchError as exc:
        print(f"floodwatch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
