# 社保费掌上办: the two commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: run stop test bench docs install clean reconcile dlq

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	bash tools/ensure_system_packages.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

## run the whole system: broker and database when none is configured, services, gateway :8000, simulators :8100
run: install
	$(PY) -m devstack run

## stop what `make run` started (from another shell)
stop:
	@if [ -x $(PY) ]; then $(PY) -m devstack stop; else echo "nothing to stop"; fi

## every test, against the real broker and database
test: install
	bash tools/ensure_broker.sh
	$(PY) -m pytest $(PYTEST_ARGS)

## benchmarks: print figures (never assert); BENCH=area1,area2 for a subset
bench: install
	bash tools/ensure_broker.sh
	$(PY) -m bench

## next-day reconciliation against a running stack: make reconcile DATE=YYYY-MM-DD [CHANNEL=unionpay]
reconcile: install
	@test -n "$(DATE)" || { echo "usage: make reconcile DATE=YYYY-MM-DD [CHANNEL=unionpay]"; exit 2; }
	$(PY) -m payment_gateway.reconcile_cli --date $(DATE) --channel $(or $(CHANNEL),unionpay)

## dead letters of a service (AMQP_URI as the services): make dlq ARGS="list orders" | "inspect orders 1" | "replay orders 1"
dlq: install
	@test -n "$(ARGS)" || { $(PY) -m servicekit.dlq --help; exit 2; }
	$(PY) -m servicekit.dlq $(ARGS)

## regenerate docs/EVENTS.md from the event schemas (a test fails when it is stale)
docs: install
	$(PY) -m devstack.event_catalog > docs/EVENTS.md

clean:
	rm -rf $(VENV) .run
