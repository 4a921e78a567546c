# Two entry points: `make demo` (the main job) and `make test` (the whole suite).
# Both build .venv from the project's own files: python3.11 + requirements/lock.txt.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
COMPAT_VENV := .venv-compat
COMPAT_STAMP := $(COMPAT_VENV)/.installed

.PHONY: venv demo test lint typecheck unit clean serve

venv: $(STAMP) $(COMPAT_STAMP)

$(STAMP): requirements/lock.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements/lock.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

# Microsoft's own client, for the wire-compatibility test; kept out of the main venv.
$(COMPAT_STAMP): requirements/compat-lock.txt $(STAMP)
	test -x $(COMPAT_VENV)/bin/python || $(PYTHON) -m venv $(COMPAT_VENV)
	$(BIN)/uv pip sync --quiet --python $(COMPAT_VENV)/bin/python requirements/compat-lock.txt
	touch $(COMPAT_STAMP)

demo: venv
	$(BIN)/python scripts/demo.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

test: venv lint typecheck
	$(BIN)/python -m pytest -n 2 tests

serve: venv
	$(BIN)/python -m airflow_provider.server --host 127.0.0.1 --port 12800 --data-dir .server-data

lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --no-header -o requirements/lock.txt

clean:
	rm -rf $(VENV) $(COMPAT_VENV) .server-data .pytest_cache .mypy_cache .ruff_cache
