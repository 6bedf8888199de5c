# Every target uses the project's own virtualenv in .venv, made on first use.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: help install serve test test-sqlite lint format bench bench-messages bench-inbox screenshot instructions profile clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(PY):
	python3 -m venv $(VENV)

install: $(PY) ## install the project with its test and lint tools
	$(PY) -m pip install -q -e '.[dev]'

serve: $(PY) ## serve on the embedded default (SQLite), as the README's first command
	$(PY) -m pip install -q -e . && $(VENV)/bin/chatapp-accounts serve

test: $(PY) ## run every test, as the README's second command and CI do
	$(PY) -m pip install -q -e '.[test]' && $(PY) -m pytest

test-sqlite: install ## run the tests that need no PostgreSQL
	$(PY) -m pytest -m 'not postgres'

lint: install ## ruff (lint and format check) and mypy --strict on src/ and tests/unit
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/ruff format --check src tests bench examples
	$(VENV)/bin/mypy

format: install ## apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix src tests bench examples
	$(VENV)/bin/ruff format src tests bench examples

bench: install ## the benchmark on SQLite, 10 thousand and 1 million accounts (docs/benchmark.md)
	$(PY) bench/run.py

bench-messages: install ## the messages benchmark on SQLite: sends, webhooks, latencies, memory
	$(PY) bench/messages.py

bench-inbox: install ## the inbox with 100,000 messages in one tenant, on SQLite (docs/benchmark.md)
	$(PY) bench/inbox.py

screenshot: install ## docs/inbox.png, the README's picture: the browser tour, saving what it shows
	CHATAPP_SCREENSHOT=$(CURDIR)/docs/inbox.png $(PY) -m pytest -p no:cacheprovider -n0 -q \
		tests/e2e/test_inbox_browser.py -k person

instructions: install ## the app's instructions per request, in process: make instructions SCENARIO=list_first
	$(PY) bench/inprocess.py $(or $(SCENARIO),get_basic) --instructions

profile: install ## sample a running server for 10 s: make profile PID=<server pid>
	$(VENV)/bin/py-spy record -p $(PID) -d 10 -o profile.svg

clean: ## remove caches and the local embedded database (not .venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache chatapp-accounts.sqlite3*
