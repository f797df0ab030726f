//! The AF3 loader on the openfold3 demo structures: collation keeps every example unchanged and
//! pads with the documented values; AF3 weighted sampling finds the interfaces biotite finds,
//! merges identical chains into one cluster, draws units as often as their weights say and
//! centres crops on them; the `af3` data section is validated with named errors; and
//! `helico bench loader` writes its report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use helico::data::crop::CropMethod;
use helico::data::prep::collate::{Af3Batch, Axis, BatchedFeatures, BatchedMsa, Column, Padding, collate};
use helico::data::prep::loader::{Af3Dataset, Example, LoaderConfig, Sampler};
use helico::data::prep::sampling::{UnitKind, WeightedUnits};
use helico::data::prep::{CachedStructure, Params};
use tch::{Kind, Tensor};

use crate::data_support::{mmcif_dir, oracle, preprocess_dir};
use crate::preprocess::demo;
use crate::support::{helico, json, run, setup_file};

fn examples(dataset: &Af3Dataset, config: &LoaderConfig, entries: &[usize]) -> Vec<Example> {
    entries.iter().map(|&e| dataset.example(config, e, 11 + e as u64).unwrap()).collect()
}

/// `t` with every real region of every example overwritten by the pad value: what is left
/// must be the pad value everywhere.
fn only_padding(column: &Column, real: &[Vec<i64>]) -> Tensor {
    let out = column.tensor.copy();
    for (b, sizes) in real.iter().enumerate() {
        let mut view = out.get(b as i64);
        for (d, &size) in sizes.iter().enumerate() {
            view = view.narrow(d as i64, 0, size);
        }
        let _ = view.fill_(column.pad);
    }
    out
}

/// Each batched column's unpadded slice for example b equals that example's own tensor, and
/// everything else holds the column's pad value.
fn same_where_real_pad_elsewhere(columns: &[Column], own: &[Vec<Column>], keys: &[String]) {
    for (c, column) in columns.iter().enumerate() {
        let mut real = Vec::new();
        for (b, example) in own.iter().enumerate() {
            let own = example[c];
            assert_eq!(own.name, column.name);
            let size = own.tensor.size();
            let mut slice = column.tensor.get(b as i64);
            for (d, &s) in size.iter().enumerate() {
                slice = slice.narrow(d as i64, 0, s);
            }
            assert_eq!(slice.kind(), own.tensor.kind(), "{}", column.name);
            assert!(slice.equal(own.tensor), "{} of {}: the unpadded slice is the example's", column.name, keys[b]);
            real.push(size);
        }
        let rest = only_padding(column, &real);
        assert!(bool::try_from(rest.eq(column.pad).all()).unwrap(), "{}: pads are {}", column.name, column.pad);
    }
}

#[test]
fn collation_keeps_every_example_and_pads_with_the_documented_values() {
    // The set-up's demo set, preprocessed with openfold3's alignments (2q2k has an MSA).
    let dataset = Af3Dataset::open(setup_file("data/demo/af3/prep.json").parent().unwrap()).unwrap();
    // Small and large entries, several chains, a ligand and DNA: 1ubq, 2q2k, 5kc1, 7l39.
    let keys: Vec<&str> = dataset.entries().iter().map(|e| e.key.as_str()).collect();
    let picked: Vec<usize> =
        ["1ubq", "2q2k", "5kc1", "7l39"].iter().map(|k| keys.iter().position(|x| x == k).unwrap()).collect();
    let config = LoaderConfig { crop_size: 160, ..LoaderConfig::default() };
    for padding in [Padding::BatchMax, Padding::Fixed { tokens: 160, atoms: 160 * 24 }] {
        let reference = examples(&dataset, &config, &picked);
        let batch: Af3Batch = collate(examples(&dataset, &config, &picked), padding).unwrap();
        let (n, a) = batch.padded_sizes();
        let most = |v: &[usize]| v.iter().copied().max().unwrap();
        match padding {
            Padding::BatchMax => assert_eq!((n, a), (most(&batch.n_tokens), most(&batch.n_atoms))),
            Padding::Fixed { tokens, atoms } => assert_eq!((n, a), (tokens, atoms)),
        }
        assert!(batch.n_tokens.iter().any(|&t| t < n), "some example is padded: {:?}", batch.n_tokens);
        assert_eq!(batch.keys, ["1ubq", "2q2k", "5kc1", "7l39"]);
        for (b, e) in reference.iter().enumerate() {
            assert_eq!((batch.n_tokens[b], batch.n_atoms[b]), (e.crop.tokens.len(), e.features.atoms.len()));
            assert_eq!((&batch.crops[b], &batch.atoms[b]), (&e.crop, &e.features.atoms));
            let mask = |m: &Tensor, real: usize, size: usize| {
                let row = Vec::<bool>::try_from(m.get(b as i64)).unwrap();
                assert_eq!(row, (0..size).map(|i| i < real).collect::<Vec<_>>(), "{} pad mask", e.key);
            };
            mask(&batch.token_pad_mask, e.crop.tokens.len(), n);
            mask(&batch.atom_pad_mask, e.features.atoms.len(), a);
        }
        let columns = batch.features.columns();
        let own: Vec<_> = reference.iter().map(|e| BatchedFeatures::example_columns(&e.features)).collect();
        same_where_real_pad_elsewhere(&columns, &own, &batch.keys);
        // MSA features: rows padded to the deepest MSA (2q2k has alignments, 1ubq one row).
        let depths: Vec<usize> = reference.iter().map(|e| e.msa.depth() as usize).collect();
        assert_eq!(batch.n_msa_rows, depths);
        assert!(depths.iter().any(|&d| d > 1) && depths.contains(&1), "MSA rows to pad: {depths:?}");
        for (b, &d) in depths.iter().enumerate() {
            let row = Vec::<bool>::try_from(batch.msa_pad_mask.get(b as i64)).unwrap();
            assert_eq!(row, (0..*depths.iter().max().unwrap()).map(|i| i < d).collect::<Vec<_>>());
        }
        let own: Vec<_> = reference.iter().map(|e| BatchedMsa::example_columns(&e.msa)).collect();
        same_where_real_pad_elsewhere(&batch.msa.columns(), &own, &batch.keys);
        assert_eq!(batch.msa.columns()[0].pad, 31.0, "padded MSA rows are gaps");
        // The documented choices: ids pad to −1, atom_to_token_idx to a valid token.
        let f = &batch.features;
        let pad_of = |name: &str| columns.iter().find(|c| c.name == name).unwrap().pad;
        for name in ["token_index", "asym_id", "entity_id", "ref_space_uid", "frame_atom_index"] {
            assert_eq!(pad_of(name), -1.0, "{name}");
        }
        assert_eq!((pad_of("atom_to_token_idx"), pad_of("restype"), pad_of("ref_mask")), (0.0, 0.0, 0.0));
        let to_token = f.atom_to_token_idx.to_kind(Kind::Int64);
        assert!(bool::try_from(to_token.ge(0).logical_and(&to_token.lt(n as i64)).all()).unwrap());
        assert_eq!(f.token_bonds.size(), [4, n as i64, n as i64]);
        assert_eq!(f.ref_atom_name_chars.size(), [4, a as i64, 4, 64]);
        assert_eq!(f.resolution.size(), [4, 1]);
        let axes = |name: &str| columns.iter().find(|c| c.name == name).unwrap().axes;
        assert_eq!(axes("token_bonds"), [Axis::Token, Axis::Token]);
    }
}

#[test]
fn fixed_padding_names_an_example_that_does_not_fit() {
    let dataset = Af3Dataset::open(demo()).unwrap();
    let config = LoaderConfig { crop_size: 64, ..LoaderConfig::default() };
    let err = collate(examples(&dataset, &config, &[0, 1]), Padding::Fixed { tokens: 64, atoms: 100 })
        .unwrap_err()
        .to_string();
    assert!(err.contains("atoms_per_token") && err.contains("100 atoms") && err.contains("entry 1"), "{err}");
}

/// The demo's interfaces against biotite's, chain pair by chain pair.
#[test]
fn interfaces_are_chain_pairs_biotite_finds_within_5_angstrom() {
    let dataset = Af3Dataset::open_with(demo(), Sampler::Af3Weighted).unwrap();
    let units = dataset.units().unwrap();
    let files: Vec<String> =
        dataset.entries().iter().map(|e| mmcif_dir().join(format!("{}.cif", e.key)).display().to_string()).collect();
    let expected = oracle("interfaces_biotite.py", &files);
    let mut total = 0;
    for (i, entry) in dataset.entries().iter().enumerate() {
        let s = CachedStructure::read(&entry.path).unwrap().structure;
        let ours: Vec<(String, String)> = units
            .units
            .iter()
            .filter(|u| u.entry == i && u.kind == UnitKind::Interface)
            .map(|u| (s.chains[u.chains[0]].label_asym_id.clone(), s.chains[u.chains[1]].label_asym_id.clone()))
            .collect();
        let theirs: Vec<(String, String)> = expected[&files[i]]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(ours, theirs, "{}", entry.key);
        total += ours.len();
    }
    assert!(total > 50, "the demo has many interfaces (5kc1 alone dozens): {total}");
}

/// Two copies of 1ubq and one of 4i6p (a homodimer): identical chains are one cluster, and
/// the weights are AF3's with Protenix's cluster sizes, checked by hand.
#[test]
fn identical_chains_merge_into_one_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for (from, to) in [("1ubq", "1ubq"), ("1ubq", "9ubq"), ("4i6p", "4i6p")] {
        std::fs::copy(mmcif_dir().join(format!("{from}.cif")), src.join(format!("{to}.cif"))).unwrap();
    }
    let out = dir.path().join("out");
    assert_eq!(preprocess_dir(&src, &out, &Params::default(), 1).ok, 3);
    let dataset = Af3Dataset::open_with(&out, Sampler::Af3Weighted).unwrap();
    let units: &WeightedUnits = dataset.units().unwrap();
    let keys: Vec<&str> = dataset.entries().iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["1ubq", "4i6p", "9ubq"]);
    let by_entry = |e: usize| -> Vec<(UnitKind, Vec<usize>, f64)> {
        units.units.iter().filter(|u| u.entry == e).map(|u| (u.kind, u.chains.clone(), u.weight)).collect()
    };
    // 1ubq and its copy: one protein chain each, one cluster of two entries: 0.5 · 3 / 2.
    assert_eq!(by_entry(0), [(UnitKind::Chain, vec![0], 0.75)]);
    assert_eq!(by_entry(2), [(UnitKind::Chain, vec![0], 0.75)]);
    assert_eq!(units.units[0].cluster, units.units.iter().find(|u| u.entry == 2).unwrap().cluster);
    // 4i6p: chains A and B of entity 1 (its mmCIF), touching: the chains share one cluster of
    // one (entry, entity) and split its weight, 0.5 · 3 / 1 / 2; the interface is 1 · (3 + 3).
    assert_eq!(
        by_entry(1),
        [(UnitKind::Chain, vec![0], 0.75), (UnitKind::Chain, vec![1], 0.75), (UnitKind::Interface, vec![0, 1], 6.0)]
    );
    assert!(units.clusters[units.units[0].cluster].starts_with("protein:MQIFVKTLTGK"), "{:?}", units.clusters);
}

#[test]
fn weighted_sampling_draws_units_as_often_as_their_weights_say() {
    let dataset = Af3Dataset::open_with(demo(), Sampler::Af3Weighted).unwrap();
    let units = dataset.units().unwrap();
    let weights: Vec<f64> = units.units.iter().map(|u| u.weight).collect();
    let (lightest, heaviest) = weights.iter().fold((f64::MAX, 0f64), |(lo, hi), &w| (lo.min(w), hi.max(w)));
    assert!(heaviest / lightest > 10.0, "weights differ enough for the test to tell: {lightest} to {heaviest}");
    let config = LoaderConfig { batch_size: 3, bucket_batches: 2, seed: 5, ..LoaderConfig::default() };
    let epochs = 4000;
    let mut counts = vec![0usize; weights.len()];
    for epoch in 0..epochs {
        for draw in dataset.plan(&config, epoch).into_iter().flatten() {
            let u = draw.unit.expect("weighted draws name their unit");
            assert_eq!(units.units[u].entry, draw.entry);
            counts[u] += 1;
        }
    }
    let n = counts.iter().sum::<usize>() as f64;
    assert_eq!(n as u64, epochs * dataset.len() as u64, "as many draws per epoch as entries");
    // Each count is binomial(n, p): within 5 standard deviations (+1 for the rarest units).
    // The seed is fixed, so this cannot flake; a sampler off by 10% on a common unit fails it.
    let total: f64 = weights.iter().sum();
    let mut chi2 = 0.0;
    for (u, (&count, &w)) in counts.iter().zip(&weights).enumerate() {
        let p = w / total;
        let (mean, sd) = (n * p, (n * p * (1.0 - p)).sqrt());
        assert!((count as f64 - mean).abs() <= 5.0 * sd + 1.0, "unit {u}: {count} draws, expected {mean:.1} ± {sd:.1}");
        chi2 += (count as f64 - mean).powi(2) / mean;
    }
    // χ² with k − 1 degrees of freedom has mean k − 1 and sd √(2(k − 1)).
    let dof = (weights.len() - 1) as f64;
    assert!(chi2 < dof + 6.0 * (2.0 * dof).sqrt(), "χ² {chi2:.1} for {dof} degrees of freedom");
}

#[test]
fn weighted_crops_centre_on_the_drawn_unit_and_prefetching_changes_nothing() {
    let dataset = Arc::new(Af3Dataset::open_with(demo(), Sampler::Af3Weighted).unwrap());
    let units = dataset.units().unwrap();
    let config = |workers| LoaderConfig { crop_size: 40, batch_size: 2, workers, seed: 3, ..LoaderConfig::default() };
    let inline: Vec<Af3Batch> = dataset.epoch(&config(0), 1).map(Result::unwrap).collect();
    let threaded: Vec<Af3Batch> = dataset.epoch(&config(2), 1).map(Result::unwrap).collect();
    let mut centred = 0;
    for (a, b) in inline.iter().zip(&threaded) {
        assert_eq!((&a.keys, &a.draws, &a.crops), (&b.keys, &b.draws, &b.crops));
        assert!(a.features.ref_pos.equal(&b.features.ref_pos) && a.token_pad_mask.equal(&b.token_pad_mask));
        for (draw, crop) in a.draws.iter().zip(&a.crops) {
            let (Some(u), Some(reference)) = (draw.unit, crop.reference) else { continue };
            assert_ne!(crop.method, CropMethod::Contiguous);
            let cached = CachedStructure::read(&dataset.entries()[draw.entry].path).unwrap();
            let chain = cached.structure.residues[cached.tokens.residue[reference]].chain;
            assert!(units.units[u].chains.contains(&chain), "the reference token lies in the drawn unit");
            centred += 1;
        }
    }
    assert!(centred >= 3, "spatial crops of large entries were checked: {centred}");
    assert_eq!(inline.len(), 6);
}

fn write_experiment(dir: &Path, data: &str) -> String {
    let path = dir.join("af3.toml");
    std::fs::write(&path, format!("name = \"af3\"\n\n[data]\ntype = \"af3\"\n{data}")).unwrap();
    path.display().to_string()
}

#[test]
fn the_af3_data_section_is_validated_with_named_keys() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_experiment(
        dir.path(),
        "dir = \"data/demo/af3\"\ncrop_sise = 384\nbatch_size = 0\nsampler = \"weighted\"\n",
    );
    let out = run(helico().args(["explain", &bad])).expect_code(2);
    for needle in [
        "`data.crop_sise`",
        "did you mean `data.crop_size`?",
        "`data.batch_size` = 0 is below the minimum 1",
        "`data.sampler`",
        "af3_weighted",
    ] {
        assert!(out.stderr.contains(needle), "{needle:?} in\n{}", out.stderr);
    }
    // A valid section still cannot feed the only model there is: the problem names `data`.
    let valid = write_experiment(
        dir.path(),
        "dir = \"data/demo/af3\"\ncrop_weights = { contiguous = 0.0, spatial = 1.0, spatial_interface = 0.0 }\n",
    );
    let out = run(helico().args(["explain", &valid])).expect_code(2);
    assert!(out.stderr.contains("`data`: data = @af3 feeds AF3 models"), "{}", out.stderr);
}

#[test]
fn bench_loader_runs_on_the_demo_set_and_writes_its_report() {
    let demo_dir = setup_file("data/demo/af3/prep.json").parent().unwrap().to_owned();
    let out = tempfile::tempdir().unwrap();
    let args = ["bench", "loader", demo_dir.to_str().unwrap(), "--crop", "64", "--batch", "2", "--batches", "3"];
    let printed = run(helico().args(args).args(["--out", out.path().to_str().unwrap(), "--json"])).expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&printed.stdout).unwrap();
    let written: Vec<std::path::PathBuf> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().path()).collect();
    let extensions: BTreeSet<String> =
        written.iter().map(|p| p.extension().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(extensions, BTreeSet::from(["json".to_owned(), "md".to_owned()]));
    let saved = json(written.iter().find(|p| p.extension().is_some_and(|e| e == "json")).unwrap());
    assert_eq!(saved, report);
    assert_eq!((report["batches"].as_u64(), report["examples"].as_u64()), (Some(3), Some(6)));
    assert!(report["examples_per_second"].as_f64().unwrap() > 0.0);
    let stages: BTreeMap<String, f64> = serde_json::from_value(report["stage_ms"].clone()).unwrap();
    assert_eq!(stages.keys().collect::<Vec<_>>(), ["collate", "crop", "features", "msa", "read"]);
    assert!(stages["features"] > 0.0 && stages["read"] > 0.0);
    assert_eq!(report["open"]["entries"], 12);
    assert!(report["open"]["interfaces"].as_u64().unwrap() > 50);
    assert!(report["command"].as_str().unwrap().starts_with("helico bench loader"));
    let not_prepared = run(helico().args(["bench", "loader", "src", "--batches", "1"])).expect_code(2);
    assert!(not_prepared.stderr.contains("not a preprocessed dataset"), "{}", not_prepared.stderr);
}
