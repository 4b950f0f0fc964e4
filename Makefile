# `make demo` and `make test` both create/update .venv first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
ABLATE := $(VENV)/bin/ablate
STAMP  := $(VENV)/.installed
TORCH  ?= torch==2.13.0
DATA   ?= data/synth_kitti

.PHONY: install test demo smoke data clean bench

install: $(STAMP)

# torch first, pinned, so no dependency can pull a newer (CUDA, multi-GB) build.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

test: install
	$(PY) -m pytest -q

$(DATA)/.complete: | install
	$(ABLATE) data synth --out $(DATA)

data: $(DATA)/.complete

# The paper's trick ladder, small enough for a CPU (SegFormer-B0, synthetic data), then its report.
demo: install data
	$(ABLATE) run studies/trick_ladder.yaml --profile demo
	$(ABLATE) report studies/trick_ladder.yaml --profile demo --out reports/trick_ladder_demo

# The fastest end-to-end check: two tiny trials.
smoke: install data
	$(ABLATE) run studies/smoke.yaml

bench: install
	$(PY) bench/run_all.py

clean:
	rm -rf runs mlruns.db mlartifacts reports/*/
