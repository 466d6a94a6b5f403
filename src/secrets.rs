//! Passwords must never reach a log line, an error message or `import_runs.error`.
//!
//! Every secret found while reading the configuration (the password of the WFM database URL, `PWD=` and
//! `Password=` of ODBC connection strings) is registered here, and `redact` replaces each occurrence, raw or
//! percent-encoded, with `***`. Error texts pass through `redact` where they are printed or stored.

use std::sync::RwLock;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remembers a secret for `redact`. Empty strings are ignored.
pub fn register(secret: &str) {
    if secret.is_empty() {
        return;
    }
    let mut all = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    // As written, percent-encoded (URLs), and escaped as a JSON string (JSON logs escape `"` and `\`
    // before the log writer sees the line).
    for form in [
        secret.to_owned(),
        percent_encode(secret),
        json_escape(secret),
    ] {
        if !all.contains(&form) {
            all.push(form);
        }
    }
    // Longest first, so that a secret containing another is replaced whole.
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every registered secret replaced by `***`.
pub fn redact(text: &str) -> String {
    let all = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_owned();
    for s in all.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn percent_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Registers every password-looking value of a text read as configuration (a TOML file that may not parse):
/// `Pwd=`/`Password=` of connection strings and the password of anything written like a URL, so that no
/// message about that text can show them.
pub fn register_in_text(text: &str) {
    for line in text.lines() {
        let lower = line.to_ascii_lowercase();
        if lower.contains("pwd") || lower.contains("password") {
            for piece in line.split(['"', '\'']) {
                register_odbc_password(piece.trim());
            }
        }
        if line.contains('@') {
            for piece in line.split(['"', '\'', ' ', '\t', '=']) {
                if piece.contains('@') {
                    register_url_password(piece.trim());
                }
            }
        }
    }
}

/// Registers the password of a database URL (`postgres://user:pass@host/db`).
pub fn register_url_password(database_url: &str) {
    if let Ok(u) = url::Url::parse(database_url) {
        if let Some(p) = u.password() {
            register(p);
            if let Ok(decoded) = percent_decode(p) {
                register(&decoded);
            }
        }
        // libpq also takes `?password=…` (and `sslpassword`) in the query string.
        for (key, value) in u.query_pairs() {
            if key.eq_ignore_ascii_case("password") || key.eq_ignore_ascii_case("sslpassword") {
                register(&value);
            }
        }
        if let Some(q) = u.query() {
            for pair in q.split('&') {
                if let Some((k, v)) = pair.split_once('=') {
                    if k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword") {
                        register(v);
                    }
                }
            }
        }
    } else if let Some((before_at, _)) = database_url.rsplit_once('@') {
        // Unparsable URL (`postgres:/u:p@h`, `postgres//u:p@h`, a `/` in the password): still hide
        // whatever sits between `user:` and the last `@`.
        let rest = match before_at.split_once("://") {
            Some((_, r)) => r,
            None => match before_at.split_once(':') {
                Some((scheme, r))
                    if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphabetic()) =>
                {
                    r
                }
                _ => before_at,
            },
        };
        if let Some((_, p)) = rest.trim_start_matches('/').split_once(':') {
            register(p);
        }
    }
}

fn percent_decode(s: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out)
}

/// Registers `PWD=` / `Password=` values of an ODBC connection string (braced values included).
pub fn register_odbc_password(connection_string: &str) {
    let mut rest = connection_string;
    while !rest.is_empty() {
        let (key, after) = match rest.split_once('=') {
            Some(kv) => kv,
            None => break,
        };
        let (value, next) = if let Some(braced) = after.strip_prefix('{') {
            // `}}` escapes a brace inside a braced value.
            let mut end = 0;
            let b = braced.as_bytes();
            while end < b.len() {
                if b[end] == b'}' {
                    if b.get(end + 1) == Some(&b'}') {
                        end += 2;
                        continue;
                    }
                    break;
                }
                end += 1;
            }
            let value = &braced[..end.min(braced.len())];
            let next = braced.get(end + 1..).unwrap_or("");
            (value, next.strip_prefix(';').unwrap_or(next))
        } else {
            match after.split_once(';') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        let key = key.trim().to_ascii_lowercase();
        if key == "pwd" || key == "password" {
            register(value);
            register(&value.replace("}}", "}"));
        }
        rest = next;
    }
}

/// Standard error with every registered secret removed: the log writer. Drivers' own diagnostics reach
/// the log through odbc-api's `log` records, and may quote a user name that is also a password, or worse.
/// tracing-subscriber writes each formatted event with one `write` call, so secrets are never split.
pub struct RedactedStderr;

impl std::io::Write for RedactedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactedStderr {
    type Writer = RedactedStderr;

    fn make_writer(&'a self) -> Self::Writer {
        RedactedStderr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odbc_and_url_passwords_are_redacted_raw_and_encoded() {
        register_odbc_password(
            "Driver={PostgreSQL Unicode};Server=db;Uid=wfm;PWD={s3cr;et}};x};Port=5432",
        );
        register_url_password("postgres://wfm:p%40ss%3Aword@db:5432/wfm");
        register_url_password("postgres://wfm@db:5432/wfm?sslmode=require&password=Qu%3Dery-pw");
        let text = "failed: PWD={s3cr;et}};x} and s3cr;et};x and p%40ss%3Aword and p@ss:word; Qu%3Dery-pw Qu=ery-pw";
        let out = redact(text);
        assert!(!out.contains("s3cr"), "{out}");
        assert!(!out.contains("p@ss"), "{out}");
        assert!(!out.contains("p%40ss"), "{out}");
        assert!(!out.contains("Qu"), "{out}");
    }

    #[test]
    fn a_password_is_redacted_in_a_json_log_line_too() {
        register("q\"uo\\te");
        let line = r#"{"error":"cannot connect: password q\"uo\\te refused"}"#;
        assert_eq!(
            redact(line),
            r#"{"error":"cannot connect: password *** refused"}"#
        );
    }
}
