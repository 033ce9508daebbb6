# Every target uses the project's own virtual environment in .venv/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch: on a machine without an NVIDIA driver pip takes the CPU build of 2.13.0 where one is
# offered (a local wheel, or TORCH_INDEX=https://download.pytorch.org/whl/cpu); with a driver,
# the default PyPI wheel, which is the CUDA build. Override TORCH / TORCH_INDEX to choose.
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
PIP_TORCH_FLAGS := $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)

.PHONY: install test test-all lint bench demo clean

install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(PIP_TORCH_FLAGS) "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[train,dev]"
	$(BIN)/fc --version

test:
	$(BIN)/python -m pytest -q

test-all:
	$(BIN)/python -m pytest -q -m "slow or not slow"

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench:
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# The main job, offline, on a seeded synthetic series: data, train, backtest, export, replay.
DEMO := demo-out
demo:
	rm -rf $(DEMO)
	$(BIN)/fc data synth --days 200 --store $(DEMO)/data
	$(BIN)/fc data info --symbol SYNTH/USDT --timeframe 30m --store $(DEMO)/data

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache demo-out
