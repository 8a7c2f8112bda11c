# persona-proxy: docker build -t persona-proxy .
# docker run -p 8080:8080 -v "$PWD/config:/config:ro" -v persona-data:/data \
#   -e OPENAI_API_KEY -e PERSONA_PROXY_API_KEYS persona-proxy
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
# [postgres]: usage records in PostgreSQL for several replicas ([usage] url_env).
RUN pip install '.[postgres]' && rm -rf /src

RUN useradd --system --uid 10001 --home /nonexistent --shell /usr/sbin/nologin persona \
    && mkdir -p /data && chown persona /data
# Usage records (SQLite) go here unless [usage] names another path: mount a
# volume to keep them. The config folder (/config) may be read-only.
ENV PERSONA_PROXY_DATA_DIR=/data
VOLUME /data
USER persona
WORKDIR /config
EXPOSE 8080

# Inside a container the proxy must listen on all interfaces, so it needs
# client keys (PERSONA_PROXY_API_KEYS) or it refuses to start.
ENTRYPOINT ["persona-proxy", "serve"]
CMD ["--config", "/config/config.toml", "--host", "0.0.0.0", "--port", "8080"]
