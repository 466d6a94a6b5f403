//! The PostgreSQL databases of the bench (on 127.0.0.1:5432 as `postgres`, created again by every run)
//! and the psql calls that are not measured: set-up, changes to the source, counts.

use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use chrono::NaiveDateTime;

pub const PG_HOST: &str = "127.0.0.1";
pub const PG_PORT: &str = "5432";
pub const PG_USER: &str = "postgres";
/// The generated source (dropped and created by each run).
pub const SRC_DB: &str = "acdsync_bench_src";
/// A copy of the freshly generated source for the incremental section.
pub const INC_DB: &str = "acdsync_bench_inc";
/// The PostgreSQL WFM store.
pub const WFM_DB: &str = "acdsync_bench_wfm";
/// Where the `\copy ... from` floor loads its CSV.
pub const SCRATCH_DB: &str = "acdsync_bench_scratch";

pub fn psql_cmd(db: &str) -> Command {
    let mut c = Command::new("psql");
    c.args([
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        PG_HOST,
        "-p",
        PG_PORT,
        "-U",
        PG_USER,
        "-d",
        db,
    ])
    .env("PGCONNECT_TIMEOUT", "10")
    .env_remove("PGPASSWORD")
    .env_remove("PGOPTIONS");
    c
}

/// Runs SQL (one or more statements) in `db` and returns what it printed (unaligned, tuples only).
pub fn psql(db: &str, sql: &str) -> anyhow::Result<String> {
    use std::io::Write;
    let mut c = psql_cmd(db);
    c.args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().context("cannot run psql (postgresql-client)")?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(sql.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        let first = sql.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        bail!(
            "psql -d {db} failed ({}): {}\nSQL starting with: {first}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn psql_i64(db: &str, sql: &str) -> anyhow::Result<i64> {
    let out = psql(db, sql)?;
    let last = out.lines().last().unwrap_or("").trim();
    last.parse()
        .with_context(|| format!("expected a number from psql, got {out:?}"))
}

pub fn recreate_database(db: &str, template: Option<&str>) -> anyhow::Result<()> {
    psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE);"),
    )?;
    match template {
        Some(t) => psql(
            "postgres",
            &format!("CREATE DATABASE {db} TEMPLATE {t} ENCODING 'UTF8';"),
        )?,
        None => psql(
            "postgres",
            &format!("CREATE DATABASE {db} ENCODING 'UTF8';"),
        )?,
    };
    Ok(())
}

pub fn odbc_connection_string(db: &str) -> String {
    format!(
        "Driver={{PostgreSQL Unicode}};Server={PG_HOST};Port={PG_PORT};Uid={PG_USER};Database={db};UseDeclareFetch=1;Fetch=10000;"
    )
}

pub fn ts(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}
