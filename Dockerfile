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

# Shared libraries of the binary, plus unixODBC with the PostgreSQL, MariaDB and SQLite
# ODBC drivers for the ACD source, CA certificates for TLS, and tzdata for time zones.
# Debian registers psqlODBC with CommLog=1, which makes every process write a
# /tmp/psqlodbc_*.log (SQL text included): set CommLog=0 and Debug=0 in the [PostgreSQL*]
# sections. The sed keeps the current section header in the hold space so that only keys
# of PostgreSQL sections change (same edit as scripts/setup-debian.sh); the last lines fail
# the build if the edit did not take.
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libpq5 libsqlite3-0 unixodbc odbc-postgresql odbc-mariadb libsqliteodbc \
        ca-certificates tzdata; \
    rm -rf /var/lib/apt/lists/*; \
    sed -E -i \
        -e '/^[[:space:]]*\[/h' \
        -e '/^[[:space:]]*(CommLog|Debug)[[:space:]]*=/{x;/^[[:space:]]*\[PostgreSQL/{x;s/^([[:space:]]*[A-Za-z]+)[[:space:]]*=.*/\1=0/;b};x}' \
        /etc/odbcinst.ini; \
    for d in 'PostgreSQL ANSI' 'PostgreSQL Unicode'; do \
        odbcinst -q -d -n "$d" | grep -qx 'CommLog=0'; \
        odbcinst -q -d -n "$d" | grep -qx 'Debug=0'; \
    done; \
    odbcinst -q -d -n 'MariaDB Unicode' >/dev/null; \
    odbcinst -q -d -n 'SQLite3' >/dev/null

# Unprivileged user with a fixed uid, owning /app (e.g. for a SQLite WFM database file).
RUN set -eux; \
    useradd --system --uid 10001 --user-group --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin acdsync; \
    install -d -o acdsync -g acdsync -m 0755 /app

WORKDIR /app
COPY --from=build /src/target/release/acdsync /usr/local/bin/acdsync
COPY sql/ /app/sql/

# Numeric uid:gid so that Kubernetes `runAsNonRoot: true` can verify it is not root
# (it refuses a user given by name). 10001 is the `acdsync` user created above.
USER 10001:10001

ENTRYPOINT ["/usr/local/bin/acdsync"]
CMD ["sync"]
