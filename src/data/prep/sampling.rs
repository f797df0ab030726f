//! AF3 supplement §2.5.1 weighted sampling of the PDB: every chain and every interface of every
//! entry is a sampling unit, drawn with probability proportional to
//!
//! ```text
//! w = β_type / N_clust · (α_prot·n_prot + α_nuc·n_nuc + α_ligand·n_ligand)
//! ```
//!
//! (β_chain 0.5, β_interface 1, α_prot = α_nuc = 3, α_ligand 1; n_* counts the unit's chains
//! of each kind), and the crop then centres on the drawn unit's chains. Follows Protenix
//! `get_weighted_pdb_weight` / `calc_weights_for_df` (`protenix/data/dataset.py`,
//! bytedance/Protenix 3248f8e), which makes two choices the supplement leaves open:
//!
//! - **N_clust** counts the distinct (entry, entity) units in a cluster (for an interface, the
//!   entry and its sorted entity pair), not chains: an entry's 24 copies of one chain count once.
//! - **Copies share their weight**: a unit's weight is divided by the number of units of its
//!   entry with the same entity (pair), so a homo-24-mer is not drawn 24 times as often.
//!
//! **Clusters** (AF3 §2.5.3): AF3 clusters protein chains at 40% sequence identity (MMseqs2),
//! nucleic acids and peptides under 10 residues at 100%, ligands by CCD code; an interface's
//! cluster is the unordered pair of its chains' clusters. helico clusters every polymer at 100%
//! identity: the chain's full sequence (unresolved residues included), modified residues mapped
//! to their parent's one-letter code, keyed by polymer type; ligand chains by their CCD codes in
//! order ("NAG-NAG-BMA"). 40% identity needs an aligner and a clustering of all PDB sequences
//! (MMseqs2 in AF3), which helico does not have; with exact clusters, homologous families split
//! into many clusters and are drawn more often than AF3 draws them (docs/af3_data.md).
//!
//! **Interfaces** (AF3 §2.5.1): chain pairs with resolved heavy atoms closer than 5 Å, found
//! with a grid of 5 Å cells, so the cost grows with the atoms, not with their square.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::data::ccd::Ccd;
use crate::data::packing::SplitMix64;
use crate::data::structure::{EntityKind, PolymerType, Structure};

/// AF3 supplement §2.5.1: β_chain.
pub const BETA_CHAIN: f64 = 0.5;
/// AF3 supplement §2.5.1: β_interface.
pub const BETA_INTERFACE: f64 = 1.0;
/// AF3 supplement §2.5.1: α_prot.
pub const ALPHA_PROTEIN: f64 = 3.0;
/// AF3 supplement §2.5.1: α_nuc.
pub const ALPHA_NUCLEIC: f64 = 3.0;
/// AF3 supplement §2.5.1: α_ligand.
pub const ALPHA_LIGAND: f64 = 1.0;
/// AF3 supplement §2.5.1: two chains form an interface when heavy atoms of both lie closer than
/// this, in Å.
pub const INTERFACE_CUTOFF: f32 = 5.0;

/// Which α a chain contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainKind {
    /// Polypeptide entities (L or D), peptides included.
    Protein,
    /// RNA, DNA and hybrid entities.
    NucleicAcid,
    /// Everything else: ligands, ions, glycans, other polymers.
    Ligand,
}

impl ChainKind {
    pub fn alpha(self) -> f64 {
        match self {
            ChainKind::Protein => ALPHA_PROTEIN,
            ChainKind::NucleicAcid => ALPHA_NUCLEIC,
            ChainKind::Ligand => ALPHA_LIGAND,
        }
    }
}

/// One chain of an entry as sampling sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainInfo {
    /// Index into the entry's `Structure::chains`.
    pub chain: usize,
    /// Index into the entry's `Structure::entities`: copies of one entity share their weight.
    pub entity: usize,
    pub kind: ChainKind,
    /// The cluster key: chains with equal keys are one cluster ("protein:MKT…", "ligand:HEM").
    pub cluster: String,
}

/// What sampling needs of one entry; computed from its cache file when the dataset opens.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EntryUnits {
    /// Chains with at least one resolved atom (a crop cannot centre on the others).
    pub chains: Vec<ChainInfo>,
    /// Pairs of positions in `chains`, lower first, whose heavy atoms touch ([`INTERFACE_CUTOFF`]).
    pub interfaces: Vec<[usize; 2]>,
}

impl EntryUnits {
    /// The chains and interfaces of a completed structure; `ccd` maps modified residues to their
    /// parents' one-letter codes (the cache file's own CCD subset has every residue's component).
    pub fn of(structure: &Structure, ccd: &Ccd) -> EntryUnits {
        let resolved: Vec<usize> = (0..structure.chains.len())
            .filter(|&c| {
                structure.residues[structure.chains[c].residues.clone()]
                    .iter()
                    .any(|r| structure.atoms.resolved[r.atoms.clone()].contains(&true))
            })
            .collect();
        let chains: Vec<ChainInfo> = resolved
            .iter()
            .map(|&c| {
                let (kind, cluster) = cluster_key(structure, c, ccd);
                ChainInfo { chain: c, entity: structure.chains[c].entity, kind, cluster }
            })
            .collect();
        let position: HashMap<usize, usize> = resolved.iter().enumerate().map(|(p, &c)| (c, p)).collect();
        let interfaces =
            interfaces(structure, INTERFACE_CUTOFF).into_iter().map(|[a, b]| [position[&a], position[&b]]).collect();
        EntryUnits { chains, interfaces }
    }
}

/// The kind and cluster key of chain `c` (see the module doc).
pub fn cluster_key(structure: &Structure, c: usize, ccd: &Ccd) -> (ChainKind, String) {
    let chain = &structure.chains[c];
    let residues = &structure.residues[chain.residues.clone()];
    let polymer = match structure.entities[chain.entity].kind {
        EntityKind::Polymer(PolymerType::PeptideL | PolymerType::PeptideD) => Some((ChainKind::Protein, "protein")),
        EntityKind::Polymer(PolymerType::Rna) => Some((ChainKind::NucleicAcid, "rna")),
        EntityKind::Polymer(PolymerType::Dna) => Some((ChainKind::NucleicAcid, "dna")),
        EntityKind::Polymer(PolymerType::DnaRnaHybrid) => Some((ChainKind::NucleicAcid, "hybrid")),
        _ => None,
    };
    match polymer {
        Some((kind, label)) => {
            let sequence: String = residues
                .iter()
                .map(|r| {
                    ccd.get(r.name.as_str())
                        .and_then(|c| c.one_letter_code.as_deref())
                        .filter(|code| code.len() == 1)
                        .and_then(|code| code.chars().next())
                        .unwrap_or('X')
                })
                .collect();
            (kind, format!("{label}:{sequence}"))
        }
        None => {
            let codes: Vec<&str> = residues.iter().map(|r| r.name.as_str()).collect();
            (ChainKind::Ligand, format!("ligand:{}", codes.join("-")))
        }
    }
}

/// Pairs of chains (indices into `structure.chains`, lower first, sorted) with resolved heavy
/// atoms closer than `cutoff` Å. Atoms are sorted by the cell of a `cutoff` grid they fall in,
/// keyed so that a cell and its two z-neighbours are one run; each cell then looks at the 9 runs
/// around it, and only at atoms after its own, so each pair of atoms is measured once.
pub fn interfaces(structure: &Structure, cutoff: f32) -> Vec<[usize; 2]> {
    let mut points: Vec<([f32; 3], usize)> = Vec::new();
    for residue in &structure.residues {
        for i in residue.atoms.clone() {
            if structure.atoms.resolved[i] && !structure.atoms.element[i].is_hydrogen() {
                points.push((structure.atoms.coords[i], residue.chain));
            }
        }
    }
    if points.is_empty() {
        return Vec::new();
    }
    let cells: Vec<[i64; 3]> = points.iter().map(|(p, _)| p.map(|x| (x / cutoff).floor() as i64)).collect();
    let low = cells.iter().fold([i64::MAX; 3], |m, c| [0, 1, 2].map(|d| m[d].min(c[d])));
    // One more than the lowest cell, so that "the cell below" never goes negative.
    let key = |c: [i64; 3]| -> u64 {
        let [x, y, z] = [0, 1, 2].map(|d| (c[d] - low[d] + 1).clamp(0, (1 << 21) - 1) as u64);
        (x << 42) | (y << 21) | z
    };
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_unstable_by_key(|&k| key(cells[k]));
    let keys: Vec<u64> = order.iter().map(|&k| key(cells[k])).collect();

    let n_chains = structure.chains.len();
    let mut found = vec![false; n_chains * n_chains];
    let cutoff2 = cutoff * cutoff;
    let mut start = 0;
    while start < order.len() {
        let end = start + keys[start..].partition_point(|&k| k == keys[start]);
        let [x, y, z] = cells[order[start]];
        for (dx, dy) in (-1..=1).flat_map(|dx| (-1..=1).map(move |dy| (dx, dy))) {
            let (lo, hi) = (key([x + dx, y + dy, z - 1]), key([x + dx, y + dy, z + 1]));
            let from = keys.partition_point(|&k| k < lo).max(start);
            let to = keys.partition_point(|&k| k <= hi);
            for a in start..end {
                let (p, chain) = points[order[a]];
                for &j in &order[from.max(a + 1)..to.max(from.max(a + 1))] {
                    let (q, other) = points[j];
                    let seen = &mut found[chain.min(other) * n_chains + chain.max(other)];
                    if other != chain
                        && !*seen
                        && (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2) < cutoff2
                    {
                        *seen = true;
                    }
                }
            }
        }
        start = end;
    }
    let mut out = Vec::new();
    for a in 0..n_chains {
        for b in a + 1..n_chains {
            if found[a * n_chains + b] {
                out.push([a, b]);
            }
        }
    }
    out
}

/// What a unit is: one chain, or two in contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    Chain,
    Interface,
}

/// One sampling unit of the dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unit {
    /// Index into the dataset's entries.
    pub entry: usize,
    pub kind: UnitKind,
    /// The chains the crop centres on (indices into the entry's `Structure::chains`): one for a
    /// chain, two for an interface.
    pub chains: Vec<usize>,
    /// Index into [`WeightedUnits::clusters`].
    pub cluster: usize,
    /// Unnormalised weight (see the module doc).
    pub weight: f64,
}

/// Every unit of a dataset with its weight, ready to draw from.
#[derive(Debug, Clone)]
pub struct WeightedUnits {
    pub units: Vec<Unit>,
    /// Cluster keys, by cluster index ("protein:MKT…", "protein:MKT…|ligand:HEM" for interfaces).
    pub clusters: Vec<String>,
    /// Running sums of the weights, for drawing by bisection.
    cumulative: Vec<f64>,
}

impl WeightedUnits {
    /// The units of `entries` (one per dataset entry, in order) and their weights.
    pub fn new(entries: &[EntryUnits]) -> WeightedUnits {
        let mut clusters: Vec<String> = Vec::new();
        let mut cluster_index: HashMap<String, usize> = HashMap::new();
        let mut intern = |key: String| -> usize {
            let next = cluster_index.len();
            *cluster_index.entry(key.clone()).or_insert_with(|| {
                clusters.push(key);
                next
            })
        };
        // (unit, entity key): the entity key is (entity, usize::MAX) for a chain and the sorted
        // entity pair for an interface, so chain and interface units never share one.
        let mut units: Vec<(Unit, [usize; 2])> = Vec::new();
        for (e, entry) in entries.iter().enumerate() {
            for info in &entry.chains {
                let cluster = intern(info.cluster.clone());
                let weight = BETA_CHAIN * info.kind.alpha();
                let unit = Unit { entry: e, kind: UnitKind::Chain, chains: vec![info.chain], cluster, weight };
                units.push((unit, [info.entity, usize::MAX]));
            }
            for &[a, b] in &entry.interfaces {
                let (ca, cb) = (&entry.chains[a], &entry.chains[b]);
                let key = if ca.cluster <= cb.cluster {
                    format!("{}|{}", ca.cluster, cb.cluster)
                } else {
                    format!("{}|{}", cb.cluster, ca.cluster)
                };
                let cluster = intern(key);
                let weight = BETA_INTERFACE * (ca.kind.alpha() + cb.kind.alpha());
                let chains = vec![ca.chain, cb.chain];
                let unit = Unit { entry: e, kind: UnitKind::Interface, chains, cluster, weight };
                units.push((unit, [ca.entity.min(cb.entity), ca.entity.max(cb.entity)]));
            }
        }
        let mut members: HashMap<(usize, [usize; 2]), usize> = HashMap::new();
        let mut per_cluster: Vec<HashSet<(usize, [usize; 2])>> = vec![HashSet::new(); clusters.len()];
        for (unit, entity) in &units {
            *members.entry((unit.entry, *entity)).or_default() += 1;
            per_cluster[unit.cluster].insert((unit.entry, *entity));
        }
        let units: Vec<Unit> = units
            .into_iter()
            .map(|(mut unit, entity)| {
                let n_clust = per_cluster[unit.cluster].len() as f64;
                unit.weight /= n_clust * members[&(unit.entry, entity)] as f64;
                unit
            })
            .collect();
        let mut total = 0.0;
        let cumulative = units
            .iter()
            .map(|u| {
                total += u.weight;
                total
            })
            .collect();
        WeightedUnits { units, clusters, cumulative }
    }

    /// The sum of all weights.
    pub fn total(&self) -> f64 {
        self.cumulative.last().copied().unwrap_or(0.0)
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// A unit index drawn with probability weight / total (there must be a unit).
    pub fn draw(&self, rng: &mut SplitMix64) -> usize {
        assert!(!self.is_empty(), "drawing needs at least one unit");
        let x = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * self.total();
        self.cumulative.partition_point(|&c| c <= x).min(self.units.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(chain: usize, entity: usize, kind: ChainKind, cluster: &str) -> ChainInfo {
        ChainInfo { chain, entity, kind, cluster: cluster.into() }
    }

    /// Entry 0: a homodimer (chains 0, 1 of entity 0) touching a ligand (chain 2) and each
    /// other; entry 1: one copy of the same protein; entry 2: an unrelated protein.
    fn three_entries() -> Vec<EntryUnits> {
        vec![
            EntryUnits {
                chains: vec![
                    chain(0, 0, ChainKind::Protein, "protein:MKV"),
                    chain(1, 0, ChainKind::Protein, "protein:MKV"),
                    chain(2, 1, ChainKind::Ligand, "ligand:HEM"),
                ],
                interfaces: vec![[0, 1], [0, 2]],
            },
            EntryUnits { chains: vec![chain(0, 0, ChainKind::Protein, "protein:MKV")], interfaces: vec![] },
            EntryUnits { chains: vec![chain(0, 0, ChainKind::Protein, "protein:GGG")], interfaces: vec![] },
        ]
    }

    #[test]
    fn weights_follow_af3_with_protenix_cluster_sizes() {
        let w = WeightedUnits::new(&three_entries());
        let weights: Vec<(usize, UnitKind, Vec<usize>, f64)> =
            w.units.iter().map(|u| (u.entry, u.kind, u.chains.clone(), u.weight)).collect();
        // "protein:MKV" holds (entry 0, entity 0) and (entry 1, entity 0): N_clust = 2, and
        // entry 0's two copies split their share: 0.5 · 3 / 2 / 2.
        assert_eq!(
            weights,
            vec![
                (0, UnitKind::Chain, vec![0], 0.375),
                (0, UnitKind::Chain, vec![1], 0.375),
                (0, UnitKind::Chain, vec![2], 0.5),
                (0, UnitKind::Interface, vec![0, 1], 6.0),
                (0, UnitKind::Interface, vec![0, 2], 4.0),
                (1, UnitKind::Chain, vec![0], 0.75),
                (2, UnitKind::Chain, vec![0], 1.5),
            ]
        );
        let clusters =
            ["protein:MKV", "ligand:HEM", "protein:MKV|protein:MKV", "ligand:HEM|protein:MKV", "protein:GGG"];
        assert_eq!(w.clusters, clusters);
        assert_eq!(w.total(), 13.5);
    }

    #[test]
    fn draws_are_seeded_and_in_range() {
        let mut entries = three_entries();
        entries[0].interfaces.clear();
        let w = WeightedUnits::new(&entries);
        let draws: Vec<usize> = (0..1000).scan(SplitMix64(3), |rng, _| Some(w.draw(rng))).collect();
        assert_eq!(draws, (0..1000).scan(SplitMix64(3), |rng, _| Some(w.draw(rng))).collect::<Vec<_>>());
        assert!(draws.iter().all(|&u| u < w.units.len()));
        let single = WeightedUnits::new(&entries[2..]);
        assert!((0..100).all(|s| single.draw(&mut SplitMix64(s)) == 0));
    }
}
