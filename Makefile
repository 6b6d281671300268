# The two commands of the README: `make demo` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.symtrans-installed

.PHONY: demo test lint setup clean models

setup: $(STAMP)

# torch first, pinned: the CPU wheel on local disk. A bare `torch` requirement resolved first
# can pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/symtrans demo -o symtrans-demo

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check symtrans tests scripts
	$(VENV)/bin/mypy symtrans

# Retrain the embedded models (fixed seed, CPU, a few minutes).
models: $(STAMP)
	$(PY) scripts/train_tiny_models.py --out symtrans/models/data

clean:
	rm -rf $(VENV) symtrans-demo .pytest_cache
