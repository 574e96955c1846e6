FROM python:3.11-slim
RUN useradd --create-home threatbot
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot bot
COPY adapters adapters
COPY retrieval retrieval
COPY prompts prompts
RUN pip install --no-cache-dir ".[openai,anthropic,ollama]"
RUN mkdir -p /var/lib/threatbot && chown threatbot /var/lib/threatbot
USER threatbot
ENV THREATBOT_DATA_DIR=/var/lib/threatbot
VOLUME ["/var/lib/threatbot"]
CMD ["threatbot", "serve"]
