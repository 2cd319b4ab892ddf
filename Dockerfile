# Takt app image: `takt serve` by default; the compose file runs `takt migrate` with it too.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# pg_dump / pg_restore / psql for `takt backup` and `takt restore` (PostgreSQL 15 clients).
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, from pyproject.toml alone: a change to the code reuses this layer.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

COPY README.md* ./
COPY app ./app
RUN pip install --no-deps .

COPY alembic.ini ./
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static

# Run from the source tree, so templates/, static/ and migrations/ are found
# beside the code whichever way the app looks them up.
ENV PYTHONPATH=/app \
    TAKT_VAR_DIR=/app/var

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin takt \
    && mkdir -p /app/var /run/takt-keys \
    && chown takt:takt /app/var /run/takt-keys
USER takt

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
CMD ["takt", "serve", "--host", "0.0.0.0", "--port", "8000"]
