//! The mass-delete guard: a full sync deletes what the source no longer returns, which is right when the
//! source corrects itself and a disaster when it is wrong (a reporting replica hours behind, a query
//! edited by hand that now filters everything out, a view empty during the ACD's nightly maintenance). Before
//! its transaction commits, a full sync that would delete more than the system's `mass_delete_share` of
//! the window's stored sessions (when they are `mass_delete_min_sessions` or more), or that read nothing
//! for a window holding stored sessions, is refused: it rolls back, its run is recorded `refused` with the
//! numbers, and the process exits 66. `--allow-mass-delete` or `allow_mass_delete = true` lets it through,
//! and its run row says what it let through (`mass_delete_override`). Changes runs never delete.

use crate::config::{DeleteGuard, ExternalSystemConfig};
use crate::error::Failure;
use crate::window::Days;

#[derive(Debug)]
pub enum Verdict {
    Pass,
    /// It would have refused; the override let it through. What it let through, for the run row.
    Overridden(String),
    Refused(Failure),
}

fn days(d: Days) -> String {
    if d.first == d.last {
        d.first.to_string()
    } else {
        format!("{} to {}", d.first, d.last)
    }
}

/// A number with thousands separators, as an operator reads it.
fn n(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The verdict on a full sync of `window` that read `read` rows and would delete `deleted` of the `stored`
/// sessions of the window.
pub fn judge(
    system: &ExternalSystemConfig,
    window: Days,
    read: u64,
    stored: u64,
    deleted: u64,
) -> Verdict {
    let DeleteGuard {
        share,
        min_sessions,
        allowed,
    } = system.delete_guard;
    let what = if deleted > 0 && read == 0 {
        format!(
            "the source returned no row for {}, which holds {} stored session(s): this sync would delete them all",
            days(window),
            n(stored)
        )
    } else if stored >= min_sessions && deleted as f64 > share * stored as f64 {
        format!(
            "this sync would delete {} of the {} sessions stored for {} (more than mass_delete_share = {share} of them; the source returned {} row(s))",
            n(deleted),
            n(stored),
            days(window),
            n(read)
        )
    } else {
        return Verdict::Pass;
    };
    if allowed {
        return Verdict::Overridden(format!("allowed: {what}"));
    }
    Verdict::Refused(Failure::MassDelete(format!(
        "system {:?}: refused: {what}; nothing was written. Check the source (a reporting replica behind, an edited query, maintenance on the ACD); if these deletions are right, run again with --allow-mass-delete (or allow_mass_delete = true for the system)",
        system.name
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::query::{SourceQuery, WindowParameters};

    fn system(allowed: bool) -> ExternalSystemConfig {
        let query = SourceQuery::parse(
            std::path::Path::new("q.sql"),
            crate::demo::GENERIC_SESSIONS_SQL,
            crate::source::query::QueryKind::Window,
        )
        .unwrap();
        let mut s = ExternalSystemConfig::new(
            "paris",
            "Europe/Paris",
            query,
            "DSN=x",
            WindowParameters::Literal,
        )
        .unwrap();
        s.delete_guard.allowed = allowed;
        s
    }

    fn day() -> Days {
        Days::one(chrono::NaiveDate::from_ymd_opt(2026, 1, 15).unwrap())
    }

    #[test]
    fn more_than_half_of_twenty_or_more_is_refused_with_the_numbers() {
        match judge(&system(false), day(), 208, 15_020, 14_812) {
            Verdict::Refused(Failure::MassDelete(m)) => assert!(
                m.contains("would delete 14,812 of the 15,020 sessions stored for 2026-01-15")
                    && m.contains("--allow-mass-delete"),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            judge(&system(false), day(), 100, 20, 10),
            Verdict::Pass
        ));
        assert!(matches!(
            judge(&system(false), day(), 100, 20, 11),
            Verdict::Refused(_)
        ));
        // Under 20 stored sessions, any share passes (unless the source is empty).
        assert!(matches!(
            judge(&system(false), day(), 1, 19, 18),
            Verdict::Pass
        ));
    }

    #[test]
    fn an_empty_source_for_a_window_with_sessions_is_refused() {
        assert!(matches!(
            judge(&system(false), day(), 0, 3, 3),
            Verdict::Refused(_)
        ));
        assert!(matches!(
            judge(&system(false), day(), 0, 0, 0),
            Verdict::Pass
        ));
    }

    #[test]
    fn the_override_lets_it_through_and_says_what() {
        match judge(&system(true), day(), 0, 3, 3) {
            Verdict::Overridden(m) => {
                assert!(m.starts_with("allowed: the source returned no row"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }
}
