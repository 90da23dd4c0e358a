# One command per chore (DESIGN rule 15). `make help` lists them.
# Everything runs from the project's own virtual environment (.venv), created on first use.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi
STAMP := $(VENV)/.installed
IDP_PORT ?= 5000
RP_PORT ?= 5001

.DEFAULT_GOAL := help
.PHONY: help install run test test-pg test-embedded services browser-deps lint db-check bench clean

help: ## List the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): setup.cfg constraints.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the package with its test tools (pinned by constraints.txt)

run: $(STAMP) ## Serve the provider (http://127.0.0.1:5000) and the demo app (http://127.0.0.1:5001) with demo data; Ctrl-C stops both
	IDP_CONFIG=development $(FLASK) db upgrade
	IDP_CONFIG=development $(FLASK) demo load --rp-url http://127.0.0.1:$(RP_PORT)
	@echo "Provider:  http://127.0.0.1:$(IDP_PORT)   (student / Student-Demo-2026)"
	@echo "Demo app:  http://127.0.0.1:$(RP_PORT)    Ctrl-C stops both."
	@export IDP_CONFIG=development; pids=""; \
	trap 'kill $$pids 2>/dev/null; wait' INT TERM EXIT; \
	$(FLASK) run --host 127.0.0.1 --port $(IDP_PORT) --no-reload & pids="$$pids $$!"; \
	$(PY) -m clients.demo_rp & pids="$$pids $$!"; \
	wait -n; exit 0

services: ## Make sure PostgreSQL and Redis answer on 127.0.0.1 (start them if not; fail if they cannot be reached)
	@bash .ci/ensure-services

browser-deps: ## Install Debian's chromium and fonts-noto-cjk if missing (browser tests)
	@dpkg -s chromium fonts-noto-cjk >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk; }

test: test-pg test-embedded ## Run every test: on PostgreSQL + Redis (with live and browser tests), then on SQLite + in-process store

test-pg: $(STAMP) services browser-deps
	$(VENV)/bin/pytest -q

test-embedded: $(STAMP)
	IDP_TEST_BACKEND=embedded $(VENV)/bin/pytest -q -m 'not live and not browser'

lint: $(STAMP) ## ruff check
	$(VENV)/bin/ruff check idp clients tests bench

db-check: $(STAMP) ## Fail if the models and the migrations disagree (flask db check on a scratch SQLite)
	@rm -f /tmp/idp-db-check.sqlite
	IDP_CONFIG=testing IDP_DATABASE_URL=sqlite:////tmp/idp-db-check.sqlite $(FLASK) db upgrade
	IDP_CONFIG=testing IDP_DATABASE_URL=sqlite:////tmp/idp-db-check.sqlite $(FLASK) db check
	@rm -f /tmp/idp-db-check.sqlite

bench: $(STAMP) services ## Benchmark under gunicorn (2 workers, PostgreSQL + Redis) and print a table
	$(PY) bench/run.py

clean: ## Remove the virtual environment and caches (keeps instance/ and keys/)
	rm -rf $(VENV) .pytest_cache .ruff_cache
