"""The covalent `_struct_conn` bonds of mmCIF files as gemmi reads them: the oracle for the
bonds of helico's mmCIF inference inputs.

gemmi resolves each partner through the author fields (chain, number, insertion code), helico
through the label fields; both must land on the same atom. Each atom is named as AlphaFold 3's
bondedAtomPairs name it: label_asym_id, 1-based position (label_seq_id for a polymer residue,
else the residue's place in its chain), atom name. Covalent: `conn_type_id` covale*.

usage: mmcif_bonds.py FILE...  ->  {file: [[[chain, position, atom], [chain, position, atom]], ...]}
"""
import json
import sys

import gemmi
from gemmi import cif


def covalent_ids(path):
    block = cif.read(path).sole_block()
    return {
        cif.as_string(i) for i, t in block.find("_struct_conn.", ["id", "conn_type_id"])
        if cif.as_string(t).lower().startswith("covale")
    }


out = {}
for path in sys.argv[1:]:
    st = gemmi.read_structure(path)
    model = st[0]
    covalent = covalent_ids(path)
    bonds = []
    for con in st.connections:
        if con.name not in covalent or con.asu != gemmi.Asu.Same:
            continue
        ends = []
        for partner in (con.partner1, con.partner2):
            cra = model.find_cra(partner, ignore_segment=True)
            residue = cra.residue
            if residue.label_seq is not None:
                position = residue.label_seq
            else:
                span = model.get_subchain(residue.subchain)
                position = 1 + [r.seqid for r in span].index(residue.seqid)
            ends.append([residue.subchain, position, cra.atom.name])
        bonds.append(sorted(ends))
    out[path] = sorted(bonds)
json.dump(out, sys.stdout)
