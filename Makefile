# Fresh machine -> working install in .venv. torch comes first from the local CPU wheel; otherwise pip
# would resolve sentence-transformers' torch requirement to a multi-GB CUDA build.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: install demo test test-fast eval bench lint

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "torch==2.13.0"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/rag ingest seeds
	$(VENV)/bin/rag ask "What was Calix's Q4 revenue?"

test: install
	$(VENV)/bin/python -m pytest -q

# The quick local loop; CI runs everything (make test).
test-fast: install
	$(VENV)/bin/python -m pytest -q -m "not slow"

eval: install
	$(VENV)/bin/rag eval --suite all --out report

# Benchmarks print a table and write bench/results/*.json (see docs/benchmarks.md); minutes, not part of CI.
bench: install
	$(PY) bench/ingest.py
	$(PY) bench/search.py
	$(PY) bench/rescore.py
	$(PY) bench/http_service.py
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev,bench]"
	$(PY) bench/peer.py

lint: install
	$(VENV)/bin/ruff check rag tests bench
