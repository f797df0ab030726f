"""Biological assemblies as biotite builds them (pdbx.get_assembly, first model,
altloc="occupancy", label fields), without hydrogens and waters: the oracle for
helico's Structure::assembly.

usage: assembly_biotite.py FILE...  ->  {file: {assembly_id: [[atom_name, x, y, z], ...]}}
"""
import json
import sys

import biotite.structure.io.pdbx as pdbx
import numpy as np

out = {}
for path in sys.argv[1:]:
    cif = pdbx.CIFFile.read(path)
    out[path] = {}
    for assembly_id in pdbx.list_assemblies(cif):
        atoms = pdbx.get_assembly(cif, assembly_id=assembly_id, model=1, altloc="occupancy", use_author_fields=False)
        atoms = atoms[~np.isin(atoms.res_name, ["HOH", "DOD"]) & ~np.isin(atoms.element, ["H", "D"])]
        out[path][assembly_id] = [[str(n), *map(float, xyz)] for n, xyz in zip(atoms.atom_name, atoms.coord)]
json.dump(out, sys.stdout)
