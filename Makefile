# DermCurate — the two commands of the README:
#   make demo   set up and run the whole product on embedded defaults (SQLite, no Redis)
#   make test   set up and pass every test (starts throwaway PostgreSQL and Redis)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint format run worker migrate clean-demo bench

$(BIN)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(BIN)/.dev: $(BIN)/.runtime requirements-dev.txt
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

demo: $(BIN)/.runtime
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo
	scripts/run-demo.sh

test: $(BIN)/.dev
	scripts/apt-ensure.sh chromium chromium
	scripts/with-test-services.sh $(MAKE) --no-print-directory lint pytest

pytest:
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(BIN)/.dev
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=config.settings.test

format: $(BIN)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(BIN)/.dev
	scripts/with-test-services.sh sh -c '$(BIN)/python bench/ingest.py && $(BIN)/python bench/dedup.py && $(BIN)/python bench/review.py && $(BIN)/python bench/snapshot.py && $(BIN)/python bench/export.py && $(BIN)/python bench/train_input.py && $(BIN)/python bench/s3_storage.py'

clean-demo:
	rm -rf var
