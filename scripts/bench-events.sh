#!/usr/bin/env bash
# The events benchmark (BENCHMARKS.md, "Events shape"): an Asterisk-like day of agent events in PostgreSQL
# (by default 50,000 agents x 60 events = 3 million: a login, states every 8 minutes alternating BREAK and
# ready, a logout), read through psqlODBC with sql/sources/generic_events.sql and paired into sessions in a
# PostgreSQL WFM store. Prints wall time and peak RSS of: the floor (psql \copy of the same query to
# /dev/null), the first sync, and an unchanged re-run.
#   bash scripts/bench-events.sh                  # 50,000 agents x 60 events
#   bash scripts/bench-events.sh 5000 60          # agents, events per agent
set -euo pipefail

agents=${1:-50000}
per_agent=${2:-60}
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

bash scripts/setup-debian.sh >/dev/null
bash scripts/services.sh >/dev/null
# shellcheck source=/dev/null
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo build --release --locked -q
bin="$repo_root/target/release/acdsync"

pg='postgres://postgres@127.0.0.1:5432'
src=acdsync_bench_events_src
wfm=acdsync_bench_events_wfm
day=2026-01-15
work=$(mktemp -d)
trap 'rm -rf "$work"; psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $src" -c "DROP DATABASE IF EXISTS $wfm" >/dev/null 2>&1 || true' EXIT

psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $src" -c "DROP DATABASE IF EXISTS $wfm" \
  -c "CREATE DATABASE $src" -c "CREATE DATABASE $wfm" >/dev/null
echo "generating $agents agents x $per_agent events ..."
psql -q "$pg/$src" >/dev/null <<SQL
CREATE TABLE acd_agent_events (id bigserial PRIMARY KEY, agent_id text NOT NULL, event_time timestamp NOT NULL,
                               event text NOT NULL, activity_code text, scope text);
INSERT INTO acd_agent_events (agent_id, event_time, event, activity_code, scope)
SELECT agent_id, t, event, code, NULL FROM (
  SELECT 'A' || a AS agent_id,
         TIMESTAMP '$day 07:00:00' + (a % 120) * interval '1 minute' + k * interval '8 minutes'
           + (a % 60) * interval '1 second' AS t,
         CASE WHEN k = 0 THEN 'login' WHEN k = $per_agent - 1 THEN 'logout' ELSE 'state' END AS event,
         CASE WHEN k > 0 AND k < $per_agent - 1 AND k % 2 = 1 THEN 'BREAK' END AS code
  FROM generate_series(1, $agents) a, generate_series(0, $per_agent - 1) k
) e ORDER BY t, agent_id;
CREATE INDEX ON acd_agent_events (event_time);
ANALYZE acd_agent_events;
SQL

cat >"$work/acdsync.toml" <<TOML
[wfm]
database_url = "$pg/$wfm"

[[system]]
name = "bench-events"
time_zone = "Europe/Paris"
shape = "events"
sql_file = "$repo_root/sql/sources/generic_events.sql"
connection_string = "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Uid=postgres;Database=$src;UseDeclareFetch=1;Fetch=10000;"
TOML
"$bin" --config "$work/acdsync.toml" migrate >/dev/null

measure() { # label, command...
  local label=$1
  shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/out" 2>&1 || {
    cat "$work/out"
    exit 1
  }
  read -r secs kb <"$work/time"
  printf '| %s | %s | %s |\n' "$label" "$secs" "$((kb / 1024))"
}

query="SELECT agent_id, event_time, event, activity_code, scope, id FROM acd_agent_events
       WHERE event_time >= '2026-01-14 00:00:00' AND event_time < '2026-01-17 00:00:00' ORDER BY id"
echo
echo "| measurement ($agents agents x $per_agent events, $(nproc) cores) | seconds | peak RSS MB |"
echo "|---|---:|---:|"
measure "floor: psql \\copy of the events query to /dev/null" psql -q "$pg/$src" -c "\\copy ($query) TO '/dev/null'"
measure "first sync (events paired, sessions inserted)" "$bin" --config "$work/acdsync.toml" sync --date "$day"
measure "re-run, nothing changed" "$bin" --config "$work/acdsync.toml" sync --date "$day"
sessions=$(psql -qtA "$pg/$wfm" -c "SELECT count(*) FROM agent_sessions")
runs=$(psql -qtA "$pg/$wfm" -c "SELECT rows_read || ' read, ' || sessions_inserted || ' inserted, ' || sessions_unchanged || ' unchanged, ' || rows_rejected || ' rejected' FROM import_runs ORDER BY id")
echo
echo "sessions stored: $sessions"
echo "runs: $(echo "$runs" | tr '\n' ';')"
