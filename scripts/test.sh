#!/usr/bin/env bash
# The project's test command: installs what is missing (Debian 12), makes sure PostgreSQL
# and MariaDB answer on loopback, then runs rustfmt, clippy and the tests.
#   bash scripts/test.sh                     # everything
#   bash scripts/test.sh -- some_test_name   # extra args go to `cargo test` as given
# Works from any directory. CI runs it through .ci/run with CI=true.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

step() { printf '\n==> %s\n' "$*"; }

step "setup (scripts/setup-debian.sh)"
bash scripts/setup-debian.sh
step "database services (scripts/services.sh)"
bash scripts/services.sh

# setup-debian.sh ran in a child shell: pick up a rustup toolchain it may have installed.
# shellcheck source=/dev/null
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

# Where the tests find the databases; a value already in the environment wins.
# The defaults sit in single-quoted variables: a literal `}` inside ${VAR:-...} would end
# the expansion early and mangle the ODBC strings.
default_pg_url='postgres://postgres@127.0.0.1:5432/postgres'
default_pg_odbc='Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Uid=postgres;'
default_mariadb_odbc='Driver={MariaDB Unicode};Server=127.0.0.1;Port=3306;Uid=root;Pwd=;'
export ACDSYNC_TEST_PG_URL="${ACDSYNC_TEST_PG_URL:-$default_pg_url}"
export ACDSYNC_TEST_PG_ODBC="${ACDSYNC_TEST_PG_ODBC:-$default_pg_odbc}"
export ACDSYNC_TEST_MARIADB_ODBC="${ACDSYNC_TEST_MARIADB_ODBC:-$default_mariadb_odbc}"

# CI logs are plain text: no ANSI colour codes.
if [ "${CI:-}" = "true" ]; then
  export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
fi

step "cargo fmt --all -- --check"
cargo fmt --all -- --check
step "cargo clippy --all-targets --locked -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings
cargo clippy --all-targets --locked --features failpoints -- -D warnings
step "cargo test --all-targets --locked --features failpoints $*"
cargo test --all-targets --locked --features failpoints "$@"
