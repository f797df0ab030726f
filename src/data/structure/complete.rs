//! From what a file observed to what a model sees: every residue of each polymer sequence, the
//! atoms of every residue as its CCD component lists them, in CCD order, with a resolved mask.
//! AF3 supplement §2.1 and §2.5.4; the steps follow Protenix's `get_bioassembly` pipeline
//! (`protenix/data/core/parser.py`, bytedance/Protenix 3248f8e) with these documented choices:
//!
//! - **Unresolved residues and atoms** are added from `_entity_poly_seq` and the CCD with zero
//!   coordinates and `resolved = false` (Protenix `add_missing_atoms_and_residues`). Ligands get
//!   only the atoms observed in at least one copy of the same component in the entry (Protenix
//!   `remove_ligand_absent_atoms`). Observed atoms whose names are not in the component are
//!   dropped (AF3 §2.5.4).
//! - **Leaving atoms** (`pdbx_leaving_atom_flag`) are removed where their central atom forms an
//!   inter-residue bond: the polymer link to the next residue (so OXT stays only on C-terminal
//!   residues and OP3 only on 5′ ends) and `_struct_conn` bonds. With k bonds and more than k
//!   leaving groups, Protenix removes k groups at random, unresolved ones first; helico removes
//!   the unresolved ones first, then in CCD order, so the result is deterministic. Protenix's
//!   guess at leaving atoms the CCD does not flag (`find_non_ccd_leaving_atoms`) is not done.
//! - **MSE → MET** (SE → SD, Se → S) and **arginine naming** (NH1 closer to CD than NH2), AF3 §2.1.
//! - **Crystallization aids** (AF3 §2.5.4's list) are dropped from non-polymer chains of
//!   crystallographic entries; residues whose component has no atom of known element (UNX, UNL)
//!   are dropped.
//! - **Bonds**: polymer links between consecutive residues (C–N for peptides, O3′–P for
//!   nucleic acids), `_struct_conn` bonds no longer than 2.4 Å when both atoms are resolved
//!   (AF3 §2.8 `token_bonds`; Protenix `get_structure`), and every intra-residue CCD bond.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use crate::data::ccd::{Ccd, Component};

use super::error::{Result, StructureError};
use super::{
    Atom, AtomName, Atoms, Bond, BondKind, Chain, Element, EntityKind, MoleculeType, ResName, Residue, Structure,
};

/// What [`Structure::complete`] changed, for preprocessing logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Completion {
    /// Polymer residues of the sequence the file does not observe, added unresolved.
    pub residues_added: usize,
    /// Component atoms the file does not observe, added unresolved.
    pub atoms_added: usize,
    /// Observed atoms whose names are not in their component.
    pub unknown_atoms_dropped: usize,
    /// Leaving atoms removed at inter-residue bonds (observed or added).
    pub leaving_atoms_removed: usize,
    /// Ligand residues dropped as crystallization aids.
    pub crystallization_aids_dropped: usize,
    /// Residues dropped because their component has no atom of known element (UNX, UNL).
    pub unknown_residues_dropped: usize,
    /// `_struct_conn` bonds dropped for being longer than [`MAX_BOND_LENGTH`].
    pub long_bonds_dropped: usize,
}

/// AF3 supplement §2.5.4: ligands removed from crystallographic entries (Protenix
/// `CRYSTALLIZATION_AIDS`).
pub const CRYSTALLIZATION_AIDS: [&str; 16] =
    ["SO4", "GOL", "EDO", "PO4", "ACT", "PEG", "DMS", "TRS", "PGE", "PG4", "FMT", "EPE", "MPD", "MES", "CD", "IOD"];

/// `_exptl.method` values for which crystallization aids are removed (Protenix
/// `CRYSTALLIZATION_METHODS`).
pub const CRYSTALLIZATION_METHODS: [&str; 5] = [
    "X-RAY DIFFRACTION",
    "NEUTRON DIFFRACTION",
    "ELECTRON CRYSTALLOGRAPHY",
    "POWDER CRYSTALLOGRAPHY",
    "FIBER DIFFRACTION",
];

/// Å. AF3 supplement §2.8 (`token_bonds`: "bonds less than 2.4 Å during training").
pub const MAX_BOND_LENGTH: f32 = 2.4;

/// One residue of the output before its atoms are chosen.
struct Planned {
    /// The observed residue it comes from; `None` for a sequence position the file lacks.
    observed: Option<usize>,
    residue: Residue,
}

/// What the completion needs from one CCD component, computed once per component.
struct Template<'c> {
    component: &'c Component,
    /// Indices into `component.atoms` of the atoms a model sees: not hydrogen, known element.
    heavy: Vec<usize>,
    elements: Vec<Element>,
    by_name: HashMap<AtomName, usize>,
    /// Central atom → its groups of leaving atoms; `None` when a leaving group also reaches a
    /// non-leaving atom (the flags are inconsistent and Protenix leaves the residue as it is).
    leaving: Option<HashMap<usize, Vec<Vec<usize>>>>,
    molecule: MoleculeType,
}

impl Structure {
    /// The structure a model sees (see the module doc); the CCD must know every component.
    pub fn complete(&self, ccd: &Ccd) -> Result<(Structure, Completion)> {
        let mut report = Completion::default();
        let planned = self.plan(&mut report);
        let mut templates: HashMap<ResName, Template<'_>> = HashMap::new();
        for p in &planned {
            if let Entry::Vacant(slot) = templates.entry(p.residue.name) {
                let component = ccd.get(p.residue.name.as_str()).ok_or_else(|| StructureError::UnknownComponent {
                    path: self.path.clone(),
                    structure: self.id.clone(),
                    place: match p.observed {
                        Some(r) => self.describe_residue(r),
                        None => format!(
                            "chain {} residue {} (unobserved, from _entity_poly_seq)",
                            self.chains[p.residue.chain].label_asym_id,
                            p.residue.label_seq_id.unwrap_or(0)
                        ),
                    },
                    comp_id: p.residue.name.to_string(),
                })?;
                slot.insert(Template::new(component));
            }
        }
        let ligand_atoms = self.observed_ligand_atoms(&planned);

        // Atom slots per planned residue: component atom index and the observed atom, if any.
        let mut slots: Vec<Vec<(usize, Option<usize>)>> = Vec::with_capacity(planned.len());
        for p in &planned {
            let t = &templates[&p.residue.name];
            let observed: HashMap<AtomName, usize> = match p.observed {
                Some(r) => {
                    self.residues[r].atoms.clone().rev().map(|i| (renamed_atom(p, self.atoms.name[i]), i)).collect()
                }
                None => HashMap::new(),
            };
            let is_ligand = !matches!(self.entities[self.chains[p.residue.chain].entity].kind, EntityKind::Polymer(_));
            let mut residue_slots = Vec::with_capacity(t.heavy.len());
            for &a in &t.heavy {
                let name = atom_name(&t.component.atoms[a].name);
                if is_ligand && !ligand_atoms.get(&p.residue.name).is_some_and(|s| s.contains(&name)) {
                    continue;
                }
                residue_slots.push((a, observed.get(&name).copied()));
            }
            if let Some(r) = p.observed {
                let known: HashSet<AtomName> = t.heavy.iter().map(|&a| atom_name(&t.component.atoms[a].name)).collect();
                report.unknown_atoms_dropped += self.residues[r]
                    .atoms
                    .clone()
                    .filter(|&i| !known.contains(&renamed_atom(p, self.atoms.name[i])))
                    .count();
            }
            slots.push(residue_slots);
        }

        let links = self.polymer_links(&planned, &templates);
        let conn = self.struct_conn_slots(&planned, &slots);
        let mut inter: HashMap<(usize, usize), usize> = HashMap::new();
        for &(p, a, q, b) in links.iter().chain(conn.iter().map(|(x, _)| x)) {
            *inter.entry((p, a)).or_default() += 1;
            *inter.entry((q, b)).or_default() += 1;
        }
        for (p, residue_slots) in slots.iter_mut().enumerate() {
            let t = &templates[&planned[p].residue.name];
            let removed = leaving_atoms(t, residue_slots, |a| inter.get(&(p, a)).copied().unwrap_or(0));
            let before = residue_slots.len();
            residue_slots.retain(|(a, _)| !removed.contains(a));
            report.leaving_atoms_removed += before - residue_slots.len();
        }

        let (out, new_atom) = self.emit(&planned, &slots, &templates, &mut report);
        let mut bonds = Vec::new();
        for &(p, a, q, b) in &links {
            if let (Some(&i), Some(&j)) = (new_atom.get(&(p, a)), new_atom.get(&(q, b))) {
                bonds.push(Bond { atoms: [i.min(j), i.max(j)], kind: BondKind::PolymerLink });
            }
        }
        for &((p, a, q, b), kind) in &conn {
            let (Some(&i), Some(&j)) = (new_atom.get(&(p, a)), new_atom.get(&(q, b))) else { continue };
            if out.atoms.resolved[i]
                && out.atoms.resolved[j]
                && distance(out.atoms.coords[i], out.atoms.coords[j]) > MAX_BOND_LENGTH
            {
                report.long_bonds_dropped += 1;
                continue;
            }
            bonds.push(Bond { atoms: [i.min(j), i.max(j)], kind });
        }
        for (p, planned_residue) in planned.iter().enumerate() {
            for bond in &templates[&planned_residue.residue.name].component.bonds {
                if let (Some(&i), Some(&j)) = (new_atom.get(&(p, bond.atoms[0])), new_atom.get(&(p, bond.atoms[1]))) {
                    bonds.push(Bond { atoms: [i.min(j), i.max(j)], kind: BondKind::Intra });
                }
            }
        }
        bonds.sort_unstable();
        bonds.dedup_by_key(|b| b.atoms);
        Ok((Structure { bonds, ..out }, report))
    }

    /// The residues of the output, chain by chain: full sequences for polymer chains.
    fn plan(&self, report: &mut Completion) -> Vec<Planned> {
        let crystallographic = self.metadata.methods.iter().any(|m| CRYSTALLIZATION_METHODS.contains(&m.as_str()));
        let mut planned = Vec::with_capacity(self.residues.len());
        for (c, chain) in self.chains.iter().enumerate() {
            let entity = &self.entities[chain.entity];
            let observed: Vec<usize> = chain.residues.clone().collect();
            let is_polymer = matches!(entity.kind, EntityKind::Polymer(_));
            if is_polymer && !entity.sequence.is_empty() {
                let mut at_position: HashMap<i32, usize> = HashMap::new();
                for &r in &observed {
                    if let Some(seq) = self.residues[r].label_seq_id {
                        at_position.entry(seq).or_insert(r);
                    }
                }
                for (i, name) in entity.sequence.iter().enumerate() {
                    let position = i as i32 + 1;
                    match at_position.get(&position) {
                        Some(&r) => planned.push(self.planned_from(r, c)),
                        None => {
                            report.residues_added += 1;
                            planned.push(Planned {
                                observed: None,
                                residue: Residue {
                                    name: mse_to_met(*name),
                                    label_seq_id: Some(position),
                                    auth_seq_id: None,
                                    ins_code: None,
                                    hetero: false,
                                    molecule: entity.kind.molecule_type(name.as_str()),
                                    chain: c,
                                    atoms: 0..0,
                                },
                            });
                        }
                    }
                }
                // Residues the sequence does not place (no label_seq_id, out of range, second
                // residue at one position) are kept after it rather than lost.
                for &r in &observed {
                    let placed = self.residues[r].label_seq_id.and_then(|s| at_position.get(&s)) == Some(&r)
                        && self.residues[r].label_seq_id.is_some_and(|s| s >= 1 && s as usize <= entity.sequence.len());
                    if !placed {
                        planned.push(self.planned_from(r, c));
                    }
                }
            } else {
                for r in observed {
                    if crystallographic && !is_polymer && CRYSTALLIZATION_AIDS.contains(&self.residues[r].name.as_str())
                    {
                        report.crystallization_aids_dropped += 1;
                        continue;
                    }
                    planned.push(self.planned_from(r, c));
                }
            }
        }
        planned
    }

    fn planned_from(&self, r: usize, chain: usize) -> Planned {
        let residue = &self.residues[r];
        Planned { observed: Some(r), residue: Residue { name: mse_to_met(residue.name), chain, ..residue.clone() } }
    }

    /// Atom names observed in at least one copy of each ligand component.
    fn observed_ligand_atoms(&self, planned: &[Planned]) -> HashMap<ResName, HashSet<AtomName>> {
        let mut out: HashMap<ResName, HashSet<AtomName>> = HashMap::new();
        for p in planned {
            let Some(r) = p.observed else { continue };
            let set = out.entry(p.residue.name).or_default();
            set.extend(self.residues[r].atoms.clone().map(|i| renamed_atom(p, self.atoms.name[i])));
        }
        out
    }

    /// Backbone links (planned residue, component atom, next residue, component atom) between
    /// consecutive residues of polymer chains whose components both link that way.
    fn polymer_links(
        &self,
        planned: &[Planned],
        templates: &HashMap<ResName, Template<'_>>,
    ) -> Vec<(usize, usize, usize, usize)> {
        let mut links = Vec::new();
        for p in 1..planned.len() {
            let (prev, next) = (&planned[p - 1].residue, &planned[p].residue);
            if prev.chain != next.chain
                || !matches!(self.entities[self.chains[prev.chain].entity].kind, EntityKind::Polymer(_))
            {
                continue;
            }
            let (tp, tn) = (&templates[&prev.name], &templates[&next.name]);
            let names = match (tp.molecule, tn.molecule) {
                (MoleculeType::Protein, MoleculeType::Protein) => ("C", "N"),
                (MoleculeType::Rna | MoleculeType::Dna, MoleculeType::Rna | MoleculeType::Dna) => ("O3'", "P"),
                _ => continue,
            };
            let (Some(a), Some(b)) = (AtomName::new(names.0), AtomName::new(names.1)) else { continue };
            if let (Some(&i), Some(&j)) = (tp.by_name.get(&a), tn.by_name.get(&b)) {
                links.push((p - 1, i, p, j));
            }
        }
        links
    }

    /// `_struct_conn` bonds as (planned residue, component atom) pairs, between atoms that have a slot.
    fn struct_conn_slots(
        &self,
        planned: &[Planned],
        slots: &[Vec<(usize, Option<usize>)>],
    ) -> Vec<((usize, usize, usize, usize), BondKind)> {
        let mut slot_of_atom: HashMap<usize, (usize, usize)> = HashMap::new();
        for (p, residue_slots) in slots.iter().enumerate() {
            if planned[p].observed.is_none() {
                continue;
            }
            for &(a, observed) in residue_slots {
                if let Some(i) = observed {
                    slot_of_atom.insert(i, (p, a));
                }
            }
        }
        // Polymer links and CCD bonds are derived again, so completing twice changes nothing.
        self.bonds
            .iter()
            .filter(|bond| !matches!(bond.kind, BondKind::PolymerLink | BondKind::Intra))
            .filter_map(|bond| {
                let (p, a) = *slot_of_atom.get(&bond.atoms[0])?;
                let (q, b) = *slot_of_atom.get(&bond.atoms[1])?;
                Some(((p, a, q, b), bond.kind))
            })
            .collect()
    }

    /// Builds chains, residues and atoms; returns them with (planned residue, component atom) →
    /// new atom index.
    fn emit(
        &self,
        planned: &[Planned],
        slots: &[Vec<(usize, Option<usize>)>],
        templates: &HashMap<ResName, Template<'_>>,
        report: &mut Completion,
    ) -> (Structure, HashMap<(usize, usize), usize>) {
        let mut out = self.empty_like();
        let mut new_atom = HashMap::new();
        let mut chain_map: HashMap<usize, usize> = HashMap::new();
        for (p, plan) in planned.iter().enumerate() {
            let t = &templates[&plan.residue.name];
            if slots[p].is_empty() {
                report.unknown_residues_dropped += 1;
                continue;
            }
            let chain = *chain_map.entry(plan.residue.chain).or_insert_with(|| {
                let old: &Chain = &self.chains[plan.residue.chain];
                out.chains.push(Chain { residues: out.residues.len()..out.residues.len(), ..old.clone() });
                out.chains.len() - 1
            });
            let start = out.atoms.len();
            for &(a, observed) in &slots[p] {
                let ccd_atom = &t.component.atoms[a];
                let atom = match observed {
                    Some(i) => Atom { name: atom_name(&ccd_atom.name), element: t.elements[a], ..self.atoms.get(i) },
                    None => {
                        report.atoms_added += 1;
                        Atom {
                            name: atom_name(&ccd_atom.name),
                            element: t.elements[a],
                            coord: [0.0; 3],
                            occupancy: 0.0,
                            b_factor: 0.0,
                            charge: i8::try_from(ccd_atom.charge).unwrap_or(0),
                            resolved: false,
                        }
                    }
                };
                new_atom.insert((p, a), out.atoms.len());
                out.atoms.push(atom);
            }
            let is_polymer =
                matches!(self.entities[self.chains[plan.residue.chain].entity].kind, EntityKind::Polymer(_));
            let molecule = if is_polymer { t.molecule } else { MoleculeType::Ligand };
            out.residues.push(Residue { molecule, chain, atoms: start..out.atoms.len(), ..plan.residue.clone() });
            out.chains[chain].residues.end = out.residues.len();
            if plan.residue.name.as_str() == "ARG" {
                let end = out.atoms.len();
                fix_arginine(&mut out.atoms, start..end);
            }
        }
        (out, new_atom)
    }
}

impl<'c> Template<'c> {
    fn new(component: &'c Component) -> Template<'c> {
        let elements: Vec<Element> =
            component.atoms.iter().map(|a| Element::from_symbol(&a.element).unwrap_or(Element::UNKNOWN)).collect();
        let heavy: Vec<usize> = (0..component.atoms.len())
            .filter(|&a| !elements[a].is_hydrogen() && elements[a] != Element::UNKNOWN)
            .collect();
        let by_name = component.atoms.iter().enumerate().map(|(i, a)| (atom_name(&a.name), i)).collect();
        Template {
            leaving: leaving_groups(component, &elements),
            molecule: molecule_type(&component.comp_type),
            component,
            heavy,
            elements,
            by_name,
        }
    }
}

/// Protenix `ccd.get_mol_type`: `_chem_comp.type` containing PEPTIDE (but not PEPTIDE-LIKE) is
/// protein, DNA or RNA nucleic acid, anything else a ligand.
pub fn molecule_type(comp_type: &str) -> MoleculeType {
    let upper = comp_type.to_ascii_uppercase();
    if upper.contains("PEPTIDE") && upper != "PEPTIDE-LIKE" {
        MoleculeType::Protein
    } else if upper.contains("DNA") {
        MoleculeType::Dna
    } else if upper.contains("RNA") {
        MoleculeType::Rna
    } else {
        MoleculeType::Ligand
    }
}

/// Groups of leaving atoms by the non-leaving atom they hang from, over heavy atoms only
/// (Protenix `_map_central_to_leaving_groups` on the component without hydrogens: the CCD flags
/// OP3 but not its HOP3, so with hydrogens the group would look inconsistent).
fn leaving_groups(component: &Component, elements: &[Element]) -> Option<HashMap<usize, Vec<Vec<usize>>>> {
    let n = component.atoms.len();
    let mut neighbours = vec![Vec::new(); n];
    for bond in &component.bonds {
        let [a, b] = bond.atoms;
        if !elements[a].is_hydrogen() && !elements[b].is_hydrogen() {
            neighbours[a].push(b);
            neighbours[b].push(a);
        }
    }
    let mut out: HashMap<usize, Vec<Vec<usize>>> = HashMap::new();
    for centre in (0..n).filter(|&c| !component.atoms[c].leaving && !elements[c].is_hydrogen()) {
        for &start in neighbours[centre].iter().filter(|&&l| component.atoms[l].leaving) {
            let mut group = vec![start];
            let mut seen = HashSet::from([centre, start]);
            let mut k = 0;
            while k < group.len() {
                for &next in &neighbours[group[k]] {
                    if seen.insert(next) {
                        if !component.atoms[next].leaving {
                            return None;
                        }
                        group.push(next);
                    }
                }
                k += 1;
            }
            group.sort_unstable();
            let groups = out.entry(centre).or_default();
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
    }
    Some(out)
}

/// Component atoms to remove from one residue, given how many inter-residue bonds each
/// component atom forms: unresolved groups first, then in CCD order.
fn leaving_atoms(
    t: &Template<'_>,
    slots: &[(usize, Option<usize>)],
    bonds_of: impl Fn(usize) -> usize,
) -> HashSet<usize> {
    let mut removed = HashSet::new();
    let Some(leaving) = &t.leaving else { return removed };
    let resolved: HashSet<usize> = slots.iter().filter(|(_, o)| o.is_some()).map(|(a, _)| *a).collect();
    for &(centre, _) in slots {
        let k = bonds_of(centre);
        let Some(groups) = leaving.get(&centre).filter(|_| k > 0) else { continue };
        let mut ordered: Vec<&Vec<usize>> = groups.iter().collect();
        ordered.sort_by_key(|g| g.iter().any(|a| resolved.contains(a)));
        removed.extend(ordered.into_iter().take(k).flatten().copied());
    }
    removed
}

/// AF3 supplement §2.1: selenomethionine is modelled as methionine.
fn mse_to_met(name: ResName) -> ResName {
    if name.as_str() == "MSE" { ResName::new("MET").expect("MET is a valid name") } else { name }
}

/// An observed atom's name as its (possibly renamed) residue's component calls it.
fn renamed_atom(p: &Planned, name: AtomName) -> AtomName {
    if p.residue.name.as_str() == "MET" && name.as_str() == "SE" {
        AtomName::new("SD").expect("SD is a valid name")
    } else {
        name
    }
}

/// CCD atom ids are at most 4 printable characters (checked over the whole CCD); anything else
/// would never match an observed atom, so it maps to an impossible name.
fn atom_name(name: &str) -> AtomName {
    AtomName::new(name).unwrap_or_default()
}

/// AF3 supplement §2.1: "Arginine naming ambiguities are fixed (ensuring NH1 is always closer
/// to CD than NH2)".
fn fix_arginine(atoms: &mut Atoms, range: std::ops::Range<usize>) {
    let find = |atoms: &Atoms, name: &str| range.clone().find(|&i| atoms.name[i].as_str() == name && atoms.resolved[i]);
    let (Some(cd), Some(nh1), Some(nh2)) = (find(atoms, "CD"), find(atoms, "NH1"), find(atoms, "NH2")) else { return };
    if distance(atoms.coords[cd], atoms.coords[nh1]) > distance(atoms.coords[cd], atoms.coords[nh2]) {
        atoms.coords.swap(nh1, nh2);
        atoms.occupancy.swap(nh1, nh2);
        atoms.b_factor.swap(nh1, nh2);
    }
}

fn distance(a: [f32; 3], b: [f32; 3]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}
