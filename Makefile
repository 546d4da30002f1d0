# higgs: developer tasks. `make install` puts everything in .venv inside the checkout.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_MODEL := .models/tiny

.PHONY: install test test-fast lint bench gpu-check demo clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,ray,s3]"
	touch $@

test: install
	$(BIN)/python -m pytest -q

# The fast lane: everything but the tests marked slow (a model loaded, a process started).
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check higgs_cli plugins tests benchmarks projects

bench: install
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_server.py

# Checks and measures the GPU path (under 8 minutes on a GPU); without one, a CPU smoke form.
gpu-check: install
	$(BIN)/python benchmarks/gpu_check.py

# Renders the example podcast offline on a random-init checkpoint (its audio is noise).
demo: install $(DEMO_MODEL)/config.json
	$(BIN)/higgs project render projects/podcast --model $(DEMO_MODEL)

$(DEMO_MODEL)/config.json: | install
	$(BIN)/higgs model init-random $(DEMO_MODEL) --size tiny --force

clean:
	rm -rf .pytest_cache .ruff_cache .hypothesis projects/*/build projects/*/.higgs
