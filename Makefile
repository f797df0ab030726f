# Set-up and the two everyday commands. Everything lands in project-local, git-ignored
# directories (.venv, .deps, data); downloads are cached under ~/.cache so re-runs are fast.
#
#   make demo    set up, build, and train the demo experiment on CPU
#   make test    set up, build, and run the whole test suite

PYTHON  ?= python3
CACHE   ?= $(HOME)/.cache/helico
VENV    := .venv
PY      := $(VENV)/bin/python
SITE     = $(shell $(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# Python packages: libtorch itself, and the registry packages whose files and parsers the
# tests use as oracles and data (CCD in biotite, real mmCIFs and MSAs in openfold3; W&B's
# offline-run reader, which wandb dropped after 0.28; huggingface_hub's cache layout; Biopython,
# a baseline of `helico bench parse`).
PY_PKGS := torch==2.11.0 biotite==1.6.0 taplo==0.9.3 gemmi==0.7.5 safetensors==0.8.0 numpy==2.4.6 \
           wandb==0.28.2 huggingface_hub==2.4.0 biopython==1.88
OF3_WHEEL := openfold3-0.5.0-py3-none-any.whl
RNA_TOOLS_WHEEL := rna_tools-3.28-py3-none-any.whl

export PIP_CACHE_DIR ?= $(HOME)/.cache/pip

.PHONY: setup demo test build clean-setup
setup: .deps/libtorch data/openfold3/.done data/rna_tools/.done data/ccd/components.bcif

# Depends on this file so that a package added to PY_PKGS reaches existing set-ups too.
$(VENV)/.done: Makefile
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(PY_PKGS)
	touch $@

# A stable path to the wheel's libtorch for .cargo/config.toml, whatever the Python version.
# A user's LIBTORCH wins: then this link is not used.
.deps/libtorch: $(VENV)/.done
	mkdir -p .deps
	ln -sfn "$(SITE)/torch" $@

data/ccd/components.bcif: $(VENV)/.done
	mkdir -p data/ccd
	ln -sfn "$(SITE)/biotite/structure/info/components.bcif" $@

# openfold3's test data only: the wheel is unpacked, not installed (its dependencies are heavy).
data/openfold3/.done:
	mkdir -p $(CACHE)/wheels
	test -f $(CACHE)/wheels/$(OF3_WHEEL) || \
	  $(PYTHON) -m pip download --quiet --no-deps --disable-pip-version-check -d $(CACHE)/wheels openfold3==0.5.0
	rm -rf $(CACHE)/openfold3 data/openfold3
	$(PYTHON) -m zipfile -e $(CACHE)/wheels/$(OF3_WHEEL) $(CACHE)/openfold3
	mkdir -p data && cp -r $(CACHE)/openfold3/openfold3/tests/test_data data/openfold3
	touch $@

# Rfam alignments (real RNA sequences) from rna_tools' test data; the wheel is unpacked only.
data/rna_tools/.done:
	mkdir -p $(CACHE)/wheels
	test -f $(CACHE)/wheels/$(RNA_TOOLS_WHEEL) || \
	  $(PYTHON) -m pip download --quiet --no-deps --disable-pip-version-check -d $(CACHE)/wheels rna_tools==3.28
	rm -rf $(CACHE)/rna_tools data/rna_tools
	$(PYTHON) -m zipfile -e $(CACHE)/wheels/$(RNA_TOOLS_WHEEL) $(CACHE)/rna_tools
	mkdir -p data/rna_tools
	cp $(CACHE)/rna_tools/rna_tools/tools/rna_alignment/test_data/*.sto data/rna_tools/
	touch $@

build: setup
	cargo build --bins

# The embedded demo corpus, built by helico itself from the set-up's registry packages.
data/demo/.done: data/openfold3/.done data/rna_tools/.done data/ccd/components.bcif
	cargo build --bins
	./target/debug/helico demo-data
	touch $@

# The embedded AF3 demo set: openfold3's test structures preprocessed into the structure cache,
# with their MSAs (2q2k's, from data/openfold3/alignments) stored in it (seconds; re-running
# only redoes what changed). Depends on this file so that a changed command line reruns it.
data/demo/af3/prep.json: data/openfold3/.done data/ccd/components.bcif Makefile
	cargo build --bins
	./target/debug/helico preprocess --src data/openfold3/mmcifs --out data/demo/af3 --msa data/openfold3/alignments

demo: build data/demo/.done data/demo/af3/prep.json
	./target/debug/helico run experiments/demo.toml

test: setup data/demo/.done data/demo/af3/prep.json
	cargo test

clean-setup:
	rm -rf $(VENV) .deps data
