# Set-up and checks for feedsvc. Needs only python3 (3.11+) with venv and pip.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: feeds test lint bench clean system-deps

# Command 1 (README): install, then build the feeds from seeds/ and config/.
feeds: $(STAMP)
	$(BIN)/feedsvc build --config config/

# Command 2 (README, .ci/run): install, then lint, type-check and run the whole test suite.
test: $(STAMP) system-deps
	$(BIN)/ruff check feedsvc tests bench
	$(BIN)/ruff format --check feedsvc tests bench
	$(BIN)/mypy
	$(BIN)/pytest

# Headless Chromium and newsboat for the screenshot and feed-reader tests. Installed with apt
# when run as root (CI); elsewhere those tests skip and say why.
system-deps:
	@if command -v chromium >/dev/null && command -v newsboat >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium and newsboat (apt)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends chromium newsboat fonts-dejavu-core >/dev/null; \
	else echo "note: chromium or newsboat missing and no root apt-get: their tests will skip"; fi

bench: $(STAMP)
	$(BIN)/python bench/build_bench.py
	$(BIN)/python bench/daemon_bench.py

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) config/.feedsvc .feedsvc feeds/*.xml .mypy_cache .pytest_cache .ruff_cache
