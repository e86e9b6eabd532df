# The README's two commands. Both create .venv when missing and reinstall when pyproject changes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STORE  ?= results
PORT   ?= 8501

.PHONY: demo test bench gpu-check clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "priorlab needs Python 3.11+, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

# Run the smoke sweeps (DIP, then StyleGAN) on embedded Ray into $(STORE)/, then open the
# dashboard on it at port $(PORT). Runs already in the store are skipped, so a second
# `make demo` starts fast. `make demo PORT=8502 STORE=/tmp/demo` when the defaults are taken.
demo: $(VENV)/.installed
	$(BIN)/priorlab sweep configs/dip_smoke.yaml --store $(STORE)
	$(BIN)/priorlab sweep configs/stylegan_smoke.yaml --store $(STORE)
	$(BIN)/priorlab dashboard --store $(STORE) --port $(PORT)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-dev
	for b in tests/benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# The GPU proof kit (tests/benchmarks/gpu_kit.py): pytest -m gpu plus the CUDA benchmarks, about
# 8 minutes on one NVIDIA GPU, written to gpu-report.md.
gpu-check: $(VENV)/.installed-dev
	$(BIN)/python tests/benchmarks/gpu_kit.py --out gpu-report.md

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
