# regcli — every target creates .venv and installs what it needs, so each works as the first
# command on a fresh machine that has only python3.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_WORKERS ?= 2

.PHONY: help demo test test-min fuzz bench lint format samples chapter clean bytecode

help:
	@echo "make demo    register the sample images (results under out/)"
	@echo "make test    install the dev tools, lint, run the test suite"
	@echo "make test-min run the test suite on the lowest declared dependency versions"
	@echo "make fuzz    fuzz the readers and the transform JSON parser for 10 minutes"
	@echo "make bench   install the bench extra, run the benchmark (bench/README.md)"
	@echo "make lint    ruff check + format check"
	@echo "make chapter reproduce the scipy chapter's experiment and figures (out/chapter/)"
	@echo "make samples regenerate sample_images/ from their committed sources"
	@echo "make clean   remove .venv, out/ and caches"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.stamp-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

# The tests also exercise Dask (a real local cluster) and the transform exchange with
# SimpleITK and OpenCV, so the dev stamp installs those extras too.
$(VENV)/.stamp-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,dask,bench]'
	touch $@

$(VENV)/.stamp-bench: $(VENV)/.stamp-dev
	touch $@

# regcli's modules compiled to bytecode (__pycache__/), as pip does when it installs a wheel.
# An editable install is never compiled by pip, and where PYTHONDONTWRITEBYTECODE is set
# Python never writes the cache itself: every `regcli` process then compiled its ~60
# modules from source, 0.06 s of each command.  Only changed files are compiled again.
bytecode: | $(BIN)/python
	$(BIN)/python -m compileall -q regcli

demo: $(VENV)/.stamp-run bytecode
	$(BIN)/python scripts/demo.py --out out

test: $(VENV)/.stamp-dev lint bytecode
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS)

# The test suite on the lowest versions pyproject.toml allows (constraints-min.txt), in a
# venv of its own; SimpleITK, OpenCV and Dask are not installed there (their tests skip).
VENV_MIN ?= .venv-min
test-min:
	test -x $(VENV_MIN)/bin/python || $(PYTHON) -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/python -m pip install -q --upgrade pip
	$(VENV_MIN)/bin/python -m pip install -q --only-binary=:all: -c constraints-min.txt -e '.[dev]'
	$(VENV_MIN)/bin/python -m compileall -q regcli
	$(VENV_MIN)/bin/python -m pytest -q -n $(PYTEST_WORKERS) -p no:cacheprovider

# The fuzz tests of `make test`, run for FUZZ_SECONDS in all with fresh seeds.
FUZZ_SECONDS ?= 600
fuzz: $(VENV)/.stamp-dev
	REGCLI_FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/python -m pytest -q -s tests/test_fuzz.py

lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.stamp-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(VENV)/.stamp-bench bytecode
	$(BIN)/python bench/run.py

chapter: $(VENV)/.stamp-run bytecode
	$(BIN)/python scripts/chapter.py --out out/chapter

samples: $(VENV)/.stamp-run
	$(BIN)/python scripts/make_sample_images.py

clean:
	rm -rf $(VENV) $(VENV_MIN) out .pytest_cache .ruff_cache .hypothesis build *.egg-info regcli.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
