"""The FASTA files the demo corpus should hold for one mmCIF directory plus protein and RNA
alignment directories, from the corpus rules (helico's data/demo.rs docs), independently of
helico's code: gemmi for the mmCIF part, a plain reading of A3M/Stockholm for the rest.

usage: alignment_fasta.py MMCIF_DIR PROTEIN_MSA_DIR RNA_MSA_DIR -> {"protein": ..., "rna": ...}
"""
import json
import re
import sys
from pathlib import Path

from gemmi import cif

ALPHABET = {"protein": (set("ACDEFGHIKLMNPQRSTVWY"), "X", "protein"), "rna": (set("ACGU"), "N", "na")}
out = {"protein": "", "rna": ""}
seen = set()


def emit(key, name, raw):
    alphabet, unknown, mol = ALPHABET[key]
    seq = "".join(c if c in alphabet else unknown for c in "".join(raw.split()))
    if seq and (key, seq) not in seen:
        seen.add((key, seq))
        out[key] += f">{name} mol:{mol}\n{seq}\n"


for path in sorted(Path(sys.argv[1]).iterdir()):
    block = cif.read(str(path)).sole_block()
    pdb_id = cif.as_string(block.find_value("_entry.id")).lower()
    for row in block.find("_entity_poly.", ["entity_id", "type", "pdbx_seq_one_letter_code_can"]):
        key = {"polypeptide(L)": "protein", "polyribonucleotide": "rna"}.get(cif.as_string(row[1]))
        if key and not cif.is_null(row[2]):
            emit(key, f"{pdb_id}_{cif.as_string(row[0])}", cif.as_string(row[2]))


def rows(path):
    text = path.read_text()
    order, seqs = [], {}
    if text.startswith("# STOCKHOLM"):
        for line in text.splitlines():
            if not line.strip() or line.startswith("#") or line.strip() == "//":
                continue
            parts = line.split(None, 1)
            if len(parts) < 2:
                continue
            if parts[0] not in seqs:
                order.append(parts[0])
                seqs[parts[0]] = ""
            seqs[parts[0]] += parts[1].strip()
        return [(n, seqs[n]) for n in order]
    records = []  # A3M: FASTA records in file order (a name may repeat)
    for line in text.splitlines():
        if line.startswith(">"):
            records.append([line[1:].split()[0] if line[1:].split() else "", ""])
        elif line.strip() and not line.startswith("#") and records:
            records[-1][1] += line.strip()
    return [tuple(r) for r in records]


for key, directory in (("protein", sys.argv[2]), ("rna", sys.argv[3])):
    files = sorted(p for p in Path(directory).rglob("*") if p.is_file() and p.name.lower().endswith((".a3m", ".sto")))
    for path in files:
        stem = path.name.split(".")[0]
        for name, aligned in rows(path):
            emit(key, f"{stem}/{name}", re.sub(r"[-.~]", "", aligned).upper())
json.dump(out, sys.stdout)
