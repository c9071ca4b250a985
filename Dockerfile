# syntax=docker/dockerfile:1
# The horolog operator image: `docker build -t horolog .`
#
# Stage 1 builds the operator binary alone: `-p horolog --no-default-features` is the binary
# (package horolog) on the operator library (package horolog-operator) without local mode, so
# neither crates/horolog-local nor the in-memory API server (crates/horolog-memserver) is
# compiled; the kubectl plugin (crates/horolog-kubectl) and the developer tools
# (crates/horolog-dev: sandbox, load tool) are separate packages that are never built here.
# Dependencies are compiled in a layer of their own that is reused until a Cargo.toml or
# Cargo.lock changes. Stage 2 is distroless: glibc, CA certificates, no shell, no package
# manager, running as an unprivileged user.

FROM rust:1.95-bookworm AS builder
WORKDIR /build

# Dependency layer: the real manifests with stub sources. Cargo refuses a manifest whose
# targets are missing, hence a stub for every target the manifests name. Package horolog is
# the binary alone: a stub src/lib.rs there would make a second library named horolog.
COPY Cargo.toml Cargo.lock ./
COPY crates/horolog-core/Cargo.toml crates/horolog-core/
COPY crates/horolog-operator/Cargo.toml crates/horolog-operator/
COPY crates/horolog/Cargo.toml crates/horolog/
COPY crates/horolog-local/Cargo.toml crates/horolog-local/
COPY crates/horolog-kubectl/Cargo.toml crates/horolog-kubectl/
COPY crates/horolog-memserver/Cargo.toml crates/horolog-memserver/
COPY crates/horolog-dev/Cargo.toml crates/horolog-dev/
RUN set -e; \
    for crate in horolog-core horolog-operator horolog horolog-local horolog-kubectl horolog-memserver horolog-dev; do \
      mkdir -p crates/$crate/src crates/$crate/benches crates/$crate/tests; \
      echo 'fn main() {}' > crates/$crate/src/main.rs; \
    done; \
    for crate in horolog-core horolog-operator horolog-local horolog-kubectl horolog-memserver horolog-dev; do \
      touch crates/$crate/src/lib.rs; \
    done; \
    mkdir -p tests/e2e; \
    echo 'fn main() {}' > tests/e2e/main.rs; \
    for bench in horolog-core/benches/triggers horolog-core/benches/plan horolog-core/benches/exclusion \
                 horolog/benches/reconcile horolog-memserver/benches/apiserver; do \
      echo 'fn main() {}' > crates/$bench.rs; \
    done; \
    cargo build --release --locked -p horolog --no-default-features --bin horolog; \
    rm -rf crates tests

# The real sources of the three crates the operator is made of (core, library, binary); the
# other workspace members (local mode, the kubectl plugin, the in-memory API server, the
# developer tools) as stubs.
COPY crates/horolog-core ./crates/horolog-core
COPY crates/horolog-operator ./crates/horolog-operator
COPY crates/horolog ./crates/horolog
COPY crates/horolog-local/Cargo.toml crates/horolog-local/
COPY crates/horolog-kubectl/Cargo.toml crates/horolog-kubectl/
COPY crates/horolog-memserver/Cargo.toml crates/horolog-memserver/
COPY crates/horolog-dev/Cargo.toml crates/horolog-dev/
RUN set -e; \
    for crate in horolog-local horolog-kubectl horolog-memserver horolog-dev; do \
      mkdir -p crates/$crate/src crates/$crate/benches; \
      touch crates/$crate/src/lib.rs; echo 'fn main() {}' > crates/$crate/src/main.rs; \
    done; \
    echo 'fn main() {}' > crates/horolog-memserver/benches/apiserver.rs; \
    mkdir -p tests/e2e && echo 'fn main() {}' > tests/e2e/main.rs; \
    touch crates/horolog-core/src/lib.rs crates/horolog-operator/src/lib.rs crates/horolog/src/main.rs; \
    cargo build --release --locked -p horolog --no-default-features --bin horolog; \
    cp target/release/horolog /horolog

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="horolog" \
      org.opencontainers.image.description="APScheduler 4's scheduling model as a Kubernetes operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /horolog /horolog
# The distroless nonroot user, numeric so the kubelet can verify runAsNonRoot.
USER 65532:65532
# Metrics, /healthz and /readyz (--metrics-addr).
EXPOSE 8080
# The chart passes `run` and its flags; `docker run IMAGE crds` prints the CRDs.
ENTRYPOINT ["/horolog"]
CMD ["run"]
