"""Parse throughput of gemmi, biotite and Biopython on mmCIF files, for `helico bench parse`.

Usage: parse_python.py MIN_SECONDS CPU FILE...

Each library parses every file from text already in memory into its structure object (the
first model), on the one CPU given, round after round until MIN_SECONDS have passed (at least
one round after a warm-up file). Prints JSON: per library its version, rounds, seconds, files
and bytes per round. The same work as helico's "parse + tokenize" stage: text to atoms with
residues and chains (tokenizing is a cheap pass over residues in helico).
"""

import io
import json
import os
import sys
import time
import warnings


def gemmi_parse(text, name):
    import gemmi

    doc = gemmi.cif.read_string(text)
    return gemmi.make_structure_from_block(doc.sole_block())


def biotite_parse(text, name):
    from biotite.structure.io import pdbx

    f = pdbx.CIFFile.read(io.StringIO(text))
    return pdbx.get_structure(f, model=1)


def biopython_parse(text, name):
    from Bio.PDB.MMCIFParser import MMCIFParser

    return MMCIFParser(QUIET=True).get_structure(name, io.StringIO(text))


def version(module):
    return __import__(module).__version__


LIBRARIES = [
    ("gemmi", "gemmi", gemmi_parse),
    ("biotite", "biotite", biotite_parse),
    ("biopython", "Bio", biopython_parse),
]


def measure(parse, texts, min_seconds):
    name, text = texts[0]
    parse(text, name)  # warm-up: imports and caches
    rounds, start = 0, time.perf_counter()
    while True:
        for name, text in texts:
            parse(text, name)
        rounds += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return rounds, elapsed


def main():
    min_seconds, cpu, paths = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    os.sched_setaffinity(0, {cpu})
    warnings.simplefilter("ignore")
    texts = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            texts.append((os.path.basename(p).split(".")[0], f.read()))
    n_bytes = sum(len(t.encode()) for _, t in texts)
    out = {}
    for label, module, parse in LIBRARIES:
        rounds, seconds = measure(parse, texts, min_seconds)
        out[label] = {
            "version": version(module),
            "rounds": rounds,
            "seconds": seconds,
            "files": len(texts),
            "bytes": n_bytes,
        }
    out["python"] = sys.version.split()[0]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
