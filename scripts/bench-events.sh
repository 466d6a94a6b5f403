#!/usr/bin/env bash
# The events benchmark (BENCHMARKS.md, "Events shape"): an Asterisk-like day of agent events in PostgreSQL
# (by default 50,000 agents x 60 events = 3 million: a login, states every 8 minutes alternating BREAK and
# ready, a logout), read through psqlODBC with sql/sources/generic_events.sql and paired into sessions in a
# PostgreSQL WFM store. Prints wall time and peak RSS of the floors (psql \copy of the events query to
# /dev/null; the raw ODBC fetch of the same query, as acdsync fetches it, by the scale bench's fetch-floor;
# \copy of the sessions written into an empty table with the store's unique key), the first sync, and an
# unchanged re-run, with the ratios the issue sets: first sync / (fetch + \copy in), re-run / fetch; then the
# same day logged as it happens and synced in incremental mode: a changes run at the end of the day against
# one at its start.
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
bench_exe=$(cargo bench --no-run --locked --bench scale --message-format=json 2>/dev/null |
  grep '"kind":\["bench"\]' | grep '"name":"scale"' |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n1)

pg='postgres://postgres@127.0.0.1:5432'
src=acdsync_bench_events_src
wfm=acdsync_bench_events_wfm
day=2026-01-15
work=$(mktemp -d)
trap 'rm -rf "$work"; psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $src" -c "DROP DATABASE IF EXISTS $wfm" -c "DROP DATABASE IF EXISTS ${wfm}_floor" >/dev/null 2>&1 || true' EXIT

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

odbc="Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=5432;Uid=postgres;Database=$src;UseDeclareFetch=1;Fetch=10000;"
cat >"$work/acdsync.toml" <<TOML
[wfm]
database_url = "$pg/$wfm"

[[system]]
name = "bench-events"
time_zone = "Europe/Paris"
shape = "events"
sql_file = "$repo_root/sql/sources/generic_events.sql"
connection_string = "$odbc"
TOML
"$bin" --config "$work/acdsync.toml" migrate >/dev/null 2>&1

measure() { # label, command...
  local label=$1
  shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/out" 2>&1 || {
    cat "$work/out"
    exit 1
  }
  read -r secs kb <"$work/time"
  printf '| %s | %s | %s |\n' "$label" "$secs" "$((kb / 1024))"
  echo "$secs" >"$work/last"
}

query="SELECT agent_id, event_time, event, activity_code, scope, id FROM acd_agent_events
       WHERE event_time >= '2026-01-14 00:00:00' AND event_time < '2026-01-17 00:00:00' ORDER BY id"
echo
echo "| measurement ($agents agents x $per_agent events, $(nproc) cores) | seconds | peak RSS MB |"
echo "|---|---:|---:|"
measure "floor: psql \\copy of the events query to /dev/null" psql -q "$pg/$src" -c "\\copy ($query) TO '/dev/null'"
measure "floor: raw ODBC fetch of the events query (psqlODBC, 10k rows a batch)" \
  "$bench_exe" fetch-floor --connection-string "$odbc" --sql-file sql/sources/generic_events.sql --date "$day"
fetch=$(cat "$work/last")
measure "first sync (events paired, sessions inserted)" "$bin" --config "$work/acdsync.toml" sync --date "$day"
first=$(cat "$work/last")
measure "re-run, nothing changed" "$bin" --config "$work/acdsync.toml" sync --date "$day"
rerun=$(cat "$work/last")
psql -q "$pg/$wfm" -c "\\copy (SELECT external_system_id, external_agent_id, external_activity_code_id, started_at, ended_at FROM agent_sessions) TO '$work/sessions.csv' CSV"
psql -q "$pg/$wfm" -c "CREATE TABLE copy_floor (external_system_id bigint, external_agent_id bigint, external_activity_code_id bigint, started_at timestamp, ended_at timestamp, UNIQUE (external_system_id, started_at, external_agent_id))"
measure "floor: \\copy of those sessions into an empty table, unique (system, start, agent)" \
  psql -q "$pg/$wfm" -c "\\copy copy_floor FROM '$work/sessions.csv' CSV"
copy_in=$(cat "$work/last")
# What the sessions shape costs to write: the same sessions copied into the store's own agent_sessions (its
# unique key, its indexes and its per-statement reference check), empty, in a store migrated by this binary
# and holding the same agent IDs and codes.
psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS ${wfm}_floor" -c "CREATE DATABASE ${wfm}_floor" >/dev/null 2>&1
"$bin" migrate --database-url "$pg/${wfm}_floor" >/dev/null 2>&1
for t in external_systems external_agent_ids external_activity_codes; do
  psql -q "$pg/$wfm" -c "\\copy (SELECT * FROM $t ORDER BY id) TO '$work/$t.csv' CSV"
  psql -q "$pg/${wfm}_floor" -c "\\copy $t FROM '$work/$t.csv' CSV"
done
measure "floor: \\copy of those sessions into the store's own empty agent_sessions (its key, indexes and checks)" \
  psql -q "$pg/${wfm}_floor" -c "\\copy agent_sessions (external_system_id, external_agent_id, external_activity_code_id, started_at, ended_at) FROM '$work/sessions.csv' CSV"
copy_store=$(cat "$work/last")
psql -q "$pg/postgres" -c "DROP DATABASE ${wfm}_floor" >/dev/null
echo
awk -v f="$fetch" -v c="$copy_in" -v w="$copy_store" -v s="$first" -v r="$rerun" 'BEGIN {
  printf "first sync %.2f s = %.2f x (raw fetch + copy into the store'"'"'s table); target: <= 1.3 x raw fetch + that copy = %.2f s (%s)\n", s, s / (f + w), 1.3 * f + w, (s <= 1.3 * f + w ? "PASS" : "FAIL")
  printf "  (against the copy into a bare table: %.2f x (raw fetch + copy in); 1.3 x raw fetch + copy in = %.2f s)\n", s / (f + c), 1.3 * f + c
  printf "re-run %.2f s = %.2f x raw fetch\n", r, r / f }'
sessions=$(psql -qtA "$pg/$wfm" -c "SELECT count(*) FROM agent_sessions")
runs=$(psql -qtA "$pg/$wfm" -c "SELECT rows_read || ' read, ' || sessions_inserted || ' inserted, ' || sessions_unchanged || ' unchanged, ' || rows_rejected || ' rejected' FROM import_runs ORDER BY id")
echo
echo "sessions stored: $sessions"
echo "runs: $(echo "$runs" | tr '\n' ';')"

# Incremental mode (docs/incremental.md, "Event sources"): the day logged as it happens. The events move to
# all_events; acd_agent_events receives them in id order. A full sync when 10 % of the day is logged sets the
# watermark and the agents' states; then a changes run reads the next 1 % of the day (the start of the day),
# the events up to 90 % are read by one changes run (not measured), and a changes run reads the next 1 % (the
# end of the day). Target: end <= 2 x start.
total=$((agents * per_agent))
chunk=$((total / 100))
psql -q "$pg/$src" >/dev/null <<SQL
ALTER TABLE acd_agent_events RENAME TO all_events;
CREATE TABLE acd_agent_events (LIKE all_events INCLUDING ALL);
SQL
log_up_to() { psql -q "$pg/$src" -c "INSERT INTO acd_agent_events SELECT * FROM all_events WHERE id > (SELECT COALESCE(max(id), 0) FROM acd_agent_events) AND id <= $1" -c "ANALYZE acd_agent_events" >/dev/null; }
psql -q "$pg/postgres" -c "DROP DATABASE $wfm" -c "CREATE DATABASE $wfm" >/dev/null
cat >>"$work/acdsync.toml" <<TOML

[system.incremental]
sql_file = "$repo_root/sql/sources/generic_events_changes.sql"
watermark = "integer"
full_sync_every = "24h"
TOML
"$bin" --config "$work/acdsync.toml" migrate >/dev/null 2>&1
echo
echo "| incremental mode ($agents agents, $total events in the day, $chunk events a run) | seconds | peak RSS MB |"
echo "|---|---:|---:|"
log_up_to $((total / 10))
measure "full sync of the day, 10 % logged (sets the watermark and the agents' states)" "$bin" --config "$work/acdsync.toml" sync --date "$day"
log_up_to $((total / 10 + chunk))
measure "changes run at the start of the day (events 10-11 %)" "$bin" --config "$work/acdsync.toml" sync
start=$(cat "$work/last")
log_up_to $((total * 9 / 10))
measure "changes run catching up (events 11-90 %)" "$bin" --config "$work/acdsync.toml" sync
log_up_to $((total * 9 / 10 + chunk))
measure "changes run at the end of the day (events 90-91 %)" "$bin" --config "$work/acdsync.toml" sync
end=$(cat "$work/last")
measure "for comparison: a full sync of the day at 91 % (what each run would cost without incremental mode)" "$bin" --config "$work/acdsync.toml" sync --date "$day"
echo
awk -v s="$start" -v e="$end" 'BEGIN {
  printf "changes run at the end of the day %.2f s = %.2f x the one at its start (%.2f s); target <= 2 x (%s)\n", e, e / s, s, (e <= 2 * s ? "PASS" : "FAIL") }'
runs=$(psql -qtA "$pg/$wfm" -c "SELECT mode || ': ' || rows_read || ' read, ' || sessions_inserted || ' inserted, ' || sessions_updated || ' updated, ' || rows_rejected || ' rejected' FROM import_runs ORDER BY id")
echo "runs: $(echo "$runs" | tr '\n' ';')"
