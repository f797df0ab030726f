"""The entities of mmCIF files as gemmi reads them: the oracle for helico's mmCIF inference
inputs. The canonical one-letter sequence is the PDB's own (`pdbx_seq_one_letter_code_can`),
independent of any residue table in helico.

usage: mmcif_entities.py FILE...  ->  {file: {"name": entry id, "entities": [{"id", "type",
"chains": [label_asym_id, ...], "poly_type", "seq_can", "mon_ids": [first mon_id per num],
"comp_id"}]}}
"""
import json
import sys

from gemmi import cif


def rows(block, category, columns):
    return [[cif.as_string(v) for v in row] for row in block.find(category + ".", columns)]


out = {}
for path in sys.argv[1:]:
    block = cif.read(path).sole_block()
    chains, poly, seq, mons, nonpoly = {}, {}, {}, {}, {}
    for asym, entity in rows(block, "_struct_asym", ["id", "entity_id"]):
        chains.setdefault(entity, []).append(asym)
    for entity, kind, can in rows(block, "_entity_poly", ["entity_id", "type", "pdbx_seq_one_letter_code_can"]):
        poly[entity], seq[entity] = kind, "".join(can.split())
    for entity, num, mon in rows(block, "_entity_poly_seq", ["entity_id", "num", "mon_id"]):
        mons.setdefault(entity, {}).setdefault(int(num), mon)
    for entity, comp in rows(block, "_pdbx_entity_nonpoly", ["entity_id", "comp_id"]):
        nonpoly[entity] = comp
    entities = []
    for entity, kind in rows(block, "_entity", ["id", "type"]):
        entities.append({
            "id": entity,
            "type": kind,
            "chains": chains.get(entity, []),
            "poly_type": poly.get(entity),
            "seq_can": seq.get(entity),
            "mon_ids": [m for _, m in sorted(mons.get(entity, {}).items())],
            "comp_id": nonpoly.get(entity),
        })
    out[path] = {"name": cif.as_string(block.find_value("_entry.id")), "entities": entities}
json.dump(out, sys.stdout)
