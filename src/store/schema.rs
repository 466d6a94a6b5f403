//! The WFM tables as Diesel sees them, written by hand because `diesel print-schema` gives each backend
//! different types (see migrations/). Timestamps are declared `Timestamp` (a naive UTC value) on both
//! backends: on PostgreSQL the columns are `timestamptz`, which has the same binary form, and every
//! connection runs with `TimeZone = 'UTC'` so that parameters are read as UTC (see `Store::open`).

diesel::table! {
    /// WFM activities; id 1 is the system activity `Present`.
    activities (id) {
        id -> BigInt,
        name -> Text,
    }
}

diesel::table! {
    /// WFM employees.
    employees (id) {
        id -> BigInt,
        name -> Text,
        external_ref -> Nullable<Text>,
    }
}

diesel::table! {
    /// One row per ACD configured in acdsync.
    external_systems (id) {
        id -> BigInt,
        name -> Text,
        time_zone -> Text,
        created_at -> Timestamp,
        watermark -> Nullable<Text>,
        watermark_kind -> Nullable<Text>,
        watermark_updated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Activity codes per external system; each belongs to exactly one activity.
    external_activity_codes (id) {
        id -> BigInt,
        external_system_id -> BigInt,
        code -> Text,
        activity_id -> BigInt,
        first_seen_at -> Nullable<Timestamp>,
        last_seen_at -> Nullable<Timestamp>,
        mapped_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Agent IDs per external system; each belongs to at most one employee.
    external_agent_ids (id) {
        id -> BigInt,
        external_system_id -> BigInt,
        external_id -> Text,
        employee_id -> Nullable<BigInt>,
        first_seen_at -> Nullable<Timestamp>,
        last_seen_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Who owns an agent ID when: [valid_from, valid_to), NULL bounds open (migration 2026-11-30-000003).
    agent_id_owners (id) {
        id -> BigInt,
        external_agent_id -> BigInt,
        employee_id -> BigInt,
        valid_from -> Nullable<Timestamp>,
        valid_to -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// One row per sync of one system and window.
    import_runs (id) {
        id -> BigInt,
        external_system_id -> BigInt,
        first_day -> Date,
        last_day -> Date,
        window_start -> Timestamp,
        window_end -> Timestamp,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        status -> Text,
        rows_read -> BigInt,
        sessions_inserted -> BigInt,
        sessions_updated -> BigInt,
        sessions_deleted -> BigInt,
        sessions_unchanged -> BigInt,
        rows_rejected -> BigInt,
        new_agent_ids -> BigInt,
        new_activity_codes -> BigInt,
        error -> Nullable<Text>,
        host -> Text,
        pid -> BigInt,
        mode -> Text,
        watermark -> Nullable<Text>,
        mass_delete_override -> Nullable<Text>,
    }
}

diesel::table! {
    /// Imported sessions, UTC; `ended_at` is NULL while open.
    agent_sessions (id) {
        id -> BigInt,
        external_system_id -> BigInt,
        external_agent_id -> BigInt,
        external_activity_code_id -> Nullable<BigInt>,
        started_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Source rows a sync could not import, with the reason.
    rejected_rows (id) {
        id -> BigInt,
        import_run_id -> BigInt,
        source_row -> BigInt,
        field -> Text,
        reason -> Text,
        agent_id -> Nullable<Text>,
        activity_code -> Nullable<Text>,
        started_at -> Nullable<Text>,
        ended_at -> Nullable<Text>,
    }
}

diesel::table! {
    /// Sessions resolved through the current mappings (a view).
    external_activity (session_id) {
        session_id -> BigInt,
        external_system_id -> BigInt,
        external_system -> Text,
        external_agent_id -> Text,
        employee_id -> Nullable<BigInt>,
        activity_code -> Nullable<Text>,
        activity_id -> BigInt,
        activity_name -> Text,
        started_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Local days that changes runs wrote to since the day's last full sync (migration 2026-11-29-000001).
    changed_days (external_system_id, day) {
        external_system_id -> BigInt,
        day -> Date,
    }
}

diesel::table! {
    /// Incremental mode for event sources: each agent's state at the watermark (migration 2026-11-30-000001).
    event_agent_states (external_system_id, agent_id) {
        external_system_id -> BigInt,
        agent_id -> Text,
        scopes -> Text,
        open_started_at -> Nullable<Timestamp>,
        open_activity_code -> Nullable<Text>,
        logged_out -> Bool,
        implicit_login -> Bool,
        last_event_at -> Timestamp,
    }
}

diesel::joinable!(agent_id_owners -> external_agent_ids (external_agent_id));
diesel::joinable!(agent_id_owners -> employees (employee_id));
diesel::joinable!(changed_days -> external_systems (external_system_id));
diesel::joinable!(event_agent_states -> external_systems (external_system_id));
diesel::joinable!(external_activity_codes -> external_systems (external_system_id));
diesel::joinable!(external_activity_codes -> activities (activity_id));
diesel::joinable!(external_agent_ids -> external_systems (external_system_id));
diesel::joinable!(external_agent_ids -> employees (employee_id));
diesel::joinable!(import_runs -> external_systems (external_system_id));
diesel::joinable!(agent_sessions -> external_agent_ids (external_agent_id));
diesel::joinable!(agent_sessions -> external_activity_codes (external_activity_code_id));
diesel::joinable!(rejected_rows -> import_runs (import_run_id));

diesel::allow_tables_to_appear_in_same_query!(
    activities,
    agent_id_owners,
    changed_days,
    employees,
    event_agent_states,
    external_systems,
    external_activity_codes,
    external_agent_ids,
    import_runs,
    agent_sessions,
    rejected_rows,
    external_activity,
);
