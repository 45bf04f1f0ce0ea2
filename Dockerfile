# The sealed-sessions demo as a container image (used by docker-compose.yml).
#   docker build -t sealed-sessions-demo .
#   docker run -e SEALED_SESSIONS_KEYS=... -p 127.0.0.1:8000:8000 sealed-sessions-demo
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The library and the demo extra first, so editing the demo does not reinstall the dependencies.
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[demo]"

COPY examples ./examples

RUN useradd --system --uid 10001 --home-dir /app demo
USER demo

EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]

# 0.0.0.0 inside the container only: docker-compose.yml publishes nothing but the load balancer.
CMD ["python", "-m", "examples.demo", "--host", "0.0.0.0", "--port", "8000"]
