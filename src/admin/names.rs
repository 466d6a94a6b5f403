//! Names on the command line and in CSV files: activities, employees and systems, found as the module
//! documentation of `crate::admin` says, or refused in the admin's words.

use chrono_tz::Tz;

use crate::error::Failure;
use crate::store::admin::AdminOps;

/// A refusal in the admin's words (exit 65).
pub(super) fn refused(message: String) -> anyhow::Error {
    Failure::Refused(message).into()
}

/// A name as stored: surrounding spaces removed, not blank.
pub(super) fn clean_name(what: &str, name: &str) -> anyhow::Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Failure::Usage(format!("the {what} name is blank")).into());
    }
    if name.contains('\0') {
        return Err(Failure::Usage(format!("the {what} name holds a NUL byte")).into());
    }
    Ok(name.to_owned())
}

/// The one item `wanted` names among `items` (id, name): exactly, else ignoring case.
pub(super) fn find_named<'a>(
    items: &'a [(i64, String)],
    wanted: &str,
) -> Result<&'a (i64, String), usize> {
    let wanted = wanted.trim();
    if let Some(exact) = items.iter().find(|(_, n)| n == wanted) {
        return Ok(exact);
    }
    let folded: Vec<_> = items
        .iter()
        .filter(|(_, n)| n.to_lowercase() == wanted.to_lowercase())
        .collect();
    match folded[..] {
        [one] => Ok(one),
        _ => Err(folded.len()),
    }
}

pub(crate) fn activity_id(ops: &mut dyn AdminOps, name: &str) -> anyhow::Result<(i64, String)> {
    let all = ops.activities()?;
    find_named(&all, name).cloned().map_err(|n| {
        let known: Vec<&str> = all.iter().map(|(_, n)| n.as_str()).collect();
        refused(match n {
            0 => format!(
                "there is no activity named {name:?} (known: {}); add it with `acdsync activity add`",
                known.join(", ")
            ),
            n => format!("{n} activities are named {name:?} ignoring case; write the name exactly"),
        })
    })
}

/// An employee: (id, name, external_ref).
pub(crate) type Employee = (i64, String, Option<String>);

pub(crate) fn employee(ops: &mut dyn AdminOps, wanted: &str) -> anyhow::Result<Employee> {
    let all = ops.employees()?;
    resolve_employee(&all, wanted, None).map_err(refused)
}

/// The employee `wanted` (a reference, or a name) names, or why none; `by_ref` is a reference given
/// apart (CSV), which must then name the same employee.
pub(crate) fn resolve_employee(
    all: &[Employee],
    wanted: &str,
    by_ref: Option<&str>,
) -> Result<Employee, String> {
    if let Some(r) = by_ref.filter(|r| !r.trim().is_empty()) {
        let found = all
            .iter()
            .find(|e| e.2.as_deref() == Some(r.trim()))
            .ok_or_else(|| format!("there is no employee with external_ref {r:?}"))?;
        if !wanted.trim().is_empty() && found.1 != wanted.trim() {
            return Err(format!(
                "external_ref {r:?} is employee {:?}, not {wanted:?}",
                found.1
            ));
        }
        return Ok(found.clone());
    }
    if let Some(e) = all.iter().find(|e| e.2.as_deref() == Some(wanted.trim())) {
        return Ok(e.clone());
    }
    let names: Vec<(i64, String)> = all.iter().map(|e| (e.0, e.1.clone())).collect();
    let exact: Vec<&Employee> = all.iter().filter(|e| e.1 == wanted.trim()).collect();
    let pick = match exact[..] {
        [one] => Ok(one.0),
        [] => find_named(&names, wanted).map(|e| e.0),
        _ => Err(exact.len()),
    };
    match pick {
        Ok(id) => Ok(all.iter().find(|e| e.0 == id).cloned().expect("found above")),
        Err(0) => Err(format!(
            "there is no employee named {wanted:?} or with that external_ref; add one with `acdsync employee add`"
        )),
        Err(n) => {
            let who: Vec<String> = all
                .iter()
                .filter(|e| e.1.to_lowercase() == wanted.trim().to_lowercase())
                .map(|e| match &e.2 {
                    Some(r) => format!("id {} (external_ref {r})", e.0),
                    None => format!("id {} (no external_ref)", e.0),
                })
                .collect();
            Err(format!(
                "{n} employees are named {wanted:?}: {}; name one by its external_ref",
                who.join(", ")
            ))
        }
    }
}

/// A system of the WFM database: (id, name, zone). A system only in the config file (not synced yet) is
/// registered, so that codes and IDs can be mapped ahead of its first import.
pub(crate) fn system(
    ops: &mut dyn AdminOps,
    name: &str,
    configured: Option<(String, Tz)>,
) -> anyhow::Result<(i64, String, Tz)> {
    let all = ops.systems()?;
    if let Some((id, n, zone)) = all.iter().find(|(_, n, _)| n == name) {
        let tz: Tz = zone.parse().map_err(|_| {
            refused(format!(
                "system {n:?} has the time zone {zone:?} in external_systems, which is not an IANA zone"
            ))
        })?;
        return Ok((*id, n.clone(), tz));
    }
    if let Some((n, tz)) = configured.filter(|(n, _)| n == name) {
        let id = ops.add_system(&n, tz.name())?;
        return Ok((id, n, tz));
    }
    let known: Vec<&str> = all.iter().map(|(_, n, _)| n.as_str()).collect();
    Err(refused(format!(
        "there is no system named {name:?} in the WFM database or the config file (known: {})",
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )))
}
