# Two commands on a fresh machine:  `make run`  (the service on its embedded defaults)
#                                   `make test` (the whole test suite)
PY ?= python3
# The development and test environment: runtime plus the [test] extra.
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed
# `make run` serves from its own environment with the runtime dependencies only.
RUN_VENV ?= .venv-run
RUN_BIN = $(RUN_VENV)/bin
RUN_STAMP = $(RUN_VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test test-pg lint bench clean translations

$(STAMP): setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

$(RUN_STAMP): setup.cfg pyproject.toml
	$(PY) -m venv $(RUN_VENV)
	$(RUN_BIN)/pip install -q --upgrade pip
	$(RUN_BIN)/pip install -q -e .
	touch $(RUN_STAMP)

run: $(RUN_STAMP)
	$(RUN_BIN)/lantian db upgrade
	$(RUN_BIN)/lantian run --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(RUN_VENV) instance *.egg-info

# The officers' pages' messages: extract, merge into the catalogues, compile (both the .po
# and the .mo are committed, so a fresh clone needs no step).
translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext -k _ --no-location --omit-header -o messages.pot .
	$(BIN)/pybabel update -i messages.pot -d enforcement/translations -D messages --ignore-obsolete -w 100
	$(BIN)/pybabel compile -d enforcement/translations -D messages --statistics
	rm -f messages.pot
