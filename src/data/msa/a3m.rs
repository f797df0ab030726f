//! A3M reader (HH-suite's format, as hhblits, ColabFold and AlphaFold's pipelines write it):
//! FASTA records whose rows use upper-case letters and `-` for the query's columns and
//! lower-case letters for residues inserted between them.
//!
//! Grammar, line by line: blank lines and lines starting with `#` are skipped (hhblits writes
//! `#A3M#`, ColabFold `#len\tcardinality` above complexes); `>` opens a record, named by the
//! first word of the header (the rest is its description); other lines are sequence text,
//! whitespace removed, and sequence text before the first header is an error. Within a row:
//! upper case and `-` align to the next query column; a lower-case letter is an insertion,
//! counted into the deletion of the next aligned column (insertions after the last column are
//! dropped, as in openfold3's `parse_a3m`); `.` (a gap within an insertion) is ignored;
//! anything else is an error naming line and column. The query is the first record, and
//! every record must align to exactly as many columns as it has. A read limited to `max_rows`
//! records stops at the header of the next one: nothing after it is looked at.

use super::error::{MsaError, Result};
use super::{Alphabet, Row};

/// A record being read: its row so far and where its header was.
struct Open {
    row: Row,
    header_line: usize,
    /// Insertions seen since the last aligned column.
    pending: u16,
}

pub(crate) fn parse(text: &[u8], origin: &str, alphabet: Alphabet, max_rows: usize) -> Result<Vec<Row>> {
    let mut rows: Vec<Row> = Vec::new();
    let mut open: Option<Open> = None;
    for (index, line) in text.split(|&b| b == b'\n').enumerate() {
        let number = index + 1;
        let line = line.trim_ascii();
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        if let Some(header) = line.strip_prefix(b">") {
            if let Some(done) = open.take() {
                close(done, &mut rows, origin)?;
            }
            if rows.len() >= max_rows {
                return Ok(rows);
            }
            let header = String::from_utf8_lossy(header);
            let header = header.trim();
            let (name, description) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
            let row = Row {
                name: name.to_owned(),
                description: description.trim().to_owned(),
                classes: Vec::with_capacity(rows.first().map_or(0, |q| q.classes.len())),
                deletions: Vec::with_capacity(rows.first().map_or(0, |q| q.classes.len())),
            };
            open = Some(Open { row, header_line: number, pending: 0 });
            continue;
        }
        let Some(record) = open.as_mut() else {
            return Err(syntax(origin, number, "", "a '>' header before the first sequence line", shown(line)));
        };
        for (column, &b) in line.iter().enumerate() {
            if b.is_ascii_lowercase() {
                record.pending = record.pending.saturating_add(1);
            } else if let Some(class) = alphabet.encode(b) {
                record.row.classes.push(class);
                record.row.deletions.push(record.pending);
                record.pending = 0;
            } else if b != b'.' && !b.is_ascii_whitespace() {
                return Err(syntax(
                    origin,
                    number,
                    &record.row.name,
                    "a letter, '-' or '.'",
                    format!("{:?} at column {}", char::from(b), column + 1),
                ));
            }
        }
    }
    match open {
        Some(done) => close(done, &mut rows, origin)?,
        None => {
            return Err(syntax(origin, 1, "", "A3M records (a '>' header, then the aligned sequence)", "none".into()));
        }
    }
    Ok(rows)
}

/// Ends a record: the query fixes the width, every later row must match it.
fn close(done: Open, rows: &mut Vec<Row>, origin: &str) -> Result<()> {
    let got = done.row.classes.len();
    match rows.first() {
        None if got == 0 => {
            return Err(syntax(
                origin,
                done.header_line,
                &done.row.name,
                "a query with aligned residues",
                "none".into(),
            ));
        }
        Some(query) if query.classes.len() != got => {
            return Err(MsaError::RaggedRow {
                origin: origin.to_owned(),
                line: done.header_line,
                name: done.row.name,
                expected: query.classes.len(),
                got,
            });
        }
        _ => {}
    }
    rows.push(done.row);
    Ok(())
}

pub(crate) fn syntax(origin: &str, line: usize, record: &str, expected: &str, got: String) -> MsaError {
    MsaError::Syntax {
        origin: origin.to_owned(),
        line,
        record: if record.is_empty() { String::new() } else { format!("record {record:?}: ") },
        expected: expected.to_owned(),
        got,
    }
}

/// A line for an error message: quoted, cut after 40 characters.
pub(crate) fn shown(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Alphabet, Msa};

    fn err(text: &str) -> String {
        Msa::parse_a3m(text.as_bytes(), "x.a3m", Alphabet::Protein).unwrap_err().to_string()
    }

    #[test]
    fn insertions_count_into_the_next_column_and_trailing_ones_drop() {
        let msa =
            Msa::parse_a3m(b"#A3M#\n>q desc\nMKV\n\n>h1 OS=x\n-ab\nKV\nzz\n>h2\nM.k.K-\n", "x", Alphabet::Protein)
                .unwrap();
        assert_eq!(msa.names(), &["q", "h1", "h2"]);
        assert_eq!(msa.letters(1), "-KV");
        assert_eq!(msa.deletion_row(1), &[0, 2, 0]);
        assert_eq!(msa.deletion_row(2), &[0, 1, 0]);
    }

    #[test]
    fn malformed_files_name_line_and_record() {
        assert_eq!(err(""), "x.a3m:1: expected A3M records (a '>' header, then the aligned sequence), got none");
        assert_eq!(err("MKV\n>q\nMKV\n"), "x.a3m:1: expected a '>' header before the first sequence line, got \"MKV\"");
        assert_eq!(
            err(">q\nMKV\n>h\nM1V\n"),
            "x.a3m:4: record \"h\": expected a letter, '-' or '.', got '1' at column 2"
        );
        assert_eq!(err(">q\n\n>h\nMK\n"), "x.a3m:1: record \"q\": expected a query with aligned residues, got none");
        let ragged = err(">q\nMKV\n>h\nMK\n");
        assert!(
            ragged.starts_with("x.a3m:3: record \"h\" has 2 aligned columns, the query (first record) has 3"),
            "{ragged}"
        );
    }
}
