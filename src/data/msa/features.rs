//! The MSA features of an example (AF3 supplement §2.3 and Table 5, Protenix names): `msa`,
//! `has_deletion`, `deletion_value`, `profile` and `deletion_mean` for the tokens of a crop,
//! built from the alignments preprocessing stored per entity ([`EntityMsa`]).
//!
//! Rows follow AlphaFold 3 (`alphafold3/model/features.py`, `MSA.compute_features`) and
//! Protenix (`protenix/data/msa/msa_featurizer.py`, `FeatureAssemblyLine.assemble`), over the
//! chains that have a token in the crop:
//! 1. **Paired block** (only when those chains hold more than one distinct protein sequence):
//!    the protein chains' UniProt hits paired by species ([`pair_by_species`]), at most
//!    [`MAX_PAIRED_ROWS`] rows with the queries first; rows that are gaps in every chain are
//!    dropped. Other chains are gaps there. Copies of an entity count as chains, as in
//!    AF-Multimer: a species only one entity has pairs that entity's copies, the rest gaps.
//! 2. **Unpaired block**: each chain's main alignment without the rows already in its paired
//!    rows (so without its query when there is a paired block), cut to
//!    `MAX_MSA_ROWS − paired rows` by seeded uniform subsampling (AF3 and Protenix take the
//!    first rows here and subsample in the model; helico draws once per example, so epochs see
//!    different rows of deep alignments). Chains are stacked side by side, densely, not
//!    block-diagonally: row i holds every chain's i-th row, and a chain with fewer rows is gaps
//!    below them (AF3 `merge_msa_features`, Protenix `merge_chain_features`).
//!
//! Columns: a token takes its residue's column (`label_seq_id − 1`), so the tokens of an
//! atomized residue repeat their residue's column, as AF3 does with `standard_token_idxs` and
//! Protenix with `map_to_standard`. Tokens without a column (ligands, ions, chains without an
//! alignment) are gaps in every row but row 0. Row 0 is the query and is set to the tokens'
//! `restype`, so it always equals that feature. The references differ on columns without an
//! alignment: AF3 makes ligand columns gaps in row 0 too, Protenix fills every all-gap row of
//! a non-protein chain with its query (ligands read "unknown", a DNA its own bases, in every
//! row). helico keeps the query in row 0 only, so the rows below carry alignment information
//! and nothing else.
//!
//! Which rows exist depends only on the set of chains in the crop (and the seed), never on
//! which of their tokens were kept: the features of a crop are the crop's columns of the
//! features of all tokens of its chains.
//!
//! `msa` holds class indices, not one-hot vectors: the model one-hots them (Protenix
//! `MSAModule`), which keeps an example 32× smaller.

use std::borrow::Cow;
use std::collections::HashSet;

use tch::Tensor;

use super::source::EntityMsa;
use super::{GAP, Msa, N_CLASSES, pair_by_species, subsample_rows};
use crate::data::packing::SplitMix64;
use crate::data::structure::{EntityKind, PolymerType, Structure};
use crate::data::tokenize::Tokens;

/// AF3 supplement §2.3: an example's MSA has at most 16,384 rows.
pub const MAX_MSA_ROWS: usize = 16_384;
/// AF3 supplement §2.3 and openfold3 `max_rows_paired`: at most 8,191 paired rows (the query
/// row included), the rest of the budget for unpaired rows.
pub const MAX_PAIRED_ROWS: usize = 8_191;
/// AF3 supplement Table 5: `deletion_value` = 2/π · arctan(d / 3).
const DELETION_VALUE_SCALE: f32 = 3.0;

/// MSA features for S rows and N tokens (CPU tensors), Protenix's names.
#[derive(Debug)]
pub struct MsaFeatures {
    /// Residue class of each row at each token, 0–31 (gap 31); row 0 is the query: [S, N] i64.
    pub msa: Tensor,
    /// 1 where the row has residues inserted before the column: [S, N] f32.
    pub has_deletion: Tensor,
    /// 2/π · arctan(deletions / 3): [S, N] f32.
    pub deletion_value: Tensor,
    /// Class frequencies of the chain's alignment at the token's column, gaps included; the
    /// one-hot query class where there is no alignment: [N, 32] f32.
    pub profile: Tensor,
    /// Mean raw deletion count at the token's column, 0 without an alignment: [N] f32.
    pub deletion_mean: Tensor,
}

/// One chain of the crop and the rows it contributes.
struct ChainRows<'a> {
    chain: usize,
    msa: Option<&'a EntityMsa>,
    /// Per paired row, the row of the chain's pairing alignment; `None` is a gap row: [P].
    paired: Vec<Option<usize>>,
    /// The alignment the paired rows index (the pairing hits, or the query alone).
    paired_source: Option<Cow<'a, Msa>>,
    /// Rows of `msa.main` in the unpaired block, in order; for a chain without an alignment,
    /// `[0]` stands for its query row.
    unpaired: Vec<usize>,
}

impl MsaFeatures {
    /// The features of `tokens` (a crop of `structure`'s tokens, or all of them); `query` is
    /// each token's `restype` class (< 32), `msas` the structure's stored alignments and
    /// `seed` draws the unpaired rows where a chain has more than the budget.
    pub fn new(structure: &Structure, tokens: &Tokens, query: &[u8], msas: &[EntityMsa], seed: u64) -> MsaFeatures {
        assert_eq!(query.len(), tokens.len(), "one query class per token");
        assert!(query.iter().all(|&q| usize::from(q) < N_CLASSES), "query classes are restype classes");
        let mut chains: Vec<usize> = tokens.residue.iter().map(|&r| structure.residues[r].chain).collect();
        chains.sort_unstable();
        chains.dedup();
        let mut rows: Vec<ChainRows<'_>> = chains
            .iter()
            .map(|&chain| {
                let entity = structure.chains[chain].entity;
                let msa = msas.iter().find(|m| m.entity == entity);
                let unpaired = msa.map_or(vec![0], |m| (0..m.main.depth()).collect());
                ChainRows { chain, msa, paired: Vec::new(), paired_source: None, unpaired }
            })
            .collect();
        let n_paired = pair_chains(structure, &mut rows);
        for chain in &mut rows {
            if n_paired > 0 {
                drop_paired_rows(chain);
            }
            let budget = MAX_MSA_ROWS - n_paired;
            if chain.unpaired.len() > budget {
                let entity = structure.chains[chain.chain].entity as u64;
                let entity_seed =
                    SplitMix64(seed ^ entity.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15)).next_u64();
                let keep = subsample_rows(chain.unpaired.len(), budget, entity_seed);
                chain.unpaired = keep.iter().map(|&i| chain.unpaired[i]).collect();
            }
        }
        let n_unpaired = rows.iter().map(|c| c.unpaired.len()).max().unwrap_or(0);
        assemble(structure, tokens, query, &rows, n_paired, n_unpaired)
    }

    /// S, the number of rows.
    pub fn depth(&self) -> i64 {
        self.msa.size()[0]
    }
}

/// Pairs the protein chains when there is more than one distinct protein sequence among
/// `rows`; fills each chain's `paired` and returns the paired block's row count (0: none).
fn pair_chains(structure: &Structure, rows: &mut [ChainRows<'_>]) -> usize {
    let is_protein = |c: &ChainRows<'_>| {
        structure.entities[structure.chains[c.chain].entity].kind == EntityKind::Polymer(PolymerType::PeptideL)
    };
    let sequences: HashSet<&[_]> = rows
        .iter()
        .filter(|c| is_protein(c))
        .map(|c| structure.entities[structure.chains[c.chain].entity].sequence.as_slice())
        .collect();
    if sequences.len() < 2 {
        return 0;
    }
    let proteins: Vec<usize> = (0..rows.len()).filter(|&k| is_protein(&rows[k])).collect();
    for &k in &proteins {
        let chain = &mut rows[k];
        chain.paired_source = Some(match chain.msa {
            Some(EntityMsa { pairing: Some(p), .. }) => Cow::Borrowed(p),
            // No pairing hits: the query alone, which pairs with nothing.
            Some(m) => Cow::Owned(m.main.select_rows(&[0])),
            None => {
                let width = structure.entities[structure.chains[chain.chain].entity].sequence.len();
                Cow::Owned(Msa::from_parts(width, vec![GAP; width], vec![0; width], vec![None]))
            }
        });
    }
    let sources: Vec<&Msa> =
        proteins.iter().map(|&k| rows[k].paired_source.as_deref().expect("set just above")).collect();
    let pairing = pair_by_species(&sources, MAX_PAIRED_ROWS);
    let gap_only = |c: usize, row: Option<usize>| row.is_none_or(|i| sources[c].row(i).iter().all(|&x| x == GAP));
    let kept: Vec<&Vec<Option<usize>>> = pairing
        .rows
        .iter()
        .enumerate()
        .filter(|(k, row)| *k == 0 || !row.iter().enumerate().all(|(c, &i)| gap_only(c, i)))
        .map(|(_, row)| row)
        .collect();
    for chain in rows.iter_mut() {
        chain.paired = vec![None; kept.len()];
        chain.paired[0] = Some(0);
    }
    for (c, &k) in proteins.iter().enumerate() {
        rows[k].paired = kept.iter().map(|row| row[c]).collect();
    }
    kept.len()
}

/// Removes from a chain's unpaired rows those equal to one of its paired rows (AF3
/// `deduplicate_unpaired_sequences`, Protenix `cleanup_unpaired_features`): its query always,
/// since paired row 0 is the queries.
fn drop_paired_rows(chain: &mut ChainRows<'_>) {
    let Some(msa) = chain.msa else {
        chain.unpaired.clear();
        return;
    };
    let main = &msa.main;
    let mut seen: HashSet<&[u8]> = HashSet::from([main.row(0)]);
    let gap_row = vec![GAP; main.width()];
    if let Some(source) = chain.paired_source.as_deref() {
        for row in &chain.paired {
            seen.insert(row.map_or(&gap_row[..], |i| source.row(i)));
        }
    } else if chain.paired.len() > 1 {
        seen.insert(&gap_row);
    }
    let keep: Vec<usize> = chain.unpaired.iter().copied().filter(|&i| !seen.contains(main.row(i))).collect();
    chain.unpaired = keep;
}

impl ChainRows<'_> {
    /// The classes and deletions of final row `k`, or `None` where the chain is gaps.
    fn row(&self, k: usize, n_paired: usize) -> Option<(&[u8], &[u16])> {
        let (msa, i) = if k < n_paired {
            (self.paired_source.as_deref()?, self.paired[k]?)
        } else {
            (&self.msa?.main, *self.unpaired.get(k - n_paired)?)
        };
        Some((msa.row(i), msa.deletion_row(i)))
    }
}

/// The tensors: `n_paired + n_unpaired` rows (at least one) over the tokens, written row by
/// row (a deep alignment is millions of cells).
fn assemble(
    structure: &Structure,
    tokens: &Tokens,
    query: &[u8],
    rows: &[ChainRows<'_>],
    n_paired: usize,
    n_unpaired: usize,
) -> MsaFeatures {
    let (n, s) = (tokens.len(), (n_paired + n_unpaired).max(1));
    let mut profile = vec![0f32; n * N_CLASSES];
    let mut deletion_mean = vec![0f32; n];
    // Each token's chain (an index into `rows`) and column, where its chain has an alignment.
    let mut at: Vec<(usize, Option<usize>)> = Vec::with_capacity(n);
    for t in 0..n {
        let residue = &structure.residues[tokens.residue[t]];
        let slot = rows.iter().position(|c| c.chain == residue.chain).expect("every token's chain has rows");
        let column = rows[slot].msa.and_then(|m| {
            let j = usize::try_from(residue.label_seq_id? - 1).ok()?;
            (j < m.main.width()).then_some(j)
        });
        match (rows[slot].msa, column) {
            (Some(m), Some(j)) => {
                profile[t * N_CLASSES..(t + 1) * N_CLASSES].copy_from_slice(&m.profile[j]);
                deletion_mean[t] = m.deletion_mean[j];
            }
            _ => profile[t * N_CLASSES + usize::from(query[t])] = 1.0,
        }
        at.push((slot, column));
    }
    let mut classes = vec![i64::from(GAP); s * n];
    let mut has_deletion = vec![0f32; s * n];
    let mut deletion_value = vec![0f32; s * n];
    for k in 0..s {
        let sources: Vec<Option<(&[u8], &[u16])>> = rows.iter().map(|c| c.row(k, n_paired)).collect();
        for (t, &(slot, column)) in at.iter().enumerate() {
            if let (Some((cells, deletions)), Some(j)) = (sources[slot], column) {
                classes[k * n + t] = i64::from(cells[j]);
                if deletions[j] > 0 {
                    has_deletion[k * n + t] = 1.0;
                    deletion_value[k * n + t] =
                        std::f32::consts::FRAC_2_PI * (f32::from(deletions[j]) / DELETION_VALUE_SCALE).atan();
                }
            }
        }
    }
    for (t, &q) in query.iter().enumerate() {
        classes[t] = i64::from(q);
    }
    let (s, n) = (s as i64, n as i64);
    MsaFeatures {
        msa: Tensor::from_slice(&classes).view([s, n]),
        has_deletion: Tensor::from_slice(&has_deletion).view([s, n]),
        deletion_value: Tensor::from_slice(&deletion_value).view([s, n]),
        profile: Tensor::from_slice(&profile).view([n, N_CLASSES as i64]),
        deletion_mean: Tensor::from_slice(&deletion_mean),
    }
}
