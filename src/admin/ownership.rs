//! Dated ownership of an agent ID: who owns it when (`agent_id_owners`: periods [from, to), open bounds
//! `None`), and what `map agent` / `unmap agent` change. The database refuses two owners at one instant;
//! this plans the statements in an order it accepts at each step (deletes, then cuts, then the new period).

use chrono::NaiveDateTime;

use crate::store::admin::OwnerRow;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Delete(i64),
    /// Sets the end of a period (`None`: open-ended).
    End(i64, Option<NaiveDateTime>),
    Insert {
        employee: i64,
        from: Option<NaiveDateTime>,
    },
}

/// The steps that make `employee` (or nobody) own the ID from `from` on (`None`: from the beginning, as a
/// mapping without a date always did), given its `periods`. Periods before `from` keep their owner; one
/// running across `from` ends there; periods after it go. The new owner's period is open-ended, and joins
/// the period before it when that one is the same employee's.
pub fn hand_on(
    periods: &[OwnerRow],
    employee: Option<i64>,
    from: Option<NaiveDateTime>,
) -> Vec<Step> {
    // The same owner from the same instant already: its period goes on, open-ended, and the later ones go.
    if let Some(kept) = periods
        .iter()
        .find(|p| Some(p.employee_id) == employee && p.valid_from == from)
    {
        let mut steps: Vec<Step> = periods
            .iter()
            .filter(|p| p.id != kept.id && p.valid_from >= from && p.valid_from.is_some())
            .map(|p| Step::Delete(p.id))
            .collect();
        if kept.valid_to.is_some() {
            steps.push(Step::End(kept.id, None));
        }
        return steps;
    }
    let mut deletes = Vec::new();
    let mut ends = Vec::new();
    let mut joined = false;
    for p in periods {
        let starts_after = match (from, p.valid_from) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(t), Some(f)) => f >= t,
        };
        if starts_after {
            deletes.push(Step::Delete(p.id));
            continue;
        }
        let t = from.expect("a period starting before `from` means there is one");
        let runs_across = p.valid_to.is_none_or(|to| to > t);
        let same = employee == Some(p.employee_id);
        if same && (runs_across || p.valid_to == Some(t)) {
            // The same owner goes on: its period becomes open-ended (the later ones are deleted first).
            if p.valid_to.is_some() {
                ends.push(Step::End(p.id, None));
            }
            joined = true;
        } else if runs_across {
            ends.push(Step::End(p.id, Some(t)));
        }
    }
    // Cuts before the extension of a period: at no step do two periods overlap.
    ends.sort_by_key(|s| matches!(s, Step::End(_, None)));
    let mut steps = deletes;
    steps.extend(ends);
    if let (Some(employee), false) = (employee, joined) {
        steps.push(Step::Insert { employee, from });
    }
    steps
}

/// The periods `hand_on` leaves (for messages and tests).
pub fn after(
    periods: &[OwnerRow],
    steps: &[Step],
) -> Vec<(i64, Option<NaiveDateTime>, Option<NaiveDateTime>)> {
    let mut left: Vec<(i64, Option<NaiveDateTime>, Option<NaiveDateTime>)> = Vec::new();
    for p in periods {
        if steps.contains(&Step::Delete(p.id)) {
            continue;
        }
        let to = steps
            .iter()
            .find_map(|s| match s {
                Step::End(id, to) if *id == p.id => Some(*to),
                _ => None,
            })
            .unwrap_or(p.valid_to);
        left.push((p.employee_id, p.valid_from, to));
    }
    for s in steps {
        if let Step::Insert { employee, from } = s {
            left.push((*employee, *from, None));
        }
    }
    left.sort_by_key(|(_, from, _)| *from);
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn p(id: i64, employee: i64, from: Option<&str>, to: Option<&str>) -> OwnerRow {
        OwnerRow {
            id,
            external_agent_id: 7,
            employee_id: employee,
            valid_from: from.map(t),
            valid_to: to.map(t),
        }
    }

    /// The periods as (employee, from, to) text.
    fn history(
        periods: &[OwnerRow],
        employee: Option<i64>,
        from: Option<&str>,
    ) -> Vec<(i64, Option<String>, Option<String>)> {
        let steps = hand_on(periods, employee, from.map(t));
        after(periods, &steps)
            .into_iter()
            .map(|(e, f, to)| (e, f.map(|x| x.to_string()), to.map(|x| x.to_string())))
            .collect()
    }

    fn h(e: i64, from: Option<&str>, to: Option<&str>) -> (i64, Option<String>, Option<String>) {
        (
            e,
            from.map(|s| t(s).to_string()),
            to.map(|s| t(s).to_string()),
        )
    }

    #[test]
    fn a_mapping_without_a_date_owns_the_id_from_the_beginning() {
        let periods = [
            p(1, 10, None, Some("2026-03-01 00:00")),
            p(2, 11, Some("2026-03-01 00:00"), None),
        ];
        assert_eq!(history(&periods, Some(12), None), [h(12, None, None)]);
        assert_eq!(history(&periods, None, None), []);
    }

    #[test]
    fn a_hand_on_ends_the_current_owner_at_the_date_and_starts_the_new_one() {
        let periods = [p(1, 10, None, None)];
        assert_eq!(
            history(&periods, Some(11), Some("2026-03-01 00:00")),
            [
                h(10, None, Some("2026-03-01 00:00")),
                h(11, Some("2026-03-01 00:00"), None)
            ]
        );
        // The cut comes before the insert: the database never sees two owners at one instant.
        assert_eq!(
            hand_on(&periods, Some(11), Some(t("2026-03-01 00:00"))),
            [
                Step::End(1, Some(t("2026-03-01 00:00"))),
                Step::Insert {
                    employee: 11,
                    from: Some(t("2026-03-01 00:00"))
                }
            ]
        );
    }

    #[test]
    fn a_hand_on_before_later_periods_replaces_them() {
        let periods = [
            p(1, 10, None, Some("2026-03-01 00:00")),
            p(2, 11, Some("2026-03-01 00:00"), None),
        ];
        assert_eq!(
            history(&periods, Some(12), Some("2026-02-01 00:00")),
            [
                h(10, None, Some("2026-02-01 00:00")),
                h(12, Some("2026-02-01 00:00"), None)
            ]
        );
    }

    #[test]
    fn the_same_owner_again_joins_its_period_and_a_repeat_changes_nothing() {
        let periods = [
            p(1, 10, None, Some("2026-03-01 00:00")),
            p(2, 11, Some("2026-03-01 00:00"), None),
        ];
        assert_eq!(
            history(&periods, Some(10), Some("2026-03-01 00:00")),
            [h(10, None, None)]
        );
        assert_eq!(hand_on(&periods, Some(11), Some(t("2026-03-01 00:00"))), []);
        assert_eq!(hand_on(&periods, Some(11), Some(t("2026-04-01 00:00"))), []);
    }

    #[test]
    fn an_unmap_from_a_date_ends_the_ownership_there() {
        let periods = [p(1, 10, None, None)];
        assert_eq!(
            history(&periods, None, Some("2026-03-01 00:00")),
            [h(10, None, Some("2026-03-01 00:00"))]
        );
        assert_eq!(history(&[], None, Some("2026-03-01 00:00")), []);
    }
}
