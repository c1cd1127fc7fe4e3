# stagevote: `make run` serves on the embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run migrate test test-sqlite test-postgresql lint format bench clean nginx

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "stagevote needs Python 3.11+ as $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/stagevote migrate

# `make run HOST=0.0.0.0 PORT=9000 WORKERS=2`; unset, STAGEVOTE_HOST / STAGEVOTE_PORT / STAGEVOTE_WORKERS apply
run: migrate
	$(BIN)/stagevote serve $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT)) $(if $(WORKERS),--workers $(WORKERS))

test: install lint test-sqlite test-postgresql

test-sqlite: install
	@echo "== tests on SQLite with the in-memory adapters"
	STAGEVOTE_TEST_BACKEND=sqlite $(BIN)/pytest -n 2 -p no:cacheprovider

test-postgresql: install nginx
	@echo "== tests on the real PostgreSQL and Redis"
	STAGEVOTE_TEST_BACKEND=postgresql $(BIN)/pytest -n 2 -p no:cacheprovider

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports

# not part of `make test`: wrk, pgbench and several minutes of load (bench/vote_path.py says what it measures)
bench: install
	$(BIN)/python bench/vote_path.py
	@if [ -f bench/fanout.py ]; then $(BIN)/python bench/fanout.py; fi

# tests/distributed runs real nginx (the config in deploy/) in front of two servers: the Debian package
nginx:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { \
	  echo "installing nginx (Debian package) for tests/distributed"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null \
	  || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; } \
	  || { echo "tests/distributed needs nginx: sudo apt-get install nginx"; exit 1; }

format: install
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
