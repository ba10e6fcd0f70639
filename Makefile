# chatshare: `make up` runs everything, `make test` tests everything (README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3
UV_VERSION := 0.13.9
UV_HOME := .cache/uv-bootstrap
UV := $(UV_HOME)/bin/uv
VENV := .venv
STAMP := $(VENV)/.synced-$(shell cat pyproject.toml uv.lock | md5sum | cut -c1-12)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help install up down status test test-unit test-integration test-faults bench lint format contracts clean

help:
	@echo "make up      start Kafka, PostgreSQL and every service in the background"
	@echo "make down    stop what make up started (data stays in .data/)"
	@echo "make test    the whole test suite, on its own broker and database"
	@echo "make test-faults  the fault suite alone (part of make test)"
	@echo "make bench   the benchmarks; writes BENCHMARKS.md"
	@echo "make lint    ruff and mypy"

$(UV):
	@echo "• installing uv $(UV_VERSION) into $(UV_HOME) (first run only)…"
	@$(PYTHON_BOOT) -m venv $(UV_HOME)
	@$(UV_HOME)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(STAMP): pyproject.toml uv.lock | $(UV)
	@echo "• installing Python dependencies into $(VENV) (first run takes a minute)…"
	@rm -f $(VENV)/.synced-*
	@$(UV) sync --frozen --quiet
	@touch $@

CHROMIUM := /usr/bin/chromium

# The shared-chat page is tested in a real headless Chromium: Debian's package, never a browser
# that a test tool downloads.
$(CHROMIUM):
	@echo "• installing Debian's chromium for the page tests (first run only)…"
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null; \
	else \
		echo "  not root: run 'sudo apt-get install chromium', or the browser tests are skipped"; \
	fi

/usr/bin/wrk:
	@echo "• installing Debian's wrk for the HTTP benchmarks (first run only)…"
	@apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk > /dev/null

install: $(STAMP)
	@$(VENV)/bin/chatshare-stack fetch-kafka

up: install
	@$(VENV)/bin/chatshare-stack up

down:
	@if [ -x $(VENV)/bin/chatshare-stack ]; then $(VENV)/bin/chatshare-stack down; else echo "nothing to stop (no .venv)"; fi

status: install
	@$(VENV)/bin/chatshare-stack status

test: install $(CHROMIUM)
	@$(VENV)/bin/pytest tests

test-unit: install
	@$(VENV)/bin/pytest tests/unit

# Kills, duplicate deliveries and races on the services as processes (tests/faults/, marked
# `faults`); `make test` runs them too.
test-faults: install
	@$(VENV)/bin/pytest -m faults tests/faults

bench: install /usr/bin/wrk
	@$(VENV)/bin/python -m tests.benchmarks.run

lint: install
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy services contracts deploy/devstack tests/benchmarks

format: install
	@$(VENV)/bin/ruff check --fix .
	@$(VENV)/bin/ruff format .

contracts: install
	@$(VENV)/bin/python -m contracts.generate

clean: down
	rm -rf .data
