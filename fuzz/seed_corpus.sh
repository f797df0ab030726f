#!/bin/sh
# Seeds each fuzz target's corpus with real files from the set-up's data (`make setup` first):
# openfold3's test mmCIFs as text and, written by biotite, as BinaryCIF (plus the file of every
# BinaryCIF encoding that tests/oracles/bcif_encodings.py writes); openfold3's A3M and
# Stockholm MSAs and Rfam's Stockholm alignments, cut to their first 300 lines (a cut Stockholm file gets its `//`).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
data="$root/data"
python="$root/.venv/bin/python"
for t in cif_text cif_binary msa_a3m msa_stockholm; do mkdir -p "$here/corpus/$t"; done
cp "$data"/openfold3/mmcifs/*.cif "$here/corpus/cif_text/"
"$python" "$root/tests/oracles/bcif_encodings.py" "$here/corpus/cif_binary" > /dev/null
rm -f "$here/corpus/cif_binary/encodings.bcif.gz"
"$python" - "$data/openfold3/mmcifs" "$here/corpus/cif_binary" <<'PY'
import pathlib, sys
import biotite.structure.io.pdbx as pdbx
src, dst = map(pathlib.Path, sys.argv[1:])
for path in sorted(src.glob("*.cif")):
    atoms = pdbx.get_structure(pdbx.CIFFile.read(str(path)), model=1)
    out = pdbx.BinaryCIFFile()
    pdbx.set_structure(out, atoms)
    out.write(str(dst / f"{path.stem}.bcif"))
PY
for f in $(find "$data/openfold3/alignments" "$data/openfold3/template_alignments/inputs" -name '*.a3m'); do
    head -n 300 "$f" > "$here/corpus/msa_a3m/$(echo "${f#$data/}" | tr / _)"
done
for f in $(find "$data/openfold3/alignments" "$data/openfold3/template_alignments/inputs" "$data/rna_tools" -name '*.sto'); do
    out="$here/corpus/msa_stockholm/$(echo "${f#$data/}" | tr / _)"
    head -n 300 "$f" > "$out"
    tail -n 1 "$out" | grep -q '^//' || echo '//' >> "$out"
done
for t in "$here"/corpus/*; do echo "$(basename "$t"): $(ls "$t" | wc -l) seeds"; done
