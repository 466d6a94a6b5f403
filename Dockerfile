# acdsync container image.
#   docker build -t acdsync .
#   docker run --rm acdsync            # runs `acdsync sync`
#   docker run --rm acdsync --help

# ---- build ------------------------------------------------------------------------------
FROM rust:1-bookworm AS build

# System libraries the crate links against: libpq (Diesel PostgreSQL), SQLite (Diesel
# SQLite) and unixODBC (odbc-api; the system one, so drivers load by their odbcinst.ini names).
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        pkg-config libpq-dev libsqlite3-dev unixodbc-dev; \
    rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Build the dependencies alone first, against a dummy main.rs, so that this layer stays
# cached until Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
RUN set -eux; \
    mkdir src; \
    echo 'fn main() {}' > src/main.rs; \
    cargo build --release --locked; \
    rm -rf src target/release/acdsync target/release/acdsync.d \
        target/release/deps/acdsync-* target/release/.fingerprint/acdsync-*

# Then the real sources (migrations/ are embedded at compile time, so they come too).
COPY . .
RUN cargo build --release --locked

# ---- runtime ----------------------------------------------------------------------------
FROM debian:bookworm-slim

# The runtime steps (packages, psqlODBC's logging turned off in odbcinst.ini and checked, the unprivileged user
# 10001 owning /app) are in scripts/container-runtime.sh, which the tests run too.
COPY scripts/container-runtime.sh /tmp/container-runtime.sh
RUN set -eux; sh /tmp/container-runtime.sh all; rm /tmp/container-runtime.sh

WORKDIR /app
COPY --from=build /src/target/release/acdsync /usr/local/bin/acdsync
COPY sql/ /app/sql/

# Numeric uid:gid so that Kubernetes `runAsNonRoot: true` can verify it is not root
# (it refuses a user given by name). 10001 is the `acdsync` user created above.
USER 10001:10001

ENTRYPOINT ["/usr/local/bin/acdsync"]
CMD ["sync"]
