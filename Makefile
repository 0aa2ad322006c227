# The few verbs people type. `make up` and `make test` work on a fresh clone.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: up test lint fmt migrate bench chaos typecheck clean chromium

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

up: $(STAMP)
	$(VENV)/bin/forcebot up --demo

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

typecheck: $(STAMP)
	$(VENV)/bin/mypy

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrate: $(STAMP)
	$(VENV)/bin/forcebot db upgrade

# P1/P3/P4 and chaos use a throwaway database on PostgreSQL at 127.0.0.1:5432 as well as SQLite
# (FORCEBOT_BENCH_DATABASE_URL names another server); `wrk` is needed for P4 (apt-get install wrk).
bench: $(STAMP)
	$(PY) -m bench

chaos: $(STAMP)
	$(PY) -m bench.chaos

# Browser tests drive Debian's Chromium; there is no browser download.
chromium:
	test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache .mypy_cache *.egg-info
