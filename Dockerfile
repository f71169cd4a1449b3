# One image for the three Herald binaries: api-server, processor and operator. Kubernetes picks
# the program with `command` (the operator's Deployments and CronJobs, the Helm chart).
#
#   docker build -t REGISTRY/herald:TAG .                 compiles everything in the builder stage
#   docker build --build-arg BINARIES=prebuilt -t ... .   packages ./dist/{api-server,processor,operator}
#                                                         built on the host (scripts/image does that)

# Which stage provides /out/{api-server,processor,operator}: `builder` or `prebuilt`.
ARG BINARIES=builder

# Bookworm, as the runtime base is Debian 12: the binaries need its glibc and libssl3.
FROM rust:1.95.0-bookworm AS builder
# Debian's versions are not pinned: each bookworm point release replaces them and the archive
# drops the old ones, so a pinned version would soon fail to install.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake g++ libssl-dev make perl pkg-config \
 && rm -rf /var/lib/apt/lists/*
# A bundled zlib, linked statically: the runtime base has no libz.so.
ENV LIBZ_SYS_STATIC=1
WORKDIR /src
# Dependencies first, against stub sources: this layer (librdkafka, kube, sqlx: nearly all of
# the build) stays cached until a manifest or Cargo.lock changes.
COPY Cargo.toml Cargo.lock ./
COPY runtime/Cargo.toml runtime/
COPY core/Cargo.toml core/
COPY api-server/Cargo.toml api-server/
COPY processor/Cargo.toml processor/
COPY operator/Cargo.toml operator/
COPY test-support/Cargo.toml test-support/
COPY loadgen/Cargo.toml loadgen/
COPY stream-protocols/Cargo.toml stream-protocols/
RUN for lib in runtime core operator test-support stream-protocols; do mkdir -p "$lib/src" && touch "$lib/src/lib.rs"; done \
 && for bin in api-server processor operator loadgen; do mkdir -p "$bin/src" && echo 'fn main() {}' > "$bin/src/main.rs"; done \
 && cargo build --release --locked -p api-server -p processor -p operator \
 && rm -rf runtime/src core/src api-server/src processor/src operator/src test-support/src loadgen/src \
    stream-protocols/src
COPY . .
# COPY keeps the checkout's modification times, which can be older than the stubs' build:
# touching the sources makes cargo rebuild the workspace's own crates.
RUN find runtime core api-server processor operator stream-protocols -name '*.rs' -exec touch {} + \
 && cargo build --release --locked -p api-server -p processor -p operator \
 && install -D -m 0755 -t /out target/release/api-server target/release/processor target/release/operator

FROM scratch AS prebuilt
COPY dist/ /out/

# checkov's tag check cannot see through the variable, which names one of the two stages above.
# checkov:skip=CKV_DOCKER_7: the variable FROM names a stage of this file, not an image
FROM ${BINARIES} AS binaries

# glibc, libgcc, libstdc++, libssl3, CA certificates and tzdata; no shell, no package manager.
# The nonroot variant's user is 65532, its working directory /home/nonroot.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="herald" \
      org.opencontainers.image.description="Herald: api-server, processor and operator" \
      org.opencontainers.image.source="https://github.com/herald/herald" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"
COPY --from=binaries /out/api-server /out/processor /out/operator /usr/local/bin/
# Numeric, so that Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 65532:65532
# api-server HTTP, processor metrics, operator metrics and probes.
EXPOSE 3001 9090 8080
# Kubernetes probes the HTTP endpoints (/api/health, /healthz); there is no shell or curl
# here to run a HEALTHCHECK command with.
# checkov:skip=CKV_DOCKER_2: liveness is Kubernetes' probes, the image has no shell or client to probe with
# Without a command: the api-server in embedded mode (SQLite under /home/nonroot/herald-data).
CMD ["api-server"]
