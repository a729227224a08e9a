# The README's two commands:  make demo  and  make test.  Both create .venv on first use.
# TORCH pins the CPU wheel available on the project's machines; elsewhere e.g.
#   make test TORCH='torch>=2.4'
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
DEMO_DIR := multirun/demo/$(shell date +%Y-%m-%d_%H-%M-%S)

.PHONY: install demo evidence test test-all lint bench clean data

install: $(VENV)/.installed

# pip --no-compile, then orchestration.precompile compiles what a sweep and the analysis import
# (a smoke sweep of the demo's jobs), instead of pip compiling every module of torch & co.
# (docs/performance.md, section 7). The venv's own pip (Python 3.11 bundles 22.3 or
# newer: editable installs from pyproject.toml) installs it all; upgrading pip cost 5 s of the demo.
PIP_INSTALL := $(BIN)/python -m pip install -q --no-compile
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) '$(TORCH)'
	$(PIP_INSTALL) -e '.[dev]'
	$(BIN)/python -m orchestration.precompile > $(VENV)/precompile.log 2>&1 \
		|| (tail -20 $(VENV)/precompile.log; exit 1)
	@tail -1 $(VENV)/precompile.log
	touch $@

# A small sweep that decides one prediction (conf/experiment/demo.yaml: AdamW with and without
# AE on the regression task, 10 seeds), then the analysis: it writes the report (report.html,
# report.md, CSVs, figures) to $(DEMO_DIR)/report and ends with the static_speedup verdict,
# its numbers and the path of its figure.
# DEMO_JOBS: jobs in parallel (the joblib launcher, one torch thread each); 1: the basic launcher.
DEMO_JOBS ?= 2
demo: install
	WANDB_MODE=offline $(BIN)/aebench -m experiment=demo hydra.sweep.dir=$(DEMO_DIR) \
		$(if $(filter-out 1,$(DEMO_JOBS)),hydra/launcher=aebench_joblib hydra.launcher.n_jobs=$(DEMO_JOBS) trainer.threads=1)
	$(BIN)/aebench-analyze $(DEMO_DIR) --out $(DEMO_DIR)/report --quiet
	@$(BIN)/python -m analysis.headline $(DEMO_DIR)/report --prediction static_speedup
	@echo "  caveat: regression is a tuning problem of the AE defaults (docs/ae.md): this shows the"
	@echo "  suite deciding a prediction, not independent evidence; e01 runs the protocol's test."

# The protocol's experiments at a scale, then the analysis (aebench-evidence; README "Running the
# evidence"). Resumable: run it again after an interruption and only the missing jobs run.
#   make evidence EXPERIMENTS=e01_static_regression,e07_induced_oscillation SCALE=cpu JOBS=2
# JOBS > 1 runs that many jobs in parallel on this machine (the joblib launcher). ARGS are
# overrides for every job, e.g. one GPU at paper scale (docs/paper_scale.md):
#   make evidence SCALE=paper ARGS='trainer.accelerator=gpu'
EXPERIMENTS ?= all
SCALE ?= cpu
EVIDENCE_DIR ?= evidence/$(SCALE)
JOBS ?= 1
evidence: install
	WANDB_MODE=offline $(BIN)/aebench-evidence --experiments $(EXPERIMENTS) --scale $(SCALE) \
		--out $(EVIDENCE_DIR) $(if $(filter-out 1,$(JOBS)),--launcher joblib --jobs $(JOBS)) \
		$(if $(ARGS),-- $(ARGS))

# Lint, the format check and the fast test suite (what CI runs first: .ci/run).
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	WANDB_MODE=offline $(BIN)/pytest -q -m "not slow"

# Everything, slow checks included.
test-all: install
	WANDB_MODE=offline $(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Every benchmark, one table of ratios against the goals (docs/performance.md); exits 1 when a
# ratio misses its goal by more than 20%. Not part of CI. BENCH_ARGS=--quick: shorter runs.
bench: install
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

# The real corpora of the cpu evidence (docs/data.md): Fashion-MNIST's four IDX files and the
# Python documentation's reST sources, from Debian's packages where apt exists (as root);
# elsewhere it prints where to download them.
data:
	@if command -v apt-get >/dev/null 2>&1; then \
		apt-get update -q && apt-get install -y -q dataset-fashion-mnist python3.11-doc && \
		ls /usr/share/datasets/fashion-mnist; \
	else \
		echo "no apt-get: download train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz" \
			"t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz from" \
			"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/ into DIR and pass" \
			"task.data.path=DIR (task=fmnist); for task=python_docs pass" \
			"task.data.files='[DIR/**/*.txt]' with the Python 3.11 docs in plain text" \
			"(https://docs.python.org/3.11/download.html) or other UTF-8 English text"; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache outputs
