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
    // A name after `.` (a column `s.lock`) or before `(` (a function, MySQL's `TRUNCATE(x, 0)`) is not a
    // statement word.
    let writing =
        |w: &&Word<'_>| !w.qualified && !w.called && WRITING_WORDS.contains(&w.upper().as_str());
    if let Some(w) = words.iter().find(writing) {
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

/// A bare word or a `;`, with its line, outside literals, quoted identifiers and comments; whether it
/// follows a `.` and whether a `(` follows it.
struct Word<'a> {
    text: &'a str,
    line: usize,
    qualified: bool,
    called: bool,
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
            // A literal or quoted identifier; a doubled quote escapes itself, and in PostgreSQL's E'…'
            // a backslash escapes the next character.
            q @ (b'\'' | b'"' | b'`') => {
                let escapes = q == b'\''
                    && i > 0
                    && matches!(b[i - 1], b'E' | b'e')
                    && (i < 2 || !(b[i - 2].is_ascii_alphanumeric() || b[i - 2] == b'_'));
                i += 1;
                loop {
                    skip_to(&mut i, &mut line, &|j| {
                        b[j] == q
                            && !(escapes
                                && j > 0
                                && b[j - 1] == b'\\'
                                && !escaped_backslash(b, j - 1))
                    });
                    i += 1;
                    if b.get(i) != Some(&q) {
                        break;
                    }
                    i += 1;
                }
            }
            // A dollar-quoted string: $$…$$ or $tag$…$tag$.
            b'$' if dollar_tag(&text[i..]).is_some() => {
                let tag = dollar_tag(&text[i..]).unwrap_or("$$");
                i += tag.len();
                let close = text[i..].find(tag).map_or(b.len(), |p| i + p);
                line += text[i..close].matches('\n').count();
                i = (close + tag.len()).min(b.len());
            }
            b'-' if b.get(i + 1) == Some(&b'-') => skip_to(&mut i, &mut line, &|j| b[j] == b'\n'),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                skip_to(&mut i, &mut line, &|j| {
                    b[j] == b'*' && b.get(j + 1) == Some(&b'/')
                });
                i += 2;
            }
            b';' => {
                out.push(Word {
                    text: ";",
                    line,
                    qualified: false,
                    called: false,
                });
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'$')) {
                    i += 1;
                }
                let before = text[..start].trim_end();
                let after = text[i..].trim_start();
                out.push(Word {
                    text: &text[start..i],
                    line,
                    qualified: before.ends_with('.'),
                    called: after.starts_with('('),
                });
            }
            _ => i += 1,
        }
    }
    out
}

/// Whether the backslash at `j` is itself escaped by an odd run of backslashes before it.
fn escaped_backslash(b: &[u8], j: usize) -> bool {
    b[..j].iter().rev().take_while(|c| **c == b'\\').count() % 2 == 1
}

/// The opening `$tag$` of a dollar-quoted string at the start of `s`, if there is one.
fn dollar_tag(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('$')?;
    let end = rest.find('$')?;
    let tag = &rest[..end];
    (tag.bytes().all(|c| c.is_ascii_alphabetic() || c == b'_')).then(|| &s[..end + 2])
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
            "SELECT s.lock, s.call, TRUNCATE(x, 0), INSERT(a, 1, 2, 'b') FROM t s",
            "SELECT E'it\\'s', $$ DELETE $$, $q$ ; DROP $q$ FROM t",
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
            ("SELECT $$'$$; DELETE FROM t; -- '", "line 1: DELETE writes"),
            (
                "SELECT E'a\\''; DELETE FROM t; -- '",
                "line 1: DELETE writes",
            ),
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
