#!/usr/bin/env bash
# Installs what acdsync needs to build and test on Debian 12 (bookworm): compiler and
# client libraries, unixODBC with the PostgreSQL / MariaDB / SQLite drivers, the database
# command-line clients, and a Rust toolchain. Idempotent: a second run only checks.
# Run as root (or a user with sudo). Database servers are handled by scripts/services.sh.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# libc6-dev is listed explicitly because we install without recommends and gcc only
# *recommends* it; without it the Rust linker step fails (no crt1.o / libc.so).
packages=(
  pkg-config gcc libc6-dev libpq-dev libsqlite3-dev sqlite3
  unixodbc unixodbc-dev odbc-postgresql odbc-mariadb libsqliteodbc
  postgresql-client mariadb-client ca-certificates curl
  strace
)

say() { printf 'setup-debian: %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    say "need root for: $*" >&2
    exit 1
  fi
}

is_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

# --- 1. Debian packages ----------------------------------------------------------------
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  say "this script is for Debian 12 (dpkg/apt-get not found)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  is_installed "$p" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  say "packages: all ${#packages[@]} already installed, skipped apt-get"
else
  say "packages: installing ${missing[*]}"
  # `apt-get update` only here: it is the slow part and is not needed when nothing is missing.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "${missing[@]}"
fi

# --- 2. ODBC driver registration and psqlODBC logging -------------------------------------
# The driver packages register themselves in /etc/odbcinst.ini from their postinst; check the
# names the tests and the demo use, and re-register from the packaged templates if one is gone.
odbcinst_ini=/etc/odbcinst.ini
declare -A driver_template=(
  ["PostgreSQL Unicode"]=/usr/share/psqlodbc/odbcinst.ini.template
  ["MariaDB Unicode"]=/usr/share/odbc-mariadb/odbcinst.ini.template
  ["SQLite3"]=/usr/share/sqliteodbc/unixodbc.ini
)
for name in "PostgreSQL Unicode" "MariaDB Unicode" "SQLite3"; do
  if odbcinst -q -d -n "$name" >/dev/null 2>&1; then
    say "odbc driver [$name]: registered, skipped"
  else
    say "odbc driver [$name]: not registered, registering from ${driver_template[$name]}"
    as_root odbcinst -i -d -f "${driver_template[$name]}" >/dev/null
  fi
done

# Debian ships psqlODBC with CommLog=1: every process using the driver then writes a
# /tmp/psqlodbc_*.log (with the SQL it runs). Force CommLog=0 and Debug=0 in every
# [PostgreSQL ...] section. The sed keeps the current section header in the hold space so
# that only keys inside PostgreSQL sections are touched (a /start/,/end/ range would skip a
# section that directly follows another PostgreSQL one).
fix_psqlodbc_logging() {
  sed -E \
    -e '/^[[:space:]]*\[/h' \
    -e '/^[[:space:]]*(CommLog|Debug)[[:space:]]*=/{x;/^[[:space:]]*\[PostgreSQL/{x;s/^([[:space:]]*[A-Za-z]+)[[:space:]]*=.*/\1=0/;b};x}' \
    "$1"
}
if [ -f "$odbcinst_ini" ]; then
  tmp=$(mktemp)
  trap 'rm -f "$tmp"' EXIT
  fix_psqlodbc_logging "$odbcinst_ini" >"$tmp"
  if cmp -s "$tmp" "$odbcinst_ini"; then
    say "odbcinst.ini: PostgreSQL CommLog/Debug already 0, skipped"
  else
    # cp onto an existing file writes through it: owner, mode and inode stay as they were.
    as_root cp "$tmp" "$odbcinst_ini"
    say "odbcinst.ini: set CommLog=0 and Debug=0 for the PostgreSQL drivers"
  fi
  rm -f "$tmp"
  trap - EXIT
else
  say "odbcinst.ini: $odbcinst_ini not found (driver registration failed?)" >&2
  exit 1
fi

# --- 3. Rust toolchain -------------------------------------------------------------------
# rustup puts cargo in ~/.cargo/bin; ~/.cargo/env adds it to PATH (and is a no-op if present).
# shellcheck source=/dev/null
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

rust_required=$(sed -n -E 's/^rust-version[[:space:]]*=[[:space:]]*"([0-9.]+)".*/\1/p' "$repo_root/Cargo.toml" 2>/dev/null | head -n1)
rust_required=${rust_required:-1.85}

rustc_too_old() {
  local have
  have=$(rustc --version 2>/dev/null | awk '{print $2}')
  [ -z "$have" ] && return 0
  [ "$(printf '%s\n%s\n' "$rust_required" "$have" | sort -V | head -n1)" != "$rust_required" ]
}

install_rustup() {
  say "rust: installing rustup stable toolchain (minimal profile + rustfmt, clippy)"
  local init
  init=$(mktemp)
  # sh.rustup.rs is a redirect to the script on static.rust-lang.org; try the latter when
  # the short name does not resolve (seen on restricted networks).
  curl --proto '=https' --tlsv1.2 -sSf -o "$init" https://sh.rustup.rs ||
    curl --proto '=https' --tlsv1.2 -sSf -o "$init" https://static.rust-lang.org/rustup/rustup-init.sh
  sh "$init" -y --profile minimal --default-toolchain stable \
    --component rustfmt --component clippy
  rm -f "$init"
  # shellcheck source=/dev/null
  . "$HOME/.cargo/env"
}

if ! command -v cargo >/dev/null 2>&1; then
  install_rustup
elif rustc_too_old; then
  if command -v rustup >/dev/null 2>&1; then
    say "rust: $(rustc --version) is older than $rust_required, updating stable via rustup"
    rustup toolchain install stable --profile minimal --component rustfmt --component clippy
    rustup default stable
  else
    # e.g. Debian's own cargo (1.63 on bookworm): too old for this crate; rustup's cargo
    # in ~/.cargo/bin comes first in PATH once ~/.cargo/env is sourced.
    say "rust: $(rustc --version 2>/dev/null || echo 'rustc') is older than $rust_required and not from rustup"
    install_rustup
  fi
else
  say "rust: $(cargo --version) found, skipped install"
fi

# cargo fmt / cargo clippy are run by scripts/test.sh; add them if the toolchain lacks them.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  if command -v rustup >/dev/null 2>&1; then
    say "rust: adding rustfmt and clippy components"
    rustup component add rustfmt clippy
  else
    say "rust: cargo fmt / cargo clippy missing and rustup not available" >&2
    exit 1
  fi
else
  say "rust: rustfmt and clippy present, skipped"
fi

say "done"
