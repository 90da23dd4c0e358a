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
COUNTY_PORT ?= 5002
# The embedded default, with the issuer on the port asked for (make run IDP_PORT=15000), and the
# county-account button wired to the second instance below (the file `demo county` writes).
RUN_ENV := IDP_CONFIG=development IDP_ISSUER=http://127.0.0.1:$(IDP_PORT) IDP_FEDERATION_FILE=$(CURDIR)/instance/federation-demo.toml
# A second instance of the provider playing 新北市's identity provider (issue 12): its own SQLite
# database, keys and issuer; on "localhost", not 127.0.0.1, so that its cookies are not the first one's.
COUNTY_ENV := IDP_CONFIG=development IDP_ISSUER=http://localhost:$(COUNTY_PORT) IDP_DATABASE_URL=sqlite:///county-ntpc.sqlite IDP_KEYS_DIR=instance/county-ntpc-keys IDP_FEDERATION_FILE=
# The client secret the county gave the national service (written by `demo county`), for every command of it.
COUNTY_SECRET := set -a && . instance/county-ntpc.env && set +a
# Debian packages are installed as root, or through password-less sudo when make runs as another user.
APT := $(if $(filter 0,$(shell id -u)),,sudo -n) env DEBIAN_FRONTEND=noninteractive apt-get

.DEFAULT_GOAL := help
.PHONY: help install run test test-pg test-embedded services python-deps browser-deps lint db-check bench clean

help: ## List the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): setup.cfg constraints.txt pyproject.toml
	@$(PY) -m pip --version >/dev/null 2>&1 || { $(MAKE) --no-print-directory python-deps && $(PYTHON) -m venv --clear $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the package with its test tools (pinned by constraints.txt)

run: $(STAMP) ## Serve the provider (http://127.0.0.1:5000), the demo app (:5001) and 新北市's demo identity provider (:5002) with demo data; Ctrl-C stops all
	$(COUNTY_ENV) $(FLASK) db upgrade
	$(COUNTY_ENV) $(FLASK) demo county --rp-issuer http://127.0.0.1:$(IDP_PORT) --env-file instance/county-ntpc.env --federation-file instance/federation-demo.toml
	$(COUNTY_SECRET) && $(RUN_ENV) $(FLASK) db upgrade
	$(COUNTY_SECRET) && $(RUN_ENV) $(FLASK) demo load --rp-url http://127.0.0.1:$(RP_PORT)
	@echo "Provider:  http://127.0.0.1:$(IDP_PORT)   (student / Pupil-Demo-2026)"
	@echo "Demo app:  http://127.0.0.1:$(RP_PORT)    Ctrl-C stops all three."
	@echo "新北市:     http://localhost:$(COUNTY_PORT)    (county accounts: README, demo data)"
	@$(COUNTY_SECRET); export $(RUN_ENV); pids=""; \
	trap 'kill $$pids 2>/dev/null; wait' INT TERM EXIT; \
	$(FLASK) serve --host 127.0.0.1 --port $(IDP_PORT) --workers 1 & pids="$$pids $$!"; \
	env $(COUNTY_ENV) $(FLASK) serve --host 127.0.0.1 --port $(COUNTY_PORT) --workers 1 & pids="$$pids $$!"; \
	$(PY) -m clients.demo_rp & pids="$$pids $$!"; \
	wait -n; exit 0

services: ## Make sure the tests' PostgreSQL and Redis answer (install and start them if not; fail if they cannot be reached)
	@bash .ci/ensure-services

python-deps: ## Install Debian's python3 and python3-venv if missing (to create .venv)
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "Installing Debian's python3 and python3-venv (apt-get): needed to create $(VENV)"; \
	  { $(APT) update -qq && $(APT) install -y -qq python3 python3-venv; } || \
	  { echo "ERROR: could not install them: as root, run: apt-get install python3 python3-venv" >&2; exit 1; }; }

browser-deps: ## Install Debian's chromium and fonts-noto-cjk, and axe-core (npm, into node_modules/), if missing (browser tests)
	@dpkg -s chromium fonts-noto-cjk >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium and fonts-noto-cjk (apt-get): needed by the browser tests"; \
	  { $(APT) update -qq && $(APT) install -y -qq chromium fonts-noto-cjk; } || \
	  { echo "ERROR: could not install them: as root, run: apt-get install chromium fonts-noto-cjk" >&2; exit 1; }; }
	@test -f node_modules/axe-core/axe.min.js || { \
	  command -v npm >/dev/null 2>&1 || { echo "Installing Debian's npm (apt-get): needed to fetch axe-core"; \
	    { $(APT) update -qq && $(APT) install -y -qq npm; } || \
	    { echo "ERROR: could not install npm: as root, run: apt-get install npm" >&2; exit 1; }; }; \
	  echo "Installing axe-core 4 (npm) into node_modules/: the browser tests' accessibility checks"; \
	  npm install --no-save --no-audit --no-fund --silent axe-core@4 || \
	  { echo "ERROR: npm install axe-core@4 failed" >&2; exit 1; }; }

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

# node-oidc-provider (npm, pinned by bench/node/package-lock.json), the benchmark's comparison.
NODE_BENCH := bench/node/node_modules/.installed
$(NODE_BENCH): bench/node/package.json bench/node/package-lock.json
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
	  echo "Installing Debian's nodejs and npm (apt-get): needed to run node-oidc-provider beside ours"; \
	  { $(APT) update -qq && $(APT) install -y -qq nodejs npm; } || \
	  { echo "ERROR: could not install them: as root, run: apt-get install nodejs npm" >&2; exit 1; }; }
	@echo "Installing node-oidc-provider 9 (npm ci) into bench/node/node_modules/: the benchmark's comparison"
	@cd bench/node && npm ci --no-audit --no-fund --silent || { echo "ERROR: npm ci in bench/node failed" >&2; exit 1; }
	@touch $@

bench: $(STAMP) services $(NODE_BENCH) ## Server CPU per operation: ours (Granian, 2 workers, PostgreSQL + Redis) beside node-oidc-provider, one table
	$(PY) bench/run.py $(BENCH_ARGS)

clean: ## Remove the virtual environment and caches (keeps instance/ and keys/)
	rm -rf $(VENV) .pytest_cache .ruff_cache
