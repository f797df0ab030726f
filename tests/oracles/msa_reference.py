"""An independent reading of A3M and Stockholm alignments, in plain Python, following the
conventions helico documents (data/msa): the first row is the query; A3M lower case is an
insertion counted into the next aligned column; Stockholm columns are the query's residue
columns, residues elsewhere are insertions; letters normalised as AlphaFold's MSA table does.
Species come from AlphaFold's UniProt pattern (msa_identifiers.py) and the two UniRef rules.

usage: msa_reference.py protein|rna FILE...  ->  [{"file", "names", "letters", "deletions",
"species"} | {"file", "error"}] as JSON
"""
import json
import re
import sys

PROTEIN = "ARNDCQEGHILKMFPSTWYV"
UNIPROT = re.compile(r"^(?:tr|sp)\|[A-Za-z0-9]{6,10}(?:_\d)?\|[A-Za-z0-9]+_([A-Za-z0-9]{1,5})(?:_\d+)?$")
UNIREF = re.compile(r"^UniRef(?:100|90|50)_[A-Za-z0-9]+_([A-Za-z0-9]{1,5})$")
REPID = re.compile(r"\bRepID=[A-Za-z0-9]+_([A-Za-z0-9]{1,5})\b")


def normalise(letter, kind):
    if letter == "-":
        return "-"
    if kind == "protein":
        letter = {"B": "D", "Z": "E", "U": "C"}.get(letter, letter)
        return letter if letter in PROTEIN else "X"
    letter = "U" if letter == "T" else letter
    return letter if letter in "ACGU" else "N"


def species(name, description):
    bare = name.split("/")[0]
    for pattern, text in ((UNIPROT, bare), (UNIREF, bare), (REPID, description)):
        m = pattern.search(text)
        if m:
            return m.group(1)
    return None


def a3m(text):
    records = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(">"):
            header = line[1:].strip().split(None, 1)
            records.append([header[0] if header else "", header[1] if len(header) > 1 else "", ""])
        else:
            records[-1][2] += line
    rows = []
    for name, description, seq in records:
        letters, deletions, pending = "", [], 0
        for c in seq:
            if c.islower():
                pending += 1
            elif c != ".":
                letters += c
                deletions.append(pending)
                pending = 0
        rows.append((name, description, letters, deletions))
    return rows


def stockholm(text):
    order, seqs, desc = [], {}, {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#=GS"):
            parts = line.split(None, 3)
            if len(parts) == 4 and parts[2] == "DE":
                desc[parts[1]] = parts[3].strip()
            continue
        if not line or line.startswith("#") or line == "//":
            continue
        name, seq = line.split()
        if name not in seqs:
            order.append(name)
            seqs[name] = ""
        seqs[name] += seq
    query = seqs[order[0]]
    if all(c in "-." for c in query):
        raise ValueError("the query (first row) has only gaps")
    rows = []
    for name in order:
        letters, deletions, pending = "", [], 0
        for q, c in zip(query, seqs[name]):
            if q in "-.":
                if c not in "-.":
                    pending += 1
            else:
                letters += "-" if c in "-." else c.upper()
                deletions.append(pending)
                pending = 0
        rows.append((name, desc.get(name, ""), letters, deletions))
    return rows


def read(path, kind):
    """One file's rows as {"names", "letters", "deletions", "species"}."""
    text = open(path).read()
    rows = stockholm(text) if text.lstrip().startswith("# STOCKHOLM") else a3m(text)
    return {
        "names": [r[0] for r in rows],
        "letters": ["".join(normalise(c, kind) for c in r[2]) for r in rows],
        "deletions": [r[3] for r in rows],
        "species": [species(r[0], r[1]) for r in rows],
    }


if __name__ == "__main__":
    kind, out = sys.argv[1], []
    for path in sys.argv[2:]:
        try:
            out.append({"file": path, **read(path, kind)})
        except ValueError as e:
            out.append({"file": path, "error": str(e)})
    json.dump(out, sys.stdout)
