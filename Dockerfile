# The NeuroAI tracker worker. Build: docker build -t neuroai-tracker .
# Run against PostgreSQL with compose.yaml (see README, "Running it unattended").

# -- build a wheel (includes the Alembic migrations and the default config) ---------------
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY tracker ./tracker
COPY migrations ./migrations
COPY config ./config
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# -- runtime -------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
# The quotes keep the shell from reading [postgres,fast-sqlite] as a glob.
RUN wheel="$(echo /wheels/*.whl)" \
 && pip install "${wheel}[postgres,fast-sqlite]" \
 && rm -rf /wheels \
 && useradd --system --user-group --uid 10001 --create-home --home-dir /home/tracker tracker \
 && mkdir -p /app/config /app/data \
 && chown tracker:tracker /app/data

# The tracker reads ./config/tracker.toml; mount your own over it (compose.yaml does).
WORKDIR /app
COPY config/tracker.toml /app/config/tracker.toml
USER tracker
# SQLite store (default URL sqlite:///data/tracker.db) and the trained model live here.
VOLUME ["/app/data"]

# The worker stops cleanly on SIGTERM (exit 0) within a few seconds; it runs as PID 1
# with its own signal handlers, so no init wrapper is needed.
STOPSIGNAL SIGTERM
CMD ["tracker", "worker"]
