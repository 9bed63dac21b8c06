# refgate: gunicorn in front of the gateway; point REDIS_URL at Redis (or Redis Cluster) in
# production, or leave it unset for the embedded store in /data (one container only).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY gateway ./gateway
COPY detectors ./detectors
RUN python -m venv /venv \
 && /venv/bin/pip install --no-cache-dir --upgrade pip \
 && /venv/bin/pip install --no-cache-dir -c constraints.txt .

FROM python:3.11-slim
# Share posters are Chinese by default: they need a CJK font (this one is the smallest).
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-wqy-microhei \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin refgate \
 && mkdir -p /data && chown refgate /data && chmod 700 /data
COPY --from=build /venv /venv
# templates/ and static/ sit beside the packages, not inside them.
COPY templates /app/templates
COPY static /app/static
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1 \
    REFGATE_DATA_DIR=/data \
    REFGATE_TEMPLATE_DIR=/app/templates \
    REFGATE_STATIC_DIR=/app/static
USER refgate
WORKDIR /app
VOLUME ["/data"]
EXPOSE 8080
# The embedded store loads its AOF before the server listens: after a busy day that takes
# minutes, which must not count as failed checks (an orchestrator would restart it mid-load).
HEALTHCHECK --interval=10s --timeout=2s --start-period=300s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"
CMD ["refgate", "serve", "--host", "0.0.0.0", "--port", "8080"]
