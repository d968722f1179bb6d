# creditdesk: everything runs from a local virtualenv in .venv, made on first use.
#
#   make demo    install, then serve with demo data   (HOST=0.0.0.0 PORT=9000 make demo)
#   make test    install with the dev extra, then run the whole test suite
#                (set CREDITDESK_TEST_DATABASE_URL=postgresql://... to run it on PostgreSQL too;
#                 PYTEST_ARGS="-x -k idempotency" passes options to pytest)
#   make install install the package into .venv
#   make clean   remove .venv and build leftovers (your creditdesk.db is kept)
#
# Installing again is a no-op until pyproject.toml changes (stamp files in .venv).

PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

PY := $(VENV)/bin/python
STAMP := $(VENV)/.creditdesk-installed
DEV_STAMP := $(VENV)/.creditdesk-installed-dev

.DEFAULT_GOAL := help
.PHONY: help install install-dev demo test clean

help:
	@sed -n '1,11p' Makefile | sed 's/^# \{0,1\}//'

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "creditdesk needs Python 3.11 or newer; run: make PYTHON=python3.12 ...")'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	@touch $@

$(DEV_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP) $@

install: $(STAMP)

install-dev: $(DEV_STAMP)

demo: $(STAMP)
	$(VENV)/bin/creditdesk serve --demo --host $(HOST) --port $(PORT)

test: $(DEV_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
