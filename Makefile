# Entry points: `make demo` (set up, then chat with the bot on its demo data), `make test` (what CI runs),
# `make smoke` (a plain `pip install .` without the lock, then ingest + search), `make lock`, `make bench`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
# The offline copy of the embedding model, where a checkout has ../shared beside it (CI does).
SHARED_MODEL := $(abspath ../shared/models/all-MiniLM-L6-v2/onnx)
ifneq ($(wildcard $(SHARED_MODEL)/model.onnx),)
export THREATBOT_EMBEDDING_MODEL_DIR ?= $(SHARED_MODEL)
endif

.PHONY: demo test lint typecheck smoke lock bench

# The interpreter's own pip, never upgraded: a user's first install goes through it, so ours does too.
# The lock pins every package with its SHA-256s; the project itself goes on top without its dependencies.
$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

demo: $(VENV)/.installed
	$(BIN)/threatbot chat

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: $(VENV)/.installed
	$(BIN)/mypy

smoke:
	PYTHON=$(PYTHON) bash .ci/smoke

# Re-resolve the lock after changing pyproject.toml's dependencies (uv is in the dev extra). Universal:
# one file for every platform and Python >= 3.11, with hashes, installable by a plain `pip install -r`.
lock: $(VENV)/.installed
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 --generate-hashes --no-strip-extras \
		--custom-compile-command "make lock" -o $(LOCK)
	$(BIN)/python scripts/lock_for_pip23.py $(LOCK)

# The benchmarks on the full data in ../shared (minutes each; they print their figures beside a baseline).
# bench/scale.py (a 100k-record store, about an hour) runs alone: `nice -n 10 .venv/bin/python bench/scale.py`.
bench: $(VENV)/.installed
	nice -n 10 $(BIN)/python bench/ingest.py
	nice -n 10 $(BIN)/python bench/retrieval.py
	nice -n 10 $(BIN)/python bench/conversation.py
	nice -n 10 $(BIN)/python bench/slack.py
	nice -n 10 $(BIN)/python bench/delivery.py
	nice -n 10 $(BIN)/python bench/evaluate.py
	nice -n 10 $(BIN)/python bench/stack_import.py
	nice -n 10 $(BIN)/python bench/vendor_matching.py
