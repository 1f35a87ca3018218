# sdpg-ros: `make run` trains and evaluates the default task, `make test` runs lint + tests.
# Both bootstrap .venv from the pinned requirements on first use (idempotent).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: run test lint bench-core bench-ros venv clean

venv: $(STAMP)

$(STAMP): requirements.txt setup.py setup.cfg
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
		--no-build-isolation -e .
	touch $(STAMP)

RUN_DIR ?= runs/reacher-make-run

# Train, then deploy the final policy over ROS 2 on 100 seeded episodes and evaluate it
# in-process on the same 100 (--compare): one episode's outcome is chaotic (README), so the
# comparison needs more episodes than the 32 of the training summary.
run: $(STAMP)
	$(BIN)/sdpg train --task reacher --out $(RUN_DIR)
	$(BIN)/sdpg-ros deploy --backend sim --checkpoint $(RUN_DIR)/checkpoints/latest.pt \
		--episodes 100 --compare --report $(RUN_DIR)/deploy_report.json

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) lint
	$(BIN)/python -m pytest -q tests

bench-core: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py

bench-ros: $(STAMP)
	$(BIN)/python benchmarks/bench_ros_latency.py

bench-memory: $(STAMP)
	$(BIN)/python benchmarks/bench_memory.py

bench-scaling: $(STAMP)
	$(BIN)/python benchmarks/bench_scaling.py

bench-throughput: $(STAMP)
	$(BIN)/python benchmarks/bench_throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
