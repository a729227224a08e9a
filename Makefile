# The README's two commands:  make demo  and  make test.  Both create .venv on first use.
# TORCH pins the CPU wheel available on the project's machines; elsewhere e.g.
#   make test TORCH='torch>=2.4'
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
DEMO_DIR := multirun/demo/$(shell date +%Y-%m-%d_%H-%M-%S)

.PHONY: install demo evidence test test-all lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q '$(TORCH)'
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# A small sweep on the built-in synthetic tasks (experiment/demo.yaml), then the analysis: it
# prints the report's tables and writes the report, CSVs and figures to $(DEMO_DIR)/report.
demo: install
	WANDB_MODE=offline $(BIN)/aebench -m experiment=demo hydra.sweep.dir=$(DEMO_DIR)
	$(BIN)/aebench-analyze $(DEMO_DIR) --out $(DEMO_DIR)/report

# The protocol's experiments at a scale, then the analysis (aebench-evidence; README "Running the
# evidence"). Resumable: run it again after an interruption and only the missing jobs run.
#   make evidence EXPERIMENTS=e01_static_regression,e07_induced_oscillation SCALE=cpu JOBS=2
# JOBS > 1 runs that many jobs in parallel on this machine (the joblib launcher).
EXPERIMENTS ?= all
SCALE ?= cpu
EVIDENCE_DIR ?= evidence/$(SCALE)
JOBS ?= 1
evidence: install
	WANDB_MODE=offline $(BIN)/aebench-evidence --experiments $(EXPERIMENTS) --scale $(SCALE) \
		--out $(EVIDENCE_DIR) $(if $(filter-out 1,$(JOBS)),--launcher joblib --jobs $(JOBS))

# Lint and the fast test suite (what CI runs first).
test: install
	$(BIN)/ruff check .
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

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache outputs
