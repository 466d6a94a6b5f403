//! acdsync: imports contact-centre agents' sessions and activity codes from an ACD reporting database
//! (over ODBC) into a WFM database (PostgreSQL or SQLite, through Diesel).
//!
//! config -> source (ODBC, SQL file, bulk fetch) -> sessions (rules, local time -> UTC) -> sync (merge with
//! the stored window) -> store (Diesel) -> import_runs.

pub mod admin;
pub mod check;
pub mod cli;
pub mod config;
pub mod demo;
pub mod error;
pub mod events;
pub mod failpoint;
pub mod metrics;
pub mod report;
pub mod retry;
pub mod secrets;
pub mod sessions;
pub mod source;
pub mod stop;
pub mod store;
pub mod sync;
pub mod window;
