"""Chain pairs in contact as biotite sees each file: the oracle for helico's AF3 §2.5.1
interfaces (chains whose heavy atoms lie closer than 5 Å). First model, altloc="occupancy"
(biotite's filter_highest_occupancy_altloc, helico's rule), label chain ids; hydrogens and
waters removed, and in crystallographic entries the AF3 §2.5.4 crystallization aids of
non-polymer chains, as helico's completion does.

usage: interfaces_biotite.py FILE...  ->  {file: [[label_asym_id_a, label_asym_id_b], ...]}
    (each pair sorted by chain order in the file, the list sorted the same way)
"""
import json
import sys

import biotite.structure as struc
import biotite.structure.io.pdbx as pdbx
import numpy as np

CUTOFF = 5.0
AIDS = ["SO4", "GOL", "EDO", "PO4", "ACT", "PEG", "DMS", "TRS", "PGE", "PG4", "FMT", "EPE", "MPD", "MES", "CD", "IOD"]
CRYSTALLOGRAPHIC = {
    "X-RAY DIFFRACTION", "NEUTRON DIFFRACTION", "ELECTRON CRYSTALLOGRAPHY", "POWDER CRYSTALLOGRAPHY",
    "FIBER DIFFRACTION",
}

out = {}
for path in sys.argv[1:]:
    cif = pdbx.CIFFile.read(path)
    block = cif.block
    atoms = pdbx.get_structure(cif, model=1, altloc="occupancy", use_author_fields=False,
                               extra_fields=["label_entity_id"])
    keep = ~np.isin(atoms.res_name, ["HOH", "DOD"]) & ~np.isin(atoms.element, ["H", "D"])
    methods = {m.upper() for m in block["exptl"]["method"].as_array(str)}
    if methods & CRYSTALLOGRAPHIC:
        entity = block["entity"]
        polymer = {i for i, t in zip(entity["id"].as_array(str), entity["type"].as_array(str)) if t == "polymer"}
        non_polymer = ~np.isin(atoms.label_entity_id.astype(str), list(polymer))
        keep &= ~(non_polymer & np.isin(atoms.res_name, AIDS))
    atoms = atoms[keep]
    order = list(dict.fromkeys(atoms.chain_id.tolist()))
    rank = {c: i for i, c in enumerate(order)}
    cells = struc.CellList(atoms, cell_size=CUTOFF)
    near = cells.get_atoms(atoms.coord, radius=CUTOFF)
    pairs = set()
    for i in range(len(atoms)):
        js = near[i][near[i] >= 0]
        js = js[atoms.chain_id[js] != atoms.chain_id[i]]
        if len(js) == 0:
            continue
        d = np.linalg.norm(atoms.coord[js] - atoms.coord[i], axis=1)
        for j in js[d < CUTOFF]:
            a, b = sorted((atoms.chain_id[i], atoms.chain_id[j]), key=rank.get)
            pairs.add((a, b))
    out[path] = sorted(pairs, key=lambda p: (rank[p[0]], rank[p[1]]))
json.dump(out, sys.stdout)
