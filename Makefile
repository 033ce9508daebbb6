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

# See __init__.py: spinning OpenMP threads are 20x slower on a shared 2-core machine.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install shell test test-all lint bench demo docs docs-serve docs-screenshots clean

install:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(PIP_TORCH_FLAGS) "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[train,tune,cluster,dev,docs]"
	@$(MAKE) --no-print-directory shell
	$(BIN)/fc --version

# `fc` is a bash/zsh builtin: the venv's activate turns it off and deactivate back on. Appended
# once (the snippet's first line marks it); `make test` checks it too, for a .venv made before.
shell:
	@test -f $(BIN)/activate || { echo "no $(BIN)/activate: run make install"; exit 1; }
	@grep -q '^# fc: builtin-off' $(BIN)/activate || cat shell/activate-fc.sh >> $(BIN)/activate

test: shell
	$(BIN)/python -m pytest -q

test-all:
	$(BIN)/python -m pytest -q -m "slow or not slow"

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench:
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# The main job, offline, on a seeded SYNTHETIC series: data, train, backtest, export, replay.
DEMO := demo-out
DEMO_SPLIT := 2023-04-15
demo:
	rm -rf $(DEMO)
	$(BIN)/fc data synth --days 150 --store $(DEMO)/data
	$(BIN)/fc data info --symbol SYNTH/USDT --timeframe 30m --store $(DEMO)/data
	$(BIN)/fc train --symbol SYNTH/USDT --store $(DEMO)/data --split $(DEMO_SPLIT) \
		--epochs 2 --runs $(DEMO)/runs | tee $(DEMO)/train.log
	run=$$(tail -n 1 $(DEMO)/train.log) && \
	$(BIN)/fc backtest $$run --fee-bps 5 && \
	$(BIN)/fc export $$run --onnx --torchscript && \
	$(BIN)/fc paper --replay $(DEMO)/data/synth/SYNTH_USDT-5m.parquet \
		--model $$run/export/model.onnx --symbol SYNTH/USDT --start $(DEMO_SPLIT) \
		--fee-bps 5 --journal $(DEMO)/paper.sqlite && \
	$(BIN)/fc paper report --journal $(DEMO)/paper.sqlite

# The documentation site (mkdocs.yml): docs/ into site/, the command reference generated from the
# Typer app by docs/hooks/reference.py at every build. --strict: a broken link or anchor fails it.
DOCS_CHECK = $(if $(shell $(BIN)/python -c "import mkdocs, material" 2>/dev/null && echo ok),,\
  $(error make docs: MkDocs is not installed in $(VENV): run make install, or $(BIN)/pip install -e '.[docs]'))
export NO_MKDOCS_2_WARNING ?= 1

docs:
	$(DOCS_CHECK)
	$(BIN)/python -m mkdocs build --strict

docs-serve:
	$(DOCS_CHECK)
	$(BIN)/python -m mkdocs serve --strict --dev-addr 127.0.0.1:8000

# docs/img/*.png: the built site in headless Chromium (Debian's `chromium`), home and a results page
docs-screenshots: docs
	$(BIN)/python tests/site_browser.py site docs/img

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache demo-out site
