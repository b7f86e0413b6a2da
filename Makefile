# The README's two commands: `make demo` and `make test`. Each sets itself up on a fresh
# machine (virtual environment, dependencies) and is idempotent: the environment is rebuilt
# only when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch comes from a pinned CPU build; a bare `torch` requirement would pull CUDA wheels.
TORCH_PIN ?= torch==2.13.0

.PHONY: demo test lint format env env-dev clean

demo: $(VENV)/.runtime-ok
	$(BIN)/sketchfill demo -o out/demo.png

test: $(VENV)/.dev-ok
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

lint: $(VENV)/.dev-ok
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(VENV)/.dev-ok
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

env: $(VENV)/.runtime-ok
env-dev: $(VENV)/.dev-ok

$(BIN)/python:
	$(PYTHON) -m venv --clear $(VENV)

$(VENV)/.runtime-ok: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --disable-pip-version-check -e .
	touch $@

$(VENV)/.dev-ok: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH_PIN)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[train,dev]'
	touch $@ $(VENV)/.runtime-ok

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
