# Two commands for a fresh machine: `make run` (the bot; a local sandbox without credentials)
# and `make test` (the whole suite). Everything else is a step they share.
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: run test test-fast test-unit test-clock venv services browser promtool migrate bench bench-ack lint lock clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

services:
	bin/ensure-services

browser:
	bin/ensure-browser

# promtool, amtool and alertmanager from Debian's packages (the alert rules' unit tests, the DingTalk bridge's test)
promtool:
	bin/ensure-promtool

migrate: venv services
	$(PY) manage.py migrate --noinput

run: migrate
	bin/run

test: venv services browser promtool
	$(PY) -m pytest

test-fast: venv services promtool
	$(PY) -m pytest -m "not slow"

# Tests that need no service and start no process: no `services` prerequisite on purpose
# (tests/support/tiers.py selects them by their fixtures and fails any that reaches a service).
test-unit: venv
	$(PY) -m pytest -m unit

# The whole suite with every process's clock shifted to late evening / small hours around a month
# end (bin/test-clock -t "YYYY-MM-DD HH:MM" for other moments): no test may depend on the time.
test-clock: venv browser promtool
	bin/test-clock

bench: migrate
	$(PY) bench/pipeline.py

# ruff and mypy as configured in pyproject.toml (the whole tree); no services needed.
# Both always run, so one pass shows every finding; the target fails if either found something.
lint: venv
	status=0; $(PY) -m ruff check . || status=1; $(PY) -m mypy || status=1; exit $$status

# requirements.lock: every package the image installs, pinned with its hashes (pip-tools), from
# requirements.txt. pip resolves here with this machine's pip configuration, so torch==2.13.0 comes
# out as the CPU build 2.13.0+cpu (the wheel on disk, the same file as the PyTorch CPU index's);
# the Dockerfile installs it from that index with --require-hashes. Refresh after editing requirements.txt.
lock: venv
	CUSTOM_COMPILE_COMMAND="make lock" $(PY) -m piptools compile --quiet --generate-hashes --allow-unsafe \
	  --strip-extras --no-emit-find-links --no-emit-index-url --output-file requirements.lock requirements.txt

bench-ack: venv services
	$(PY) bench/ack.py
	$(PY) bench/ack.py --broker redis

clean:
	rm -rf .venv var .pytest_cache .mypy_cache .ruff_cache
