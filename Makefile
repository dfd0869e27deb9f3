# `make demo` and `make test` work on a fresh machine: they create .venv, install torch first (pinned: a local CPU
# wheel here; an unpinned torch pulls gigabytes of CUDA packages), then the package.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_PIN := torch==2.13.0

.PHONY: demo test lint bench setup docs

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PIN)

$(VENV)/.installed-test: $(BIN)/activate pyproject.toml
	$(BIN)/pip install -q $(TORCH_PIN) -e ".[dev]"
	touch $@

setup: $(VENV)/.installed-test

demo: $(VENV)/.installed-test
	$(BIN)/veriloss demo

test: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

docs: $(VENV)/.installed-test
	bash .ci/docs

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# speechbrain (a reference of benchmarks/metrics.py) wants torchaudio, which has no build for torch 2.13 CPU:
# install it without dependencies; the benchmark runs its EER/minDCF source.
bench: $(VENV)/.installed-test
	$(BIN)/pip install -q --no-deps speechbrain
	$(BIN)/python benchmarks/losses.py
	$(BIN)/python benchmarks/metrics.py
