//! The mapping commands as the command line spells them (clap): `acdsync activity|employee|map|unmap|
//! unmapped|mappings`, each with the WFM database it works on.

use std::path::PathBuf;

use chrono::NaiveDate;
use chrono_tz::Tz;
use clap::Subcommand;

use super::listing::{self, Format};
use super::{activity, employee_command, map, mappings, unmap, unmapped};
use crate::store::Store;

/// The mapping commands, at the top level of the command line.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// WFM activities: list, add, rename (docs/mapping.md).
    Activity {
        #[command(subcommand)]
        command: ActivityCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// WFM employees: list, add (docs/mapping.md).
    Employee {
        #[command(subcommand)]
        command: EmployeeCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Assigns a code to an activity, or an agent ID to an employee (from a date).
    Map {
        #[command(subcommand)]
        command: MapCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Takes an agent ID from its employee (from a date).
    Unmap {
        #[command(subcommand)]
        command: UnmapCommand,
        #[command(flatten)]
        db: DbArgs,
    },
    /// What waits for a mapping: agent IDs with sessions no employee owns, codes still on Present.
    Unmapped {
        /// Only this system.
        #[arg(long)]
        system: Option<String>,
        #[arg(long, value_enum, default_value_t = listing::Format::Table)]
        format: listing::Format,
        #[command(flatten)]
        db: DbArgs,
    },
    /// A system's whole mapping as CSV, and back.
    Mappings {
        #[command(subcommand)]
        command: MappingsCommand,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// The WFM database of the mapping commands.
#[derive(Debug, clap::Args)]
pub struct DbArgs {
    /// The WFM database URL (postgres://… or sqlite://FILE); overrides the config file's [wfm].
    #[arg(long, global = true, env = crate::config::DATABASE_URL_ENV, hide_env_values = true)]
    pub database_url: Option<String>,
}

impl AdminCommand {
    /// `--database-url` (or its variable), if given.
    pub fn database_url(&self) -> Option<String> {
        match self {
            AdminCommand::Activity { db, .. }
            | AdminCommand::Employee { db, .. }
            | AdminCommand::Map { db, .. }
            | AdminCommand::Unmap { db, .. }
            | AdminCommand::Unmapped { db, .. }
            | AdminCommand::Mappings { db, .. } => db.database_url.clone(),
        }
    }

    /// Runs the command on `store`; `configured` gives the name and zone of a system of the config file.
    pub fn run(
        &self,
        store: &mut Store,
        configured: &dyn Fn(&str) -> Option<(String, Tz)>,
    ) -> anyhow::Result<String> {
        match self {
            AdminCommand::Activity { command, .. } => activity(store, command),
            AdminCommand::Employee { command, .. } => employee_command(store, command),
            AdminCommand::Map { command, .. } => map(store, command, configured),
            AdminCommand::Unmap { command, .. } => unmap(store, command, configured),
            AdminCommand::Unmapped { system, format, .. } => {
                unmapped(store, system.as_deref(), *format)
            }
            AdminCommand::Mappings { command, .. } => mappings(store, command, configured),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ActivityCommand {
    /// The activities, with how many codes each holds.
    List {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// A new activity.
    Add { name: String },
    /// Renames an activity (not Present).
    Rename { old: String, new: String },
}

#[derive(Debug, Subcommand)]
pub enum EmployeeCommand {
    /// The employees, with how many agent IDs each owns or owned.
    List {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// A new employee; REF is their reference in HR or WFM (unique), which mapping commands accept.
    Add {
        name: String,
        #[arg(long = "external-ref", value_name = "REF")]
        external_ref: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MapCommand {
    /// Assigns a code (seen or not yet) to an activity, or moves it there, in one statement.
    Code {
        #[arg(long)]
        system: String,
        code: String,
        activity: String,
    },
    /// Gives an agent ID to an employee: from local midnight of --from DATE in the system's time zone (the
    /// former owner keeps the sessions before), or from the beginning without it.
    Agent {
        #[arg(long)]
        system: String,
        external_id: String,
        employee: String,
        #[arg(long, value_parser = crate::cli::parse_day, value_name = "DATE")]
        from: Option<NaiveDate>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UnmapCommand {
    /// Takes an agent ID from its owner: from local midnight of --from DATE, or entirely without it.
    Agent {
        #[arg(long)]
        system: String,
        external_id: String,
        #[arg(long, value_parser = crate::cli::parse_day, value_name = "DATE")]
        from: Option<NaiveDate>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CsvOnly {
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum MappingsCommand {
    /// A system's whole mapping (codes, then agent IDs with their periods) as CSV on standard output.
    Export {
        #[arg(long)]
        system: String,
        #[arg(long, value_enum)]
        format: CsvOnly,
    },
    /// Sets the mapping of every code and agent ID the file lists, all or nothing.
    Import {
        #[arg(long)]
        system: String,
        #[arg(long, value_enum)]
        format: CsvOnly,
        file: PathBuf,
    },
}
