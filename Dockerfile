# Orchestrator container image.
#
#   docker build -t orchestrator .
#   docker run -p 8080:8080 -v orchestrator-data:/data orchestrator            # standalone
#   docker run ... orchestrator api | worker | migrate                         # scaled roles
#
# The dependencies are built in a layer of their own from the manifests alone, so a change
# to the project's own code rebuilds only the project's crates.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- planner: the dependency graph (manifests, lock file, stand-in crate roots) ---------
# Only the manifests, Cargo.lock and stand-ins for the crates' target roots are kept, so the
# dependency layer below survives any change to the project's own modules.
FROM ${RUST_IMAGE} AS planner
WORKDIR /src
COPY . .
RUN set -eu; \
    mkdir /skeleton; \
    keep() { mkdir -p "/skeleton/$(dirname "$1")"; cp "$1" "/skeleton/$1"; }; \
    stub() { if [ -f "$1" ]; then mkdir -p "/skeleton/$(dirname "$1")"; echo 'fn main() {}' > "/skeleton/$1"; fi; }; \
    for f in ./Cargo.lock ./rust-toolchain ./rust-toolchain.toml ./.cargo/config.toml ./.cargo/config; do \
        if [ -f "$f" ]; then keep "$f"; fi; \
    done; \
    for manifest in $(find . -name Cargo.toml -not -path './target/*'); do \
        keep "$manifest"; \
        d="$(dirname "$manifest")"; \
        for f in "$d"/build.rs "$d"/src/lib.rs "$d"/src/main.rs "$d"/src/bin/*.rs "$d"/src/bin/*/main.rs \
                 "$d"/examples/*.rs "$d"/examples/*/main.rs "$d"/tests/*.rs "$d"/tests/*/main.rs \
                 "$d"/benches/*.rs "$d"/benches/*/main.rs; do \
            stub "$f"; \
        done; \
        for p in $(sed -n 's/^[[:space:]]*path[[:space:]]*=[[:space:]]*"\([^"]*\.rs\)".*/\1/p' "$manifest"); do \
            stub "$d/$p"; \
        done; \
    done; \
    find /skeleton -type f | sort

# ---- builder ----------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# Dependencies only: this layer is reused until a manifest or Cargo.lock changes.
COPY --from=planner /skeleton/ ./
RUN cargo build --release --locked -p orchestrator
# The real sources. Touch them so that cargo never takes the stand-ins' build for current.
COPY . .
RUN find . -type f -name '*.rs' -not -path './target/*' -exec touch {} + \
    && cargo build --release --locked -p orchestrator \
    && install -m 0755 target/release/orchestrator /usr/local/bin/orchestrator

# ---- runtime ----------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 orchestrator \
    && useradd --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin orchestrator \
    && mkdir -p /data \
    && chown orchestrator:orchestrator /data
COPY --from=builder /usr/local/bin/orchestrator /usr/local/bin/orchestrator

USER orchestrator:orchestrator
WORKDIR /data
VOLUME ["/data"]
ENV ORCH_LISTEN=0.0.0.0:8080 \
    ORCH_DATA_DIR=/data
# 8080: the API (or a worker's probes); 9090: /metrics when ORCH_METRICS_LISTEN=0.0.0.0:9090.
EXPOSE 8080 9090
# Probes the port of ORCH_LISTEN, so a worker listening on another port is checked too.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${ORCH_LISTEN##*:}/health" >/dev/null || exit 1
ENTRYPOINT ["orchestrator"]
