# gancli: `make demo` and `make test` each set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
GANCLI := $(VENV)/bin/gancli
PLUGINS := $(sort $(wildcard plugins/*))
FASHION_MNIST := /usr/share/datasets/fashion-mnist
DEMO_RUN := runs/demo-$(shell date +%Y%m%d-%H%M%S)

.PHONY: install data demo test bench bench-quick clean

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

test: install data
	$(PY) -m pytest

bench: install data
	$(PY) -m benchmarks run --full

bench-quick: install data
	$(PY) -m benchmarks run --quick

clean:
	rm -rf $(VENV) runs .pytest_cache
