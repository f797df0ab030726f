//! Biological assemblies: `_pdbx_struct_assembly_gen` says which operators of
//! `_pdbx_struct_oper_list` build which chains; [`Structure::assembly`] applies them. AF3 trains
//! on the first assembly (supplement §2.1); helico applies one only when asked
//! ([`super::Options::assembly`]), since the asymmetric unit is what the file observed.
//!
//! Operator expressions follow the PDBx dictionary and biotite's reading of them
//! (`biotite.structure.io.pdbx.convert._parse_operation_expression`): `1`, `1,2,5`, `1-60`,
//! and products of parenthesised groups, `(1-5)(6-10)`, where the right-most group applies
//! first. Copies are laid out operation by operation, each with the chains in file order.

use std::collections::HashMap;

use crate::data::cif::{Block, Column};

use super::error::{Result, StructureError};
use super::{Bond, Chain, Residue, Structure};

/// One `_pdbx_struct_assembly_gen` row.
#[derive(Debug, Clone, PartialEq)]
pub struct AssemblyGen {
    pub assembly_id: String,
    /// `oper_expression`, as written ("(1-60)").
    pub oper_expression: String,
    /// `asym_id_list`: the `label_asym_id`s the operators apply to.
    pub asym_ids: Vec<String>,
}

/// One `_pdbx_struct_oper_list` row: x' = R·x + t.
#[derive(Debug, Clone, PartialEq)]
pub struct Operator {
    pub id: String,
    pub rotation: [[f64; 3]; 3],
    pub translation: [f64; 3],
}

/// Reads the assembly categories; a file without them has no assemblies.
pub(super) fn read(block: &Block) -> Result<(Vec<AssemblyGen>, Vec<Operator>)> {
    let mut gens = Vec::new();
    if let Some(cat) = block.category("pdbx_struct_assembly_gen") {
        let (ids, exprs, asyms) =
            (cat.column("assembly_id")?, cat.column("oper_expression")?, cat.column("asym_id_list")?);
        for row in 0..cat.row_count() {
            gens.push(AssemblyGen {
                assembly_id: ids.as_str(row)?.unwrap_or_default().into_owned(),
                oper_expression: exprs.as_str(row)?.unwrap_or_default().into_owned(),
                asym_ids: asyms.as_str(row)?.unwrap_or_default().split(',').map(|a| a.trim().to_owned()).collect(),
            });
        }
    }
    let mut operators = Vec::new();
    if let Some(cat) = block.category("pdbx_struct_oper_list") {
        let ids = cat.column("id")?;
        let matrix: Vec<Column<'_>> = (1..=3)
            .flat_map(|i| (1..=3).map(move |j| format!("matrix[{i}][{j}]")))
            .map(|name| cat.column(&name))
            .collect::<std::result::Result<_, _>>()?;
        let vector: Vec<Column<'_>> =
            (1..=3).map(|i| cat.column(&format!("vector[{i}]"))).collect::<std::result::Result<_, _>>()?;
        for row in 0..cat.row_count() {
            let value = |col: &Column<'_>| -> Result<f64> {
                col.as_f64(row)?.ok_or_else(|| col.value_error(row, "a number", "null").into())
            };
            let mut rotation = [[0.0; 3]; 3];
            let mut translation = [0.0; 3];
            for i in 0..3 {
                for j in 0..3 {
                    rotation[i][j] = value(&matrix[i * 3 + j])?;
                }
                translation[i] = value(&vector[i])?;
            }
            operators.push(Operator { id: ids.as_str(row)?.unwrap_or_default().into_owned(), rotation, translation });
        }
    }
    Ok((gens, operators))
}

/// Expands an operator expression into operator-id sequences, applied right to left.
pub fn parse_expression(expression: &str) -> Option<Vec<Vec<String>>> {
    let mut steps: Vec<Vec<String>> = Vec::new();
    for group in expression.replace(')', "").split('(').filter(|g| !g.trim().is_empty()) {
        let mut ids = Vec::new();
        for item in group.split(',').map(str::trim) {
            match item.split_once('-') {
                Some((first, last)) => {
                    let (first, last): (u32, u32) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
                    if last < first {
                        return None;
                    }
                    ids.extend((first..=last).map(|i| i.to_string()));
                }
                None if !item.is_empty() => ids.push(item.to_owned()),
                None => return None,
            }
        }
        steps.push(ids);
    }
    if steps.is_empty() {
        return None;
    }
    let mut products: Vec<Vec<String>> = vec![Vec::new()];
    for step in steps {
        products =
            products.iter().flat_map(|p| step.iter().map(move |id| [p.clone(), vec![id.clone()]].concat())).collect();
    }
    Some(products)
}

impl Structure {
    /// The biological assembly `assembly_id`: every chain listed for each operation, transformed.
    /// Bonds between chains copied by the same operation are kept; unresolved atoms stay at zero.
    pub fn assembly(&self, assembly_id: &str) -> Result<Structure> {
        let error = |problem: String| StructureError::Assembly {
            path: self.path.clone(),
            structure: self.id.clone(),
            assembly: assembly_id.to_owned(),
            problem,
        };
        let gens: Vec<&AssemblyGen> = self.assemblies.iter().filter(|g| g.assembly_id == assembly_id).collect();
        if gens.is_empty() {
            let mut known: Vec<&str> = self.assemblies.iter().map(|g| g.assembly_id.as_str()).collect();
            known.dedup();
            return Err(error(format!(
                "not defined in _pdbx_struct_assembly_gen (defined: {})",
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            )));
        }
        let operators: HashMap<&str, &Operator> = self.operators.iter().map(|o| (o.id.as_str(), o)).collect();
        let mut out = self.empty_like();
        let mut new_index = vec![usize::MAX; self.atoms.len()];
        for g in gens {
            let operations = parse_expression(&g.oper_expression)
                .ok_or_else(|| error(format!("cannot read oper_expression {:?}", g.oper_expression)))?;
            for operation in operations {
                let mut steps = Vec::with_capacity(operation.len());
                for id in operation.iter().rev() {
                    steps.push(*operators.get(id.as_str()).ok_or_else(|| {
                        error(format!("operator {id:?} of {:?} is not in _pdbx_struct_oper_list", g.oper_expression))
                    })?);
                }
                let label = operation.join("x");
                new_index.fill(usize::MAX);
                for chain in self.chains.iter().filter(|c| g.asym_ids.contains(&c.label_asym_id)) {
                    self.copy_chain(chain, &steps, &label, &mut out, &mut new_index);
                }
                for bond in &self.bonds {
                    let [a, b] = bond.atoms.map(|i| new_index[i]);
                    if a != usize::MAX && b != usize::MAX {
                        out.bonds.push(Bond { atoms: [a.min(b), a.max(b)], kind: bond.kind });
                    }
                }
            }
        }
        Ok(out)
    }

    fn copy_chain(
        &self,
        chain: &Chain,
        steps: &[&Operator],
        label: &str,
        out: &mut Structure,
        new_index: &mut [usize],
    ) {
        let first_residue = out.residues.len();
        let chain_index = out.chains.len();
        for residue in &self.residues[chain.residues.clone()] {
            let start = out.atoms.len();
            for i in residue.atoms.clone() {
                let mut atom = self.atoms.get(i);
                if atom.resolved {
                    atom.coord = steps.iter().fold(atom.coord, |x, op| apply(op, x));
                }
                new_index[i] = out.atoms.len();
                out.atoms.push(atom);
            }
            out.residues.push(Residue { chain: chain_index, atoms: start..out.atoms.len(), ..residue.clone() });
        }
        out.chains.push(Chain {
            residues: first_residue..out.residues.len(),
            operator: Some(label.to_owned()),
            ..chain.clone()
        });
    }
}

fn apply(op: &Operator, x: [f32; 3]) -> [f32; 3] {
    let x = x.map(f64::from);
    [0, 1, 2].map(|i| {
        let r = op.rotation[i];
        (r[0] * x[0] + r[1] * x[1] + r[2] * x[2] + op.translation[i]) as f32
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&[&str]]) -> Vec<Vec<String>> {
        v.iter().map(|ops| ops.iter().map(|s| s.to_string()).collect()).collect()
    }

    #[test]
    fn operator_expressions() {
        assert_eq!(parse_expression("1"), Some(ids(&[&["1"]])));
        assert_eq!(parse_expression("1,2"), Some(ids(&[&["1"], &["2"]])));
        assert_eq!(parse_expression("(1-3)"), Some(ids(&[&["1"], &["2"], &["3"]])));
        assert_eq!(parse_expression("(X0)(1,2)"), Some(ids(&[&["X0", "1"], &["X0", "2"]])));
        assert_eq!(parse_expression("1-2,P"), Some(ids(&[&["1"], &["2"], &["P"]])));
        assert_eq!(parse_expression(""), None);
        assert_eq!(parse_expression("3-1"), None);
        assert_eq!(parse_expression("1,,2"), None);
    }
}
