# Two commands on a fresh machine: `make run` (the viewer on the demo data) and `make test`.
VENV := .venv
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test setup bench lint clean

$(STAMP): pyproject.toml scripts/setup_env.sh
	bash scripts/setup_env.sh

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/diascan view --demo

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

bench: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python -m pytest benchmarks --benchmark-only -p no:cacheprovider

clean:
	rm -rf $(VENV) .pytest_cache
