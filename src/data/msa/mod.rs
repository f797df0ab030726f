//! Multiple sequence alignments (MSAs) for the AF3 MSA features: A3M and Stockholm readers
//! (plain or gzipped, from files or tar members through [`TarIndex`]), the per-column profile
//! and deletion mean (AF3 supplement §2.8 and Table 13: `profile`, `deletion_mean`), pairing
//! of the chains of a complex by species ([`pair_by_species`]), deterministic row subsampling
//! and column selection for token crops.
//!
//! An [`Msa`] is `M` rows × `N` columns: the first row is the query (the chain's own
//! sequence), one column per query residue. Each cell holds a residue class of the 32-class
//! alphabet AF3 and Protenix share (Protenix `STD_RESIDUES_WITH_GAP`): 0–19 the amino acids
//! in the alphabetical order of their three-letter codes (`ARNDCQEGHILKMFPSTWYV`), 20 unknown
//! amino acid, 21–24 RNA `AGCU`, 25 unknown RNA, 26–29 DNA `AGCT`, 30 unknown DNA, 31 gap. A
//! parallel deletion matrix counts, per cell, the residues the row inserts before that column
//! (relative to the query), as AlphaFold's `deletion_matrix` does.
//!
//! Reference conventions: openfold3 `core/data/io/sequence/msa.py` (`parse_a3m`,
//! `parse_stockholm`) and AlphaFold-Multimer `msa_pairing.py`; where helico differs it says so
//! next to the code.

mod a3m;
mod error;
mod features;
mod pairing;
mod source;
mod stockholm;
mod tar_index;

use std::io::Read;
use std::path::Path;

use serde::Serialize;

pub use error::{MsaError, Result};
pub use features::{MAX_MSA_ROWS, MAX_PAIRED_ROWS, MsaFeatures};
pub use pairing::{MAX_ROWS_PER_SPECIES, Pairing, pair_by_species, species_of};
pub use source::{
    AlignmentSource, EntityMsa, EntityReport, FileUse, InputFile, MAX_STORED_ROWS, MsaReport, Role, find_entity_msas,
    role_of, sequence_classes,
};
pub use tar_index::{IndexOrigin, Member, TarIndex};

use super::packing::SplitMix64;

/// Residue classes of the MSA alphabet, gap included (AF3 supplement Table 13, `restype`).
pub const N_CLASSES: usize = 32;
/// Unknown amino acid (`X`, and `J`, `O`).
pub const PROTEIN_UNKNOWN: u8 = 20;
/// Unknown RNA base (`N` and any non-`ACGU` letter), Protenix's RNA `N`.
pub const RNA_UNKNOWN: u8 = 25;
/// Unknown DNA base (`N` and any non-`ACGT` letter), Protenix's DNA `DN`.
pub const DNA_UNKNOWN: u8 = 30;
/// The gap class (`-` in an aligned row).
pub const GAP: u8 = 31;

/// Amino acids in class order 0–19 (three-letter codes ALA ARG ASN … VAL, alphabetically).
const AMINO_ACIDS: &[u8; 20] = b"ARNDCQEGHILKMFPSTWYV";

/// Which residue letters a file's rows are written in: `A` is alanine in a protein MSA and
/// adenine in an RNA one, so the caller says which the chain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Alphabet {
    Protein,
    Rna,
    Dna,
}

impl Alphabet {
    /// The alphabet's unknown residue (`X`, or `N` for nucleic acids).
    pub fn unknown(self) -> u8 {
        match self {
            Alphabet::Protein => PROTEIN_UNKNOWN,
            Alphabet::Rna => RNA_UNKNOWN,
            Alphabet::Dna => DNA_UNKNOWN,
        }
    }

    /// The class of an upper-case letter or `-`; `None` for anything else.
    ///
    /// Protein letters follow AlphaFold's MSA table (`HHBLITS_AA_TO_ID`): the ambiguity codes
    /// `B` and `Z` count as D and E, selenocysteine `U` as C, `J`, `O` and `X` as unknown.
    /// Nucleic letters outside the alphabet become the unknown base; RNA hits found in DNA
    /// databases write `T` for `U` (and DNA ones `U` for `T`), so those two are swapped in.
    pub fn encode(self, letter: u8) -> Option<u8> {
        if letter == b'-' {
            return Some(GAP);
        }
        if !letter.is_ascii_uppercase() {
            return None;
        }
        Some(match self {
            Alphabet::Protein => match letter {
                b'B' => 3,
                b'Z' => 6,
                b'U' => 4,
                _ => AMINO_ACIDS.iter().position(|&a| a == letter).map_or(PROTEIN_UNKNOWN, |i| i as u8),
            },
            Alphabet::Rna => match letter {
                b'A' => 21,
                b'G' => 22,
                b'C' => 23,
                b'U' | b'T' => 24,
                _ => RNA_UNKNOWN,
            },
            Alphabet::Dna => match letter {
                b'A' => 26,
                b'G' => 27,
                b'C' => 28,
                b'T' | b'U' => 29,
                _ => DNA_UNKNOWN,
            },
        })
    }
}

/// The one-letter code of a class (`X` for unknown amino acid, `N` for unknown bases, `-`).
pub fn letter(class: u8) -> char {
    match class {
        0..=19 => AMINO_ACIDS[class as usize] as char,
        21..=24 => b"AGCU"[class as usize - 21] as char,
        26..=29 => b"AGCT"[class as usize - 26] as char,
        25 | 30 => 'N',
        GAP => '-',
        _ => 'X',
    }
}

/// An alignment of `M` rows (row 0: the query) over `N` query columns, with the deletion
/// matrix and each row's name and species. The default is the empty alignment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Msa {
    width: usize,
    /// Residue classes, row-major: [M, N].
    classes: Vec<u8>,
    /// Residues inserted before each cell's column, saturating at `u16::MAX`: [M, N].
    deletions: Vec<u16>,
    /// First word of each row's header (A3M) or its sequence name (Stockholm): [M].
    names: Vec<String>,
    /// UniProt species mnemonic of each row, when its name carries one ([`species_of`]): [M].
    species: Vec<Option<String>>,
}

/// One parsed row before it joins an [`Msa`].
pub(crate) struct Row {
    pub name: String,
    pub description: String,
    pub classes: Vec<u8>,
    pub deletions: Vec<u16>,
}

impl Msa {
    /// Reads an A3M or Stockholm file, gzipped or not; the format comes from the content
    /// (Stockholm opens with `# STOCKHOLM`), so names and extensions do not matter.
    pub fn read(path: impl AsRef<Path>, alphabet: Alphabet) -> Result<Msa> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| MsaError::Io { path: path.into(), action: "read", source })?;
        Self::parse(&bytes, &path.display().to_string(), alphabet)
    }

    /// Parses bytes already in memory (a tar member, an inline A3M string); `origin` labels
    /// error messages.
    pub fn parse(bytes: &[u8], origin: &str, alphabet: Alphabet) -> Result<Msa> {
        Self::parse_limited(bytes, origin, alphabet, usize::MAX)
    }

    /// Like [`Msa::parse`], keeping only the first `max_rows` rows (the query included):
    /// searches write hits best first, and a capped read of a 20 MB file stores only what it
    /// keeps. An A3M read stops at the next record; a Stockholm file is still read to its `//`
    /// (its rows can be interleaved), so a truncated one is still an error.
    pub fn parse_limited(bytes: &[u8], origin: &str, alphabet: Alphabet, max_rows: usize) -> Result<Msa> {
        let mut inflated = Vec::new();
        let text = if bytes.starts_with(&[0x1f, 0x8b]) {
            flate2::read::MultiGzDecoder::new(bytes)
                .read_to_end(&mut inflated)
                .map_err(|source| MsaError::Gzip { origin: origin.to_owned(), source })?;
            &inflated[..]
        } else {
            bytes
        };
        let start = text.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(text.len());
        let max_rows = max_rows.max(1);
        if text[start..].starts_with(b"# STOCKHOLM") {
            stockholm::parse(text, origin, alphabet, max_rows).map(Msa::from_rows)
        } else {
            a3m::parse(text, origin, alphabet, max_rows).map(Msa::from_rows)
        }
    }

    /// Parses A3M text (see `a3m.rs` for the grammar).
    pub fn parse_a3m(text: &[u8], origin: &str, alphabet: Alphabet) -> Result<Msa> {
        a3m::parse(text, origin, alphabet, usize::MAX).map(Msa::from_rows)
    }

    /// Parses one Stockholm alignment (see `stockholm.rs` for the grammar).
    pub fn parse_stockholm(text: &[u8], origin: &str, alphabet: Alphabet) -> Result<Msa> {
        stockholm::parse(text, origin, alphabet, usize::MAX).map(Msa::from_rows)
    }

    /// The depth-1 alignment of a chain without homologues: its sequence, no deletions.
    /// Letters outside the alphabet map as in [`Alphabet::encode`]; anything that is not a
    /// letter becomes the unknown class.
    pub fn single_sequence(name: &str, sequence: &str, alphabet: Alphabet) -> Msa {
        let unknown = alphabet.unknown();
        let classes: Vec<u8> =
            sequence.bytes().map(|b| alphabet.encode(b.to_ascii_uppercase()).unwrap_or(unknown)).collect();
        let row = Row { name: name.to_owned(), description: String::new(), deletions: vec![0; classes.len()], classes };
        Msa::from_rows(vec![row])
    }

    /// Rows already checked to share one width (the parsers guarantee it).
    pub(crate) fn from_rows(rows: Vec<Row>) -> Msa {
        let width = rows.first().map_or(0, |r| r.classes.len());
        let mut msa = Msa {
            width,
            classes: Vec::with_capacity(rows.len() * width),
            deletions: Vec::with_capacity(rows.len() * width),
            names: Vec::with_capacity(rows.len()),
            species: Vec::with_capacity(rows.len()),
        };
        for row in rows {
            debug_assert_eq!(row.classes.len(), width, "parsers check row widths");
            msa.species.push(species_of(&row.name, &row.description));
            msa.classes.extend_from_slice(&row.classes);
            msa.deletions.extend_from_slice(&row.deletions);
            msa.names.push(row.name);
        }
        msa
    }

    /// An alignment from its stored columns (the structure cache): rows without names.
    /// `classes` and `deletions` are [M, N] row-major, `species` [M]; the caller checked the
    /// lengths and that every class is below [`N_CLASSES`].
    pub(crate) fn from_parts(width: usize, classes: Vec<u8>, deletions: Vec<u16>, species: Vec<Option<String>>) -> Msa {
        debug_assert!(classes.len() == species.len() * width && deletions.len() == classes.len());
        Msa { width, classes, deletions, names: vec![String::new(); species.len()], species }
    }

    /// The same rows without their names: what preprocessing stores (pairing needs species,
    /// nothing reads names after parsing).
    pub fn without_names(mut self) -> Msa {
        self.names.iter_mut().for_each(String::clear);
        self
    }

    /// The first `max_rows` rows.
    pub fn truncate(mut self, max_rows: usize) -> Msa {
        let keep = max_rows.min(self.depth());
        self.classes.truncate(keep * self.width);
        self.deletions.truncate(keep * self.width);
        self.names.truncate(keep);
        self.species.truncate(keep);
        self
    }

    /// M, the number of rows (the query included).
    pub fn depth(&self) -> usize {
        self.names.len()
    }

    /// N, the number of query columns.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Row `i`'s residue classes: [N]. Panics when `i >= depth()`, like slice indexing.
    pub fn row(&self, i: usize) -> &[u8] {
        &self.classes[i * self.width..(i + 1) * self.width]
    }

    /// Row `i`'s deletion counts: [N].
    pub fn deletion_row(&self, i: usize) -> &[u16] {
        &self.deletions[i * self.width..(i + 1) * self.width]
    }

    /// The residue classes of every row, row-major: [M, N].
    pub fn classes(&self) -> &[u8] {
        &self.classes
    }

    /// The deletion matrix, row-major: [M, N].
    pub fn deletions(&self) -> &[u16] {
        &self.deletions
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Each row's species mnemonic, `None` where the name carries none: [M].
    pub fn species(&self) -> &[Option<String>] {
        &self.species
    }

    /// Row `i` as one-letter codes, `-` for gaps (the upper-case part of its A3M line).
    pub fn letters(&self, i: usize) -> String {
        self.row(i).iter().map(|&c| letter(c)).collect()
    }

    /// Per column, the frequency of each of the 32 classes over all rows, gaps included
    /// (AF3 supplement Table 13 `profile`; Protenix computes it over every row, before any
    /// subsampling, so call this on the full alignment): [N, 32].
    pub fn profile(&self) -> Vec<[f32; N_CLASSES]> {
        let mut counts = vec![[0u32; N_CLASSES]; self.width];
        for row in self.classes.chunks_exact(self.width.max(1)) {
            for (column, &class) in counts.iter_mut().zip(row) {
                column[class as usize] += 1;
            }
        }
        let depth = self.depth().max(1) as f32;
        counts.iter().map(|c| std::array::from_fn(|k| c[k] as f32 / depth)).collect()
    }

    /// Per column, the mean raw deletion count over all rows (AF3 supplement Table 13
    /// `deletion_mean`; the model applies no squashing to it): [N].
    pub fn deletion_mean(&self) -> Vec<f32> {
        let mut sums = vec![0u64; self.width];
        for row in self.deletions.chunks_exact(self.width.max(1)) {
            for (sum, &d) in sums.iter_mut().zip(row) {
                *sum += u64::from(d);
            }
        }
        let depth = self.depth().max(1) as f64;
        sums.iter().map(|&s| (s as f64 / depth) as f32).collect()
    }

    /// The rows `rows` in that order (indices must be < depth).
    pub(crate) fn select_rows(&self, rows: &[usize]) -> Msa {
        let mut out = Msa { width: self.width, ..Msa::default() };
        for &i in rows {
            out.classes.extend_from_slice(self.row(i));
            out.deletions.extend_from_slice(self.deletion_row(i));
            out.names.push(self.names[i].clone());
            out.species.push(self.species[i].clone());
        }
        out
    }

    /// An all-gap row (padding for a chain that has no partner in a paired row).
    pub(crate) fn push_gap_row(&mut self) {
        self.classes.extend(std::iter::repeat_n(GAP, self.width));
        self.deletions.extend(std::iter::repeat_n(0, self.width));
        self.names.push(String::new());
        self.species.push(None);
    }

    /// The columns `columns`, in that order, for every row: how an MSA follows a token crop
    /// (pass the crop's residue indices within this chain). Deletion counts travel with their
    /// column.
    pub fn select_columns(&self, columns: &[usize]) -> Result<Msa> {
        if let Some(&column) = columns.iter().find(|&&c| c >= self.width) {
            return Err(MsaError::ColumnOutOfRange { column, width: self.width });
        }
        let mut out =
            Msa { width: columns.len(), names: self.names.clone(), species: self.species.clone(), ..Msa::default() };
        for i in 0..self.depth() {
            let (row, del) = (self.row(i), self.deletion_row(i));
            out.classes.extend(columns.iter().map(|&c| row[c]));
            out.deletions.extend(columns.iter().map(|&c| del[c]));
        }
        Ok(out)
    }

    /// Drops rows that are gaps in every column (as a crop often leaves them), keeping the
    /// query; Protenix drops such rows before featurisation.
    pub fn drop_all_gap_rows(&self) -> Msa {
        let keep: Vec<usize> = (0..self.depth()).filter(|&i| i == 0 || self.row(i).iter().any(|&c| c != GAP)).collect();
        self.select_rows(&keep)
    }

    /// Drops rows whose aligned residues equal an earlier row's, keeping the first. Insertions
    /// are ignored, as AlphaFold 3 (`Msa.__init__`) and Protenix (`_deduplicate_sequences`,
    /// lower case stripped) compare rows: two hits that differ only inside an insertion give
    /// the same features but for `deletion_value`.
    pub fn dedup(&self) -> Msa {
        let mut seen = std::collections::HashSet::new();
        let keep: Vec<usize> = (0..self.depth()).filter(|&i| seen.insert(self.row(i))).collect();
        self.select_rows(&keep)
    }

    /// At most `max_rows` rows: the query and `max_rows - 1` others drawn uniformly without
    /// replacement, kept in their original order (so hits stay sorted by the search's score
    /// and a paired block stays on top). The draw depends only on `seed`: partial
    /// Fisher–Yates over SplitMix64, stable across platforms and crate versions.
    pub fn subsample(&self, max_rows: usize, seed: u64) -> Msa {
        if self.depth() <= max_rows.max(1) {
            return self.clone();
        }
        self.select_rows(&subsample_rows(self.depth(), max_rows, seed))
    }

    /// The alignments of one chain from several searches (uniref90, mgnify, bfd, …) as one:
    /// every query must be the same; the later files' query rows are dropped.
    pub fn stack(parts: &[Msa]) -> Result<Msa> {
        let Some(first) = parts.first() else { return Ok(Msa::default()) };
        let mut out = first.clone();
        for (index, part) in parts.iter().enumerate().skip(1) {
            if part.depth() == 0 {
                continue;
            }
            if part.width != first.width || part.row(0) != first.row(0) {
                return Err(MsaError::QueryMismatch {
                    what: "stacking alignments".into(),
                    index,
                    first: first.letters(0),
                    got: part.letters(0),
                });
            }
            out.classes.extend_from_slice(&part.classes[part.width..]);
            out.deletions.extend_from_slice(&part.deletions[part.width..]);
            out.names.extend_from_slice(&part.names[1..]);
            out.species.extend_from_slice(&part.species[1..]);
        }
        Ok(out)
    }

    /// Alignments of the chains of a complex side by side (row `i` of the result is row `i`
    /// of every part, concatenated): the paired block of AF-Multimer. All parts must have the
    /// same depth (see [`Pairing::gather`]); names and species come from the first part whose
    /// row has one.
    pub fn concat_columns(parts: &[Msa]) -> Result<Msa> {
        let depth = parts.first().map_or(0, Msa::depth);
        if let Some((index, part)) = parts.iter().enumerate().find(|(_, p)| p.depth() != depth) {
            return Err(MsaError::DepthMismatch { index, expected: depth, got: part.depth() });
        }
        let mut out = Msa { width: parts.iter().map(|p| p.width).sum(), ..Msa::default() };
        for i in 0..depth {
            for part in parts {
                out.classes.extend_from_slice(part.row(i));
                out.deletions.extend_from_slice(part.deletion_row(i));
            }
            let named = parts.iter().find(|p| !p.names[i].is_empty());
            out.names.push(named.map(|p| p.names[i].clone()).unwrap_or_default());
            out.species.push(parts.iter().find_map(|p| p.species[i].clone()));
        }
        Ok(out)
    }
}

/// The rows [`Msa::subsample`] keeps of `depth` rows: 0 and `max_rows - 1` others drawn
/// uniformly without replacement, ascending; every row when `depth <= max_rows`.
pub(crate) fn subsample_rows(depth: usize, max_rows: usize, seed: u64) -> Vec<usize> {
    if depth <= max_rows.max(1) {
        return (0..depth).collect();
    }
    let mut others: Vec<usize> = (1..depth).collect();
    let take = max_rows.saturating_sub(1);
    let mut rng = SplitMix64(seed);
    for i in 0..take {
        let j = i + (rng.next_u64() % (others.len() - i) as u64) as usize;
        others.swap(i, j);
    }
    let mut keep: Vec<usize> = others[..take].to_vec();
    keep.sort_unstable();
    keep.insert(0, 0);
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a3m(text: &str) -> Msa {
        Msa::parse(text.as_bytes(), "test.a3m", Alphabet::Protein).unwrap()
    }

    #[test]
    fn alphabet_follows_the_af3_classes() {
        let p = Alphabet::Protein;
        let classes: Vec<u8> = b"ARNDCQEGHILKMFPSTWYV".iter().map(|&b| p.encode(b).unwrap()).collect();
        assert_eq!(classes, (0..20).collect::<Vec<u8>>());
        assert_eq!([b'B', b'Z', b'U', b'X', b'J', b'-'].map(|b| p.encode(b).unwrap()), [3, 6, 4, 20, 20, 31]);
        assert_eq!(b"AGCUTN".map(|b| Alphabet::Rna.encode(b).unwrap()), [21, 22, 23, 24, 24, 25]);
        assert_eq!(b"AGCTUN".map(|b| Alphabet::Dna.encode(b).unwrap()), [26, 27, 28, 29, 29, 30]);
        assert_eq!(p.encode(b'a'), None);
        assert_eq!((0..32).map(letter).collect::<String>(), "ARNDCQEGHILKMFPSTWYVXAGCUNAGCTN-");
    }

    #[test]
    fn profile_and_deletion_mean_by_hand() {
        // Columns: query ACD; row 2 inserts 2 residues before column 1 and 1 before column 2.
        let msa = a3m(">q\nACD\n>a\nA-D\n>b\nGkkCyE\n>c\nAC-\n");
        assert_eq!((msa.depth(), msa.width()), (4, 3));
        assert_eq!(msa.deletion_row(2), &[0, 2, 1]);
        let profile = msa.profile();
        assert_eq!(profile[0][0], 0.75); // A in 3 of 4 rows
        assert_eq!(profile[0][7], 0.25); // G
        assert_eq!(profile[1][GAP as usize], 0.25);
        assert_eq!(profile[2][GAP as usize], 0.25);
        assert!(profile.iter().all(|col| (col.iter().sum::<f32>() - 1.0).abs() < 1e-6));
        assert_eq!(msa.deletion_mean(), vec![0.0, 0.5, 0.25]);
    }

    #[test]
    fn columns_follow_a_crop_and_dedup_keeps_first() {
        let msa = a3m(">q\nACDE\n>a\nAkCDE\n>b\nAkCDE\n>c\n----\n");
        let crop = msa.select_columns(&[3, 1]).unwrap();
        assert_eq!(crop.letters(0), "EC");
        assert_eq!(crop.deletion_row(1), &[0, 1]);
        assert!(matches!(msa.select_columns(&[4]), Err(MsaError::ColumnOutOfRange { column: 4, width: 4 })));
        // a and b align the query's residues; only their insertion differs: duplicates.
        assert_eq!(msa.dedup().names(), &["q", "c"]);
        assert_eq!(a3m(">q\nACDE\n>a\nAkCDE\n>b\nGCDE\n>c\nAmmCDE\n").dedup().names(), &["q", "b"]);
        assert_eq!(msa.drop_all_gap_rows().names(), &["q", "a", "b"]);
    }

    #[test]
    fn subsample_keeps_query_and_order_and_is_deterministic() {
        let text: String = (0..50).map(|i| format!(">r{i}\nAC{}\n", if i % 2 == 0 { "D" } else { "E" })).collect();
        let msa = a3m(&text);
        let a = msa.subsample(10, 7);
        assert_eq!(a, msa.subsample(10, 7));
        assert_eq!(a.depth(), 10);
        assert_eq!(a.names()[0], "r0");
        let idx: Vec<usize> = a.names().iter().map(|n| n[1..].parse().unwrap()).collect();
        assert!(idx.windows(2).all(|w| w[0] < w[1]), "{idx:?}");
        assert_ne!(a, msa.subsample(10, 8));
        assert_eq!(msa.subsample(100, 1), msa);
    }

    #[test]
    fn stack_drops_later_queries_and_rejects_other_chains() {
        let a = a3m(">q\nACD\n>a\nA-D\n");
        let b = a3m(">query\nACD\n>b\nG-D\n");
        let s = Msa::stack(&[a.clone(), b]).unwrap();
        assert_eq!(s.names(), &["q", "a", "b"]);
        let err = Msa::stack(&[a, a3m(">q\nACE\n")]).unwrap_err().to_string();
        assert!(err.contains("query 1 differs"), "{err}");
    }

    #[test]
    fn gzip_and_single_sequence() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b">q\nMKV\n>h\nM-V\n").unwrap();
        let msa = Msa::parse(&gz.finish().unwrap(), "x.a3m.gz", Alphabet::Protein).unwrap();
        assert_eq!(msa.letters(1), "M-V");
        let single = Msa::single_sequence("A", "acgu", Alphabet::Rna);
        assert_eq!((single.depth(), single.row(0)), (1, &[21u8, 23, 22, 24][..]));
    }
}
