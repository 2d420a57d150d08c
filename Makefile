# Everything runs from a local virtual environment in .venv, created on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NODES  ?= 5

.PHONY: demo test test-unit test-integration install clean scale-report

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ringrift-cluster demo --nodes $(NODES) $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration $(PYTEST_ARGS)

# The 1k-10k SWIM projection (docs/scale.md): simulator runs, minutes on 2 cores.
scale-report: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[sim]'
	$(BIN)/python -m ringrift_cluster.sim report $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
