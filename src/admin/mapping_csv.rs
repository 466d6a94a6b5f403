//! A system's whole mapping as CSV, and back (`acdsync mappings export|import`).
//!
//! One header, then one line per code (`code,CODE,ACTIVITY,,,,`), then one per ownership period of each
//! agent ID (`agent,ID,,EMPLOYEE,EMPLOYEE_REF,FROM,TO`; an ID without owner has one line with the three
//! empty). Codes and IDs are in byte order of their text, periods in time order, so that export, import,
//! export gives the same bytes. FROM and TO are a day (local midnight in the system's zone, as `map agent
//! --from`) or an RFC 3339 instant with its offset; empty means from the beginning, or on.
//!
//! An import sets the mapping of every code and agent ID the file names (codes and IDs it does not name
//! are left as they are; unknown ones are mapped ahead of their first import), in one transaction, or
//! nothing at all: the file is checked whole first, and every line at fault is named.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use chrono_tz::Tz;

use super::names::{find_named, refused, resolve_employee, Employee};
use super::{local, midnight};
use crate::store::admin::AdminOps;

const HEADER: [&str; 7] = [
    "kind",
    "external_id",
    "activity",
    "employee",
    "employee_ref",
    "from",
    "to",
];

/// At most this many faults are listed.
const MAX_FAULTS: usize = 20;

/// A period bound as written: a day when it is local midnight, else an instant with its offset.
fn bound_text(tz: Tz, t: Option<NaiveDateTime>) -> String {
    let Some(t) = t else {
        return String::new();
    };
    let day = chrono::TimeZone::from_utc_datetime(&tz, &t).date_naive();
    if midnight(tz, day) == t {
        day.to_string()
    } else {
        local(tz, t)
    }
}

fn parse_bound(tz: Tz, text: &str) -> Result<Option<NaiveDateTime>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        crate::cli::parse_day(text)?;
        return Ok(Some(midnight(tz, day)));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| Some(t.naive_utc()))
        .map_err(|e| {
            format!("{text:?} is neither a day (YYYY-MM-DD) nor an RFC 3339 instant ({e})")
        })
}

type Period = (i64, Option<NaiveDateTime>, Option<NaiveDateTime>);

pub fn export(ops: &mut dyn AdminOps, (system_id, tz): (i64, Tz)) -> anyhow::Result<String> {
    let activities = ops.activities()?;
    let employees = ops.employees()?;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HEADER)?;
    let mut codes = ops.codes(system_id)?;
    codes.sort_by(|a, b| a.1.as_bytes().cmp(b.1.as_bytes()));
    for (_, code, activity) in codes {
        let name = activities
            .iter()
            .find(|a| a.0 == activity)
            .map_or(String::new(), |a| a.1.clone());
        w.write_record(["code", &code, &name, "", "", "", ""])?;
    }
    let owners = ops.owners(system_id)?;
    let mut agents = ops.agents(system_id)?;
    agents.sort_by(|a, b| a.1.as_bytes().cmp(b.1.as_bytes()));
    for (id, external_id) in agents {
        let mut periods: Vec<_> = owners
            .iter()
            .filter(|p| p.external_agent_id == id)
            .collect();
        periods.sort_by_key(|p| p.valid_from);
        if periods.is_empty() {
            w.write_record(["agent", &external_id, "", "", "", "", ""])?;
        }
        for p in periods {
            let (name, r) = employees
                .iter()
                .find(|e| e.0 == p.employee_id)
                .map_or((String::new(), None), |e| (e.1.clone(), e.2.clone()));
            w.write_record([
                "agent",
                &external_id,
                "",
                &name,
                r.as_deref().unwrap_or(""),
                &bound_text(tz, p.valid_from),
                &bound_text(tz, p.valid_to),
            ])?;
        }
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// What the file says, checked: each code's activity, each ID's periods (empty: no owner).
#[derive(Default)]
struct Wanted {
    codes: BTreeMap<String, (u64, i64)>,
    agents: BTreeMap<String, Vec<(u64, Option<Period>)>>,
}

fn read(
    bytes: &[u8],
    tz: Tz,
    activities: &[(i64, String)],
    employees: &[Employee],
) -> Result<Wanted, Vec<String>> {
    let mut faults = Vec::new();
    let mut wanted = Wanted::default();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes);
    let mut records = reader.records();
    match records.next() {
        Some(Ok(h)) if h.iter().eq(HEADER) => {}
        Some(Ok(h)) => faults.push(format!(
            "line 1: the header is {:?}; it must be {}",
            h.iter().collect::<Vec<_>>().join(","),
            HEADER.join(",")
        )),
        Some(Err(e)) => faults.push(format!("line 1: {e}")),
        None => faults.push("the file is empty: it must start with the header".into()),
    }
    for record in records {
        if faults.len() >= MAX_FAULTS {
            break;
        }
        let r = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                faults.push(format!(
                    "line {line}: not a CSV line of 7 fields in UTF-8 ({e})"
                ));
                continue;
            }
        };
        let line = r.position().map_or(0, |p| p.line());
        let field = |i: usize| r.get(i).unwrap_or("");
        let (kind, id, activity, employee, eref, from, to) = (
            field(0),
            field(1),
            field(2),
            field(3),
            field(4),
            field(5),
            field(6),
        );
        let mut fault = |why: String| faults.push(format!("line {line}: {why}"));
        if id.is_empty() || id.contains('\0') {
            fault("external_id is empty or holds a NUL byte".into());
            continue;
        }
        match kind {
            "code" => {
                if !(employee.is_empty() && eref.is_empty() && from.is_empty() && to.is_empty()) {
                    fault(format!("code {id:?}: employee, employee_ref, from and to must be empty on a code line"));
                    continue;
                }
                let activity_id = match find_named(activities, activity) {
                    Ok(a) => a.0,
                    Err(0) => {
                        fault(format!(
                            "code {id:?}: there is no activity named {activity:?}"
                        ));
                        continue;
                    }
                    Err(n) => {
                        fault(format!(
                            "code {id:?}: {n} activities are named {activity:?} ignoring case"
                        ));
                        continue;
                    }
                };
                if let Some((first, _)) = wanted.codes.get(id) {
                    fault(format!("code {id:?} is given an activity on line {first} already: a code belongs to one activity"));
                    continue;
                }
                wanted.codes.insert(id.to_owned(), (line, activity_id));
            }
            "agent" => {
                if !activity.is_empty() {
                    fault(format!(
                        "agent ID {id:?}: activity must be empty on an agent line"
                    ));
                    continue;
                }
                let period = if employee.trim().is_empty() && eref.trim().is_empty() {
                    if !(from.is_empty() && to.is_empty()) {
                        fault(format!(
                            "agent ID {id:?}: a line without employee (no owner) has no from or to"
                        ));
                        continue;
                    }
                    None
                } else {
                    let who = match resolve_employee(employees, employee, Some(eref)) {
                        Ok(e) => e.0,
                        Err(why) => {
                            fault(format!("agent ID {id:?}: {why}"));
                            continue;
                        }
                    };
                    let (f, t) = match (parse_bound(tz, from), parse_bound(tz, to)) {
                        (Ok(f), Ok(t)) => (f, t),
                        (Err(why), _) => {
                            fault(format!("agent ID {id:?}: from: {why}"));
                            continue;
                        }
                        (_, Err(why)) => {
                            fault(format!("agent ID {id:?}: to: {why}"));
                            continue;
                        }
                    };
                    if let (Some(f), Some(t)) = (f, t) {
                        if f >= t {
                            fault(format!("agent ID {id:?}: from must be before to"));
                            continue;
                        }
                    }
                    Some((who, f, t))
                };
                wanted
                    .agents
                    .entry(id.to_owned())
                    .or_default()
                    .push((line, period));
            }
            other => fault(format!("kind is {other:?}; it must be code or agent")),
        }
    }
    for (id, lines) in &mut wanted.agents {
        if lines.len() > 1 {
            if let Some((line, _)) = lines.iter().find(|(_, p)| p.is_none()) {
                faults.push(format!(
                    "line {line}: agent ID {id:?} has no owner on this line and owners on others"
                ));
                continue;
            }
        }
        lines.sort_by_key(|(_, p)| p.map(|p| p.1));
        for pair in lines.windows(2) {
            let (Some(a), Some(b)) = (pair[0].1, pair[1].1) else {
                continue;
            };
            let overlaps = match (a.2, b.1) {
                (None, _) | (_, None) => true,
                (Some(a_to), Some(b_from)) => a_to > b_from,
            };
            if overlaps {
                faults.push(format!(
                    "line {}: agent ID {id:?} has two owners at once: this period overlaps the one on line {} (an ID has at most one employee at any instant)",
                    pair[1].0, pair[0].0
                ));
            }
        }
    }
    faults.truncate(MAX_FAULTS);
    if faults.is_empty() {
        Ok(wanted)
    } else {
        faults.sort_by_key(|f| {
            f.strip_prefix("line ")
                .and_then(|l| l.split(':').next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        });
        Err(faults)
    }
}

pub fn import(
    ops: &mut dyn AdminOps,
    (system_id, system_name, tz): (i64, &str, Tz),
    file: &str,
    bytes: &[u8],
) -> anyhow::Result<String> {
    let activities = ops.activities()?;
    let employees = ops.employees()?;
    let wanted = read(bytes, tz, &activities, &employees).map_err(|faults| {
        refused(format!(
            "{file}: not imported, nothing changed ({} fault(s)):\n  {}",
            faults.len(),
            faults.join("\n  ")
        ))
    })?;
    let now = crate::sync::now();
    let current_codes = ops.codes(system_id)?;
    let mut changed = (0, 0);
    for (code, (_, activity)) in &wanted.codes {
        if current_codes
            .iter()
            .any(|c| &c.1 == code && c.2 == *activity)
        {
            continue;
        }
        ops.map_code(system_id, code, *activity, now)?;
        changed.0 += 1;
    }
    let agents = ops.agents(system_id)?;
    let owners = ops.owners(system_id)?;
    for (external_id, lines) in &wanted.agents {
        let mut want: Vec<Period> = lines.iter().filter_map(|(_, p)| *p).collect();
        want.sort_by_key(|p| p.1);
        let agent = agents.iter().find(|a| &a.1 == external_id).map(|a| a.0);
        let mut have: Vec<_> = owners
            .iter()
            .filter(|p| Some(p.external_agent_id) == agent)
            .collect();
        have.sort_by_key(|p| p.valid_from);
        let same = have.len() == want.len()
            && have
                .iter()
                .zip(&want)
                .all(|(h, w)| (h.employee_id, h.valid_from, h.valid_to) == *w);
        if same && agent.is_some() {
            continue;
        }
        let agent = match agent {
            Some(a) => a,
            None => ops.add_agent(system_id, external_id)?,
        };
        for h in &have {
            ops.delete_owner(h.id)?;
        }
        for (employee, from, to) in &want {
            ops.insert_owner(agent, *employee, *from, *to)?;
        }
        changed.1 += 1;
    }
    Ok(format!(
        "system {system_name:?}: {file} imported: {} code(s) and {} agent ID(s) named, {} and {} of them changed\n",
        wanted.codes.len(),
        wanted.agents.len(),
        changed.0,
        changed.1
    ))
}
