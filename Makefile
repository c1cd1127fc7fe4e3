# stagevote: `make run` serves on the embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run migrate test test-sqlite test-postgresql lint format bench bench-fanout clean nginx
.PHONY: demo chromium
CHROMIUM ?= /usr/bin/chromium

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "stagevote needs Python 3.11+ as $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/stagevote migrate

# `make run HOST=0.0.0.0 PORT=9000 WORKERS=2` (and `make demo`); unset, STAGEVOTE_HOST / STAGEVOTE_PORT /
# STAGEVOTE_WORKERS apply. As settings, so that the demo's printed pages and the links in messages point there too.
SERVE_ENV = $(if $(HOST),STAGEVOTE_HOST=$(HOST)) $(if $(PORT),STAGEVOTE_PORT=$(PORT)) $(if $(WORKERS),STAGEVOTE_WORKERS=$(WORKERS))
run: migrate
	$(SERVE_ENV) $(BIN)/stagevote serve

test: install lint chromium test-sqlite test-postgresql

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
	$(BIN)/python bench/fanout.py

# the live stream at venue scale: 5,000 raw websocket clients against `stagevote serve` on PostgreSQL + Redis
bench-fanout: install
	$(BIN)/python bench/fanout.py

.PHONY: bench-export
bench-export: install  ## 1,000,000 vote rows as CSV and XLSX over HTTP from PostgreSQL (not part of make test)
	$(BIN)/python bench/export.py

format: install
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

demo: migrate
	$(SERVE_ENV) $(BIN)/stagevote demo
	$(SERVE_ENV) $(BIN)/stagevote serve

# The browser tests (tests/e2e) drive Debian's chromium; a fresh machine gets it here. Without it they skip.
chromium:
	@test -x $(CHROMIUM) || { echo "== installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	  || echo "chromium could not be installed (apt-get as root): the browser tests will skip"; }

.PHONY: bench-outbox
bench-outbox: install
	$(BIN)/python bench/outbox_flood.py

# `make proof`: schemathesis over every operation with a larger budget (PROOF_EXAMPLES per operation, role and
# mode), the hostile cases, and the fault tests (every test marked `proof`, on PostgreSQL + Redis + RabbitMQ, as
# `make test` needs them), the earlier hostile tests of each domain, and the fuzzing again on SQLite; then the
# counts, whose last line is `acknowledged votes lost: …, messages doubled: …` (tests/proof/figures.py).
PROOF_EXAMPLES ?= 40
PROOF_RESULTS := var/proof
PROOF_HOSTILE := tests/attendees/test_confirm_lockout.py tests/attendees/test_who_may_vote.py \
	tests/auth/test_accounts.py tests/auth/test_password_hashing.py tests/core/test_body_limits.py \
	tests/core/test_client_address.py tests/core/test_out_of_range.py tests/core/test_redis_down.py \
	tests/sms/test_webhook.py
.PHONY: proof
proof: install
	rm -rf $(PROOF_RESULTS)
	@status=0; \
	STAGEVOTE_TEST_BACKEND=postgresql STAGEVOTE_PROOF_RESULTS=$(PROOF_RESULTS) STAGEVOTE_FUZZ_EXAMPLES=$(PROOF_EXAMPLES) \
	  $(BIN)/pytest -n 2 -p no:cacheprovider -q -m proof tests || status=1; \
	STAGEVOTE_TEST_BACKEND=postgresql $(BIN)/pytest -n 2 -p no:cacheprovider -q $(PROOF_HOSTILE) || status=1; \
	STAGEVOTE_TEST_BACKEND=sqlite STAGEVOTE_PROOF_RESULTS=$(PROOF_RESULTS) STAGEVOTE_FUZZ_EXAMPLES=$(PROOF_EXAMPLES) \
	  $(BIN)/pytest -p no:cacheprovider -q tests/proof || status=1; \
	$(BIN)/python -m tests.proof.summary $(PROOF_RESULTS) || status=1; \
	exit $$status
