"""What biotite reads from mmCIF files: the second oracle for helico's Structure::from_cif.
First model, altloc="occupancy" (biotite's filter_highest_occupancy_altloc), label fields;
hydrogens and waters removed afterwards, as helico does.

usage: structure_biotite.py FILE...  ->  {file: {"atoms": [[label_asym, auth_asym, label_seq | null,
    auth_seq, ins | null, comp, atom, element, x, y, z, occupancy], ...], "polymer_chains": n}}
"""
import json
import sys

import biotite.structure.io.pdbx as pdbx
import numpy as np


def maybe(value):
    return None if value in (".", "?", "") else value


out = {}
for path in sys.argv[1:]:
    cif = pdbx.CIFFile.read(path)
    atoms = pdbx.get_structure(
        cif, model=1, altloc="occupancy", use_author_fields=False,
        extra_fields=["auth_asym_id", "auth_seq_id", "label_seq_id", "pdbx_PDB_ins_code", "occupancy"],
    )
    keep = ~np.isin(atoms.res_name, ["HOH", "DOD"]) & ~np.isin(atoms.element, ["H", "D"])
    atoms = atoms[keep]
    rows = []
    for i in range(len(atoms)):
        seq = maybe(str(atoms.label_seq_id[i]))
        rows.append([
            str(atoms.chain_id[i]), str(atoms.auth_asym_id[i]), None if seq is None else int(seq),
            int(atoms.auth_seq_id[i]), maybe(str(atoms.pdbx_PDB_ins_code[i])), str(atoms.res_name[i]),
            str(atoms.atom_name[i]), str(atoms.element[i]),
            float(atoms.coord[i][0]), float(atoms.coord[i][1]), float(atoms.coord[i][2]), float(atoms.occupancy[i]),
        ])
    out[path] = {"atoms": rows}
json.dump(out, sys.stdout)
