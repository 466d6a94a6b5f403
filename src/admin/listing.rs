//! What the mapping commands list, in three forms: a table for people (columns aligned, numbers to the
//! right), and JSON or CSV for scripts (`--format`). Values are the same in all three.

use clap::ValueEnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    /// A duration in hours, shown with two decimals.
    Hours(f64),
    Empty,
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Hours(h) => format!("{h:.2}"),
            Cell::Empty => String::new(),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Cell::Text(s) => serde_json::Value::String(s.clone()),
            Cell::Int(n) => serde_json::Value::from(*n),
            Cell::Hours(h) => serde_json::Value::from((h * 100.0).round() / 100.0),
            Cell::Empty => serde_json::Value::Null,
        }
    }

    fn is_number(&self) -> bool {
        matches!(self, Cell::Int(_) | Cell::Hours(_))
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Text(s)
    }
}

impl From<Option<String>> for Cell {
    fn from(s: Option<String>) -> Cell {
        s.map_or(Cell::Empty, Cell::Text)
    }
}

/// One list: a name (its key in JSON, its `kind` in CSV when several are printed together), its columns
/// (snake_case: JSON keys and CSV headers) and its rows.
pub struct Listing {
    pub name: &'static str,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

/// The listings in `format`, as text for standard output.
pub fn render(listings: &[Listing], format: Format) -> anyhow::Result<String> {
    match format {
        Format::Table => Ok(table(listings)),
        Format::Json => json(listings),
        Format::Csv => csv(listings),
    }
}

fn table(listings: &[Listing]) -> String {
    let mut out = String::new();
    for (i, l) in listings.iter().enumerate() {
        if listings.len() > 1 {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&format!(
                "{} ({})\n",
                l.name.replace('_', " "),
                l.rows.len()
            ));
        }
        if l.rows.is_empty() {
            out.push_str("(none)\n");
            continue;
        }
        let headers: Vec<String> = l.columns.iter().map(|c| c.replace('_', " ")).collect();
        let cells: Vec<Vec<String>> = l
            .rows
            .iter()
            .map(|r| r.iter().map(Cell::text).collect())
            .collect();
        let widths: Vec<usize> = (0..headers.len())
            .map(|c| {
                cells
                    .iter()
                    .map(|r| r[c].chars().count())
                    .chain([headers[c].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let right: Vec<bool> = (0..headers.len())
            .map(|c| l.rows.iter().any(|r| r[c].is_number()))
            .collect();
        let line = |values: &[String]| {
            let padded: Vec<String> = values
                .iter()
                .enumerate()
                .map(|(c, v)| match right[c] {
                    true => format!("{v:>w$}", w = widths[c]),
                    false => format!("{v:<w$}", w = widths[c]),
                })
                .collect();
            format!("{}\n", padded.join("  ").trim_end())
        };
        out.push_str(&line(&headers));
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&line(&rule));
        for r in &cells {
            out.push_str(&line(r));
        }
    }
    out
}

fn objects(l: &Listing) -> serde_json::Value {
    l.rows
        .iter()
        .map(|r| {
            l.columns
                .iter()
                .zip(r)
                .map(|(c, v)| ((*c).to_owned(), v.json()))
                .collect::<serde_json::Map<_, _>>()
                .into()
        })
        .collect::<Vec<serde_json::Value>>()
        .into()
}

fn json(listings: &[Listing]) -> anyhow::Result<String> {
    let value = match listings {
        [one] => objects(one),
        many => many
            .iter()
            .map(|l| (l.name.to_owned(), objects(l)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    };
    Ok(serde_json::to_string_pretty(&value)? + "\n")
}

fn csv(listings: &[Listing]) -> anyhow::Result<String> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let several = listings.len() > 1;
    for (i, l) in listings.iter().enumerate() {
        if i == 0 || !several {
            let mut header: Vec<&str> = Vec::new();
            if several {
                header.push("kind");
            }
            header.extend(&l.columns);
            w.write_record(&header)?;
        }
        for r in &l.rows {
            let mut record: Vec<String> = Vec::new();
            if several {
                record.push(l.name.to_owned());
            }
            record.extend(r.iter().map(Cell::text));
            w.write_record(&record)?;
        }
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Listing {
        Listing {
            name: "activities",
            columns: vec!["id", "name", "hours"],
            rows: vec![
                vec![Cell::Int(1), Cell::Text("Present".into()), Cell::Hours(1.5)],
                vec![Cell::Int(12), Cell::Text("Lunch, late".into()), Cell::Empty],
            ],
        }
    }

    #[test]
    fn a_table_aligns_its_columns_and_numbers_to_the_right() {
        assert_eq!(
            table(&[sample()]),
            "id  name         hours\n--  -----------  -----\n 1  Present       1.50\n12  Lunch, late\n"
        );
    }

    #[test]
    fn json_and_csv_hold_the_same_values() {
        assert_eq!(
            json(&[sample()]).unwrap(),
            "[\n  {\n    \"id\": 1,\n    \"name\": \"Present\",\n    \"hours\": 1.5\n  },\n  {\n    \"id\": 12,\n    \"name\": \"Lunch, late\",\n    \"hours\": null\n  }\n]\n"
        );
        assert_eq!(
            csv(&[sample()]).unwrap(),
            "id,name,hours\n1,Present,1.50\n12,\"Lunch, late\",\n"
        );
    }
}
