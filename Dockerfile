# syntax=docker/dockerfile:1
# One image per tier, from one wheel:
#   docker buildx build --platform linux/arm64,linux/amd64 --target gateway -t factory-gateway .
#   docker buildx build --platform linux/arm64,linux/amd64 --target edge -t factory-edge .
# Nothing here is architecture-specific: the base image is multi-arch and pip picks the
# right binary wheels (numpy, msgspec, pydantic-core, zstandard) for the target platform.
# Dependencies come from uv.lock (exact versions and hashes), so an image runs what CI tested;
# the lock is universal, so its markers add lgpio on a Raspberry Pi (linux/arm64) only.
ARG PYTHON_VERSION=3.11

# ---- builder: the project wheel (pure Python, so built once for every platform) -------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# uv only turns the lock into one hashed requirements file per tier; pip installs them.
# Keep UV_VERSION at the version uv.lock pins for uv (tests/integration/test_packaging.py).
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
COPY pyproject.toml uv.lock README.md ./
RUN for tier in gateway edge; do \
        uv export --locked --no-emit-project --format requirements-txt \
            --extra "$tier" -o "/wheels/$tier.txt" || exit 1; \
    done
COPY factory_common/ factory_common/
COPY gateway_image/ gateway_image/
COPY edge_node/ edge_node/
COPY hardware/ hardware/
COPY line_sim/ line_sim/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---- base: what both tiers share: a non-root user and the two well-known paths ---------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# /etc/factory holds the one config file (mount it read-only); /var/lib/factory the state
# (gateway buffer or edge store: mount a volume so it survives an update).
RUN groupadd --system --gid 10001 factory \
    && useradd --system --uid 10001 --gid factory --groups dialout \
        --home-dir /var/lib/factory --shell /usr/sbin/nologin factory \
    && install -d -o factory -g factory -m 0750 /var/lib/factory \
    && install -d -m 0755 /etc/factory
WORKDIR /var/lib/factory

# ---- gateway: only the gateway extra (what a Raspberry Pi needs) ------------------------------
FROM base AS gateway
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --require-hashes -r /wheels/gateway.txt \
    && pip install --no-cache-dir --no-deps "$(ls /wheels/factory_edge-*.whl)"
# balena fleets start here: identity and config from device variables (docker-compose.yml).
COPY --chmod=0755 gateway_image/os/container-entrypoint.sh /usr/local/bin/factory-gateway-entrypoint
# Numeric, so Kubernetes runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
VOLUME ["/var/lib/factory"]
# Healthy while the gateway's event loop touches its heartbeat file (every 10 s): not "data
# moved lately", since every device may be switched off and the broker away for hours.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "gateway_image.firmware.heartbeat", "/var/lib/factory", "60"]
ENTRYPOINT ["gateway"]
CMD ["run", "/etc/factory/gateway.yaml", "--data-dir", "/var/lib/factory"]

# ---- edge: the edge node (ingest, store, API and web page) ------------------------------------
FROM base AS edge
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --require-hashes -r /wheels/edge.txt \
    && pip install --no-cache-dir --no-deps "$(ls /wheels/factory_edge-*.whl)"
# Numeric, so Kubernetes runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
VOLUME ["/var/lib/factory"]
# The config's http.host must be 0.0.0.0 inside a container.
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as r; r.urlopen('http://127.0.0.1:8080/api/health', timeout=4)"]
ENTRYPOINT ["edge-node"]
CMD ["run", "/etc/factory/edge.yaml", "--data-dir", "/var/lib/factory"]
