#!/bin/sh
# The runtime steps of the container image (Dockerfile, final stage), in a script the tests run
# (tests/integration/deploy.rs): Docker itself does not run on the machines that test acdsync.
#   sh container-runtime.sh all         # in the image: packages, psqlODBC's logging off, the user
#   sh container-runtime.sh configure   # only the odbcinst.ini edit and its check (the tests run this on a
#                                       # copy: ACDSYNC_ODBCINST_INI=FILE and ODBCSYSINI=its folder)
set -eu
odbcinst_ini=${ACDSYNC_ODBCINST_INI:-/etc/odbcinst.ini}

install_packages() {
    # Shared libraries of the binary, plus unixODBC with the PostgreSQL, MariaDB and SQLite ODBC drivers for
    # the ACD source, CA certificates for TLS, and tzdata for time zones.
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libpq5 libsqlite3-0 unixodbc odbc-postgresql odbc-mariadb libsqliteodbc \
        ca-certificates tzdata
    rm -rf /var/lib/apt/lists/*
}

configure_odbc() {
    # Debian registers psqlODBC with CommLog=1, which makes every process write a /tmp/psqlodbc_*.log (SQL
    # text included): set CommLog=0 and Debug=0 in the [PostgreSQL*] sections only. The sed keeps the current
    # section header in the hold space (same edit as scripts/setup-debian.sh).
    sed -E -i \
        -e '/^[[:space:]]*\[/h' \
        -e '/^[[:space:]]*(CommLog|Debug)[[:space:]]*=/{x;/^[[:space:]]*\[PostgreSQL/{x;s/^([[:space:]]*[A-Za-z]+)[[:space:]]*=.*/\1=0/;b};x}' \
        "$odbcinst_ini"
    # The image fails to build if the edit did not take or a driver is missing.
    for d in 'PostgreSQL ANSI' 'PostgreSQL Unicode'; do
        odbcinst -q -d -n "$d" | grep -qx 'CommLog=0'
        odbcinst -q -d -n "$d" | grep -qx 'Debug=0'
    done
    odbcinst -q -d -n 'MariaDB Unicode' >/dev/null
    odbcinst -q -d -n 'SQLite3' >/dev/null
}

add_user() {
    # Unprivileged user with a fixed uid, owning /app (e.g. for a SQLite WFM database file).
    useradd --system --uid 10001 --user-group --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin acdsync
    install -d -o acdsync -g acdsync -m 0755 /app
}

case "${1:-all}" in
    all)
        install_packages
        configure_odbc
        add_user
        ;;
    configure)
        configure_odbc
        ;;
    *)
        echo "usage: $0 [all|configure]" >&2
        exit 2
        ;;
esac
