//! The CIF reader against real files and real oracles: text mmCIF against gemmi, BinaryCIF
//! encodings against biotite, and corrupt input of every kind against "an error, never a panic".

use std::path::Path;
use std::time::Instant;

use helico::data::DataError;
use helico::data::cif::{CifFile, Column, Null};
use serde_json::Value;

use crate::data_support::{ccd_bcif, mmcif_files, oracle, repo_path};

fn strings(col: &Column<'_>) -> Vec<Option<String>> {
    (0..col.len()).map(|r| col.as_str(r).unwrap().map(|s| s.into_owned())).collect()
}

fn json_strings(v: &Value) -> Vec<Option<String>> {
    v.as_array().unwrap().iter().map(|s| s.as_str().map(str::to_owned)).collect()
}

#[test]
fn text_mmcif_matches_gemmi() {
    let files = mmcif_files();
    let expected = oracle("mmcif_gemmi.py", &files);
    let (mut bytes, mut seconds) = (0usize, 0f64);
    for path in &files {
        let start = Instant::now();
        let file = CifFile::read(path).unwrap();
        seconds += start.elapsed().as_secs_f64();
        bytes += std::fs::metadata(path).unwrap().len() as usize;

        let want = &expected[path.to_str().unwrap()];
        let names: Vec<&str> = file.blocks.iter().map(|b| b.name()).collect();
        assert_eq!(names, json_strings(&want["blocks"]).iter().flatten().collect::<Vec<_>>(), "{path:?}");
        let block = &file.blocks[0];
        let categories: Vec<&str> = block.categories().iter().map(|c| c.name()).collect();
        let want_categories = json_strings(&want["categories"]);
        assert_eq!(categories, want_categories.iter().flatten().collect::<Vec<_>>(), "{path:?}");

        let atom_site = block.require("atom_site").unwrap();
        assert_eq!(atom_site.row_count() as u64, want["atom_site_rows"].as_u64().unwrap(), "{path:?}");
        let xyz = ["Cartn_x", "Cartn_y", "Cartn_z"].map(|c| atom_site.column(c).unwrap());
        let occupancy = atom_site.column("occupancy").unwrap();
        let auth_seq_id = atom_site.column("auth_seq_id").unwrap();
        for (row, w) in want["cartn"].as_array().unwrap().iter().enumerate() {
            for axis in 0..3 {
                assert_eq!(
                    xyz[axis].as_f64(row).unwrap(),
                    w[axis].as_f64(),
                    "{path:?} atom_site row {row} axis {axis}"
                );
            }
            assert_eq!(occupancy.as_f64(row).unwrap(), want["occupancy"][row].as_f64(), "{path:?} occupancy row {row}");
            assert_eq!(
                auth_seq_id.as_i64(row).unwrap(),
                want["auth_seq_id"][row].as_i64(),
                "{path:?} auth_seq_id row {row}"
            );
        }
        assert_eq!(
            strings(&atom_site.column("label_asym_id").unwrap()),
            json_strings(&want["label_asym_id"]),
            "{path:?}"
        );

        let poly = block.require("entity_poly").unwrap();
        let got: Vec<Vec<Option<String>>> = (0..poly.row_count())
            .map(|row| {
                ["entity_id", "type", "pdbx_seq_one_letter_code_can"]
                    .iter()
                    .map(|c| poly.column(c).unwrap().as_str(row).unwrap().map(|s| s.into_owned()))
                    .collect()
            })
            .collect();
        let want_poly: Vec<Vec<Option<String>>> =
            want["entity_poly"].as_array().unwrap().iter().map(json_strings).collect();
        assert_eq!(got, want_poly, "{path:?}");
    }
    eprintln!(
        "text mmCIF: {} files, {:.1} MB parsed in {:.3} s ({:.0} MB/s, tokenise + span storage, dev profile)",
        files.len(),
        bytes as f64 / 1e6,
        seconds,
        bytes as f64 / 1e6 / seconds
    );
}

#[test]
fn binary_cif_encodings_match_biotite() {
    let dir = tempfile::tempdir().unwrap();
    let expected = oracle("bcif_encodings.py", &[dir.path()]);
    let expected = expected.as_object().unwrap();
    let kinds: std::collections::BTreeSet<&str> =
        expected.values().flat_map(|c| c["encoding"].as_array().unwrap()).map(|k| k.as_str().unwrap()).collect();
    let all =
        ["ByteArray", "Delta", "FixedPoint", "IntegerPacking", "IntervalQuantization", "RunLength", "StringArray"];
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), all, "the oracle file must exercise every encoding");

    for name in ["encodings.bcif", "encodings.bcif.gz"] {
        let file = CifFile::read(dir.path().join(name)).unwrap();
        assert_eq!(file.blocks[0].name(), "TEST");
        let category = file.blocks[0].require("enc").unwrap();
        assert_eq!(category.column_names().len(), expected.len());
        for (column, want) in expected {
            let col = category.column(column).unwrap();
            let mask: Vec<u64> = match want["mask"].as_array() {
                Some(m) => m.iter().map(|v| v.as_u64().unwrap()).collect(),
                None => vec![0; col.len()],
            };
            let values = want["values"].as_array().unwrap();
            assert_eq!(col.len(), values.len(), "{name} {column}");
            for (row, value) in values.iter().enumerate() {
                let null = match mask[row] {
                    0 => None,
                    1 => Some(Null::Inapplicable),
                    _ => Some(Null::Unknown),
                };
                assert_eq!(col.null(row), null, "{name} {column} row {row}");
                if null.is_some() {
                    continue;
                }
                // Numbers as text: f32 columns print as f32 (shortest round trip), like numpy.
                let text = want["text"][row].as_str().unwrap();
                assert_eq!(col.as_str(row).unwrap().as_deref(), Some(text), "{name} {column} row {row} as text");
                match value {
                    Value::String(s) => {
                        assert_eq!(col.as_str(row).unwrap().as_deref(), Some(s.as_str()), "{name} {column} row {row}")
                    }
                    v if v.is_i64() || v.is_u64() => {
                        assert_eq!(col.as_i64(row).unwrap(), v.as_i64(), "{name} {column} row {row}")
                    }
                    v => {
                        let (got, want) = (col.as_f64(row).unwrap().unwrap(), v.as_f64().unwrap());
                        // f32 columns: biotite and helico round the same f64 to f32, but IntervalQuantization
                        // adds `min` after the cast; allow one f32 ulp of relative error.
                        assert!(
                            (got - want).abs() <= 1.2e-7 * want.abs().max(1.0),
                            "{name} {column} row {row}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn truncated_and_corrupt_binary_cif_is_an_error() {
    let bcif = std::fs::read(ccd_bcif()).unwrap();
    for len in [1, 2, 100, 10_000, 1_000_000, bcif.len() / 2, bcif.len() - 1] {
        match CifFile::from_bytes(bcif[..len].to_vec(), Path::new("components.bcif")) {
            Err(DataError::MsgPack { got, .. }) => {
                assert!(got.contains("end of data") || got.contains("claimed"), "{got}")
            }
            other => panic!("a {len}-byte prefix gave {other:?}"),
        }
    }

    let dir = tempfile::tempdir().unwrap();
    oracle("bcif_encodings.py", &[dir.path()]);
    let good = std::fs::read(dir.path().join("encodings.bcif")).unwrap();

    let mut bad_marker = good.clone();
    bad_marker[1] = 0xc1; // never used by MessagePack
    let err = CifFile::from_bytes(bad_marker, Path::new("x.bcif")).unwrap_err().to_string();
    assert!(
        err.contains("x.bcif: MessagePack byte 1: expected a MessagePack marker other than ext types, got marker 0xc1"),
        "{err}"
    );

    // Every single-byte corruption either fails to frame, fails to decode, or decodes: no panics.
    let (mut framing, mut decoding, mut fine) = (0, 0, 0);
    for i in 0..good.len() {
        for flip in [0xff, 0x01] {
            let mut bytes = good.clone();
            bytes[i] ^= flip;
            let Ok(file) = CifFile::from_bytes(bytes, Path::new("fuzz.bcif")) else {
                framing += 1;
                continue;
            };
            match read_everything(&file) {
                Ok(()) => fine += 1,
                Err(_) => decoding += 1,
            }
        }
    }
    eprintln!(
        "single-byte corruptions of encodings.bcif: {framing} framing errors, {decoding} decode errors, {fine} still decodable"
    );
    assert!(framing > 0 && decoding > 0);

    let gz = std::fs::read(dir.path().join("encodings.bcif.gz")).unwrap();
    let err = CifFile::from_bytes(gz[..gz.len() / 2].to_vec(), Path::new("t.bcif.gz")).unwrap_err();
    assert!(matches!(err, DataError::Gzip { .. }), "{err}");
    let mut garbage = gz[..10].to_vec();
    garbage.extend_from_slice(b"\xff\xfe this is no deflate stream");
    let err = CifFile::from_bytes(garbage, Path::new("g.cif.gz")).unwrap_err().to_string();
    assert!(err.starts_with("g.cif.gz: not a valid gzip stream"), "{err}");
}

/// Decodes every column of every category and reads every value as text.
fn read_everything(file: &CifFile) -> helico::data::Result<()> {
    for block in &file.blocks {
        for category in block.categories() {
            for name in category.column_names() {
                let col = category.column(name)?;
                for row in 0..col.len() {
                    col.as_str(row)?;
                }
            }
        }
    }
    Ok(())
}

#[test]
fn corrupt_text_cif_is_an_error() {
    let path = repo_path("data/openfold3/mmcifs/1ubq.cif");
    let text = std::fs::read_to_string(&path).unwrap();
    let parse = |s: String| CifFile::from_bytes(s.into_bytes(), Path::new("1ubq.cif"));
    let first_atom = text.lines().position(|l| l.starts_with("ATOM")).unwrap();
    let atom_loop =
        text.lines().take(first_atom).collect::<Vec<_>>().iter().rposition(|l| l.starts_with("loop_")).unwrap();

    let quote = text.replacen("ATOM   1   N N   . MET", "ATOM   1   N N   . 'MET", 1);
    assert_ne!(quote, text, "the first atom line of 1ubq.cif changed; update the test");
    let err = parse(quote).unwrap_err().to_string();
    assert!(err.starts_with(&format!("1ubq.cif:{}: unterminated '-quoted value 'MET", first_atom + 1)), "{err}");

    let dropped = text.replacen("ATOM   1   N N   . MET A 1 1  ?", "ATOM   1   N N   . MET A 1  ?", 1);
    assert_ne!(dropped, text);
    let err = parse(dropped).unwrap_err().to_string();
    let want = format!(
        "1ubq.cif:{}: loop of _atom_site has 13859 values, expected a multiple of its 21 columns",
        atom_loop + 1
    );
    assert!(err.starts_with(&want), "{err}");

    let a8q = std::fs::read_to_string(repo_path("data/openfold3/mmcifs/1a8q.cif")).unwrap();
    let field = a8q.find("\n;PICTT").unwrap();
    let line = a8q[..field].lines().count() + 1;
    let err =
        CifFile::from_bytes(a8q.as_bytes()[..field + 20].to_vec(), Path::new("1a8q.cif")).unwrap_err().to_string();
    assert!(err.starts_with(&format!("1a8q.cif:{line}: unterminated text field")), "{err}");

    // Any prefix of a real file parses or fails cleanly.
    for cut in (0..text.len()).step_by(997) {
        let _ = parse(text[..cut].to_owned()).map(|f| read_everything(&f));
    }
}
