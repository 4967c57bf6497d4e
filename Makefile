# Two entry points: `make demo` and `make test` (which runs `make lint` first). Both bootstrap .venv
# themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench faults clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ganga-async demo

test: lint
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check ganga_async workers tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/check-module-size

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# The fault suite at full size (30 trials of each loop, 1,000 subjobs); FAULTS_ARGS adds options,
# e.g. make faults FAULTS_ARGS="--trials 100 --loop crash". The flaky-Slurm loop needs the cluster
# of scripts/slurm-up.sh (it says so and skips otherwise).
faults: $(STAMP)
	$(BIN)/python -m benchmarks.faults $(FAULTS_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info
