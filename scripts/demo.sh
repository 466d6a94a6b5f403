#!/usr/bin/env bash
# First command of the README: installs what is missing (Debian 12), builds acdsync and
# runs its self-contained demo. No database server is needed: the demo uses SQLite files
# only (the sample telephony database is read through the SQLite ODBC driver).
#   bash scripts/demo.sh [demo options...]   # options go to `acdsync demo`
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

bash scripts/setup-debian.sh

# setup-debian.sh ran in a child shell: pick up a rustup toolchain it may have installed.
# shellcheck source=/dev/null
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

cargo build --release --locked
# --force: the demo/ folder is this script's own; a second run writes the sample again and syncs into the
# same wfm.db (every session unchanged).
exec ./target/release/acdsync demo --force "$@"
