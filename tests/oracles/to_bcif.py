"""Writes each mmCIF file as BinaryCIF with biotite (integer and float columns typed, nulls
masked, then biotite's `compress` picks the encodings), for helico's BinaryCIF path.

usage: to_bcif.py OUT_DIR FILE...  ->  OUT_DIR/<stem>.bcif for each FILE; prints {stem: path}
"""
import json
import re
import sys
from pathlib import Path

import biotite.structure.io.pdbx as pdbx
import numpy as np


INT = re.compile(r"-?[0-9]+")
FLOAT = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")


def typed(values, present):
    # CIF numbers only: Python's int() would also take "1_555" (a symmetry operator) as 1555.
    shown = [v for v, p in zip(values, present) if p]
    for pattern, kind in ((INT, np.int32), (FLOAT, np.float64)):
        if all(pattern.fullmatch(v) for v in shown):
            return np.array([v if p else "0" for v, p in zip(values, present)], dtype=kind)
    return np.array([v if p else "" for v, p in zip(values, present)], dtype=str)


def binary_column(column):
    values = column.as_array(str)
    mask = column.mask.array if column.mask is not None else np.zeros(len(values), np.uint8)
    present = mask == pdbx.MaskValue.PRESENT
    data = pdbx.BinaryCIFData(typed(values, present))
    if present.all():
        return pdbx.BinaryCIFColumn(data)
    return pdbx.BinaryCIFColumn(data, pdbx.BinaryCIFData(mask.astype(np.uint8)))


out_dir = Path(sys.argv[1])
written = {}
for path in map(Path, sys.argv[2:]):
    text = pdbx.CIFFile.read(str(path))
    binary = pdbx.BinaryCIFFile()
    for name, block in text.items():
        binary[name] = pdbx.BinaryCIFBlock({
            cat_name: pdbx.BinaryCIFCategory({col: binary_column(category[col]) for col in category.keys()})
            for cat_name, category in block.items()
        })
    binary = pdbx.compress(binary)
    target = out_dir / (path.stem + ".bcif")
    binary.write(str(target))
    written[path.stem] = str(target)
json.dump(written, sys.stdout)
