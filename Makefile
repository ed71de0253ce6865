# PertNAS toolkit. `make demo` searches on the embedded data set; `make test` runs the tests.
# `make docs` builds the documentation site (docs/, mkdocs.yml) into site/.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := pkg-config libopencv-dev libturbojpeg0-dev graphviz chromium
DEMO_DATA ?= data/digits
BENCH_DIR ?= bench

.PHONY: setup lint docs test test-fast demo study bench clean

setup: $(VENV)/.installed

# Order matters on a fresh machine: FFCV builds from source without build isolation, so the
# venv needs wheel, setuptools and numpy before requirements.txt; `.installed` is written last,
# so a failed step is redone by the next `make setup`.
$(VENV)/.installed: requirements.txt pyproject.toml scripts/setup_system.sh scripts/check_install.py
	@bash scripts/setup_system.sh $(APT_PACKAGES)
	@$(PY) -m pip --version >/dev/null 2>&1 || python3 -m venv --clear $(VENV)  # none, or a half-made one
	$(PY) -m pip install --quiet --upgrade pip "setuptools>=64" wheel
	$(PY) -m pip install --quiet "numpy>=1.24"
	$(PY) -m pip install --quiet --no-build-isolation -r requirements.txt
	$(PY) -m pip install --quiet --no-build-isolation --no-deps -e .
	$(PY) scripts/check_install.py
	@touch $@

# the linter and formatter (ruff, configured in pyproject.toml); `make test` (and so CI) runs it first
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# the documentation site; --strict: a broken link, anchor or API reference fails the build
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict  # not --quiet: it hides the warnings that --strict counts

# the slow tests include scripts/check_wheel.sh: the wheel, installed outside the clone
test: setup lint docs
	$(PY) -m pytest -q -n auto --dist worksteal --durations=15

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

$(DEMO_DATA)/cifar-10-batches-py/batches.meta:
	$(PY) scripts/write_datasets.py digits --out $(DEMO_DATA)

# the search, then its report: runs/demo/report.html (the newest run's; open it in a browser)
demo: setup $(DEMO_DATA)/cifar-10-batches-py/batches.meta
	$(PY) search_evolutionary.py --preset tiny --train_path $(DEMO_DATA) --save runs/demo
	$(PY) -m nas.report "$$(ls -d runs/demo/search-* | sort | tail -n 1)" --out runs/demo/report.html

# is the search better than chance? three seeds of the tiny search and of its random-scores
# control, three random cells, every cell trained alike: runs/study/report.html (README);
# STUDY_FLAGS="--jobs 6" on a shared machine (with OMP_NUM_THREADS=1)
study: setup $(DEMO_DATA)/cifar-10-batches-py/batches.meta
	PYTHON=$(PY) bash scripts/study.sh --data $(DEMO_DATA) --out runs/study $(STUDY_FLAGS)

bench: setup
	$(PY) benchmarks/bench_all.py --out $(BENCH_DIR)

clean:
	rm -rf runs/demo runs/study $(BENCH_DIR) .pytest_cache site
