//! Multiple sequence alignments: the readers on openfold3's real A3M/Stockholm MSAs and Rfam's
//! alignments against an independent Python reading, pairing on a constructed complex whose
//! answer is worked out by hand, seeded subsampling against a Python transcription of the
//! documented algorithm, and the tar offset index on archives built by the system `tar`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use helico::data::msa::{Alphabet, IndexOrigin, Msa, MsaError, TarIndex, pair_by_species};

use crate::data_support::{oracle, repo_path};

fn alignment_files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        walk(&repo_path(dir)).into_iter().filter(|p| p.extension().is_some_and(|e| e == ext)).collect();
    files.sort();
    files
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("list the directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

/// Every row, letter, deletion count and species of every file, against the oracle.
fn compare_with_oracle(kind: &str, alphabet: Alphabet, files: &[PathBuf]) {
    let mut args = vec![PathBuf::from(kind)];
    args.extend(files.iter().cloned());
    let expected = oracle("msa_reference.py", &args);
    for (path, want) in files.iter().zip(expected.as_array().expect("a list")) {
        let got = Msa::read(path, alphabet);
        if let Some(error) = want.get("error") {
            let err = got.expect_err("the oracle rejects this file").to_string();
            assert!(err.contains("only gaps"), "{}: oracle: {error}; helico: {err}", path.display());
            continue;
        }
        let msa = got.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let names: Vec<String> = serde_json::from_value(want["names"].clone()).expect("names");
        let letters: Vec<String> = serde_json::from_value(want["letters"].clone()).expect("letters");
        let deletions: Vec<Vec<u16>> = serde_json::from_value(want["deletions"].clone()).expect("deletions");
        let species: Vec<Option<String>> = serde_json::from_value(want["species"].clone()).expect("species");
        assert_eq!(msa.names(), names, "{}", path.display());
        assert_eq!(msa.species(), species, "{}", path.display());
        for i in 0..msa.depth() {
            assert_eq!(msa.letters(i), letters[i], "{} row {i}", path.display());
            assert_eq!(msa.deletion_row(i), deletions[i], "{} row {i}", path.display());
        }
    }
}

#[test]
fn openfold3_msas_match_an_independent_reading() {
    let mut files = alignment_files("data/openfold3/alignments", "a3m");
    files.extend(alignment_files("data/openfold3/alignments", "sto"));
    assert_eq!(files.len(), 10, "2q2k_A and 2q2k_B: bfd a3m, four Stockholm files each");
    let start = Instant::now();
    compare_with_oracle("protein", Alphabet::Protein, &files);
    eprintln!("{} protein MSAs compared in {:.2?}", files.len(), start.elapsed());
    // Spot values a reader of the files can confirm by eye.
    let a = repo_path("data/openfold3/alignments/2q2k_A");
    let bfd = Msa::read(a.join("bfd_uniclust_hits.a3m"), Alphabet::Protein).unwrap();
    assert_eq!(bfd.letters(0), "MGSSHHHHHHSSGLVPGSHMDKKETKHLLKIKKEDYPQIFDFLENVPRGTKTAHIREALRRYIEEIGENP");
    assert_eq!((bfd.depth(), bfd.width()), (4, 70));
    assert_eq!(bfd.deletion_row(3)[69], 1, "the last row inserts 'p' before its final P");
    let uniprot = Msa::read(a.join("uniprot_hits.sto"), Alphabet::Protein).unwrap();
    assert_eq!(uniprot.species()[1].as_deref(), Some("9STAP"));
    let hmm = Msa::read(a.join("hmm_output.sto"), Alphabet::Protein).unwrap();
    assert_eq!(hmm.width(), 70);
    assert!(hmm.deletions().iter().any(|&d| d > 0), "hmmsearch output has insert columns");
}

#[test]
fn rfam_alignments_match_an_independent_reading() {
    let files = alignment_files("data/rna_tools", "sto");
    assert_eq!(files.len(), 8);
    compare_with_oracle("rna", Alphabet::Rna, &files);
}

#[test]
fn profile_and_deletion_mean_on_a_real_msa() {
    let path = repo_path("data/openfold3/alignments/2q2k_A/uniref90_hits.sto");
    let msa = Msa::read(&path, Alphabet::Protein).unwrap();
    let profile = msa.profile();
    assert_eq!(profile.len(), msa.width());
    for column in &profile {
        assert!((column.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
    // Column 0: the query and three hits have M, the other 12 rows a gap.
    let m = helico::data::msa::Alphabet::Protein.encode(b'M').unwrap() as usize;
    assert_eq!(profile[0][m], 4.0 / 16.0);
    assert_eq!(profile[0][helico::data::msa::GAP as usize], 12.0 / 16.0);
    // The query has '-' after "…GLVP" and after "…DKKE": insert columns. Three hits have an R
    // in the first (deletion 1 before query column 16), one hit a Q in the second (column 24).
    let mean = msa.deletion_mean();
    assert_eq!(mean.len(), 70);
    assert_eq!((mean[16], mean[24]), (3.0 / 16.0, 1.0 / 16.0));
    assert_eq!(mean.iter().sum::<f32>(), 4.0 / 16.0);
}

#[test]
fn pairing_a_constructed_complex_by_species() {
    // Chain A (query MKVL): HUMAN twice (the second closer to the query), MOUSE once, YEAST
    // (A only), one hit without species. Chain B (query GGAA): HUMAN once, MOUSE twice (the
    // first closer), ECOLI (B only). Chain C (query WW): MOUSE only.
    let a = Msa::parse_a3m(
        b">qa\nMKVL\n>tr|A00001|A00001_HUMAN\nMAAA\n>tr|A00002|A00002_HUMAN\nMKVA\n>tr|A00003|A00003_MOUSE\nMKAA\n>tr|A00004|A00004_YEAST\nMKVL\n>MGYP0001\nMKVL\n",
        "a.a3m",
        Alphabet::Protein,
    )
    .unwrap();
    let b = Msa::parse_a3m(
        b">qb\nGGAA\n>sp|B00001|B1_MOUSE\nGGAA\n>tr|B00002|B00002_HUMAN\nGAAA\n>tr|B00003|B00003_MOUSE\nAAAA\n>tr|B00004|B00004_ECOLI\nGGAA\n",
        "b.a3m",
        Alphabet::Protein,
    )
    .unwrap();
    let c = Msa::parse_a3m(b">qc\nWW\n>tr|C00001|C00001_MOUSE\nW-\n", "c.a3m", Alphabet::Protein).unwrap();

    // Two chains: HUMAN pairs A's closer hit (row 2) with B's only one (row 2); MOUSE pairs A's
    // row 3 with B's closer hit (row 1). Products of row indices: HUMAN 4, MOUSE 3.
    let ab = pair_by_species(&[&a, &b], 100);
    assert_eq!(ab.rows, vec![vec![Some(0), Some(0)], vec![Some(3), Some(1)], vec![Some(2), Some(2)]]);

    // Three chains: MOUSE is in all three (first), HUMAN in two (C gets a gap row).
    let abc = pair_by_species(&[&a, &b, &c], 100);
    assert_eq!(abc.rows, vec![vec![Some(0); 3], vec![Some(3), Some(1), Some(1)], vec![Some(2), Some(2), None]]);
    let gathered = abc.gather(&[&a, &b, &c]);
    assert!(gathered.iter().all(|m| m.depth() == 3));
    let complex = Msa::concat_columns(&gathered).unwrap();
    assert_eq!(complex.letters(0), "MKVLGGAAWW");
    assert_eq!(complex.letters(1), "MKAAGGAAW-");
    assert_eq!(complex.letters(2), "MKVAGAAA--");
    assert_eq!(complex.species()[2].as_deref(), Some("HUMAN"));

    // The cut keeps the query row first.
    assert_eq!(pair_by_species(&[&a, &b], 2).rows.len(), 2);
}

#[test]
fn a_species_with_too_many_hits_is_not_paired() {
    let hits: String = (0..601).map(|i| format!(">tr|A{i:05}|A{i:05}_HUMAN\nMK\n")).collect();
    let a = Msa::parse_a3m(format!(">q\nMK\n{hits}").as_bytes(), "a", Alphabet::Protein).unwrap();
    let b = Msa::parse_a3m(b">q\nMK\n>tr|B00001|B00001_HUMAN\nMK\n", "b", Alphabet::Protein).unwrap();
    assert_eq!(pair_by_species(&[&a, &b], 1000).rows.len(), 1);
}

#[test]
fn subsampling_matches_the_documented_algorithm() {
    let msa = Msa::read(repo_path("data/openfold3/alignments/2q2k_A/hmm_output.sto"), Alphabet::Protein).unwrap();
    for (max_rows, seed) in [(512usize, 42u64), (16, 0), (16, 1), (2048, u64::MAX)] {
        let args = [msa.depth().to_string(), max_rows.to_string(), seed.to_string()];
        let kept: Vec<usize> = serde_json::from_value(oracle("subsample_reference.py", &args)).expect("indices");
        let sub = msa.subsample(max_rows, seed);
        let names: Vec<&String> = kept.iter().map(|&i| &msa.names()[i]).collect();
        assert_eq!(sub.names().iter().collect::<Vec<_>>(), names, "max_rows {max_rows}, seed {seed}");
        assert_eq!(sub.letters(5), msa.letters(kept[5]));
        assert_eq!(sub, msa.subsample(max_rows, seed), "same seed, same rows");
    }
}

#[test]
fn crop_columns_follow_residue_indices() {
    let msa = Msa::read(repo_path("data/openfold3/alignments/2q2k_B/uniref90_hits.sto"), Alphabet::Protein).unwrap();
    let crop: Vec<usize> = (20..40).collect();
    let cropped = msa.select_columns(&crop).unwrap();
    assert_eq!(cropped.depth(), msa.depth());
    for i in 0..msa.depth() {
        assert_eq!(cropped.letters(i), msa.letters(i)[20..40]);
        assert_eq!(cropped.deletion_row(i), &msa.deletion_row(i)[20..40]);
    }
    let err = msa.select_columns(&[70]).unwrap_err();
    assert!(matches!(err, MsaError::ColumnOutOfRange { column: 70, width: 70 }), "{err}");
}

/// A tar of `n` small A3M members (some gzipped, one with a 150-character path) built by the
/// system `tar`, in `dir`.
fn build_tar(dir: &Path, n: usize, archive: &Path) -> Vec<(String, Vec<u8>)> {
    let src = dir.join("src");
    let long = format!("deep/{}/x.a3m", "d".repeat(140));
    let mut members = Vec::new();
    for i in 0..n {
        let name = if i == 7 { long.clone() } else { format!("msa/{:03}/{i}.a3m", i % 97) };
        let text = format!(">q{i}\nMKV{}\n>h\nM-V{}\n", "L".repeat(i % 13), "L".repeat(i % 13));
        let bytes = if i % 5 == 0 {
            use std::io::Write;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(text.as_bytes()).unwrap();
            gz.finish().unwrap()
        } else {
            text.into_bytes()
        };
        let path = src.join(&name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        members.push((name, bytes));
    }
    let status = Command::new("tar").arg("-cf").arg(archive).arg("-C").arg(&src).args(["msa", "deep"]).status();
    assert!(status.expect("the system tar runs").success());
    members
}

#[test]
fn tar_index_gives_every_member_and_survives_changes() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("msas.tar");
    let members = build_tar(dir.path(), 3000, &archive);

    let start = Instant::now();
    let index = TarIndex::open(&archive).unwrap();
    let built = start.elapsed();
    assert_eq!(index.origin(), IndexOrigin::Built);
    assert_eq!(index.len(), members.len());
    assert!(dir.path().join("msas.tar.index").exists());

    let start = Instant::now();
    for (name, bytes) in &members {
        assert_eq!(&index.read(name).unwrap(), bytes, "{name}");
    }
    let per_lookup = start.elapsed() / members.len() as u32;
    eprintln!("tar index: built over {} members in {built:.2?}; lookup + read {per_lookup:.2?} each", members.len());
    assert!(per_lookup.as_micros() < 2000, "a lookup is a hash probe and one read: {per_lookup:?}");
    let msa = index.read_msa("msa/000/0.a3m", Alphabet::Protein).unwrap();
    assert_eq!(msa.letters(1), "M-V");
    let long = index.read_msa(&members[7].0, Alphabet::Protein).unwrap();
    assert_eq!(long.names()[0], "q7");

    let missing = index.read("msa/none.a3m").unwrap_err().to_string();
    assert_eq!(missing, format!("{}: no member \"msa/none.a3m\" (3000 members indexed)", archive.display()));
    drop(index);

    assert_eq!(TarIndex::open(&archive).unwrap().origin(), IndexOrigin::Loaded);

    // A new version of the archive (one more member): the index is stale and rebuilt.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(dir.path().join("src/msa/extra.a3m"), ">x\nMK\n").unwrap();
    let status = Command::new("tar")
        .arg("-rf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.path().join("src"))
        .arg("msa/extra.a3m")
        .status();
    assert!(status.unwrap().success());
    let rebuilt = TarIndex::open(&archive).unwrap();
    assert_eq!(rebuilt.origin(), IndexOrigin::Rebuilt);
    assert_eq!(rebuilt.read("msa/extra.a3m").unwrap(), b">x\nMK\n");
}

#[test]
fn corrupt_tar_index_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("msas.tar");
    build_tar(dir.path(), 20, &archive);
    let index_path = dir.path().join("custom.index");
    TarIndex::open_with(&archive, &index_path).unwrap();
    let good = std::fs::read(&index_path).unwrap();

    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x40;
    let truncated = good[..good.len() - 40].to_vec();
    for (bytes, problem) in [
        (flipped, "checksum mismatch"),
        (truncated, "checksum mismatch"),
        (b"tar".to_vec(), "3 bytes without the index header"),
    ] {
        std::fs::write(&index_path, bytes).unwrap();
        let err = TarIndex::open_with(&archive, &index_path).unwrap_err().to_string();
        let expected = format!(
            "{}: corrupt tar index ({problem}); delete it and it is rebuilt from {} on the next open",
            index_path.display(),
            archive.display()
        );
        assert_eq!(err, expected);
    }
    let not_tar = dir.path().join("plain.tar");
    std::fs::write(&not_tar, vec![b'x'; 1024]).unwrap();
    let err = TarIndex::open(&not_tar).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}: not a readable tar archive", not_tar.display())), "{err}");

    // A gzipped tar cannot be read at an offset: refused, not indexed.
    let gzipped = dir.path().join("msas.tar.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &std::fs::read(&archive).unwrap()).unwrap();
    std::fs::write(&gzipped, gz.finish().unwrap()).unwrap();
    let err = TarIndex::open(&gzipped).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}: not a readable tar archive", gzipped.display())), "{err}");
}

#[test]
fn broken_alignments_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(repo_path("data/openfold3/alignments/2q2k_A/bfd_uniclust_hits.a3m")).unwrap();
    let mut gz = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&good).unwrap();
        e.finish().unwrap()
    };
    gz.truncate(gz.len() / 2);
    let path = dir.path().join("cut.a3m.gz");
    std::fs::write(&path, &gz).unwrap();
    let err = Msa::read(&path, Alphabet::Protein).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}: not a valid gzip stream", path.display())), "{err}");

    let sto = std::fs::read_to_string(repo_path("data/openfold3/alignments/2q2k_A/uniref90_hits.sto")).unwrap();
    let cut: String = sto.lines().take(20).map(|l| format!("{l}\n")).collect();
    let err = Msa::parse(cut.as_bytes(), "uniref90_hits.sto", Alphabet::Protein).unwrap_err().to_string();
    assert_eq!(err, "uniref90_hits.sto:20: expected '//' ending the alignment, got the end of the file (truncated?)");
}
