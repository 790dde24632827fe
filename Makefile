# The README's two set-up commands: `make demo` and `make test`. Both create .venv when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONSTRAINTS := .ci/constraints.txt

.PHONY: venv test lint typecheck unit demo browser lock clean

venv: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	@touch $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy

test: lint typecheck browser
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Chromium + chromedriver for the browser tests: installed with apt-get when missing and possible,
# otherwise says why (the browser tests then skip with that reason).
browser:
	@.ci/install-browser.sh

# Fast loop while developing: no Airflow end-to-end runs, no browser, no chaos runs.
unit: venv
	$(VENV)/bin/pytest -m "not e2e and not distributed and not browser and not chaos" $(PYTEST_ARGS)

# `make demo DEMO_ARGS=--keep-up`: Airflow stays up after the demo (UI and dashboard) until Ctrl-C.
demo: venv
	$(VENV)/bin/airflow-omnisend demo $(DEMO_ARGS)

# Re-resolve the pinned versions after changing dependencies in pyproject.toml.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade "pip>=24"
	.lock-venv/bin/pip install --quiet -e '.[dev]'
	.lock-venv/bin/pip freeze --exclude-editable | grep -v '^airflow-omnisend' > $(CONSTRAINTS)
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .airflow-home .demo .mypy_cache .ruff_cache .pytest_cache
