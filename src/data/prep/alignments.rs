//! The alignment columns of the structure cache (format version 2): two blocks of the same
//! columns, `msa.*` for each entity's main alignment and `pair.*` for its pairing hits. Per
//! alignment, the entity index and row count; residue classes as u8, row-major ([M, N] each,
//! N the entity's sequence length); deletions sparse, as the u32 cell index within the
//! alignment and the exact u16 count of every non-zero cell, with per-alignment offsets (most
//! cells have none, so this is smaller than a dense u8 and loses nothing); each row's species
//! as an index into a table of mnemonics. The main block also holds the profile and the
//! deletion mean. Row names are not stored. Reading checks every class, cell index, species
//! id and length against the structure, so a damaged file is an error naming it.

use super::PrepError;
use super::columns::{Reader, Writer, index};
use crate::data::msa::{EntityMsa, Msa, N_CLASSES};
use crate::data::structure::Structure;

/// The column tags of one block of alignments.
struct MsaTags {
    entity: &'static str,
    rows: &'static str,
    classes: &'static str,
    deletion_at: &'static str,
    deletions: &'static str,
    deletion_ends: &'static str,
    species: &'static str,
    names: &'static str,
    name_ends: &'static str,
}

const MAIN: MsaTags = MsaTags {
    entity: "msa.entity",
    rows: "msa.rows",
    classes: "msa.cls",
    deletion_at: "msa.del.at",
    deletions: "msa.del",
    deletion_ends: "msa.del#",
    species: "msa.species",
    names: "msa.sp",
    name_ends: "msa.sp#",
};
const PAIRING: MsaTags = MsaTags {
    entity: "pair.entity",
    rows: "pair.rows",
    classes: "pair.cls",
    deletion_at: "pair.del.at",
    deletions: "pair.del",
    deletion_ends: "pair.del#",
    species: "pair.species",
    names: "pair.sp",
    name_ends: "pair.sp#",
};
/// A row without species.
const NO_SPECIES: u32 = u32::MAX;

pub(super) fn put_msas(w: &mut Writer, msas: &[EntityMsa]) {
    put_block(w, &MAIN, msas.iter().map(|m| (m.entity, &m.main)));
    put_block(w, &PAIRING, msas.iter().filter_map(|m| Some((m.entity, m.pairing.as_ref()?))));
    w.f32s("msa.profile", msas.iter().flat_map(|m| m.profile.iter().flatten().copied()));
    w.f32s("msa.del_mean", msas.iter().flat_map(|m| m.deletion_mean.iter().copied()));
}

fn put_block<'m>(w: &mut Writer, tags: &MsaTags, block: impl Iterator<Item = (usize, &'m Msa)> + Clone) {
    w.u32s(tags.entity, block.clone().map(|(e, _)| index(e)));
    w.u32s(tags.rows, block.clone().map(|(_, m)| index(m.depth())));
    w.bytes(tags.classes, block.clone().flat_map(|(_, m)| m.classes().iter().copied()).collect());
    let (mut at, mut counts, mut ends) = (Vec::new(), Vec::new(), vec![0u32]);
    for (_, msa) in block.clone() {
        for (cell, &d) in msa.deletions().iter().enumerate().filter(|(_, d)| **d > 0) {
            at.push(index(cell));
            counts.push(d);
        }
        ends.push(index(at.len()));
    }
    w.u32s(tags.deletion_at, at);
    w.bytes(tags.deletions, counts.iter().flat_map(|d| d.to_le_bytes()).collect());
    w.u32s(tags.deletion_ends, ends);
    let mut table: Vec<&str> =
        block.clone().flat_map(|(_, m)| m.species().iter().flatten().map(String::as_str)).collect();
    table.sort_unstable();
    table.dedup();
    let id =
        |s: &Option<String>| s.as_deref().map_or(NO_SPECIES, |s| index(table.binary_search(&s).expect("in the table")));
    w.u32s(tags.species, block.flat_map(|(_, m)| m.species().iter().map(id)));
    w.strs(tags.names, tags.name_ends, table.iter().copied());
}

/// The alignments of a cache file, each checked against its entity's sequence length.
pub(super) fn get_msas(r: &Reader<'_>, s: &Structure) -> Result<Vec<EntityMsa>, PrepError> {
    let main = get_block(r, &MAIN, s)?;
    let pairing = get_block(r, &PAIRING, s)?;
    let columns: usize = main.iter().map(|(_, m)| m.width()).sum();
    let profile = r.f32s("msa.profile", columns * N_CLASSES)?;
    let deletion_mean = r.f32s("msa.del_mean", columns)?;
    let (mut profiles, mut means) = (profile.chunks_exact(N_CLASSES), deletion_mean.into_iter());
    let mut out = Vec::with_capacity(main.len());
    for (entity, msa) in main {
        if out.iter().any(|m: &EntityMsa| m.entity == entity) {
            return Err(r.problem(format!("entity {entity}: two alignments")));
        }
        let width = msa.width();
        out.push(EntityMsa {
            entity,
            profile: profiles.by_ref().take(width).map(|p| p.try_into().expect("chunks of 32")).collect(),
            deletion_mean: means.by_ref().take(width).collect(),
            pairing: pairing.iter().find(|(e, _)| *e == entity).map(|(_, m)| m.clone()),
            main: msa,
        });
    }
    if let Some((entity, _)) = pairing.iter().find(|(e, _)| !out.iter().any(|m| m.entity == *e)) {
        return Err(r.problem(format!("entity {entity}: pairing hits without a main alignment")));
    }
    Ok(out)
}

fn get_block(r: &Reader<'_>, tags: &MsaTags, s: &Structure) -> Result<Vec<(usize, Msa)>, PrepError> {
    let entities = r.indices(tags.entity, r.column(tags.entity, 4, None)?.len() / 4, s.entities.len())?;
    let rows = r.u32s(tags.rows, Some(entities.len()))?;
    let sizes: Vec<usize> =
        entities.iter().zip(&rows).map(|(&e, &m)| m as usize * s.entities[e].sequence.len()).collect();
    let classes = r.u8s(tags.classes, sizes.iter().sum())?;
    if let Some(c) = classes.iter().find(|&&c| usize::from(c) >= N_CLASSES) {
        return Err(r.problem(format!("column {}: class {c}", tags.classes)));
    }
    let at = r.u32s(tags.deletion_at, None)?;
    let counts = r.column(tags.deletions, 2, Some(at.len()))?;
    let ends = r.u32s(tags.deletion_ends, Some(entities.len() + 1))?;
    let names = r.strs(tags.names, tags.name_ends, None)?;
    let total_rows: usize = rows.iter().map(|&m| m as usize).sum();
    let species_ids = r.u32s(tags.species, Some(total_rows))?;
    let (mut cell_start, mut row_start) = (0, 0);
    let mut out = Vec::with_capacity(entities.len());
    for (k, (&entity, &depth)) in entities.iter().zip(&rows).enumerate() {
        let (width, depth, size) = (s.entities[entity].sequence.len(), depth as usize, sizes[k]);
        let (a, b) = (ends[k] as usize, ends[k + 1] as usize);
        if a > b || b > at.len() {
            return Err(r.problem(format!("column {}: range {a}..{b}", tags.deletion_ends)));
        }
        let mut deletions = vec![0u16; size];
        for i in a..b {
            let cell = at[i] as usize;
            let slot = deletions
                .get_mut(cell)
                .ok_or_else(|| r.problem(format!("column {}: cell {cell}", tags.deletion_at)))?;
            *slot = u16::from_le_bytes([counts[2 * i], counts[2 * i + 1]]);
        }
        let species = species_ids[row_start..row_start + depth]
            .iter()
            .map(|&id| match id {
                NO_SPECIES => Ok(None),
                id => names.get(id as usize).cloned().map(Some).ok_or_else(|| r.problem(format!("species {id}"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cells = classes[cell_start..cell_start + size].to_vec();
        out.push((entity, Msa::from_parts(width, cells, deletions, species)));
        cell_start += size;
        row_start += depth;
    }
    Ok(out)
}
