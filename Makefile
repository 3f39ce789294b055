# The two commands of the quick start, and a few conveniences.
.PHONY: setup serve lint test test-fast bench-api bench-engine

setup:
	scripts/setup.sh

serve: setup
	.venv/bin/cairn serve

# Style (ruff), types (mypy) and the layer order (lint-imports); settings in pyproject.toml.
lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy
	PYTHONPATH=src .venv/bin/lint-imports

test: setup
	scripts/start-services.sh
	scripts/run-tests.sh

# SQLite only: no database servers needed.
test-fast: setup
	CAIRN_TEST_BACKENDS=sqlite .venv/bin/pytest -q

bench-api: setup
	.venv/bin/python bench/api.py

bench-engine:
	CAIRN_SETUP_BENCH=1 scripts/setup.sh
	.venv/bin/python bench/engine.py
