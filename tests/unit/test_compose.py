"""The compose stack without a Docker engine: compose.yml, deploy/compose.scale.yml, the
example env file and the Dockerfile must agree with the CLI, the settings and each other.

Compose's `${VAR:-default}` interpolation is done here as Compose does it, from the example
env file, so the settings the services would really get are loaded and checked."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from floodwatch.catalog import load_catalog
from floodwatch.cli import COMPONENTS, build_parser
from floodwatch.settings import ENV_PREFIX, Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose.yml"
SCALE = REPO / "deploy" / "compose.scale.yml"
ENV_EXAMPLE = REPO / "deploy" / "floodwatch.env.example"  # → floodwatch.env, the services'
STACK_EXAMPLE = REPO / "deploy" / "stack.env.example"  # → .env, compose.yml's ${...}
DOCKERFILE = REPO / "Dockerfile"
FLOODWATCH_SERVICES = {"collector", "forecaster", "alerts", "bot"}
EXPECTED_SERVICES = {"mosquitto", "influxdb", "grafana", *FLOODWATCH_SERVICES}
# Host paths that are made on the operator's machine, not committed.
NOT_COMMITTED = {".env", "floodwatch.env"}
EXACT_VERSION = re.compile(r"^[a-z0-9./-]+:\d+\.\d+\.\d+$")
VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} is not a mapping"
    return data


def services(path: Path) -> dict[str, dict[str, Any]]:
    found = load(path)["services"]
    assert isinstance(found, dict)
    return found


def all_services() -> dict[str, dict[str, Any]]:
    """compose.yml's services and the scale file's extra collectors, as Compose merges them."""
    merged = services(COMPOSE)
    extra = services(SCALE)
    assert not set(merged) & set(extra), "the scale file only adds services"
    return {**merged, **extra}


def floodwatch_services() -> dict[str, dict[str, Any]]:
    """The services built from this repository's Dockerfile."""
    return {name: spec for name, spec in all_services().items() if "build" in spec}


def env_file(path: Path) -> dict[str, str]:
    """KEY=value lines as Compose reads an env file (the example uses no quoting)."""
    values = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}:{number}: {raw!r}"
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"{path}:{number}: {raw!r}"
        assert " #" not in value, f"{path}:{number}: keep comments on lines of their own"
        assert key not in values, f"{path}:{number}: {key} twice"
        values[key] = value
    return values


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution: $$, ${X}, ${X:-default}, ${X-default}, ${X:?err}."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group(1), match.group(2), match.group(3)
        value = env.get(name)
        if op in (":?", "?") and (value is None or (op == ":?" and value == "")):
            raise AssertionError(f"${{{name}}} is required ({arg}) but the example lacks it")
        if op == ":-" and not value:
            return arg
        if op == "-" and value is None:
            return arg
        return value or ""

    return VARIABLE.sub(substitute, text)


def resolved(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate(value, env)
    if isinstance(value, list):
        return [resolved(item, env) for item in value]
    if isinstance(value, dict):
        return {key: resolved(item, env) for key, item in value.items()}
    return value


def environment(spec: Mapping[str, Any]) -> dict[str, str]:
    env = spec.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping, so the tests can read it"
    return {key: str(value) for key, value in env.items()}


def bind_mounts(spec: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(source, target) of each short-syntax volume entry; a ${X:-default} source is
    taken at its default, the committed one."""
    for entry in spec.get("volumes", []):
        assert isinstance(entry, str), "volumes in short syntax"
        source, target = interpolate(entry, {}).split(":")[:2]
        yield source, target


def is_named_volume(source: str) -> bool:
    return not source.startswith((".", "/", "$"))


def parse_command(command: list[str]) -> argparse.Namespace:
    """build_parser().parse_args, with argparse's exit turned into a test failure."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            return build_parser().parse_args(command)
    except SystemExit:
        pytest.fail(f"`floodwatch {' '.join(command)}` does not parse: {stderr.getvalue()}")


def settings_from(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings from exactly these variables: no FLOODWATCH_* of this process, no .env."""
    for key in [key for key in os.environ if key.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings(_env_file=None)


def setting_names() -> set[str]:
    return {ENV_PREFIX + name.upper() for name in Settings.model_fields}


# ----- files and images ----------------------------------------------------------------


def test_compose_file_has_the_stack_and_the_scale_file_only_collectors() -> None:
    assert set(services(COMPOSE)) == EXPECTED_SERVICES
    extra = services(SCALE)
    assert extra
    assert all(re.fullmatch(r"collector-\d+", name) for name in extra)


@pytest.mark.parametrize("path", [COMPOSE, SCALE], ids=lambda p: p.name)
def test_every_image_is_pinned_to_an_exact_version(path: Path) -> None:
    for name, spec in services(path).items():
        image = spec.get("image", "")
        if "build" in spec:
            assert image == "floodwatch:local", f"{name}: the locally built image"
            continue
        assert EXACT_VERSION.match(image), f"{name}: {image!r} is not pinned to X.Y.Z"


def test_the_versions_the_project_depends_on() -> None:
    stack = services(COMPOSE)
    # 1.x: the v1 API CI exercises; the dashboards are checked against this Grafana.
    assert stack["influxdb"]["image"] == "influxdb:1.11.8"
    assert stack["grafana"]["image"] == "grafana/grafana-oss:11.6.0"
    assert stack["mosquitto"]["image"].startswith("eclipse-mosquitto:2.0.")


def test_dockerfile_pins_its_base_installs_the_lock_and_runs_unprivileged() -> None:
    text = DOCKERFILE.read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert bases
    assert all(re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base) for base in bases), bases
    assert "pip install -r requirements.lock" in text
    assert "pip install --no-deps" in text
    assert 'ENTRYPOINT ["floodwatch"]' in text
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users
    assert users[-1] not in ("root", "0")


def test_secrets_stay_out_of_git_and_out_of_the_image() -> None:
    ignored = REPO.joinpath(".gitignore").read_text().splitlines()
    assert "/.env" in ignored
    assert "/floodwatch.env" in ignored
    assert "/deploy/mosquitto/gauges.txt" in ignored
    docker_ignore = [
        line.strip()
        for line in REPO.joinpath(".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # Everything is excluded, then only the build inputs are let back in.
    assert docker_ignore[0] == "*"
    let_in = {line[1:].rstrip("/") for line in docker_ignore if line.startswith("!")}
    assert let_in == {
        "requirements.lock",
        "pyproject.toml",
        "README.md",
        "floodwatch",
        "collector",
        "forecasting",
        "alerts",
        "telegram_bot",
    }


# ----- the Floodwatch services ---------------------------------------------------------


def test_every_floodwatch_service_runs_existing_components() -> None:
    ran: list[str] = []
    for name, spec in floodwatch_services().items():
        args = parse_command(spec["command"])
        assert args.command == "run", name
        assert args.components, f"{name}: name its components (the default depends on a token)"
        assert set(args.components) <= set(COMPONENTS)
        ran += args.components
    assert set(ran) == set(COMPONENTS)
    assert ran.count("forecaster") == ran.count("alerts") == ran.count("bot") == 1


def test_a_command_that_does_not_parse_fails_the_test() -> None:
    with pytest.raises(pytest.fail.Exception, match="does not parse"):
        parse_command(["run", "--components", "collecter"])


def test_every_floodwatch_variable_is_a_real_setting() -> None:
    known = setting_names()
    used: dict[str, set[str]] = {}
    for name, spec in floodwatch_services().items():
        for key in environment(spec):
            used.setdefault(key, set()).add(f"compose service {name}")
    for key in env_file(ENV_EXAMPLE):
        used.setdefault(key, set()).add(ENV_EXAMPLE.name)
    # Commented-out lines document settings too: they must name real ones.
    for key in re.findall(r"^# (FLOODWATCH_[A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.MULTILINE):
        used.setdefault(key, set()).add(f"{ENV_EXAMPLE.name} (commented)")
    for key in re.findall(r"\b(FLOODWATCH_[A-Z0-9_]+)=", DOCKERFILE.read_text()):
        used.setdefault(key, set()).add("Dockerfile")
    unknown = {key: sorted(where) for key, where in used.items() if key.startswith(ENV_PREFIX)}
    unknown = {key: where for key, where in unknown.items() if key not in known}
    assert not unknown, f"not settings of floodwatch.settings.Settings: {unknown}"


def test_the_example_env_file_names_every_setting() -> None:
    text = ENV_EXAMPLE.read_text()
    missing = sorted(name for name in setting_names() if not re.search(rf"\b{name}\b", text))
    assert not missing, f"{ENV_EXAMPLE.name} does not mention {missing}"


@pytest.mark.parametrize("name", sorted(FLOODWATCH_SERVICES | {"collector-2", "collector-3"}))
def test_each_service_gets_valid_settings_from_the_example(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = env_file(ENV_EXAMPLE)
    stack = env_file(STACK_EXAMPLE)
    spec = all_services()[name]
    assert spec["env_file"] == "floodwatch.env"
    # What the container sees: its env file, overridden by the service's environment
    # (whose ${...} Compose fills from .env).
    env = {**example, **resolved(environment(spec), stack)}
    settings = settings_from(env, monkeypatch)
    assert settings.mqtt.host == "mosquitto"
    # the services' own listener, where no gauge account exists (mosquitto.conf)
    assert settings.mqtt.port == 1884
    assert settings.mqtt.username == "floodwatch"
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() == stack["MQTT_FLOODWATCH_PASSWORD"]
    assert settings.influx_url == "http://influxdb:8086"
    assert settings.influx_username == stack["INFLUX_WRITER_USER"]
    assert settings.influx_database == stack["INFLUX_DATABASE"]
    assert settings.http_host == "0.0.0.0"
    assert settings.stations == Path("/etc/floodwatch/stations") / stack["STATIONS_FILE"]


def test_the_floodwatch_services_never_see_the_stacks_other_secrets() -> None:
    """Least privilege: the services' env file holds only FLOODWATCH_* settings, and their
    environment names only the accounts they log in with."""
    assert all(key.startswith(ENV_PREFIX) for key in env_file(ENV_EXAMPLE))
    assert not any(key.startswith(ENV_PREFIX) for key in env_file(STACK_EXAMPLE))
    others = {"INFLUX_ADMIN_PASSWORD", "INFLUX_READER_PASSWORD", "MQTT_VIEWER_PASSWORD"}
    others |= {"GRAFANA_ADMIN_PASSWORD", "DISPATCH_TELEGRAM_BOT_TOKEN"}
    for name, spec in floodwatch_services().items():
        seen = " ".join(f"{key}={value}" for key, value in environment(spec).items())
        assert not any(secret in seen for secret in others), name


def test_every_variable_compose_needs_is_in_the_example() -> None:
    example = env_file(STACK_EXAMPLE)
    for path in (COMPOSE, SCALE):
        text = "\n".join(
            line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")
        )
        # Raises, naming the variable, if a required one is missing.
        interpolate(text, example)
        names = {match.group(1) for match in VARIABLE.finditer(text) if match.group(1)}
        assert names <= set(example), f"{path.name}: not in the example: {names - set(example)}"


def test_health_checks_ask_each_service_on_its_own_port() -> None:
    for name, spec in floodwatch_services().items():
        port = environment(spec)["FLOODWATCH_HTTP_PORT"]
        check = " ".join(spec["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/healthz" in check, name
        assert environment(spec)["FLOODWATCH_HTTP_HOST"] == "0.0.0.0", name
        for mapping in spec.get("ports", []):
            assert mapping.rsplit(":", 1)[1] == port, f"{name} publishes {mapping}"
        assert spec["restart"] == "unless-stopped"
    assert services(COMPOSE)["alerts"].get("ports"), "the alert API and CAP feed are published"


def test_health_check_command_runs_in_python() -> None:
    """The image has no curl: the check is Python, and it must at least compile."""
    for spec in floodwatch_services().values():
        test = spec["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"]
        compile(test[3], "<healthcheck>", "exec")


# ----- volumes, state and identity -------------------------------------------------------


@pytest.mark.parametrize("path", [COMPOSE, SCALE], ids=lambda p: p.name)
def test_named_volumes_are_declared_and_used(path: Path) -> None:
    data = load(path)
    declared = set(data.get("volumes") or {})
    used = {
        source
        for spec in data["services"].values()
        for source, _target in bind_mounts(spec)
        if is_named_volume(source)
    }
    assert used == declared


def test_mounted_host_paths_exist_in_the_repository() -> None:
    for name, spec in all_services().items():
        for source, _target in bind_mounts(spec):
            if is_named_volume(source):
                continue
            path = REPO / source
            assert path.exists(), f"{name} mounts {source}, which does not exist"
        if "build" in spec:
            assert spec["env_file"] in NOT_COMMITTED


def test_state_volumes_follow_the_settings_and_are_made_writable_by_the_image() -> None:
    made = " ".join(re.findall(r"mkdir -p ([^&]+)", DOCKERFILE.read_text())).split()
    for name, spec in floodwatch_services().items():
        env = environment(spec)
        targets = {target: source for source, target in bind_mounts(spec)}
        wanted = {"collector": ["FLOODWATCH_SPOOL_PATH"]}.get(
            name.split("-")[0], ["FLOODWATCH_STATE_PATH"]
        )
        for variable in wanted:
            folder = str(Path(env[variable]).parent)
            assert folder in targets, f"{name}: {variable} is not on a volume"
            assert is_named_volume(targets[folder])
            # A fresh named volume takes the image's folder, owner included.
            assert any(Path(made_dir).is_relative_to(folder) for made_dir in made), (
                f"the Dockerfile does not create {folder}"
            )


def test_one_state_file_shared_by_the_forecaster_alerts_and_bot() -> None:
    stack = services(COMPOSE)
    sharing = {"forecaster", "alerts", "bot"}
    paths = {environment(stack[name])["FLOODWATCH_STATE_PATH"] for name in sharing}
    assert len(paths) == 1
    folder = str(Path(paths.pop()).parent)
    volumes = {dict((t, s) for s, t in bind_mounts(stack[name]))[folder] for name in sharing}
    assert len(volumes) == 1


def test_collectors_share_a_group_but_never_an_id_or_a_spool() -> None:
    collectors = {
        name: spec for name, spec in all_services().items() if name.startswith("collector")
    }
    assert len(collectors) >= 3
    groups = {environment(spec)["FLOODWATCH_MQTT_SHARED_GROUP"] for spec in collectors.values()}
    assert len(groups) == 1
    ids = [environment(spec)["FLOODWATCH_MQTT_CLIENT_ID"] for spec in collectors.values()]
    assert len(set(ids)) == len(ids)
    spools = [
        dict((t, s) for s, t in bind_mounts(spec))["/var/lib/floodwatch/spool"]
        for spec in collectors.values()
    ]
    assert len(set(spools)) == len(spools)


@pytest.mark.parametrize("name", sorted(services(SCALE)))
def test_extra_collectors_are_the_collector_with_another_identity(name: str) -> None:
    base = services(COMPOSE)["collector"]
    extra = services(SCALE)[name]
    number = name.rsplit("-", 1)[1]

    def identity_free(spec: dict[str, Any], client_id: str, spool: str) -> dict[str, Any]:
        env = environment(spec)
        assert env.pop("FLOODWATCH_MQTT_CLIENT_ID") == client_id
        volumes = [entry.replace(spool, "SPOOL", 1) for entry in spec["volumes"]]
        return {**spec, "environment": env, "volumes": volumes}

    assert identity_free(
        extra, f"floodwatch-collector-{number}", f"collector-{number}-spool"
    ) == identity_free(base, "floodwatch-collector-1", "collector-spool")


# ----- broker, database, catalog ---------------------------------------------------------


def test_broker_runs_the_shipped_files_through_its_entry_point() -> None:
    mosquitto = services(COMPOSE)["mosquitto"]
    mounts = dict((target, source) for source, target in bind_mounts(mosquitto))
    assert mounts["/etc/floodwatch/mosquitto"] == "./deploy/mosquitto"
    assert mounts["/mosquitto/data"] == "mosquitto-data"  # persistence_location
    assert (
        "persistence_location /mosquitto/data/"
        in (REPO / "deploy/mosquitto/mosquitto.conf").read_text()
    )
    shell, script = mosquitto["entrypoint"]
    assert shell == "/bin/sh"  # busybox in the alpine-based image
    assert script.startswith("/etc/floodwatch/mosquitto/")
    local = REPO / "deploy/mosquitto" / Path(script).name
    assert local.exists()
    assert "mkpasswd.sh" in local.read_text()
    assert "mosquitto.conf" in local.read_text()
    assert set(environment(mosquitto)) == {"MQTT_FLOODWATCH_PASSWORD", "MQTT_VIEWER_PASSWORD"}


def test_only_the_gauges_listener_is_published() -> None:
    """The services' listener (1884) stays inside the stack's network; its health check
    logs in there, as the services do."""
    mosquitto = services(COMPOSE)["mosquitto"]
    assert [str(port).rsplit(":", 1)[-1] for port in mosquitto["ports"]] == ["1883"]
    conf = (REPO / "deploy/mosquitto/mosquitto.conf").read_text().splitlines()
    listeners = [line.split()[1] for line in conf if line.startswith("listener ")]
    assert listeners == ["1883", "1884"]
    assert "-p 1884 -u floodwatch" in " ".join(mosquitto["healthcheck"]["test"])


@pytest.mark.parametrize("script", ["entrypoint.sh", "mkpasswd.sh"])
def test_broker_scripts_are_valid_posix_shell(script: str) -> None:
    result = subprocess.run(
        ["sh", "-n", str(REPO / "deploy/mosquitto" / script)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_influxdb_accounts_match_what_floodwatch_and_grafana_log_in_with() -> None:
    stack = services(COMPOSE)
    example = env_file(STACK_EXAMPLE)
    influx = resolved(environment(stack["influxdb"]), example)
    grafana = resolved(environment(stack["grafana"]), example)
    service = resolved(environment(stack["collector"]), example)
    assert influx["INFLUXDB_HTTP_AUTH_ENABLED"] == "true"
    # INFLUXDB_USER gets ALL on the database (Floodwatch reads what it wrote);
    # INFLUXDB_READ_USER only READ (Grafana).
    assert service["FLOODWATCH_INFLUX_USERNAME"] == influx["INFLUXDB_USER"]
    assert service["FLOODWATCH_INFLUX_PASSWORD"] == influx["INFLUXDB_USER_PASSWORD"]
    assert service["FLOODWATCH_INFLUX_DATABASE"] == influx["INFLUXDB_DB"]
    assert grafana["INFLUX_READER_USER"] == influx["INFLUXDB_READ_USER"]
    assert grafana["INFLUX_READER_PASSWORD"] == influx["INFLUXDB_READ_USER_PASSWORD"]
    assert grafana["INFLUX_DATABASE"] == influx["INFLUXDB_DB"]
    assert grafana["INFLUX_URL"] == service["FLOODWATCH_INFLUX_URL"]


def test_grafana_is_provisioned_and_read_only_for_visitors() -> None:
    grafana = services(COMPOSE)["grafana"]
    env = environment(grafana)
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert {
        "INFLUX_URL",
        "INFLUX_DATABASE",
        "INFLUX_READER_USER",
        "INFLUX_READER_PASSWORD",
        "DISPATCH_TELEGRAM_BOT_TOKEN",
        "DISPATCH_TELEGRAM_CHAT_ID",
    } <= set(env)
    mounts = dict((target, source) for source, target in bind_mounts(grafana))
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"
    assert mounts["/var/lib/grafana/dashboards"] == "./grafana/dashboards"
    assert all(entry.endswith(":ro") for entry in grafana["volumes"] if entry.startswith("./"))


def test_the_shipped_catalog_loads_and_holds_the_example_gauges() -> None:
    catalog = load_catalog(REPO / "deploy/stations/stations.yaml")
    example = (REPO / "deploy/mosquitto/gauges.example.txt").read_text().splitlines()
    ids = [line.split(":", 1)[0] for line in example if line and not line.startswith("#")]
    assert ids
    assert all(station_id in catalog for station_id in ids), ids


def test_depends_on_names_services_of_the_stack_with_conditions() -> None:
    stack = all_services()
    for name, spec in stack.items():
        for dependency, condition in (spec.get("depends_on") or {}).items():
            assert dependency in stack, f"{name} depends on unknown {dependency}"
            assert condition["condition"] in ("service_healthy", "service_started")
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in stack[dependency], f"{dependency} has no health check"
