//! Transactions on the WFM database: the run's (`Store::transaction`), and the one helper every
//! transaction of the store goes through.

use anyhow::Context;

use super::{Store, Wfm, WfmOps};

impl Store {
    /// Runs `work` in one transaction, committed if it returns `Ok`, rolled back otherwise. On SQLite the
    /// write lock is taken up front (`BEGIN IMMEDIATE`): a deferred transaction that reads, then writes,
    /// can fail with SQLITE_BUSY without waiting.
    pub fn transaction<R>(
        &mut self,
        work: impl FnOnce(&mut (dyn WfmOps + Send)) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        match &mut self.conn {
            Wfm::Postgres(c) => in_transaction(c, ("BEGIN", &self.name), |c| work(c)),
            Wfm::Sqlite(c, _) => in_transaction(c, ("BEGIN IMMEDIATE", &self.name), |c| work(c)),
        }
    }
}

/// `work` in a transaction begun with `begin`. Unlike Diesel's `transaction`, a rollback that fails after
/// `work` failed does not replace `work`'s error: SQLite rolls a transaction back by itself on a full disk or
/// an I/O error, and the error that says so ("database or disk is full") is the one to report, not "cannot
/// rollback - no transaction is active".
pub(super) fn in_transaction<C, R>(
    c: &mut C,
    (begin, name): (&str, &str),
    work: impl FnOnce(&mut C) -> anyhow::Result<R>,
) -> anyhow::Result<R>
where
    C: diesel::Connection<TransactionManager = diesel::connection::AnsiTransactionManager>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    AnsiTransactionManager::begin_transaction_sql(c, begin)
        .with_context(|| format!("beginning a transaction on {name}"))?;
    match work(c) {
        Ok(r) => {
            AnsiTransactionManager::commit_transaction(c)
                .with_context(|| format!("committing the transaction to {name}"))?;
            Ok(r)
        }
        Err(e) => {
            if let Err(rollback) = AnsiTransactionManager::rollback_transaction(c) {
                tracing::debug!(error = %rollback, "the rollback after a failure failed (the database had rolled back already)");
            }
            Err(e)
        }
    }
}
