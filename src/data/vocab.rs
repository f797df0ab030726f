//! One token vocabulary for every sequence domain of the D3PM LM: four special tokens, the
//! protein and RNA alphabets (fixed), and the SMILES tokens seen in the training corpus.
//!
//! Ids: PAD 0, MASK 1, EOS 2, SEP 3, then protein (20 standard amino acids + X), RNA
//! (A C G U N), then SMILES tokens in sorted order. A letter gets a different id in each domain
//! (protein `C` ≠ RNA `C` ≠ SMILES `C`), so the LM head never confuses domains. SMILES are split
//! with the regex of Schwaller et al. 2019 (Molecular Transformer, `smi_tokenizer` in
//! `pschwllr/MolecularTransformer` README): a bracket atom such as `[NH3+]` is one token, as are
//! `Br`, `Cl` and two-digit ring closures `%nn`.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use anyhow::Context;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::data::seqs::{Domain, Record};

/// Padding: fills a packed window after its last sequence; never scored, never masked.
pub const PAD: i64 = 0;
/// The absorbing state of the diffusion: a token whose identity is hidden.
pub const MASK: i64 = 1;
/// Ends every sequence in a packed window.
pub const EOS: i64 = 2;
/// Reserved: joins the chains of one example (e.g. the chains of a complex).
pub const SEP: i64 = 3;

/// Names of the special tokens, by id (as written to the vocabulary file).
const SPECIALS: [&str; 4] = ["<pad>", "<mask>", "<eos>", "<sep>"];
/// The 20 standard amino acids (one-letter codes, alphabetical) and X for any other residue.
const PROTEIN_ALPHABET: &str = "ACDEFGHIKLMNPQRSTVWYX";
/// RNA nucleotides and N for an unknown one.
const RNA_ALPHABET: &str = "ACGUN";
const PROTEIN_START: i64 = SPECIALS.len() as i64;
const RNA_START: i64 = PROTEIN_START + PROTEIN_ALPHABET.len() as i64;
const SMILES_START: i64 = RNA_START + RNA_ALPHABET.len() as i64;

/// The SMILES tokenizer regex of Schwaller et al. 2019 (`]` escaped for the `regex` crate),
/// anchored so each match must start where the previous one ended.
const SMILES_PATTERN: &str =
    r"\A(?:\[[^\]]+\]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|/|:|~|@|\?|>|\*|\$|%[0-9]{2}|[0-9])";

/// How [`Vocab::decode`] shows a MASK (the `helico sample --trace` canvas).
const MASK_GLYPH: &str = "_";
/// How [`Vocab::decode`] shows SEP.
const SEP_GLYPH: &str = "|";
/// How [`Vocab::decode`] shows an id that is no token of the requested domain.
const FOREIGN_GLYPH: &str = "?";

/// Why a sequence could not be encoded. Columns are 0-based character offsets into the text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeError {
    /// A protein or RNA character outside the domain's alphabet.
    #[error("{} sequence: {ch:?} at column {column} is not in the alphabet {alphabet}", domain.name())]
    Alphabet { domain: Domain, ch: char, column: usize, alphabet: &'static str },
    /// SMILES text that no token of the SMILES regex covers.
    #[error(
        "SMILES: {ch:?} at column {column} starts no SMILES token (bracket atom, organic-subset atom, \
         bond, branch, ring closure, '.')"
    )]
    SmilesSyntax { ch: char, column: usize },
    /// A well-formed SMILES token that the corpus the vocabulary was built from never contained.
    #[error(
        "SMILES: token {token:?} at column {column} is not in the vocabulary (it holds the SMILES tokens \
         of the training corpus; a trained model cannot read new ones)"
    )]
    UnknownSmilesToken { token: String, column: usize },
}

/// The vocabulary. Serialises (JSON) as its token lists so a run directory or checkpoint can
/// carry it; loading checks the fixed parts against this build.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "VocabFile", into = "VocabFile")]
pub struct Vocab {
    /// SMILES tokens, sorted; token `smiles[i]` has id `SMILES_START + i`.
    smiles: Vec<String>,
    smiles_ids: HashMap<String, i64>,
    smiles_regex: Regex,
}

/// The on-disk form: every token list written out, so the file documents the ids.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VocabFile {
    special: Vec<String>,
    protein: Vec<String>,
    rna: Vec<String>,
    smiles: Vec<String>,
}

impl Vocab {
    /// The vocabulary of a corpus: the fixed parts plus every SMILES token in `records`, sorted
    /// so the ids do not depend on record order. A SMILES string the regex cannot cover adds
    /// nothing; [`Vocab::encode`] reports it with its column.
    pub fn build(records: &[Record]) -> Vocab {
        let regex = smiles_regex();
        let mut seen = BTreeSet::new();
        for record in records.iter().filter(|r| r.domain == Domain::Smiles) {
            if let Ok(tokens) = split_smiles(&regex, &record.text) {
                seen.extend(tokens.into_iter().map(|(_, token)| token.to_string()));
            }
        }
        Vocab::from_smiles(seen.into_iter().collect())
    }

    fn from_smiles(smiles: Vec<String>) -> Vocab {
        let smiles_ids = smiles.iter().zip(SMILES_START..).map(|(s, id)| (s.clone(), id)).collect();
        Vocab { smiles, smiles_ids, smiles_regex: smiles_regex() }
    }

    /// Number of tokens V (the LM head's width).
    pub fn len(&self) -> i64 {
        SMILES_START + self.smiles.len() as i64
    }

    /// Always false: the special tokens and fixed alphabets are always present.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Token ids of `text`, without EOS (packing appends it).
    pub fn encode(&self, domain: Domain, text: &str) -> Result<Vec<i64>, EncodeError> {
        match domain {
            Domain::Protein => encode_alphabet(domain, PROTEIN_ALPHABET, PROTEIN_START, text),
            Domain::Rna => encode_alphabet(domain, RNA_ALPHABET, RNA_START, text),
            Domain::Smiles => {
                let tokens = split_smiles(&self.smiles_regex, text).map_err(|byte| {
                    let (column, ch) = char_at(text, byte);
                    EncodeError::SmilesSyntax { ch, column }
                })?;
                tokens
                    .into_iter()
                    .map(|(byte, token)| {
                        self.smiles_ids.get(token).copied().ok_or_else(|| EncodeError::UnknownSmilesToken {
                            token: token.to_string(),
                            column: char_at(text, byte).0,
                        })
                    })
                    .collect()
            }
        }
    }

    /// The text of `ids` read as `domain`: MASK shows as `_`, SEP as `|`, PAD is skipped,
    /// decoding stops at the first EOS, and any other id that is not a token of `domain` shows
    /// as `?` (so a mixed-up id is visible rather than silently dropped).
    pub fn decode(&self, domain: Domain, ids: &[i64]) -> String {
        let mut out = String::new();
        for &id in ids {
            match id {
                PAD => {}
                EOS => break,
                MASK => out.push_str(MASK_GLYPH),
                SEP => out.push_str(SEP_GLYPH),
                _ => out.push_str(self.token_text(domain, id).unwrap_or(FOREIGN_GLYPH)),
            }
        }
        out
    }

    /// The text of token `id` if it belongs to `domain`.
    fn token_text(&self, domain: Domain, id: i64) -> Option<&str> {
        let range = self.domain_range(domain);
        if !range.contains(&id) {
            return None;
        }
        let i = (id - range.start) as usize;
        match domain {
            Domain::Protein => PROTEIN_ALPHABET.get(i..i + 1),
            Domain::Rna => RNA_ALPHABET.get(i..i + 1),
            Domain::Smiles => self.smiles.get(i).map(String::as_str),
        }
    }

    fn domain_range(&self, domain: Domain) -> std::ops::Range<i64> {
        match domain {
            Domain::Protein => PROTEIN_START..RNA_START,
            Domain::Rna => RNA_START..SMILES_START,
            Domain::Smiles => SMILES_START..self.len(),
        }
    }

    /// The ids a sampler may emit for `domain` (its content tokens; no special token).
    pub fn domain_tokens(&self, domain: Domain) -> Vec<i64> {
        self.domain_range(domain).collect()
    }

    /// The vocabulary as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a Vocab always serialises")
    }

    /// Reads a vocabulary written by [`Vocab::to_json`].
    pub fn from_json(json: &str) -> Result<Vocab, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// Writes the vocabulary as JSON to `path`.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, self.to_json()).with_context(|| format!("writing vocabulary {}", path.display()))
    }

    /// Reads a vocabulary written by [`Vocab::save`].
    pub fn load(path: &Path) -> anyhow::Result<Vocab> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading vocabulary {}", path.display()))?;
        Vocab::from_json(&text).with_context(|| format!("parsing vocabulary {}", path.display()))
    }
}

fn smiles_regex() -> Regex {
    Regex::new(SMILES_PATTERN).expect("SMILES_PATTERN is a valid regex")
}

/// Splits SMILES into (byte offset, token) pairs, or returns the byte offset of the first
/// character no token covers.
fn split_smiles<'t>(regex: &Regex, text: &'t str) -> Result<Vec<(usize, &'t str)>, usize> {
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let m = regex.find(&text[at..]).ok_or(at)?;
        tokens.push((at, m.as_str()));
        at += m.end();
    }
    Ok(tokens)
}

/// The 0-based character column and the character at byte offset `byte` of `text`.
fn char_at(text: &str, byte: usize) -> (usize, char) {
    let column = text[..byte].chars().count();
    let ch = text[byte..].chars().next().expect("byte offsets come from matches inside text");
    (column, ch)
}

fn encode_alphabet(domain: Domain, alphabet: &'static str, start: i64, text: &str) -> Result<Vec<i64>, EncodeError> {
    text.chars()
        .enumerate()
        .map(|(column, ch)| match alphabet.find(ch) {
            Some(i) => Ok(start + i as i64),
            None => Err(EncodeError::Alphabet { domain, ch, column, alphabet }),
        })
        .collect()
}

fn chars(alphabet: &str) -> Vec<String> {
    alphabet.chars().map(String::from).collect()
}

impl From<Vocab> for VocabFile {
    fn from(vocab: Vocab) -> VocabFile {
        VocabFile {
            special: SPECIALS.iter().map(|s| s.to_string()).collect(),
            protein: chars(PROTEIN_ALPHABET),
            rna: chars(RNA_ALPHABET),
            smiles: vocab.smiles,
        }
    }
}

impl TryFrom<VocabFile> for Vocab {
    type Error = String;

    /// The fixed parts must equal this build's (ids would shift otherwise); the SMILES tokens
    /// must be single, sorted, distinct regex tokens.
    fn try_from(file: VocabFile) -> Result<Vocab, String> {
        let fixed = [
            ("special", file.special, SPECIALS.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
            ("protein", file.protein, chars(PROTEIN_ALPHABET)),
            ("rna", file.rna, chars(RNA_ALPHABET)),
        ];
        for (key, got, expected) in fixed {
            if got != expected {
                return Err(format!("vocabulary `{key}` is {got:?}, expected {expected:?} (ids would shift)"));
            }
        }
        let regex = smiles_regex();
        for token in &file.smiles {
            if !matches!(split_smiles(&regex, token).as_deref(), Ok([(0, t)]) if *t == token.as_str()) {
                return Err(format!("vocabulary `smiles` entry {token:?} is not a single SMILES token"));
            }
        }
        if let Some(pair) = file.smiles.windows(2).find(|w| w[0] >= w[1]) {
            return Err(format!(
                "vocabulary `smiles` is not sorted and distinct: {:?} comes before {:?}",
                pair[0], pair[1]
            ));
        }
        Ok(Vocab::from_smiles(file.smiles))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(domain: Domain, text: &str) -> Record {
        Record { domain, text: text.into(), name: "test".into(), file: "test".into(), line: 1 }
    }

    fn corpus() -> Vocab {
        Vocab::build(&[
            record(Domain::Smiles, "CC(=O)Oc1ccccc1C(=O)O"),
            record(Domain::Smiles, "C[NH3+].[Cl-]"),
            record(Domain::Smiles, "BrC1CC%10CC1"),
            record(Domain::Smiles, "C1=CC=C\\C/C1 ä"), // not SMILES: adds nothing
            record(Domain::Protein, "MKV"),
        ])
    }

    #[test]
    fn smiles_tokens_follow_the_regex_and_are_sorted() {
        let vocab = corpus();
        let expected = ["%10", "(", ")", "1", "=", "Br", "C", "O", "[Cl-]", "[NH3+]", "c", "."];
        let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(vocab.smiles, expected);
        assert_eq!(vocab.len(), SMILES_START + expected.len() as i64);
        assert_eq!(vocab.encode(Domain::Smiles, "C[NH3+]").unwrap().len(), 2);
        assert_eq!(vocab.encode(Domain::Smiles, "BrC%10").unwrap().len(), 3);
    }

    #[test]
    fn round_trips_in_every_domain() {
        let vocab = corpus();
        for (domain, text) in [
            (Domain::Protein, "ACDEFGHIKLMNPQRSTVWYX"),
            (Domain::Rna, "ACGUNNUA"),
            (Domain::Smiles, "CC(=O)Oc1ccccc1C(=O)O.[Cl-]"),
            (Domain::Smiles, ""),
        ] {
            let ids = vocab.encode(domain, text).unwrap();
            assert_eq!(vocab.decode(domain, &ids), text);
            let range = vocab.domain_range(domain);
            assert!(ids.iter().all(|id| range.contains(id)));
        }
        let mut ids = vocab.encode(Domain::Rna, "AC").unwrap();
        ids.extend([MASK, SEP, PAD, vocab.encode(Domain::Protein, "C").unwrap()[0], EOS, RNA_START]);
        assert_eq!(vocab.decode(Domain::Rna, &ids), "AC_|?");
    }

    #[test]
    fn a_letter_has_one_id_per_domain() {
        let vocab = corpus();
        let c: Vec<i64> =
            [Domain::Protein, Domain::Rna, Domain::Smiles].iter().map(|&d| vocab.encode(d, "C").unwrap()[0]).collect();
        assert!(c[0] != c[1] && c[1] != c[2] && c[0] != c[2], "{c:?}");
        let mut all: Vec<i64> = Domain::ALL.iter().flat_map(|&d| vocab.domain_tokens(d)).collect();
        all.sort();
        assert_eq!(all, (PROTEIN_START..vocab.len()).collect::<Vec<_>>());
    }

    #[test]
    fn errors_name_character_and_column() {
        let vocab = corpus();
        let err = vocab.encode(Domain::Protein, "MKBV").unwrap_err();
        assert_eq!(
            err,
            EncodeError::Alphabet { domain: Domain::Protein, ch: 'B', column: 2, alphabet: PROTEIN_ALPHABET }
        );
        assert!(err.to_string().contains("'B' at column 2"), "{err}");
        let err = vocab.encode(Domain::Rna, "ACGT").unwrap_err();
        assert!(matches!(err, EncodeError::Alphabet { ch: 'T', column: 3, .. }), "{err}");
        // Column counts characters, not bytes.
        let err = vocab.encode(Domain::Smiles, "Cä C").unwrap_err();
        assert_eq!(err, EncodeError::SmilesSyntax { ch: 'ä', column: 1 });
        let err = vocab.encode(Domain::Smiles, "CC[Xe]").unwrap_err();
        assert_eq!(err, EncodeError::UnknownSmilesToken { token: "[Xe]".into(), column: 2 });
    }

    #[test]
    fn json_round_trip_and_checks() {
        let vocab = corpus();
        let back = Vocab::from_json(&vocab.to_json()).unwrap();
        assert_eq!(back.smiles, vocab.smiles);
        assert_eq!(back.encode(Domain::Smiles, "C[NH3+]"), vocab.encode(Domain::Smiles, "C[NH3+]"));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vocab.json");
        vocab.save(&path).unwrap();
        assert_eq!(Vocab::load(&path).unwrap().smiles, vocab.smiles);

        let bad = vocab.to_json().replace("\"U\"", "\"T\"");
        assert!(Vocab::from_json(&bad).unwrap_err().to_string().contains("`rna`"));
        let bad = vocab.to_json().replace("\"[NH3+]\"", "\"[NH3+]C\"");
        assert!(Vocab::from_json(&bad).unwrap_err().to_string().contains("not a single SMILES token"));
    }
}
