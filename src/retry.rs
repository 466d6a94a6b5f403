//! Connecting again: a database restarting, a failover, a network that drops for a moment should not cost a
//! run. Connecting to the WFM database and to each source is tried `attempts` times, the delay doubling from
//! `delay` (at most a minute), when the error says the server could not be reached; an error that another
//! attempt cannot cure (a wrong password, a missing driver, a database that does not exist) fails at once.
//! Each retry is logged. SIGTERM or SIGINT stops retrying.

use std::time::Duration;

/// How often, and after how long, a connection is tried again (`connect_retries`, `connect_retry_delay`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Tries in all (1: no retry).
    pub attempts: u32,
    pub delay: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            attempts: 3,
            delay: Duration::from_secs(1),
        }
    }
}

/// Runs `connect` until it succeeds, fails with an error `transient` does not accept, or has been tried
/// `retry.attempts` times; `what` names the server in the log.
pub fn connecting<T, E: std::fmt::Display>(
    what: &str,
    retry: Retry,
    mut connect: impl FnMut() -> Result<T, E>,
    transient: impl Fn(&E) -> bool,
) -> Result<T, E> {
    let mut delay = retry.delay;
    let mut attempt = 1;
    loop {
        match connect() {
            Err(e)
                if attempt < retry.attempts
                    && transient(&e)
                    && crate::stop::requested().is_none() =>
            {
                let error = crate::secrets::redact(&e.to_string());
                let retry_in = humantime::format_duration(delay).to_string();
                tracing::warn!(server = what, attempt, attempts = retry.attempts, %retry_in, %error, "could not connect; trying again");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(60));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Whether a PostgreSQL connection error says the server could not be reached (worth another try).
pub fn postgres_unreachable(message: &str) -> bool {
    [
        "Connection refused",
        "could not connect",
        "timeout expired",
        "the database system is starting up",
        "the database system is shutting down",
        "the database system is in recovery mode",
        "No route to host",
        "Network is unreachable",
        "could not translate host name",
        "server closed the connection unexpectedly",
        "too many clients",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// Whether an ODBC connection error says the server could not be reached: SQLSTATE 08001 (unable to
/// establish), 08S01 (link failure), HYT00/HYT01 (timeout), or the MySQL client's 2002, 2003, 2013.
pub fn odbc_unreachable(error: &odbc_api::Error) -> bool {
    match error {
        odbc_api::Error::Diagnostics { record, .. } => {
            let state = record.state.as_str();
            matches!(state, "08001" | "08S01" | "HYT00" | "HYT01")
                || matches!(record.native_error, 2002 | 2003 | 2013)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transient_failure_is_tried_again_and_a_lasting_one_is_not() {
        let retry = Retry {
            attempts: 3,
            delay: Duration::from_millis(1),
        };
        let mut tries = 0;
        let r: Result<(), String> = connecting(
            "x",
            retry,
            || {
                tries += 1;
                Err("Connection refused".into())
            },
            |e: &String| postgres_unreachable(e),
        );
        assert!(r.is_err());
        assert_eq!(tries, 3, "tried `attempts` times");
        let mut tries = 0;
        let r: Result<u8, String> = connecting(
            "x",
            retry,
            || {
                tries += 1;
                if tries < 2 {
                    Err("the database system is starting up".into())
                } else {
                    Ok(7)
                }
            },
            |e: &String| postgres_unreachable(e),
        );
        assert_eq!((r, tries), (Ok(7), 2));
        let mut tries = 0;
        let _: Result<(), String> = connecting(
            "x",
            retry,
            || {
                tries += 1;
                Err("password authentication failed for user \"x\"".into())
            },
            |e: &String| postgres_unreachable(e),
        );
        assert_eq!(tries, 1, "a wrong password is not tried again");
    }
}
