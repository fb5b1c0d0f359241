# One image for every Floodwatch service (compose.yml runs it as collector, forecaster,
# alerts and bot) and for the CLI: `docker compose run --rm alerts thresholds show ID`.
# The base is pinned to an exact tag; bump it deliberately (and rebuild) for security fixes.
FROM python:3.11.14-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/floodwatch
ENV PATH=/opt/floodwatch/bin:$PATH
WORKDIR /src

# Exactly the versions CI tested, in a layer of their own so that a code change does not
# reinstall them.
COPY requirements.lock ./
RUN pip install -r requirements.lock

# The package itself, without dependencies (all of them came from the lock above);
# setuptools is pinned in the lock, hence no build isolation.
COPY pyproject.toml README.md ./
COPY floodwatch ./floodwatch
COPY collector ./collector
COPY forecasting ./forecasting
COPY alerts ./alerts
COPY telegram_bot ./telegram_bot
RUN pip install --no-deps --no-build-isolation . \
    && python -m compileall -q /opt/floodwatch/lib


FROM python:3.11.14-slim-bookworm

ENV PATH=/opt/floodwatch/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    FLOODWATCH_HTTP_HOST=0.0.0.0 \
    FLOODWATCH_HTTP_PORT=8080 \
    FLOODWATCH_STATE_PATH=/var/lib/floodwatch/state/state.sqlite \
    FLOODWATCH_SPOOL_PATH=/var/lib/floodwatch/spool/spool.sqlite \
    FLOODWATCH_READINGS_PATH=/var/lib/floodwatch/state/readings.sqlite \
    FLOODWATCH_BACKTEST_DIR=/var/lib/floodwatch/state/backtests

# A fixed uid so that volume ownership survives image rebuilds. The state directories are
# created here, owned by that user: Docker copies them (ownership included) into a named
# volume the first time it is mounted, so the service can write without running as root.
RUN groupadd --system --gid 10001 floodwatch \
    && useradd --system --uid 10001 --gid floodwatch --home-dir /var/lib/floodwatch \
        --no-create-home --shell /usr/sbin/nologin floodwatch \
    && mkdir -p /var/lib/floodwatch/state/backtests /var/lib/floodwatch/spool \
    && chown -R floodwatch:floodwatch /var/lib/floodwatch

COPY --from=build /opt/floodwatch /opt/floodwatch

USER floodwatch
WORKDIR /var/lib/floodwatch
EXPOSE 8080
ENTRYPOINT ["floodwatch"]
CMD ["run"]
