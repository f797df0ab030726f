//! The demo corpus from the real CCD and the openfold3 mmCIFs, against gemmi + the spec rules.

use std::collections::HashSet;

use helico::data::demo::{DemoSources, build_demo_corpus};
use purr::graph::Builder;

use crate::data_support::{ccd, mmcif_files, oracle};

#[test]
fn demo_corpus_from_real_files() {
    // The 15 openfold3 entries, plus 2q2k with its DNA entity relabelled as RNA: the test data
    // has no RNA entity, and this one exercises the RNA alphabet (its T becomes N).
    let inputs = tempfile::tempdir().unwrap();
    for path in mmcif_files() {
        std::fs::copy(&path, inputs.path().join(path.file_name().unwrap())).unwrap();
    }
    let dna = std::fs::read_to_string(inputs.path().join("2q2k.cif")).unwrap();
    let rna = dna.replace("polydeoxyribonucleotide", "polyribonucleotide").replace("data_2Q2K", "data_9RNA");
    std::fs::write(inputs.path().join("9rna.cif"), rna.replace("_entry.id   2Q2K", "_entry.id   9RNA")).unwrap();

    let out = tempfile::tempdir().unwrap();
    let sources =
        DemoSources { mmcif_dir: inputs.path().to_path_buf(), protein_alignments: vec![], rna_alignments: vec![] };
    let corpus = build_demo_corpus(ccd(), &sources, &out.path().join("corpus")).unwrap();
    eprintln!("demo corpus: {corpus:?}");

    let want = oracle("demo_fasta.py", &[inputs.path()]);
    let read = |name: &str| std::fs::read_to_string(out.path().join("corpus").join(name)).unwrap();
    assert_eq!(read("protein.fasta"), want["protein"].as_str().unwrap());
    assert_eq!(read("rna.fasta"), want["rna"].as_str().unwrap());
    assert_eq!(corpus.protein, want["protein"].as_str().unwrap().matches('>').count());
    assert_eq!(corpus.rna, 1);
    assert_eq!(corpus.mmcif_files, 16);

    let smi = read("smiles.smi");
    let lines: Vec<(&str, &str)> = smi.lines().map(|l| l.split_once('\t').expect("SMILES<TAB>ID")).collect();
    assert_eq!(lines.len(), corpus.smiles);
    assert!(lines.windows(2).all(|w| w[0].1 < w[1].1), "sorted by unique component id");
    let skipped: usize = corpus.smiles_skipped.values().sum();
    assert_eq!(corpus.smiles + skipped, 49_196);
    for (smiles, id) in &lines {
        let mut builder = Builder::new();
        purr::read::read(smiles, &mut builder, None).unwrap_or_else(|e| panic!("{id}: {smiles:?}: {e:?}"));
    }
    let ids: HashSet<&str> = lines.iter().map(|l| l.1).collect();
    assert!(ids.contains("ATP") && ids.contains("HEM") && ids.contains("NAG"));
    let leftovers: Vec<_> =
        std::fs::read_dir(out.path().join("corpus")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 3, "only the three corpus files, no temporary files: {leftovers:?}");
}

/// Alignment rows become corpus sequences: openfold3's protein MSAs and rna_tools' Rfam
/// alignments, against an independent Python reading of the same files.
#[test]
fn alignment_sequences_from_real_msas() {
    let protein = crate::support::setup_file("data/openfold3/alignments");
    let rna = crate::support::setup_file("data/rna_tools");
    let empty = tempfile::tempdir().unwrap();
    std::fs::copy(crate::support::setup_file("data/openfold3/mmcifs/1ubq.cif"), empty.path().join("1ubq.cif")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let sources = DemoSources {
        mmcif_dir: empty.path().to_path_buf(),
        protein_alignments: vec![protein.clone()],
        rna_alignments: vec![rna.clone()],
    };
    let corpus = build_demo_corpus(ccd(), &sources, out.path()).unwrap();
    let want = oracle("alignment_fasta.py", &[empty.path(), &protein, &rna]);
    let read = |name: &str| std::fs::read_to_string(out.path().join(name)).unwrap();
    assert_eq!(read("protein.fasta"), want["protein"].as_str().unwrap());
    assert_eq!(read("rna.fasta"), want["rna"].as_str().unwrap());
    assert!(corpus.protein > 100, "openfold3's MSAs hold hundreds of distinct hits: {corpus:?}");
    assert!(corpus.rna > 100, "the Rfam alignments hold hundreds of RNAs: {corpus:?}");
}
