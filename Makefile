# Two commands on a fresh machine with Python 3.11+: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
KERNEL := audit-workbench
SAMPLE := data_samples/export-2026-10-05
AS_OF  := 2026-09-30

.PHONY: install demo test test-fast lab bench bench-huge clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test,spark]'
	# Byte-compile the package now: with PYTHONDONTWRITEBYTECODE set, every run would compile it again.
	$(BIN)/python -m compileall -q audit >/dev/null
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Audit workbench" >/dev/null
	touch $(STAMP)

install: $(STAMP)

## demo: audit the bundled sample export into reports/
demo: $(STAMP)
	$(BIN)/audit run --exports $(SAMPLE) --as-of $(AS_OF) --out reports/$(AS_OF) --ledger reports/audit-ledger.duckdb; \
	  status=$$?; [ $$status -le 1 ] || exit $$status
	@echo "report: reports/$(AS_OF)/report.html"

## test: the whole test suite (real DuckDB, GX, papermill, Jupyter kernels, Chromium)
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

## lab: JupyterLab rooted at the project (reports/ and data_samples/ reachable), opened on the report notebooks
LAB_OPEN := audit/report/notebooks
lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir=$(CURDIR) --LabApp.default_url=/lab/tree/$(LAB_OPEN)

## bench: benchmarks against the DuckDB floor and GX on pandas, and the Spark engine (local[*] and a
## standalone master + worker started on 127.0.0.1) beside them (writes benchmarks/results/)
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

## bench-huge: the single-machine ceiling: `audit check` on DuckDB at HUGE_ROWS (default 10^9) once,
## time and peak memory; the export (~24 GB of Parquet at 10^9) is not generated if less than 30 GB would stay free
HUGE_ROWS ?= 1e9
bench-huge: $(STAMP)
	$(BIN)/python benchmarks/run.py --sizes $(HUGE_ROWS) --formats parquet --engines audit --repeat 1 \
	  --keep-free 30 --results benchmarks/results/huge

clean:
	rm -rf $(VENV) reports .pytest_cache
