"""The Chemical Component Dictionary as biotite's BinaryCIF reader sees it: the oracle for
helico's CCD loader.

usage:
  ccd_biotite.py dump components.bcif ID...
      -> {id: {"name", "type", "one_letter_code", "parent", "formal_charge",
               "atoms": [[name, element, charge, leaving, aromatic, [x, y, z] | null], ...],
               "bonds": [[atom_index_1, atom_index_2, order, aromatic], ...]}}
      element in periodic-table case; position = ideal coordinates if all three are present,
      else model coordinates if present, else null; flags as booleans (== "Y").
  ccd_biotite.py text components.bcif OUT.cif ID...
      writes the components as text CIF, one data block per component (the layout of the
      wwPDB's components.cif), and prints the ids written as JSON.
"""
import json
import sys

import numpy as np
from biotite.structure.io.pdbx import (
    BinaryCIFFile, CIFBlock, CIFCategory, CIFColumn, CIFData, CIFFile,
)


def rows_by_comp(category):
    comp = category["comp_id"].as_array()
    starts = np.flatnonzero(np.r_[True, comp[1:] != comp[:-1]])
    ends = np.r_[starts[1:], len(comp)]
    return {comp[s]: (s, e) for s, e in zip(starts, ends)}


def column(category, name):
    c = category[name]
    mask = c.mask.array if c.mask is not None else np.zeros(category.row_count, np.uint8)
    return c.data.array, mask


def dump(block, ids):
    cc, atoms, bonds = block["chem_comp"], block["chem_comp_atom"], block["chem_comp_bond"]
    cc_row = {v: i for i, v in enumerate(cc["id"].as_array())}
    atom_rows, bond_rows = rows_by_comp(atoms), rows_by_comp(bonds)
    cols = {n: column(cc, n) for n in ["name", "type", "one_letter_code", "mon_nstd_parent_comp_id", "pdbx_formal_charge"]}
    acols = {n: column(atoms, n) for n in [
        "atom_id", "type_symbol", "charge", "pdbx_leaving_atom_flag", "pdbx_aromatic_flag",
        "pdbx_model_Cartn_x_ideal", "pdbx_model_Cartn_y_ideal", "pdbx_model_Cartn_z_ideal",
        "model_Cartn_x", "model_Cartn_y", "model_Cartn_z"]}
    bcols = {n: column(bonds, n) for n in ["atom_id_1", "atom_id_2", "value_order", "pdbx_aromatic_flag"]}

    def value(cols, name, i):
        data, mask = cols[name]
        return None if mask[i] else data[i].item()

    def xyz(prefix, suffix, i):
        v = [value(acols, f"{prefix}{a}{suffix}", i) for a in "xyz"]
        return None if None in v else v

    out = {}
    for cid in ids:
        i = cc_row[cid]
        record = {
            "name": value(cols, "name", i),
            "type": value(cols, "type", i),
            "one_letter_code": value(cols, "one_letter_code", i),
            "parent": value(cols, "mon_nstd_parent_comp_id", i),
            "formal_charge": value(cols, "pdbx_formal_charge", i) or 0,
            "atoms": [],
            "bonds": [],
        }
        s, e = atom_rows.get(cid, (0, 0))
        names = []
        for r in range(s, e):
            names.append(value(acols, "atom_id", r))
            position = xyz("pdbx_model_Cartn_", "_ideal", r) or xyz("model_Cartn_", "", r)
            record["atoms"].append([
                names[-1],
                value(acols, "type_symbol", r).capitalize(),
                value(acols, "charge", r) or 0,
                value(acols, "pdbx_leaving_atom_flag", r) == "Y",
                value(acols, "pdbx_aromatic_flag", r) == "Y",
                position,
            ])
        s, e = bond_rows.get(cid, (0, 0))
        for r in range(s, e):
            record["bonds"].append([
                names.index(value(bcols, "atom_id_1", r)),
                names.index(value(bcols, "atom_id_2", r)),
                value(bcols, "value_order", r),
                value(bcols, "pdbx_aromatic_flag", r) == "Y",
            ])
        out[cid] = record
    return out


def text(block, ids, out_path):
    cc = block["chem_comp"]
    cc_row = {v: i for i, v in enumerate(cc["id"].as_array())}
    ranges = {"chem_comp_atom": rows_by_comp(block["chem_comp_atom"]),
              "chem_comp_bond": rows_by_comp(block["chem_comp_bond"])}
    decoded = {name: {c: column(block[name], c) for c in block[name].keys()}
               for name in ["chem_comp", "chem_comp_atom", "chem_comp_bond"]}
    blocks = {}
    for cid in ids:
        categories = {}
        for name, cols in decoded.items():
            s, e = (cc_row[cid], cc_row[cid] + 1) if name == "chem_comp" else ranges[name].get(cid, (0, 0))
            if e == s:
                continue
            categories[name] = CIFCategory({
                c: CIFColumn(CIFData(data[s:e].astype(str)), mask=CIFData(mask[s:e]))
                for c, (data, mask) in cols.items()
            })
        blocks[cid] = CIFBlock(categories)
    CIFFile(blocks).write(out_path)
    return list(ids)


mode, bcif = sys.argv[1], sys.argv[2]
block = BinaryCIFFile.read(bcif).block
if mode == "dump":
    json.dump(dump(block, sys.argv[3:]), sys.stdout)
elif mode == "text":
    json.dump(text(block, sys.argv[4:], sys.argv[3]), sys.stdout)
else:
    sys.exit(f"unknown mode {mode!r}: expected dump or text")
