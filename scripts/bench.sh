#!/usr/bin/env bash
# The scale benchmark (BENCHMARKS.md): installs what is missing (Debian 12), makes sure PostgreSQL answers
# on 127.0.0.1:5432, builds the release binary and the bench, then runs the bench binary.
#   bash scripts/bench.sh                                   # 1.5M sessions, 50,000 agents, 20 codes, both stores
#   bash scripts/bench.sh --sessions 200000 --agents 7000   # a small development run
#   bash scripts/bench.sh --store postgres --memory         # options: bench binary --help
# Arguments go to the bench binary as given. Works from any directory; prints the table and writes it to
# --out (default target/bench/results.md).
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

step "cargo build --release --locked"
cargo build --release --locked
step "cargo bench --no-run --locked --bench scale"
# The bench binary's path, from cargo's JSON messages (no jq needed).
bench_exe=$(cargo bench --no-run --locked --bench scale --message-format=json |
  grep '"kind":\["bench"\]' | grep '"name":"scale"' |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n1)
[ -n "$bench_exe" ] && [ -x "$bench_exe" ] || {
  echo "bench.sh: cannot find the built bench binary" >&2
  exit 1
}

step "$bench_exe $*"
export ACDSYNC_BENCH_COMMAND="bash scripts/bench.sh${*:+ $*}"
exec "$bench_exe" "$@"
