# DermCurate — the two commands of the README:
#   make demo   set up and run the whole product on embedded defaults (SQLite, no Redis)
#   make test   set up and pass every test (starts throwaway PostgreSQL and Redis)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-preflight pytest lint format run worker migrate clean-demo bench screenshots

$(BIN)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(BIN)/.dev: $(BIN)/.runtime requirements-dev.txt
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

# DEMO_ARGS: options for `manage.py demo`, e.g. DEMO_ARGS="--per-class 4".
demo: $(BIN)/.runtime
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo $(DEMO_ARGS)
	$(BIN)/python scripts/run-demo.py

test: test-preflight $(BIN)/.dev
	scripts/apt-ensure.sh chromium chromium
	scripts/with-test-services.sh $(MAKE) --no-print-directory lint pytest

# Before minutes of setup: the Debian packages that apt would install, which needs root.
test-preflight:
	@scripts/test-preflight.sh

pytest:
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(BIN)/.dev
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=config.settings.test

format: $(BIN)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(BIN)/.dev
	scripts/with-test-services.sh sh -c '$(BIN)/python bench/ingest.py && $(BIN)/python bench/dedup.py && $(BIN)/python bench/review.py && $(BIN)/python bench/snapshot.py && $(BIN)/python bench/export.py && $(BIN)/python bench/train_input.py && $(BIN)/python bench/s3_storage.py && $(BIN)/python bench/active_learning.py && $(BIN)/python bench/assisted.py'

# The README's screenshots (docs/screenshots/), taken in Debian's chromium.
screenshots: $(BIN)/.dev
	DERMCURATE_SCREENSHOTS=docs/screenshots scripts/with-test-services.sh $(BIN)/pytest -p no:cacheprovider tests/e2e/test_screenshots.py

clean-demo:
	rm -rf var
