# `make demo` and `make test` both create/update .venv first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
ABLATE := $(VENV)/bin/ablate
STAMP  := $(VENV)/.installed
TORCH  ?= torch==2.13.0
DATA   ?= data/synth_kitti

.PHONY: install lint test system-packages latex demo smoke data clean bench

install: $(STAMP)

# torch first, pinned, so no dependency can pull a newer (CUDA, multi-GB) build.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

# ruff (lint + format) and mypy keep the house; `make test` runs them first, so CI does.
lint: install
	$(PY) -m ruff check ablate tests bench
	$(PY) -m ruff format --check ablate
	$(PY) -m mypy

# Two workers, each test file on one worker (its module fixtures, e.g. one Ray per file, built once):
# most tests wait on the trials, servers and clusters they start, so two cores serve two files at once
# (three workers were slower here: 11:40 of tests against 8:31).
test: install lint system-packages
	$(PY) -m pytest -q -n 2 --dist loadfile

# What some tests need from the system, installed in one apt-get step (one `apt-get update`) and
# only what is missing, as root, where apt-get exists (CI); elsewhere those tests skip themselves:
# * pdflatex (texlive-latex-recommended: booktabs, amssymb, graphicx) for the tests that compile the
#   report's LaTeX tables in a two-column paper;
# * a real Slurm for tests/test_slurm.py (slurmctld, slurmd, slurmdbd over MariaDB, munge), which the
#   tests start themselves with a configuration, ports and state of their own.
SYSTEM_PACKAGES = pdflatex:texlive-latex-recommended slurmctld:slurm-wlm slurmdbd:slurmdbd munged:munge \
	mariadbd:mariadb-server sacct:slurm-client

system-packages:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do \
		command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

latex: system-packages

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
