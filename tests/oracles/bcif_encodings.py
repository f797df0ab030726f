"""Writes BinaryCIF files that exercise every encoding with biotite, then prints (as JSON) what
biotite decodes from those files: the oracle for helico's BinaryCIF decoder.

usage: bcif_encodings.py OUT_DIR  ->  writes OUT_DIR/encodings.bcif and encodings.bcif.gz, prints
{column: {"values": [...], "text": [str, ...], "mask": [...] | null, "encoding": [kind, ...]}}
"""
import gzip
import json
import sys
from pathlib import Path

import numpy as np
from biotite.structure.io.pdbx import (
    BinaryCIFBlock, BinaryCIFCategory, BinaryCIFColumn, BinaryCIFData, BinaryCIFFile,
)
from biotite.structure.io.pdbx.encoding import (
    ByteArrayEncoding, DeltaEncoding, FixedPointEncoding, IntegerPackingEncoding,
    IntervalQuantizationEncoding, RunLengthEncoding, StringArrayEncoding, TypeCode,
)

N = 40
rng = np.random.default_rng(7)
ints = rng.integers(-30000, 30000, N)


def col(array, encoding, mask=None):
    m = None
    if mask is not None:
        m = BinaryCIFData(np.asarray(mask, np.uint8), [RunLengthEncoding(), ByteArrayEncoding()])
    return BinaryCIFColumn(BinaryCIFData(array, encoding), m)


columns = {
    # ByteArray for every type code.
    "int8": col(rng.integers(-128, 128, N).astype(np.int8), [ByteArrayEncoding()]),
    "int16": col(ints.astype(np.int16), [ByteArrayEncoding()]),
    "int32": col((ints * 70000).astype(np.int32), [ByteArrayEncoding()]),
    "uint8": col(rng.integers(0, 256, N).astype(np.uint8), [ByteArrayEncoding()]),
    "uint16": col(rng.integers(0, 65536, N).astype(np.uint16), [ByteArrayEncoding()]),
    "uint32": col(rng.integers(0, 2**32, N).astype(np.uint32), [ByteArrayEncoding()]),
    "float32": col(rng.normal(0, 100, N).astype(np.float32), [ByteArrayEncoding()]),
    "float64": col(rng.normal(0, 100, N), [ByteArrayEncoding()]),
    # Lossy float encodings.
    "fixed_point": col(
        rng.normal(0, 50, N).astype(np.float32),
        [FixedPointEncoding(factor=1000, src_type=TypeCode.FLOAT32), ByteArrayEncoding()],
    ),
    "fixed_point_delta_packed": col(
        np.cumsum(rng.normal(0, 2, N)),
        [FixedPointEncoding(factor=100, src_type=TypeCode.FLOAT64), DeltaEncoding(),
         IntegerPackingEncoding(byte_count=1), ByteArrayEncoding()],
    ),
    "interval_quantization": col(
        rng.uniform(-5, 5, N).astype(np.float32),
        [IntervalQuantizationEncoding(min=-5, max=5, num_steps=200, src_type=TypeCode.FLOAT32),
         ByteArrayEncoding()],
    ),
    "interval_quantization_f64": col(
        rng.uniform(0, 1, N),
        [IntervalQuantizationEncoding(min=0, max=1, num_steps=1000, src_type=TypeCode.FLOAT64),
         IntegerPackingEncoding(byte_count=1, is_unsigned=True), ByteArrayEncoding()],
    ),
    # Integer encodings and their usual chains.
    "run_length": col(np.repeat(np.array([5, -3, 1000000, 0], np.int32), [10, 15, 5, 10]),
                      [RunLengthEncoding(), ByteArrayEncoding()]),
    "delta": col(np.arange(1000, 1000 + N, dtype=np.int32) * 3, [DeltaEncoding(), ByteArrayEncoding()]),
    "packed_signed_1": col(ints.astype(np.int32), [IntegerPackingEncoding(byte_count=1), ByteArrayEncoding()]),
    "packed_signed_2": col((ints * 5).astype(np.int32), [IntegerPackingEncoding(byte_count=2), ByteArrayEncoding()]),
    "packed_unsigned_1": col(np.abs(ints).astype(np.int32),
                             [IntegerPackingEncoding(byte_count=1, is_unsigned=True), ByteArrayEncoding()]),
    "packed_unsigned_2": col((np.abs(ints) * 9).astype(np.int32),
                             [IntegerPackingEncoding(byte_count=2, is_unsigned=True), ByteArrayEncoding()]),
    "ordinal": col(np.arange(1, N + 1, dtype=np.int32),
                   [DeltaEncoding(), RunLengthEncoding(), IntegerPackingEncoding(byte_count=1), ByteArrayEncoding()]),
    # Strings, with masks ('.' = 1, '?' = 2).
    "strings": col(np.array([["ALA", "GLY", "C1'", "O5'", "", "héllo", "N"][i % 7] for i in range(N)]),
                   [StringArrayEncoding()]),
    "strings_masked": col(np.array(["x", "", "y", ""] * (N // 4)), [StringArrayEncoding()],
                          mask=[0, 1, 0, 2] * (N // 4)),
    "ints_masked": col(np.arange(N, dtype=np.int32), [ByteArrayEncoding()], mask=[2, 0, 0, 1] * (N // 4)),
}

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
file = BinaryCIFFile({"TEST": BinaryCIFBlock({"enc": BinaryCIFCategory(columns, N)})})
file.write(out / "encodings.bcif")
(out / "encodings.bcif.gz").write_bytes(gzip.compress((out / "encodings.bcif").read_bytes()))

# Read back from disk, so the oracle is biotite's decoder, not the arrays written above.
category = BinaryCIFFile.read(out / "encodings.bcif").block["enc"]
expected = {}
for column in category.keys():
    c = category[column]
    expected[column] = {
        "values": c.data.array.tolist(),
        "text": c.as_array(str).tolist(),
        "mask": None if c.mask is None else c.mask.array.tolist(),
        "encoding": [type(e).__name__.removesuffix("Encoding") for e in c.data.encoding],
    }
json.dump(expected, sys.stdout)
