# chatver API server.  Build: docker build -t chatver .   (see docker-compose.yml)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    LITELLM_LOCAL_MODEL_COST_MAP=True

# Locked runtime dependencies first (hash-checked), so code changes reuse this layer.
COPY requirements.lock /src/requirements.lock
RUN pip install --require-hashes -r /src/requirements.lock

# Then the project itself, without touching the locked dependencies.
COPY . /src
RUN pip install --no-deps /src \
    && rm -rf /src

RUN useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/chatver chatver
USER chatver
WORKDIR /var/lib/chatver
# Standalone default (docker run); docker-compose.yml points it at PostgreSQL.
ENV CHATVER_DATABASE_URL=sqlite:////var/lib/chatver/chatver.db

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]

# `chatver serve` applies migrations, seeds the admin key from CHATVER_ADMIN_KEY, then serves.
CMD ["chatver", "serve", "--host", "0.0.0.0", "--port", "8000"]
