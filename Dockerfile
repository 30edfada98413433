# syntax=docker/dockerfile:1
# Build stage: a virtual environment with the service and its dependencies.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
# The default image serves with OpenVINO. `--build-arg EXTRAS=tensorflow` adds TensorFlow for
# INFERENCE_ENGINE=tensorflow (a GPU host, say): about 1.5 GB more.
ARG EXTRAS=""
# Dependencies first, from the lock file, so code changes do not reinstall them.
COPY constraints.txt ./
COPY pyproject.toml README.md ./
RUN mkdir app model && touch app/__init__.py model/__init__.py \
    && /opt/venv/bin/python -m pip install --no-cache-dir -c constraints.txt ".${EXTRAS:+[$EXTRAS]}" \
    && /opt/venv/bin/python -m pip uninstall --yes denoise-service
COPY app ./app
COPY model ./model
RUN /opt/venv/bin/python -m pip install --no-cache-dir --no-deps .

# Final stage: the venv and nothing else; no compilers, no pip cache, no source tree.
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    WEB_CONCURRENCY=2 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]
# Exec form: uvicorn runs as PID 1 and receives SIGTERM itself, so it can drain requests.
# WEB_CONCURRENCY sets its worker processes: one per core (1 GiB for two in docker-compose.yml).
CMD ["uvicorn", "--factory", "app.main:create_app", "--host", "0.0.0.0", "--port", "8000", \
     "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--timeout-graceful-shutdown", "20"]
