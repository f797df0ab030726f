//! Structures from the 15 openfold3 test mmCIFs against gemmi and biotite (atoms, coordinates,
//! label and author chains, numbering, sequences, metadata), the same structures from BinaryCIF,
//! assemblies against biotite, completion against the CCD, filters, and bad input.

use std::path::{Path, PathBuf};
use std::time::Instant;

use helico::data::cif::CifFile;
use helico::data::structure::{
    BondKind, Element, EntityKind, Filters, MoleculeType, Options, Rejection, Structure, StructureError,
};
use serde_json::Value;

use crate::data_support::{ccd, mmcif_files, oracle, repo_path};

/// One atom as the oracles print it: label chain, author chain, label_seq_id, auth_seq_id,
/// insertion code, component, atom name, atomic number, x, y, z (as f32), occupancy.
type Row = (String, String, Option<i64>, i64, Option<String>, String, String, u8, [f32; 3], f32);

fn oracle_rows(atoms: &Value) -> Vec<Row> {
    let mut rows: Vec<Row> = atoms
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let s = |k: usize| a[k].as_str().unwrap().to_owned();
            let element = Element::from_symbol(a[7].as_str().unwrap()).unwrap().atomic_number();
            let f = |k: usize| a[k].as_f64().unwrap() as f32;
            (
                s(0),
                s(1),
                a[2].as_i64(),
                a[3].as_i64().unwrap(),
                a[4].as_str().map(str::to_owned),
                s(5),
                s(6),
                element,
                [f(8), f(9), f(10)],
                f(11),
            )
        })
        .collect();
    rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    rows
}

fn our_rows(s: &Structure) -> Vec<Row> {
    let mut rows = Vec::with_capacity(s.atoms.len());
    for res in &s.residues {
        let chain = &s.chains[res.chain];
        for i in res.atoms.clone() {
            rows.push((
                chain.label_asym_id.clone(),
                chain.auth_asym_id.clone(),
                res.label_seq_id.map(i64::from),
                i64::from(res.auth_seq_id.unwrap()),
                res.ins_code.map(String::from),
                res.name.to_string(),
                s.atoms.name[i].to_string(),
                s.atoms.element[i].atomic_number(),
                s.atoms.coords[i],
                s.atoms.occupancy[i],
            ));
        }
    }
    rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    rows
}

fn read_all() -> Vec<(PathBuf, Structure)> {
    let start = Instant::now();
    let out: Vec<(PathBuf, Structure)> =
        mmcif_files().into_iter().map(|p| (p.clone(), Structure::read(&p, &Options::default()).unwrap())).collect();
    let atoms: usize = out.iter().map(|(_, s)| s.atoms.len()).sum();
    eprintln!("structures: {} files, {atoms} atoms kept, read in {:.2?} (dev profile)", out.len(), start.elapsed());
    out
}

#[test]
fn structures_match_gemmi_and_biotite() {
    let structures = read_all();
    let files: Vec<&PathBuf> = structures.iter().map(|(p, _)| p).collect();
    let gemmi = oracle("structure_gemmi.py", &files);
    let biotite = oracle("structure_biotite.py", &files);
    for (path, s) in &structures {
        let key = path.to_str().unwrap();
        let ours = our_rows(s);
        assert_eq!(ours, oracle_rows(&gemmi[key]["atoms"]), "{key}: atoms vs gemmi");
        assert_eq!(ours, oracle_rows(&biotite[key]["atoms"]), "{key}: atoms vs biotite");

        let want = &gemmi[key];
        for entity in &s.entities {
            let sequence: Vec<String> = entity.sequence.iter().map(|n| n.to_string()).collect();
            let expected: Vec<String> = match want["entities"].get(&entity.id) {
                Some(v) => v.as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_owned()).collect(),
                None => Vec::new(),
            };
            assert_eq!(sequence, expected, "{key}: entity {} sequence", entity.id);
        }
        assert_eq!(s.metadata.resolution, want["resolution"].as_f64().map(|r| r as f32), "{key}: resolution");
        let methods: Vec<&str> = want["methods"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
        assert_eq!(s.metadata.methods, methods, "{key}: methods");
        assert_eq!(
            s.metadata.release_date.map(|d| d.to_string()).as_deref(),
            want["release_date"].as_str(),
            "{key}: release date"
        );
    }
}

#[test]
fn binary_cif_gives_the_same_structures() {
    let dir = tempfile::tempdir().unwrap();
    let files = mmcif_files();
    oracle("to_bcif.py", &[&[dir.path().to_path_buf()], files.as_slice()].concat());
    for path in files {
        let text = Structure::read(&path, &Options::default()).unwrap();
        let bcif_path = dir.path().join(path.file_stem().unwrap()).with_extension("bcif");
        let binary = Structure::read(&bcif_path, &Options::default()).unwrap();
        assert_eq!(binary.atoms, text.atoms, "{path:?}");
        assert_eq!(binary.residues, text.residues, "{path:?}");
        assert_eq!(binary.chains, text.chains, "{path:?}");
        assert_eq!(binary.entities, text.entities, "{path:?}");
        assert_eq!(binary.bonds, text.bonds, "{path:?}");
        assert_eq!(binary.metadata, text.metadata, "{path:?}");
    }
}

#[test]
fn assemblies_match_biotite() {
    let files: Vec<PathBuf> = ["1kd8", "4i6p", "3u8v", "5kc1", "3zee"]
        .iter()
        .map(|f| repo_path(&format!("data/openfold3/mmcifs/{f}.cif")))
        .collect();
    let want = oracle("assembly_biotite.py", &files);
    for path in &files {
        let key = path.to_str().unwrap();
        for (id, atoms) in want[key].as_object().unwrap() {
            let s = Structure::read(path, &Options { assembly: Some(id.clone()), ..Options::default() }).unwrap();
            let rows = atoms.as_array().unwrap();
            assert_eq!(s.atoms.len(), rows.len(), "{key} assembly {id}: atom count");
            for (i, row) in rows.iter().enumerate() {
                assert_eq!(s.atoms.name[i].as_str(), row[0].as_str().unwrap(), "{key} assembly {id} atom {i}");
                for d in 0..3 {
                    let (got, want) = (s.atoms.coords[i][d], row[1 + d].as_f64().unwrap() as f32);
                    assert!((got - want).abs() <= 1e-3, "{key} assembly {id} atom {i} axis {d}: {got} vs {want}");
                }
            }
            let copies = s.chains.iter().filter(|c| c.operator.is_some()).count();
            assert_eq!(copies, s.chains.len(), "{key}: every chain of an assembly names its operator");
        }
    }
    let s = Structure::read(&files[0], &Options::default()).unwrap();
    let err = s.assembly("42").unwrap_err().to_string();
    assert!(err.contains("assembly \"42\": not defined in _pdbx_struct_assembly_gen (defined: 1, 2, 3)"), "{err}");
}

#[test]
fn completion_follows_the_ccd() {
    let ccd = ccd();
    for (path, observed) in read_all() {
        let start = Instant::now();
        let (s, report) = observed.complete(ccd).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        let residue_of = s.atom_residues();
        for (r, residue) in s.residues.iter().enumerate() {
            let component = ccd.get(residue.name.as_str()).unwrap();
            // Atoms in CCD order, no hydrogens, every name known.
            let positions: Vec<usize> = residue
                .atoms
                .clone()
                .map(|i| component.atoms.iter().position(|a| a.name == s.atoms.name[i].as_str()).unwrap())
                .collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "{name} {}: CCD order", s.describe_residue(r));
            assert!(residue.atoms.clone().all(|i| !s.atoms.element[i].is_hydrogen()));
            assert_ne!(residue.name.as_str(), "MSE", "{name}: MSE became MET");
        }
        for (c, chain) in s.chains.iter().enumerate() {
            let entity = &s.entities[chain.entity];
            if !matches!(entity.kind, EntityKind::Polymer(_)) {
                continue;
            }
            // Every sequence position is a residue; OXT only on the last residue of a chain.
            let seq: Vec<i32> = s.residues[chain.residues.clone()].iter().filter_map(|r| r.label_seq_id).collect();
            assert_eq!(seq, (1..=entity.sequence.len() as i32).collect::<Vec<_>>(), "{name} chain {c}");
            for r in chain.residues.clone() {
                let has_oxt = s.find_atom(r, "OXT").is_some();
                if has_oxt {
                    assert_eq!(r, chain.residues.end - 1, "{name}: OXT on {}", s.describe_residue(r));
                }
                let has_op3 = s.find_atom(r, "OP3").is_some();
                if has_op3 {
                    assert_eq!(r, chain.residues.start, "{name}: OP3 on {}", s.describe_residue(r));
                }
            }
        }
        // Bonds join atoms that exist; polymer links join consecutive residues.
        for bond in &s.bonds {
            let [a, b] = bond.atoms;
            assert!(a < b && b < s.atoms.len());
            if bond.kind == BondKind::PolymerLink {
                assert_eq!(residue_of[a] + 1, residue_of[b], "{name}");
            }
            if bond.kind == BondKind::Intra {
                assert_eq!(residue_of[a], residue_of[b], "{name}");
            }
        }
        let resolved = s.atoms.resolved.iter().filter(|&&r| r).count();
        assert_eq!(resolved + report.atoms_added, s.atoms.len(), "{name}: resolved + added");
        let (again, second) = s.complete(ccd).unwrap();
        assert_eq!(
            (again.atoms == s.atoms, again.residues == s.residues, again.bonds == s.bonds),
            (true, true, true),
            "{name}"
        );
        assert_eq!(
            (second.atoms_added, second.residues_added, second.unknown_atoms_dropped),
            (0, 0, 0),
            "{name}: idempotent"
        );
        eprintln!("{name}: {report:?} in {:.2?}", start.elapsed());
    }
}

#[test]
fn completion_on_known_entries() {
    let ccd = ccd();
    // 1ubq: ubiquitin, 76 residues all observed, OXT on GLY 76.
    let (s, report) = Structure::read(repo_path("data/openfold3/mmcifs/1ubq.cif"), &Options::default())
        .unwrap()
        .complete(ccd)
        .unwrap();
    assert_eq!(report.residues_added, 0);
    assert_eq!(s.residues.len(), 76);
    assert!(s.find_atom(75, "OXT").is_some() && s.find_atom(74, "OXT").is_none());
    // 2q2k: a 20-nucleotide DNA chain (with two 5-iodo-uridines, 5IU, a DNA-linking component)
    // and two peptide chains.
    let (s, _) = Structure::read(repo_path("data/openfold3/mmcifs/2q2k.cif"), &Options::default())
        .unwrap()
        .complete(ccd)
        .unwrap();
    let dna: Vec<&str> =
        s.residues.iter().filter(|r| r.molecule == MoleculeType::Dna).map(|r| r.name.as_str()).collect();
    assert_eq!(dna.len(), 20);
    assert!(dna.iter().all(|n| ["DA", "DG", "DC", "DT", "5IU"].contains(n)), "{dna:?}");
    assert_eq!(dna.iter().filter(|n| **n == "5IU").count(), 2);
}

#[test]
fn filters_give_reasons() {
    let structures = read_all();
    let get = |id: &str| &structures.iter().find(|(p, _)| p.file_stem().unwrap() == id).unwrap().1;
    let filters = Filters::default();
    assert_eq!(filters.check(get("1ubq"), 76), []);
    assert_eq!(filters.check(get("3zee"), 10), [], "6.1 Å EM passes the 9 Å limit");
    assert_eq!(
        filters.check(get("1hf9"), 10),
        [Rejection::Resolution { got: None, max: 9.0 }],
        "NMR has no resolution"
    );
    let cutoff = chrono::NaiveDate::from_ymd_opt(2021, 9, 30).unwrap();
    let af3 = Filters { released_by: Some(cutoff), max_tokens: Some(100), ..Filters::default() };
    let reasons = af3.check(get("7l39"), 500);
    assert_eq!(
        reasons,
        [
            Rejection::ReleasedAfter { got: chrono::NaiveDate::from_ymd_opt(2021, 10, 27), cutoff },
            Rejection::TooManyTokens { got: 500, max: 100 }
        ]
    );
    assert_eq!(reasons[0].to_string(), "released 2021-10-27, after 2021-09-30");
}

/// Parses `text` as a file called `name`; the error as its message.
fn read_text(text: String, name: &str) -> Result<Structure, String> {
    let file = CifFile::from_bytes(text.into_bytes(), Path::new(name)).map_err(|e| e.to_string())?;
    Structure::from_cif(&file, &Options::default()).map_err(|e: StructureError| e.to_string())
}

#[test]
fn bad_input_names_file_place_and_structure() {
    let ubq = std::fs::read_to_string(repo_path("data/openfold3/mmcifs/1ubq.cif")).unwrap();

    // Truncated in the middle of _atom_site: the loop loses its last, partial row.
    let cut = ubq.find("ATOM   300").unwrap() + 40;
    let err = read_text(ubq[..cut].to_owned(), "1ubq-cut.cif").unwrap_err();
    assert!(err.starts_with("1ubq-cut.cif:") && err.contains("_atom_site"), "{err}");

    // A missing category.
    let start = ubq.find("loop_\n_atom_site.group_PDB").unwrap();
    let end = start + ubq[start..].find("\n#").unwrap();
    let err = read_text(format!("{}{}", &ubq[..start], &ubq[end..]), "no-atoms.cif").unwrap_err();
    assert_eq!(err, "no-atoms.cif: data block \"1UBQ\" has no category _atom_site");

    // An unreadable coordinate names the line.
    let bad = ubq.replacen("27.340", "27.3x0", 1);
    let err = read_text(bad, "1ubq-x.cif").unwrap_err();
    assert_eq!(
        err,
        "1ubq-x.cif: structure 1UBQ: line 1577 (_atom_site.Cartn_x row 0): expected a number, got \"27.3x0\""
    );

    // A component the CCD does not know.
    let renamed = ubq.replace(" GLY A 1 10 ", " YYY9 A 1 10 ");
    let s = read_text(renamed, "1ubq-yyy9.cif").unwrap();
    let err = s.complete(ccd()).err().map(|e| e.to_string()).expect("an unknown component is an error");
    assert!(
        err.starts_with("1ubq-yyy9.cif: structure 1UBQ: chain A residue 10 (author 10) YYY9: component \"YYY9\" is not in the Chemical Component Dictionary"),
        "{err}"
    );

    // Corrupt BinaryCIF.
    let dir = tempfile::tempdir().unwrap();
    oracle("to_bcif.py", &[dir.path(), &repo_path("data/openfold3/mmcifs/1ubq.cif")]);
    let bcif = std::fs::read(dir.path().join("1ubq.bcif")).unwrap();
    let err = CifFile::from_bytes(bcif[..bcif.len() / 2].to_vec(), Path::new("1ubq.bcif")).unwrap_err().to_string();
    assert!(err.starts_with("1ubq.bcif: MessagePack byte"), "{err}");
}
