# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
CORES  ?= 2

.PHONY: install demo test lint clean-demo

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

## Generate the demo corpora and run the whole workflow on them (CPU, minutes).
demo: install
	$(BIN)/snakemake --cores $(CORES) --configfile config.demo.yaml

## Run the test suite (unit, workflow and end-to-end tests).
test: install
	$(BIN)/pytest

lint: install
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/

clean-demo:
	rm -rf results/demo
