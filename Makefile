# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
# Each creates the virtual environment (.venv) and installs what it needs on first use.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-unit test-integration test-e2e lint check install clean screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the connector in local mode (embedded Dataverse emulator, simulated SMS provider).
run: $(STAMP)
	$(VENV)/bin/connector serve

# pytest over the paths given; its "no tests ran" (exit code 5) fails the target.
pytest = $(PY) -m pytest $(1); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc

## Run the whole test suite (unit, integration, e2e). pytest's "no tests ran" (5) fails.
test: $(STAMP)
	@scripts/ensure-test-services.sh
	@$(call pytest,tests)

## Run one tier: unit (in memory, no servers), integration (real servers on loopback,
## PostgreSQL included), e2e (the connector command run as a user runs it).
test-unit: $(STAMP)
	@$(call pytest,tests/unit)

test-integration: $(STAMP)
	@scripts/ensure-test-services.sh
	@$(call pytest,tests/integration)

test-e2e: $(STAMP)
	@scripts/ensure-test-services.sh
	@$(call pytest,tests/e2e)

## Regenerate the README's screenshots of the messages page (the browser e2e test takes them).
screenshots: $(STAMP)
	@scripts/ensure-test-services.sh
	SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest -q tests/e2e/test_messages_page_e2e.py

## Lint and type-check (ruff, mypy strict on connector/ and tests/), and the import
## contracts (arrows point down only: see [tool.importlinter] in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

check: test lint

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
