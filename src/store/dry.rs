//! What a dry run (`sync --dry-run`) needs of the store, and nothing that writes: the facts of a system's
//! next run read without registering the system or marking abandoned runs, and a transaction that only
//! reads (PostgreSQL `READ ONLY`; SQLite a deferred one, which takes no write lock) and always rolls back.

use anyhow::Context;
use diesel::prelude::*;

use super::{RunFacts, Store, Wfm, WfmOps};

impl Store {
    /// The WFM database a sync or a dry run works on: it must exist, its schema up to date; its errors
    /// said as `explain_store_error` says them.
    pub fn open_for_sync(url: &crate::config::DatabaseUrl) -> anyhow::Result<Store> {
        let explain = |e: anyhow::Error| crate::error::explain_store_error(e, url);
        let mut store = Store::open(url, super::Create::Never).map_err(|e| explain(e.into()))?;
        store.check_schema().map_err(explain)?;
        Ok(store)
    }

    /// A system's facts as `prepare_run` gives them, read only; `None` when the store has never seen the
    /// system. A time zone that differs from the stored one is refused as a sync refuses it.
    pub fn run_facts(&mut self, name: &str, time_zone: &str) -> anyhow::Result<Option<RunFacts>> {
        use super::schema::external_systems::dsl as s;
        let found: Option<(i64, String)> = match &mut self.conn {
            Wfm::Postgres(c) => s::external_systems
                .filter(s::name.eq(name))
                .select((s::id, s::time_zone))
                .first(c)
                .optional(),
            Wfm::Sqlite(c, _) => s::external_systems
                .filter(s::name.eq(name))
                .select((s::id, s::time_zone))
                .first(c)
                .optional(),
        }?;
        let Some((system_id, stored_zone)) = found else {
            return Ok(None);
        };
        let ops = self.ops();
        if stored_zone != time_zone {
            let n = ops.count_sessions(system_id)?;
            if n > 0 {
                return Err(super::zone_changed(name, &stored_zone, time_zone, n).into());
            }
        }
        Ok(Some(RunFacts {
            system_id,
            watermark: ops.load_watermark(system_id)?,
            last_full_sync: ops.last_full_sync(system_id)?,
        }))
    }

    /// Runs `work` in a transaction that reads only, and rolls it back whatever happens.
    pub fn dry_transaction<R>(
        &mut self,
        work: impl FnOnce(&mut (dyn WfmOps + Send)) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        use diesel::connection::SimpleConnection;
        fn around<C: SimpleConnection + WfmOps + Send, R>(
            c: &mut C,
            begin: &str,
            work: impl FnOnce(&mut (dyn WfmOps + Send)) -> anyhow::Result<R>,
        ) -> anyhow::Result<R> {
            c.batch_execute(begin)
                .context("beginning the dry run's read-only transaction")?;
            let result = work(c);
            if let Err(e) = c.batch_execute("ROLLBACK") {
                tracing::debug!(error = %e, "rolling back the dry run's transaction");
            }
            result
        }
        match &mut self.conn {
            Wfm::Postgres(c) => around(c, "BEGIN READ ONLY", work),
            Wfm::Sqlite(c, _) => around(c, "BEGIN DEFERRED", work),
        }
    }
}
