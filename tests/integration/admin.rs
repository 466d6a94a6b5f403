//! Mapping administration without SQL (issue 15), through the binary as an admin runs it: activities and
//! employees, a code moved in one step, agent IDs handed on at a date (across a DST day), what waits for a
//! mapping, and a system's whole mapping as CSV and back. Each refusal exits 65 and changes nothing.

use crate::common::*;
use crate::on_both_stores;

/// What the mapping tests ask of a site (system "paris").
trait AdminSite {
    fn refused(&self, args: &[&str]) -> String;
    fn sync(&self, day: &str);
    fn dump(&self) -> String;
    fn employee_id(&self, name: &str) -> i64;
}

impl AdminSite for CliSite {
    /// `run`, which must be refused (exit 65); its standard error.
    fn refused(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.code, Some(65), "{args:?}: {}{}", out.stdout, out.stderr);
        out.stderr
    }

    fn sync(&self, day: &str) {
        self.ok(&["sync", "--date", day]);
    }

    /// Everything a mapping command may change, as text.
    fn dump(&self) -> String {
        let mut text = format!("{:?}\n", self.store.view());
        for table in [
            "activities",
            "employees",
            "external_activity_codes",
            "external_agent_ids",
            "agent_id_owners",
        ] {
            text += &format!(
                "{table}: {}\n",
                self.store.count(&format!("SELECT COUNT(*) FROM {table}"))
            );
        }
        text + &self.ok(&["mappings", "export", "--system", "paris", "--format", "csv"])
    }

    fn employee_id(&self, name: &str) -> i64 {
        self.store
            .count(&format!("SELECT id FROM employees WHERE name = '{name}'"))
    }
}

on_both_stores!(activities_are_listed_added_and_renamed, |kind| {
    let site = CliSite::paris_only(kind);
    // When an admin adds an activity
    let said = site.ok(&["activity", "add", "  Break "]);
    assert!(said.contains("activity \"Break\" added"), "{said}");

    // Then it is listed, trimmed, as a table and as JSON
    let table = site.ok(&["activity", "list"]);
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["2", "Break", "0"]),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&site.ok(&["activity", "list", "--format", "json"])).unwrap();
    assert_eq!(json[1]["name"], "Break");
    assert_eq!(json[0]["name"], "Present");

    // And a name that differs only by case or spaces is refused, naming the one that exists
    let why = site.refused(&["activity", "add", "break"]);
    assert!(
        why.contains("activity \"Break\" (id 2) exists already"),
        "{why}"
    );
    // And Present cannot be renamed; a blank name is a usage error
    let why = site.refused(&["activity", "rename", "Present", "Available"]);
    assert!(why.contains("cannot be renamed"), "{why}");
    assert_eq!(site.run(&["activity", "add", "  "]).code, Some(2));
    // And a rename to a taken name is refused; another is done
    site.ok(&["activity", "add", "Lunch"]);
    let why = site.refused(&["activity", "rename", "Lunch", "BREAK"]);
    assert!(why.contains("exists already"), "{why}");
    let said = site.ok(&["activity", "rename", "lunch", "Meal"]);
    assert!(said.contains("\"Lunch\" (id 3) renamed \"Meal\""), "{said}");
    assert_eq!(
        site.store
            .count("SELECT COUNT(*) FROM activities WHERE name IN ('Present', 'Break', 'Meal')"),
        3
    );
});

on_both_stores!(employees_are_listed_and_added_with_a_reference, |kind| {
    let site = CliSite::paris_only(kind);
    site.ok(&["employee", "add", "Ada Lovelace", "--external-ref", "E-001"]);
    site.ok(&["employee", "add", "Ada Lovelace"]);
    // A reference is unique
    let why = site.refused(&["employee", "add", "Alan Turing", "--external-ref", "E-001"]);
    assert!(
        why.contains("external_ref \"E-001\" is employee \"Ada Lovelace\""),
        "{why}"
    );
    let csv = site.ok(&["employee", "list", "--format", "csv"]);
    assert_eq!(
        csv,
        "id,name,external_ref,agent_ids\n1,Ada Lovelace,E-001,0\n2,Ada Lovelace,,0\n"
    );
    // Two employees of one name: mapping by that name is refused, naming both; by the reference it is done
    site.paris().set_rows(&[row(
        "1001",
        None,
        "2026-01-15 08:00:00",
        Some("2026-01-15 09:00:00"),
    )]);
    site.sync("2026-01-15");
    let why = site.refused(&["map", "agent", "--system", "paris", "1001", "ada lovelace"]);
    assert!(
        why.contains("2 employees are named") && why.contains("E-001"),
        "{why}"
    );
    site.ok(&["map", "agent", "--system", "paris", "1001", "E-001"]);
    assert_eq!(site.store.view()[0].employee_id, Some(1));
});

on_both_stores!(a_code_moves_in_one_step_and_past_sessions_follow, |kind| {
    // Given a day imported with code BRK, discovered on Present
    let site = CliSite::paris_only(kind);
    site.paris().set_rows(&[
        row(
            "1001",
            Some("BRK"),
            "2026-01-15 08:00:00",
            Some("2026-01-15 08:30:00"),
        ),
        row(
            "1001",
            Some("BRK"),
            "2026-01-15 10:00:00",
            Some("2026-01-15 10:15:00"),
        ),
        row(
            "1002",
            Some("ACW"),
            "2026-01-15 09:00:00",
            Some("2026-01-15 09:05:00"),
        ),
    ]);
    site.sync("2026-01-15");
    site.ok(&["activity", "add", "Break"]);
    site.ok(&["activity", "add", "Lunch"]);
    let waiting = site.ok(&["unmapped", "--system", "paris", "--format", "csv"]);
    assert!(
        waiting.contains(
            "codes_on_present,paris,BRK,2026-01-15T08:00:00+01:00,2026-01-15T10:00:00+01:00,2,0.75"
        ),
        "{waiting}"
    );
    assert!(
        waiting.contains(
            "agent_ids,paris,1001,2026-01-15T08:00:00+01:00,2026-01-15T10:00:00+01:00,2,0.75"
        ),
        "{waiting}"
    );

    // When the admin maps it to Break (one command, no re-import)
    let said = site.ok(&["map", "code", "--system", "paris", "BRK", "Break"]);
    assert!(said.contains("moved from \"Present\""), "{said}");

    // Then its past sessions are Break at once, and it no longer waits
    let break_id = site
        .store
        .count("SELECT id FROM activities WHERE name = 'Break'");
    let of = |code: &str| -> Vec<i64> {
        site.store
            .view()
            .iter()
            .filter(|r| r.code.as_deref() == Some(code))
            .map(|r| r.activity_id)
            .collect()
    };
    assert_eq!(of("BRK"), [break_id, break_id]);
    assert_eq!(of("ACW"), [1]);
    let waiting = site.ok(&["unmapped", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&waiting).unwrap();
    let codes: Vec<&str> = json["codes_on_present"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["ACW"]);

    // And it moves again from Break to Lunch in one step; the code keeps exactly one owner
    let said = site.ok(&["map", "code", "--system", "paris", "BRK", "lunch"]);
    assert!(said.contains("moved from \"Break\""), "{said}");
    let lunch_id = site
        .store
        .count("SELECT id FROM activities WHERE name = 'Lunch'");
    assert_eq!(of("BRK"), [lunch_id, lunch_id]);
    assert_eq!(
        site.store
            .count("SELECT COUNT(*) FROM external_activity_codes WHERE code = 'BRK'"),
        1
    );

    // And an unknown activity or system is refused, naming it, and changes nothing
    let before = site.dump();
    let why = site.refused(&["map", "code", "--system", "paris", "BRK", "Coffee"]);
    assert!(why.contains("no activity named \"Coffee\""), "{why}");
    let why = site.refused(&["map", "code", "--system", "lyon", "BRK", "Break"]);
    assert!(why.contains("no system named \"lyon\""), "{why}");
    assert_eq!(site.dump(), before);

    // And a code not seen yet is mapped ahead of its first import
    site.ok(&["map", "code", "--system", "paris", "TRAIN", "Break"]);
    site.paris().set_rows(&[row(
        "1001",
        Some("TRAIN"),
        "2026-01-16 08:00:00",
        Some("2026-01-16 09:00:00"),
    )]);
    site.sync("2026-01-16");
    assert_eq!(of("TRAIN"), [break_id]);
});

on_both_stores!(
    an_agent_id_handed_on_keeps_its_past_with_the_former_owner_across_dst,
    |kind| {
        // Given ID 1001's sessions around the spring change in Paris (2026-03-29, 02:00 -> 03:00)
        let site = CliSite::paris_only(kind);
        site.paris().set_rows(&[
            row(
                "1001",
                None,
                "2026-03-28 22:00:00",
                Some("2026-03-28 23:59:00"),
            ),
            row(
                "1001",
                None,
                "2026-03-29 00:30:00",
                Some("2026-03-29 04:00:00"),
            ),
            row(
                "1001",
                None,
                "2026-03-30 09:00:00",
                Some("2026-03-30 10:00:00"),
            ),
            row(
                "1001",
                None,
                "2026-03-31 09:00:00",
                Some("2026-03-31 10:00:00"),
            ),
        ]);
        site.sync("2026-03-28");
        site.sync("2026-03-29");
        site.sync("2026-03-30");
        site.sync("2026-03-31");
        site.ok(&["employee", "add", "Alice"]);
        site.ok(&["employee", "add", "Bob"]);
        let (alice, bob) = (site.employee_id("Alice"), site.employee_id("Bob"));
        let owners =
            || -> Vec<Option<i64>> { site.store.view().iter().map(|r| r.employee_id).collect() };

        // When the ID is Alice's (no date: from the beginning), then Bob's from 29 March
        site.ok(&["map", "agent", "--system", "paris", "1001", "Alice"]);
        assert_eq!(owners(), [Some(alice); 4]);
        let said = site.ok(&[
            "map",
            "agent",
            "--system",
            "paris",
            "1001",
            "Bob",
            "--from",
            "2026-03-29",
        ]);
        assert!(said.contains("\"Alice\" from the beginning until 2026-03-29T00:00:00+01:00; \"Bob\" from 2026-03-29T00:00:00+01:00 on"), "{said}");

        // Then the sessions that start before local midnight of the 29th stay Alice's, the rest are Bob's
        assert_eq!(owners(), [Some(alice), Some(bob), Some(bob), Some(bob)]);
        assert_eq!(
            site.store
                .count("SELECT employee_id FROM external_agent_ids WHERE external_id = '1001'"),
            bob
        );

        // And unmapped from the 31st, the last session waits for an owner, and is listed so
        site.ok(&[
            "unmap",
            "agent",
            "--system",
            "paris",
            "1001",
            "--from",
            "2026-03-31",
        ]);
        assert_eq!(owners(), [Some(alice), Some(bob), Some(bob), None]);
        let waiting = site.ok(&["unmapped", "--format", "csv"]);
        assert!(
            waiting.contains(
                "agent_ids,paris,1001,2026-03-31T09:00:00+02:00,2026-03-31T09:00:00+02:00,1,1.00"
            ),
            "{waiting}"
        );

        // And a hand-on to the same owner again changes nothing
        let said = site.ok(&[
            "map",
            "agent",
            "--system",
            "paris",
            "1001",
            "Bob",
            "--from",
            "2026-03-29",
        ]);
        assert!(said.contains("now"), "{said}");
        let again = site.ok(&[
            "map",
            "agent",
            "--system",
            "paris",
            "1001",
            "Bob",
            "--from",
            "2026-03-29",
        ]);
        assert!(again.contains("unchanged"), "{again}");
        // And an unknown employee is refused, changing nothing
        let before = site.dump();
        let why = site.refused(&[
            "map",
            "agent",
            "--system",
            "paris",
            "1001",
            "Carol",
            "--from",
            "2026-03-30",
        ]);
        assert!(why.contains("no employee named \"Carol\""), "{why}");
        assert_eq!(site.dump(), before);
    }
);

/// A mapped site: codes, and agent IDs with periods and without owner.
fn mapped_site(kind: StoreKind) -> CliSite {
    let site = CliSite::paris_only(kind);
    site.paris().set_rows(&[
        row(
            "1001",
            Some("BRK"),
            "2026-01-15 08:00:00",
            Some("2026-01-15 08:30:00"),
        ),
        row(
            "1002",
            Some("ACW"),
            "2026-01-15 09:00:00",
            Some("2026-01-15 09:05:00"),
        ),
        row(
            "1003",
            None,
            "2026-01-15 09:00:00",
            Some("2026-01-15 09:05:00"),
        ),
    ]);
    site.sync("2026-01-15");
    site.ok(&["activity", "add", "Break"]);
    site.ok(&["activity", "add", "After-call, work"]);
    site.ok(&["employee", "add", "Alice", "--external-ref", "E1"]);
    site.ok(&["employee", "add", "Bob"]);
    site.ok(&["map", "code", "--system", "paris", "BRK", "Break"]);
    site.ok(&[
        "map",
        "code",
        "--system",
        "paris",
        "ACW",
        "After-call, work",
    ]);
    site.ok(&["map", "agent", "--system", "paris", "1001", "Alice"]);
    site.ok(&[
        "map",
        "agent",
        "--system",
        "paris",
        "1001",
        "Bob",
        "--from",
        "2026-03-29",
    ]);
    site.ok(&["map", "agent", "--system", "paris", "1002", "Bob"]);
    site
}

on_both_stores!(
    a_mapping_exported_and_imported_gives_the_same_bytes,
    |kind| {
        let site = mapped_site(kind);
        // When the mapping is exported, imported and exported again
        let first = site.ok(&["mappings", "export", "--system", "paris", "--format", "csv"]);
        assert_eq!(
            first,
            "kind,external_id,activity,employee,employee_ref,from,to\n\
         code,ACW,\"After-call, work\",,,,\n\
         code,BRK,Break,,,,\n\
         agent,1001,,Alice,E1,,2026-03-29\n\
         agent,1001,,Bob,,2026-03-29,\n\
         agent,1002,,Bob,,,\n\
         agent,1003,,,,,\n"
        );
        std::fs::write(site.dir.path().join("m.csv"), &first).unwrap();
        let before = site.dump();
        let said = site.ok(&[
            "mappings", "import", "--system", "paris", "--format", "csv", "m.csv",
        ]);
        assert!(said.contains("0 and 0 of them changed"), "{said}");

        // Then nothing changed, and the second export is the same, byte for byte
        assert_eq!(site.dump(), before);
        assert_eq!(
            site.ok(&["mappings", "export", "--system", "paris", "--format", "csv"]),
            first
        );

        // And an edited file is applied: a code moved, an ID handed on, a new ID mapped ahead
        let edited = first
            .replace("code,BRK,Break,", "code,BRK,\"After-call, work\",")
            .replace(
                "agent,1002,,Bob,,,",
                "agent,1002,,Bob,,,2026-02-01\nagent,1002,,,E1,2026-02-01,",
            )
            + "agent,2001,,Bob,,,\n";
        std::fs::write(site.dir.path().join("m2.csv"), &edited).unwrap();
        let said = site.ok(&[
            "mappings", "import", "--system", "paris", "--format", "csv", "m2.csv",
        ]);
        assert!(said.contains("1 and 2 of them changed"), "{said}");
        let again = site.ok(&["mappings", "export", "--system", "paris", "--format", "csv"]);
        assert!(again.contains("code,BRK,\"After-call, work\""), "{again}");
        assert!(
            again.contains(
                "agent,1002,,Alice,E1,2026-02-01,\nagent,1003,,,,,\nagent,2001,,Bob,,,\n"
            ),
            "{again}"
        );
    }
);

on_both_stores!(
    a_bad_mapping_file_changes_nothing_and_names_its_lines,
    |kind| {
        let site = mapped_site(kind);
        let before = site.dump();
        // Given a file with an unknown activity (line 3), an ID given two owners at once (lines 5 and 6), a
        // malformed line (7) and an unknown employee (8)
        let bad = "kind,external_id,activity,employee,employee_ref,from,to\n\
               code,ACW,Break,,,,\n\
               code,BRK,Coffee,,,,\n\
               agent,1001,,Alice,E1,,\n\
               agent,1002,,Alice,,,2026-02-01\n\
               agent,1002,,Bob,,2026-01-01,\n\
               agent,1003,,Bob\n\
               agent,1004,,Carol,,,\n";
        std::fs::write(site.dir.path().join("bad.csv"), bad).unwrap();

        // When it is imported, Then it is refused (exit 65), each line at fault named, and nothing changed
        let why = site.refused(&[
            "mappings", "import", "--system", "paris", "--format", "csv", "bad.csv",
        ]);
        for expected in [
        "line 3: code \"BRK\": there is no activity named \"Coffee\"",
        "line 6: agent ID \"1002\" has two owners at once: this period overlaps the one on line 5",
        "line 7: not a CSV line of 7 fields",
        "line 8: agent ID \"1004\": there is no employee named \"Carol\"",
    ] {
        assert!(why.contains(expected), "{expected}\n{why}");
    }
        assert!(
            !why.contains("line 2:") && !why.contains("line 4:"),
            "{why}"
        );
        assert_eq!(site.dump(), before);

        // And a code given twice, or a wrong header, is refused too
        std::fs::write(
        site.dir.path().join("twice.csv"),
        "kind,external_id,activity,employee,employee_ref,from,to\ncode,BRK,Break,,,,\ncode,BRK,Present,,,,\n",
    )
    .unwrap();
        let why = site.refused(&[
            "mappings",
            "import",
            "--system",
            "paris",
            "--format",
            "csv",
            "twice.csv",
        ]);
        assert!(
            why.contains("line 3: code \"BRK\" is given an activity on line 2 already"),
            "{why}"
        );
        std::fs::write(site.dir.path().join("header.csv"), "code,id,activity\n").unwrap();
        let why = site.refused(&[
            "mappings",
            "import",
            "--system",
            "paris",
            "--format",
            "csv",
            "header.csv",
        ]);
        assert!(why.contains("line 1: the header is"), "{why}");
        assert_eq!(site.dump(), before);
    }
);
