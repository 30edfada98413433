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
# The service runs on the CPU and reads SavedModels: OpenVINO's GPU and NPU plugins, the GPU's
# kernel tuning cache, its C++ headers and its other frontends (ONNX, PyTorch, Paddle, GGUF, TFLite,
# JAX) are ~80 MB that nothing loads; pip and setuptools are not needed at run time. The last line
# proves the rest still reads and runs the served model.
RUN ov=$(echo /opt/venv/lib/python3*/site-packages/openvino) \
    && rm -r "$ov/include" "$ov/libs/cache.json" "$ov"/libs/libopenvino_intel_[gn]pu_plugin.so \
        "$ov"/libs/libopenvino_onnx_frontend.so.* "$ov"/libs/libopenvino_pytorch_frontend.so.* \
        "$ov"/libs/libopenvino_paddle_frontend.so.* "$ov"/libs/libopenvino_gguf_frontend.so.* \
        "$ov"/libs/libopenvino_tensorflow_lite_frontend.so.* "$ov"/libs/libopenvino_jax_frontend.so.* \
    && /opt/venv/bin/python -m pip uninstall --yes pip setuptools \
    && /opt/venv/bin/python -c "from app.inference import load_model; from app.settings import DEFAULT_MODEL_DIR; load_model(DEFAULT_MODEL_DIR)"

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
# WEB_CONCURRENCY sets its worker processes: one per core (1536 MiB for two in docker-compose.yml).
CMD ["uvicorn", "--factory", "app.main:create_app", "--host", "0.0.0.0", "--port", "8000", \
     "--loop", "uvloop", "--http", "app.protocol:HttpProtocol", "--no-access-log", "--timeout-graceful-shutdown", "20"]
