# Two commands for a fresh machine: `make demo` and `make test` (see README.md).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SCHEMAS := deploy/k8s/schemas
# The venv's tools (workbench, dvc, mlflow, hadolint) come first on PATH for every recipe and kernel.
export PATH := $(abspath $(VENV))/bin:$(PATH)
# Python caches the bytecode of the project's own modules (src/, the labs' checks) for every later process
# (kernels, servers, CLI calls, DVC stages), even where a container turned that off (PYTHONDONTWRITEBYTECODE=1).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup demo test test-suite test-serial test-fast lint lab bench lock clean

setup: $(STAMP) $(SCHEMAS)/node_modules/.installed

# uv installs the pinned stack in seconds. Without uv on PATH, uv itself comes from PyPI into the venv first
# (a few seconds), which beats installing the whole stack with pip (minutes). No --compile-bytecode: it compiles
# all 14,500 modules of the venv (30-50 s of a 2-core machine's setup, 75-115 CPU-s), while the demo imports
# fewer than half of them, compiled on first import at a cost lost in the noise (fresh clone, uv hidden, timed
# twice: setup 17-20 s against 46-70 s, the pipeline within 10 s). PYTHONDONTWRITEBYTECODE is unexported above,
# so that bytecode is written once and read by every later process.
UV_PIN := uv==0.13.9
$(STAMP): pyproject.toml requirements.lock
	@if command -v uv >/dev/null 2>&1; then \
		uv venv -q --seed --allow-existing -p 3.11 $(VENV) ; \
	else \
		echo "uv not found: fetching $(UV_PIN) from PyPI into $(VENV), then installing with it"; \
		python3 -m venv $(VENV) && $(PY) -m pip install -q --disable-pip-version-check "$(UV_PIN)" ; \
	fi
	@UV=$$(command -v uv || echo $(VENV)/bin/uv); \
		$$UV pip install -q -p $(PY) -r requirements.lock -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (workbench)" >/dev/null
	@touch $@

# Offline schemas of Argo Rollouts, Argo CD and Gateway API (npm packages pinned by package-lock.json),
# installed once here, never at test time. Without npm the schema tests skip and say so.
$(SCHEMAS)/node_modules/.installed: $(SCHEMAS)/package.json $(SCHEMAS)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix $(SCHEMAS) --ignore-scripts --no-audit --no-fund --loglevel=error && touch $@ ; \
	else \
		echo "npm not found: skipping the Argo Rollouts / Argo CD / Gateway API schemas (install Node.js 20+ for them)"; \
	fi

demo: setup
	$(VENV)/bin/workbench pipeline

# The whole suite on three xdist workers (pyproject.toml; one more than two cores, as tests often wait), whole
# files per worker. The timing-sensitive files (rollouts judged on latency and errors, browsers) and the demo's
# test share one lane that one worker runs one file after another (tests/conftest.py), so no canary is judged
# beside another or beside the demo. Lint and the suite are targets of their own so that
# `python -m benchmarks fresh_clone test` can time each stage.
test: setup lint test-suite

test-suite: setup
	$(VENV)/bin/pytest

# The timing-sensitive files alone, in one process: to tell a busy neighbour from a real failure.
test-serial: setup
	$(VENV)/bin/pytest -m serial -n0

# The inner loop: every test that starts no notebook, server or browser (`make test` stays the whole suite).
test-fast: setup
	$(VENV)/bin/pytest -m "not slow and not serial and not browser"

# ruff's rule set and format, and mypy's strict settings (files = src/ and benchmarks/), live in pyproject.toml:
# a new finding fails `make test`, and so CI.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# JupyterLab on your own copies of notebooks/ in .workbench/notebooks/ (made once, never overwritten; a newer
# release comes as NN-slug.new.ipynb), so the checkout stays clean; your lab files are in .workbench/workspaces/.
lab: setup
	$(VENV)/bin/workbench lab

bench: setup
	$(PY) -m benchmarks

# Re-pin after changing dependencies in pyproject.toml.
lock:
	uv pip compile pyproject.toml --extra test -p 3.11 --no-header --no-annotate -o requirements.lock

clean:
	rm -rf $(VENV) .workbench build
