"""OpenFold3's tokenization test vectors (openfold3 0.5.0 wheel, tests/test_data/tokenization),
converted from NumPy .npz to JSON for helico's tokenizer test. The input atom arrays were made
by openfold3's cleanup pipeline; the outputs by its `tokenize_atom_array`.

usage: of3_tokenization.py INPUT.npz OUTPUT.npz  ->  {"chain_id": [...], "res_id": [...],
    "ins_code": [...], "sym_id": [...], "res_name": [...], "atom_name": [...], "element": [...],
    "molecule_type_id": [...], "resolved": [...], "bonds": [[i, j], ...], "token_id": [...],
    "token_center_atom": [...], "is_atomized": [...]}
"""
import json
import sys

import numpy as np

inputs = np.load(sys.argv[1])
outputs = np.load(sys.argv[2])
out = {key: inputs[key].tolist() for key in
       ["chain_id", "res_id", "ins_code", "sym_id", "res_name", "atom_name", "element", "molecule_type_id"]}
out["resolved"] = (~np.isnan(inputs["coord"][:, 0])).tolist()
out["bonds"] = inputs["bonds"][:, :2].tolist()
for key in ["token_id", "token_center_atom", "is_atomized"]:
    out[key] = outputs[key].tolist()
json.dump(out, sys.stdout)
