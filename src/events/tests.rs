use super::*;

fn dt(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

/// An event at a local time of Paris: (agent, time, kind, code, scope, sequence).
pub(super) fn ev(
    row: u64,
    agent: &str,
    at: &str,
    kind: Kind,
    code: Option<&str>,
    scope: Option<&str>,
    sequence: Option<i64>,
) -> Event<'static> {
    Event {
        row,
        agent: agent.to_owned().into(),
        at: SourceTime::Local(dt(at)),
        kind,
        code: code.map(|c| c.to_owned().into()),
        scope: scope.map(|c| c.to_owned().into()),
        sequence,
    }
}

/// An event as (agent, time on 2026-01-15, kind, code, scope).
pub(super) type Given<'a> = (&'a str, &'a str, Kind, Option<&'a str>, Option<&'a str>);

/// Pairs events, numbered and sequenced in order.
pub(super) fn pair(events: &[Given<'_>]) -> (Vec<Session>, Vec<Unpaired>) {
    let mut p = Pairing::new(chrono_tz::Europe::Paris);
    for (i, (agent, at, kind, code, scope)) in events.iter().enumerate() {
        let at = format!("2026-01-15 {at}:00");
        p.push(ev(
            i as u64 + 1,
            agent,
            &at,
            *kind,
            *code,
            *scope,
            Some(i as i64 + 1),
        ))
        .unwrap();
    }
    p.finish()
}

/// Sessions as (agent, code, start, end) in UTC, HH:MM on 2026-01-15 (Paris is UTC+1 in January).
fn short(sessions: &[Session]) -> Vec<(String, Option<String>, String, Option<String>)> {
    let f = |t: NaiveDateTime| t.format("%H:%M").to_string();
    sessions
        .iter()
        .map(|s| (s.agent.clone(), s.code.clone(), f(s.start), s.end.map(f)))
        .collect()
}

fn want(
    rows: &[(&str, Option<&str>, &str, Option<&str>)],
) -> Vec<(String, Option<String>, String, Option<String>)> {
    rows.iter()
        .map(|(a, c, s, e)| {
            (
                a.to_string(),
                c.map(str::to_owned),
                s.to_string(),
                e.map(str::to_owned),
            )
        })
        .collect()
}

use Kind::{Login, Logout, State};

#[test]
fn a_login_a_pause_with_a_reason_a_return_to_ready_and_a_logout() {
    let (s, u) = pair(&[
        ("7", "09:00", Login, None, None),
        ("7", "10:00", State, Some("BREAK"), None),
        ("7", "10:15", State, None, None),
        ("7", "17:00", Logout, None, None),
    ]);
    assert!(u.is_empty());
    assert_eq!(
        short(&s),
        want(&[
            ("7", None, "08:00", Some("09:00")),
            ("7", Some("BREAK"), "09:00", Some("09:15")),
            ("7", None, "09:15", Some("16:00")),
        ])
    );
}

#[test]
fn one_session_whatever_the_number_of_queues_and_per_queue_pauses_combine() {
    // Asterisk: ADDMEMBER per queue, PAUSEALL then one PAUSE per queue (same reason), UNPAUSEALL then one
    // UNPAUSE per queue, queues left at different times: the agent is logged in while in one queue.
    let (s, u) = pair(&[
        ("7", "09:00", Login, None, Some("sales")),
        ("7", "09:05", Login, None, Some("support")),
        ("7", "10:00", State, Some("LUNCH"), None),
        ("7", "10:00", State, Some("LUNCH"), Some("sales")),
        ("7", "10:00", State, Some("LUNCH"), Some("support")),
        ("7", "10:30", State, None, None),
        ("7", "10:30", State, None, Some("sales")),
        ("7", "10:30", State, None, Some("support")),
        ("7", "12:00", Logout, None, Some("sales")),
        ("7", "13:00", Logout, None, Some("support")),
    ]);
    assert!(u.is_empty(), "{u:?}");
    assert_eq!(
        short(&s),
        want(&[
            ("7", None, "08:00", Some("09:00")),
            ("7", Some("LUNCH"), "09:00", Some("09:30")),
            ("7", None, "09:30", Some("12:00")),
        ])
    );
}

#[test]
fn a_new_reason_without_a_return_to_ready_starts_a_new_session() {
    let (s, _) = pair(&[
        ("7", "09:00", Login, Some("PAUSED"), Some("q")),
        ("7", "09:10", State, Some("Auto-Pause"), Some("q")),
        ("7", "09:20", State, Some("BREAK"), Some("q")),
        ("7", "09:30", Logout, None, Some("q")),
    ]);
    assert_eq!(
        short(&s),
        want(&[
            ("7", Some("PAUSED"), "08:00", Some("08:10")),
            ("7", Some("Auto-Pause"), "08:10", Some("08:20")),
            ("7", Some("BREAK"), "08:20", Some("08:30")),
        ])
    );
}

#[test]
fn removed_from_every_queue_while_paused_ends_the_session() {
    let (s, u) = pair(&[
        ("7", "09:00", Login, None, Some("a")),
        ("7", "09:00", Login, None, Some("b")),
        ("7", "09:30", State, Some("BREAK"), Some("a")),
        ("7", "09:40", Logout, None, Some("a")),
        ("7", "09:45", Logout, None, Some("b")),
    ]);
    assert!(u.is_empty());
    assert_eq!(
        short(&s),
        want(&[
            ("7", None, "08:00", Some("08:30")),
            ("7", Some("BREAK"), "08:30", Some("08:45")),
        ])
    );
}

#[test]
fn unpaired_events_are_kept_with_their_reason() {
    let (s, u) = pair(&[
        ("8", "08:00", Logout, None, None),
        ("7", "09:00", Login, None, None),
        ("7", "09:30", Login, None, None),
        ("7", "10:00", Logout, None, None),
    ]);
    assert_eq!(short(&s), want(&[("7", None, "08:00", Some("09:00"))]));
    let reasons: Vec<(u64, &str)> = u.iter().map(|x| (x.row, x.reason.as_str())).collect();
    assert_eq!(reasons.len(), 2);
    assert_eq!(reasons[0].0, 1);
    assert!(
        reasons[0].1.starts_with("logout with no login"),
        "{reasons:?}"
    );
    assert_eq!(reasons[1].0, 3);
    assert!(
        reasons[1].1.starts_with("login while already logged in"),
        "{reasons:?}"
    );
}

#[test]
fn a_state_of_an_agent_not_seen_logging_in_means_logged_in_and_one_still_logged_in_stays_open() {
    let (s, u) = pair(&[
        ("7", "09:00", State, Some("BREAK"), None),
        ("7", "09:10", State, None, None),
        ("9", "11:00", Login, None, None),
    ]);
    assert!(u.is_empty());
    assert_eq!(
        short(&s),
        want(&[
            ("7", Some("BREAK"), "08:00", Some("08:10")),
            ("7", None, "08:10", None),
            ("9", None, "10:00", None),
        ])
    );
}

#[test]
fn events_of_one_time_without_a_sequence_are_taken_login_state_logout_in_any_order() {
    let events = [
        ev(
            1,
            "7",
            "2026-01-15 09:00:00",
            State,
            Some("BREAK"),
            None,
            None,
        ),
        ev(2, "7", "2026-01-15 09:00:00", Login, None, None, None),
        ev(3, "7", "2026-01-15 09:30:00", Logout, None, None, None),
        ev(4, "7", "2026-01-15 09:30:00", State, None, None, None),
    ];
    let run = |order: &[usize]| {
        let mut p = Pairing::new(chrono_tz::Europe::Paris);
        for &i in order {
            p.push(events[i].clone()).unwrap();
        }
        p.finish()
    };
    let (a, _) = run(&[0, 1, 2, 3]);
    let (b, _) = run(&[1, 0, 3, 2]);
    assert_eq!(short(&a), short(&b));
    assert_eq!(
        short(&a),
        want(&[
            ("7", Some("BREAK"), "08:00", Some("08:30")),
        ]),
        "the login's zero-length state is no session; the return to ready at the logout lasts no time"
    );
}

#[test]
fn a_pause_across_the_autumn_change_follows_the_sequence() {
    // Asterisk writes local wall time and ids in real-time order: PAUSE at 02:40 (summer), UNPAUSE at
    // 02:10 (winter, 90 minutes later), logout at 02:50 (winter).
    let mut p = Pairing::new(chrono_tz::Europe::Paris);
    for e in [
        ev(1, "7", "2026-10-25 01:30:00", Login, None, None, Some(10)),
        ev(
            2,
            "7",
            "2026-10-25 02:40:00",
            State,
            Some("PAUSE"),
            None,
            Some(11),
        ),
        ev(3, "7", "2026-10-25 02:10:00", State, None, None, Some(12)),
        ev(4, "7", "2026-10-25 02:50:00", Logout, None, None, Some(13)),
    ] {
        p.push(e).unwrap();
    }
    let (s, _) = p.finish();
    let times: Vec<_> = s.iter().map(|s| (s.start, s.end.unwrap())).collect();
    assert_eq!(
        times,
        [
            (dt("2026-10-24 23:30:00"), dt("2026-10-25 00:40:00")),
            (dt("2026-10-25 00:40:00"), dt("2026-10-25 01:10:00")),
            (dt("2026-10-25 01:10:00"), dt("2026-10-25 01:50:00")),
        ]
    );
}

#[test]
fn a_result_out_of_order_is_refused_naming_the_row() {
    let mut p = Pairing::new(chrono_tz::Europe::Paris);
    p.push(ev(
        1,
        "7",
        "2026-01-15 09:00:00",
        Login,
        None,
        None,
        Some(2),
    ))
    .unwrap();
    assert_eq!(
        p.push(ev(
            2,
            "7",
            "2026-01-15 09:10:00",
            Logout,
            None,
            None,
            Some(1)
        )),
        Err(OutOfOrder { row: 2 })
    );
    let mut p = Pairing::new(chrono_tz::Europe::Paris);
    p.push(ev(1, "7", "2026-01-15 09:00:00", Login, None, None, None))
        .unwrap();
    assert_eq!(
        p.push(ev(2, "7", "2026-01-15 08:59:00", Logout, None, None, None)),
        Err(OutOfOrder { row: 2 })
    );
}

#[test]
fn a_return_to_ready_after_the_logout_opens_nothing() {
    // Wazo: AGENTCALLBACKLOGOFF, then UNPAUSEALL and UNPAUSE per queue.
    let (s, u) = pair(&[
        ("7", "09:00", Login, None, None),
        ("7", "17:00", Logout, None, None),
        ("7", "17:00", State, None, None),
        ("7", "17:00", State, None, Some("q")),
    ]);
    assert!(u.is_empty());
    assert_eq!(short(&s), want(&[("7", None, "08:00", Some("16:00"))]));
}

#[test]
fn kinds_are_read_in_any_case() {
    assert_eq!(Kind::parse(" LOGIN "), Some(Login));
    assert_eq!(Kind::parse("State"), Some(State));
    assert_eq!(Kind::parse("logoff"), None);
}

#[test]
fn a_return_to_ready_of_an_agent_not_seen_logging_in_or_out_means_logged_in() {
    // Static members (no ADDMEMBER ever logged): the first event read is an UNPAUSE.
    let (s, u) = pair(&[
        ("7", "14:00", State, None, Some("q")),
        ("7", "18:00", State, Some("Offline"), Some("q")),
    ]);
    assert!(u.is_empty());
    assert_eq!(
        short(&s),
        want(&[
            ("7", None, "13:00", Some("17:00")),
            ("7", Some("Offline"), "17:00", None),
        ])
    );
}

#[test]
fn a_logout_after_the_logout_is_no_error() {
    // Asterisk with agents and queue members: AGENTLOGOFF, then REMOVEMEMBER per queue.
    let (s, u) = pair(&[
        ("7", "09:00", Login, None, None),
        ("7", "09:00", Login, None, Some("q1")),
        ("7", "17:00", Logout, None, None),
        ("7", "17:00", Logout, None, Some("q1")),
    ]);
    assert!(u.is_empty(), "{u:?}");
    assert_eq!(short(&s), want(&[("7", None, "08:00", Some("16:00"))]));
}

#[test]
fn times_a_few_microseconds_out_of_order_in_the_repeated_hour_stay_in_their_pass() {
    // Two ACD threads write one instant of the first pass in the wrong order: no jump to the second pass.
    let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap();
    let mut p = Pairing::new(chrono_tz::Europe::Paris);
    for (i, (time, kind, code)) in [
        ("2026-10-25 02:10:00.000002", Login, None),
        ("2026-10-25 02:10:00.000001", State, Some("BREAK")),
        ("2026-10-25 02:30:00", State, None),
        ("2026-10-25 02:50:00", Logout, None),
    ]
    .into_iter()
    .enumerate()
    {
        p.push(Event {
            row: i as u64 + 1,
            agent: "7".into(),
            at: SourceTime::Local(at(time)),
            kind,
            code: code.map(Into::into),
            scope: None,
            sequence: Some(i as i64),
        })
        .unwrap();
    }
    let (s, _) = p.finish();
    let f = |t: NaiveDateTime| t.format("%H:%M").to_string();
    let got: Vec<_> = s.iter().map(|s| (f(s.start), s.end.map(f))).collect();
    assert_eq!(
        got,
        [
            ("00:10".to_string(), Some("00:30".to_string())),
            ("00:30".to_string(), Some("00:50".to_string())),
        ]
    );
}

#[test]
fn an_agent_logged_in_before_the_read_is_in_the_queues_its_states_name() {
    // The read starts after the ADDMEMBERs: a pause in two queues, then both queues left.
    let (s, u) = pair(&[
        ("7", "18:00", State, Some("Break"), Some("sales")),
        ("7", "18:00", State, Some("Break"), Some("support")),
        ("7", "18:15", State, None, Some("sales")),
        ("7", "18:15", State, None, Some("support")),
        ("7", "23:30", Logout, None, Some("sales")),
        ("7", "23:31", Logout, None, Some("support")),
    ]);
    assert!(u.is_empty(), "{u:?}");
    assert_eq!(
        short(&s),
        want(&[
            ("7", Some("Break"), "17:00", Some("17:15")),
            ("7", None, "17:15", Some("22:31")),
        ])
    );
}

#[test]
fn times_finer_than_a_microsecond_and_a_little_out_of_order_make_sessions_in_start_order() {
    // Nanoseconds (SQL Server datetime2(7)) are cut to the microsecond, as the stores keep them: states a
    // few hundred nanoseconds apart last no time. An event a second before the previous one (another
    // agent's, logged later) is taken at the previous one's instant.
    let utc = |s: &str| {
        SourceTime::Utc(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap())
    };
    let mut p = Pairing::new(chrono_tz::UTC);
    let events = [
        ("7", "2026-01-15 09:00:00.000000000", Login, None),
        ("7", "2026-01-15 09:00:00.000000100", State, Some("X")),
        ("7", "2026-01-15 09:00:00.000000900", State, Some("Y")),
        ("8", "2026-01-15 09:00:05", Login, None),
        ("9", "2026-01-15 09:00:04", Login, None),
    ];
    for (i, (agent, at, kind, code)) in events.into_iter().enumerate() {
        p.push(Event {
            row: i as u64 + 1,
            agent: agent.into(),
            at: utc(at),
            kind,
            code: code.map(Into::into),
            scope: None,
            sequence: Some(i as i64),
        })
        .unwrap();
    }
    let (s, u) = p.finish();
    assert!(u.is_empty());
    let got: Vec<_> = s
        .iter()
        .map(|s| {
            (
                s.agent.as_str(),
                s.code.as_deref(),
                s.start.format("%H:%M:%S%.f").to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("7", Some("Y"), "09:00:00".to_string()),
            ("8", None, "09:00:05".to_string()),
            ("9", None, "09:00:05".to_string()),
        ]
    );
}
