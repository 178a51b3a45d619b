# The README's two commands: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
# The URL printed at start and put into emails follows the port unless SITE_URL is set.
export SITE_URL ?= http://$(HOST):$(PORT)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: run test install lint format bench bench-scale demo chartjs migrate clean

$(STAMP): pyproject.toml requirements.lock agent/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]' -e ./agent
	@touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	@# Not `npm ci`: ccusage's optional per-platform binaries are absent from the lock by design.
	npm install --no-audit --no-fund --no-save --silent
	@touch $(NODE_STAMP)

install: $(STAMP) $(NODE_STAMP)

migrate: install
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py createcachetable
	@# The agent's wheel the machines page links to (pipx install <url>); no network needed.
	$(BIN)/python manage.py build_agent_wheel

run: migrate
	PATH="$(CURDIR)/$(BIN):$$PATH" WEB_HOST=$(HOST) WEB_PORT=$(PORT) $(BIN)/honcho start -f Procfile

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.agent_sync

# The read path at a 1,000-member team on PostgreSQL (DATABASE_URL); builds its own database.
bench-scale: install
	$(BIN)/python -m benchmarks.scale --output docs/benchmarks.md $(BENCH_ARGS)

demo: migrate
	$(BIN)/python manage.py load_demo

chartjs:
	scripts/vendor_chartjs.sh

clean:
	rm -rf $(VENV) node_modules var
