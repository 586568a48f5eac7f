# Two commands do all set-up on a fresh machine (Python 3.11+, make, git):
#   make demo   the main job: the bakestore UI on a demo database (embedded SQLite, no other service)
#   make test   install everything the tests need and run the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_DB ?= .bakestore-demo/demo.db
PORT   ?= 8001

.PHONY: demo test test-fast bench golden browser-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/bakestore --db $(DEMO_DB) ui --demo --port $(PORT)

# Browser tests drive Debian's Chromium (a test tool's own browser download does not work here).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing and cannot be installed: browser tests will fail" >&2; fi; }
	@command -v git >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y -qq git >/dev/null; fi; }

test: $(VENV)/.installed browser-deps
	$(BIN)/python -m pytest -n 2 -q

test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest -n 2 -q -m "not browser and not slow"

bench: $(VENV)/.installed
	$(BIN)/python bench/run_all.py

# Regenerate the golden export of the demo dataset (tests/test_golden_export.py compares it).
golden: $(VENV)/.installed
	BAKESTORE_HOME=$$(mktemp -d) $(BIN)/python -c "from bakestore.demo import export_golden; export_golden('exports/demo')"

clean:
	rm -rf $(VENV) .bakestore-demo .pytest_cache .hypothesis
