//! Validation every input format shares, as a builder the format readers feed entity by
//! entity: chain ids (1–4 ASCII letters or digits, unique across the job: they become mmCIF
//! chain ids), sequences over each kind's alphabet, CCD codes (format, and existence when a
//! CCD is given), modifications, SMILES (parsed by purr), MSAs (parsed, and their first row
//! must be the chain's sequence), and bonds (chain, residue and, with a CCD, atom name).
//! Problems accumulate; [`Builder::finish`] returns them all or the normalised input.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::document::Loc;
use super::error::{InputError, Problem};
use super::{
    AtomRef, Bond, Entity, InferenceInput, InputFormat, Ligand, Modification, Molecule, PolymerKind, TextSource,
};
use crate::data::ccd::Ccd;
use crate::data::cif::CifFile;
use crate::data::msa::Msa;

/// Longest chain id: mmCIF writers and PDB-derived tools keep `label_asym_id` to 4 characters.
const MAX_CHAIN_ID: usize = 4;
/// Longest CCD code: wwPDB codes have up to 5 characters; AF3 user-CCD codes ("LIG-1337")
/// are longer.
const MAX_CCD_CODE: usize = 16;

pub(crate) struct Builder<'a> {
    file: String,
    base: PathBuf,
    ccd: Option<&'a Ccd>,
    user_ccd: Option<Ccd>,
    problems: Vec<Problem>,
    entities: Vec<Entity>,
    /// Chain id → index of the entity that owns it.
    chain_entity: HashMap<String, usize>,
    next_auto: usize,
}

impl<'a> Builder<'a> {
    /// `file` labels problems; relative paths resolve against `base`.
    pub fn new(file: &str, base: &Path, ccd: Option<&'a Ccd>) -> Builder<'a> {
        Builder {
            file: file.to_owned(),
            base: base.to_owned(),
            ccd,
            user_ccd: None,
            problems: Vec::new(),
            entities: Vec::new(),
            chain_entity: HashMap::new(),
            next_auto: 0,
        }
    }

    pub fn problem(&mut self, loc: Loc, field: &str, message: impl Into<String>, fix: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.clone(),
            line: loc.map(|l| l.0),
            column: loc.map(|l| l.1),
            field: field.to_owned(),
            message: message.into(),
            fix: fix.into(),
        });
    }

    /// A whole-document problem (a deserialization error) ends the reading.
    pub fn fail(problem: Problem) -> InputError {
        InputError::Invalid(vec![problem])
    }

    /// Checks and claims the chain ids of the entity pushed next.
    pub fn chain_ids(&mut self, ids: Vec<String>, loc: Loc, field: &str) -> Vec<String> {
        if ids.is_empty() {
            self.problem(loc, field, "no chain id", "give one id per copy, e.g. [A, B]");
        }
        self.claim(self.entities.len(), &ids, loc, field);
        ids
    }

    /// Adds a chain to an entity already pushed (another copy of the same molecule).
    pub fn join_entity(&mut self, entity: usize, id: String, loc: Loc, field: &str) {
        self.claim(entity, std::slice::from_ref(&id), loc, field);
        self.entities[entity].chains.push(id);
    }

    /// The index of a pushed entity with this molecule.
    pub fn find_entity(&self, molecule: &Molecule) -> Option<usize> {
        self.entities.iter().position(|e| &e.molecule == molecule)
    }

    fn claim(&mut self, entity: usize, ids: &[String], loc: Loc, field: &str) {
        for id in ids {
            if id.is_empty() || id.len() > MAX_CHAIN_ID || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                self.problem(
                    loc,
                    field,
                    format!("chain id {id:?} is not 1 to {MAX_CHAIN_ID} ASCII letters or digits"),
                    "use ids like A, B, AA",
                );
            } else if let Some(&owner) = self.chain_entity.get(id) {
                let whose = if owner == entity { "this entity".to_owned() } else { format!("entity {}", owner + 1) };
                self.problem(
                    loc,
                    field,
                    format!("chain id {id:?} is already used by {whose}"),
                    "chain ids must be unique",
                );
            } else {
                self.chain_entity.insert(id.clone(), entity);
            }
        }
    }

    /// `n` fresh ids in AlphaFold Server order (A…Z, AA, BA, …, ZA, AB, …), skipping ids in
    /// use or `reserved` (ids other entities of the job name explicitly).
    pub fn auto_chain_ids(&mut self, n: usize, reserved: &HashSet<String>, loc: Loc, field: &str) -> Vec<String> {
        let mut ids = Vec::with_capacity(n);
        while ids.len() < n {
            self.next_auto += 1;
            let (mut k, mut id) = (self.next_auto, String::new());
            while k > 0 {
                k -= 1;
                id.push(char::from(b'A' + (k % 26) as u8));
                k /= 26;
            }
            if !reserved.contains(&id) && !self.chain_entity.contains_key(&id) {
                ids.push(id);
            }
        }
        self.chain_ids(ids, loc, field)
    }

    pub fn push_entity(&mut self, chains: Vec<String>, molecule: Molecule) {
        self.entities.push(Entity { chains, molecule });
    }

    /// Checks a polymer sequence against its kind's letters.
    pub fn sequence(&mut self, kind: PolymerKind, text: &str, loc: Loc, field: &str) -> String {
        if text.is_empty() {
            self.problem(loc, field, format!("empty {} sequence", kind.name()), "");
            return String::new();
        }
        let bad: Vec<String> = text
            .char_indices()
            .filter(|&(_, c)| !kind.letters().contains(c))
            .take(3)
            .map(|(i, c)| format!("{c:?} at position {}", i + 1))
            .collect();
        if !bad.is_empty() {
            let fix = if text.chars().any(|c| c.is_ascii_lowercase()) {
                "write residues in upper case".to_owned()
            } else {
                format!("use {} (modified residues go in modifications)", kind.letters())
            };
            self.problem(loc, field, format!("not a {} sequence: {}", kind.name(), bad.join(", ")), fix);
        }
        text.to_owned()
    }

    /// Checks a CCD code's form and, with a CCD, that it exists there or in the user CCD.
    pub fn code(&mut self, code: &str, loc: Loc, field: &str) -> String {
        let well_formed = !code.is_empty()
            && code.len() <= MAX_CCD_CODE
            && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
        if !well_formed {
            let upper = code.to_ascii_uppercase();
            let fix = if upper != code && !upper.is_empty() {
                format!("CCD codes are upper case: write {upper:?}")
            } else {
                format!("a CCD code is 1 to {MAX_CCD_CODE} upper-case letters, digits or '-'")
            };
            self.problem(loc, field, format!("{code:?} is not a CCD code"), fix);
        } else if let Some(ccd) = self.ccd
            && ccd.get(code).is_none()
            && self.user_ccd.as_ref().is_none_or(|u| u.get(code).is_none())
        {
            self.problem(
                loc,
                field,
                format!("unknown CCD code {code:?} ({} components checked)", ccd.len()),
                "check the code (https://www.ebi.ac.uk/pdbe-srv/pdbechem/), or define it in a user CCD",
            );
        }
        code.to_owned()
    }

    /// One modification of a polymer of length `len`; `seen` catches a position given twice.
    pub fn modification(
        &mut self,
        len: usize,
        (position, position_loc): (i64, Loc),
        (code, code_loc): (&str, Loc),
        field: &str,
        seen: &mut HashSet<usize>,
    ) -> Option<Modification> {
        let ccd = self.code(code, code_loc, field);
        if position < 1 || position as u64 > len as u64 {
            let message = format!("position {position} is outside the sequence (1 to {len})");
            self.problem(position_loc, field, message, "positions count residues from 1");
            return None;
        }
        if !seen.insert(position as usize) {
            self.problem(position_loc, field, format!("position {position} is modified twice"), "keep one");
            return None;
        }
        Some(Modification { position: position as usize, ccd })
    }

    /// The standard parent of a modified residue (`_chem_comp.mon_nstd_parent_comp_id`), when
    /// a CCD is given and names one.
    pub fn ccd_parent(&self, code: &str) -> Option<String> {
        [self.ccd, self.user_ccd.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|c| c.get(code))
            .and_then(|c| c.parent.clone())
    }

    /// A copy count (Protenix `count`), at least 1.
    pub fn count(&mut self, count: i64, loc: Loc, field: &str) -> usize {
        if count < 1 {
            self.problem(loc, field, format!("count {count} is not a positive number of copies"), "");
            return 0;
        }
        count as usize
    }

    /// Checks that a SMILES string parses (purr's reader and graph builder).
    pub fn smiles(&mut self, smiles: &str, loc: Loc, field: &str) -> String {
        let mut builder = purr::graph::Builder::new();
        let problem = match purr::read::read(smiles, &mut builder, None) {
            Ok(()) => {
                builder.build().err().map(|e| format!("SMILES {smiles:?} has a bad ring closure or bond ({e:?})"))
            }
            Err(purr::read::Error::EndOfLine) => Some(format!("SMILES {smiles:?} ends early")),
            Err(purr::read::Error::Character(i)) => Some(format!(
                "SMILES {smiles:?} does not parse at character {} ({:?})",
                i + 1,
                smiles[i..].chars().next().unwrap_or(' ')
            )),
        };
        if let Some(message) = problem {
            self.problem(loc, field, message, "");
        }
        smiles.to_owned()
    }

    /// A path from the input, relative to the input's directory.
    pub fn resolve(&self, path: &str) -> PathBuf {
        self.base.join(path)
    }

    /// Reads a file the input names; a problem (and `None`) when it cannot.
    pub fn read_file(&mut self, path: &Path, loc: Loc, field: &str) -> Option<Vec<u8>> {
        match std::fs::read(path) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.problem(
                    loc,
                    field,
                    format!("cannot read {}: {e}", path.display()),
                    "paths are relative to the input file",
                );
                None
            }
        }
    }

    /// Checks an MSA: it parses, and its first row is the chain's sequence.
    pub fn msa(&mut self, source: &TextSource, kind: PolymerKind, sequence: &str, loc: Loc, field: &str) {
        let (bytes, origin) = match source {
            TextSource::Inline(text) if text.is_empty() => return,
            TextSource::Inline(text) => (text.as_bytes().to_vec(), format!("{}: {field}", self.file)),
            TextSource::File(path) if path.extension().is_some_and(|e| e == "csv") => {
                let fix = "give an A3M file (pairing by key across chains is not read yet)";
                self.problem(loc, field, "CSV alignments are not supported", fix);
                return;
            }
            TextSource::File(path) => match self.read_file(path, loc, field) {
                Some(bytes) => (bytes, path.display().to_string()),
                None => return,
            },
        };
        match Msa::parse(&bytes, &origin, kind.alphabet()) {
            Err(e) => self.problem(loc, field, format!("not a valid alignment: {e}"), ""),
            Ok(msa) => {
                let query = msa.letters(0);
                let expected = Msa::single_sequence("", sequence, kind.alphabet()).letters(0);
                if query != expected {
                    let at = query
                        .chars()
                        .zip(expected.chars())
                        .position(|(a, b)| a != b)
                        .unwrap_or(query.len().min(expected.len()));
                    let message = format!(
                        "the alignment's first row must be the chain's sequence: they differ at position {} (row: {} residues, sequence: {})",
                        at + 1,
                        query.len(),
                        expected.len()
                    );
                    self.problem(loc, field, message, "put the query first, exactly as the sequence");
                }
            }
        }
    }

    /// Reads a user CCD (mmCIF text) so its codes count as known.
    pub fn user_ccd(&mut self, source: &TextSource, loc: Loc, field: &str) {
        let (bytes, label) = match source {
            TextSource::Inline(text) => (text.as_bytes().to_vec(), PathBuf::from(format!("{}: {field}", self.file))),
            TextSource::File(path) => match self.read_file(path, loc, field) {
                Some(bytes) => (bytes, path.clone()),
                None => return,
            },
        };
        match CifFile::from_bytes(bytes, &label).and_then(|cif| Ccd::from_cif(&cif)) {
            Ok(ccd) => self.user_ccd = Some(ccd),
            Err(e) => self.problem(loc, field, format!("not a valid CCD mmCIF: {e}"), ""),
        }
    }

    /// Checks one bonded atom against the entities pushed so far. SMILES ligands have no atom
    /// names (AF3 refuses bonds to them); Protenix numbers their atoms, so `smiles_ok` lets
    /// those through unchecked.
    pub fn bond_atom(
        &mut self,
        chain: &str,
        residue: i64,
        atom: &str,
        loc: Loc,
        field: &str,
        smiles_ok: bool,
    ) -> Option<AtomRef> {
        let Some(&entity) = self.chain_entity.get(chain) else {
            let mut known: Vec<&str> = self.chain_entity.keys().map(String::as_str).collect();
            known.sort_unstable();
            self.problem(loc, field, format!("no chain {chain:?} (chains: {})", known.join(", ")), "");
            return None;
        };
        let component = match &self.entities[entity].molecule {
            Molecule::Polymer(p) => {
                let len = p.sequence.len();
                if residue < 1 || residue as u64 > len as u64 {
                    self.problem(loc, field, format!("residue {residue} is outside chain {chain} (1 to {len})"), "");
                    return None;
                }
                let i = residue as usize;
                let modified = p.modifications.iter().find(|m| m.position == i).map(|m| m.ccd.clone());
                modified.unwrap_or_else(|| standard_residue(p.kind, p.sequence.as_bytes()[i - 1]).to_owned())
            }
            Molecule::Ligand(Ligand::Ccd(codes)) => {
                if residue < 1 || residue as u64 > codes.len() as u64 {
                    let message = format!("residue {residue} is outside ligand {chain} ({} components)", codes.len());
                    self.problem(loc, field, message, "");
                    return None;
                }
                codes[residue as usize - 1].clone()
            }
            Molecule::Ligand(Ligand::Smiles(_)) if smiles_ok => String::new(),
            Molecule::Ligand(Ligand::Smiles(_)) => {
                let fix = "define the ligand in a user CCD to name its atoms";
                self.problem(
                    loc,
                    field,
                    format!("chain {chain} is a SMILES ligand: its atoms have no names to bond"),
                    fix,
                );
                return None;
            }
        };
        let known = [self.ccd, self.user_ccd.as_ref()].into_iter().flatten().find_map(|c| c.get(&component));
        if let Some(comp) = known
            && !comp.atoms.iter().any(|a| a.name == atom)
        {
            let names: Vec<&str> = comp.atoms.iter().map(|a| a.name.as_str()).collect();
            self.problem(loc, field, format!("{component} has no atom {atom:?} (it has {})", names.join(" ")), "");
            return None;
        }
        Some(AtomRef { chain: chain.to_owned(), residue: residue.max(1) as usize, atom: atom.to_owned() })
    }

    pub fn finish(
        mut self,
        name: String,
        format: InputFormat,
        seeds: Vec<u64>,
        bonds: Vec<Bond>,
        user_ccd: Option<TextSource>,
    ) -> Result<InferenceInput, InputError> {
        if self.entities.is_empty() && self.problems.is_empty() {
            self.problem(None, "sequences", "no entities", "list at least one chain or ligand");
        }
        if !self.problems.is_empty() {
            // In file order; problems without a line (whole-document ones) last.
            self.problems.sort_by_key(|p| (p.line.unwrap_or(u64::MAX), p.column));
            return Err(InputError::Invalid(self.problems));
        }
        Ok(InferenceInput { name, format, seeds, entities: self.entities, bonds, user_ccd })
    }
}

/// The CCD code of a standard residue letter (X and N: the unknown residues).
fn standard_residue(kind: PolymerKind, letter: u8) -> &'static str {
    const PROTEIN: [&str; 21] = [
        "ALA", "CYS", "ASP", "GLU", "PHE", "GLY", "HIS", "ILE", "LYS", "LEU", "MET", "ASN", "PRO", "GLN", "ARG", "SER",
        "THR", "VAL", "TRP", "TYR", "UNK",
    ];
    let i = kind.letters().bytes().position(|b| b == letter).unwrap_or(kind.letters().len() - 1);
    match kind {
        PolymerKind::Protein => PROTEIN[i],
        PolymerKind::Rna => ["A", "C", "G", "U", "N"][i],
        PolymerKind::Dna => ["DA", "DC", "DG", "DT", "DN"][i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_residues_follow_the_letters() {
        let codes: Vec<&str> =
            b"ACDEFGHIKLMNPQRSTVWYX".iter().map(|&b| standard_residue(PolymerKind::Protein, b)).collect();
        assert_eq!(
            codes.join(" "),
            "ALA CYS ASP GLU PHE GLY HIS ILE LYS LEU MET ASN PRO GLN ARG SER THR VAL TRP TYR UNK"
        );
        assert_eq!(standard_residue(PolymerKind::Dna, b'T'), "DT");
        assert_eq!(standard_residue(PolymerKind::Rna, b'N'), "N");
    }

    #[test]
    fn auto_ids_skip_reserved_and_follow_server_order() {
        let mut b = Builder::new("x", Path::new("."), None);
        let reserved: HashSet<String> = ["B".to_owned()].into();
        assert_eq!(b.auto_chain_ids(2, &reserved, None, "f"), ["A", "C"]);
        let many = b.auto_chain_ids(26, &reserved, None, "f");
        assert_eq!(&many[22..], ["Z", "AA", "BA", "CA"]);
    }
}
