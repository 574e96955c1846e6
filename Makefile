# Two entry points: `make demo` (set up, then chat with the bot on its demo data) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The offline copy of the embedding model, where a checkout has ../shared beside it (CI does).
SHARED_MODEL := $(abspath ../shared/models/all-MiniLM-L6-v2/onnx)
ifneq ($(wildcard $(SHARED_MODEL)/model.onnx),)
export THREATBOT_EMBEDDING_MODEL_DIR ?= $(SHARED_MODEL)
endif

.PHONY: demo test lint bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/threatbot chat

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
