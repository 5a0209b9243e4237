# The `switchboard` binary in a small image. Every role is the same binary:
#   docker run … switchboard            # `serve`: every role in one process
#   docker run … switchboard gateway    # or relay, project, worker, callproc, migrate
# Settings are environment variables (README.md "Configuration").
# docs/DEPLOYMENT.md says which roles to run where.
#
# Build:  docker build -t switchboard .

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS build
WORKDIR /build

# 1. Dependencies only, cached until a manifest or Cargo.lock changes: the
#    workspace's manifests (members `.`, `events/`, `projections/`) with stub
#    sources. Cargo reads every target the manifests declare, so the bench
#    (`benches/switchboard.rs`, inferred) and the test (`tests/it/main.rs`)
#    get stubs too, though neither is built.
COPY Cargo.toml Cargo.lock ./
COPY events/Cargo.toml events/Cargo.toml
COPY projections/Cargo.toml projections/Cargo.toml
RUN mkdir -p src events/src projections/src benches tests/it \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs events/src/lib.rs projections/src/lib.rs \
 && echo 'fn main() {}' > benches/switchboard.rs \
 && touch tests/it/main.rs \
 && cargo build --release --locked --bin switchboard \
 && rm -rf src events/src projections/src

# 2. The sources. What the binary embeds at compile time must be here:
#    `migrations/` (sqlx::migrate! in src/db.rs) and `src/caps/lua/*.lua`
#    (include_str! in src/caps/scripts.rs). Nothing else outside src/ is read
#    (no build.rs, no sqlx query! macros, so no database at build time).
COPY src src
COPY events/src events/src
COPY projections/src projections/src
COPY migrations migrations
# COPY keeps the files' own times, which can be older than the stubs' build:
# touch them so cargo rebuilds the workspace crates instead of reusing stubs.
RUN find src events/src projections/src migrations -type f -exec touch {} + \
 && cargo build --release --locked --bin switchboard \
 && cp target/release/switchboard /usr/local/bin/switchboard

# ---------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
# TLS: reqwest carries its own roots (rustls, webpki-roots); async-nats reads
# the system's (tls:// NATS URLs). No OpenSSL is linked.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 switchboard \
 && useradd --system --uid 10001 --gid switchboard --no-log-init \
      --home-dir /var/lib/switchboard --create-home --shell /usr/sbin/nologin switchboard
COPY --from=build /usr/local/bin/switchboard /usr/local/bin/switchboard

# The working directory is the user's own: outside production, dev secrets
# are generated into ./.switchboard (SWITCHBOARD_DATA_DIR); in production
# nothing is written.
WORKDIR /var/lib/switchboard
USER 10001:10001

# Inside a container the listeners must not be loopback-only. Every process
# serves /healthz, /readyz and /metrics on SWITCHBOARD_LISTEN (the API too on
# gateways); `callproc` listens on SWITCHBOARD_CALLPROC_LISTEN instead.
ENV SWITCHBOARD_LISTEN=0.0.0.0:8080 \
    SWITCHBOARD_CALLPROC_LISTEN=0.0.0.0:8091 \
    RUST_LOG=info
EXPOSE 8080

# SIGTERM stops the stages in order, each up to 15 s (docs/DEPLOYMENT.md
# "Shutdown"): give the container that long (`docker stop -t 60`, Compose
# `stop_grace_period: 60s`, Kubernetes `terminationGracePeriodSeconds: 60`).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["serve"]
