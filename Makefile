# PertNAS toolkit. `make demo` searches on the embedded data set; `make test` runs the tests.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := pkg-config libopencv-dev libturbojpeg0-dev graphviz
DEMO_DATA ?= data/digits
BENCH_DIR ?= bench

.PHONY: setup test test-fast demo bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt scripts/setup_system.sh
	@bash scripts/setup_system.sh $(APT_PACKAGES)
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --no-build-isolation -r requirements.txt
	@touch $@

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

$(DEMO_DATA)/cifar-10-batches-py/batches.meta:
	$(PY) scripts/write_datasets.py digits --out $(DEMO_DATA)

demo: setup $(DEMO_DATA)/cifar-10-batches-py/batches.meta
	$(PY) search_evolutionary.py --preset tiny --train_path $(DEMO_DATA) --save runs/demo

bench: setup
	$(PY) scripts/bench_all.py --out $(BENCH_DIR)

clean:
	rm -rf runs/demo $(BENCH_DIR) .pytest_cache
