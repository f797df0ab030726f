"""MSA features of one chain's alignment files, in numpy, from an independent reading of the
files (msa_reference.py): the files stacked in the order given (later queries dropped), rows
deduplicated on their aligned letters (insertions ignored, the first kept), then AF3
supplement Table 5: has_deletion = min(d, 1), deletion_value = 2/pi * arctan(d / 3), profile =
per-column class frequencies over all rows (32 classes, gap 31), deletion_mean = mean raw d.

usage: msa_features_reference.py FILE...  ->  {"letters", "species", "deletions",
"has_deletion", "deletion_value", "profile", "deletion_mean"} as JSON
"""
import json
import sys

import numpy as np

from msa_reference import read

CLASSES = "ARNDCQEGHILKMFPSTWYVX"  # 0-19 amino acids, 20 unknown; gap is 31

rows = []
for index, path in enumerate(sys.argv[1:]):
    part = read(path, "protein")
    for i, row in enumerate(zip(part["letters"], part["deletions"], part["species"])):
        if index == 0 or i > 0:
            rows.append(row)
seen, kept = set(), []
for row in rows:
    if row[0] not in seen:
        seen.add(row[0])
        kept.append(row)

d = np.array([r[1] for r in kept], dtype=np.float64)
classes = np.array([[31 if c == "-" else CLASSES.index(c) for c in r[0]] for r in kept])
profile = (classes[..., None] == np.arange(32)).mean(axis=0)
json.dump(
    {
        "letters": [r[0] for r in kept],
        "species": [r[2] for r in kept],
        "deletions": d.astype(int).tolist(),
        "has_deletion": np.clip(d, 0, 1).tolist(),
        "deletion_value": (2 / np.pi * np.arctan(d / 3)).tolist(),
        "profile": profile.tolist(),
        "deletion_mean": d.mean(axis=0).tolist(),
    },
    sys.stdout,
)
