# Two commands for a fresh machine: `make run` (the bot; a local sandbox without credentials)
# and `make test` (the whole suite). Everything else is a step they share.
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: run test test-fast venv services migrate bench bench-ack lint clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

services:
	bin/ensure-services

migrate: venv services
	$(PY) manage.py migrate --noinput

run: migrate
	bin/run

test: venv services
	$(PY) -m pytest

test-fast: venv services
	$(PY) -m pytest -m "not slow"

bench: migrate
	$(PY) bench/pipeline.py

# ruff and mypy as configured in pyproject.toml (the whole tree); no services needed.
# Both always run, so one pass shows every finding; the target fails if either found something.
lint: venv
	status=0; $(PY) -m ruff check . || status=1; $(PY) -m mypy || status=1; exit $$status

bench-ack: venv services
	$(PY) bench/ack.py
	$(PY) bench/ack.py --broker redis

clean:
	rm -rf .venv var .pytest_cache .mypy_cache .ruff_cache
