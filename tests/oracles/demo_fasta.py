"""The FASTA files the demo corpus should hold for a directory of mmCIF files, computed with gemmi
from the rules of the corpus spec (helico's data/demo.rs docs), independently of helico's code.

usage: demo_fasta.py MMCIF_DIR  ->  {"protein": fasta text, "rna": fasta text}
"""
import json
import sys
from pathlib import Path

from gemmi import cif

PROTEIN = set("ACDEFGHIKLMNPQRSTVWY")
RNA = set("ACGU")
out = {"protein": "", "rna": ""}
seen = set()
for path in sorted(Path(sys.argv[1]).iterdir()):
    if not path.name.endswith(".cif"):
        continue
    block = cif.read(str(path)).sole_block()
    pdb_id = cif.as_string(block.find_value("_entry.id")).lower()
    for row in block.find("_entity_poly.", ["entity_id", "type", "pdbx_seq_one_letter_code_can"]):
        kind = cif.as_string(row[1])
        if kind == "polypeptide(L)":
            key, alphabet, unknown, mol = "protein", PROTEIN, "X", "protein"
        elif kind == "polyribonucleotide":
            key, alphabet, unknown, mol = "rna", RNA, "N", "na"
        else:
            continue
        if cif.is_null(row[2]):
            continue
        seq = "".join(c if c in alphabet else unknown for c in "".join(cif.as_string(row[2]).split()))
        if not seq or (key, seq) in seen:
            continue
        seen.add((key, seq))
        out[key] += f">{pdb_id}_{cif.as_string(row[0])} mol:{mol}\n{seq}\n"
json.dump(out, sys.stdout)
