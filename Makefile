# The two set-up commands a newcomer needs (see README): `make demo` and `make test`.
# Both create .venv and install everything the project needs on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench setup rules browser

$(BIN)/emdash-fb: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(BIN)/emdash-fb node_modules/.package-lock.json browser

# Chromium and Firefox for the web viewer's tests (apt when missing and allowed; see the script)
browser:
	@bash scripts/install-browser.sh

demo: $(BIN)/emdash-fb
	$(BIN)/emdash-fb demo

test: setup
	$(BIN)/pytest -q

lint: $(BIN)/emdash-fb
	$(BIN)/ruff check emdash_fb tests benchmarks rules docs
	$(BIN)/ruff format --check emdash_fb tests benchmarks rules docs

# the rules file is generated from named conditions: edit rules/build_rules.py, then
rules: $(BIN)/emdash-fb
	$(BIN)/python rules/build_rules.py

bench: $(BIN)/emdash-fb
	$(BIN)/python benchmarks/emulator_bench.py
