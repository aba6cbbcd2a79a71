# syntax=docker/dockerfile:1
# Signoff web image. Build:  docker build -t signoff .
# Run (production): set SIGNOFF_DATABASE_URL, SIGNOFF_REDIS_URL, SIGNOFF_SECRET_KEY and
# SIGNOFF_AUDIT_KEY, then `docker run -p 8080:8080 signoff` (command `serve`: gunicorn).
# Migrations: `docker run -e SIGNOFF_MIGRATION_DATABASE_URL=... signoff db upgrade`.
# Worker: the same image with `worker` (add `--beat` for a single small installation),
# and one `beat`.
# Quick look without servers: `docker run -p 8080:8080 signoff demo --host 0.0.0.0`
# (embedded PostgreSQL and Valkey; data in the /var/lib/signoff volume).

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/signoff
# Dependencies first (cached while only the source changes): exact pins from constraints.txt.
COPY pyproject.toml constraints.txt README.md LICENSE ./
COPY platform ./platform
RUN /opt/signoff/bin/pip install -c constraints.txt . \
    && /opt/signoff/bin/python -m compileall -q /opt/signoff/lib

FROM ${PYTHON_IMAGE}
ARG SIGNOFF_UID=10001
ENV PATH=/opt/signoff/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SIGNOFF_DATA_DIR=/var/lib/signoff \
    SIGNOFF_HOME=/app
RUN groupadd --system --gid ${SIGNOFF_UID} signoff \
    && useradd --system --uid ${SIGNOFF_UID} --gid signoff --home-dir /home/signoff \
       --create-home --shell /usr/sbin/nologin signoff \
    && install -d -o signoff -g signoff -m 0750 /var/lib/signoff
COPY --from=build /opt/signoff /opt/signoff
# SIGNOFF_HOME tells signoff.db.admin where alembic.ini and migrations/ are.
# The demo manifests are in tenants/ (cwd-relative).
WORKDIR /app
COPY alembic.ini ./
COPY migrations ./migrations
COPY tenants ./tenants
RUN python -m compileall -q /app/migrations
USER ${SIGNOFF_UID}:${SIGNOFF_UID}
VOLUME ["/var/lib/signoff"]
EXPOSE 8080
# slim has no curl: probe with the interpreter. /health is liveness (no database).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["signoff"]
CMD ["serve"]
