"""What gemmi reads from mmCIF files: the oracle for helico's text CIF reader.

usage: mmcif_gemmi.py FILE...  ->  {file: {"blocks": [...], "atom_site_rows": n,
    "cartn": [[x, y, z], ...], "label_asym_id": [...], "auth_seq_id": [int | null, ...],
    "occupancy": [...], "entity_poly": [[entity_id, type, seq_can | null], ...],
    "categories": [name, ...]}}
"""
import json
import sys

import gemmi
from gemmi import cif


def text(raw):
    return None if cif.is_null(raw) else cif.as_string(raw)


def number(raw):
    return None if cif.is_null(raw) else cif.as_number(raw)


out = {}
for path in sys.argv[1:]:
    doc = cif.read(path)
    block = doc.sole_block()
    atoms = block.find("_atom_site.", ["Cartn_x", "Cartn_y", "Cartn_z", "label_asym_id", "auth_seq_id", "occupancy"])
    poly = block.find("_entity_poly.", ["entity_id", "type", "pdbx_seq_one_letter_code_can"])
    out[path] = {
        "blocks": [b.name for b in doc],
        "atom_site_rows": len(atoms),
        "cartn": [[number(r[0]), number(r[1]), number(r[2])] for r in atoms],
        "label_asym_id": [text(r[3]) for r in atoms],
        "auth_seq_id": [None if cif.is_null(r[4]) else cif.as_int(r[4]) for r in atoms],
        "occupancy": [number(r[5]) for r in atoms],
        "entity_poly": [[text(r[0]), text(r[1]), text(r[2])] for r in poly],
        "categories": [c.lstrip("_").rstrip(".") for c in block.get_mmcif_category_names()],
    }
json.dump(out, sys.stdout)
