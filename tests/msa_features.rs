//! MSAs through preprocessing, the structure cache and the AF3 loader: openfold3's real
//! alignments of 2q2k (a protein homodimer on DNA with atomized 5-iodo-uracils) against an
//! independent numpy reading of the files; pairing, budgets and repeated columns on 1kd8 (a
//! heterohexamer of two peptides with an acetyl cap) with alignment files written here whose
//! answers are known by construction; the crop join; and the problems the manifest records.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use helico::data::crop::{CropMethod, crop};
use helico::data::msa::{
    AlignmentSource, Alphabet, EntityMsa, GAP, MAX_MSA_ROWS, MAX_PAIRED_ROWS, MAX_STORED_ROWS, Msa, MsaFeatures,
    find_entity_msas, letter,
};
use helico::data::packing::SplitMix64;
use helico::data::prep::loader::{Af3Dataset, LoaderConfig, restype_classes};
use helico::data::prep::{self, CachedStructure, Params, Status, journal};
use helico::data::structure::{Options, Structure};
use helico::data::tokenize::Tokens;
use serde_json::Value;
use tch::Tensor;

use crate::data_support::{ccd, oracle, preprocess_dir, repo_path};
use crate::features::{features, floats, longs, model};
use crate::support::{helico, run};

const ALIGNMENTS: &str = "data/openfold3/alignments";
/// 1kd8's entities as `_entity_poly.pdbx_seq_one_letter_code_can` spells them (ACE is X).
const KD8_SEQUENCES: [&str; 2] = ["XEVKQLEAEVEEIESEVWHLENEVARLEKENAECEA", "XKVKQLKAKVEELKSKLWHLKNKVARLKKKNAECKA"];

/// Preprocesses the openfold3 structures `keys` with the MSA sources `msa`, in-process.
fn preprocess(root: &Path, keys: &[&str], msa: &[PathBuf]) -> PathBuf {
    let src = root.join("src");
    std::fs::create_dir_all(&src).unwrap();
    for key in keys {
        std::fs::copy(repo_path(&format!("data/openfold3/mmcifs/{key}.cif")), src.join(format!("{key}.cif"))).unwrap();
    }
    let out = root.join("out");
    let summary = preprocess_dir(&src, &out, &Params { msa: msa.to_vec(), ..Params::default() }, 1);
    assert_eq!(summary.failed, 0, "{:?}", summary.failures);
    out
}

fn cached(out: &Path, key: &str) -> CachedStructure {
    CachedStructure::read(&out.join(prep::cache_path(key))).unwrap()
}

fn record(out: &Path, key: &str) -> journal::Record {
    journal::read(out).unwrap().remove(&format!("{key}.cif")).unwrap()
}

/// The restype class of each token (what row 0 must equal) and the MSA features of `tokens`.
fn msa_features(s: &Structure, tokens: &Tokens, msas: &[EntityMsa], seed: u64) -> (Vec<u8>, MsaFeatures) {
    let query = restype_classes(&features(s, tokens, false, 0).restype);
    let msa = MsaFeatures::new(s, tokens, &query, msas, seed);
    (query, msa)
}

/// `[S, N]` as rows.
fn rows_of(t: &Tensor) -> Vec<Vec<i64>> {
    let n = t.size()[1] as usize;
    longs(t).chunks(n.max(1)).map(<[i64]>::to_vec).collect()
}

/// Columns `idx` of a `[.., N]` or rows `idx` of an `[N, ..]` tensor.
fn select(t: &Tensor, dim: i64, idx: &[usize]) -> Tensor {
    t.index_select(dim, &Tensor::from_slice(&idx.iter().map(|&i| i as i64).collect::<Vec<_>>()))
}

fn same(a: &Tensor, b: &Tensor) -> bool {
    a.size() == b.size() && a.kind() == b.kind() && a.equal(b)
}

/// Tokens of chain `label` (label_asym_id), in order.
fn chain_tokens(s: &Structure, tokens: &Tokens, label: &str) -> Vec<usize> {
    (0..tokens.len()).filter(|&t| s.chains[s.residues[tokens.residue[t]].chain].label_asym_id == label).collect()
}

#[test]
fn cache_holds_2q2k_alignment_as_read_independently() {
    let dir = tempfile::tempdir().unwrap();
    let out = preprocess(dir.path(), &["2q2k", "1ubq"], &[repo_path(ALIGNMENTS)]);
    let c = cached(&out, "2q2k");

    // Author chains A and B are the protein copies (label B and C; label A is the DNA): one
    // entity, one alignment, from the first chain's directory. No second protein sequence,
    // so no pairing hits are stored.
    let fresh = Structure::read(repo_path("data/openfold3/mmcifs/2q2k.cif"), &Options::default()).unwrap();
    let (fresh, _) = fresh.complete(ccd()).unwrap();
    let entity = fresh.entities.iter().position(|e| e.id == "2").unwrap();
    assert_eq!(c.msas.len(), 1);
    assert_eq!((c.msas[0].entity, c.msas[0].pairing.is_none()), (entity, true));
    let report = record(&out, "2q2k").msa.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.entities[0].directory, "2q2k_A");
    let files: Vec<&str> = report.entities[0].files.iter().map(|f| f.file.as_str()).collect();
    assert_eq!(files, ["uniref90_hits.sto", "bfd_uniclust_hits.a3m", "mgnify_hits.sto"], "openfold3's order");
    assert_eq!(
        report.inputs.len(),
        3,
        "neither hmm_output.sto (template hits) nor, for a homomer, uniprot_hits.sto is read"
    );

    // The cache equals a fresh reading, exactly.
    let source = AlignmentSource::open(&repo_path(ALIGNMENTS)).unwrap();
    let (msas, _) = find_entity_msas(&fresh, ccd(), "2q2k", &[source]);
    assert_eq!(c.msas, msas);

    // And the independent reading: stacked in that order, deduplicated on letters.
    let a = repo_path(&format!("{ALIGNMENTS}/2q2k_A"));
    let paths: Vec<PathBuf> = files.iter().map(|f| a.join(f)).collect();
    let want = oracle("msa_features_reference.py", &paths);
    let main = &c.msas[0].main;
    let letters: Vec<String> = serde_json::from_value(want["letters"].clone()).unwrap();
    let deletions: Vec<Vec<u16>> = serde_json::from_value(want["deletions"].clone()).unwrap();
    let species: Vec<Option<String>> = serde_json::from_value(want["species"].clone()).unwrap();
    assert_eq!(main.depth(), letters.len());
    for i in 0..main.depth() {
        assert_eq!((main.letters(i), main.deletion_row(i)), (letters[i].clone(), &deletions[i][..]), "row {i}");
    }
    assert_eq!(main.species(), species);
    let profile: Vec<Vec<f64>> = serde_json::from_value(want["profile"].clone()).unwrap();
    for (got, want) in c.msas[0].profile.iter().zip(&profile) {
        assert!(got.iter().zip(want).all(|(g, w)| (f64::from(*g) - w).abs() < 1e-6), "{got:?} {want:?}");
    }

    // An entry without alignments stores none and loads as fast as before.
    assert!(cached(&out, "1ubq").msas.is_empty());
    let start = Instant::now();
    for _ in 0..20 {
        cached(&out, "1ubq");
    }
    eprintln!("1ubq (no MSA) loads in {:.2?}; 2q2k with its alignment:", start.elapsed() / 20);
    let start = Instant::now();
    cached(&out, "2q2k");
    eprintln!("  {:.2?}", start.elapsed());
}

#[test]
fn features_of_2q2k_follow_the_formulas_and_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = preprocess(dir.path(), &["2q2k"], &[repo_path(ALIGNMENTS)]);
    let c = cached(&out, "2q2k");
    let (s, tokens) = (&c.structure, &c.tokens);
    let (query, f) = msa_features(s, tokens, &c.msas, 3);
    let n = tokens.len() as i64;
    let depth = c.msas[0].main.depth() as i64;
    assert_eq!(f.msa.size(), [depth, n], "one homodimer entity: no paired block, its rows stacked");
    assert_eq!((f.has_deletion.size(), f.deletion_value.size()), (vec![depth, n], vec![depth, n]));
    assert_eq!((f.profile.size(), f.deletion_mean.size()), (vec![n, 32], vec![n]));
    let msa = rows_of(&f.msa);
    assert_eq!(msa[0], query.iter().map(|&q| i64::from(q)).collect::<Vec<_>>(), "row 0 is the restype");

    // Each protein copy's columns are the numpy features of the stacked files.
    let a = repo_path(&format!("{ALIGNMENTS}/2q2k_A"));
    let files = ["uniref90_hits.sto", "bfd_uniclust_hits.a3m", "mgnify_hits.sto"].map(|f| a.join(f));
    let want = oracle("msa_features_reference.py", &files);
    let matrix = |key: &str| -> Vec<Vec<f64>> { serde_json::from_value(want[key].clone()).unwrap() };
    let (has, value, profile) = (matrix("has_deletion"), matrix("deletion_value"), matrix("profile"));
    let mean: Vec<f64> = serde_json::from_value(want["deletion_mean"].clone()).unwrap();
    let letters: Vec<String> = serde_json::from_value(want["letters"].clone()).unwrap();
    for label in ["B", "C"] {
        let cols = chain_tokens(s, tokens, label);
        assert_eq!(cols.len(), 70);
        let close = |got: &Tensor, want: &[Vec<f64>]| {
            let got = rows_of(&(got * 1e6).round().to_kind(tch::Kind::Int64));
            for (i, row) in want.iter().enumerate() {
                let want: Vec<i64> = row.iter().map(|v| (v * 1e6).round() as i64).collect();
                let diff = got[i].iter().zip(&want).map(|(a, b)| (a - b).abs()).max().unwrap();
                assert!(diff <= 1, "chain {label} row {i}: {:?} vs {want:?}", got[i]);
            }
        };
        close(&select(&f.has_deletion, 1, &cols), &has);
        close(&select(&f.deletion_value, 1, &cols), &value);
        for (i, row) in msa.iter().enumerate().skip(1) {
            let text: String = cols.iter().map(|&t| letter(row[t] as u8)).collect();
            assert_eq!(text, letters[i], "chain {label} row {i}");
        }
        let got = floats(&select(&f.profile, 0, &cols));
        let want: Vec<f32> = profile.iter().flatten().map(|&v| v as f32).collect();
        assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6));
        let got = floats(&select(&f.deletion_mean, 0, &cols));
        assert!(got.iter().zip(&mean).all(|(a, b)| (f64::from(*a) - b).abs() < 1e-6));
    }
    assert!(floats(&f.has_deletion).contains(&1.0), "the alignment has insertions");

    // The DNA (label A) has no alignment: gaps below its query, its restype as profile. Its
    // two 5IU residues are atomized: their tokens share the residue's (gap) column.
    let dna = chain_tokens(s, tokens, "A");
    assert!(dna.len() > 20, "20 nucleotides, two of them one token per atom");
    for &t in &dna {
        assert!(msa[1..].iter().all(|row| row[t] == i64::from(GAP)));
        let p = floats(&f.profile.get(t as i64));
        assert_eq!(p.iter().position(|&v| v == 1.0), Some(usize::from(query[t])));
    }

    // The loader hands out the same features for a crop of it.
    let dataset = Arc::new(Af3Dataset::open(&out).unwrap());
    let config = LoaderConfig { crop_size: 64, workers: 0, seed: 1, ..LoaderConfig::default() };
    for batch in dataset.epoch(&config, 0) {
        let batch = batch.unwrap();
        for b in 0..batch.len() {
            let n = batch.n_tokens[b] as i64;
            assert_eq!(batch.n_msa_rows[b] as i64, depth);
            let msa = batch.msa.msa.get(b as i64).narrow(0, 0, depth).narrow(1, 0, n);
            let restype = batch.features.restype.get(b as i64).narrow(0, 0, n);
            assert_eq!(longs(&msa.get(0)), longs(&restype.argmax(-1, false)));
        }
    }
}

/// Checks that the features of `crop_tokens` are columns of the features of all tokens of
/// their chains; returns whether the crop touches every chain.
fn check_join(s: &Structure, tokens: &Tokens, msas: &[EntityMsa], crop_tokens: &[usize], seed: u64) -> bool {
    let chain = |t: usize| s.residues[tokens.residue[t]].chain;
    let chains: BTreeSet<usize> = crop_tokens.iter().map(|&t| chain(t)).collect();
    let whole: Vec<usize> = (0..tokens.len()).filter(|&t| chains.contains(&chain(t))).collect();
    let (_, full) = msa_features(s, &tokens.select(&whole), msas, seed);
    let (_, part) = msa_features(s, &tokens.select(crop_tokens), msas, seed);
    let at: Vec<usize> = crop_tokens.iter().map(|t| whole.binary_search(t).unwrap()).collect();
    for (name, a, b, dim) in [
        ("msa", &part.msa, &full.msa, 1),
        ("has_deletion", &part.has_deletion, &full.has_deletion, 1),
        ("deletion_value", &part.deletion_value, &full.deletion_value, 1),
        ("profile", &part.profile, &full.profile, 0),
        ("deletion_mean", &part.deletion_mean, &full.deletion_mean, 0),
    ] {
        assert!(same(a, &select(b, dim, &at)), "{name}: crop {:?} of chains {chains:?}", &crop_tokens[..4]);
    }
    chains.len() == s.chains.len()
}

/// Contiguous and spatial crops of `s` at `size` tokens, several seeds each: every one joins,
/// and for each method at least one covers every chain (then the reference is the whole
/// structure's features).
fn check_crops(s: &Structure, tokens: &Tokens, msas: &[EntityMsa], size: usize) {
    for method in [CropMethod::Contiguous, CropMethod::Spatial] {
        let mut whole = 0;
        for seed in 0..6 {
            let c = crop(s, tokens, size, method, &[], &mut SplitMix64(seed));
            assert!(c.tokens.len() < tokens.len());
            whole += usize::from(check_join(s, tokens, msas, &c.tokens, seed));
        }
        assert!(whole > 0, "{method:?}: no crop of {size} tokens covered every chain");
    }
}

#[test]
fn a_crop_takes_its_columns_of_the_whole_features_2q2k() {
    let dir = tempfile::tempdir().unwrap();
    let out = preprocess(dir.path(), &["2q2k"], &[repo_path(ALIGNMENTS)]);
    let c = cached(&out, "2q2k");
    check_crops(&c.structure, &c.tokens, &c.msas, 120);
}

/// One alignment row: `query` with columns 1–4 spelling `i` in base 20 (so every row is
/// unique), a marker in the last column (W main hits, Y pairing hits), and for every third row
/// an insertion of `k % 4 + 1` residues before column 10.
fn hit(query: &str, i: usize, marker: char) -> String {
    const AA: &[u8; 20] = b"ARNDCQEGHILKMFPSTWYV";
    let mut row: Vec<char> = query.chars().collect();
    let mut k = i;
    for slot in row.iter_mut().skip(1).take(4) {
        *slot = AA[k % 20] as char;
        k /= 20;
    }
    *row.last_mut().unwrap() = marker;
    let mut text: String = row.iter().collect();
    if i.is_multiple_of(3) {
        text.insert_str(10, &"ag".repeat(2)[..i % 4 + 1]);
    }
    text
}

/// Alignment directories for 1kd8: `1kd8_A` (entity 1, author chains A C F) and `1kd8_B`
/// (entity 2, B D E), each with `main` rows without species in `uniref90_hits.a3m` (and
/// `extra` more in `bfd_uniclust_hits.a3m`) and UniProt hits in `uniprot_hits.a3m`: for
/// entity e, `hits(e, k)` hits of species `SPkkk` for k in `species[e]`.
fn kd8_alignments(
    dir: &Path,
    main: usize,
    extra: usize,
    species: [std::ops::Range<usize>; 2],
    hits: fn(usize, usize) -> usize,
) {
    for (e, query) in KD8_SEQUENCES.iter().enumerate() {
        let chain = dir.join(["1kd8_A", "1kd8_B"][e]);
        std::fs::create_dir_all(&chain).unwrap();
        let mut a3m = format!(">query\n{query}\n");
        for i in 0..main {
            a3m.push_str(&format!(">UniRef90_M{e}{i:07}\n{}\n", hit(query, i, 'W')));
        }
        std::fs::write(chain.join("uniref90_hits.a3m"), &a3m).unwrap();
        let mut bfd = format!(">query\n{query}\n");
        for i in 0..extra {
            bfd.push_str(&format!(">bfd{e}_{i}\n{}\n", hit(query, main + i, 'W')));
        }
        std::fs::write(chain.join("bfd_uniclust_hits.a3m"), &bfd).unwrap();
        let (mut uniprot, mut i) = (format!(">query\n{query}\n"), 0);
        for k in species[e].clone() {
            for _ in 0..hits(e, k) {
                uniprot.push_str(&format!(">tr|A{e}{i:07}|A{e}{i:07}_SP{k:03} n\n{}\n", hit(query, i, 'Y')));
                i += 1;
            }
        }
        std::fs::write(chain.join("uniprot_hits.a3m"), &uniprot).unwrap();
    }
}

/// Letters of each row of `msa` at the tokens of each label chain of `labels`.
fn chain_letters(s: &Structure, tokens: &Tokens, msa: &[Vec<i64>], label: &str) -> Vec<String> {
    let cols = chain_tokens(s, tokens, label);
    // The acetyl cap is atomized: keep one token per residue (its first).
    let cols: Vec<usize> =
        cols.iter().copied().filter(|&t| t == 0 || tokens.residue[t] != tokens.residue[t - 1]).collect();
    msa.iter().map(|row| cols.iter().map(|&t| letter(row[t] as u8)).collect()).collect()
}

#[test]
fn heteromer_rows_pair_by_species_and_keep_to_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let msa_dir = dir.path().join("msa");
    // Species 0–11 in entity 1, 6–19 in entity 2: 6–11 pair, with min(hits) rows each.
    kd8_alignments(&msa_dir, 30, 0, [0..12, 6..20], |e, k| 1 + (k + e) % 3);
    let out = preprocess(dir.path(), &["1kd8"], std::slice::from_ref(&msa_dir));
    let c = cached(&out, "1kd8");
    let (s, tokens) = (&c.structure, &c.tokens);
    assert_eq!(c.msas.len(), 2);
    assert!(c.msas.iter().all(|m| m.pairing.is_some()), "two protein sequences: pairing hits stored");
    let (query, f) = msa_features(s, tokens, &c.msas, 5);
    let msa = rows_of(&f.msa);
    assert_eq!(msa[0], query.iter().map(|&q| i64::from(q)).collect::<Vec<_>>());

    // The independent reading of the UniProt files: letters → species.
    let files: Vec<PathBuf> = ["1kd8_A", "1kd8_B"].iter().map(|d| msa_dir.join(d).join("uniprot_hits.a3m")).collect();
    let mut args = vec![PathBuf::from("protein")];
    args.extend(files);
    let read = oracle("msa_reference.py", &args);
    let species_of: Vec<HashMap<String, String>> = read
        .as_array()
        .unwrap()
        .iter()
        .map(|file| {
            let letters: Vec<String> = serde_json::from_value(file["letters"].clone()).unwrap();
            let species: Vec<Option<String>> = serde_json::from_value(file["species"].clone()).unwrap();
            letters.into_iter().zip(species).skip(1).map(|(l, s)| (l, s.unwrap())).collect()
        })
        .collect();

    // Label chains A C F are entity 1 (first directory), B D E entity 2. Copies count as
    // chains (AF-Multimer): species 6–11 pair all six chains, min(hits) rows each; species
    // 0–5 pair entity 1's three copies and 12–19 entity 2's, the other chains gaps.
    let entity_of = |label: &str| usize::from(["B", "D", "E"].contains(&label));
    let labels: Vec<String> = s.chains.iter().map(|c| c.label_asym_id.clone()).collect();
    let letters: Vec<Vec<String>> = labels.iter().map(|l| chain_letters(s, tokens, &msa, l)).collect();
    let species_at = |i: usize| -> Vec<Option<&String>> {
        labels.iter().enumerate().map(|(c, l)| species_of[entity_of(l)].get(&letters[c][i])).collect()
    };
    let mut paired = Vec::new();
    for (i, _) in msa.iter().enumerate().skip(1) {
        let found = species_at(i);
        if found.iter().all(Option::is_none) {
            // Past the paired block: no UniProt hit below it.
            assert!((i..msa.len()).all(|j| species_at(j).iter().all(Option::is_none)), "row {i}");
            break;
        }
        let present: Vec<&String> = found.iter().flatten().copied().collect();
        assert!(present.len() >= 3 && present.iter().all(|s| *s == present[0]), "row {i}: {found:?}");
        for (c, s) in found.iter().enumerate() {
            assert!(s.is_some() || letters[c][i].chars().all(|x| x == '-'), "row {i}: chain {} gaps", labels[c]);
        }
        paired.push(present.len());
    }
    let h = |e: usize, k: usize| 1 + (k + e) % 3;
    let six: usize = (6..12).map(|k| h(0, k).min(h(1, k))).sum();
    let three: usize = (0..6).map(|k| h(0, k)).sum::<usize>() + (12..20).map(|k| h(1, k)).sum::<usize>();
    assert_eq!(paired.len(), six + three);
    assert!(paired[..six].iter().all(|&p| p == 6) && paired[six..].iter().all(|&p| p == 3), "{paired:?}");
    // Then the unpaired rows: every main hit once (30 of them, no query), densely stacked.
    assert_eq!(msa.len(), 1 + paired.len() + 30);
    for rows in &letters {
        assert!(rows[1 + paired.len()..].iter().all(|r| r.ends_with('W')), "main hits only below the pairs");
    }

    // The acetyl cap is one token per atom: each of its tokens repeats column 1 (an X).
    let ace: Vec<usize> = (0..tokens.len()).filter(|&t| s.residues[tokens.residue[t]].name.as_str() == "ACE").collect();
    assert!(ace.len() > 6, "{} ACE tokens", ace.len());
    for row in &msa[1..] {
        let first = row[ace[0]];
        assert!(ace.iter().filter(|&&t| tokens.residue[t] == tokens.residue[ace[0]]).all(|&t| row[t] == first));
    }

    check_crops(s, tokens, &c.msas, 100);
}

#[test]
fn deep_alignments_are_capped_and_subsampled_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let msa_dir = dir.path().join("msa");
    // 12,000 uniref90 rows (openfold3 reads 10,000) and 9,000 bfd rows; 900 species of 10
    // hits in both entities: more than 8,191 pairs.
    kd8_alignments(&msa_dir, 12_000, 9_000, [0..900, 0..900], |_, _| 10);
    let start = Instant::now();
    let out = preprocess(dir.path(), &["1kd8"], std::slice::from_ref(&msa_dir));
    eprintln!("1kd8 with 2 × 21,000 + 2 × 9,000 rows preprocessed in {:.2?}", start.elapsed());
    let report = record(&out, "1kd8").msa.unwrap();
    let rows: Vec<usize> = report.entities[0].files.iter().map(|f| f.rows).collect();
    assert_eq!(rows, [10_000, 9_001, 9_001], "uniref90 capped as openfold3 caps it; bfd; uniprot");
    let c = cached(&out, "1kd8");
    assert!(c.msas.iter().all(|m| m.main.depth() == MAX_STORED_ROWS));
    assert!(c.msas.iter().all(|m| m.pairing.as_ref().unwrap().depth() == 9_001));

    let query = restype_classes(&features(&c.structure, &c.tokens, false, 0).restype);
    let start = Instant::now();
    let f = MsaFeatures::new(&c.structure, &c.tokens, &query, &c.msas, 9);
    eprintln!("their MSA features ({:?}) in {:.2?}", f.msa.size(), start.elapsed());
    let msa = rows_of(&f.msa);
    assert_eq!(msa.len(), MAX_MSA_ROWS, "8,191 paired rows, then 8,193 unpaired");
    let s = &c.structure;
    let letters = chain_letters(s, &c.tokens, &msa, "A");
    assert!(letters[1..MAX_PAIRED_ROWS].iter().all(|r| r.ends_with('Y')), "paired block full");
    assert!(letters[MAX_PAIRED_ROWS..].iter().all(|r| r.ends_with('W')));
    // The unpaired rows are a seeded subsample of the stored ones, in their order.
    let main = &c.msas[0].main;
    let stored: HashMap<String, usize> = (0..main.depth()).map(|i| (main.letters(i), i)).collect();
    let picked: Vec<usize> = letters[MAX_PAIRED_ROWS..].iter().map(|r| stored[r]).collect();
    assert!(picked.windows(2).all(|w| w[0] < w[1]) && picked[0] > 0);
    let (_, other) = msa_features(s, &c.tokens, &c.msas, 10);
    assert!(!same(&f.msa, &other.msa), "another seed, other rows");
    let (_, again) = msa_features(s, &c.tokens, &c.msas, 9);
    assert!(same(&f.msa, &again.msa) && same(&f.deletion_value, &again.deletion_value));
}

#[test]
fn a_stockholm_file_of_20_mb_reads_fast_and_a_capped_read_is_its_first_rows() {
    let path = repo_path(&format!("{ALIGNMENTS}/2q2k_A/hmm_output.sto"));
    let bytes = std::fs::read(&path).unwrap();
    let start = Instant::now();
    let full = Msa::parse(&bytes, "hmm_output.sto", Alphabet::Protein).unwrap();
    let whole = start.elapsed();
    let start = Instant::now();
    let capped = Msa::parse_limited(&bytes, "hmm_output.sto", Alphabet::Protein, 1000).unwrap();
    eprintln!(
        "{:.1} MB Stockholm, {} rows: {whole:.2?}; first 1,000 rows: {:.2?}",
        bytes.len() as f64 / 1e6,
        full.depth(),
        start.elapsed()
    );
    assert!(whole.as_secs_f64() < 5.0, "{whole:?}");
    assert_eq!(capped.depth(), 1000);
    assert_eq!(capped.classes(), &full.classes()[..1000 * full.width()]);
    assert_eq!(capped.deletions(), &full.deletions()[..1000 * full.width()]);
    assert_eq!(capped.species(), &full.species()[..1000]);

    let a3m = b">q\nMKV\n>a\nMkKV\n>b\nM-V\n>c\nMK";
    let capped = Msa::parse_limited(a3m, "x.a3m", Alphabet::Protein, 2).unwrap();
    assert_eq!((capped.depth(), capped.deletion_row(1)), (2, &[0, 1, 0][..]), "stops before the ragged row");
}

#[test]
fn no_alignment_gives_one_query_row() {
    let (s, tokens) = model("1ubq");
    let (query, f) = msa_features(&s, &tokens, &[], 0);
    assert_eq!(f.msa.size(), [1, tokens.len() as i64]);
    assert_eq!(rows_of(&f.msa)[0], query.iter().map(|&q| i64::from(q)).collect::<Vec<_>>());
    assert_eq!(floats(&f.profile), floats(&features(&s, &tokens, false, 0).restype), "profile = restype");
    assert!(floats(&f.deletion_mean).iter().all(|&v| v == 0.0));
    assert!(floats(&f.has_deletion).iter().all(|&v| v == 0.0));
    // A heteromer without alignments: the paired block is the query row alone.
    let (s, tokens) = model("1kd8");
    assert_eq!(msa_features(&s, &tokens, &[], 0).1.msa.size(), [1, tokens.len() as i64]);
}

fn preprocess_cli(src: &Path, out: &Path, msa: &[&Path]) -> crate::support::Output {
    let mut cmd = helico();
    cmd.args(["preprocess", "--json", "--src"]).arg(src).arg("--out").arg(out);
    for m in msa {
        cmd.arg("--msa").arg(m);
    }
    run(&mut cmd)
}

#[test]
fn problems_are_recorded_and_sources_decide_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let (src, out) = (dir.path().join("src"), dir.path().join("out"));
    std::fs::create_dir_all(&src).unwrap();
    for key in ["1ubq", "2q2k"] {
        std::fs::copy(repo_path(&format!("data/openfold3/mmcifs/{key}.cif")), src.join(format!("{key}.cif"))).unwrap();
    }
    // A directory of alignments: 2q2k's own, and 2q2k's alignments filed under 1ubq.
    let msa = dir.path().join("msa");
    for (from, to) in [("2q2k_A", "2q2k_A"), ("2q2k_B", "2q2k_B"), ("2q2k_A", "1ubq_A")] {
        std::fs::create_dir_all(msa.join(to)).unwrap();
        for file in ["uniref90_hits.sto", "bfd_uniclust_hits.a3m", "mgnify_hits.sto"] {
            std::fs::copy(repo_path(&format!("{ALIGNMENTS}/{from}/{file}")), msa.join(to).join(file)).unwrap();
        }
    }
    std::fs::write(msa.join("1ubq_A/notes.txt"), "not an alignment").unwrap();

    let summary: Value = serde_json::from_str(&preprocess_cli(&src, &out, &[&msa]).expect_code(0).stdout).unwrap();
    assert_eq!((summary["ok"].as_u64(), summary["msa_entities"].as_u64()), (Some(2), Some(1)));
    assert_eq!(summary["msa_problems"].as_u64(), Some(4));
    let ubq = record(&out, "1ubq");
    assert_eq!(ubq.status, Status::Ok, "a wrong alignment is not fatal");
    let report = ubq.msa.unwrap();
    assert!(report.entities.is_empty());
    let uniref = msa.canonicalize().unwrap().join("1ubq_A/uniref90_hits.sto");
    let expected = format!(
        "{}: the query has 70 columns (MGSSHHHHHHSSGLVPGSHMDKKETKHLLK…), not the 76 residues of the sequence \
         (MQIFVKTLTGKTITLEVEPSDTIENVKAKI…) of chain A (entity 1); file left out",
        uniref.display()
    );
    assert!(report.problems.contains(&expected), "{:#?}", report.problems);
    assert!(report.problems.iter().any(|p| p.contains("notes.txt: not an alignment file openfold3 reads")));

    // Same sources: nothing to do. An edited alignment file redoes its entry only.
    let again: Value = serde_json::from_str(&preprocess_cli(&src, &out, &[&msa]).expect_code(0).stdout).unwrap();
    assert_eq!(
        (again["processed"].as_u64(), again["dataset_hash"].clone()),
        (Some(0), summary["dataset_hash"].clone())
    );
    std::thread::sleep(std::time::Duration::from_millis(10));
    let mgnify = msa.join("2q2k_A/mgnify_hits.sto");
    let text = std::fs::read_to_string(&mgnify).unwrap();
    std::fs::write(&mgnify, text.replacen("\n//", "\n#=GC RF x\n//", 1)).unwrap();
    let edited: Value = serde_json::from_str(&preprocess_cli(&src, &out, &[&msa]).expect_code(0).stdout).unwrap();
    assert_eq!(edited["processed"].as_u64(), Some(1));
    assert_eq!(edited["dataset_hash"], summary["dataset_hash"], "the same alignment");

    // The same alignments in a tar: another source (every entry redone), the same dataset.
    let tar = dir.path().join("msa.tar");
    let status = std::process::Command::new("tar").arg("-cf").arg(&tar).arg("-C").arg(&msa).arg(".").status();
    assert!(status.unwrap().success());
    let from_tar: Value = serde_json::from_str(&preprocess_cli(&src, &out, &[&tar]).expect_code(0).stdout).unwrap();
    assert_eq!(from_tar["processed"].as_u64(), Some(2));
    assert_eq!(from_tar["dataset_hash"], summary["dataset_hash"], "content, not location");
    let tar_problem = record(&out, "1ubq").msa.unwrap().problems;
    assert!(
        tar_problem.iter().any(|p| p.contains("msa.tar:./1ubq_A/uniref90_hits.sto: the query has 70")),
        "{tar_problem:?}"
    );
    // Without alignments: another dataset.
    let none: Value = serde_json::from_str(&preprocess_cli(&src, &out, &[]).expect_code(0).stdout).unwrap();
    assert_ne!(none["dataset_hash"], summary["dataset_hash"]);

    // A source that is neither a directory nor a tar is bad input.
    let missing = dir.path().join("nope");
    let err = preprocess_cli(&src, &out, &[&missing]).expect_code(2).stderr;
    assert!(err.contains(&format!("MSA source {}: {}: open:", missing.display(), missing.display())), "{err}");
    assert!(err.contains("pass --msa DIR or a plain .tar"), "{err}");
}
