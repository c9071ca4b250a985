# syntax=docker/dockerfile:1
# The horolog operator image: `docker build -t horolog .`
#
# Stage 1 builds a release binary; dependencies are compiled in a layer of their own that
# is reused until Cargo.toml or Cargo.lock change. Stage 2 is distroless: glibc, CA
# certificates, no shell, no package manager, running as an unprivileged user.

FROM rust:1.95-bookworm AS builder
WORKDIR /build

# Dependency layer: the real manifests with stub sources. Cargo refuses a manifest whose
# targets are missing, hence the stub lib, main and the real benches/ (small, rarely
# changed; Cargo.toml names benches/triggers.rs).
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --bin horolog \
    && rm -rf src

# The real sources. COPY keeps the build context's mtimes, which can be older than the stub
# build above; touching the crate roots makes cargo rebuild horolog itself for sure.
COPY src ./src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin horolog \
    && cp target/release/horolog /horolog

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="horolog" \
      org.opencontainers.image.description="APScheduler 4's scheduling model as a Kubernetes operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /horolog /horolog
# The distroless nonroot user, numeric so the kubelet can verify runAsNonRoot.
USER 65532:65532
# Metrics, /healthz and /readyz (--metrics-addr).
EXPOSE 8080
ENTRYPOINT ["/horolog", "run"]
