# Gatehouse developer commands. A fresh clone needs nothing but Python 3.11.
#   make run     start a complete local Gatehouse on http://localhost:8000/
#   make test    run the test suite (SQLite; set DATABASE_URL / REDIS_URL for PostgreSQL / Redis)

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
# Touched after each successful install, so the venv is reinstalled only when
# pyproject.toml or constraints.txt is newer than the last install.
STAMP := $(VENV)/.installed
# Extra arguments for pytest, e.g. make test ARGS="-k expiry -x"
ARGS ?=
# Where make run's web server listens, e.g. make run PORT=8080
PORT ?= 8000
# More runlocal options, e.g. make run RUN_ARGS="--asgi-port 0 --https-port 0"
RUN_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv setup run test lint format check migrations-check constraints api-contract

help:
	@echo "make run               migrate, collect static files, create the first admin, then run"
	@echo "                       the Procfile's processes: web, asgi, worker, beat, … (Ctrl-C stops all)"
	@echo "make test              run the tests (ARGS=... is passed to pytest)"
	@echo "make lint              ruff check, ruff format --check and the apps' layering (lint-imports)"
	@echo "make format            ruff format and ruff check --fix"
	@echo "make check             Django system checks"
	@echo "make migrations-check  fail if a model change lacks its migration"
	@echo "make api-contract      schemathesis: the live management API against its OpenAPI schema"
	@echo "make constraints       rewrite constraints.txt from the venv after changing pyproject.toml"
	@echo "make venv              create .venv and install Gatehouse with its dev tools"
	@echo "make setup             generate the laptop keys into var/ (make run does it first)"

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 not found; install it or pass PYTHON=/path/to/python3.11"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Gatehouse needs Python 3.11, $(PYTHON) is " + sys.version.split()[0] + "; pass PYTHON=/path/to/python3.11")'
	@test -x $(BIN)/python || { echo "Creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@# Quiet: setuptools warns about every editable install of a flat layout.
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --disable-pip-version-check --quiet -e '.[dev]' -c constraints.txt
	@touch $@

# The keys and folders of var/, made once; importing the settings only reads them.
setup: venv
	$(BIN)/python -m portal.setup_local

run: setup
	$(MANAGE) migrate --noinput
	$(MANAGE) collectstatic --noinput --verbosity 0
	$(MANAGE) ensure_admin
	@# runlocal starts the Procfile's processes (web, asgi, worker, beat, ingest, https),
	@# restarts one that dies and stops them all on Ctrl-C.
	exec $(MANAGE) runlocal --port $(PORT) $(RUN_ARGS)

test: venv
	$(BIN)/python -m pytest $(ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: setup
	$(MANAGE) check

migrations-check: setup
	$(MANAGE) makemigrations --check --dry-run

# The management API on a live server against its own schema (every schemathesis check).
# SQLite in a temporary folder, or CONTRACT_DATABASE_URL=postgres://... (dropped and
# created again) and CONTRACT_REDIS_URL=redis://...; CONTRACT_MAX_EXAMPLES per operation.
api-contract: venv
	bash .ci/api-contract

constraints: venv
	$(BIN)/python -m pip freeze --exclude-editable > constraints.txt
	@touch $(STAMP)
