"""What gemmi reads from mmCIF files, as helico's Structure::from_cif should: the oracle for
structures. First model; per residue (same chain and number, any component) the altloc whose
occupancies sum highest, ties to the first letter (the rule helico and biotite document);
no hydrogens, no waters.

usage: structure_gemmi.py FILE...  ->  {file: {"atoms": [[label_asym, auth_asym, label_seq | null,
    auth_seq, ins | null, comp, atom, element, x, y, z, occupancy], ...], "entities": {id: [mon, ...]},
    "resolution": float | null, "methods": [...], "release_date": "YYYY-MM-DD" | null}}
"""
import json
import sys
from collections import defaultdict

import gemmi

out = {}
for path in sys.argv[1:]:
    doc = gemmi.cif.read(path)
    block = doc.sole_block()
    st = gemmi.make_structure_from_block(block)
    model = st[0]
    atoms = []
    for chain in model:
        groups = defaultdict(list)
        order = []
        for res in chain:
            key = (res.subchain, res.label_seq, res.seqid.num, res.seqid.icode)
            if key not in groups:
                order.append(key)
            groups[key].append(res)
        for key in order:
            sums = defaultdict(float)
            for res in groups[key]:
                for atom in res:
                    if atom.altloc != "\0":
                        sums[atom.altloc] += atom.occ
            best = None
            for alt in sorted(sums):
                if best is None or sums[alt] > sums[best]:
                    best = alt
            for res in groups[key]:
                if res.is_water():
                    continue
                for atom in res:
                    if atom.is_hydrogen() or atom.altloc not in ("\0", best):
                        continue
                    atoms.append([
                        res.subchain, chain.name, res.label_seq, res.seqid.num,
                        None if res.seqid.icode == " " else res.seqid.icode,
                        res.name, atom.name, atom.element.name,
                        atom.pos.x, atom.pos.y, atom.pos.z, atom.occ,
                    ])
    dates = block.find_values("_pdbx_audit_revision_history.revision_date")
    out[path] = {
        "atoms": atoms,
        "entities": {e.name: [gemmi.Entity.first_mon(m) for m in e.full_sequence] for e in st.entities},
        "resolution": st.resolution if st.resolution > 0 else None,
        "methods": [gemmi.cif.as_string(m) for m in block.find_values("_exptl.method")],
        "release_date": gemmi.cif.as_string(dates[0]) if len(dates) else None,
    }
json.dump(out, sys.stdout)
