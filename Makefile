# gancli: `make demo` and `make test` each set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
GANCLI := $(VENV)/bin/gancli
PLUGINS := $(sort $(wildcard plugins/*))
FASHION_MNIST := /usr/share/datasets/fashion-mnist
DEMO_RUN := runs/demo-$(shell date +%Y%m%d-%H%M%S)

.PHONY: install data demo test test-quick bench bench-quick clean test-floors

$(VENV)/.installed: pyproject.toml constraints.txt $(wildcard plugins/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]' $(foreach p,$(PLUGINS),-e $(p))
	touch $@

install: $(VENV)/.installed

# Fashion-MNIST from Debian's package (IDX files); skipped when present or not root
data:
	@if [ ! -d $(FASHION_MNIST) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq dataset-fashion-mnist || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)) >/dev/null; \
	  else echo "note: $(FASHION_MNIST) missing; install dataset-fashion-mnist or set GANCLI_DATA_DIR"; fi; \
	fi

demo: install data
	$(GANCLI) train --recipe dcgan-fashion-mnist --out $(DEMO_RUN)
	$(GANCLI) sample $(DEMO_RUN)/checkpoints/last.safetensors -n 64 --seed 0 --out $(DEMO_RUN)/grid.png
	$(GANCLI) interpolate $(DEMO_RUN)/checkpoints/last.safetensors --slerp --seeds 1,2,3,4 --frames 12 --out $(DEMO_RUN)/walk.gif
	@echo "demo done: see $(DEMO_RUN)/grid.png, $(DEMO_RUN)/walk.gif and $(DEMO_RUN)/samples/"

# Two test workers of one thread each (pytest-xdist; a file's tests stay on one worker, so module
# fixtures are built once): the tests' networks are tiny, and on 2 cores two processes beat one
# process's two threads. TEST_FLAGS= runs them in one process.
TEST_FLAGS ?= -n 2 --dist loadfile
test: install data
	OMP_NUM_THREADS=1 $(PY) -m pytest $(TEST_FLAGS) --durations=15

# the edit-test loop: everything but the tests marked slow (wheels, conformance kits, launched groups)
test-quick: install data
	OMP_NUM_THREADS=1 $(PY) -m pytest -m "not slow" $(TEST_FLAGS) --durations=10

bench: install data
	$(PY) -m benchmarks run --full

bench-quick: install data
	$(PY) -m benchmarks run --quick

clean:
	rm -rf $(VENV) $(VENV_FLOORS) runs .pytest_cache

# The floors check (issue 25): every >= floor in pyproject.toml and plugins/*/pyproject.toml pinned to
# == by tools/floors.py, everything else as pip resolves it, then the quick tests, in a venv of its own.
# A torch floor other than the release on disk comes from the package index as its CUDA build
# (about 3 GB to download with its nvidia-* wheels, 6 GB in .venv-floors; it runs on the CPU too).
VENV_FLOORS ?= .venv-floors
FLOORS := $(VENV_FLOORS)/floors-constraints.txt

$(VENV_FLOORS)/.installed: pyproject.toml tools/floors.py $(wildcard plugins/*/pyproject.toml)
	rm -rf $(VENV_FLOORS)
	$(PYTHON) -m venv $(VENV_FLOORS)
	$(VENV_FLOORS)/bin/python -m pip install -q --upgrade pip
	$(PYTHON) tools/floors.py $(FLOORS)
	$(VENV_FLOORS)/bin/python -m pip install -q -c $(FLOORS) -e '.[test]' $(foreach p,$(PLUGINS),-e $(p))
	touch $@

test-floors: $(VENV_FLOORS)/.installed data
	OMP_NUM_THREADS=1 $(VENV_FLOORS)/bin/python -m pytest -m "not slow" -n 2 --dist loadfile
