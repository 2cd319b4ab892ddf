# Takt: `make run` starts the embedded app with a demo plant; `make test` is what CI runs.

PYTHON ?= python3
# The suite runs on one process per core (pytest-xdist), at most four: most tests wait
# on servers and browsers, so two processes on two cores finish in two thirds the time.
PYTEST_WORKERS ?= auto --maxprocesses 4
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run test test-clock lint bench bench-board bench-fanout bench-jssp bench-fjsp bench-optimizer bench-apply bench-repair bench-audit bench-load bench-soak bench-import clean

venv: $(STAMP)

# Reinstall only when the dependencies change (or the venv is gone).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: venv
	$(BIN)/takt migrate
	$(BIN)/takt demo --size small --if-empty
	@echo "Takt on http://127.0.0.1:8000/ - log in as one of the demo users above."
	$(BIN)/takt serve --host 127.0.0.1 --port 8000

# The suite starts its own PostgreSQL, Redis and chromium: scripts/test-needs stops
# here, naming what is missing, rather than letting those tests skip.
test: venv
	scripts/test-needs
	$(MAKE) lint
	$(BIN)/pytest -q -n $(PYTEST_WORKERS)

# The suite at one awkward instant of plant time (Europe/Berlin), under libfaketime:
#   make test-clock INSTANT='2027-03-28 01:30'   (or 'spring-forward 01:30', 'sunday 23:50',
#   '12-31 23:59'; PYTEST_ARGS='tests/web -x' narrows the run). The offset is computed
#   right before the run; every process started under it shares the shifted clock.
test-clock: venv
	@test -n "$(INSTANT)" || { echo "usage: make test-clock INSTANT='2027-03-28 01:30'"; exit 2; }
	@command -v faketime >/dev/null || { echo "faketime is not installed (apt-get install faketime)"; exit 2; }
	scripts/test-needs
	@offset=$$($(BIN)/python scripts/plant_instant.py '$(INSTANT)') || exit 2; \
	echo "Plant time: $$($(BIN)/python scripts/plant_instant.py --show '$(INSTANT)'), faketime -f +$${offset}s"; \
	faketime -f "+$${offset}s" $(BIN)/pytest -q -n $(PYTEST_WORKERS) -m "not clock_free" $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app

bench: venv
	$(BIN)/python scripts/bench.py
	$(MAKE) bench-board
	$(MAKE) bench-fanout

# The board on the large demo: page loads, row blocks and moves per view (on a window with
# movable bars at any hour); in chromium, a week opened cold and drags in every view.
bench-board: venv
	$(BIN)/python scripts/bench_board.py

# N live boards (100, 1,000, 2,000) and one writer: hub level, then WebSocket clients.
bench-fanout: venv
	$(BIN)/python scripts/bench_fanout.py

bench-jssp: venv
	$(BIN)/python scripts/bench_jssp.py

# Brandimarte mk01-mk15, 10 s and 2 workers each: the app's path beside plain CP-SAT.
bench-fjsp: venv
	$(BIN)/python scripts/bench_fjsp.py

bench-optimizer: venv
	$(BIN)/python scripts/bench_large_optimizer.py
	$(BIN)/python scripts/bench_first_plan.py

# A 7,838-change draft applied on the large demo, and repair drafts: SQLite, then PostgreSQL.
bench-apply: venv
	$(BIN)/python scripts/bench_apply.py --postgres --repeat 3

# Repair drafts on the large demo per cause (breakdown, absence, late), and a breakdown
# reported from a phone to the repair draft on a board, in Chromium.
# The large demo exported (CSV, Excel) and imported into an empty plant through the queue.
bench-import: venv
	$(BIN)/python scripts/bench_import.py --postgres

bench-repair: venv
	$(BIN)/python scripts/bench_repair.py --repeat 3

# The seeds' scenario on two instances (PostgreSQL + Redis): 100 boards moving tasks, 1,000
# operators checking theirs; p50/p95/p99 per kind, push to all boards, errors, CPU, memory.
bench-load: venv
	$(BIN)/python scripts/bench_load.py

# The same for 30 minutes: memory sampled each minute, its slope per instance.
bench-soak: venv
	$(BIN)/python scripts/bench_load.py --soak

# The audit trail grown to a million entries: the admin page's filters and a queued chain check.
bench-audit: venv
	$(BIN)/python scripts/bench_audit.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
