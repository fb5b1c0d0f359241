"""`floodwatch demo` end to end, as the README runs it: embedded broker, SQLite stores, the
real collector, forecaster and alert engine; the report it leaves is checked for real."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.harness.bot_api import BotApiServer
from tests.harness.inprocess import clean_env, run_cli
from tests.harness.shared_data import require_data_dir

CHAIN = ("silverbrook-upper", "silverbrook-mill", "silverbrook-town", "silverbrook-mouth")
DOWNSTREAM = ("silverbrook-mill", "silverbrook-town", "silverbrook-mouth")
PNG = b"\x89PNG\r\n\x1a\n"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "floodwatch.cli", *args]


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    cwd = tmp_path_factory.mktemp("demo")
    # A production shared group in the environment must not matter to the embedded broker.
    env = clean_env(FLOODWATCH_MQTT_SHARED_GROUP="collectors")
    result = run_cli("demo", "--out", "report", env=env, cwd=cwd, timeout=180)
    return cwd / "report", result


def _summary(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return data


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_demo_exits_0_and_draws_a_hydrograph_per_gauge(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, result = demo_run
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for station_id in CHAIN:
        png = (out / f"{station_id}.png").read_bytes()
        assert png.startswith(PNG), station_id
        assert len(png) > 20_000, f"{station_id}: a hydrograph, not an empty canvas"
    assert "# Floodwatch demo report" in (out / "summary.md").read_text()


@pytest.mark.parametrize("station_id", DOWNSTREAM)
def test_downstream_gauges_are_prewarned_alerted_and_cleared(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]], station_id: str
) -> None:
    out, _ = demo_run
    gauge = {g["station_id"]: g for g in _summary(out)["stations"]}[station_id]
    assert gauge["model"]["method"] == "routing", "learned from the seeded history"
    assert gauge["qc_flagged"] == 0, "a plausible flood wave is not a sensor fault"
    crossings = gauge["crossings"]
    assert [c["level"] for c in crossings][:2] == ["watch", "warning"]
    for crossing in crossings:
        assert not crossing["missed"], crossing
        assert _at(crossing["prewarned_at"]) < _at(crossing["at"])
        assert crossing["lead_h"] > 0
        assert _at(crossing["alert_at"]) >= _at(crossing["at"])
    alerts = [_at(a["at"]) for a in gauge["alerts"]]
    assert len(alerts) == len(crossings), "one alert at each crossing"
    [clear] = gauge["all_clears"]
    assert _at(clear["at"]) > max(alerts), "the all-clear comes after the last alert"
    assert _at(clear["at"]) > _at(gauge["peak_at"]), "and after the crest"
    assert any(p["lead_h"] is not None and p["lead_h"] > 0 for p in gauge["prewarnings"])


def test_the_wave_travels_downstream(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, _ = demo_run
    gauges = {g["station_id"]: g for g in _summary(out)["stations"]}
    assert tuple(gauges) == CHAIN
    peaks = [_at(gauges[s]["peak_at"]) for s in CHAIN]
    assert peaks == sorted(peaks)
    assert len(set(peaks)) == len(peaks)
    leads = [gauges[s]["crossings"][0]["lead_h"] for s in CHAIN]
    # Upstream gauges see the rain; the routing models see the wave coming downstream.
    assert min(leads[1:]) > leads[0]


def test_resident_messages_are_printed_and_kept_in_order(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, result = demo_run
    messages = (out / "messages.txt").read_text()
    for text in (
        "Flood watch expected — Silverbrook Town (river Silverbrook)",
        "Flood danger — Silverbrook Town (river Silverbrook)",
        "All clear — Silverbrook Mouth (river Silverbrook)",
        "Pre-warned ",
    ):
        assert text in messages
        assert text in result.stdout
    assert "<b>" not in result.stdout, "HTML became terminal text"
    headers = [line for line in messages.splitlines() if line.startswith("── ")]
    times = [line[3:19] for line in headers]
    assert times == sorted(times), "in the order the engine decided them"
    total = sum(g["messages"]["total"] for g in _summary(out)["stations"])
    assert len(headers) == total


def test_sigint_stops_cleanly_with_a_partial_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    process = subprocess.Popen(
        _cli("demo", "--out", str(out)),
        env=clean_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("── ") and "escalation" in line:
            process.send_signal(signal.SIGINT)
            break
    rest, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, "".join(seen) + rest + stderr
    assert "Traceback" not in stderr
    summary = _summary(out)
    assert summary["interrupted"] is True
    assert summary["totals"]["resident_messages"] >= 1
    assert (out / "messages.txt").read_text().strip()
    assert "interrupted" in (out / "summary.md").read_text()


async def test_telegram_token_sends_the_alerts_to_the_subscribed_chat(tmp_path: Path) -> None:
    async with BotApiServer() as server:
        env = clean_env(FLOODWATCH_TELEGRAM_API_URL=server.url)
        process = await asyncio.create_subprocess_exec(
            *_cli(
                "demo",
                "--out",
                str(tmp_path / "report"),
                "--telegram-token",
                server.token,
                "--telegram-chat",
                "42",
                "--lang",
                "ru",
            ),
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 240)
        assert process.returncode == 0, stdout.decode() + stderr.decode()
        sent = [s for s in server.sent if s.method == "sendMessage" and s.chat_id == 42]
    summary = _summary(tmp_path / "report")
    assert len(sent) == summary["totals"]["resident_messages"]
    texts = [s.text or "" for s in sent]
    assert any("Отбой" in text and "Сильвербрук, устье" in text for text in texts)
    assert any("<b>" in text for text in texts), "Telegram gets the HTML"
    assert "Опасный уровень воды" in stdout.decode(), "the terminal speaks --lang too"


def test_replay_of_a_real_flood(tmp_path: Path) -> None:
    data = require_data_dir() / "rhine_capRhein" / "25100100_Rhein_Mainz_15min.csv.gz"
    replay = tmp_path / "mainz.csv"
    env = clean_env()
    converted = run_cli(
        "convert",
        str(data),
        "--start",
        "2018-01-03T00:00+01:00",
        "--end",
        "2018-01-05T00:00+01:00",
        "--out",
        str(replay),
        env=env,
        cwd=tmp_path,
    )
    assert converted.returncode == 0, converted.stderr
    result = run_cli(
        "demo", "--replay", str(replay), "--out", "report", env=env, cwd=tmp_path, timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = _summary(tmp_path / "report")
    assert summary["catalog"] == "rhine.yaml", "the shipped catalog that knows the gauge"
    [mainz] = summary["stations"]
    assert mainz["station_id"] == "rhein-mainz"
    # Mainz passed mark I (475 cm) on 2018-01-04 10:30 UTC, rebased to end now.
    [crossing] = [c for c in mainz["crossings"] if c["level"] == "mark-i"]
    assert crossing["alert_at"] is not None
    assert (tmp_path / "report" / "rhein-mainz.png").read_bytes().startswith(PNG)
    assert "High water mark I" in result.stdout
