# Two commands on a fresh machine:  `make run`  (the service on its embedded defaults)
#                                   `make test` (the whole test suite)
PY ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed

.PHONY: run test test-pg lint bench clean translations

$(STAMP): setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/lantian db upgrade
	$(BIN)/lantian run --host 127.0.0.1 --port 5000

test: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) instance *.egg-info

# The officers' pages' messages: extract, merge into the catalogues, compile (both the .po
# and the .mo are committed, so a fresh clone needs no step).
translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext -k _ --no-location --omit-header -o messages.pot .
	$(BIN)/pybabel update -i messages.pot -d enforcement/translations -D messages --ignore-obsolete -w 100
	$(BIN)/pybabel compile -d enforcement/translations -D messages --statistics
	rm -f messages.pot
