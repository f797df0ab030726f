//! Pairing the alignments of a complex's chains by species, AlphaFold-Multimer style
//! (`alphafold/data/msa_pairing.py`, `pair_sequences` and `reorder_paired_rows`): a paired row
//! holds, for each chain, a hit from the same species, so co-evolution across the interface
//! shows up as co-varying columns of one row.
//!
//! What is implemented, precisely:
//! 1. Row 0 pairs the queries.
//! 2. Each chain's hits are grouped by species ([`species_of`]); hits without one never pair.
//! 3. A species found in at least two chains is paired; one with more than
//!    [`MAX_ROWS_PER_SPECIES`] hits in some chain is skipped (AF-Multimer: such species are
//!    usually uninformative and would dominate the block).
//! 4. Within a species each chain's hits are sorted by identity to that chain's query (most
//!    similar first, ties in file order) and the j-th hits of every chain that has the species
//!    form one row; the row count is the smallest hit count among those chains, and chains
//!    without the species get a gap row.
//! 5. Rows are ordered by the number of chains they pair (most first), then by the product of
//!    their row indices (hits the searches ranked higher first), then by species name.
//! 6. The block is cut at `max_rows` rows, the query row included.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

use super::Msa;

/// AF-Multimer's cap (`msa_pairing.py`): a species with more hits than this in some chain is
/// not paired.
pub const MAX_ROWS_PER_SPECIES: usize = 600;

/// UniProtKB identifiers, `db|accession|ENTRY_SPECIES` with `db` = `tr` (TrEMBL) or `sp`
/// (Swiss-Prot), an optional isoform `_N` after the accession and an optional `_N` after the
/// species (small BFD); the species mnemonic is the capture. AlphaFold's
/// `msa_identifiers._UNIPROT_PATTERN`, matched against the name with any `/start-end` removed.
static UNIPROT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:tr|sp)\|[A-Za-z0-9]{6,10}(?:_\d)?\|[A-Za-z0-9]+_([A-Za-z0-9]{1,5})(?:_\d+)?$")
        .expect("the UniProt pattern compiles")
});

/// UniRef cluster names that carry the member's species, `UniRef100_ACCESSION_SPECIES` (the
/// helico reference's second pattern, for ColabFold-style headers).
static UNIREF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^UniRef(?:100|90|50)_[A-Za-z0-9]+_([A-Za-z0-9]{1,5})$").expect("the UniRef pattern compiles")
});

/// UniRef descriptions (`#=GS … DE … RepID=A0A141BHY3_STAXY`): the representative's entry
/// name, whose sequence is the hit. UniParc representatives (`RepID=UPI…`) have no species.
static REPID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bRepID=[A-Za-z0-9]+_([A-Za-z0-9]{1,5})\b").expect("the RepID pattern compiles"));

/// The UniProt species mnemonic (`STAAU`, `9STAP`) of a row, from its name (patterns
/// [`UNIPROT`], [`UNIREF`]) or else its description ([`REPID`]); `None` for hits from
/// databases without species (MGnify, BFD clusters, UniParc).
pub fn species_of(name: &str, description: &str) -> Option<String> {
    let bare = name.split_once('/').map_or(name, |(n, _)| n);
    [UNIPROT.captures(bare), UNIREF.captures(bare), REPID.captures(description)]
        .into_iter()
        .flatten()
        .next()
        .map(|c| c[1].to_owned())
}

/// Which row of each chain's alignment forms each paired row: `rows[k][c]` is a row index
/// into chain `c`'s alignment, `None` for a gap row. Row 0 pairs the queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pairing {
    pub rows: Vec<Vec<Option<usize>>>,
}

/// Pairs the chains' alignments by species (see the module documentation for the rules),
/// keeping at most `max_rows` rows (Protenix and AF3 use half the MSA budget for pairing).
pub fn pair_by_species(chains: &[&Msa], max_rows: usize) -> Pairing {
    let n_chains = chains.len();
    let mut by_species: BTreeMap<&str, Vec<Vec<usize>>> = BTreeMap::new();
    for (c, msa) in chains.iter().enumerate() {
        for (i, species) in msa.species().iter().enumerate().skip(1) {
            if let Some(species) = species {
                by_species.entry(species.as_str()).or_insert_with(|| vec![Vec::new(); n_chains])[c].push(i);
            }
        }
    }
    let mut paired: Vec<(usize, u128, &str, Vec<Option<usize>>)> = Vec::new();
    for (species, mut hits) in by_species {
        let present = hits.iter().filter(|h| !h.is_empty()).count();
        if present < 2 || hits.iter().any(|h| h.len() > MAX_ROWS_PER_SPECIES) {
            continue;
        }
        for (c, h) in hits.iter_mut().enumerate() {
            let identity: Vec<(usize, usize)> = h.iter().map(|&i| (identity_to_query(chains[c], i), i)).collect();
            let mut order = identity;
            order.sort_by_key(|&(same, i)| (Reverse(same), i));
            *h = order.into_iter().map(|(_, i)| i).collect();
        }
        let depth = hits.iter().filter(|h| !h.is_empty()).map(Vec::len).min().unwrap_or(0);
        for j in 0..depth {
            let row: Vec<Option<usize>> = hits.iter().map(|h| h.get(j).copied()).collect();
            let product = row.iter().flatten().fold(1u128, |p, &i| p.saturating_mul(i as u128));
            paired.push((present, product, species, row));
        }
    }
    paired.sort_by(|a, b| (Reverse(a.0), a.1, a.2).cmp(&(Reverse(b.0), b.1, b.2)));
    let mut rows = vec![vec![Some(0); n_chains]];
    rows.extend(paired.into_iter().map(|(.., row)| row));
    rows.truncate(max_rows.max(1));
    Pairing { rows }
}

/// Columns where row `i` has the query's class (AF-Multimer's `msa_similarity`, unnormalised:
/// rows of one chain share the width).
fn identity_to_query(msa: &Msa, i: usize) -> usize {
    msa.row(0).iter().zip(msa.row(i)).filter(|(q, r)| q == r).count()
}

impl Pairing {
    /// Number of paired rows, the query row included.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Each chain's paired alignment: its rows in pairing order, all-gap rows where the chain
    /// has no partner; every result has `len()` rows. `chains` must be the alignments the
    /// pairing was computed from, in the same order.
    pub fn gather(&self, chains: &[&Msa]) -> Vec<Msa> {
        chains
            .iter()
            .enumerate()
            .map(|(c, msa)| {
                let mut out = Msa { width: msa.width(), ..Msa::default() };
                for row in &self.rows {
                    match row[c] {
                        Some(i) => {
                            out.classes.extend_from_slice(msa.row(i));
                            out.deletions.extend_from_slice(msa.deletion_row(i));
                            out.names.push(msa.names[i].clone());
                            out.species.push(msa.species[i].clone());
                        }
                        None => out.push_gap_row(),
                    }
                }
                out
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::msa::Alphabet;

    #[test]
    fn species_patterns() {
        assert_eq!(species_of("tr|A0A0K0ME10|A0A0K0ME10_9STAP/1-51", "").as_deref(), Some("9STAP"));
        assert_eq!(species_of("sp|P0C2L1|A3X1_LOXLA", "").as_deref(), Some("LOXLA"));
        assert_eq!(species_of("tr|A0A146SKV9_1|A0A146SKV9_FUNHE_3", "").as_deref(), Some("FUNHE"));
        assert_eq!(species_of("UniRef100_A0A2W3M096_STAAU", "").as_deref(), Some("STAAU"));
        let de = "[subseq from] DNA-binding protein n=37 Tax=Staphylococcaceae TaxID=90964 RepID=A0A141BHY3_STAXY";
        assert_eq!(species_of("UniRef90_A0A141BHY3/1-51", de).as_deref(), Some("STAXY"));
        assert_eq!(species_of("UniRef90_UPI000A061283/1-51", "RepID=UPI000A061283").as_deref(), None);
        assert_eq!(species_of("MGYP000048211747/1-51", "PL=00 UP=0").as_deref(), None);
        assert_eq!(species_of("xx|A0A0K0ME10|A0A0K0ME10_9STAP", "").as_deref(), None);
    }

    #[test]
    fn single_chain_pairs_only_its_query() {
        let msa = Msa::parse_a3m(b">q\nMK\n>tr|A00001|A00001_HUMAN\nMR\n", "x", Alphabet::Protein).unwrap();
        assert_eq!(pair_by_species(&[&msa], 100).rows, vec![vec![Some(0)]]);
    }
}
