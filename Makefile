# Everything a fresh clone needs: `make run` (the whole system with a demo story) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install bytecode run demo test lint typecheck imports unit bench chaos clean

install: $(STAMP)

# The product installs as the `ps-sync` distribution; the development tooling beside it (sandboxes/,
# devstack/, bench/) is put on the venv's path from this checkout, so it is importable here and never
# packaged.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -c "import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()['purelib'], 'ps_sync_checkout.pth').write_text(str(pathlib.Path.cwd()) + '\n')"
	touch $(STAMP)

# Temporal's sandbox imports a workflow's modules afresh for every run. With PYTHONDONTWRITEBYTECODE set (as
# on many machines) nothing writes their bytecode, so every run compiled them from source again (about 6 ms a
# billing run, bench/); compiled once here, they are loaded. Installed wheels carry their bytecode already.
bytecode: install
	$(BIN)/python -m compileall -q -j 0 worker.py cli.py canonical domain ledger connectors activities \
		workflows runs ingress observability config

run: bytecode
	$(BIN)/python -m devstack run

demo: bytecode
	$(BIN)/python -m devstack demo

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

imports: install
	$(BIN)/lint-imports

unit: install
	$(BIN)/pytest tests/unit -q

# The suite runs on PYTEST_WORKERS pytest-xdist processes (tests/support/parallel.py), one per core: with
# more, each worker's time-skipping server falls behind its tests' long skips on two cores.
# `make test PYTEST_WORKERS=0` runs it in one process. The slowest tests are listed at the end, so every
# CI log says where the suite's time goes. Tryton's install and template database (first run
# only) are prepared while the static checks run, rather than by the first Tryton test with the other
# workers waiting on it.
PYTEST_WORKERS ?= 2
TRYTON_PREPARE_LOG := .data/tryton-prepare.log

test: bytecode
	@mkdir -p .data
	@$(BIN)/python -m devstack.tryton $(if $(PSSYNC_TRYTON_HOME),--home $(PSSYNC_TRYTON_HOME)) prepare \
		>$(TRYTON_PREPARE_LOG) 2>&1 & prepare=$$!; \
	$(MAKE) --no-print-directory lint typecheck imports; checks=$$?; \
	wait $$prepare || echo "note: preparing Tryton failed (see $(TRYTON_PREPARE_LOG)); its tests will say why"; \
	test $$checks -eq 0
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadgroup --durations=15

bench: bytecode
	$(BIN)/python -m bench --profile

# The whole stack under vendor faults, worker kills, a Temporal restart and a vendor outage, over both ERPs
# (several minutes); exits non-zero unless it ends with 0 duplicates, 0 unbilled, 0 lost and a clean
# reconciliation. `make test` runs its short version (tests/e2e/test_chaos.py).
chaos: bytecode
	$(BIN)/python -m chaos --results chaos/results/latest.md

# Keeps the Tryton install (.data/tryton/venv and its template database): the next `make run` reuses it
# instead of downloading and initialising it again.
clean:
	find .data -mindepth 1 -maxdepth 1 ! -name tryton -exec rm -rf {} + 2>/dev/null || true
	find .data/tryton -mindepth 1 -maxdepth 1 ! -name venv ! -name template -exec rm -rf {} + 2>/dev/null || true
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
