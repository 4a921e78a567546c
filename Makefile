# Two entry points: `make demo` (the main job) and `make test` (the whole suite).
# Both build .venv from the project's own files: python3.11 + requirements/lock.txt.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
COMPAT_VENV := .venv-compat
COMPAT_STAMP := $(COMPAT_VENV)/.installed
MIN_VENV := .venv-airflow-min
MIN_STAMP := $(MIN_VENV)/.installed
# What runs on the oldest supported Airflow: everything but the server's own tests, the
# Microsoft-client check, the real-processes suite and the packaging/docs checks.
MIN_TESTS := tests/unit tests/api tests/hooks tests/operators tests/sensors tests/records tests/waiting \
	tests/outputs tests/triggers tests/dags \
	tests/integrations tests/ui tests/test_provider_info.py

.PHONY: venv demo test test-main test-e2e test-distributed test-min lint typecheck clean serve lock \
	bench docs distributed-deps browser-deps

venv: $(STAMP) $(COMPAT_STAMP)

$(STAMP): requirements/lock.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements/lock.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

# Microsoft's own client, for the wire-compatibility test; kept out of the main venv.
$(COMPAT_STAMP): requirements/compat-lock.txt $(STAMP)
	test -x $(COMPAT_VENV)/bin/python || $(PYTHON) -m venv $(COMPAT_VENV)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(COMPAT_VENV)/bin/python requirements/compat-lock.txt
	touch $(COMPAT_STAMP)

# The same project on the oldest supported Airflow (requirements/airflow-min.txt), with every
# dependency at the lower bound pyproject.toml declares (make lock).
$(MIN_STAMP): requirements/lock-airflow-min.txt $(STAMP)
	test -x $(MIN_VENV)/bin/python || $(PYTHON) -m venv $(MIN_VENV)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(MIN_VENV)/bin/python requirements/lock-airflow-min.txt
	$(BIN)/uv pip install --quiet --python $(MIN_VENV)/bin/python --no-deps -e .
	touch $(MIN_STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

# The whole suite: static checks, the parallel suite, the real-processes suite, the
# distributed deployment, then the oldest supported Airflow.
test: lint typecheck test-main test-e2e test-distributed test-min

test-main: venv
	$(BIN)/python -m pytest -n 2 -m "not e2e" tests

# The real-processes suite drives the Airflow UI in Debian's chromium (tests/e2e/test_browser.py).
test-e2e: venv browser-deps
	$(BIN)/python -m pytest -m "e2e and not distributed" tests/e2e

# PostgreSQL, Redis, Celery workers and two triggerers on loopback (docs/e2e.md).
test-distributed: venv distributed-deps
	$(BIN)/python -m pytest -m "e2e and distributed" tests/distributed

# The servers the distributed suite starts itself: redis-server (the Celery broker) and
# PostgreSQL's initdb/postgres (the metadata database), installed from Debian's packages
# when missing.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
distributed-deps:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	{ command -v initdb || ls /usr/lib/postgresql/*/bin/initdb; } >/dev/null 2>&1 \
		|| missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		echo "Installing$$missing from Debian's packages"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# The browser the UI tests drive (through Playwright, with nothing downloaded): Debian's
# chromium, installed when missing.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing chromium from Debian's packages"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	}

test-min: $(MIN_STAMP)
	$(MIN_VENV)/bin/python -m pytest -n 2 -m "not e2e" $(MIN_TESTS)

bench: venv
	$(BIN)/python benchmarks/run_all.py

docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

serve: venv
	$(BIN)/python -m airflow_provider.server --host 127.0.0.1 --port 12800 --data-dir .server-data

# requirements/lock.txt: the project, its extras and the `dev` dependency group, newest versions
# (existing pins kept); requirements/lock-airflow-min.txt: the same at the lower bounds of
# pyproject.toml (--resolution lowest-direct) on the oldest supported Airflow (scripts/lock.py).
lock:
	$(BIN)/python scripts/lock.py --uv $(BIN)/uv

clean:
	rm -rf $(VENV) $(COMPAT_VENV) $(MIN_VENV) .server-data .pytest_cache .mypy_cache .ruff_cache
