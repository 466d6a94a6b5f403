//! Mapping administration without SQL: activities, employees, which activity a code belongs to, which
//! employee owns an agent ID when, what waits for a mapping, and a system's whole mapping as CSV. Every
//! change is one transaction; the rules are the database's (`docs/dba.md`), which refuses what they forbid
//! even to a DBA's plain SQL: these commands check first, to say it in the admin's words (exit 65).
//!
//! Names (activities, employees) are trimmed of surrounding spaces; inner spaces are kept. Activity names
//! are unique ignoring case (`Break` and ` break ` are one name). An argument naming an activity matches
//! its name exactly, else ignoring case; one naming an employee matches an `external_ref` exactly, else a
//! name exactly, else a name ignoring case, and must match one employee only.

mod args;
pub mod listing;
mod mapping_csv;
mod names;
pub mod ownership;

use anyhow::Context;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;

use crate::error::Failure;
use crate::sessions::{local_to_utc, Fold};
use crate::store::admin::AdminOps;
use crate::store::Store;
pub use args::*;
use listing::{Cell, Format, Listing};
use names::{activity_id, clean_name, employee, refused, system, Employee};

/// Local midnight starting `day` in `tz`, as a UTC instant (as a sync's window starts).
pub fn midnight(tz: Tz, day: NaiveDate) -> NaiveDateTime {
    local_to_utc(tz, day.and_time(NaiveTime::MIN), Fold::First)
}

/// A UTC instant as local time of `tz`, RFC 3339 with its offset.
pub fn local(tz: Tz, t: NaiveDateTime) -> String {
    tz.from_utc_datetime(&t)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

pub fn activity(store: &mut Store, command: &ActivityCommand) -> anyhow::Result<String> {
    match command {
        ActivityCommand::List { format } => store.admin(|ops| {
            let codes = ops.codes_per_activity()?;
            let rows = ops
                .activities()?
                .into_iter()
                .map(|(id, name)| {
                    let n = codes.iter().find(|(a, _)| *a == id).map_or(0, |c| c.1);
                    vec![Cell::Int(id), Cell::Text(name), Cell::Int(n)]
                })
                .collect();
            listing::render(
                &[Listing {
                    name: "activities",
                    columns: vec!["id", "name", "codes"],
                    rows,
                }],
                *format,
            )
        }),
        ActivityCommand::Add { name } => {
            let name = clean_name("activity", name)?;
            store.admin(|ops| {
                let all = ops.activities()?;
                if let Some((id, existing)) = all
                    .iter()
                    .find(|(_, n)| n.to_lowercase() == name.to_lowercase())
                {
                    return Err(refused(format!(
                        "activity {existing:?} (id {id}) exists already: activity names are unique ignoring case"
                    )));
                }
                let id = ops.add_activity(&name)?;
                Ok(format!("activity {name:?} added (id {id})\n"))
            })
        }
        ActivityCommand::Rename { old, new } => {
            let new = clean_name("activity", new)?;
            store.admin(|ops| {
                let (id, was) = activity_id(ops, old)?;
                if id == crate::store::ops::PRESENT_ACTIVITY_ID {
                    return Err(refused(
                        "activity 1 (Present) is the system activity new codes are assigned to: it cannot be renamed".into(),
                    ));
                }
                let all = ops.activities()?;
                if let Some((other, existing)) = all
                    .iter()
                    .find(|(i, n)| *i != id && n.to_lowercase() == new.to_lowercase())
                {
                    return Err(refused(format!(
                        "activity {existing:?} (id {other}) exists already: activity names are unique ignoring case"
                    )));
                }
                ops.rename_activity(id, &new)?;
                Ok(format!("activity {was:?} (id {id}) renamed {new:?}\n"))
            })
        }
    }
}

pub fn employee_command(store: &mut Store, command: &EmployeeCommand) -> anyhow::Result<String> {
    match command {
        EmployeeCommand::List { format } => store.admin(|ops| {
            let ids = ops.ids_per_employee()?;
            let rows = ops
                .employees()?
                .into_iter()
                .map(|(id, name, r)| {
                    let n = ids.iter().find(|(e, _)| *e == id).map_or(0, |c| c.1);
                    vec![Cell::Int(id), Cell::Text(name), Cell::from(r), Cell::Int(n)]
                })
                .collect();
            listing::render(
                &[Listing {
                    name: "employees",
                    columns: vec!["id", "name", "external_ref", "agent_ids"],
                    rows,
                }],
                *format,
            )
        }),
        EmployeeCommand::Add { name, external_ref } => {
            let name = clean_name("employee", name)?;
            let external_ref = external_ref
                .as_deref()
                .map(|r| clean_name("external_ref", r))
                .transpose()?;
            store.admin(|ops| {
                if let Some(r) = &external_ref {
                    if let Some(e) = ops.employees()?.iter().find(|e| e.2.as_ref() == Some(r)) {
                        return Err(refused(format!(
                            "external_ref {r:?} is employee {:?} (id {}) already: references are unique",
                            e.1, e.0
                        )));
                    }
                }
                let id = ops.add_employee(&name, external_ref.as_deref())?;
                Ok(format!("employee {name:?} added (id {id})\n"))
            })
        }
    }
}

pub fn map(
    store: &mut Store,
    command: &MapCommand,
    configured: impl Fn(&str) -> Option<(String, Tz)>,
) -> anyhow::Result<String> {
    match command {
        MapCommand::Code {
            system: s,
            code,
            activity,
        } => {
            if code.is_empty() || code.contains('\0') {
                return Err(Failure::Usage("the code is empty or holds a NUL byte".into()).into());
            }
            store.admin(|ops| {
                let (system_id, system_name, _) = system(ops, s, configured(s))?;
                let (activity_id, activity_name) = activity_id(ops, activity)?;
                let names = ops.activities()?;
                let before = ops.codes(system_id)?.into_iter().find(|c| &c.1 == code);
                ops.map_code(system_id, code, activity_id, crate::sync::now())?;
                let was = match before {
                    None => "a code not seen yet: mapped ahead of its first import".to_owned(),
                    Some((_, _, a)) if a == activity_id => "it was there already".to_owned(),
                    Some((_, _, a)) => format!(
                        "moved from {:?}",
                        names
                            .iter()
                            .find(|n| n.0 == a)
                            .map_or("?", |n| n.1.as_str())
                    ),
                };
                Ok(format!(
                    "system {system_name:?}: code {code:?} is activity {activity_name:?} ({was})\n"
                ))
            })
        }
        MapCommand::Agent {
            system: s,
            external_id,
            employee: wanted,
            from,
        } => store.admin(|ops| {
            let (system_id, name, tz) = system(ops, s, configured(s))?;
            let who = employee(ops, wanted)?;
            hand_on(ops, (system_id, &name, tz), external_id, Some(who), *from)
        }),
    }
}

pub fn unmap(
    store: &mut Store,
    command: &UnmapCommand,
    configured: impl Fn(&str) -> Option<(String, Tz)>,
) -> anyhow::Result<String> {
    let UnmapCommand::Agent {
        system: s,
        external_id,
        from,
    } = command;
    store.admin(|ops| {
        let (system_id, name, tz) = system(ops, s, configured(s))?;
        hand_on(ops, (system_id, &name, tz), external_id, None, *from)
    })
}

/// `map agent` and `unmap agent`: the steps of `ownership::hand_on`, and the ID's history after them.
fn hand_on(
    ops: &mut dyn AdminOps,
    (system_id, system_name, tz): (i64, &str, Tz),
    external_id: &str,
    who: Option<Employee>,
    from: Option<NaiveDate>,
) -> anyhow::Result<String> {
    if external_id.is_empty() || external_id.contains('\0') {
        return Err(Failure::Usage("the agent ID is empty or holds a NUL byte".into()).into());
    }
    let agent = match ops
        .agents(system_id)?
        .into_iter()
        .find(|a| a.1 == external_id)
    {
        Some((id, _)) => id,
        None if who.is_some() => ops.add_agent(system_id, external_id)?,
        None => {
            return Err(refused(format!(
                "system {system_name:?} has no agent ID {external_id:?}"
            )))
        }
    };
    let periods: Vec<_> = ops
        .owners(system_id)?
        .into_iter()
        .filter(|p| p.external_agent_id == agent)
        .collect();
    let at = from.map(|d| midnight(tz, d));
    let steps = ownership::hand_on(&periods, who.as_ref().map(|e| e.0), at);
    for step in &steps {
        match *step {
            ownership::Step::Delete(id) => ops.delete_owner(id)?,
            ownership::Step::End(id, to) => ops.end_owner(id, to)?,
            ownership::Step::Insert { employee, from } => {
                ops.insert_owner(agent, employee, from, None)?;
                1
            }
        };
    }
    let employees = ops.employees()?;
    let name_of = |id: i64| {
        employees
            .iter()
            .find(|e| e.0 == id)
            .map_or_else(|| format!("employee {id}"), |e| format!("{:?}", e.1))
    };
    let history: Vec<String> = ownership::after(&periods, &steps)
        .into_iter()
        .map(|(e, f, t)| {
            let f = f.map_or("the beginning".to_owned(), |f| local(tz, f));
            let t = t.map_or("on".to_owned(), |t| format!("until {}", local(tz, t)));
            format!("{} from {f} {t}", name_of(e))
        })
        .collect();
    let change = if steps.is_empty() { "unchanged" } else { "now" };
    Ok(format!(
        "system {system_name:?}: agent ID {external_id:?} {change}: {}\n",
        if history.is_empty() {
            "no owner".to_owned()
        } else {
            history.join("; ")
        }
    ))
}

/// `acdsync unmapped`: agent IDs with sessions no employee owns, and codes still on Present.
pub fn unmapped(store: &mut Store, wanted: Option<&str>, format: Format) -> anyhow::Result<String> {
    store.admin(|ops| {
        let systems = ops.systems()?;
        let filter = match wanted {
            Some(name) => Some(system(ops, name, None)?.0),
            None => None,
        };
        let zone = |id: i64| {
            systems
                .iter()
                .find(|s| s.0 == id)
                .map(|s| (s.1.clone(), s.2.parse::<Tz>().unwrap_or(chrono_tz::UTC)))
                .unwrap_or_else(|| (id.to_string(), chrono_tz::UTC))
        };
        let rows = |waiting: Vec<crate::store::admin::WaitingRow>| -> Vec<Vec<Cell>> {
            waiting
                .into_iter()
                .map(|w| {
                    let (system, tz) = zone(w.system_id);
                    vec![
                        Cell::Text(system),
                        Cell::Text(w.name),
                        Cell::from(w.first_seen.map(|t| local(tz, t))),
                        Cell::from(w.last_seen.map(|t| local(tz, t))),
                        Cell::Int(w.sessions),
                        Cell::Hours(w.seconds.unwrap_or(0.0) / 3600.0),
                    ]
                })
                .collect()
        };
        let columns = |name| {
            vec![
                "system",
                name,
                "first_seen",
                "last_seen",
                "sessions",
                "hours",
            ]
        };
        let agents = rows(ops.unmapped_agents(filter)?);
        let codes = rows(ops.codes_on_present(filter)?);
        listing::render(
            &[
                Listing {
                    name: "agent_ids",
                    columns: columns("agent_id"),
                    rows: agents,
                },
                Listing {
                    name: "codes_on_present",
                    columns: columns("code"),
                    rows: codes,
                },
            ],
            format,
        )
    })
}

pub fn mappings(
    store: &mut Store,
    command: &MappingsCommand,
    configured: impl Fn(&str) -> Option<(String, Tz)>,
) -> anyhow::Result<String> {
    match command {
        MappingsCommand::Export { system: s, .. } => store.admin(|ops| {
            let system = system(ops, s, configured(s))?;
            mapping_csv::export(ops, (system.0, system.2))
        }),
        MappingsCommand::Import {
            system: s, file, ..
        } => {
            let bytes =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let name = file.display().to_string();
            store.admin(|ops| {
                let system = system(ops, s, configured(s))?;
                mapping_csv::import(ops, (system.0, &system.1, system.2), &name, &bytes)
            })
        }
    }
}
