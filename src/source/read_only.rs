//! acdsync only reads the source. Two guards, each enough on its own for the engines tested here:
//!
//! - before anything is sent, an SQL file must hold one statement that starts with SELECT or WITH and
//!   names none of the words that write (a writable CTE such as `WITH d AS (DELETE …) SELECT …` is
//!   refused): `check`, run when the file is loaded, so a bad file fails the config (exit 78);
//! - the connection is put in read-only mode before the query runs (`session_statement`): a read-only
//!   transaction on PostgreSQL and MariaDB/MySQL, `query_only` on SQLite, so that a function with a side
//!   effect (`nextval`) fails too. Other engines have only the first guard (odbc-api cannot set
//!   SQL_ATTR_ACCESS_MODE); give their connection string a read-only login.

use std::path::Path;

/// Words that write or take locks, refused anywhere outside string literals, quoted identifiers and
/// comments. `INTO` covers `SELECT … INTO table` and `INTO OUTFILE`; `UPDATE` covers `FOR UPDATE`.
const WRITING_WORDS: [&str; 14] = [
    "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "TRUNCATE", "DROP", "ALTER", "CREATE",
    "GRANT", "REVOKE", "INTO", "CALL", "LOCK",
];

/// Checks that `text` is one reading statement (see the module's comment); `path` names the file in the
/// message.
pub fn check(path: &Path, text: &str) -> Result<(), String> {
    let refuse = |line: usize, why: String| {
        Err(format!(
            "sql_file {} line {line}: {why}; acdsync only reads the source, so the file must hold one SELECT (or WITH … SELECT) statement",
            path.display()
        ))
    };
    let words = words(text);
    match words.iter().find(|w| w.text != ";") {
        None => return refuse(1, "no statement".into()),
        Some(w) if !matches!(w.upper().as_str(), "SELECT" | "WITH") => {
            return refuse(w.line, format!("the statement starts with {}", w.text))
        }
        Some(_) => {}
    }
    if let Some(w) = words
        .iter()
        .find(|w| WRITING_WORDS.contains(&w.upper().as_str()))
    {
        return refuse(
            w.line,
            format!("{} writes to the source or locks it", w.text),
        );
    }
    // A `;` followed by anything but more `;` starts a second statement.
    if let Some(pos) = words.iter().position(|w| w.text == ";") {
        if let Some(w) = words[pos..].iter().find(|w| w.text != ";") {
            return refuse(w.line, "a second statement after `;`".into());
        }
    }
    Ok(())
}

/// A bare word or a `;`, with its line, outside literals, quoted identifiers and comments.
struct Word<'a> {
    text: &'a str,
    line: usize,
}

impl Word<'_> {
    fn upper(&self) -> String {
        self.text.to_ascii_uppercase()
    }
}

fn words(text: &str) -> Vec<Word<'_>> {
    let b = text.as_bytes();
    let (mut i, mut line, mut out) = (0, 1, Vec::new());
    let skip_to = |i: &mut usize, line: &mut usize, end: &dyn Fn(usize) -> bool| {
        while *i < b.len() && !end(*i) {
            *line += usize::from(b[*i] == b'\n');
            *i += 1;
        }
    };
    while i < b.len() {
        match b[i] {
            b'\n' => {
                line += 1;
                i += 1;
            }
            // A literal or quoted identifier; a doubled quote escapes itself.
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                loop {
                    skip_to(&mut i, &mut line, &|j| b[j] == q);
                    i += 1;
                    if b.get(i) != Some(&q) {
                        break;
                    }
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => skip_to(&mut i, &mut line, &|j| b[j] == b'\n'),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                skip_to(&mut i, &mut line, &|j| {
                    b[j] == b'*' && b.get(j + 1) == Some(&b'/')
                });
                i += 2;
            }
            b';' => {
                out.push(Word { text: ";", line });
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'$')) {
                    i += 1;
                }
                out.push(Word {
                    text: &text[start..i],
                    line,
                });
            }
            _ => i += 1,
        }
    }
    out
}

/// The statement that makes a connection to `dbms` (as the driver names it) read-only, if acdsync knows
/// one for it. Fixed text, never user input.
pub fn session_statement(dbms: &str) -> Option<&'static str> {
    let dbms = dbms.to_ascii_lowercase();
    if dbms.contains("postgres") {
        Some("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    } else if dbms.contains("mysql") || dbms.contains("mariadb") {
        Some("SET SESSION TRANSACTION READ ONLY")
    } else if dbms.contains("sqlite") {
        Some("PRAGMA query_only = 1")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(sql: &str) -> Result<(), String> {
        check(Path::new("q.sql"), sql)
    }

    #[test]
    fn reading_statements_pass() {
        for sql in [
            "SELECT a, updated_at, b FROM t WHERE c = 'DELETE FROM t' ORDER BY c;",
            "-- a comment: DELETE\nWITH x AS (SELECT 1 AS \"insert\") SELECT * FROM x /* UPDATE */",
            "select replace(a, 'x', 'y'), `into` from t;;\n",
        ] {
            assert_eq!(checked(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn writing_or_second_statements_are_refused_with_the_file_and_line() {
        let cases = [
            ("DELETE FROM t", "line 1: the statement starts with DELETE"),
            (
                "WITH d AS (\n  DELETE FROM t RETURNING *\n) SELECT * FROM d",
                "line 2: DELETE writes",
            ),
            ("SELECT * FROM t FOR UPDATE", "UPDATE writes"),
            ("SELECT * INTO copy FROM t", "INTO writes"),
            ("SELECT 1;\nDROP TABLE t", "line 2: DROP writes"),
            ("SELECT 1; SELECT 2", "a second statement"),
            ("PRAGMA writable_schema = 1", "starts with PRAGMA"),
            ("", "no statement"),
        ];
        for (sql, needle) in cases {
            let err = checked(sql).unwrap_err();
            assert!(
                err.contains("sql_file q.sql") && err.contains(needle),
                "{sql}: {err}"
            );
        }
    }

    #[test]
    fn each_engine_tested_here_has_a_read_only_session() {
        assert!(session_statement("PostgreSQL")
            .unwrap()
            .contains("READ ONLY"));
        assert!(session_statement("MariaDB").unwrap().contains("READ ONLY"));
        assert!(session_statement("MySQL").unwrap().contains("READ ONLY"));
        assert_eq!(session_statement("SQLite"), Some("PRAGMA query_only = 1"));
        assert_eq!(session_statement("Informix"), None);
    }
}
