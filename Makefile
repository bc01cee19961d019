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
test: lint system-deps
	$(BIN)/pytest

# ruff (lint and format) and mypy --strict; `make test` runs it first.
lint: $(STAMP)
	$(BIN)/ruff check feedsvc tests bench
	$(BIN)/ruff format --check feedsvc tests bench
	$(BIN)/mypy

# Headless Chromium, newsboat, nginx and PostgreSQL (>= 14; Debian 12 has 15) for the screenshot,
# feed-reader, nginx-snippet and PostgreSQL-store tests. Installed with apt when run as root (CI);
# elsewhere those tests skip and say why. PostgreSQL's programs are not on PATH in Debian: it
# counts as present when $(PG_INITDB) matches (tests/pg.py runs its own throwaway cluster).
# apt waits for a busy package manager (unattended-upgrades, another install) instead of
# failing: DPkg::Lock::Timeout covers the dpkg locks of `install` but not the lists lock of
# `update` (apt 2.6), so `update` is retried every APT_RETRY s while another apt holds it.
APT_WAIT    ?= 600
APT_RETRY   ?= 5
SYSTEM_CMDS ?= chromium newsboat nginx
SYSTEM_PKGS ?= chromium newsboat nginx fonts-dejavu-core postgresql
PG_INITDB   ?= /usr/lib/postgresql/*/bin/initdb
APT_GET     := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=$(APT_WAIT)

system-deps:
	@missing=; for c in $(SYSTEM_CMDS); do \
	  command -v $$c >/dev/null || [ -x /usr/sbin/$$c ] || missing="$$missing $$c"; done; \
	ls $(PG_INITDB) >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing $(SYSTEM_PKGS) (apt; missing:$$missing)"; \
	  waited=0; \
	  until out=$$($(APT_GET) update -qq 2>&1); do \
	    case "$$out" in *"Could not get lock"*|*"Unable to lock"*) ;; \
	      *) echo "$$out" >&2; exit 1;; esac; \
	    if [ $$waited -ge $(APT_WAIT) ]; then echo "$$out" >&2; exit 1; fi; \
	    if [ $$waited = 0 ]; then echo "apt is busy: waiting up to $(APT_WAIT) s for its lock"; fi; \
	    sleep $(APT_RETRY); waited=$$((waited + $(APT_RETRY))); \
	  done; \
	  $(APT_GET) install -y -qq --no-install-recommends $(SYSTEM_PKGS) >/dev/null; \
	else echo "note:$$missing missing and no root apt-get: their tests will skip"; fi

# COLD_BENCH_ARGS=--full adds 100,000 seeds to the cold-build comparison (many minutes).
COLD_BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python bench/build_bench.py
	$(BIN)/python bench/daemon_bench.py
	$(BIN)/python bench/cold_bench.py $(COLD_BENCH_ARGS)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Everything a build, the tests or the tools wrote: feeds/ (all of it but .gitkeep: feeds,
# .gz, index.html, articles/, archive/, category/ and [[feeds]] folders, .tmp), the state
# dirs, caches and the venv. The tracked seeds/ and config/feedsvc.toml stay.
clean:
	rm -rf $(VENV) config/.feedsvc .feedsvc .mypy_cache .pytest_cache .ruff_cache .hypothesis
	find feeds -mindepth 1 -maxdepth 1 ! -name .gitkeep -exec rm -rf {} +
