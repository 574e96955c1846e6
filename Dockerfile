# threatbot's image: `docker compose up -d` (see docker-compose.yml) or `docker build -t threatbot .`.
FROM python:3.11-slim

# The runtime user first, so every folder it writes to can be created as its own.
RUN useradd --create-home --uid 10001 threatbot

WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1

# Dependencies from the lock (every package pinned with its SHA-256s, all LLM extras included), in a layer
# of their own: a change to the source rebuilds only the layers below.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

# threatbot itself, without dependencies (the lock has them all).
COPY pyproject.toml README.md LICENSE ./
COPY bot bot
COPY adapters adapters
COPY retrieval retrieval
COPY prompts prompts
RUN pip install --no-deps . && threatbot --version

# Data folder and the embedding model's cache, owned by the runtime user. Docker copies an image folder's
# owner into a new named volume mounted over it, so the first-run model download (about 90 MB, once) can
# write there. Air-gapped: mount a folder holding the ONNX export and set THREATBOT_EMBEDDING_MODEL_DIR.
RUN mkdir -p /var/lib/threatbot /home/threatbot/.cache/chroma \
    && chown -R threatbot:threatbot /var/lib/threatbot /home/threatbot/.cache
USER threatbot
ENV THREATBOT_DATA_DIR=/var/lib/threatbot \
    THREATBOT_METRICS_HOST=0.0.0.0 \
    THREATBOT_METRICS_PORT=9464
VOLUME ["/var/lib/threatbot"]
# /healthz and /metrics (Prometheus).
EXPOSE 9464

# Healthy = `threatbot doctor` finds no fault (platform tokens are not re-asked every minute: --offline).
HEALTHCHECK --interval=60s --timeout=30s --start-period=120s --retries=3 CMD ["threatbot", "doctor", "--offline"]
# serve drains for up to 20 s on SIGTERM; give `docker stop -t 30` (compose: stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["threatbot", "serve"]
