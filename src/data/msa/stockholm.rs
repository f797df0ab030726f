//! Stockholm reader (HMMER's jackhmmer/hmmsearch/nhmmer, Infernal and Rfam write it), for
//! the first alignment of a file.
//!
//! Grammar: the first non-blank line is `# STOCKHOLM 1.x`; `#=GS NAME DE TEXT` gives a row's
//! description (species may be read from it); other `#` lines (`#=GF`, `#=GC`, `#=GR`,
//! comments) are skipped; `NAME ALIGNED` lines hold sequences, and a name seen again
//! continues its row (interleaved blocks); `//` ends the alignment and only blank lines may
//! follow it. Every row must have the same aligned length.
//!
//! Columns are relative to the query, the first row, as in openfold3's `parse_stockholm` and
//! AlphaFold's `convert_stockholm_to_a3m`: a column is kept when the query has a residue
//! there (not `-` or `.`); a residue another row has in a dropped column is an insertion,
//! counted into the deletion of its next kept column. Residues are upper-cased: HMMER writes
//! insert-state residues in lower case.
//!
//! A read limited to `max_rows` rows keeps the first `max_rows` names; lines of later rows are
//! skipped unchecked, and the file is still read to its `//`.

use std::collections::HashMap;

use super::a3m::{shown, syntax};
use super::error::Result;
use super::{Alphabet, Row};

fn is_gap(b: u8) -> bool {
    b == b'-' || b == b'.'
}

pub(crate) fn parse(text: &[u8], origin: &str, alphabet: Alphabet, max_rows: usize) -> Result<Vec<Row>> {
    // Names and descriptions borrow from `text`: a 20 MB hmmsearch file has ~60k lines, and
    // an allocation per line was most of the reading time.
    let mut names: Vec<&[u8]> = Vec::new();
    let mut aligned: Vec<Vec<u8>> = Vec::new();
    let mut first_line: Vec<usize> = Vec::new();
    let mut index: HashMap<&[u8], usize> = HashMap::new();
    let mut descriptions: HashMap<&[u8], &[u8]> = HashMap::new();
    let (mut header_seen, mut terminated, mut last_line) = (false, false, 1);
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        let number = i + 1;
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        last_line = number;
        if terminated {
            return Err(syntax(origin, number, "", "nothing after '//' (one alignment per file)", shown(line)));
        }
        if !header_seen {
            if !line.starts_with(b"# STOCKHOLM") {
                return Err(syntax(origin, number, "", "the '# STOCKHOLM 1.0' header", shown(line)));
            }
            header_seen = true;
            continue;
        }
        if line == b"//" {
            terminated = true;
            continue;
        }
        if let Some(gs) = line.strip_prefix(b"#=GS") {
            let mut fields = gs.trim_ascii().splitn(2, u8::is_ascii_whitespace);
            let (name, rest) = (fields.next().unwrap_or_default(), fields.next().unwrap_or_default());
            let mut fields = rest.trim_ascii_start().splitn(2, u8::is_ascii_whitespace);
            if let (Some(b"DE"), Some(text)) = (fields.next(), fields.next()) {
                descriptions.insert(name, text.trim_ascii());
            }
            continue;
        }
        if line[0] == b'#' {
            continue;
        }
        let mut fields = line.split(|b| b.is_ascii_whitespace()).filter(|f| !f.is_empty());
        let (Some(name), Some(sequence), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(syntax(origin, number, "", "a 'NAME ALIGNED-SEQUENCE' line", shown(line)));
        };
        let row = match index.get(name) {
            Some(&row) => row,
            // A row past the limit: its lines are skipped, unchecked.
            None if names.len() >= max_rows => continue,
            None => {
                index.insert(name, names.len());
                names.push(name);
                aligned.push(Vec::new());
                first_line.push(number);
                names.len() - 1
            }
        };
        if let Some(at) = sequence.iter().position(|&b| !(b.is_ascii_alphabetic() || is_gap(b))) {
            let got = format!("{:?} at column {}", char::from(sequence[at]), line.len() - sequence.len() + at + 1);
            return Err(syntax(origin, number, &String::from_utf8_lossy(name), "a letter, '-' or '.'", got));
        }
        aligned[row].extend_from_slice(sequence);
    }
    if !header_seen || aligned.is_empty() {
        return Err(syntax(origin, 1, "", "a Stockholm alignment with sequence lines", "none".into()));
    }
    if !terminated {
        return Err(syntax(
            origin,
            last_line,
            "",
            "'//' ending the alignment",
            "the end of the file (truncated?)".into(),
        ));
    }
    let keep: Vec<bool> = aligned[0].iter().map(|&b| !is_gap(b)).collect();
    if !keep.contains(&true) {
        let query = String::from_utf8_lossy(names[0]);
        return Err(syntax(origin, first_line[0], &query, "a query (first row) with residues", "only gaps".into()));
    }
    let mut rows = Vec::with_capacity(names.len());
    for ((name, text), line) in names.into_iter().zip(aligned).zip(first_line) {
        let description = descriptions.get(name).map(|d| String::from_utf8_lossy(d).into_owned());
        let name = String::from_utf8_lossy(name).into_owned();
        if text.len() != keep.len() {
            let expected = format!("{} aligned characters, as the first row has", keep.len());
            return Err(syntax(origin, line, &name, &expected, text.len().to_string()));
        }
        let width = keep.iter().filter(|&&k| k).count();
        let mut row = Row {
            description: description.unwrap_or_default(),
            name,
            classes: Vec::with_capacity(width),
            deletions: Vec::with_capacity(width),
        };
        let mut pending = 0u16;
        for (&b, &kept) in text.iter().zip(&keep) {
            match (kept, is_gap(b)) {
                (true, true) => row.classes.push(super::GAP),
                (true, false) => row
                    .classes
                    .push(alphabet.encode(b.to_ascii_uppercase()).expect("letters were checked as the line was read")),
                (false, false) => pending = pending.saturating_add(1),
                (false, true) => continue,
            }
            if kept {
                row.deletions.push(std::mem::take(&mut pending));
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::super::{Alphabet, Msa};

    fn sto(text: &str) -> Result<Msa, String> {
        Msa::parse_stockholm(text.as_bytes(), "x.sto", Alphabet::Rna).map_err(|e| e.to_string())
    }

    #[test]
    fn blocks_join_and_query_gaps_become_insertions() {
        let msa = sto(
            "# STOCKHOLM 1.0\n#=GS h/1-9    DE   [subseq from] RepID=A0A000_ECOLI\n\nq   AC.G\nh/1-9   AcuG\n\nq  -U\nh/1-9  A-\n#=GC RF xx\n//\n",
        )
        .unwrap();
        assert_eq!(msa.letters(0), "ACGU");
        assert_eq!(msa.letters(1), "ACG-");
        assert_eq!(msa.deletion_row(1), &[0, 0, 1, 1]);
        assert_eq!(msa.species()[1].as_deref(), Some("ECOLI"));
    }

    #[test]
    fn malformed_files_name_line_and_record() {
        assert_eq!(sto(">q\nACGU\n").unwrap_err(), "x.sto:1: expected the '# STOCKHOLM 1.0' header, got \">q\"");
        assert_eq!(
            sto("# STOCKHOLM 1.0\nq ACGU\nh ACG\n").unwrap_err(),
            "x.sto:3: expected '//' ending the alignment, got the end of the file (truncated?)"
        );
        assert_eq!(
            sto("# STOCKHOLM 1.0\nq ACGU\nh ACG\n//\n").unwrap_err(),
            "x.sto:3: record \"h\": expected 4 aligned characters, as the first row has, got 3"
        );
        assert_eq!(
            sto("# STOCKHOLM 1.0\nq AC*U\n//\n").unwrap_err(),
            "x.sto:2: record \"q\": expected a letter, '-' or '.', got '*' at column 5"
        );
        assert_eq!(
            sto("# STOCKHOLM 1.0\nq\n//\n").unwrap_err(),
            "x.sto:2: expected a 'NAME ALIGNED-SEQUENCE' line, got \"q\""
        );
        assert_eq!(
            sto("# STOCKHOLM 1.0\nq ..--\n//\n").unwrap_err(),
            "x.sto:2: record \"q\": expected a query (first row) with residues, got only gaps"
        );
        assert!(
            sto("# STOCKHOLM 1.0\nq AC\n//\n# STOCKHOLM 1.0\n")
                .unwrap_err()
                .contains("x.sto:4: expected nothing after '//'")
        );
    }
}
