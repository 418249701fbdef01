# Two commands on a fresh machine: `make run` and `make test`. Both create .venv as needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run serve test test-fast lint format check clean bench

$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# The JS client's Node tests check frames with ajv (tests/js/package.json); npm ci writes
# node_modules/.package-lock.json, so this runs again only when the lock file changes.
JS_DEPS := tests/js/node_modules/.package-lock.json
$(JS_DEPS): tests/js/package.json tests/js/package-lock.json
	@if command -v npm >/dev/null 2>&1; then cd tests/js && npm ci --no-audit --no-fund --silent; \
	else echo "npm not found: tests/js needs \`npm ci\` for the JS client's tests"; fi

## run: install, migrate, and serve HTTP + WebSockets on http://$(HOST):$(PORT)/
run: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

## serve: production-like: debug off, several daphne workers under supervisor, on Redis
serve: $(VENV)/.runtime
	deploy/serve.sh

# Most tests wait (on sockets, servers, timers) rather than compute, so the suite runs in
# several processes, a test module per process at a time (module fixtures start once).
TEST_PROCESSES ?= 4
PARALLEL := -n $(TEST_PROCESSES) --dist loadfile

## test: install, lint, and run the whole suite
test: $(VENV)/.dev $(JS_DEPS) lint
	$(BIN)/python -m pytest $(PARALLEL) $(PYTEST_ARGS)

## test-fast: the tiers with no server process or browser (tests/unit, asgi, js)
test-fast: $(VENV)/.dev $(JS_DEPS)
	$(BIN)/python -m pytest $(PARALLEL) tests/unit tests/asgi tests/js $(PYTEST_ARGS)

## bench: chatsite against a reference Socket.IO server; writes docs/performance.md
bench: $(VENV)/.dev
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	cd bench && npm ci --no-audit --no-fund --silent
	$(BIN)/python bench/run.py $(BENCH_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles run test-db*.sqlite3* tests/js/node_modules
