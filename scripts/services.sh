#!/usr/bin/env bash
# Makes sure the test databases answer on loopback:
#   PostgreSQL 127.0.0.1:5432, user postgres, no password
#   MariaDB    127.0.0.1:3306, user root, empty password
# Fast path: both already answer -> nothing is installed, started or changed.
# Otherwise installs the server (apt-get), starts it and opens password-less access.
# This is for a throwaway test/CI machine (run as root): never run it on a server that
# holds data you care about, as it weakens local authentication on purpose.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
MY_HOST=127.0.0.1
MY_PORT=3306
WAIT_SECONDS=30

say() { printf 'services: %s\n' "$*"; }
die() {
  printf 'services: ERROR: %s\n' "$*" >&2
  exit 1
}

is_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

apt_updated=
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    is_installed "$p" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "need root to install ${missing[*]}"
  say "installing ${missing[*]}"
  if [ -z "$apt_updated" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "${missing[@]}"
}

# systemd is PID 1 on a normal VM; in containers and CI sandboxes it usually is not.
have_systemd() { [ -d /run/systemd/system ]; }

# wait_for SECONDS COMMAND...: retry once a second until COMMAND succeeds.
wait_for() {
  local secs=$1 i
  shift
  for ((i = 0; i < secs; i++)); do
    "$@" && return 0
    sleep 1
  done
  "$@"
}

# ------------------------------------------------------------------------------------
# PostgreSQL
# ------------------------------------------------------------------------------------
pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 3 >/dev/null 2>&1; }
# -w: never prompt for a password (a prompt would hang CI); the query proves auth works.
pg_answers() {
  pg_ready &&
    PGCONNECT_TIMEOUT=5 psql -w -X -q -A -t -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres \
      -c 'select 1' </dev/null >/dev/null 2>&1
}

pg_version() {
  # The version of the newest existing "main" cluster (/etc/postgresql/<version>/main),
  # else the newest installed server (its cluster is then created below).
  local v
  v=$(find /etc/postgresql -mindepth 2 -maxdepth 2 -type d -name main -printf '%h\n' 2>/dev/null |
    xargs -r -n1 basename | sort -V | tail -n1 || true)
  [ -n "$v" ] ||
    v=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort -V | tail -n1 || true)
  printf '%s\n' "$v"
}

pg_cluster() { # pg_cluster VERSION start|reload
  if have_systemd; then
    systemctl "$2" "postgresql@$1-main"
  else
    pg_ctlcluster --skip-systemctl-redirect "$1" main "$2"
  fi
}

# Throwaway test machine: let any local TCP client in as any user without a password.
# Rewrites the method of the `host all all 127.0.0.1/32` and `::1/128` lines to trust, or
# puts such lines first if the file has none (pg_hba.conf: the first matching line wins).
pg_hba_trust_loopback() {
  local hba=$1
  sed -i -E \
    's#^([[:space:]]*host[[:space:]]+all[[:space:]]+all[[:space:]]+(127\.0\.0\.1/32|::1/128)[[:space:]]+)[^[:space:]]+#\1trust#' \
    "$hba"
  if ! grep -Eq '^[[:space:]]*host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
    sed -i -e '1i host    all             all             127.0.0.1/32            trust' \
      -e '1i host    all             all             ::1/128                 trust' "$hba"
  fi
}

ensure_postgres() {
  if pg_answers; then
    say "postgresql: answers on $PG_HOST:$PG_PORT as postgres, skipped"
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "postgresql does not answer on $PG_HOST:$PG_PORT (run as root to start it)"

  ensure_packages postgresql postgresql-client
  local v
  v=$(pg_version)
  [ -n "$v" ] || die "no PostgreSQL server found under /usr/lib/postgresql"
  # The package normally creates the "main" cluster; create it if that was disabled.
  if [ ! -d "/etc/postgresql/$v/main" ]; then
    say "postgresql: creating cluster $v/main on port $PG_PORT"
    pg_createcluster --port "$PG_PORT" "$v" main
  fi

  if pg_ctlcluster "$v" main status >/dev/null 2>&1; then
    say "postgresql: cluster $v/main is running"
  else
    say "postgresql: starting cluster $v/main"
    pg_cluster "$v" start
  fi
  wait_for "$WAIT_SECONDS" pg_ready ||
    die "postgresql not ready on $PG_HOST:$PG_PORT after ${WAIT_SECONDS}s ($(pg_lsclusters 2>&1 | tail -n +2))"

  if ! pg_answers; then
    # Debian's default is scram-sha-256 for TCP: the tests connect without a password.
    local hba="/etc/postgresql/$v/main/pg_hba.conf" before
    before=$(cksum <"$hba")
    pg_hba_trust_loopback "$hba"
    if [ "$before" != "$(cksum <"$hba")" ]; then
      say "postgresql: set trust for 127.0.0.1/32 and ::1/128 in $hba, reloading"
      pg_cluster "$v" reload
    fi
    wait_for "$WAIT_SECONDS" pg_answers ||
      die "postgresql is up but 'psql -h $PG_HOST -U postgres' still fails: see $hba"
  fi
  say "postgresql: answers on $PG_HOST:$PG_PORT as postgres"
}

# ------------------------------------------------------------------------------------
# MariaDB
# ------------------------------------------------------------------------------------
my_tcp() {
  mariadb --protocol=TCP -h "$MY_HOST" -P "$MY_PORT" -u root --connect-timeout=5 "$@" </dev/null
}
my_answers() { my_tcp -e 'select 1' >/dev/null 2>&1; }
# Through the unix socket: as OS root, Debian's root@localhost gets in via unix_socket auth.
my_socket() { mariadb --protocol=SOCKET -u root "$@" </dev/null; }
# Exit status 0 whenever the server runs, even if access is denied.
my_alive() { mariadb-admin --protocol=SOCKET --connect-timeout=3 ping >/dev/null 2>&1; }

my_start() {
  if have_systemd; then
    systemctl start mariadb && return 0
  fi
  # No systemd (container/CI): start the daemon directly rather than through the SysV init
  # script, whose behaviour in containers (policy-rc.d, mysqld_safe) varies.
  # /run/mysqld (socket, pid file) is normally made by systemd-tmpfiles or the init script.
  install -d -o mysql -g mysql -m 0755 /run/mysqld
  install -d -m 0755 /var/log/mysql
  # --output keeps the server's stderr (its error log, unless log_error is configured).
  start-stop-daemon --start --oknodo --background --output /var/log/mysql/mariadbd.out \
    --exec /usr/sbin/mariadbd -- --user=mysql
}

ensure_mariadb() {
  if my_answers; then
    say "mariadb: answers on $MY_HOST:$MY_PORT as root, skipped"
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "mariadb does not answer on $MY_HOST:$MY_PORT (run as root to start it)"

  ensure_packages mariadb-server mariadb-client
  # The package's postinst initialises the data directory; do it if that did not happen.
  if [ ! -d /var/lib/mysql/mysql ]; then
    say "mariadb: initialising /var/lib/mysql"
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  fi

  if my_alive; then
    say "mariadb: server is running"
  else
    say "mariadb: starting server"
    my_start
  fi
  wait_for "$WAIT_SECONDS" my_alive ||
    die "mariadb did not start within ${WAIT_SECONDS}s (see /var/log/mysql/ or journalctl -u mariadb)"

  if ! my_answers; then
    # Debian's root@localhost uses unix_socket auth (plus an invalid password), so TCP
    # logins as root fail. Give it an empty password; socket logins as root keep working.
    say "mariadb: root refused over TCP, setting an empty password for root@localhost"
    my_socket -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD(''); FLUSH PRIVILEGES;" ||
      die "cannot log in as root through the socket to change root's authentication"
  fi
  if ! my_answers; then
    # With skip-name-resolve, a TCP client from 127.0.0.1 is not matched to 'localhost'.
    say "mariadb: TCP root still refused, creating root@127.0.0.1 with an empty password"
    my_socket -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
      ALTER USER 'root'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('');
      GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
      FLUSH PRIVILEGES;" ||
      die "cannot create root@127.0.0.1"
  fi
  wait_for "$WAIT_SECONDS" my_answers ||
    die "mariadb runs but 'mariadb -h $MY_HOST -P $MY_PORT -u root' fails: $(my_tcp -e 'select 1' 2>&1 | tail -n1)"
  say "mariadb: answers on $MY_HOST:$MY_PORT as root"
}

ensure_postgres
ensure_mariadb
