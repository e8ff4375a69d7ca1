# One command each on a fresh machine: the targets create or reuse .venv and install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/plantcast demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy  # paths and strictness from [tool.mypy] in pyproject.toml

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

# Test files run in JOBS processes (pytest-xdist; every test has its own schema, temp dir, ports
# and broker); a file stays in one process, so its module fixtures start once. JOBS=0: serial.
JOBS ?= 2
test: lint
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile

bench: $(STAMP)
	$(BIN)/python benchmarks/store.py
	$(BIN)/python benchmarks/forecast.py
	$(BIN)/python benchmarks/detect.py --scenarios 50 --seed 0
	$(BIN)/python benchmarks/dashboard.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build src/*.egg-info
