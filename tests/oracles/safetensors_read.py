"""The metadata and tensors of a safetensors file, read with the safetensors package.

usage: safetensors_read.py FILE  ->  {"metadata": {...}, "tensors": {name: [dtype, shape, sha256 of the bytes]}}
"""
import hashlib
import json
import sys

from safetensors import safe_open

with safe_open(sys.argv[1], framework="numpy") as f:
    tensors = {}
    for name in f.keys():
        a = f.get_tensor(name)
        tensors[name] = [str(a.dtype), list(a.shape), hashlib.sha256(a.tobytes()).hexdigest()]
    print(json.dumps({"metadata": f.metadata(), "tensors": tensors}))
