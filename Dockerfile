# syntax=docker/dockerfile:1
# Image for Kubernetes: `bytemark-ticket-cache serve` by default; Jobs pass other arguments
# (`run refresh-stale`, `run bootstrap`, `migrate`) as the container's args.
# tests/e2e/test_image_entrypoint.py installs and runs the project exactly as below, outside a container.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# uv pinned as in the Makefile (UV_VERSION): the same installer the project's own venv uses.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 UV_NO_CACHE=1
WORKDIR /src
RUN pip install uv==0.13.8 && python -m venv --without-pip /opt/venv
# Runtime dependencies only: the project's own requirements, each pinned by the lock (a
# constraint file, so dev tools listed in the lock are not installed). Non-editable install.
# The server depends on the client package in clients/python (the generated gRPC stubs).
COPY requirements.lock pyproject.toml README.md ./
COPY clients/python ./clients/python
COPY src ./src
RUN uv pip install --python /opt/venv/bin/python --constraint requirements.lock ./clients/python .

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GRPC_LISTEN=0.0.0.0:50051 \
    METRICS_LISTEN=0.0.0.0:9090 \
    SQLITE_PATH=/tmp/ticket-cache.sqlite3 \
    LOG_FORMAT=json
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent app
COPY --from=build /opt/venv /opt/venv
WORKDIR /tmp
USER 10001:10001
# gRPC, HTTP/JSON (Connect, gRPC-Web; only when HTTP_LISTEN is set), /metrics
EXPOSE 50051 8080 9090
ENTRYPOINT ["bytemark-ticket-cache"]
CMD ["serve"]
