//! SIGTERM and SIGINT cancel what a PostgreSQL store connection is running (`crate::stop`): a statement
//! waiting behind a DBA's lock, a long DELETE or COPY, the reader's query. The server ends it with
//! "canceling statement due to user request"; the run then rolls back and is recorded as interrupted on the
//! same connection, which stays usable. (An SQLite store's statements are short: a batch each; their waits
//! for another program's lock end within [wfm] lock_timeout.)

use diesel::prelude::*;
use diesel::sql_types::Integer;

use crate::config::DatabaseUrl;
use crate::stop::Armed;

#[derive(QueryableByName)]
struct Backend {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

/// Arms the cancel of `conn`'s backend, until the result is dropped.
pub(super) fn on_signal(conn: &mut PgConnection, url: &DatabaseUrl) -> QueryResult<Armed> {
    let pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result::<Backend>(conn)?
        .pid;
    let url = url.clone();
    Ok(crate::stop::on_signal(move || {
        // A connection of its own: the one to cancel is busy. (pg_cancel_backend: same role, no privilege.)
        let target = url.expose_with_connect_timeout(std::time::Duration::from_secs(5));
        let cancelled = PgConnection::establish(&target)
            .map_err(|e| e.to_string())
            .and_then(|mut c| {
                diesel::sql_query("SELECT pg_cancel_backend($1)")
                    .bind::<Integer, _>(pid)
                    .execute(&mut c)
                    .map_err(|e| e.to_string())
            });
        match cancelled {
            Ok(_) => tracing::debug!(pid, "cancelled the WFM database backend's statement"),
            Err(e) => tracing::warn!(
                pid,
                error = %crate::secrets::redact(&e),
                "could not cancel the WFM database backend's statement; the run stops at its next safe point"
            ),
        }
    }))
}
