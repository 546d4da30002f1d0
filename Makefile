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
	$(BIN)/python -m pip install --quiet -e ".[dev,ray,s3,train]"
	touch $@

# One process by default; `make test PYTEST_WORKERS="-n 2 --dist loadfile"` runs two pytest-xdist workers
# (a test file each at a time, so its module fixtures are made once).
PYTEST_WORKERS ?=

test: install
	$(BIN)/python -m pytest -q $(PYTEST_WORKERS)

# The fast lane: everything but the tests marked slow (a model loaded, a process or a server started).
test-fast: install
	$(BIN)/python -m pytest -q $(PYTEST_WORKERS) -m "not slow"

lint: install
	$(BIN)/ruff check higgs_cli plugins tests benchmarks projects

bench: install
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_server.py
	$(BIN)/python benchmarks/bench_pipeline.py --minutes 1,10 --json benchmarks/results/pipeline.json

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
