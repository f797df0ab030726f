//! Inference inputs: every format on valid examples written here (checked field by field),
//! broken examples (each format's messages snapshotted, every problem at once), the
//! `--sequences` grammar through the CLI, openfold3's mmCIFs against gemmi, and CCD codes and
//! bonded atom names against the real CCD.

use std::path::{Path, PathBuf};

use helico::data::inputs::{
    self, AtomRef, Bond, InferenceInput, InputError, InputFormat, Ligand, Modification, Molecule, Polymer, PolymerKind,
    TextSource,
};
use serde_json::Value;

use crate::data_support::{ccd, ccd_bcif, mmcif_files, oracle};
use crate::snapshot;
use crate::support::{helico, run};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn polymer(input: &InferenceInput, entity: usize) -> &Polymer {
    match &input.entities[entity].molecule {
        Molecule::Polymer(p) => p,
        other => panic!("entity {entity} is {other:?}"),
    }
}

fn ligand(input: &InferenceInput, entity: usize) -> &Ligand {
    match &input.entities[entity].molecule {
        Molecule::Ligand(l) => l,
        other => panic!("entity {entity} is {other:?}"),
    }
}

fn chains(input: &InferenceInput) -> Vec<Vec<&str>> {
    input.entities.iter().map(|e| e.chains.iter().map(String::as_str).collect()).collect()
}

fn atom(chain: &str, residue: usize, atom: &str) -> AtomRef {
    AtomRef { chain: chain.into(), residue, atom: atom.into() }
}

const AF3: &str = r#"{
  "name": "complex",
  "modelSeeds": [1, 7],
  "sequences": [
    {"protein": {"id": ["A", "B"], "sequence": "MKNSAAGIV",
                 "modifications": [{"ptmType": "SEP", "ptmPosition": 4}],
                 "unpairedMsa": ">query\nMKNSAAGIV\n>hit\nMKN-AAkGIV\n", "pairedMsa": ""}},
    {"rna": {"id": "C", "sequence": "ACGUN", "unpairedMsaPath": "rna.a3m"}},
    {"dna": {"id": "D", "sequence": "ACGT", "modifications": [{"modificationType": "6OG", "basePosition": 3}]}},
    {"ligand": {"id": "E", "ccdCodes": ["NAG", "NAG"]}},
    {"ligand": {"id": "F", "smiles": "CC(=O)O"}}
  ],
  "bondedAtomPairs": [[["A", 3, "ND2"], ["E", 1, "C1"]], [["E", 1, "O4"], ["E", 2, "C1"]]],
  "dialect": "alphafold3",
  "version": 2
}
"#;

#[test]
fn alphafold3_json() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rna.a3m", ">q\nACGUN\n>h\nAC-UA\n");
    let path = write(dir.path(), "job.json", AF3);
    for with_ccd in [None, Some(ccd())] {
        let jobs = inputs::read(&path, with_ccd).unwrap();
        let job = &jobs[0];
        assert_eq!(
            (job.name.as_str(), job.format, job.seeds.as_slice()),
            ("complex", InputFormat::Alphafold3Json, &[1, 7][..])
        );
        assert_eq!(chains(job), [vec!["A", "B"], vec!["C"], vec!["D"], vec!["E"], vec!["F"]]);
        let protein = polymer(job, 0);
        assert_eq!((protein.kind, protein.sequence.as_str()), (PolymerKind::Protein, "MKNSAAGIV"));
        assert_eq!(protein.modifications, [Modification { position: 4, ccd: "SEP".into() }]);
        assert!(matches!(&protein.msa.unpaired, Some(TextSource::Inline(t)) if t.starts_with(">query")));
        assert_eq!(protein.msa.paired, Some(TextSource::Inline(String::new())));
        assert_eq!(polymer(job, 1).msa.unpaired, Some(TextSource::File(dir.path().join("rna.a3m"))));
        assert_eq!(polymer(job, 2).modifications, [Modification { position: 3, ccd: "6OG".into() }]);
        assert_eq!(ligand(job, 3), &Ligand::Ccd(vec!["NAG".into(), "NAG".into()]));
        assert_eq!(ligand(job, 4), &Ligand::Smiles("CC(=O)O".into()));
        assert_eq!(
            job.bonds,
            [
                Bond { atoms: [atom("A", 3, "ND2"), atom("E", 1, "C1")] },
                Bond { atoms: [atom("E", 1, "O4"), atom("E", 2, "C1")] }
            ]
        );
    }
}

const BOLTZ: &str = "version: 1
sequences:
  - protein:
      id: [A, B]
      sequence: MKNSAAGIV
      msa: prot.a3m
      modifications:
        - position: 4
          ccd: SEP
  - rna:
      id: C
      sequence: ACGU
      cyclic: true
  - ligand:
      id: [D, E]
      ccd: SAH
  - ligand:
      id: F
      smiles: 'N[C@@H](Cc1ccc(O)cc1)C(=O)O'
  - protein:
      id: G
      sequence: MK
      msa: empty
constraints:
  - bond:
      atom1: [A, 3, ND2]
      atom2: [D, 1, SD]
";

#[test]
fn boltz_yaml() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "prot.a3m", ">q\nMKNSAAGIV\n>h\nMKNSAAGI-\n");
    let path = write(dir.path(), "my.complex.yaml", BOLTZ);
    let job = inputs::read(&path, Some(ccd())).unwrap().remove(0);
    assert_eq!((job.name.as_str(), job.format, job.seeds.len()), ("my", InputFormat::BoltzYaml, 0));
    assert_eq!(chains(&job), [vec!["A", "B"], vec!["C"], vec!["D", "E"], vec!["F"], vec!["G"]]);
    assert_eq!(polymer(&job, 0).msa.unpaired, Some(TextSource::File(dir.path().join("prot.a3m"))));
    assert_eq!(polymer(&job, 0).msa.paired, Some(TextSource::Inline(String::new())), "an A3M is unpaired");
    assert_eq!(polymer(&job, 0).modifications, [Modification { position: 4, ccd: "SEP".into() }]);
    assert!(polymer(&job, 1).cyclic);
    assert_eq!(polymer(&job, 1).msa.unpaired, None);
    assert_eq!(ligand(&job, 2), &Ligand::Ccd(vec!["SAH".into()]));
    assert_eq!(polymer(&job, 4).msa.unpaired, Some(TextSource::Inline(String::new())), "msa: empty");
    assert_eq!(job.bonds, [Bond { atoms: [atom("A", 3, "ND2"), atom("D", 1, "SD")] }]);
}

const PROTENIX: &str = r#"[
  {"name": "job1", "modelSeeds": [3],
   "sequences": [
     {"proteinChain": {"sequence": "MKNSAAGIV", "count": 2, "modifications": [{"ptmType": "CCD_SEP", "ptmPosition": 4}]}},
     {"rnaSequence": {"sequence": "ACGU", "count": 1, "id": ["B"]}},
     {"ligand": {"ligand": "CCD_NAG_BMA", "count": 2}},
     {"ligand": {"ligand": "CCO", "count": 1}},
     {"ion": {"ion": "MG", "count": 1}}
   ],
   "covalent_bonds": [
     {"entity1": "1", "position1": "3", "atom1": "ND2", "entity2": 3, "position2": 1, "atom2": "C1"},
     {"entity1": 3, "copy1": 1, "position1": 1, "atom1": "O4", "entity2": 3, "copy2": 1, "position2": 2, "atom2": "C1"}
   ]},
  {"name": "job2", "sequences": [{"dnaSequence": {"sequence": "ACGT", "count": 1}}],
   "dialect": "alphafoldserver", "version": 1}
]
"#;

#[test]
fn protenix_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "jobs.json", PROTENIX);
    let jobs = inputs::read(&path, Some(ccd())).unwrap();
    assert_eq!(jobs.len(), 2);
    let job = &jobs[0];
    assert_eq!((job.format, job.seeds.as_slice()), (InputFormat::ProtenixJson, &[3][..]));
    assert_eq!(chains(job), [vec!["A", "C"], vec!["B"], vec!["D", "E"], vec!["F"], vec!["G"]], "unnamed chains skip B");
    assert_eq!(polymer(job, 0).modifications, [Modification { position: 4, ccd: "SEP".into() }]);
    assert_eq!(ligand(job, 2), &Ligand::Ccd(vec!["NAG".into(), "BMA".into()]));
    assert_eq!(ligand(job, 3), &Ligand::Smiles("CCO".into()));
    assert_eq!(ligand(job, 4), &Ligand::Ccd(vec!["MG".into()]));
    assert_eq!(
        job.bonds,
        [
            Bond { atoms: [atom("A", 3, "ND2"), atom("D", 1, "C1")] },
            Bond { atoms: [atom("C", 3, "ND2"), atom("E", 1, "C1")] },
            Bond { atoms: [atom("D", 1, "O4"), atom("D", 2, "C1")] },
        ]
    );
    assert_eq!((jobs[1].name.as_str(), chains(&jobs[1])), ("job2", vec![vec!["A"]]));
}

#[test]
fn mmcif_inputs_match_gemmi() {
    let files = mmcif_files();
    let expected = oracle("mmcif_entities.py", &files);
    let standard = |kind: PolymerKind, code: &str| -> bool {
        let codes: &[&str] = match kind {
            PolymerKind::Protein => &[
                "ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE", "LEU", "LYS", "MET", "PHE",
                "PRO", "SER", "THR", "TRP", "TYR", "VAL", "UNK",
            ],
            PolymerKind::Rna => &["A", "C", "G", "U"],
            PolymerKind::Dna => &["DA", "DC", "DG", "DT"],
        };
        codes.contains(&code)
    };
    let mut modified = 0;
    for path in &files {
        let want = &expected[path.to_str().unwrap()];
        let job = inputs::read(path, Some(ccd())).unwrap_or_else(|e| panic!("{}: {e}", path.display())).remove(0);
        assert_eq!(job.name, want["name"].as_str().unwrap());
        let kept: Vec<&Value> = want["entities"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] != "water" && !e["chains"].as_array().unwrap().is_empty())
            .collect();
        assert_eq!(job.entities.len(), kept.len(), "{}", path.display());
        for (got, want) in job.entities.iter().zip(kept) {
            let want_chains: Vec<String> = serde_json::from_value(want["chains"].clone()).unwrap();
            assert_eq!(got.chains, want_chains, "{} entity {}", path.display(), want["id"]);
            match &got.molecule {
                Molecule::Polymer(p) => {
                    // The PDB's canonical letters, outside the kind's alphabet read as its unknown
                    // letter (2q2k's DNA has deoxyuridines, canonical "U").
                    let unknown = p.kind.letters().chars().last().unwrap();
                    let can: String = want["seq_can"]
                        .as_str()
                        .unwrap()
                        .chars()
                        .map(|c| if p.kind.letters().contains(c) { c } else { unknown })
                        .collect();
                    assert_eq!(p.sequence, can, "{} entity {}", path.display(), want["id"]);
                    let mons: Vec<String> = serde_json::from_value(want["mon_ids"].clone()).unwrap();
                    let mods: Vec<Modification> = mons
                        .iter()
                        .enumerate()
                        .filter(|(_, m)| !standard(p.kind, m))
                        .map(|(i, m)| Modification { position: i + 1, ccd: m.clone() })
                        .collect();
                    modified += mods.len();
                    assert_eq!(p.modifications, mods, "{}", path.display());
                }
                Molecule::Ligand(l) => assert_eq!(l, &Ligand::Ccd(vec![want["comp_id"].as_str().unwrap().to_owned()])),
            }
        }
    }
    assert!(modified > 0, "4zey's selenomethionines are modifications");
    // Without a CCD, a modified residue's letter is unknown: its parent is not known.
    let path = files.iter().find(|p| p.ends_with("4zey.cif")).unwrap();
    let job = inputs::read(path, None).unwrap().remove(0);
    assert_eq!(&polymer(&job, 0).sequence[..3], "GXE");
}

/// The covalent `_struct_conn` bonds of mmCIF inputs against gemmi's reading of the same rows
/// (gemmi finds the partners through the author fields, helico through the label fields): the
/// openfold3 entries that have some (1kd8's acetyl caps, 2q2k's iodouridines, 4zey's
/// selenomethionines; 1kd8's disulfides are not covalent rows) and 4zey with a sulfate bonded to
/// a lysine, a ligand chain's atom.
#[test]
fn mmcif_covalent_bonds_match_gemmi() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = mmcif_files();
    let zey = std::fs::read_to_string(files.iter().find(|p| p.ends_with("4zey.cif")).unwrap()).unwrap();
    let row =
        "covale7 covale ? ? B SO4 . O1 ? ? ? 1_555 A LYS 44 NZ ? ? A SO4 401 A LYS 46 1_555 ? ? ? ? ? ? ? 1.5 ?\n";
    files.push(write(
        dir.path(),
        "4zey_linked.cif",
        &zey.replacen("covale1 covale", &format!("{row}covale1 covale"), 1),
    ));
    let expected = oracle("mmcif_bonds.py", &files);
    let ends = |bond: &Bond| {
        let mut ends = bond.atoms.clone().map(|a| (a.chain, a.residue, a.atom));
        ends.sort();
        ends
    };
    let mut total = 0;
    for path in &files {
        let want: Vec<[(String, usize, String); 2]> =
            serde_json::from_value(expected[path.to_str().unwrap()].clone()).unwrap();
        for ccd in [None, Some(ccd())] {
            let job = inputs::read(path, ccd).unwrap_or_else(|e| panic!("{}: {e}", path.display())).remove(0);
            let mut got: Vec<_> = job.bonds.iter().map(ends).collect();
            got.sort();
            assert_eq!(got, want, "{}", path.display());
        }
        total += want.len();
    }
    assert_eq!(total, 6 + 4 + 6 + 7, "1kd8, 2q2k, 4zey and the linked 4zey");
    let linked = inputs::read(files.last().unwrap(), Some(ccd())).unwrap().remove(0);
    let sulfate = [("A".to_owned(), 44, "NZ".to_owned()), ("B".to_owned(), 1, "O1".to_owned())];
    assert!(linked.bonds.iter().any(|b| ends(b) == sulfate), "{:?}", linked.bonds);
}

/// Each broken input, checked by the CLI from its directory, so messages carry the bare name.
fn check_in(dir: &Path, args: &[&str]) -> crate::support::Output {
    run(helico().current_dir(dir).args(["inputs", "check"]).args(args))
}

#[test]
fn broken_inputs_report_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "broken_af3.json",
            r#"{
  "name": "broken",
  "modelSeeds": [],
  "sequences": [
    {"protein": {"id": "A", "sequence": "MKVLZ1", "modifications": [{"ptmType": "sep", "ptmPosition": 9}],
                 "unpairedMsa": ">q\nMKVLAA\n", "unpairedMsaPath": "x.a3m"}},
    {"protein": {"id": ["A", "toolong"], "sequence": "MK", "pairedMsa": ""}},
    {"dna": {"id": "C", "sequence": "ACGU", "unpairedMsa": ""}},
    {"ligand": {"id": "D", "ccdCodes": ["ATP"], "smiles": "CCO"}},
    {"ligand": {"id": "E", "smiles": "C1CC(", "description": "v4 only"}}
  ],
  "bondedAtomPairs": [[["Z", 1, "C1"], ["A", 99, "CA"]]],
  "dialect": "alphafold3",
  "version": 7
}
"#,
        ),
        ("syntax.json", "{\"name\": \"x\",\n \"sequences\": [\n  {\"protein\": {\"id\": \"A\",}}\n ]\n}\n"),
        (
            "types.json",
            "{\"name\": \"x\", \"modelSeeds\": [1], \"dialect\": \"alphafold3\", \"version\": 1,\n \"sequences\": [\n  {\"protein\": {\"id\": \"A\", \"sequence\": \"MK\", \"count\": 2}}\n ]\n}\n",
        ),
        (
            "broken_boltz.yaml",
            "version: 2\nsequences:\n  - protein:\n      id: A\n      sequence: mkvl\n      msa: missing.a3m\n  - rna:\n      id: B\n      sequence: ACGU\n      msa: empty\n  - ligand:\n      id: C\n  - ligand:\n      id: D\n      ccd: ATP\n      smiles: CCO\nconstraints:\n  - pocket:\n      binder: C\n  - bond:\n      atom1: [A, 9, CA]\n      atom2: [Q, 1, C1]\ntemplates:\n  - cif: x.cif\n",
        ),
        ("unknown_field.yaml", "sequences:\n  - protein:\n      id: A\n      sequense: MKV\n"),
        ("unknown_kind.yaml", "sequences:\n  - lipid:\n      id: A\n"),
        (
            "broken_protenix.json",
            r#"[{"name": "p", "sequences": [
  {"proteinChain": {"sequence": "MKV", "count": 2, "id": ["A"], "modifications": [{"ptmType": "HY3", "ptmPosition": 1}]}},
  {"ligand": {"ligand": "FILE_ligand.sdf", "count": 1}},
  {"ion": {"ion": "CCD_MG", "count": 0}},
  {"dnaSequence": {"sequence": "ACGT", "count": 1, "pairedMsaPath": "p.a3m"}}
 ],
 "covalent_bonds": [{"entity1": 7, "position1": 1, "atom1": "N", "entity2": 1, "position2": 1, "atom2": "N"},
                    {"entity1": 1, "copy1": 1, "position1": 1, "atom1": "N", "entity2": 3, "position2": 1, "atom2": "MG"}],
 "constraint": {"contact": []}},
 {"name": "q", "sequences": [], "dialect": "alphafold3", "version": 2}]
"#,
        ),
        ("empty.json", "[]\n"),
        ("notes.txt", "A:MKV\n"),
    ];
    for (name, text) in cases {
        write(dir.path(), name, text);
        let out = check_in(dir.path(), &[name]).expect_code(2);
        assert!(out.stdout.is_empty(), "{name}: {}", out.stdout);
        snapshot!(format!("inputs_broken__{name}"), out.stderr);
    }
    let missing = check_in(dir.path(), &["absent.json"]).expect_code(2);
    assert!(missing.stderr.starts_with("helico: absent.json: cannot read: No such file"), "{}", missing.stderr);
}

#[test]
fn broken_mmcif_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let branched = "data_TEST\n_entry.id TEST\nloop_\n_entity.id\n_entity.type\n1 polymer\n2 branched\n3 polymer\n\
        loop_\n_entity_poly.entity_id\n_entity_poly.type\n1 'polypeptide(L)'\n3 'polypeptide(D)'\n\
        loop_\n_entity_poly_seq.entity_id\n_entity_poly_seq.num\n_entity_poly_seq.mon_id\n1 1 MET\n1 2 SEP\n1 2 SER\n1 3 Q9Q9Q\n3 1 DAL\n\
        loop_\n_pdbx_entity_branch_list.entity_id\n_pdbx_entity_branch_list.comp_id\n_pdbx_entity_branch_list.num\n2 NAG 1\n2 NAG 2\n\
        loop_\n_struct_asym.id\n_struct_asym.entity_id\nA 1\nB 2\nC 3\n";
    let path = write(dir.path(), "test.cif", branched);
    let err = inputs::read(&path, None).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: _entity 3 (polymer): polymer type \"polypeptide(D)\" is not read; helico reads polypeptide(L), polyribonucleotide and polydeoxyribonucleotide",
            path.display()
        )
    );
    let fixed = branched.replace("3 polymer\n", "").replace("3 'polypeptide(D)'\n", "").replace("C 3\n", "");
    let path = write(dir.path(), "fixed.cif", &fixed);
    let job = inputs::read(&path, None).unwrap().remove(0);
    let p = polymer(&job, 0);
    assert_eq!(p.sequence, "MXX", "microheterogeneity keeps the first residue; no CCD, no parents");
    assert_eq!(
        p.modifications,
        [Modification { position: 2, ccd: "SEP".into() }, Modification { position: 3, ccd: "Q9Q9Q".into() }]
    );
    assert_eq!(ligand(&job, 1), &Ligand::Ccd(vec!["NAG".into(), "NAG".into()]));
    let err = inputs::read(&path, Some(ccd())).unwrap_err().to_string();
    let n = ccd().len();
    let expected =
        format!("{}: _entity 1 (polymer): unknown CCD code \"Q9Q9Q\" ({n} components checked)", path.display());
    assert!(err.starts_with(&expected), "{err}");

    let no_struct_asym = fixed.split("loop_\n_struct_asym").next().unwrap().to_owned();
    let path = write(dir.path(), "bare.cif", &no_struct_asym);
    match inputs::read(&path, None) {
        Err(InputError::Cif(e)) => {
            assert_eq!(e.to_string(), format!("{}: data block \"TEST\" has no category _struct_asym", path.display()))
        }
        other => panic!("{other:?}"),
    }
    // A covalent bond needs atoms to place it on.
    let conn = "loop_\n_struct_conn.id\n_struct_conn.conn_type_id\n_struct_conn.ptnr1_label_asym_id\n\
        _struct_conn.ptnr1_label_comp_id\n_struct_conn.ptnr1_label_seq_id\n_struct_conn.ptnr1_label_atom_id\n\
        _struct_conn.ptnr2_label_asym_id\n_struct_conn.ptnr2_label_comp_id\n_struct_conn.ptnr2_label_seq_id\n\
        _struct_conn.ptnr2_label_atom_id\ncovale1 covale A SER 2 OG B NAG . C1\n";
    let path = write(dir.path(), "no_atoms.cif", &format!("{fixed}{conn}"));
    let err = inputs::read(&path, None).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: _struct_conn: its covalent bonds cannot be placed on atoms: ", path.display())),
        "{err}"
    );
    let truncated = write(dir.path(), "cut.cif", &branched[..branched.len() / 2]);
    assert!(inputs::read(&truncated, None).is_err());
}

#[test]
fn ccd_codes_and_atom_names_checked_against_the_ccd() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rna.a3m", ">q\nACGUN\n");
    let text = AF3
        .replace("\"ND2\"", "\"XX9\"")
        .replace("\"SEP\"", "\"ZZZZZ\"")
        .replace(r#"["NAG", "NAG"]"#, r#"["NAG", "QQQQQ"]"#);
    let path = write(dir.path(), "job.json", &text);
    assert!(inputs::read(&path, None).is_ok(), "without a CCD only the form of codes is checked");
    let err = inputs::read(&path, Some(ccd())).unwrap_err().to_string();
    let n = ccd().len();
    let lines: Vec<String> =
        err.lines().map(|l| l.replace(&path.display().to_string(), "job.json").replace(&n.to_string(), "N")).collect();
    snapshot!("inputs_ccd_checks", lines.join("\n"));

    let out = run(helico().args(["inputs", "check", "--ccd", ccd_bcif().to_str().unwrap(), "--json"]).arg(&path));
    let out = out.expect_code(2);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"].as_array().unwrap().len(), lines.len() - 1, "one header line, then one line per problem");
    assert_eq!((v["problems"][0]["line"].clone(), v["problems"][0]["column"].clone()), (6.into(), 48.into()));
}

#[test]
fn sequences_through_the_cli() {
    let out = run(helico().args(["inputs", "check", "--json", "--sequences", "A:MKVL,B:ACGU,C:MKVL,D:ccd:ATP"]))
        .expect_code(0);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let job = &v["inputs"][0];
    assert_eq!(job["format"], "sequences");
    assert_eq!(job["entities"][0]["chains"], serde_json::json!(["A", "C"]));
    assert_eq!(job["entities"][1]["molecule"]["polymer"]["kind"], "rna");
    assert_eq!(job["entities"][2]["molecule"]["ligand"]["ccd"], serde_json::json!(["ATP"]));
    let text = run(helico().args(["inputs", "check", "--sequences", "A:MKVL,B:ACGU,C:MKVL,D:ccd:ATP"])).expect_code(0);
    snapshot!("inputs_check_sequences", text.stdout);
    let bad = run(helico().args(["inputs", "check", "--sequences", "A:MKV,A:ACGU"])).expect_code(2);
    assert_eq!(
        bad.stderr.trim(),
        "helico: --sequences: entry 2 (\"A:ACGU\"): chain id \"A\" is already used by entity 1; chain ids must be unique"
    );
    run(helico().args(["inputs", "check"])).expect_code(2);
}

#[test]
fn valid_inputs_print_their_entities() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rna.a3m", ">q\nACGUN\n>h\nAC-UA\n");
    write(dir.path(), "job.json", AF3);
    snapshot!("inputs_check_af3", check_in(dir.path(), &["job.json"]).expect_code(0).stdout);
    write(dir.path(), "jobs.json", PROTENIX);
    snapshot!("inputs_check_protenix", check_in(dir.path(), &["jobs.json"]).expect_code(0).stdout);
}

#[test]
fn inputs_help_is_pinned() {
    snapshot!("help__inputs", run(helico().args(["inputs", "--help"])).expect_code(0).stdout);
    snapshot!("help__inputs_check", run(helico().args(["inputs", "check", "--help"])).expect_code(0).stdout);
}
