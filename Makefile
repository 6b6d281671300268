# The two commands of the README: `make demo` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.symtrans-installed

NODE_STAMP := node_modules/.symtrans-installed

.PHONY: demo test fuzz lint setup clean models system-deps docs

setup: $(STAMP) $(NODE_STAMP)

# torch first, pinned: the CPU wheel on local disk. A bare `torch` requirement resolved first
# can pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# KaTeX and MathJax 3 (npm) typeset every Markdown math block in the tests.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $(NODE_STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/symtrans demo -o symtrans-demo

test: $(STAMP) system-deps $(NODE_STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

# Exploratory property tests: Hypothesis draws new random examples on every run (`make test`
# draws the same ones every time) and keeps failures in ~/.cache/symtrans-hypothesis.
fuzz: $(STAMP) system-deps $(NODE_STAMP)
	HF_HUB_OFFLINE=1 SYMTRANS_HYPOTHESIS=fuzz $(PY) -m pytest -q \
		tests/test_bad_input.py tests/test_escaping.py tests/test_expression.py -k "fuzz or token or literally or katex"

# LaTeX, poppler, pandoc, Chromium and npm for the tests (apt-get when run as root).
system-deps:
	bash scripts/system-deps.sh

# A second environment with TransformerLens 3.x, which has both the legacy HookedTransformer
# and TransformerBridge: the adapter tests run there too (SYMTRANS_REQUIRE_HOOKED turns the
# HookedTransformer tests' skip into a failure). torch first, pinned, as above.
VENV3  := .venv-tl3
STAMP3 := $(VENV3)/.symtrans-installed
.PHONY: test-tl3

$(STAMP3): pyproject.toml
	test -x $(VENV3)/bin/python || $(PYTHON) -m venv $(VENV3)
	$(VENV3)/bin/python -m pip install --quiet --upgrade pip
	$(VENV3)/bin/python -m pip install --quiet torch==2.13.0
	$(VENV3)/bin/python -m pip install --quiet 'transformer_lens==3.9.*'
	$(VENV3)/bin/python -m pip install --quiet -e . 'pytest>=8' 'hypothesis>=6.100'
	touch $(STAMP3)

test-tl3: $(STAMP3)
	HF_HUB_OFFLINE=1 SYMTRANS_REQUIRE_HOOKED=1 $(VENV3)/bin/python -m pytest -q \
		tests/test_architectures.py tests/test_hooked_transformer.py tests/test_analysis_architectures.py \
		tests/test_hooked_families.py

# The demo reports the README shows (docs/demo/report.md and .tex are golden files in the tests).
docs: $(STAMP)
	rm -rf docs/demo
	HF_HUB_OFFLINE=1 $(VENV)/bin/symtrans demo -o docs/demo
	pdftoppm -png -r 90 -f 1 -l 1 docs/demo/report.pdf docs/demo/report-page
	HF_HUB_OFFLINE=1 $(PY) scripts/update_golden.py
	HF_HUB_OFFLINE=1 $(PY) scripts/paper_page.py

lint: $(STAMP)
	$(VENV)/bin/ruff check symtrans tests scripts benchmarks examples
	$(VENV)/bin/mypy symtrans

# Retrain the embedded models (fixed seed, CPU, a few minutes).
models: $(STAMP)
	$(PY) scripts/train_tiny_models.py --out symtrans/models/data

clean:
	rm -rf $(VENV) node_modules symtrans-demo .pytest_cache
	rm -rf $(VENV3)
